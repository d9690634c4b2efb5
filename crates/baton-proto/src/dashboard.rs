//! Shapes the dashboard reads: message browsing (`GET /v1/queues/{q}/messages`) and the live
//! statistics stream (`GET /v1/live/stats`, one `LiveSnapshot` per server-sent event).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::{AttributeValue, QueueInfo, QueueStats};
use crate::server::ServerInfo;

/// One live message as it stands, seen without consuming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeekedMessage {
    pub id: String,
    pub seq: u64,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// `visible`, `delayed` or `in_flight`.
    pub state: String,
    /// When a delayed message becomes visible, or when an in-flight message's lease ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    pub receive_count: u32,
    pub sent_at: u64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// The queue it was dead-lettered from, while it sits in a dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_source: Option<String>,
}

/// `GET /v1/queues/{q}/messages?max=&after=`: a page of messages in sequence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeekResponse {
    pub messages: Vec<PeekedMessage>,
    /// Pass as `after` for the next page; `None` when this page was not full.
    pub next_after: Option<u64>,
}

/// Write-ahead-log counters since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WalCounters {
    pub batches: u64,
    pub records: u64,
    pub bytes: u64,
    pub syncs: u64,
    pub sync_micros: u64,
}

/// HTTP responses since start, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpCounters {
    pub responses_total: u64,
    pub client_errors_total: u64,
    pub server_errors_total: u64,
}

/// One event of `GET /v1/live/stats`: the whole node as of `at`. Rates are the differences of
/// two snapshots' totals divided by the difference of their `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    pub at: u64,
    pub server: ServerInfo,
    pub ready: bool,
    /// Why storage refuses writes, while it does.
    pub storage_failure: Option<String>,
    /// What `/ready` answers now: capabilities, storage state, the disk and its alarm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<crate::Readiness>,
    /// Sums over every queue.
    pub totals: QueueStats,
    /// Queues ordered by name, at most the server's limit (`queues_truncated` says so).
    pub queues: Vec<QueueInfo>,
    pub queues_truncated: bool,
    /// Absent without durable storage.
    pub wal: Option<WalCounters>,
    pub http: HttpCounters,
    /// Sums over every stream.
    #[serde(default)]
    pub streams: StreamsSummary,
    /// Sums over every topic.
    #[serde(default)]
    pub topics: TopicsSummary,
}

/// Every stream of the node at once: how many, how much they hold, and how far their consumer
/// groups are behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamsSummary {
    pub count: u64,
    pub records: u64,
    pub bytes: u64,
    pub groups: u64,
    /// Records not yet read, summed over every group and partition.
    pub lag_total: u64,
    /// Records read and not yet acked, summed over every group.
    pub pending: u64,
}

/// Every topic of the node at once (counters since the server started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicsSummary {
    pub count: u64,
    pub subscriptions: u64,
    pub published_total: u64,
    pub delivered_total: u64,
    pub live_subscribers: u64,
}
