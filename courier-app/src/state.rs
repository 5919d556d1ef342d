//! The app's managed state: the device (outbox), the small settings file (server URL, field-test
//! profile, the screen the driver was on) and the running sync engine task.

use crate::error::{ErrorCode, IpcError, IpcResult};
use crate::reroute::Rerouting;
use crate::settings::{NetworkMode, Settings};
use courier_core::transport::faulty::FaultStats;
use courier_core::{
    Clock, Device, FaultProfile, FaultyTransport, HttpTransport, SyncConfig, SyncEngine,
    SystemClock,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tauri::{Manager, Runtime};
use tokio::sync::watch;

/// Overrides where the outbox and settings live (tests run each app in a fresh directory).
pub const DATA_DIR_ENV: &str = "DOORSTEP_APP_DATA";
const OUTBOX_FILE: &str = "outbox.db";
const SETTINGS_FILE: &str = "settings.json";

pub type Net = Arc<FaultyTransport<HttpTransport>>;

/// The app data directory: `$DOORSTEP_APP_DATA`, else the platform's app data dir.
pub fn data_dir<R: Runtime>(
    app: &tauri::AppHandle<R>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dir = match std::env::var_os(DATA_DIR_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => app.path().app_data_dir()?,
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

struct SyncTask {
    net: Net,
    shutdown: watch::Sender<bool>,
}

pub struct AppState {
    pub device: Device,
    pub rerouting: Arc<Rerouting>,
    clock: Arc<dyn Clock>,
    settings_path: PathBuf,
    settings: Mutex<Settings>,
    sync: Mutex<Option<SyncTask>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AppState {
    /// Opens the outbox and settings in `dir`; an enrolled device starts syncing at once. The
    /// rerouting model in `models_dir` loads in the background.
    pub fn open(dir: &Path, models_dir: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Event ids need randomness; the seed is picked here, once, and injected.
        let seed = clock.now_ms() ^ (u64::from(std::process::id()) << 32);
        let device = Device::open(dir.join(OUTBOX_FILE), clock.clone(), seed)?;
        let settings_path = dir.join(SETTINGS_FILE);
        let settings = Settings::load(&settings_path);
        let rerouting = Arc::new(Rerouting::new(models_dir, &device)?);
        rerouting.preload();
        let state = Self {
            device,
            rerouting,
            clock,
            settings_path,
            settings: Mutex::new(settings),
            sync: Mutex::new(None),
        };
        if state.device.identity()?.is_some() {
            state.start_sync()?;
        }
        Ok(state)
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    /// Changes the settings and writes them durably (write a temporary file, then rename).
    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) -> IpcResult<Settings> {
        let mut s = lock(&self.settings);
        f(&mut s);
        s.save(&self.settings_path)
            .map_err(|e| IpcError::new(ErrorCode::Storage, format!("cannot save settings: {e}")))?;
        Ok(s.clone())
    }

    /// The fault-injecting transport of the running engine, if the device is enrolled.
    pub fn net(&self) -> Option<Net> {
        lock(&self.sync).as_ref().map(|t| t.net.clone())
    }

    pub fn fault_stats(&self) -> Option<FaultStats> {
        self.net().map(|n| n.stats())
    }

    /// A fresh engine for the current settings. Enrollment runs one round on it first.
    pub fn new_engine(&self) -> IpcResult<SyncEngine<Net>> {
        let settings = self.settings();
        let url = settings
            .server_url
            .clone()
            .ok_or_else(|| IpcError::new(ErrorCode::NotEnrolled, "no server configured"))?;
        let net = match self.net() {
            Some(n) => n,
            None => {
                let http = HttpTransport::new(&url, Duration::from_secs(15))?;
                let seed = self.clock.now_ms();
                Arc::new(FaultyTransport::new(
                    http,
                    settings.network.profile(settings.outage, self.now_ms()),
                    seed,
                    self.clock.clone(),
                ))
            }
        };
        let config = SyncConfig {
            request_timeout_ms: 15_000,
            idle_interval_ms: 30_000,
            offline_poll_ms: 5_000,
            ..SyncConfig::default()
        };
        Ok(SyncEngine::new(
            self.device.clone(),
            net,
            config,
            self.clock.now_ms().rotate_left(17),
        ))
    }

    /// Runs `engine` in the background, replacing (and stopping) any engine running before.
    pub fn spawn_engine(&self, engine: SyncEngine<Net>) {
        let (tx, rx) = watch::channel(false);
        let net = engine.transport().clone();
        let old = lock(&self.sync).replace(SyncTask { net, shutdown: tx });
        if let Some(old) = old {
            let _ = old.shutdown.send(true);
        }
        tauri::async_runtime::spawn(async move {
            engine.run(rx).await;
        });
    }

    /// (Re)starts background sync: after enrollment, at start-up and when the network profile
    /// changes (so a driver who goes back online does not wait out a backoff).
    pub fn start_sync(&self) -> IpcResult<()> {
        let engine = self.new_engine()?;
        self.spawn_engine(engine);
        Ok(())
    }

    /// Applies a network mode to the live transport and persists it.
    pub fn set_network(&self, mode: NetworkMode, outage_s: Option<u64>) -> IpcResult<Settings> {
        let now = self.now_ms();
        let settings = self.update_settings(|s| {
            s.network = mode;
            s.outage = match mode {
                NetworkMode::Outage => Some(courier_core::transport::faulty::Outage {
                    start_ms: now,
                    end_ms: now + outage_s.unwrap_or(60).clamp(1, 86_400) * 1000,
                }),
                _ => None,
            };
        })?;
        if let Some(net) = self.net() {
            net.set_profile(settings.network.profile(settings.outage, now));
            self.start_sync()?;
        }
        Ok(settings)
    }

    pub fn profile(&self) -> FaultProfile {
        self.net().map(|n| n.profile()).unwrap_or_else(|| {
            let s = self.settings();
            s.network.profile(s.outage, self.now_ms())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Screen;

    /// A fresh directory per test, removed on drop.
    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!(
                "courier-app-test-{name}-{}-{}",
                std::process::id(),
                SystemClock.now_ms()
            ));
            std::fs::create_dir_all(&d).expect("temp dir");
            Self(d)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_fresh_device_is_not_enrolled_and_starts_on_no_screen() {
        let dir = Dir::new("fresh");
        let state = AppState::open(&dir.0, &dir.0.join("models")).expect("open");
        assert!(state.device.identity().expect("identity").is_none());
        assert!(state.net().is_none(), "no sync engine before enrollment");
        assert_eq!(state.settings(), Settings::default());
        let e = state.new_engine().err().expect("no server yet");
        assert_eq!(e.code, ErrorCode::NotEnrolled);
    }

    #[test]
    fn the_screen_and_the_network_mode_survive_a_restart() {
        let dir = Dir::new("restart");
        let stop: doorstep_shared::StopId = "0190a0b0-0000-7000-8000-000000000001"
            .parse()
            .expect("stop id");
        {
            let state = AppState::open(&dir.0, &dir.0.join("models")).expect("open");
            state
                .update_settings(|s| {
                    s.screen = Screen {
                        name: "attempt".into(),
                        stop_id: Some(stop),
                    }
                })
                .expect("save screen");
            state
                .set_network(NetworkMode::Offline, None)
                .expect("offline");
        }
        let state = AppState::open(&dir.0, &dir.0.join("models")).expect("reopen");
        let s = state.settings();
        assert_eq!(s.screen.name, "attempt");
        assert_eq!(s.screen.stop_id, Some(stop));
        assert_eq!(s.network, NetworkMode::Offline);
        assert!(state.profile().offline);
    }

    #[test]
    fn a_scripted_outage_starts_now_and_lasts_as_asked() {
        let dir = Dir::new("outage");
        let state = AppState::open(&dir.0, &dir.0.join("models")).expect("open");
        let before = state.now_ms();
        let s = state
            .set_network(NetworkMode::Outage, Some(90))
            .expect("outage");
        let o = s.outage.expect("an outage window");
        assert!(o.start_ms >= before);
        assert_eq!(o.end_ms - o.start_ms, 90_000);
        assert_eq!(state.profile().outages, vec![o]);
    }
}
