//! Black-box harness: the real `doorstep-server` binary on a real SQLite file, on port 0 — or on
//! a fresh database of a private PostgreSQL cluster with `DOORSTEP_TEST_DATABASE=postgres`.
//!
//! A [`World`] is one temporary directory with a seeded database (`demo-seed`: 3 couriers, 6
//! stops each), a running server and a dispatcher client. [`Device`] enrolls through the API and
//! builds realistic event envelopes with gap-free `device_seq`s. Randomised tests take their
//! seed from [`test_seed`] (env `DOORSTEP_TEST_SEED`, else fresh) and print it.
#![allow(dead_code)] // every test binary uses a different part of the harness

pub mod live_stream;

use doorstep_server::seed::DemoSeed;
use doorstep_shared::event::{
    ArrivedAtStop, AttemptOutcome, DeliveryAttempted, DeliveryMethod, EventEnvelope, EventPayload,
    GeoPoint, LocationFixed, NoteAdded, ParcelScanned, ScanPhase,
};
use doorstep_shared::protocol::{
    DeviceHealth, EnrollResponse, Escalation, PullResponse, PushRequest, PushResponse, StopDetail,
    StoredEvent,
};
use doorstep_shared::{
    CourierId, DeviceId, EventId, FailureReason, HlcStamp, ParcelBarcode, Problem, RouteId, StopId,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_doorstep-server");

/// The seed of a randomised test: `DOORSTEP_TEST_SEED` or a fresh one, printed either way.
pub fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("DOORSTEP_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("{test}: DOORSTEP_TEST_SEED={seed}");
    seed
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn log_env(cmd: &mut Command) {
    if std::env::var_os("TEST_LOG").is_some() {
        cmd.stderr(Stdio::inherit());
    } else {
        cmd.env("RUST_LOG", "warn").stderr(Stdio::null());
    }
}

/// Whether the black-box tests run on PostgreSQL (`DOORSTEP_TEST_DATABASE=postgres`, a private
/// cluster started by the test process) instead of SQLite files.
pub fn on_postgres() -> bool {
    std::env::var("DOORSTEP_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// The database URL a world's path stands for: the SQLite file itself, or one fresh PostgreSQL
/// database per path (the same path always names the same database, so a restarted server
/// finds its data).
pub fn db_url(path: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", path.display());
    }
    static DATABASES: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, String>>,
    > = std::sync::OnceLock::new();
    let mut dbs = DATABASES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    dbs.entry(path.to_path_buf())
        .or_insert_with(|| doorstep_test_postgres::TestCluster::shared().fresh_database())
        .clone()
}

/// Runs `doorstep-server demo-seed` on `db` and returns what it printed.
pub fn demo_seed(db: &Path) -> DemoSeed {
    demo_seed_url(&db_url(db))
}

/// Runs `doorstep-server demo-seed` on the database at `url` (3 couriers, 6 stops each).
pub fn demo_seed_url(url: &str) -> DemoSeed {
    demo_seed_sized(url, 3, 6)
}

/// Runs `doorstep-server demo-seed` on the database at `url` with `couriers` couriers (one
/// route and one enrollment code each) of `stops` stops.
pub fn demo_seed_sized(url: &str, couriers: usize, stops: usize) -> DemoSeed {
    let mut cmd = Command::new(BIN);
    cmd.args(["demo-seed", "--database", url])
        .args(["--couriers", &couriers.to_string()])
        .args(["--stops", &stops.to_string(), "--seed", "1"])
        .stdout(Stdio::piped());
    log_env(&mut cmd);
    let out = cmd.output().expect("run demo-seed");
    assert!(out.status.success(), "demo-seed failed: {:?}", out.status);
    serde_json::from_slice(&out.stdout).expect("demo-seed prints its world as JSON")
}

/// A fresh one-time enrollment code for an existing courier, from `admin enroll-code`.
pub fn enrollment_code(url: &str, courier: CourierId) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["admin", "enroll-code", "--database", url])
        .args([
            "--courier-name",
            "unused",
            "--courier-id",
            &courier.to_string(),
        ])
        .stdout(Stdio::piped());
    log_env(&mut cmd);
    let out = cmd.output().expect("run admin enroll-code");
    assert!(out.status.success(), "enroll-code failed: {:?}", out.status);
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("enroll-code prints JSON");
    printed["code"].as_str().expect("a code").to_owned()
}

/// A fresh integration token for the shipper `name`, from `admin integration-token`.
pub fn integration_token(url: &str, name: &str) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "admin",
        "integration-token",
        "--database",
        url,
        "--name",
        name,
    ])
    .stdout(Stdio::piped());
    log_env(&mut cmd);
    let out = cmd.output().expect("run admin integration-token");
    assert!(
        out.status.success(),
        "integration-token failed: {:?}",
        out.status
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("integration-token prints JSON");
    printed["token"].as_str().expect("a token").to_owned()
}

/// One running server process.
pub struct TestServer {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub addr: String,
    pub base: String,
}

impl TestServer {
    /// Spawns `serve` on port 0 and waits for the line it prints after binding.
    pub fn start(db: &Path) -> Self {
        Self::start_with_env(db, &[])
    }

    /// Like [`TestServer::start`], with extra environment variables.
    pub fn start_with_env(db: &Path, env: &[(String, String)]) -> Self {
        Self::start_url(&db_url(db), env)
    }

    /// Spawns `serve` on the database at `url` (several servers on one URL are replicas).
    pub fn start_url(url: &str, env: &[(String, String)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", url])
            .env_remove("DOORSTEP_LISTEN")
            .env_remove("DOORSTEP_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        log_env(&mut cmd);
        let mut child = cmd.spawn().expect("spawn doorstep-server");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let addr = loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read server stdout");
            if n == 0 {
                let status = child.wait().expect("wait for server");
                panic!("doorstep-server exited before listening: {status:?}");
            }
            if let Some(a) = line
                .trim()
                .strip_prefix("doorstep-server listening on http://")
            {
                break a.to_owned();
            }
        };
        Self {
            child,
            _stdout: stdout,
            base: format!("http://{addr}"),
            addr,
        }
    }

    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL (what `Child::kill` sends on Unix) and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response kept whole, so tests can look at status, headers and body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Resp {
    async fn from(r: reqwest::Response) -> Result<Self, reqwest::Error> {
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = r.bytes().await?.to_vec();
        Ok(Self {
            status,
            content_type,
            body,
        })
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body {:?} does not parse: {e}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an RFC 9457 problem with `status` and `code`; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Problem {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "expected {status} {code}, got {text}");
        assert_eq!(
            self.content_type, "application/problem+json",
            "problem content type for {code}"
        );
        let p: Problem = self.json();
        assert_eq!(p.code.as_str(), code, "problem code: {text}");
        assert_eq!(p.status, status, "problem document status: {text}");
        p
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    pub const ALL: [Encoding; 3] = [Encoding::Identity, Encoding::Gzip, Encoding::Zstd];

    pub fn encode(self, body: &[u8]) -> Vec<u8> {
        match self {
            Encoding::Identity => body.to_vec(),
            Encoding::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(body).expect("gzip");
                gz.finish().expect("gzip")
            }
            Encoding::Zstd => zstd::encode_all(body, 3).expect("zstd"),
        }
    }

    pub fn header(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Zstd => Some("zstd"),
        }
    }
}

/// An HTTP client for one server address.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub dispatcher_token: String,
}

impl Api {
    pub fn new(base: &str, dispatcher_token: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
            dispatcher_token: dispatcher_token.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/enroll`.
    pub async fn enroll(&self, code: &str, name: &str) -> EnrollResponse {
        let r = self
            .http
            .post(self.url("/v1/enroll"))
            .json(&serde_json::json!({ "code": code, "device_name": name }))
            .send()
            .await
            .expect("enroll request");
        let r = Resp::from(r).await.expect("enroll body");
        assert_eq!(
            r.status,
            200,
            "enroll: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Raw push: any body, content type, encoding header and token. Transport errors surface.
    pub async fn push_raw(
        &self,
        token: Option<&str>,
        body: Vec<u8>,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> Result<Resp, reqwest::Error> {
        let mut req = self.http.post(self.url("/v1/sync/push")).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(enc) = content_encoding {
            req = req.header(reqwest::header::CONTENT_ENCODING, enc);
        }
        Resp::from(req.send().await?).await
    }

    /// Push a typed request in `enc`; transport errors surface (the crash test needs them).
    pub async fn try_push(
        &self,
        token: &str,
        req: &PushRequest,
        enc: Encoding,
    ) -> Result<Resp, reqwest::Error> {
        let json = serde_json::to_vec(req).expect("encode push");
        self.push_raw(
            Some(token),
            enc.encode(&json),
            Some("application/json"),
            enc.header(),
        )
        .await
    }

    /// Push that must answer 200; returns the typed response.
    pub async fn push(&self, token: &str, req: &PushRequest, enc: Encoding) -> PushResponse {
        let r = self.try_push(token, req, enc).await.expect("push request");
        assert_eq!(r.status, 200, "push: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// `GET /v1/sync/pull`.
    pub async fn pull(&self, token: &str, cursor: u64, wait_ms: u64) -> PullResponse {
        let r = self
            .http
            .get(self.url(&format!("/v1/sync/pull?cursor={cursor}&wait_ms={wait_ms}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("pull request");
        let r = Resp::from(r).await.expect("pull body");
        assert_eq!(r.status, 200, "pull: {}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Authenticated GET with any token.
    pub async fn get(&self, token: Option<&str>, path: &str) -> Resp {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("GET"))
            .await
            .expect("GET body")
    }

    async fn dispatch_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let r = self.get(Some(&self.dispatcher_token), path).await;
        assert_eq!(
            r.status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// One device's stored log, every page, through `GET /v1/dispatch/devices/{id}/events`.
    pub async fn device_log(&self, device: DeviceId) -> Vec<StoredEvent> {
        const PAGE: usize = 5_000;
        let mut out: Vec<StoredEvent> = Vec::new();
        let mut after = 0;
        loop {
            let page: Vec<StoredEvent> = self
                .dispatch_get(&format!(
                    "/v1/dispatch/devices/{device}/events?after_seq={after}&limit={PAGE}"
                ))
                .await;
            let full = page.len() == PAGE;
            after = page.last().and_then(|e| e.device_seq).unwrap_or(after);
            out.extend(page);
            if !full {
                return out;
            }
        }
    }

    pub async fn stop(&self, stop: StopId) -> StopDetail {
        self.dispatch_get(&format!("/v1/dispatch/stops/{stop}"))
            .await
    }

    /// Open escalations, or all of them with `all`.
    pub async fn escalations(&self, all: bool) -> Vec<Escalation> {
        self.dispatch_get(if all {
            "/v1/dispatch/escalations?all=true"
        } else {
            "/v1/dispatch/escalations"
        })
        .await
    }

    pub async fn devices(&self) -> Vec<DeviceHealth> {
        self.dispatch_get("/v1/dispatch/devices").await
    }

    pub async fn device(&self, id: DeviceId) -> DeviceHealth {
        self.devices()
            .await
            .into_iter()
            .find(|d| d.device_id == id)
            .expect("device listed at dispatch")
    }

    /// A dispatcher command (`cancel`, `reschedule`, ...) on a stop with an optional key.
    pub async fn stop_command(
        &self,
        stop: StopId,
        command: &str,
        body: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Resp {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/dispatch/stops/{stop}/{command}")))
            .bearer_auth(&self.dispatcher_token)
            .json(body);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        Resp::from(req.send().await.expect("command request"))
            .await
            .expect("command body")
    }
}

/// One temporary world: seeded database, running server, dispatcher client.
pub struct World {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub seed: DemoSeed,
    pub server: TestServer,
    pub api: Api,
    /// Extra environment of every server process of this world.
    pub env: Vec<(String, String)>,
}

impl World {
    pub fn new() -> Self {
        Self::with_blob_dir(false)
    }

    /// A world whose server keeps its blobs in the world's temporary directory
    /// (`DOORSTEP_BLOB_DIR`), when `own_blobs`.
    pub fn with_blob_dir(own_blobs: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("doorstep.db");
        let seed = demo_seed(&db);
        let env = if own_blobs {
            let blobs = dir.path().join("blobs").display().to_string();
            vec![("DOORSTEP_BLOB_DIR".to_owned(), blobs)]
        } else {
            vec![]
        };
        let server = TestServer::start_with_env(&db, &env);
        let api = Api::new(&server.base, &seed.dispatcher_token);
        Self {
            dir,
            db,
            seed,
            server,
            api,
            env,
        }
    }

    /// Kills the server (SIGKILL) and starts a new one on the same file, on a new port.
    pub fn restart(&mut self) {
        self.server.kill();
        self.server = TestServer::start_with_env(&self.db, &self.env);
        self.api.base = self.server.base.clone();
    }

    pub fn route(&self, courier: usize) -> RouteId {
        self.seed.couriers[courier].route_id
    }

    pub fn stops(&self, courier: usize) -> Vec<StopId> {
        self.seed.couriers[courier].stops.clone()
    }

    /// Enrolls a device for seeded courier `courier` (each courier has one code).
    pub async fn device(&self, courier: usize, rng_seed: u64) -> Device {
        let c = &self.seed.couriers[courier];
        let e = self
            .api
            .enroll(&c.enrollment_code, &format!("handheld-{courier}"))
            .await;
        assert_eq!(e.courier_id, c.courier_id);
        Device::new(e.device_id, e.courier_id, e.token, rng_seed)
    }

    /// A read-only connection to the world's SQLite file (WAL: safe while the server runs);
    /// `None` when the world runs on PostgreSQL.
    pub fn sqlite(&self) -> Option<rusqlite::Connection> {
        (!on_postgres()).then(|| {
            rusqlite::Connection::open_with_flags(
                &self.db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open database read-only")
        })
    }
}

/// A device: its identity and an event factory with gap-free sequence numbers.
pub struct Device {
    pub id: DeviceId,
    pub courier: CourierId,
    pub token: String,
    pub next_seq: u64,
    /// Added to the real clock for `device_time_ms`, `hlc` and `sent_at_ms`.
    pub clock_offset_ms: i64,
    pub rng: StdRng,
    hlc: HlcStamp,
}

impl Device {
    pub fn new(id: DeviceId, courier: CourierId, token: String, rng_seed: u64) -> Self {
        Self {
            id,
            courier,
            token,
            next_seq: 1,
            clock_offset_ms: 0,
            rng: StdRng::seed_from_u64(rng_seed),
            hlc: HlcStamp::default(),
        }
    }

    pub fn now(&self) -> u64 {
        (now_ms() as i64 + self.clock_offset_ms) as u64
    }

    /// An envelope for `payload` at the next `device_seq`, with its correct intent key.
    pub fn event(&mut self, payload: EventPayload) -> EventEnvelope {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.event_at(seq, payload)
    }

    /// An envelope at an explicit `device_seq` (does not move the counter).
    pub fn event_at(&mut self, seq: u64, payload: EventPayload) -> EventEnvelope {
        let now = self.now();
        self.hlc = if now > self.hlc.wall_ms {
            HlcStamp {
                wall_ms: now,
                logical: 0,
            }
        } else {
            HlcStamp {
                wall_ms: self.hlc.wall_ms,
                logical: self.hlc.logical + 1,
            }
        };
        EventEnvelope {
            event_id: EventId::from_parts(now, self.rng.random()),
            device_id: self.id,
            device_seq: seq,
            intent_key: doorstep_shared::intent::intent_key(&payload, &self.id),
            schema_version: 1,
            device_time_ms: now,
            hlc: self.hlc,
            blob_digests: vec![],
            payload,
        }
    }

    pub fn request(&self, events: Vec<EventEnvelope>) -> PushRequest {
        PushRequest {
            device_id: self.id,
            sent_at_ms: self.now(),
            events,
            queue: None,
        }
    }

    // ---- realistic payloads

    pub fn scan(&mut self, stop: StopId, parcel: &str, phase: ScanPhase) -> EventEnvelope {
        self.event(scan(stop, parcel, phase))
    }

    pub fn arrive(&mut self, stop: StopId, attempt: u32) -> EventEnvelope {
        self.event(EventPayload::ArrivedAtStop(ArrivedAtStop {
            stop_id: stop,
            attempt,
            location: Some(GeoPoint {
                lat: 52.52,
                lon: 13.405,
            }),
        }))
    }

    pub fn delivered(&mut self, stop: StopId, attempt: u32) -> EventEnvelope {
        self.event(delivered(stop, attempt))
    }

    pub fn failed(&mut self, stop: StopId, attempt: u32, reason: FailureReason) -> EventEnvelope {
        self.event(failed(stop, attempt, reason))
    }

    pub fn note(&mut self, stop: StopId, text: &str) -> EventEnvelope {
        let note_id = uuid::Uuid::from_u128(self.rng.random());
        self.event(EventPayload::NoteAdded(NoteAdded {
            stop_id: stop,
            note_id,
            text: text.to_owned(),
        }))
    }

    pub fn location(&mut self) -> EventEnvelope {
        // fix_time_ms is part of the intent: make it unique per fix.
        let fix_time_ms = self.now() * 1_000 + self.next_seq;
        let (dlat, dlon): (f64, f64) = (self.rng.random(), self.rng.random());
        self.event(EventPayload::LocationFixed(LocationFixed {
            location: GeoPoint {
                lat: 52.5 + dlat / 10.0,
                lon: 13.4 + dlon / 10.0,
            },
            accuracy_m: 5.0,
            fix_time_ms,
        }))
    }
}

pub fn scan(stop: StopId, parcel: &str, phase: ScanPhase) -> EventPayload {
    EventPayload::ParcelScanned(ParcelScanned {
        stop_id: stop,
        parcel: ParcelBarcode::parse(parcel).expect("valid barcode"),
        phase,
    })
}

pub fn delivered(stop: StopId, attempt: u32) -> EventPayload {
    EventPayload::DeliveryAttempted(DeliveryAttempted {
        stop_id: stop,
        attempt,
        outcome: AttemptOutcome::Delivered {
            method: DeliveryMethod::HandedToRecipient,
            recipient: Some("R. Recipient".to_owned()),
        },
    })
}

pub fn failed(stop: StopId, attempt: u32, reason: FailureReason) -> EventPayload {
    EventPayload::DeliveryAttempted(DeliveryAttempted {
        stop_id: stop,
        attempt,
        outcome: AttemptOutcome::Failed {
            reason,
            detail: None,
        },
    })
}

/// The full delivery of one stop: loaded, out for delivery, arrived, delivered.
pub fn delivery_sequence(d: &mut Device, stop: StopId, parcel: &str) -> Vec<EventEnvelope> {
    vec![
        d.scan(stop, parcel, ScanPhase::Loaded),
        d.scan(stop, parcel, ScanPhase::OutForDelivery),
        d.arrive(stop, 1),
        d.delivered(stop, 1),
    ]
}
