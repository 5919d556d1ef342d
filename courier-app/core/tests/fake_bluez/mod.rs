//! Harness for `tests/ble_bluez.rs`: a private D-Bus daemon in a temp dir, the fake BlueZ
//! (`fake_bluez.py`) on it, and this test binary re-run as a child process with
//! `DBUS_SYSTEM_BUS_ADDRESS` pointing at that bus. Each process is killed when its guard drops
//! (`kill_on_drop`), every wait is bounded, and failures carry the logs of all three.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const SETUP_HINT: &str = "this test needs dbus-daemon, python3-dbus and python3-gi; \
    run scripts/setup.sh to install them";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const CHILD_TIMEOUT: Duration = Duration::from_secs(90);
/// Set in the child's environment: it is the child, so its entry tests do their work.
pub const CHILD_ENV: &str = "DOORSTEP_FAKE_BLUEZ_CHILD";
/// Set in the child's environment: the bus's temp dir, which holds the scenario file.
pub const DIR_ENV: &str = "DOORSTEP_FAKE_BLUEZ_DIR";
/// Printed by a child entry test when it starts, so a filter that matched nothing (and
/// "passed") cannot pass for a run.
pub const CHILD_MARK: &str = "fake-bluez child running: ";

/// A running process, its stdout line reader and the file its stderr goes to.
struct Proc {
    child: Child,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf, what: &str) -> Self {
        let log_file = std::fs::File::create(&log).expect("create a log file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {SETUP_HINT}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Self { child, stdout, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// The next stdout line: the process's readiness signal.
    async fn ready_line(&mut self, what: &str) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(START_TIMEOUT, self.stdout.read_line(&mut line)).await;
        match read {
            Ok(Ok(n)) if n > 0 => line.trim().to_owned(),
            Ok(_) => {
                let status = self.child.wait().await;
                panic!(
                    "{what} exited before it was ready ({status:?}); {SETUP_HINT}\n--- its stderr:\n{}",
                    self.log()
                )
            }
            Err(_) => panic!(
                "{what} not ready after {START_TIMEOUT:?}\n--- its stderr:\n{}",
                self.log()
            ),
        }
    }
}

/// `dbus-daemon` with a bus of its own: a unix socket in a temp dir, everything allowed.
pub struct PrivateBus {
    daemon: Proc,
    pub address: String,
    dir: tempfile::TempDir,
}

impl PrivateBus {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&dir.path().join("bus"))).expect("write bus config");
        let mut daemon = Proc::spawn(
            Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .args(["--nofork", "--nopidfile", "--print-address=1"]),
            dir.path().join("dbus-daemon.log"),
            "dbus-daemon",
        );
        let address = daemon.ready_line("dbus-daemon").await;
        Self {
            daemon,
            address,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

/// What the fake BlueZ exports.
pub enum Bluez<'a> {
    /// `hci0`, playing this scenario (see `fake_bluez.py`) once discovery starts.
    Adapter(&'a serde_json::Value),
    NoAdapter,
}

/// The fake BlueZ, owning `org.bluez` on a [`PrivateBus`].
pub struct FakeBluez {
    proc: Proc,
}

impl FakeBluez {
    pub async fn start(bus: &PrivateBus, what: Bluez<'_>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_bluez/fake_bluez.py");
        // Debian's python3-dbus / python3-gi live in the system interpreter; a pyenv or venv
        // `python3` earlier on PATH would not have them.
        let system_python = Path::new("/usr/bin/python3");
        let python = if system_python.exists() {
            system_python
        } else {
            Path::new("python3")
        };
        let mut cmd = Command::new(python);
        cmd.arg(&script).args(["--address", &bus.address]);
        match what {
            Bluez::Adapter(scenario) => {
                let path = bus.dir().join("scenario.json");
                std::fs::write(&path, scenario.to_string()).expect("write scenario");
                cmd.arg("--scenario").arg(path);
            }
            Bluez::NoAdapter => {
                cmd.arg("--no-adapter");
            }
        }
        let mut proc = Proc::spawn(&mut cmd, bus.dir().join("fake_bluez.log"), "fake BlueZ");
        let line = proc.ready_line("fake BlueZ").await;
        assert_eq!(line, "READY", "fake BlueZ said {line:?}:\n{}", proc.log());
        Self { proc }
    }
}

/// Runs the entry test `name` of this binary in a child whose system bus is `bus`, and panics
/// with every log if it fails, times out or never ran.
pub async fn run_child(name: &str, bus: &PrivateBus, fake: Option<&FakeBluez>) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let run = Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
        .env(CHILD_ENV, "1")
        .env(DIR_ENV, bus.dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let logs = |child: &str| {
        format!(
            "{child}\n--- fake BlueZ stderr:\n{}\n--- dbus-daemon stderr:\n{}",
            fake.map_or_else(|| "(not running)".to_owned(), |f| f.proc.log()),
            bus.daemon.log()
        )
    };
    let out: Output = match tokio::time::timeout(CHILD_TIMEOUT, run).await {
        Ok(out) => out.expect("run the child test"),
        Err(_) => panic!(
            "{}",
            logs(&format!("child {name} timed out after {CHILD_TIMEOUT:?}"))
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ran = stdout.contains(&format!("{CHILD_MARK}{name}"));
    if !out.status.success() || !ran {
        panic!(
            "{}",
            logs(&format!(
                "child {name}: {} (entry test ran: {ran})\n--- child stdout:\n{stdout}\n--- child stderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        );
    }
}

/// In an entry test: true (and announced) in the child, false when run directly.
pub fn entered_child(name: &str) -> bool {
    if std::env::var_os(CHILD_ENV).is_none() {
        return false;
    }
    println!("{CHILD_MARK}{name}");
    true
}

/// In a child: lets the fake's playback past its `{"wait_for": name}` step.
pub fn release(name: &str) {
    let dir = std::env::var_os(DIR_ENV).expect("run as a fake-BlueZ child");
    std::fs::write(Path::new(&dir).join(name), b"").expect("write the release file");
}
