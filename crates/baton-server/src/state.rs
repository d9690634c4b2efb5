//! `AppState`: what every transport and background worker of one server shares (the engine,
//! the configuration, the workers' handles, the live hubs). Built once by `serve`; one `Arc`,
//! so the clone every request and middleware layer makes is one reference count (cloning the
//! bundle of `Arc`s it used to be, and dropping it, was about 7 % of the server's instructions
//! for a single-message HTTP send).

use std::sync::Arc;
use std::time::Instant;

use baton_engine::Engine;

use crate::api::{metrics, sqs};
use crate::callbacks::Callbacks;
use crate::config::ServerConfig;
use crate::live;
use crate::push::PushManager;
use crate::service::replies;

/// What every handler can reach (the fields of [`AppParts`], through `Deref`).
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of an [`AppState`].
pub struct AppParts {
    pub engine: Arc<dyn Engine>,
    pub config: Arc<ServerConfig>,
    pub node_id: Arc<str>,
    /// The address actually bound (the config may say port 0).
    pub listen: Arc<str>,
    /// Where the wire protocol listens, if it does.
    pub wire_listen: Option<Arc<str>>,
    pub started: Instant,
    pub sqs: Arc<sqs::SqsState>,
    pub http_metrics: Arc<metrics::HttpMetrics>,
    pub push: Arc<PushManager>,
    pub callbacks: Arc<Callbacks>,
    pub sinks: Arc<crate::sinks::SinkManager>,
    /// The schedule firing task's wake-up and figures.
    pub schedules: Arc<crate::schedules::Scheduler>,
    pub outbound: Arc<crate::outbound::OutboundRules>,
    /// The audit trail's counters (`auth::audit`).
    pub audit: Arc<crate::auth::audit::Audit>,
    /// Open long polls and live streams per key and per client address.
    pub caller_limits: Arc<crate::caller_limits::CallerLimits>,
    /// Requests and bytes per second per key and per client address.
    pub rate_limits: Arc<crate::rate_limits::RateLimits>,
    /// The API keys and whether requests are checked (`auth`).
    pub keys: Arc<crate::auth::KeyStore>,
    pub events: Arc<crate::events::Events>,
    /// Live (SSE/WebSocket) connections to topics.
    pub live: Arc<live::LiveHub>,
    /// Requests waiting for their replies.
    pub replies: Arc<replies::Replies>,
    /// Permits for open live streams (`live_streams_max`).
    pub live_streams: Arc<tokio::sync::Semaphore>,
    /// Cancelled when shutdown begins; ends live streams.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Wire-protocol connections upgraded from HTTP (`GET /v1/wire`), which the HTTP server
    /// no longer tracks; shutdown waits for them.
    pub wire_connections: tokio_util::task::TaskTracker,
    /// Connections open on both ports, within `max_connections` and `max_connections_per_ip`.
    pub connections: Arc<crate::connections::ConnectionLimits>,
}
