//! Streams: attributes, statistics, append, replay, consumer groups (read, ack, pending,
//! claim, seek).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PUT /v1/streams/{s}`. Retention bounds apply per partition; absent keeps forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateStream {
    pub partitions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records: Option<u64>,
}

/// A stream's attributes as the server reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamAttributes {
    pub partitions: u32,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub max_records: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStats {
    pub partition: u32,
    /// The first offset still available (retention moves it up).
    pub first_offset: u64,
    /// The offset the next record will get.
    pub next_offset: u64,
    /// The newest record's offset; `null` when the partition holds none.
    pub last_offset: Option<u64>,
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    pub name: String,
    /// Partitions it owns now (empty in `shared` mode).
    pub partitions: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Per partition: records not yet delivered to the group.
    pub lag: Vec<u64>,
    pub lag_total: u64,
    pub pending: u64,
    /// Live consumers.
    pub consumers: Vec<ConsumerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    pub start: StartPosition,
    pub mode: GroupMode,
    pub session_timeout_ms: u64,
    pub stats: GroupStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStats {
    pub records: u64,
    pub bytes: u64,
    pub partitions: Vec<PartitionStats>,
    pub groups: Vec<GroupInfo>,
}

/// `GET /v1/streams/{s}` and the answer to `PUT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub name: String,
    pub attributes: StreamAttributes,
    pub stats: StreamStats,
}

/// `GET /v1/streams`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamList {
    pub streams: Vec<StreamInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// `POST /v1/streams/{s}/records`. With `producer_id`, `sequence` numbers the producer's
/// batches: a retried batch (same producer, same sequence) lands once and answers the
/// original offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendRecords {
    pub records: Vec<NewRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Refuse the write (409 `fenced`, nothing changed) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedRecord {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResponse {
    pub records: Vec<AppendedRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: u64,
    pub key: Option<String>,
    pub value: String,
    pub headers: BTreeMap<String, String>,
}

/// `GET /v1/streams/{s}/records`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadResponse {
    pub records: Vec<Record>,
    pub next_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartKeyword {
    Earliest,
    Latest,
}

/// Where a group starts (or a seek goes): `"earliest"`, `"latest"`, `{"offset": n}` or
/// `{"time": ms}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a start position: \"earliest\", \"latest\", {\"offset\": n} or {\"time\": ms}"
)]
pub enum StartPosition {
    Keyword(StartKeyword),
    Offset { offset: u64 },
    Time { time: u64 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupMode {
    /// Each partition is owned by one live consumer at a time (the default).
    #[default]
    Partitioned,
    /// Any consumer gets any record.
    Shared,
}

/// `PUT /v1/streams/{s}/groups/{g}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub start: StartPosition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<GroupMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_timeout_ms: Option<u64>,
}

/// `POST .../groups/{g}/read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRead {
    pub consumer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// `partition-offset`: what `ack` takes.
    pub id: String,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: u64,
    pub key: Option<String>,
    pub value: String,
    pub headers: BTreeMap<String, String>,
    pub delivery_count: u32,
}

/// The answer to a group read or claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecords {
    pub records: Vec<GroupRecord>,
}

/// `POST .../groups/{g}/ack`; answered with one result per id (`BatchResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAck {
    pub ids: Vec<String>,
    /// Refuse the write (409 `fenced`, nothing changed) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingEntry {
    pub id: String,
    pub consumer: String,
    pub idle_ms: u64,
    pub delivery_count: u32,
}

/// `GET .../groups/{g}/pending?consumer=&max=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingList {
    pub count: u64,
    pub pending: Vec<PendingEntry>,
}

/// `POST .../groups/{g}/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupClaim {
    pub consumer: String,
    pub min_idle_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

/// `POST .../groups/{g}/seek`: every partition, or only `partition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSeek {
    pub position: StartPosition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// Records skipped by a live stream connection because retention removed them before it read
/// them (SSE `dropped` event data; WebSocket frame `{"type": "dropped", ...}`). Nothing else is
/// ever skipped: a live stream connection reads from storage at its own pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDropped {
    pub partition: u32,
    /// Skipped since the previous report.
    pub dropped: u64,
    /// Skipped over the connection's life.
    pub dropped_total: u64,
    /// Where reading goes on: the partition's first available offset.
    pub next_offset: u64,
}

/// A frame of `GET /v1/streams/{s}/ws` (server to client), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamLiveFrame {
    Record(Record),
    Dropped(StreamDropped),
    /// The connection ends because of this (the stream was deleted, say).
    Error(crate::error::ErrorDetail),
}

/// A frame of `GET /v1/streams/{s}/groups/{g}/ws` (server to client), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GroupLiveFrame {
    /// A record delivered to this connection's consumer (pending until acked).
    Record(GroupRecord),
    /// The outcome of an `{"ack": [...]}` frame, one result per id in its order.
    Acked {
        results: Vec<crate::error::ItemResult>,
    },
    /// A client frame was refused (the connection stays open), or the connection ends.
    Error(crate::error::ErrorDetail),
}

/// A client frame of `GET /v1/streams/{s}/groups/{g}/ws`: acknowledges records by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupLiveAck {
    pub ack: Vec<String>,
}
