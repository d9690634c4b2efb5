//! Push subscriptions (`/v1/queues/{q}/push`), completion callbacks (`/v1/callbacks/...`) and
//! the body a callback POSTs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PUT /v1/queues/{q}/push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSubscription {
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Deliveries in flight at once (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// How long a target may take to answer before the delivery counts as failed (default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Most deliveries started per second; absent: no rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<u32>,
}

/// `GET /v1/queues/{q}/push`: the subscription and how delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushInfo {
    pub queue: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub concurrency: u32,
    pub timeout_ms: u64,
    pub rate_per_s: Option<u32>,
    pub stats: PushStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PushStats {
    pub delivered_total: u64,
    pub failed_total: u64,
    pub in_flight: u64,
    /// Most deliveries observed in flight at once since the subscription started.
    pub in_flight_max_observed: u64,
    /// The target host's circuit breaker: `closed`, `open` or `half_open`.
    pub breaker: String,
    pub breaker_opened_total: u64,
}

/// What a completion callback POSTs to the message's `notify.url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackPayload {
    pub id: String,
    pub queue: String,
    /// `COMPLETED` (acked) or `FAILED` (dead-lettered).
    pub status: String,
    /// The consumer's reply, when its ack carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<serde_json::Value>,
    pub sent_at: u64,
    pub completed_at: u64,
    pub receive_count: u32,
}

/// One message whose callback failed, in `GET /v1/callbacks/failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCallback {
    pub queue: String,
    pub id: String,
    pub status: String,
    /// Why the last attempt failed.
    pub reason: Option<String>,
    pub failed_at: u64,
    /// Failed attempts since the last success.
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCallbackList {
    pub callbacks: Vec<FailedCallback>,
}

/// `POST /v1/queues/{q}/messages/{id}/retry-callback`: whether the callback went through, and
/// the message's status afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRetryResult {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub message: crate::queue::MessageStatus,
}

/// A callback waiting to be made, as the body of a message in the internal callback queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackJob {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub payload: CallbackPayload,
}
