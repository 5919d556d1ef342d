//! Running PostgreSQL's server programs for the test clusters: finding them, `initdb`,
//! starting on a free port, and the reaper that stops clusters when the test process is gone.

use crate::{BINDIR_ENV, ClusterError, Result};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

/// Where Debian installs the server binaries, one directory per major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Starting can lose a race for the free port to another process; try a few ports.
const START_TRIES: usize = 5;

/// A child that stops clusters and removes their directory once this process is gone.
#[derive(Debug)]
pub(crate) struct Reaper {
    /// The write end of the reaper's stdin: never written, only held until exit.
    _pipe: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

/// The server binaries' directory and whether they must run as `postgres` (this process is
/// root), checked: the `postgres` user exists when needed.
pub(crate) fn server_environment() -> Result<(PathBuf, bool)> {
    let bindir = find_bindir()?;
    let as_postgres = is_root()?;
    if as_postgres {
        run_checked(
            Command::new("id").args(["-u", "postgres"]),
            "id -u postgres",
        )
        .map_err(|e| ClusterError::NoPostgresUser(e.to_string()))?;
    }
    Ok((bindir, as_postgres))
}

/// A new directory under the system's temporary directory, owned by the user the server runs as.
pub(crate) fn private_dir(prefix: &str, as_postgres: bool) -> Result<PathBuf> {
    let base = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
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
    Ok(base)
}

/// `initdb` of a cluster whose superuser is `postgres`, trusting every local connection
/// (replication connections included).
pub(crate) fn init_cluster(
    bindir: &Path,
    as_postgres: bool,
    base: &Path,
    data: &Path,
) -> Result<()> {
    run_checked(
        server_command(bindir, "initdb", as_postgres, base)
            .arg("-N")
            .arg("-D")
            .arg(data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]),
        "initdb",
    )
    .map(drop)
}

/// Starts the cluster in `data` on a free port of 127.0.0.1 and a socket in `base`, with
/// `fsync=off` and `extra` server options (`-c name=value ...`); waits until it accepts
/// connections and returns the port. The server log is `base/log`.
pub(crate) fn start_server(
    bindir: &Path,
    as_postgres: bool,
    base: &Path,
    data: &Path,
    log: &str,
    extra: &str,
) -> Result<u16> {
    let mut last = None;
    for _ in 0..START_TRIES {
        let port = free_port()?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {extra}",
            base.display()
        );
        let started = run_checked(
            server_command(bindir, "pg_ctl", as_postgres, base)
                .arg("-D")
                .arg(data)
                .arg("-l")
                .arg(base.join(log))
                .args(["-w", "-o", &opts, "start"]),
            "pg_ctl start",
        );
        match started {
            Ok(_) => return Ok(port),
            Err(e) => last = Some(e),
        }
    }
    let log = std::fs::read_to_string(base.join(log)).unwrap_or_default();
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
pub(crate) fn server_command(bindir: &Path, prog: &str, as_postgres: bool, cwd: &Path) -> Command {
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

/// Runs `cmd` to completion and returns its standard output; a non-zero exit is an error
/// carrying its output.
pub(crate) fn run_checked(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::Io(format!("cannot run {what}"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A child in its own process group (a Ctrl-C to the test's group does not kill it) that blocks
/// reading its stdin; at EOF it stops every cluster in `data` immediately and removes `base`.
pub(crate) fn spawn_reaper(
    bindir: &Path,
    base: &Path,
    data: &[&Path],
    as_postgres: bool,
) -> Result<Reaper> {
    let pg_ctl = sh_quote(&bindir.join("pg_ctl").display().to_string());
    let run_as = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let dirs: Vec<String> = data
        .iter()
        .map(|d| sh_quote(&d.display().to_string()))
        .collect();
    let script = format!(
        "cat >/dev/null; cd /; for d in {dirs}; do if [ -f \"$d/postmaster.pid\" ]; then {run_as}{pg_ctl} -D \"$d\" stop -m immediate; fi; done; rm -rf {base}",
        dirs = dirs.join(" "),
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
    Ok(Reaper {
        _pipe: Mutex::new(pipe),
        _child: Mutex::new(child),
    })
}
