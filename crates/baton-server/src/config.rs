//! Server configuration: data, validated once at start-up, passed explicitly.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`), environment
//! variables `BATON_<KEY>` (the TOML key in upper case, e.g. `BATON_LISTEN`,
//! `BATON_MAX_REQUEST_BYTES`), then command-line flags (applied by the binary).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use baton_core::limits::{IN_FLIGHT_MAX_FIFO, IN_FLIGHT_MAX_STANDARD};
use baton_core::QueueLimits;
use baton_engine::StorageConfig;
use baton_storage::SyncPolicy;
use serde::Deserialize;

mod cluster;
mod connections;
mod encryption;
mod locks;
mod schedules;

pub use cluster::RedisDurability;

/// Every knob with its unit and its range in the comment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:9324`.
    pub listen: String,
    /// A dedicated port for the framed TCP protocol (docs/wire-protocol.md), which is always
    /// served on the HTTP port too (`GET /v1/wire`, an HTTP upgrade): `off` (the default), an
    /// address, or `auto` (the HTTP address with the next port, or port 0 when HTTP has port 0).
    pub wire_listen: String,
    /// Requests of one wire-protocol connection being served or waiting to be written; when
    /// reached, the server reads no more of that connection's requests until an answer is
    /// written. 1..=1000000.
    pub wire_max_inflight: u32,
    /// Where the embedded engine keeps its data. Default `./baton-data`.
    pub data_dir: PathBuf,
    /// This node's id in `/v1/server`; default: the host name.
    pub node_id: Option<String>,
    /// Largest request body, refused with 413 before it is read whole. 1024..=1073741824.
    pub max_request_bytes: u64,
    /// How long shutdown waits for in-flight requests. 0..=600000.
    pub shutdown_grace_ms: u64,
    /// Long polls waiting at once, over all queues; beyond it receives answer 429. 1..=1000000.
    pub max_waiting_receives: u32,
    /// In-flight messages per standard queue (SQS: 120000). 1..=10000000.
    pub in_flight_max_standard: u32,
    /// In-flight messages per FIFO queue (SQS: 20000). 1..=10000000.
    pub in_flight_max_fifo: u32,
    /// How long a finished message's status stays queryable. 0..=2592000000 (30 days).
    pub status_retention_ms: u64,
    /// Finished-message status records kept per queue. 0..=10000000.
    pub status_records_max: u32,
    /// How often the background sweep applies expiries and dead-letter moves. 10..=60000.
    pub tick_interval_ms: u64,
    /// `embedded` (durable, the default), `memory` (nothing survives a restart) or `redis`
    /// (cluster mode: queues in a Redis Cluster shared by several nodes; `redis_*` below).
    pub engine: EngineKind,
    /// Cluster mode: the Redis Cluster's seed nodes, `redis://host:port` separated by commas;
    /// required with `engine = "redis"`.
    pub redis_url: String,
    /// Cluster mode: the prefix of every key, so several deployments share one cluster. 1..=64
    /// characters of `[A-Za-z0-9_.-]`. Default `baton`.
    pub redis_namespace: String,
    /// Cluster mode: replicas that must confirm each write (`WAIT`) before it is answered.
    /// 0..=16.
    pub redis_wait_replicas: u32,
    /// Cluster mode: how long a write waits for them. 1..=60000.
    pub redis_wait_timeout_ms: u64,
    /// Cluster mode: `strict` (refuse to start on a deployment that cannot keep acknowledged
    /// writes, the default) or `relaxed` (log a warning and start).
    pub redis_durability: RedisDurability,
    /// When the write-ahead log syncs: `always` (before acknowledging, the default),
    /// `interval=<1..60000 ms>` or `never`.
    pub fsync: String,
    /// Size at which a log segment is closed and a new one started. 1048576..=1073741824.
    pub segment_bytes: u64,
    /// Log growth since the last checkpoint that triggers a new one (also at least twice the
    /// live data). 4096..=68719476736.
    pub checkpoint_bytes_min: u64,
    /// Cut the log at the first corrupt record instead of refusing to start (loses what
    /// follows it; see `baton storage verify`).
    pub repair: bool,
    /// The disk-free alarm: below this many free bytes on the data directory's file system,
    /// sends, publishes and stream appends are refused (507 `disk_low`) while consumers go on.
    /// Default: three log segments. 0 switches the alarm off. 0..=1125899906842624 (1 PiB).
    pub disk_free_min: Option<u64>,
    /// The emergency reserve: a file of this many bytes in the data directory that a log
    /// write on a full disk gives up to finish (put back once there is room). Default: one
    /// log segment. 0..=17179869184 (16 GiB).
    pub disk_reserve_bytes: Option<u64>,
    /// Encryption at rest (`config/encryption.rs`, docs/security.md): the key file whose last
    /// key seals every frame of the log, the checkpoints and the stream logs with AES-256-GCM.
    pub encryption_key_file: Option<PathBuf>,
    /// The memory alarm: while the messages the broker holds take this many bytes or more,
    /// sends, publishes and stream appends are refused (503 `memory_pressure`) while
    /// consumers go on; writes are accepted again once it falls a twentieth below. Default:
    /// `memory_high_watermark_percent` of the machine's memory, or of the cgroup's limit when
    /// lower. 0 switches the alarm off. 0..=1125899906842624 (1 PiB).
    pub memory_high_watermark: Option<u64>,
    /// The default `memory_high_watermark`, in percent of the memory available. 1..=100.
    pub memory_high_watermark_percent: u32,
    /// Completion-callback attempts after the first before a callback is parked as failed
    /// (manual retry only). 0..=100.
    pub callback_max_retries: u32,
    /// Delay between callback attempts. 1..=43200000 (12 h).
    pub callback_retry_delay_ms: u64,
    /// How long a callback target may take to answer. 1..=300000.
    pub callback_timeout_ms: u64,
    /// Callbacks in flight at once. 1..=1024.
    pub callback_concurrency: u32,
    /// Hosts push and callback URLs may target: comma-separated host names (`example.com`,
    /// `.example.com` for subdomains) and networks (`10.0.0.0/8`, `::1/128`). Empty (the
    /// default): every host not denied.
    pub outbound_allow: String,
    /// Hosts and networks push and callback URLs may not target; wins over the allow list.
    /// Default: link-local networks (`169.254.0.0/16,fe80::/10`, where cloud metadata
    /// services live). Loopback is allowed by default so local workers and tests work.
    pub outbound_deny: String,
    /// Whether push and callback targets may be loopback, private or link-local addresses:
    /// `auto` (the default) refuses them while the server listens beyond loopback and allows
    /// them on loopback only; `deny` always refuses, `allow` never does. Networks named in
    /// `outbound_allow` are allowed either way.
    pub outbound_private: String,
    /// Failed push deliveries to one host within `push_breaker_window_ms` that open its
    /// circuit breaker. 1..=100000.
    pub push_breaker_failures: u32,
    /// The window failures are counted in. 1..=3600000.
    pub push_breaker_window_ms: u64,
    /// How long an open breaker pauses deliveries before one probe goes out. 1..=3600000.
    pub push_breaker_cooldown_ms: u64,
    /// Workers of the event API's built-in event processor (`/api/events`); 0 switches it
    /// off. 0..=256.
    pub events_workers: u32,
    /// Simulated processing time of a NOTIFICATION event. 0..=600000.
    pub events_notification_ms: u64,
    /// Simulated processing time of a DATA_PROCESSING event. 0..=600000.
    pub events_data_processing_ms: u64,
    /// Simulated processing time of a HEAVY_TASK event. 0..=600000.
    pub events_heavy_task_ms: u64,
    /// Most events one performance test may create. 1..=1000000.
    pub events_performance_test_max: u32,
    /// How long a performance test waits for its events to be processed. 0..=600000.
    pub events_performance_test_wait_ms: u64,
    /// Messages buffered per live (SSE/WebSocket) connection; beyond it messages are dropped
    /// for that connection only, and counted. 1..=1000000.
    pub live_buffer_messages: u32,
    /// Live connections at once, over all topics; beyond it new ones answer 429. 1..=1000000.
    pub live_connections_max: u32,
    /// Requests (`POST /v1/queues/{q}/request`) waiting for replies at once; beyond it new
    /// ones answer 429. 1..=1000000.
    pub max_pending_requests: u32,
    /// Longest `timeout_ms` a request may wait for its reply. 1..=3600000.
    pub request_timeout_ms_max: u64,
    /// Live streams (`GET /v1/live/stats`, the dashboard) open at once; beyond it 429.
    /// 1..=10000.
    pub live_streams_max: u32,
    /// Lock names kept at once, held or remembered for their last token. 1..=10000000.
    pub locks_max: u32,
    /// Longest lock name, in characters. 1..=1024.
    pub lock_name_chars_max: u32,
    /// Shortest lock TTL. 1..=`lock_ttl_ms_max`.
    pub lock_ttl_ms_min: u64,
    /// Longest lock TTL. `lock_ttl_ms_min`..=604800000 (7 days).
    pub lock_ttl_ms_max: u64,
    /// Lock acquires waiting at once (`wait_ms`); beyond it 429. 1..=1000000.
    pub lock_waiters_max: u32,
    /// Longest `wait_ms` of one lock acquire. 0..=3600000.
    pub lock_wait_ms_max: u64,
    /// Sinks (`/v1/sinks`) defined at once; beyond it 409 `limit_reached`. 1..=1000.
    pub sinks_max: u32,
    /// A failing sink's first retry delay, doubled per failure. 1..=`sink_retry_max_ms`.
    pub sink_retry_base_ms: u64,
    /// The cap of a failing sink's retry delay. `sink_retry_base_ms`..=3600000.
    pub sink_retry_max_ms: u64,
    /// Schedules kept at once. 1..=1000000.
    pub schedules_max: u32,
    /// Longest schedule name, in characters. 1..=100.
    pub schedule_name_chars_max: u32,
    /// Largest message of a schedule (body, attributes and keys). 1..=16777216.
    pub schedule_message_bytes_max: u32,
    /// How late a tick may fire and still count as on time rather than missed. 0..=86400000.
    pub schedule_missed_grace_ms: u64,
    /// Missed ticks one pass fires per schedule under `missed = "all"`. 1..=100000.
    pub schedule_catch_up_max: u32,
    /// Start even when listening beyond loopback without any API key (everyone may do
    /// everything). Default false: such a start is refused.
    pub insecure: bool,
    /// Serve `/metrics` without a key while keys exist (otherwise it needs `admin` on
    /// `server`, since its labels name every queue).
    pub metrics_public: bool,
    /// Serve the SQS API without checking SigV4 signatures or permissions while keys exist (by
    /// default every SQS request must be signed with a key's SQS credentials).
    pub sqs_without_auth: bool,
    /// Serve the framed protocol without an auth frame while keys exist (by default a
    /// connection's requests answer `unauthorized` until it authenticates).
    pub wire_without_auth: bool,
    /// Requests per second each API key may make (a token bucket; 429 `rate_limited` with
    /// `Retry-After` beyond); 0 no limit. 0..=10000000.
    pub key_requests_per_s: u32,
    /// Request and answer bytes per second each API key may move; 0 no limit.
    pub key_bytes_per_s: u64,
    /// Requests per second each client IP address may make; 0 no limit. 0..=10000000.
    pub client_requests_per_s: u32,
    /// Request and answer bytes per second each client IP address may move; 0 no limit.
    pub client_bytes_per_s: u64,
    /// How much of its rate a caller may use at once after a pause (the buckets' size), in
    /// ms of the rate. 1..=3600000.
    pub rate_burst_ms: u64,
    /// Long polls (receives waiting for messages) one API key / one client address may hold
    /// at once; beyond, 429 `too_many_waiters`. 0 no limit.
    pub key_long_polls_max: u32,
    pub client_long_polls_max: u32,
    /// Live streams (SSE, WebSocket) one API key / one client address may hold open at once;
    /// beyond, 429 `too_many_live_streams`. 0 no limit.
    pub key_live_streams_max: u32,
    pub client_live_streams_max: u32,
    /// API keys kept at once. 1..=100000.
    pub keys_max: u32,
    /// How often the keys are re-read from the engine, for changes made by other nodes of a
    /// cluster; 0 never. 0..=3600000.
    pub keys_refresh_ms: u64,
    /// TLS on both ports (`config/connections.rs`, docs/security.md): the PEM certificate
    /// chain and its private key, both or neither; reloaded when they change and on SIGHUP.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// With TLS: require client certificates signed by a CA of this PEM file.
    pub tls_client_ca_file: Option<PathBuf>,
    /// How often the TLS files are read for changes; 0: only on SIGHUP. 0..=3600000.
    pub tls_reload_interval_ms: u64,
    /// A request head (HTTP/1.1, from its first byte), a TLS handshake, a connection's first
    /// bytes must arrive within this. 100..=600000.
    pub header_read_timeout_ms: u64,
    /// A connection without a request in flight or traffic for this long is closed.
    /// 100..=86400000.
    pub idle_timeout_ms: u64,
    /// Request line and headers (HTTP/1.1), header list (HTTP/2), at most; beyond 431.
    /// 1024..=1048576.
    pub max_header_bytes: u32,
    /// Headers of one request at most; beyond 431. 1..=10000.
    pub max_header_count: u32,
    /// Connections open at once over both ports; beyond, new ones are closed at once.
    /// 1..=10000000.
    pub max_connections: u32,
    /// Connections open at once from one client address; beyond, closed at once.
    /// 1..=`max_connections`.
    pub max_connections_per_ip: u32,
    /// The token `BATON_ADMIN_KEY` gives: installed at start as the key `admin` with every
    /// permission. Only from the environment, never from the file.
    #[serde(skip)]
    pub admin_key: Option<AdminKey>,
}

/// A secret that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminKey(String);

impl AdminKey {
    pub fn new(token: String) -> Self {
        AdminKey(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminKey(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Embedded,
    Memory,
    Redis,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = QueueLimits::default();
        ServerConfig {
            listen: "127.0.0.1:9324".to_string(),
            wire_listen: "off".to_string(),
            wire_max_inflight: 4096,
            data_dir: PathBuf::from("baton-data"),
            node_id: None,
            max_request_bytes: 16 * 1024 * 1024,
            shutdown_grace_ms: 10_000,
            max_waiting_receives: 10_000,
            in_flight_max_standard: IN_FLIGHT_MAX_STANDARD,
            in_flight_max_fifo: IN_FLIGHT_MAX_FIFO,
            status_retention_ms: limits.status_retention_ms,
            status_records_max: limits.status_records_max,
            tick_interval_ms: 100,
            engine: EngineKind::Embedded,
            redis_url: String::new(),
            redis_namespace: cluster::NAMESPACE_DEFAULT.to_string(),
            redis_wait_replicas: cluster::WAIT_REPLICAS_DEFAULT,
            redis_wait_timeout_ms: cluster::WAIT_TIMEOUT_MS_DEFAULT,
            redis_durability: RedisDurability::Strict,
            fsync: "always".to_string(),
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_bytes_min: 256 * 1024 * 1024,
            repair: false,
            disk_free_min: None,
            disk_reserve_bytes: None,
            encryption_key_file: None,
            memory_high_watermark: None,
            memory_high_watermark_percent: 40,
            callback_max_retries: 3,
            callback_retry_delay_ms: 5_000,
            callback_timeout_ms: 10_000,
            callback_concurrency: 16,
            outbound_allow: String::new(),
            outbound_deny: "169.254.0.0/16,fe80::/10".to_string(),
            outbound_private: "auto".to_string(),
            push_breaker_failures: 5,
            push_breaker_window_ms: 30_000,
            push_breaker_cooldown_ms: 5_000,
            events_workers: 4,
            events_notification_ms: 10,
            events_data_processing_ms: 50,
            events_heavy_task_ms: 200,
            events_performance_test_max: 100_000,
            events_performance_test_wait_ms: 120_000,
            live_buffer_messages: 1024,
            live_connections_max: 1000,
            max_pending_requests: 10_000,
            request_timeout_ms_max: 300_000,
            live_streams_max: 64,
            locks_max: locks::DEFAULTS.limits.locks_max,
            lock_name_chars_max: locks::DEFAULTS.limits.name_chars_max,
            lock_ttl_ms_min: locks::DEFAULTS.limits.ttl_ms_min,
            lock_ttl_ms_max: locks::DEFAULTS.limits.ttl_ms_max,
            lock_waiters_max: locks::DEFAULTS.waiters_max,
            lock_wait_ms_max: locks::DEFAULTS.wait_ms_max,
            sinks_max: 64,
            sink_retry_base_ms: 200,
            sink_retry_max_ms: 30_000,
            schedules_max: schedules::DEFAULTS.schedules_max,
            schedule_name_chars_max: schedules::DEFAULTS.name_chars_max,
            schedule_message_bytes_max: schedules::DEFAULTS.message_bytes_max,
            schedule_missed_grace_ms: schedules::DEFAULTS.missed_grace_ms,
            schedule_catch_up_max: schedules::DEFAULTS.catch_up_max,
            insecure: false,
            metrics_public: false,
            sqs_without_auth: false,
            wire_without_auth: false,
            key_requests_per_s: 0,
            key_bytes_per_s: 0,
            client_requests_per_s: 0,
            client_bytes_per_s: 0,
            rate_burst_ms: 1_000,
            key_long_polls_max: 0,
            client_long_polls_max: 0,
            key_live_streams_max: 0,
            client_live_streams_max: 0,
            keys_max: 1000,
            keys_refresh_ms: 5_000,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
            tls_reload_interval_ms: connections::TLS_RELOAD_INTERVAL_MS_DEFAULT,
            header_read_timeout_ms: connections::DEFAULTS.header_read_timeout_ms,
            idle_timeout_ms: connections::DEFAULTS.idle_timeout_ms,
            max_header_bytes: connections::DEFAULTS.max_header_bytes,
            max_header_count: connections::DEFAULTS.max_header_count,
            max_connections: connections::DEFAULTS.max_connections,
            max_connections_per_ip: connections::DEFAULTS.max_connections_per_ip,
            admin_key: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The TOML keys, which are also the environment variables' suffixes.
const KEYS: &[&str] = &[
    "listen",
    "wire_listen",
    "wire_max_inflight",
    "data_dir",
    "node_id",
    "max_request_bytes",
    "shutdown_grace_ms",
    "max_waiting_receives",
    "in_flight_max_standard",
    "in_flight_max_fifo",
    "status_retention_ms",
    "status_records_max",
    "tick_interval_ms",
    "engine",
    "redis_url",
    "redis_namespace",
    "redis_wait_replicas",
    "redis_wait_timeout_ms",
    "redis_durability",
    "fsync",
    "segment_bytes",
    "checkpoint_bytes_min",
    "repair",
    "disk_free_min",
    "disk_reserve_bytes",
    "encryption_key_file",
    "memory_high_watermark",
    "memory_high_watermark_percent",
    "callback_max_retries",
    "callback_retry_delay_ms",
    "callback_timeout_ms",
    "callback_concurrency",
    "outbound_allow",
    "outbound_deny",
    "outbound_private",
    "push_breaker_failures",
    "push_breaker_window_ms",
    "push_breaker_cooldown_ms",
    "events_workers",
    "events_notification_ms",
    "events_data_processing_ms",
    "events_heavy_task_ms",
    "events_performance_test_max",
    "events_performance_test_wait_ms",
    "live_buffer_messages",
    "live_connections_max",
    "max_pending_requests",
    "request_timeout_ms_max",
    "live_streams_max",
    "locks_max",
    "lock_name_chars_max",
    "lock_ttl_ms_min",
    "lock_ttl_ms_max",
    "lock_waiters_max",
    "lock_wait_ms_max",
    "sinks_max",
    "sink_retry_base_ms",
    "sink_retry_max_ms",
    "schedules_max",
    "schedule_name_chars_max",
    "schedule_message_bytes_max",
    "schedule_missed_grace_ms",
    "schedule_catch_up_max",
    "insecure",
    "metrics_public",
    "sqs_without_auth",
    "wire_without_auth",
    "key_requests_per_s",
    "key_bytes_per_s",
    "client_requests_per_s",
    "client_bytes_per_s",
    "rate_burst_ms",
    "key_long_polls_max",
    "client_long_polls_max",
    "key_live_streams_max",
    "client_live_streams_max",
    "keys_max",
    "keys_refresh_ms",
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "tls_reload_interval_ms",
    "header_read_timeout_ms",
    "idle_timeout_ms",
    "max_header_bytes",
    "max_header_count",
    "max_connections",
    "max_connections_per_ip",
];

impl ServerConfig {
    /// Defaults, overlaid with `file` (if any), overlaid with `BATON_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in KEYS {
            let var = format!("BATON_{}", key.to_ascii_uppercase());
            if let Some(raw) = env.get(&var) {
                let value = match (raw.parse::<i64>(), raw.as_str()) {
                    (Ok(number), _) => toml::Value::Integer(number),
                    (_, "true") => toml::Value::Boolean(true),
                    (_, "false") => toml::Value::Boolean(false),
                    _ => toml::Value::String(raw.clone()),
                };
                table.insert((*key).to_string(), value);
            }
        }
        let mut config: ServerConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.admin_key = env
            .get("BATON_ADMIN_KEY")
            .filter(|token| !token.is_empty())
            .map(|token| AdminKey::new(token.clone()));
        config.validate()?;
        Ok(config)
    }

    /// Checks every range; called by `load` and again by `run` after flags were applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listen = self.listen_addr()?;
        self.wire_addr(listen)?;
        for (key, value, lo, hi) in self.ranges() {
            check_range(key, value, lo, hi)?;
        }
        self.sync_policy()?;
        self.outbound_rules(true)?;
        self.validate_locks()?;
        self.validate_schedules()?;
        self.validate_cluster()?;
        self.validate_connections()?;
        self.keyring()?;
        if let Some(token) = &self.admin_key {
            crate::auth::rules::check_token(token.expose()).map_err(|reason| {
                ConfigError::Invalid {
                    key: "BATON_ADMIN_KEY",
                    reason,
                }
            })?;
        }
        Ok(())
    }

    /// The limits of open long polls and live streams per key and per client address.
    pub fn caller_limits(&self) -> crate::caller_limits::CallerLimits {
        crate::caller_limits::CallerLimits::new(
            (self.key_long_polls_max, self.client_long_polls_max),
            (self.key_live_streams_max, self.client_live_streams_max),
        )
    }

    /// The rate limits per key and per client address.
    pub fn rate_limits(&self) -> crate::rate_limits::RateLimits {
        use crate::rate_limits::{Rate, RateLimits};
        RateLimits::new(
            Rate {
                requests_per_s: self.key_requests_per_s,
                bytes_per_s: self.key_bytes_per_s,
            },
            Rate {
                requests_per_s: self.client_requests_per_s,
                bytes_per_s: self.client_bytes_per_s,
            },
            std::time::Duration::from_millis(self.rate_burst_ms),
        )
    }

    /// Every numeric setting with its allowed range, in the order they are checked:
    /// `(key, value, lowest, highest)`.
    fn ranges(&self) -> Vec<(&'static str, u64, u64, u64)> {
        let mut ranges = vec![
            ("max_request_bytes", self.max_request_bytes, 1024, 1 << 30),
            ("shutdown_grace_ms", self.shutdown_grace_ms, 0, 600_000),
            ("keys_max", u64::from(self.keys_max), 1, 100_000),
            ("keys_refresh_ms", self.keys_refresh_ms, 0, 3_600_000),
            (
                "key_requests_per_s",
                u64::from(self.key_requests_per_s),
                0,
                10_000_000,
            ),
            ("key_bytes_per_s", self.key_bytes_per_s, 0, u64::MAX),
            (
                "client_requests_per_s",
                u64::from(self.client_requests_per_s),
                0,
                10_000_000,
            ),
            ("client_bytes_per_s", self.client_bytes_per_s, 0, u64::MAX),
            ("rate_burst_ms", self.rate_burst_ms, 1, 3_600_000),
            (
                "key_long_polls_max",
                u64::from(self.key_long_polls_max),
                0,
                1_000_000,
            ),
            (
                "client_long_polls_max",
                u64::from(self.client_long_polls_max),
                0,
                1_000_000,
            ),
            (
                "key_live_streams_max",
                u64::from(self.key_live_streams_max),
                0,
                100_000,
            ),
            (
                "client_live_streams_max",
                u64::from(self.client_live_streams_max),
                0,
                100_000,
            ),
            (
                "max_waiting_receives",
                u64::from(self.max_waiting_receives),
                1,
                1_000_000,
            ),
            (
                "in_flight_max_standard",
                u64::from(self.in_flight_max_standard),
                1,
                10_000_000,
            ),
            (
                "in_flight_max_fifo",
                u64::from(self.in_flight_max_fifo),
                1,
                10_000_000,
            ),
            (
                "status_retention_ms",
                self.status_retention_ms,
                0,
                30 * 24 * 3600 * 1000,
            ),
            (
                "status_records_max",
                u64::from(self.status_records_max),
                0,
                10_000_000,
            ),
            ("tick_interval_ms", self.tick_interval_ms, 10, 60_000),
            ("segment_bytes", self.segment_bytes, 1 << 20, 1 << 30),
            (
                "checkpoint_bytes_min",
                self.checkpoint_bytes_min,
                4096,
                1 << 36,
            ),
            ("disk_free_min", self.disk_free_min(), 0, 1 << 50),
            ("disk_reserve_bytes", self.disk_reserve_bytes(), 0, 1 << 34),
            (
                "memory_high_watermark",
                self.memory_high_watermark.unwrap_or(0),
                0,
                1 << 50,
            ),
            (
                "memory_high_watermark_percent",
                u64::from(self.memory_high_watermark_percent),
                1,
                100,
            ),
            (
                "live_buffer_messages",
                u64::from(self.live_buffer_messages),
                1,
                1_000_000,
            ),
            (
                "live_connections_max",
                u64::from(self.live_connections_max),
                1,
                1_000_000,
            ),
            (
                "max_pending_requests",
                u64::from(self.max_pending_requests),
                1,
                1_000_000,
            ),
            (
                "request_timeout_ms_max",
                self.request_timeout_ms_max,
                1,
                3_600_000,
            ),
            (
                "live_streams_max",
                u64::from(self.live_streams_max),
                1,
                10_000,
            ),
            (
                "wire_max_inflight",
                u64::from(self.wire_max_inflight),
                1,
                1_000_000,
            ),
            (
                "callback_max_retries",
                u64::from(self.callback_max_retries),
                0,
                100,
            ),
            (
                "callback_retry_delay_ms",
                self.callback_retry_delay_ms,
                1,
                baton_core::limits::VISIBILITY_TIMEOUT_MS_MAX,
            ),
            ("callback_timeout_ms", self.callback_timeout_ms, 1, 300_000),
            (
                "callback_concurrency",
                u64::from(self.callback_concurrency),
                1,
                1024,
            ),
            (
                "push_breaker_failures",
                u64::from(self.push_breaker_failures),
                1,
                100_000,
            ),
            (
                "push_breaker_window_ms",
                self.push_breaker_window_ms,
                1,
                3_600_000,
            ),
            (
                "push_breaker_cooldown_ms",
                self.push_breaker_cooldown_ms,
                1,
                3_600_000,
            ),
            ("events_workers", u64::from(self.events_workers), 0, 256),
            ("sinks_max", u64::from(self.sinks_max), 1, 1_000),
            ("sink_retry_max_ms", self.sink_retry_max_ms, 1, 3_600_000),
            (
                "sink_retry_base_ms",
                self.sink_retry_base_ms,
                1,
                self.sink_retry_max_ms,
            ),
            (
                "events_performance_test_max",
                u64::from(self.events_performance_test_max),
                1,
                1_000_000,
            ),
        ];
        for (key, value) in [
            ("events_notification_ms", self.events_notification_ms),
            ("events_data_processing_ms", self.events_data_processing_ms),
            ("events_heavy_task_ms", self.events_heavy_task_ms),
            (
                "events_performance_test_wait_ms",
                self.events_performance_test_wait_ms,
            ),
        ] {
            ranges.push((key, value, 0, 600_000));
        }
        ranges
    }

    /// The outbound allow/deny lists, parsed, with the private-address guard on as
    /// `outbound_private` says for a server that listens on loopback only (`loopback_only`)
    /// or not.
    pub fn outbound_rules(
        &self,
        loopback_only: bool,
    ) -> Result<crate::outbound::OutboundRules, ConfigError> {
        let refuse_private = match self.outbound_private.as_str() {
            "auto" => !loopback_only,
            "deny" => true,
            "allow" => false,
            other => {
                return Err(ConfigError::Invalid {
                    key: "outbound_private",
                    reason: format!("{other:?} is not auto, deny or allow"),
                })
            }
        };
        crate::outbound::OutboundRules::parse(&self.outbound_allow, &self.outbound_deny)
            .map(|rules| rules.refusing_private(refuse_private))
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })
    }

    pub fn sync_policy(&self) -> Result<SyncPolicy, ConfigError> {
        self.fsync.parse().map_err(|reason| ConfigError::Invalid {
            key: "fsync",
            reason,
        })
    }

    /// The embedded engine's storage settings.
    pub fn storage(&self) -> Result<StorageConfig, ConfigError> {
        Ok(StorageConfig {
            data_dir: self.data_dir.clone(),
            sync: self.sync_policy()?,
            segment_bytes_max: self.segment_bytes,
            checkpoint_bytes_min: self.checkpoint_bytes_min,
            repair: self.repair,
            disk_free_min_bytes: self.disk_free_min(),
            disk_reserve_bytes: self.disk_reserve_bytes(),
            keys: self.keyring()?,
        })
    }

    /// `disk_free_min`, or its default of a few segments.
    pub fn disk_free_min(&self) -> u64 {
        self.disk_free_min
            .unwrap_or(baton_engine::DISK_FREE_MIN_SEGMENTS.saturating_mul(self.segment_bytes))
    }

    /// `memory_high_watermark`, or its default share of the memory available (off when that
    /// cannot be read).
    pub fn memory_high_watermark(&self) -> u64 {
        self.memory_high_watermark.unwrap_or_else(|| {
            baton_engine::available_memory().map_or(0, |available| {
                available / 100 * u64::from(self.memory_high_watermark_percent)
            })
        })
    }

    /// `disk_reserve_bytes`, or its default of one segment.
    pub fn disk_reserve_bytes(&self) -> u64 {
        self.disk_reserve_bytes.unwrap_or(self.segment_bytes)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| ConfigError::Invalid {
            key: "listen",
            reason: format!("{:?} is not an address like 127.0.0.1:9324", self.listen),
        })
    }

    /// Where the wire protocol listens when HTTP listens on `http`; `None` when it is `off`.
    pub fn wire_addr(&self, http: SocketAddr) -> Result<Option<SocketAddr>, ConfigError> {
        match self.wire_listen.as_str() {
            "off" => Ok(None),
            "auto" => {
                let port = match http.port() {
                    0 => 0,
                    port => port.checked_add(1).ok_or_else(|| ConfigError::Invalid {
                        key: "wire_listen",
                        reason: format!(
                            "is auto, but the HTTP port {port} has no next port; give an address"
                        ),
                    })?,
                };
                Ok(Some(SocketAddr::new(http.ip(), port)))
            }
            other => other.parse().map(Some).map_err(|_| ConfigError::Invalid {
                key: "wire_listen",
                reason: format!("{other:?} is not an address like 127.0.0.1:9325, `auto` or `off`"),
            }),
        }
    }

    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            in_flight_max_standard: self.in_flight_max_standard,
            in_flight_max_fifo: self.in_flight_max_fifo,
            status_retention_ms: self.status_retention_ms,
            status_records_max: self.status_records_max,
        }
    }
}

/// `value` of setting `key` within `lo..=hi`, or the error naming both.
fn check_range(key: &'static str, value: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            reason: format!("is {value}, outside {lo}..={hi}"),
        })
    }
}

#[cfg(test)]
mod tests;
