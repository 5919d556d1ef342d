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
//! [`ReplicatedPair`] is the failover variant: a primary and a synchronous standby, started per
//! test, reached through one multi-host URL.
//!
//! This crate is a dev-dependency only: nothing shipped may depend on it.

mod replicated;
mod server;

pub use replicated::ReplicatedPair;

use server::{Reaper, init_cluster, private_dir, run_checked, server_environment, spawn_reaper};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Environment variable naming the directory that holds `initdb` and `pg_ctl`.
pub const BINDIR_ENV: &str = "DOORSTEP_PG_BINDIR";

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

pub(crate) type Result<T> = std::result::Result<T, ClusterError>;

/// A running private cluster. Its reaper stops it when this process exits.
#[derive(Debug)]
pub struct TestCluster {
    bindir: PathBuf,
    base: PathBuf,
    port: u16,
    /// Run server commands as the `postgres` user (this process is root).
    as_postgres: bool,
    next_db: AtomicU64,
    _reaper: Reaper,
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
        let (bindir, as_postgres) = server_environment()?;
        let base = private_dir("doorstep-pg", as_postgres)?;
        let data = base.join("data");
        // The reaper first, so a failure below still cleans up: it stops whatever started and
        // removes the directory once this process is gone.
        let reaper = spawn_reaper(&bindir, &base, &[&data], as_postgres)?;
        init_cluster(&bindir, as_postgres, &base, &data)?;
        let port = server::start_server(&bindir, as_postgres, &base, &data, "server.log", "")?;
        Ok(TestCluster {
            bindir,
            base,
            port,
            as_postgres,
            next_db: AtomicU64::new(0),
            _reaper: reaper,
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

#[cfg(test)]
mod tests {
    use super::*;
    use server::sh_quote;

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
