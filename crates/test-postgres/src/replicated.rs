//! A replicated pair for failover tests: a primary and a synchronous streaming-replication
//! standby, each a private cluster on its own free port of 127.0.0.1, in one temporary
//! directory that the reaper removes (both clusters stopped) when the test process is gone.
//!
//! The primary runs with `synchronous_standby_names` naming the standby and
//! `synchronous_commit=on`: a commit answered to a client is in the standby's WAL. The standby is
//! a `pg_basebackup -R` copy with hot standby (read-only connections). Clients get one
//! multi-host URL with `target_session_attrs=read-write`, which reaches whichever node is
//! writable. [`ReplicatedPair::kill_primary`] SIGKILLs the primary, as losing its machine would;
//! [`ReplicatedPair::promote_standby`] makes the standby the writable node.

use crate::server::{self, Reaper, run_checked, server_command};
use crate::{ClusterError, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The standby's `application_name`, which the primary's `synchronous_standby_names` names.
const STANDBY_NAME: &str = "doorstep_standby";
/// How long starting replication, losing the primary or a promotion may take.
const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between two looks at a condition being waited for.
const POLL: Duration = Duration::from_millis(20);

/// A running primary and its synchronous standby.
#[derive(Debug)]
pub struct ReplicatedPair {
    bindir: PathBuf,
    base: PathBuf,
    as_postgres: bool,
    primary: Node,
    standby: Node,
    next_db: AtomicU64,
    _reaper: Reaper,
}

#[derive(Debug)]
struct Node {
    data: PathBuf,
    port: u16,
}

impl ReplicatedPair {
    /// initdb, start the primary, copy it to the standby, start the standby, and wait until
    /// the primary reports the standby as synchronous.
    pub fn start() -> Result<ReplicatedPair> {
        let (bindir, as_postgres) = server::server_environment()?;
        let base = server::private_dir("doorstep-pg-pair", as_postgres)?;
        let (primary_data, standby_data) = (base.join("primary"), base.join("standby"));
        let reaper =
            server::spawn_reaper(&bindir, &base, &[&primary_data, &standby_data], as_postgres)?;
        server::init_cluster(&bindir, as_postgres, &base, &primary_data)?;
        let primary_port = server::start_server(
            &bindir,
            as_postgres,
            &base,
            &primary_data,
            "primary.log",
            &format!("-c synchronous_standby_names={STANDBY_NAME} -c synchronous_commit=on"),
        )?;
        run_checked(
            server_command(&bindir, "pg_basebackup", as_postgres, &base)
                .arg("-D")
                .arg(&standby_data)
                .arg("-d")
                .arg(format!(
                    "host=127.0.0.1 port={primary_port} user=postgres \
                     application_name={STANDBY_NAME}"
                ))
                .args(["-R", "-X", "stream", "-c", "fast"]),
            "pg_basebackup",
        )?;
        // The walreceiver names itself by `cluster_name` when its conninfo does not. With the
        // default 5 s retry interval a promotion right after losing the primary sometimes took
        // that long; a test has no archive to wait for.
        let standby_port = server::start_server(
            &bindir,
            as_postgres,
            &base,
            &standby_data,
            "standby.log",
            &format!(
                "-c cluster_name={STANDBY_NAME} -c hot_standby=on \
                 -c wal_retrieve_retry_interval=100ms"
            ),
        )?;
        let pair = ReplicatedPair {
            bindir,
            base,
            as_postgres,
            primary: Node {
                data: primary_data,
                port: primary_port,
            },
            standby: Node {
                data: standby_data,
                port: standby_port,
            },
            next_db: AtomicU64::new(0),
            _reaper: reaper,
        };
        let sync_state = format!(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}'"
        );
        wait_for("the standby to be synchronous", || {
            Ok(pair.query(pair.primary.port, "postgres", &sync_state)? == "sync")
        })?;
        Ok(pair)
    }

    /// The primary's TCP port on 127.0.0.1.
    pub fn primary_port(&self) -> u16 {
        self.primary.port
    }

    /// The standby's TCP port on 127.0.0.1.
    pub fn standby_port(&self) -> u16 {
        self.standby.port
    }

    /// The multi-host URL of database `db` as the superuser `postgres`: the primary first, then
    /// the standby, connecting to whichever accepts writes.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
            self.primary.port, self.standby.port
        )
    }

    /// Creates a new empty database on the primary (replicated to the standby) and returns its
    /// multi-host URL. Panics when it cannot: a test without its database must fail.
    pub fn fresh_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("f{}_{n}", std::process::id());
        if let Err(e) = self.query(
            self.primary.port,
            "postgres",
            &format!("CREATE DATABASE {name}"),
        ) {
            panic!("cannot create test database {name} on the primary: {e}");
        }
        self.url(&name)
    }

    /// SIGKILLs the primary's postmaster and every process it started (no shutdown, no goodbye
    /// to clients or to the standby), then waits until its port refuses connections.
    pub fn kill_primary(&self) -> Result<()> {
        let pid = postmaster_pid(&self.primary.data)?;
        // Stopped, the postmaster forks no new backend while its children are listed.
        signal("STOP", &[pid])?;
        let mut victims = children_of(pid)?;
        victims.push(pid);
        // A child may exit by itself meanwhile (kill(1) then fails for it): only the port
        // going dead below says the primary is gone.
        let _ = signal("KILL", &victims);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.primary.port));
        wait_for("the primary's port to refuse connections", || {
            Ok(std::net::TcpStream::connect_timeout(&addr, POLL).is_err())
        })
    }

    /// Promotes the standby and waits until it accepts writes; returns how long that took.
    pub fn promote_standby(&self) -> Result<Duration> {
        let started = Instant::now();
        run_checked(
            server_command(&self.bindir, "pg_ctl", self.as_postgres, &self.base)
                .arg("-D")
                .arg(&self.standby.data)
                .args(["-w", "-t", &DEADLINE.as_secs().to_string(), "promote"]),
            "pg_ctl promote",
        )?;
        wait_for("the promoted standby to accept writes", || {
            let state = self.query(
                self.standby.port,
                "postgres",
                "SELECT pg_is_in_recovery()::text || current_setting('transaction_read_only')",
            )?;
            Ok(state == "falseoff")
        })?;
        Ok(started.elapsed())
    }

    /// Runs `sql` on the node listening on `port` and returns its unaligned output, trimmed.
    pub fn query(&self, port: u16, db: &str, sql: &str) -> Result<String> {
        let out = run_checked(
            Command::new(self.bindir.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-U", "postgres", "-d", db, "-XtAq", "-c", sql]),
            "psql",
        )?;
        Ok(out.trim().to_owned())
    }

    /// The directory holding both data directories and their server logs.
    pub fn dir(&self) -> &Path {
        &self.base
    }
}

/// Polls `ready` until it answers `true`, for at most [`DEADLINE`]; errors count as "not yet",
/// and the last one is reported when time runs out.
fn wait_for(what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let last = match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => "condition not met".to_owned(),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(ClusterError::Command {
                what: format!("waiting for {what}"),
                detail: format!("not done after {DEADLINE:?}: {last}"),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The postmaster's pid: the first line of `postmaster.pid`.
fn postmaster_pid(data: &Path) -> Result<u32> {
    let file = data.join("postmaster.pid");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| ClusterError::Io(file.display().to_string(), e))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| ClusterError::Command {
            what: "reading postmaster.pid".into(),
            detail: format!("no pid in {text:?}"),
        })
}

/// Every live process whose parent is `parent` (PostgreSQL's children each lead their own
/// process group, so signalling the postmaster's group would miss them).
fn children_of(parent: u32) -> Result<Vec<u32>> {
    let proc = std::fs::read_dir("/proc").map_err(|e| ClusterError::Io("/proc".into(), e))?;
    Ok(proc
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
            let after_comm = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_comm.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect())
}

/// Sends `SIG<name>` to every process in `pids` with kill(1).
fn signal(name: &str, pids: &[u32]) -> Result<()> {
    run_checked(
        Command::new("kill")
            .arg(format!("-{name}"))
            .args(pids.iter().map(u32::to_string)),
        &format!("kill -{name}"),
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_row_survives_losing_the_primary_and_the_promoted_standby_takes_writes() {
        let pair = ReplicatedPair::start().expect("start the pair");
        assert!(![pair.primary_port(), pair.standby_port()].contains(&5432));
        let url = pair.fresh_database();
        let db = url
            .rsplit('/')
            .next()
            .and_then(|tail| tail.split('?').next())
            .expect("db name in URL");
        assert!(url.contains("target_session_attrs=read-write"), "{url}");
        let (primary, standby) = (pair.primary_port(), pair.standby_port());
        pair.query(
            primary,
            db,
            "CREATE TABLE t (v int); INSERT INTO t VALUES (42)",
        )
        .expect("write on the primary");
        let refused = pair.query(standby, db, "INSERT INTO t VALUES (1)");
        assert!(refused.is_err(), "a standby refuses writes: {refused:?}");

        pair.kill_primary().expect("kill the primary");
        assert!(
            pair.query(primary, db, "SELECT 1").is_err(),
            "the primary is gone"
        );
        let took = pair.promote_standby().expect("promote");
        assert!(took < DEADLINE);
        assert_eq!(
            pair.query(
                standby,
                db,
                "INSERT INTO t VALUES (7); SELECT sum(v) FROM t"
            )
            .expect("write on the promoted standby"),
            "49",
            "the row committed on the primary is on the promoted standby"
        );
    }
}
