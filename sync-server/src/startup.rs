//! Building and running the server on an already-bound listener, so tests bind port 0 themselves.

use crate::clock::Clock;
use crate::service::App;
use crate::settings::Settings;
use crate::store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves `app` (its dashboard from its settings) on `listener` until `shutdown` completes.
pub async fn serve<S: Store>(
    listener: TcpListener,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(crate::live::peers::relay_to_peers(app.clone()));
    let router = crate::http::router(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Wraps an opened `store` in an [`App`] on `clock` with `settings`.
pub fn app<S: Store>(store: S, clock: Arc<dyn Clock>, settings: Settings) -> Arc<App<S>> {
    Arc::new(App::with_settings(Arc::new(store), clock, settings))
}

/// Opens the SQLite database at `database_url` (`sqlite://PATH` or `sqlite::memory:`) and wraps
/// it in an [`App`] on `clock`: the in-process server of the simulator and the tests.
pub fn build_app(
    database_url: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<App<crate::store::sqlite::SqliteStore>>> {
    let store = crate::store::open_sqlite(database_url)
        .map_err(|e| anyhow::anyhow!("cannot open database {database_url}: {e}"))?;
    Ok(Arc::new(App::new(Arc::new(store), clock)))
}
