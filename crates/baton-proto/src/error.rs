//! Error codes. A code's string never changes meaning and a retired code is never reused.

use serde::{Deserialize, Serialize};

/// Every error the native API answers with. The HTTP status for each is fixed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, wrong types, unknown fields, missing fields. 400.
    MalformedRequest,
    /// A queue (or stream, topic) name breaks the naming rule. 400.
    InvalidName,
    /// A value is out of range or not allowed here. 400.
    InvalidParameter,
    /// A FIFO send without `group_id`. 400.
    GroupIdRequired,
    /// A FIFO send without `dedup_id` on a queue without content-based dedup. 400.
    DedupIdRequired,
    /// The dead-letter queue does not exist or is of the other kind. 400.
    DeadLetterQueueInvalid,
    /// A receipt that this queue never issued. 400 (per item in batches).
    ReceiptInvalid,
    /// A receipt whose lease has ended. 409 (per item in batches).
    ReceiptStale,
    QueueNotFound,
    MessageNotFound,
    /// No such route. 404.
    NotFound,
    /// Route exists, method does not. 405.
    MethodNotAllowed,
    /// The queue exists with other attributes. 409.
    QueueExists,
    /// The queue is the dead-letter queue of another queue. 409.
    QueueInUse,
    /// One message is larger than the queue's `max_message_bytes`. 413.
    MessageTooLarge,
    /// The request body is larger than the server accepts. 413.
    RequestTooLarge,
    /// `max_depth` reached. 429.
    QueueFull,
    /// In-flight limit reached. 429.
    TooManyInFlight,
    /// Too many long polls waiting at once. 429.
    TooManyWaiters,
    /// Storage not recovered yet. 503.
    NotReady,
    /// Storage failed or is full; nothing was acknowledged. 503.
    StorageUnavailable,
    /// A bug. 500.
    Internal,
    /// The server's `live_streams_max` live streams (`/v1/live/...`) are already open. 429.
    TooManyLiveStreams,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// The body of every error response: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// One item's outcome in a batch call: `{"ok": true}` or `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ItemResult {
    Ok { ok: bool },
    Error { error: ErrorDetail },
}

impl ItemResult {
    pub fn ok() -> Self {
        ItemResult::Ok { ok: true }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ItemResult::Error {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, ItemResult::Ok { ok: true })
    }
}

/// Per-item results of a batch call, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchResponse {
    pub results: Vec<ItemResult>,
}
