//! # baton-server
//!
//! Baton's HTTP server as a library: the native JSON API over an [`Engine`], configuration,
//! background work and graceful shutdown. The `baton` binary calls [`run`]; tests call
//! [`serve`] with an engine and a clock of their choosing.
//!
//! Not here: queue semantics (`baton-core`), storage (`baton-engine` and the storage crate),
//! wire shapes (`baton-proto`).
//!
//! Shutdown order: stop accepting connections, end waiting long polls (they answer with what
//! they have), let in-flight requests finish for at most `shutdown_grace_ms`, stop background
//! tasks, return.

pub mod api;
pub mod config;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::{Engine, EngineConfig, EngineError, LocalEngine, SystemClock};
use baton_storage::RealFs;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use api::AppState;
pub use config::{ConfigError, EngineKind, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("server I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage: {0}")]
    Storage(#[from] EngineError),
}

/// Reads `data_dir` as start-up would, changing nothing (`baton storage verify`).
pub fn verify_storage(
    data_dir: &std::path::Path,
) -> Result<baton_engine::VerifyReport, baton_storage::RecoveryError> {
    baton_engine::verify(&RealFs, data_dir, baton_core::QueueLimits::default())
}

/// Runs the broker with the engine the configuration selects until `shutdown` completes.
pub async fn run(
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let engine_config = EngineConfig {
        limits: config.queue_limits(),
        max_waiting_receives: config.max_waiting_receives,
    };
    let clock = Arc::new(SystemClock);
    let engine: Arc<dyn Engine> = match config.engine {
        EngineKind::Memory => Arc::new(LocalEngine::in_memory(clock, engine_config)),
        EngineKind::Embedded => Arc::new(LocalEngine::durable(
            clock,
            engine_config,
            Arc::new(RealFs),
            config.storage()?,
            true,
        )?),
    };
    serve(config, engine, listener, shutdown).await
}

/// Serves `engine` on `listener` until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    engine: Arc<dyn Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    let config = Arc::new(config);
    let local_addr = listener.local_addr()?;
    let state = AppState {
        engine: engine.clone(),
        config: config.clone(),
        node_id: Arc::from(config.node_id.clone().unwrap_or_else(host_name)),
        listen: Arc::from(local_addr.to_string()),
        started: Instant::now(),
        sqs: Arc::default(),
        http_metrics: Arc::default(),
        live_streams: Arc::new(tokio::sync::Semaphore::new(
            config.live_streams_max as usize,
        )),
        shutdown: CancellationToken::new(),
    };
    let stop = state.shutdown.clone();
    let mut tasks = JoinSet::new();
    tasks.spawn(tick_loop(
        engine.clone(),
        Duration::from_millis(config.tick_interval_ms),
        stop.clone(),
    ));

    let app = api::router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown({
        let stop = stop.clone();
        async move { stop.cancelled().await }
    });
    let server = tokio::spawn(async move { server.await });
    tracing::info!(listen = %local_addr, engine = engine.kind(), "baton serving");

    // Recovery runs while the server already answers: `/ready` says when it is done.
    let recovery = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.recover().await })
    };
    let mut failed = None;
    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => {}
        recovered = recovery => match recovered {
            Ok(Ok(())) => shutdown.await,
            Ok(Err(error)) => failed = Some(error),
            Err(join_error) => failed = Some(EngineError::StorageUnavailable { reason: join_error.to_string() }),
        },
    }
    if let Some(error) = &failed {
        tracing::error!(%error, "recovery failed; stopping");
    }
    tracing::info!("shutting down: no new connections, ending long polls");
    engine.begin_shutdown();
    stop.cancel();
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join_error)) => tracing::error!(%join_error, "server task failed"),
        Err(_) => tracing::warn!(
            grace_ms = config.shutdown_grace_ms,
            "requests still running after the grace period; closing"
        ),
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("stopped");
    match failed {
        Some(error) => Err(ServerError::Storage(error)),
        None => Ok(()),
    }
}

/// Applies expiries and dead-letter moves on idle queues; runs until `stop`.
async fn tick_loop(engine: Arc<dyn Engine>, interval: Duration, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => engine.tick().await,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "baton".to_string())
}
