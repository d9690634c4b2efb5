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
    /// A queue's metadata attribute changed between a read and the change based on it; read
    /// again and retry. 409.
    MetaConflict,
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
    /// Storage failed; nothing was acknowledged. 503.
    StorageUnavailable,
    /// The write was made but could not be confirmed as durable in time (on Redis Cluster:
    /// fewer replicas than required acknowledged it): it may or may not survive a failover.
    /// Retrying with the same message, deduplication or producer ids is exactly-once. 503.
    OutcomeUnknown,
    /// The engine this node runs does not have the operation (cluster mode on Redis: streams,
    /// topics, locks and schedules are not there yet). Lasting for this deployment: retrying
    /// does not help; use a node with the embedded engine. 503.
    NotOnEngine,
    /// The data directory's disk is low on space (the disk-free alarm, `disk_free_min`) or
    /// full: sends, publishes and stream appends are refused, nothing was stored; receives and
    /// acks go on, and writes are accepted again once space is freed. 507, with `Retry-After`.
    DiskLow,
    /// The process's memory is above `memory_high_watermark` (the memory alarm): sends,
    /// publishes and stream appends are refused, nothing was stored; receives and acks go on,
    /// and writes are accepted again once consumers have drained. 503, with `Retry-After`.
    MemoryPressure,
    /// The API key or the client address sent more requests or bytes per second than the
    /// server's rate limit allows (`key_requests_per_s`, `client_bytes_per_s`, ...): nothing
    /// was done; retry after `Retry-After` seconds. 429.
    RateLimited,
    /// A bug. 500.
    Internal,
    StreamNotFound,
    /// The stream exists with other attributes. 409.
    StreamExists,
    /// A consumer group that the stream does not have. 404.
    GroupNotFound,
    /// The group exists with other attributes. 409.
    GroupExists,
    /// A consumer the group does not know (pending filter). 404.
    ConsumerNotFound,
    /// A partition the stream does not have. 400.
    PartitionOutOfRange,
    /// An offset past a partition's end. 400.
    OffsetOutOfRange,
    /// An offset retention already removed; the message names the first available one. 400.
    OffsetExpired,
    /// One record over the record size limit. 413.
    RecordTooLarge,
    /// Too many records, ids or bytes in one call. 413.
    BatchTooLarge,
    /// An idempotent producer's sequence older than the ones the stream remembers. 409.
    ProducerSequenceStale,
    /// The engine's stream limit is reached. 429.
    TooManyStreams,
    /// The stream's group limit is reached. 429.
    TooManyGroups,
    /// The group's consumer limit is reached. 429.
    TooManyConsumers,
    /// The group's pending limit is reached; ack before reading more. 429.
    PendingFull,
    /// An ack of a record that is not pending in the group (per item).
    RecordNotPending,
    /// A record id that is not `partition-offset`. 400.
    RecordIdInvalid,
    /// A push or callback URL whose host the server's outbound allow/deny list refuses. 400.
    TargetNotAllowed,
    /// The queue has no push subscription. 404.
    PushNotConfigured,
    /// A manual callback retry of a message whose status is not `CALLBACK_FAILED`. 409.
    CallbackNotFailed,
    /// A manual callback retry of a message whose callback job is gone (an internal callback
    /// queue was purged or deleted): nothing to retry. 409.
    CallbackJobMissing,
    /// No event with this id (the event API, `/api/events`). 404.
    EventNotFound,
    /// No topic of that name. 404.
    TopicNotFound,
    /// No subscription of that name in the topic. 404.
    SubscriptionNotFound,
    /// The subscription name is taken with other settings. 409.
    SubscriptionExists,
    /// A routing key or pattern is malformed. 400.
    InvalidPattern,
    /// An attribute filter is malformed. 400.
    InvalidFilter,
    /// Stream or URL subscription targets are not available in this version. 400.
    TargetUnsupported,
    /// A subscription's target queue is gone; the publish changed nothing. 409.
    SubscriptionTargetMissing,
    /// A publish whose fan-out (messages × targets reached) is over `PUBLISH_COPIES_MAX`
    /// copies or `PUBLISH_COPY_BYTES_MAX` bytes; nothing was published. 413.
    FanOutTooLarge,
    /// A topic's subscriptions, or the number of topics, reached its limit. 409.
    LimitReached,
    /// A request got no reply within its `timeout_ms`. 504.
    RequestTimeout,
    /// A reply for a correlation id no request is waiting for (late or unknown); discarded
    /// and counted. 404.
    ReplyNotExpected,
    /// Too many requests are waiting for replies (the server's `max_pending_requests`). 429.
    TooManyPendingRequests,
    /// Too many live connections (the server's `live_connections_max`). 429.
    TooManyLiveSubscribers,
    /// The server's `live_streams_max` live streams (`/v1/live/...`) are already open. 429.
    TooManyLiveStreams,
    /// Someone else holds the lock (after the acquire's `wait_ms`, if any); the body's `lock`
    /// names the holder and `expires_at`. 409.
    LockHeld,
    /// The lock is not held, or the server does not know the name. 404.
    LockNotFound,
    /// A renew or release with a token (or holder) that is not the lock's current one: someone
    /// else holds it now, or the token is older. 409.
    LockTokenStale,
    /// A renew of the holder's own token after its hold expired; acquire again. 409.
    LockExpired,
    /// The server's `locks_max` lock names are in use. 429.
    TooManyLocks,
    /// A write with `"fence": {"lock", "token"}` whose token is not the lock's current hold;
    /// nothing was written. 409.
    Fenced,
    /// No sink of that name. 404.
    SinkNotFound,
    /// A sink of that name exists with another definition; delete it first. 409.
    SinkExists,
    /// A schedule's `cron` pattern does not parse. 400.
    InvalidCron,
    /// A schedule's `timezone` is not an IANA time zone name. 400.
    UnknownTimezone,
    /// A schedule's target queue, topic or stream does not exist. 400.
    ScheduleTargetNotFound,
    ScheduleNotFound,
    /// The server's `schedules_max` schedules exist. 429.
    TooManySchedules,
    /// No API key was given, or it is unknown, revoked or expired (once any key exists, every
    /// request needs one). 401, with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// The key lacks the permission the request needs; the message names the action and the
    /// resource. 403.
    Forbidden,
    /// A key of that name exists already. 409.
    KeyExists,
    /// No key of that name. 404.
    KeyNotFound,
    /// Revoking this key would leave no key with `admin` permission on keys: nobody could
    /// manage keys any more. Create another admin key first. 409.
    LastAdminKey,
}

impl ErrorCode {
    /// The HTTP status the native API answers this error with (the wire protocol sends the
    /// code alone).
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedRequest
            | InvalidName
            | InvalidParameter
            | GroupIdRequired
            | DedupIdRequired
            | DeadLetterQueueInvalid
            | ReceiptInvalid
            | PartitionOutOfRange
            | OffsetOutOfRange
            | OffsetExpired
            | RecordIdInvalid
            | TargetNotAllowed
            | InvalidPattern
            | InvalidFilter
            | TargetUnsupported
            | InvalidCron
            | UnknownTimezone
            | ScheduleTargetNotFound => 400,
            Unauthorized => 401,
            Forbidden => 403,
            QueueNotFound | MessageNotFound | NotFound | StreamNotFound | GroupNotFound
            | ConsumerNotFound | PushNotConfigured | EventNotFound | TopicNotFound
            | SubscriptionNotFound | ReplyNotExpected | LockNotFound | SinkNotFound
            | ScheduleNotFound | KeyNotFound => 404,
            MethodNotAllowed => 405,
            ReceiptStale
            | MetaConflict
            | Fenced
            | LockHeld
            | LockTokenStale
            | LockExpired
            | QueueExists
            | QueueInUse
            | StreamExists
            | GroupExists
            | ProducerSequenceStale
            | RecordNotPending
            | CallbackNotFailed
            | CallbackJobMissing
            | SubscriptionExists
            | SubscriptionTargetMissing
            | SinkExists
            | KeyExists
            | LastAdminKey
            | LimitReached => 409,
            MessageTooLarge | RequestTooLarge | RecordTooLarge | BatchTooLarge | FanOutTooLarge => {
                413
            }
            QueueFull
            | TooManyInFlight
            | TooManyWaiters
            | TooManyStreams
            | TooManyGroups
            | TooManyConsumers
            | PendingFull
            | TooManyPendingRequests
            | TooManyLiveSubscribers
            | TooManyLiveStreams
            | TooManyLocks
            | TooManySchedules
            | RateLimited => 429,
            Internal => 500,
            NotReady | StorageUnavailable | OutcomeUnknown | MemoryPressure | NotOnEngine => 503,
            RequestTimeout => 504,
            DiskLow => 507,
        }
    }
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
