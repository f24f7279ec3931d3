//! kiroku's HTTP server: Loki's push and query API over the store and the LogQL engine.
//!
//! It decodes and validates pushes (protobuf and JSON), adds `service_name` and
//! `detected_level` as Loki does, appends them to the [`store`], and answers Loki's query
//! and metadata endpoints through [`logql`]. It does not store anything itself, evaluate
//! LogQL, or know the on-disk format.
//!
//! Start reading from:
//! - [`config`]: the options, from flags, environment and YAML;
//! - [`app`]: the router and the state every handler shares;
//! - [`push`]: the ingest path, the hottest code in the product.

pub mod app;
pub mod config;
pub mod detected;
pub mod drilldown;
pub mod error;
pub mod legacy;
pub mod metadata;
pub mod metrics;
pub mod otlp;
pub mod params;
pub mod patterns;
pub mod push;
pub mod query;
pub mod startup;
pub mod status;
pub mod tail;
pub mod tenant;
pub mod volume;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

pub use config::Args;
use config::Config;
use startup::StartupError;

/// Runs `kiroku server` until SIGTERM or SIGINT, then stops taking requests, lets the ones
/// in flight finish, closes the store and returns.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = Config::load(&args)?;
    startup::init_logging(&config);
    startup::check_data_dir(&config.data_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .max_blocking_threads(64)
        .thread_name("kiroku")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, started))
}

/// A modest runtime: the push path is cheap per request and queries run on blocking
/// threads, so more workers than cores (or than four) buy nothing but memory.
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// How long shutdown may spend writing the heads out; the rest replays from the WAL.
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(20);

async fn serve(config: Config, started: Instant) -> anyhow::Result<()> {
    let mut store_config = store::StoreConfig::new(config.data_dir.clone());
    store_config.fsync = config.fsync;
    store_config.retention = config.retention_nanos();
    store_config.retention_max_disk = match config.retention_max_disk {
        config::DiskLimit::Bytes(b) => store::DiskBudget::Bytes(b.0),
        config::DiskLimit::KeepFreePercent(p) => store::DiskBudget::FreePercent(p),
    };
    store_config.compaction = config.compaction;
    // Parts a compaction replaced stay in the bucket until every instance has listed it
    // again, several times over.
    store_config.replaced_part_grace = store_config.replaced_part_grace.max(
        config
            .storage_list_interval
            .as_std()
            .checked_mul(3)
            .unwrap_or(std::time::Duration::MAX),
    );
    store_config.object_store = config.object_store()?;
    if let Some(bucket) = &store_config.object_store {
        config::storage::probe(bucket).await?;
    }
    let store = store::Store::open(store_config)
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let app = Arc::new(app::App::new(config, store));
    let listing = keep_listing(&app);
    tracing::info!(
        %addr,
        data_dir = %app.config.data_dir.display(),
        storage = %storage_name(&app.config),
        auth = ?app.config.auth,
        retention = %app.config.retention,
        startup_ms = started.elapsed().as_secs_f64() * 1000.0,
        "kiroku server ready"
    );
    axum::serve(listener, app::router(Arc::clone(&app)))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    if let Some((stop, task)) = listing {
        let _ = stop.send(());
        // A listing in progress finishes first; a long compaction does not hold up the
        // shutdown (closing the store stops it between merges).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
    }
    tracing::info!("stopped taking requests; writing out the store");
    let closed = tokio::task::spawn_blocking(move || app.store.close(SHUTDOWN_FLUSH)).await;
    match closed {
        Ok(Ok(())) => {}
        // Not fatal: whatever was not written out is still in the WAL and replays at start.
        Ok(Err(e)) => tracing::warn!(error = %e, "store not fully written out at shutdown"),
        Err(e) => tracing::warn!(error = %e, "store shutdown task failed"),
    }
    tracing::info!("kiroku server stopped");
    Ok(())
}

fn storage_name(config: &Config) -> String {
    if config.storage_url.trim().is_empty() {
        "local".into()
    } else {
        config.storage_url.clone()
    }
}

/// With parts in a bucket, lists it every `storage_list_interval` (the store's own upkeep
/// runs every 30 s), so that data files other instances wrote become queryable here soon.
/// Returns the means to stop it, or `None` with local parts.
fn keep_listing(
    app: &Arc<app::App>,
) -> Option<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    if app.config.storage_url.trim().is_empty() {
        return None;
    }
    let every = app.config.storage_list_interval.as_std();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let app = Arc::clone(app);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate: the store listed at open
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tick.tick() => {}
            }
            let app = Arc::clone(&app);
            // Errors are logged by the store; the next tick retries.
            let _ = tokio::task::spawn_blocking(move || app.store.maintain()).await;
        }
    });
    Some((stop, task))
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}
