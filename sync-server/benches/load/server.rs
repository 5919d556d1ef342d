//! A real `doorstep-server serve` child process and what the kernel says about it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub const SERVER: &str = env!("CARGO_BIN_EXE_doorstep-server");

/// The server child process; killed when dropped (also on panic).
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(db_url: &str) -> Self {
        let mut child = Command::new(SERVER)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", db_url])
            .env("RUST_LOG", "warn")
            .env_remove("DOORSTEP_LISTEN")
            .env_remove("DOORSTEP_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn doorstep-server serve");
        let stdout = child.stdout.take().expect("server stdout");
        let mut server = Self {
            child,
            base: String::new(),
        };
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("read server stdout");
            if let Some(addr) = line.strip_prefix("doorstep-server listening on ") {
                server.base = addr.trim().to_owned();
                break;
            }
        }
        assert!(
            !server.base.is_empty(),
            "server exited before it was listening"
        );
        // Keep draining stdout so the server can never block on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the server has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/<pid>/stat (Linux only)");
        stat_cpu_seconds(&stat)
    }

    /// `VmHWM` (peak resident set) of the server, in MB.
    pub fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status (Linux only)");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status");
        kb / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of the calling thread (user + system), in seconds.
pub fn thread_cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
}

/// utime + stime of a `/proc/…/stat` line (fields 14 and 15, in USER_HZ = 100 on Linux).
fn stat_cpu_seconds(stat: &str) -> f64 {
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

pub fn demo_seed(
    db_url: &str,
    couriers: usize,
    stops: usize,
    seed: u64,
) -> doorstep_server::seed::DemoSeed {
    let out = Command::new(SERVER)
        .args(["demo-seed", "--database", db_url])
        .args(["--couriers", &couriers.to_string()])
        .args(["--stops", &stops.to_string()])
        .args(["--seed", &seed.to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run doorstep-server demo-seed");
    assert!(
        out.status.success(),
        "demo-seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("demo-seed prints its JSON")
}
