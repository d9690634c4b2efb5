//! `ServiceError`: every way an operation of the service layer fails, whatever transport
//! asked, and its exhaustive mapping to a stable `ErrorCode` (the native API adds the HTTP
//! status of the code, the wire protocol sends the code alone, background workers log it).

use baton_core::topic::TopicError;
use baton_core::{QueueError, ReceiptError, StreamError};
use baton_engine::{EngineError, StreamEngineError, TopicEngineError};
use baton_proto::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid value for `{field}`: {reason}")]
    InvalidParameter { field: String, reason: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Stream(#[from] StreamEngineError),
    #[error(transparent)]
    Topic(#[from] TopicEngineError),
    #[error("invalid value for `{field}`: {reason}")]
    TargetNotAllowed { field: String, reason: String },
    #[error("queue {queue} has no push subscription")]
    PushNotConfigured { queue: String },
    #[error("the callback of message {id} has not failed (its status is {status})")]
    CallbackNotFailed { id: String, status: String },
    #[error("the callback of message {id} failed, but its callback job is gone (the internal queue `_baton-callbacks` or `_baton-callbacks-failed` was purged or deleted): there is nothing to retry")]
    CallbackJobMissing { id: String },
    #[error("event {id} does not exist")]
    EventNotFound { id: String },
    #[error("no reply to request {correlation_id} within {timeout_ms} ms; a reply that comes later is discarded")]
    RequestTimeout {
        correlation_id: String,
        timeout_ms: u64,
    },
    #[error("no request is waiting for a reply with correlation id {correlation_id} (it timed out, was answered already, or never existed); the reply was discarded")]
    ReplyNotExpected { correlation_id: String },
    #[error(
        "{limit} requests are already waiting for replies (the server's max_pending_requests)"
    )]
    TooManyPendingRequests { limit: u32 },
    #[error("{limit} live connections are already open (the server's live_connections_max)")]
    TooManyLiveSubscribers { limit: u32 },
    #[error("{limit} live streams are already open (the server's live_streams_max)")]
    TooManyLiveStreams { limit: u32 },
    #[error("{who} is over its rate limit of {limit}: retry in {retry_after_ms} ms")]
    RateLimited {
        who: String,
        limit: String,
        retry_after_ms: u64,
    },
    #[error("{who} has {limit} {what} open already, its limit ({setting})")]
    CallerLimit {
        who: String,
        what: &'static str,
        limit: u32,
        setting: &'static str,
        kind: crate::caller_limits::SlotKind,
    },
    /// A fault of the server itself, e.g. an answer that could not be written.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Lock(#[from] baton_engine::LockEngineError),
    #[error("sink {name} does not exist")]
    SinkNotFound { name: String },
    #[error("sink {name} exists with another definition ({difference}); delete it first")]
    SinkExists { name: String, difference: String },
    #[error("{limit} sinks exist already (the server's sinks_max)")]
    TooManySinks { limit: u32 },
    #[error(transparent)]
    Schedule(#[from] baton_engine::ScheduleEngineError),
    #[error("the schedule's target {kind} `{name}` does not exist")]
    ScheduleTargetNotFound { kind: &'static str, name: String },
    #[error("{reason}")]
    Unauthorized { reason: String },
    #[error("the API key `{key}` may not do {action} on `{resource}`")]
    Forbidden {
        key: String,
        action: String,
        resource: String,
    },
    #[error("an API key named {name} exists already; revoke it first, or choose another name")]
    KeyExists { name: String },
    #[error("no API key is named {name}")]
    KeyNotFound { name: String },
    #[error("{name} is the last valid key with `admin` on keys; create another admin key before revoking it")]
    LastAdminKey { name: String },
    #[error("{limit} API keys exist already (the server's keys_max)")]
    TooManyKeys { limit: u32 },
}

impl From<QueueError> for ServiceError {
    fn from(error: QueueError) -> Self {
        ServiceError::Engine(EngineError::Queue(error))
    }
}

impl From<TopicError> for ServiceError {
    fn from(error: TopicError) -> Self {
        ServiceError::Topic(TopicEngineError::Topic(error))
    }
}

impl From<StreamError> for ServiceError {
    fn from(error: StreamError) -> Self {
        ServiceError::Stream(StreamEngineError::Stream(error))
    }
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::InvalidParameter { .. } => ErrorCode::InvalidParameter,
            ServiceError::Engine(error) => engine_code(error),
            ServiceError::Stream(error) => stream_engine_code(error),
            ServiceError::Topic(error) => topic_engine_code(error),
            ServiceError::TargetNotAllowed { .. } => ErrorCode::TargetNotAllowed,
            ServiceError::PushNotConfigured { .. } => ErrorCode::PushNotConfigured,
            ServiceError::CallbackNotFailed { .. } => ErrorCode::CallbackNotFailed,
            ServiceError::CallbackJobMissing { .. } => ErrorCode::CallbackJobMissing,
            ServiceError::EventNotFound { .. } => ErrorCode::EventNotFound,
            ServiceError::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            ServiceError::ReplyNotExpected { .. } => ErrorCode::ReplyNotExpected,
            ServiceError::TooManyPendingRequests { .. } => ErrorCode::TooManyPendingRequests,
            ServiceError::TooManyLiveSubscribers { .. } => ErrorCode::TooManyLiveSubscribers,
            ServiceError::TooManyLiveStreams { .. } => ErrorCode::TooManyLiveStreams,
            ServiceError::RateLimited { .. } => ErrorCode::RateLimited,
            ServiceError::CallerLimit { kind, .. } => match kind {
                crate::caller_limits::SlotKind::LongPoll => ErrorCode::TooManyWaiters,
                crate::caller_limits::SlotKind::LiveStream => ErrorCode::TooManyLiveStreams,
            },
            ServiceError::Internal(_) => ErrorCode::Internal,
            ServiceError::Lock(error) => lock_code(error),
            ServiceError::SinkNotFound { .. } => ErrorCode::SinkNotFound,
            ServiceError::SinkExists { .. } => ErrorCode::SinkExists,
            ServiceError::TooManySinks { .. } => ErrorCode::LimitReached,
            ServiceError::Schedule(error) => schedule_code(error),
            ServiceError::ScheduleTargetNotFound { .. } => ErrorCode::ScheduleTargetNotFound,
            ServiceError::Unauthorized { .. } => ErrorCode::Unauthorized,
            ServiceError::Forbidden { .. } => ErrorCode::Forbidden,
            ServiceError::KeyExists { .. } => ErrorCode::KeyExists,
            ServiceError::KeyNotFound { .. } => ErrorCode::KeyNotFound,
            ServiceError::LastAdminKey { .. } => ErrorCode::LastAdminKey,
            ServiceError::TooManyKeys { .. } => ErrorCode::LimitReached,
        }
    }

    /// A request that got no reply in time, a write a low disk or the memory alarm refused,
    /// and an operation the engine does not have (`NotOnEngine`) are answers the client must
    /// handle, not faults of the server: they are not logged as failures.
    pub fn is_expected(&self) -> bool {
        let alarm = |error: &EngineError| {
            matches!(
                error,
                EngineError::DiskLow { .. }
                    | EngineError::DiskFull { .. }
                    | EngineError::MemoryPressure { .. }
            )
        };
        let absent = |error: &EngineError| matches!(error, EngineError::NotOnEngine { .. });
        match self {
            ServiceError::RequestTimeout { .. } | ServiceError::RateLimited { .. } => true,
            ServiceError::Lock(baton_engine::LockEngineError::Engine(error))
            | ServiceError::Schedule(baton_engine::ScheduleEngineError::Engine(error)) => {
                absent(error)
            }
            _ => self
                .engine_error()
                .is_some_and(|error| alarm(error) || absent(error)),
        }
    }

    /// `Retry-After` (whole seconds, at least 1) of a rate-limit refusal.
    pub fn rate_limit_retry_after_s(&self) -> Option<u64> {
        match self {
            ServiceError::RateLimited { retry_after_ms, .. } => {
                Some(retry_after_ms.div_ceil(1000).max(1))
            }
            _ => None,
        }
    }

    /// The storage-level error inside, whichever operation met it.
    pub fn engine_error(&self) -> Option<&EngineError> {
        match self {
            ServiceError::Engine(error)
            | ServiceError::Stream(StreamEngineError::Engine(error))
            | ServiceError::Topic(TopicEngineError::Engine(error))
            | ServiceError::Topic(TopicEngineError::Stream(StreamEngineError::Engine(error))) => {
                Some(error)
            }
            _ => None,
        }
    }
}

pub fn lock_code(error: &baton_engine::LockEngineError) -> ErrorCode {
    use baton_core::lock::LockError;
    use baton_engine::LockEngineError;
    match error {
        LockEngineError::Engine(error) => engine_code(error),
        LockEngineError::Stream(error) => stream_engine_code(error),
        LockEngineError::Topic(error) => topic_engine_code(error),
        LockEngineError::TooManyWaiters { .. } => ErrorCode::TooManyWaiters,
        LockEngineError::WaitTooLong { .. } => ErrorCode::InvalidParameter,
        LockEngineError::Fenced { .. } => ErrorCode::Fenced,
        LockEngineError::Lock(error) => match error {
            LockError::InvalidName { .. } => ErrorCode::InvalidName,
            LockError::InvalidHolder { .. } | LockError::TtlOutOfRange { .. } => {
                ErrorCode::InvalidParameter
            }
            LockError::Held { .. } => ErrorCode::LockHeld,
            LockError::NotHeld { .. } => ErrorCode::LockNotFound,
            LockError::TokenStale { .. } => ErrorCode::LockTokenStale,
            LockError::Expired { .. } => ErrorCode::LockExpired,
            LockError::TooManyLocks { .. } => ErrorCode::TooManyLocks,
        },
    }
}

pub fn schedule_code(error: &baton_engine::ScheduleEngineError) -> ErrorCode {
    use baton_core::schedule::ScheduleError;
    use baton_engine::ScheduleEngineError;
    match error {
        ScheduleEngineError::Engine(error) => engine_code(error),
        ScheduleEngineError::Schedule(error) => match error {
            ScheduleError::InvalidName { .. } => ErrorCode::InvalidName,
            ScheduleError::InvalidCron { .. } => ErrorCode::InvalidCron,
            ScheduleError::UnknownTimezone { .. } => ErrorCode::UnknownTimezone,
            ScheduleError::NeverFires { .. }
            | ScheduleError::AtInPast { .. }
            | ScheduleError::InvalidWindow { .. }
            | ScheduleError::EndInPast { .. } => ErrorCode::InvalidParameter,
            ScheduleError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            ScheduleError::TooManySchedules { .. } => ErrorCode::TooManySchedules,
            ScheduleError::NotFound { .. } => ErrorCode::ScheduleNotFound,
            // A definition changed while a firing was on its way: retrying sees the new one.
            ScheduleError::Stale { .. } => ErrorCode::MetaConflict,
        },
    }
}

pub fn receipt_code(error: ReceiptError) -> ErrorCode {
    match error {
        ReceiptError::Invalid => ErrorCode::ReceiptInvalid,
        ReceiptError::Stale => ErrorCode::ReceiptStale,
    }
}

pub fn engine_code(error: &EngineError) -> ErrorCode {
    match error {
        EngineError::QueueNotFound { .. } => ErrorCode::QueueNotFound,
        EngineError::QueueExists { .. } => ErrorCode::QueueExists,
        EngineError::QueueInUse { .. } => ErrorCode::QueueInUse,
        EngineError::MetaConflict { .. } => ErrorCode::MetaConflict,
        EngineError::DeadLetterQueueInvalid { .. } => ErrorCode::DeadLetterQueueInvalid,
        EngineError::MessageNotFound { .. } => ErrorCode::MessageNotFound,
        EngineError::TooManyWaiters { .. } => ErrorCode::TooManyWaiters,
        EngineError::NotReady => ErrorCode::NotReady,
        EngineError::StorageUnavailable { .. } => ErrorCode::StorageUnavailable,
        EngineError::OutcomeUnknown { .. } => ErrorCode::OutcomeUnknown,
        EngineError::DiskLow { .. } | EngineError::DiskFull { .. } => ErrorCode::DiskLow,
        EngineError::MemoryPressure { .. } => ErrorCode::MemoryPressure,
        EngineError::Receipt(receipt) => receipt_code(*receipt),
        EngineError::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
        EngineError::NotOnEngine { .. } => ErrorCode::NotOnEngine,
        EngineError::Queue(queue) => queue_code(queue),
    }
}

pub fn stream_engine_code(error: &StreamEngineError) -> ErrorCode {
    match error {
        StreamEngineError::Stream(stream) => stream_code(stream),
        StreamEngineError::TooManyStreams { .. } => ErrorCode::TooManyStreams,
        StreamEngineError::Engine(error) => engine_code(error),
    }
}

pub fn topic_engine_code(error: &TopicEngineError) -> ErrorCode {
    match error {
        TopicEngineError::TopicNotFound { .. } => ErrorCode::TopicNotFound,
        TopicEngineError::SubscriptionNotFound { .. } => ErrorCode::SubscriptionNotFound,
        TopicEngineError::Topic(topic) => match topic {
            TopicError::InvalidRoutingKey { .. } | TopicError::InvalidPattern { .. } => {
                ErrorCode::InvalidPattern
            }
            TopicError::InvalidFilter { .. } => ErrorCode::InvalidFilter,
            TopicError::SubscriptionExists { .. } => ErrorCode::SubscriptionExists,
            TopicError::FanOutTooLarge { .. } => ErrorCode::FanOutTooLarge,
            TopicError::TooManySubscriptions { .. } => ErrorCode::LimitReached,
        },
        TopicEngineError::TargetUnsupported { .. } => ErrorCode::TargetUnsupported,
        TopicEngineError::SubscriptionTargetMissing { .. } => ErrorCode::SubscriptionTargetMissing,
        TopicEngineError::TooManyTopics { .. } => ErrorCode::LimitReached,
        TopicEngineError::Stream(error) => stream_engine_code(error),
        TopicEngineError::Engine(error) => engine_code(error),
    }
}

pub fn queue_code(error: &QueueError) -> ErrorCode {
    match error {
        QueueError::InvalidName { .. } => ErrorCode::InvalidName,
        QueueError::InvalidParameter { .. } => ErrorCode::InvalidParameter,
        QueueError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
        QueueError::GroupIdRequired { .. } => ErrorCode::GroupIdRequired,
        QueueError::DedupIdRequired { .. } => ErrorCode::DedupIdRequired,
        QueueError::QueueFull { .. } => ErrorCode::QueueFull,
        QueueError::TooManyInFlight { .. } => ErrorCode::TooManyInFlight,
    }
}

/// The code of a stream error; also used per item in batch answers.
pub fn stream_code(error: &StreamError) -> ErrorCode {
    match error {
        StreamError::InvalidName { .. } => ErrorCode::InvalidName,
        StreamError::InvalidParameter { .. } => ErrorCode::InvalidParameter,
        StreamError::StreamNotFound { .. } => ErrorCode::StreamNotFound,
        StreamError::StreamExists { .. } => ErrorCode::StreamExists,
        StreamError::PartitionOutOfRange { .. } => ErrorCode::PartitionOutOfRange,
        StreamError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StreamError::OffsetExpired { .. } => ErrorCode::OffsetExpired,
        StreamError::RecordTooLarge { .. } => ErrorCode::RecordTooLarge,
        StreamError::BatchTooLarge { .. } => ErrorCode::BatchTooLarge,
        StreamError::ProducerSequenceStale { .. } => ErrorCode::ProducerSequenceStale,
        StreamError::GroupNotFound { .. } => ErrorCode::GroupNotFound,
        StreamError::GroupExists { .. } => ErrorCode::GroupExists,
        StreamError::TooManyGroups { .. } => ErrorCode::TooManyGroups,
        StreamError::TooManyConsumers { .. } => ErrorCode::TooManyConsumers,
        StreamError::ConsumerNotFound { .. } => ErrorCode::ConsumerNotFound,
        StreamError::PendingFull { .. } => ErrorCode::PendingFull,
        StreamError::NotPending { .. } => ErrorCode::RecordNotPending,
        StreamError::InvalidRecordId { .. } => ErrorCode::RecordIdInvalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The status table in baton-proto matches what the native API answered before the
    /// service layer existed, for the codes whose status matters most to clients.
    #[test]
    fn codes_keep_their_http_status() {
        let cases = [
            (ServiceError::invalid("x", "y"), 400),
            (EngineError::QueueNotFound { queue: "q".into() }.into(), 404),
            (EngineError::Receipt(ReceiptError::Stale).into(), 409),
            (EngineError::Receipt(ReceiptError::Invalid).into(), 400),
            (EngineError::NotReady.into(), 503),
            (
                EngineError::DiskLow {
                    free_bytes: 1,
                    min_bytes: 2,
                }
                .into(),
                507,
            ),
            (
                EngineError::MemoryPressure {
                    used_bytes: 2,
                    high_watermark_bytes: 1,
                }
                .into(),
                503,
            ),
            (ServiceError::TooManyLiveStreams { limit: 1 }, 429),
            (
                ServiceError::RateLimited {
                    who: "client 10.0.0.1".to_string(),
                    limit: "1 requests/s".to_string(),
                    retry_after_ms: 1,
                },
                429,
            ),
            (
                ServiceError::RequestTimeout {
                    correlation_id: "c".into(),
                    timeout_ms: 1,
                },
                504,
            ),
            (ServiceError::Internal("bug".into()), 500),
            (
                ServiceError::Unauthorized {
                    reason: "no key".into(),
                },
                401,
            ),
            (
                ServiceError::Forbidden {
                    key: "k".into(),
                    action: "send".into(),
                    resource: "queue:q".into(),
                },
                403,
            ),
            (ServiceError::KeyNotFound { name: "k".into() }, 404),
            (ServiceError::KeyExists { name: "k".into() }, 409),
        ];
        for (error, status) in cases {
            assert_eq!(error.code().http_status(), status, "{error}");
        }
    }
}
