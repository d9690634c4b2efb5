//! Request/response over a queue: `POST /v1/queues/{q}/request` and the replies to it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::queue::AttributeValue;

/// The attribute that carries a request's correlation id to the consumer. It is a reserved
/// name: a request may not set it itself.
pub const CORRELATION_ID_ATTRIBUTE: &str = "baton.correlation_id";

/// `POST /v1/queues/{q}/request`: sends `body` and waits up to `timeout_ms` for the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMessage {
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
    pub timeout_ms: u64,
    /// Needed on a FIFO queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
}

/// A reply: the body of `POST /v1/replies/{correlation_id}`, and the `reply` field of an ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// The answer to a request that got its reply in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestResponse {
    /// The request message's id; also its correlation id.
    pub id: String,
    pub correlation_id: String,
    pub reply: Reply,
    /// From send to reply.
    pub elapsed_ms: u64,
}

/// What happened to a reply given with an ack, or answered by `POST /v1/replies/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyOutcome {
    pub correlation_id: String,
    /// True when a waiting requester received it; false when it was late or unknown
    /// (discarded and counted).
    pub delivered: bool,
}
