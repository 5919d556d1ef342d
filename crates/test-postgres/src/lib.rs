//! A private PostgreSQL cluster for tests: one per test process, started on first use, one fresh
//! database per test.
//!
//! The cluster lives in a new temporary directory, listens on 127.0.0.1 on a free private port
//! (never 5432) and on a Unix socket in that directory, trusts every local connection and runs
//! with `fsync=off` (test data only). It is stopped, and its directory removed, when the test
//! process ends for any reason, a panic or a kill included: a reaper child waits for EOF on a
//! pipe whose write end only this process holds, and the kernel closes it at exit.
//!
//! The server binaries are looked up in `$DOORSTEP_PG_BINDIR`, else in the newest
//! `/usr/lib/postgresql/*/bin` (Debian keeps `initdb` and `pg_ctl` off `PATH`). When they are
//! missing, [`TestCluster::shared`] panics and says to run `scripts/setup.sh`. As root, the
//! cluster runs as the `postgres` user (`initdb` refuses root).
//!
//! This crate is a dev-dependency only: nothing shipped may depend on it.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Environment variable naming the directory that holds `initdb` and `pg_ctl`.
pub const BINDIR_ENV: &str = "DOORSTEP_PG_BINDIR";
/// Where Debian installs the server binaries, one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Starting can lose a race for the free port to another process; try a few ports.
const START_TRIES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in {0}; run scripts/setup.sh \
         (it installs Debian's postgresql package) or set {BINDIR_ENV} to their directory"
    )]
    MissingBinaries(String),
    #[error("running as root but there is no `postgres` user to run the cluster as: {0}")]
    NoPostgresUser(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

type Result<T> = std::result::Result<T, ClusterError>;

/// A running private cluster. Its reaper stops it when this process exits.
#[derive(Debug)]
pub struct TestCluster {
    bindir: PathBuf,
    base: PathBuf,
    port: u16,
    /// Run server commands as the `postgres` user (this process is root).
    as_postgres: bool,
    next_db: AtomicU64,
    /// The write end of the reaper's stdin: never written, only held until exit.
    _reaper_pipe: Mutex<ChildStdin>,
    _reaper: Mutex<Child>,
}

static SHARED: OnceLock<TestCluster> = OnceLock::new();

/// A fresh, empty database on the shared cluster; returns its URL.
pub fn fresh_database() -> String {
    TestCluster::shared().fresh_database()
}

impl TestCluster {
    /// The process's cluster, started on first call. Panics (with what to do) when it cannot
    /// start: a test that needs PostgreSQL must fail, never pass without it.
    pub fn shared() -> &'static TestCluster {
        SHARED.get_or_init(|| match TestCluster::start() {
            Ok(c) => c,
            Err(e) => panic!("cannot start the test PostgreSQL cluster: {e}"),
        })
    }

    /// Starts a new private cluster (prefer [`TestCluster::shared`]).
    pub fn start() -> Result<TestCluster> {
        let bindir = find_bindir()?;
        let as_postgres = is_root()?;
        if as_postgres {
            run_checked(
                Command::new("id").args(["-u", "postgres"]),
                "id -u postgres",
            )
            .map_err(|e| ClusterError::NoPostgresUser(e.to_string()))?;
        }
        let base = std::env::temp_dir().join(format!(
            "doorstep-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&base).map_err(|e| ClusterError::Io(base.display().to_string(), e))?;
        if as_postgres {
            run_checked(
                Command::new("chown").arg("postgres").arg(&base),
                "chown postgres",
            )?;
        }
        let data = base.join("data");
        // The reaper first, so a failure below still cleans up: it stops whatever started and
        // removes the directory once this process is gone.
        let (reaper, pipe) = spawn_reaper(&bindir, &base, &data, as_postgres)?;
        let server = |prog: &str| server_command(&bindir, prog, as_postgres, &base);
        run_checked(
            server("initdb").arg("-N").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]),
            "initdb",
        )?;
        let mut last = None;
        for _ in 0..START_TRIES {
            let port = free_port()?;
            let opts = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                base.display()
            );
            let started = run_checked(
                server("pg_ctl")
                    .arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(base.join("server.log"))
                    .args(["-w", "-o", &opts, "start"]),
                "pg_ctl start",
            );
            match started {
                Ok(()) => {
                    return Ok(TestCluster {
                        bindir,
                        base,
                        port,
                        as_postgres,
                        next_db: AtomicU64::new(0),
                        _reaper_pipe: Mutex::new(pipe),
                        _reaper: Mutex::new(reaper),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        let log = std::fs::read_to_string(base.join("server.log")).unwrap_or_default();
        Err(match last {
            Some(ClusterError::Command { what, detail }) => ClusterError::Command {
                what,
                detail: format!("{detail}\nserver log:\n{log}"),
            },
            Some(e) => e,
            None => ClusterError::Command {
                what: "pg_ctl start".into(),
                detail: "never tried".into(),
            },
        })
    }

    /// The TCP port the cluster listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` as the superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a new empty database with a name unique in this process and returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let created = run_checked(
            Command::new(self.bindir.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .arg(&name),
            "createdb",
        );
        if let Err(e) = created {
            panic!("cannot create test database {name}: {e}");
        }
        self.url(&name)
    }

    /// The directory holding the data directory, the socket and the server log.
    pub fn dir(&self) -> &Path {
        &self.base
    }

    /// Whether server commands run as the `postgres` user.
    pub fn runs_as_postgres(&self) -> bool {
        self.as_postgres
    }
}

fn find_bindir() -> Result<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os(BINDIR_ENV) {
        let dir = PathBuf::from(dir);
        return if has_tools(&dir) {
            Ok(dir)
        } else {
            Err(ClusterError::MissingBinaries(format!(
                "{} (from {BINDIR_ENV})",
                dir.display()
            )))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(DEBIAN_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| ClusterError::MissingBinaries(format!("{DEBIAN_ROOT}/*/bin")))
}

fn is_root() -> Result<bool> {
    let meta =
        std::fs::metadata("/proc/self").map_err(|e| ClusterError::Io("/proc/self".into(), e))?;
    Ok(meta.uid() == 0)
}

/// A server program, run as `postgres` when this process is root, from `cwd` (the `postgres`
/// user may not be allowed into the test's working directory).
fn server_command(bindir: &Path, prog: &str, as_postgres: bool, cwd: &Path) -> Command {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bindir.join(prog));
        c
    } else {
        Command::new(bindir.join(prog))
    };
    cmd.current_dir(cwd);
    cmd
}

/// Runs `cmd` to completion; a non-zero exit is an error carrying its output.
fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::Io(format!("cannot run {what}"), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ClusterError::Command {
            what: what.to_owned(),
            detail: format!(
                "{}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// A port the kernel just handed out on 127.0.0.1 (ephemeral range, so never 5432).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ClusterError::Io("cannot find a free port".into(), e))?;
    let port = l
        .local_addr()
        .map_err(|e| ClusterError::Io("cannot find a free port".into(), e))?
        .port();
    Ok(port)
}

/// Quotes `s` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A child in its own process group (a Ctrl-C to the test's group does not kill it) that blocks
/// reading its stdin; at EOF it stops the cluster immediately and removes `base`.
fn spawn_reaper(
    bindir: &Path,
    base: &Path,
    data: &Path,
    as_postgres: bool,
) -> Result<(Child, ChildStdin)> {
    let pg_ctl = sh_quote(&bindir.join("pg_ctl").display().to_string());
    let run_as = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "cat >/dev/null; cd /; if [ -f {data}/postmaster.pid ]; then {run_as}{pg_ctl} -D {data} stop -m immediate; fi; rm -rf {base}",
        data = sh_quote(&data.display().to_string()),
        base = sh_quote(&base.display().to_string()),
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| ClusterError::Io("cannot start the cluster reaper".into(), e))?;
    let mut pipe = child.stdin.take().ok_or_else(|| ClusterError::Command {
        what: "cluster reaper".into(),
        detail: "no stdin pipe".into(),
    })?;
    // Nothing is ever written; flushing an empty buffer checks the pipe is there.
    pipe.flush()
        .map_err(|e| ClusterError::Io("cluster reaper pipe".into(), e))?;
    Ok((child, pipe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_fresh_databases_are_distinct_and_reachable() {
        let cluster = TestCluster::shared();
        assert_ne!(cluster.port(), 5432);
        let a = cluster.fresh_database();
        let b = fresh_database();
        assert_ne!(a, b);
        let psql = |url: &str| {
            Command::new(cluster.bindir.join("psql"))
                .args([url, "-tAc", "SELECT current_database()"])
                .output()
                .expect("run psql")
        };
        let out = psql(&a);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            a.rsplit('/').next().expect("db name")
        );
    }

    #[test]
    fn a_missing_bindir_says_to_run_setup() {
        let err = ClusterError::MissingBinaries("/nowhere".into()).to_string();
        assert!(err.contains("scripts/setup.sh"), "{err}");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
