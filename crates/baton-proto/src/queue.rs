//! Queues: attributes, statistics, send, receive, ack, nack, visibility, status, redrive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    pub queue: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

/// A queue's attributes as the server reports them: every field present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAttributes {
    pub fifo: bool,
    pub visibility_timeout_ms: u64,
    pub delay_ms: u64,
    pub retention_ms: u64,
    pub max_message_bytes: u32,
    pub receive_wait_ms: u64,
    pub dead_letter: Option<DeadLetter>,
    pub content_based_dedup: bool,
    pub max_depth: Option<u64>,
    pub retry: Option<Retry>,
}

/// `PUT /v1/queues/{q}`: attributes to create with; absent fields take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateQueue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_based_dedup: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// `PATCH /v1/queues/{q}`: only the fields given change; `null` clears `dead_letter`,
/// `max_depth` and `retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateQueue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fifo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_wait_ms: Option<u64>,
    #[serde(
        default,
        with = "crate::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub dead_letter: Option<Option<DeadLetter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_based_dedup: Option<bool>,
    #[serde(
        default,
        with = "crate::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_depth: Option<Option<u64>>,
    #[serde(
        default,
        with = "crate::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry: Option<Option<Retry>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStats {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub oldest_age_ms: u64,
    pub sent_total: u64,
    pub duplicates_total: u64,
    pub received_total: u64,
    pub acked_total: u64,
    pub nacked_total: u64,
    pub dead_lettered_total: u64,
    pub expired_total: u64,
    pub purged_total: u64,
    pub moved_in_total: u64,
    pub moved_out_total: u64,
}

/// `GET /v1/queues/{q}`, and the answer to create and update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub name: String,
    pub attributes: QueueAttributes,
    pub stats: QueueStats,
}

/// `GET /v1/queues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueList {
    pub queues: Vec<QueueInfo>,
}

/// A message attribute: a plain string is shorthand for `{"type": "String", "value": ...}`.
/// `Binary` values are base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Plain(String),
    Typed(TypedAttribute),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedAttribute {
    #[serde(rename = "type")]
    pub data_type: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
    /// Hidden for this long after the send; less than the queue's `retention_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Hidden until this time (milliseconds since the epoch); instead of `delay_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

/// `POST /v1/queues/{q}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub messages: Vec<SendMessage>,
    /// Refuse the send (409 `fenced`) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub id: String,
    pub seq: u64,
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    pub messages: Vec<SentMessage>,
}

/// `POST /v1/queues/{q}/receive`. `max` defaults to 1, `wait_ms` to the queue's
/// `receive_wait_ms`, `visibility_timeout_ms` to the queue's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedMessage {
    pub id: String,
    pub seq: u64,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub receipt: String,
    pub receive_count: u32,
    pub sent_at: u64,
    pub first_received_at: u64,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveResponse {
    pub messages: Vec<ReceivedMessage>,
}

/// `POST /v1/queues/{q}/ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    pub receipts: Vec<String>,
    /// Answers the request the acked message carried (its `baton.correlation_id` attribute):
    /// `{"body", "attributes"?}`. With several receipts, every acked request message gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<crate::request::Reply>,
    /// Refuse the write (409 `fenced`, nothing changed) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

/// The answer to an ack: per-receipt results and, when the ack carried a `reply`, what became
/// of it for each acked request message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResponse {
    pub results: Vec<crate::error::ItemResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<crate::request::ReplyOutcome>,
}

/// `POST /v1/queues/{q}/nack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NackRequest {
    pub receipts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Refuse the write (409 `fenced`, nothing changed) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

/// `POST /v1/queues/{q}/visibility`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisibilityRequest {
    pub receipt: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub event: String,
    pub at: u64,
    pub receive_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/queues/{q}/messages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStatus {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub history: Vec<HistoryEntry>,
}

/// `POST /v1/queues/{q}/purge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResponse {
    pub purged: u64,
}

/// `POST /v1/queues/{dlq}/redrive`: moves up to `max` messages (default: all) back to the queue
/// each was dead-lettered from, or to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedriveRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveResponse {
    pub moved: u64,
}
