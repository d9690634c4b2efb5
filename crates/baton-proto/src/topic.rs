//! Topics: `/v1/topics/...` (publish/subscribe fan-out) and their live subscriptions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::AttributeValue;

/// Where a subscription delivers: exactly one of `{"queue": name}`, `{"stream": name}` or
/// `{"url", "headers"?}` (URL targets are delivered by the server through an internal queue
/// with a push subscription).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `PUT /v1/topics/{t}/subscriptions/{name}`. `pattern` is an AMQP routing-key pattern (`*`
/// one word, `#` zero or more); `filter` an SNS filter policy over message attributes. Without
/// either, every message matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSubscription {
    pub target: SubscriptionTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub name: String,
    pub target: SubscriptionTarget,
    pub pattern: Option<String>,
    pub filter: Option<serde_json::Value>,
}

/// Counters since the server started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopicStats {
    pub published_total: u64,
    /// Copies delivered to subscriptions, over all messages.
    pub delivered_total: u64,
    /// Messages that matched no subscription.
    pub unmatched_total: u64,
    /// Live (SSE/WebSocket) connections now.
    pub live_subscribers: u64,
    /// Messages sent to live connections.
    pub live_sent_total: u64,
    /// Messages dropped for slow live connections (never from durable storage).
    pub live_dropped_total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    pub created_at: u64,
    pub subscriptions: Vec<SubscriptionInfo>,
    pub stats: TopicStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicList {
    pub topics: Vec<TopicInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishMessage {
    pub routing_key: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Required when a FIFO queue subscribes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
}

/// `POST /v1/topics/{t}/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    pub messages: Vec<PublishMessage>,
    /// Refuse the write (409 `fenced`, nothing changed) unless this is the lock's current hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<crate::lock::Fence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedMessage {
    pub id: String,
    /// Subscriptions the message reached (a queue reached by several gets one copy).
    pub delivered_to: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    pub messages: Vec<PublishedMessage>,
}

/// One message on a live subscription (SSE `message` event data, WebSocket text frame with
/// `"type": "message"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMessage {
    pub id: String,
    pub topic: String,
    pub routing_key: String,
    pub body: String,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub published_at: u64,
}

/// Sent on a live subscription when messages were dropped because the connection fell behind
/// (SSE `dropped` event data, WebSocket text frame with `"type": "dropped"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDropped {
    /// Dropped since the previous report.
    pub dropped: u64,
    /// Dropped over the connection's life.
    pub dropped_total: u64,
}

/// A WebSocket text frame: `{"type": "message", ...LiveMessage}` or `{"type": "dropped", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveFrame {
    Message(LiveMessage),
    Dropped(LiveDropped),
}
