//! The one place where failures become HTTP: `ApiError` and its exhaustive mapping to a
//! status and a stable `ErrorCode`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_core::topic::TopicError;
use baton_core::{QueueError, ReceiptError, StreamError};
use baton_engine::EngineError;
use baton_proto::{ErrorBody, ErrorCode, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("the request body is larger than the server's limit of {limit_bytes} bytes")]
    RequestTooLarge { limit_bytes: u64 },
    #[error("invalid value for `{field}`: {reason}")]
    InvalidParameter { field: String, reason: String },
    #[error("no such endpoint: {method} {path}")]
    NotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error(transparent)]
    Engine(#[from] EngineError),
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
    /// A fault of the server itself, e.g. an answer that could not be written.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Lock(#[from] baton_engine::LockEngineError),
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        ApiError::Engine(EngineError::Queue(error))
    }
}

impl From<TopicError> for ApiError {
    fn from(error: TopicError) -> Self {
        ApiError::Engine(EngineError::Topic(error))
    }
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Malformed(_) => (StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
            ApiError::RequestTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::RequestTooLarge)
            }
            ApiError::InvalidParameter { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter)
            }
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::MethodNotAllowed { .. } => {
                (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed)
            }
            ApiError::Engine(error) => engine_status_and_code(error),
            ApiError::TargetNotAllowed { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::TargetNotAllowed)
            }
            ApiError::PushNotConfigured { .. } => {
                (StatusCode::NOT_FOUND, ErrorCode::PushNotConfigured)
            }
            ApiError::CallbackNotFailed { .. } => {
                (StatusCode::CONFLICT, ErrorCode::CallbackNotFailed)
            }
            ApiError::CallbackJobMissing { .. } => {
                (StatusCode::CONFLICT, ErrorCode::CallbackJobMissing)
            }
            ApiError::EventNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::EventNotFound),
            ApiError::RequestTimeout { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, ErrorCode::RequestTimeout)
            }
            ApiError::ReplyNotExpected { .. } => {
                (StatusCode::NOT_FOUND, ErrorCode::ReplyNotExpected)
            }
            ApiError::TooManyPendingRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyPendingRequests,
            ),
            ApiError::TooManyLiveSubscribers { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyLiveSubscribers,
            ),
            ApiError::TooManyLiveStreams { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyLiveStreams)
            }
            ApiError::Lock(error) => lock_status_and_code(error),
        }
    }
}

fn lock_status_and_code(error: &baton_engine::LockEngineError) -> (StatusCode, ErrorCode) {
    use baton_core::lock::LockError;
    use baton_engine::LockEngineError;
    match error {
        LockEngineError::Engine(error) => engine_status_and_code(error),
        LockEngineError::TooManyWaiters { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyWaiters)
        }
        LockEngineError::WaitTooLong { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter)
        }
        LockEngineError::Fenced { .. } => (StatusCode::CONFLICT, ErrorCode::Fenced),
        LockEngineError::Lock(error) => match error {
            LockError::InvalidName { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidName),
            LockError::InvalidHolder { .. } | LockError::TtlOutOfRange { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter)
            }
            LockError::Held { .. } => (StatusCode::CONFLICT, ErrorCode::LockHeld),
            LockError::NotHeld { .. } => (StatusCode::NOT_FOUND, ErrorCode::LockNotFound),
            LockError::TokenStale { .. } => (StatusCode::CONFLICT, ErrorCode::LockTokenStale),
            LockError::Expired { .. } => (StatusCode::CONFLICT, ErrorCode::LockExpired),
            LockError::TooManyLocks { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyLocks)
            }
        },
    }
}

pub fn receipt_code(error: ReceiptError) -> (StatusCode, ErrorCode) {
    match error {
        ReceiptError::Invalid => (StatusCode::BAD_REQUEST, ErrorCode::ReceiptInvalid),
        ReceiptError::Stale => (StatusCode::CONFLICT, ErrorCode::ReceiptStale),
    }
}

fn engine_status_and_code(error: &EngineError) -> (StatusCode, ErrorCode) {
    match error {
        EngineError::QueueNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::QueueNotFound),
        EngineError::QueueExists { .. } => (StatusCode::CONFLICT, ErrorCode::QueueExists),
        EngineError::QueueInUse { .. } => (StatusCode::CONFLICT, ErrorCode::QueueInUse),
        EngineError::DeadLetterQueueInvalid { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::DeadLetterQueueInvalid)
        }
        EngineError::MessageNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::MessageNotFound),
        EngineError::TooManyWaiters { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyWaiters)
        }
        EngineError::NotReady => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NotReady),
        EngineError::StorageUnavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StorageUnavailable,
        ),
        EngineError::DiskLow { .. } | EngineError::DiskFull { .. } => {
            (StatusCode::INSUFFICIENT_STORAGE, ErrorCode::DiskLow)
        }
        EngineError::Receipt(receipt) => receipt_code(*receipt),
        EngineError::TooManyStreams { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyStreams)
        }
        EngineError::Stream(stream) => stream_status_and_code(stream),
        EngineError::TopicNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::TopicNotFound),
        EngineError::SubscriptionNotFound { .. } => {
            (StatusCode::NOT_FOUND, ErrorCode::SubscriptionNotFound)
        }
        EngineError::Topic(topic) => match topic {
            TopicError::InvalidRoutingKey { .. } | TopicError::InvalidPattern { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidPattern)
            }
            TopicError::InvalidFilter { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidFilter),
            TopicError::SubscriptionExists { .. } => {
                (StatusCode::CONFLICT, ErrorCode::SubscriptionExists)
            }
            TopicError::FanOutTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::FanOutTooLarge)
            }
            TopicError::TooManySubscriptions { .. } => {
                (StatusCode::CONFLICT, ErrorCode::LimitReached)
            }
        },
        EngineError::TargetUnsupported { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::TargetUnsupported)
        }
        EngineError::SubscriptionTargetMissing { .. } => {
            (StatusCode::CONFLICT, ErrorCode::SubscriptionTargetMissing)
        }
        EngineError::TooManyTopics { .. } => (StatusCode::CONFLICT, ErrorCode::LimitReached),
        EngineError::BatchTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BatchTooLarge)
        }
        EngineError::Queue(queue) => match queue {
            QueueError::InvalidName { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidName),
            QueueError::InvalidParameter { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter)
            }
            QueueError::MessageTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::MessageTooLarge)
            }
            QueueError::GroupIdRequired { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::GroupIdRequired)
            }
            QueueError::DedupIdRequired { .. } => {
                (StatusCode::BAD_REQUEST, ErrorCode::DedupIdRequired)
            }
            QueueError::QueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::QueueFull),
            QueueError::TooManyInFlight { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyInFlight)
            }
        },
    }
}

/// Status and code of a stream error; also used per item in batch answers.
pub fn stream_status_and_code(error: &StreamError) -> (StatusCode, ErrorCode) {
    match error {
        StreamError::InvalidName { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidName),
        StreamError::InvalidParameter { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::InvalidParameter)
        }
        StreamError::StreamNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::StreamNotFound),
        StreamError::StreamExists { .. } => (StatusCode::CONFLICT, ErrorCode::StreamExists),
        StreamError::PartitionOutOfRange { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::PartitionOutOfRange)
        }
        StreamError::OffsetOutOfRange { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::OffsetOutOfRange)
        }
        StreamError::OffsetExpired { .. } => (StatusCode::BAD_REQUEST, ErrorCode::OffsetExpired),
        StreamError::RecordTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::RecordTooLarge)
        }
        StreamError::BatchTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::BatchTooLarge)
        }
        StreamError::ProducerSequenceStale { .. } => {
            (StatusCode::CONFLICT, ErrorCode::ProducerSequenceStale)
        }
        StreamError::GroupNotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::GroupNotFound),
        StreamError::GroupExists { .. } => (StatusCode::CONFLICT, ErrorCode::GroupExists),
        StreamError::TooManyGroups { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyGroups)
        }
        StreamError::TooManyConsumers { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyConsumers)
        }
        StreamError::ConsumerNotFound { .. } => {
            (StatusCode::NOT_FOUND, ErrorCode::ConsumerNotFound)
        }
        StreamError::PendingFull { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::PendingFull),
        StreamError::NotPending { .. } => (StatusCode::CONFLICT, ErrorCode::RecordNotPending),
        StreamError::InvalidRecordId { .. } => {
            (StatusCode::BAD_REQUEST, ErrorCode::RecordIdInvalid)
        }
    }
}

impl From<StreamError> for ApiError {
    fn from(error: StreamError) -> Self {
        ApiError::Engine(EngineError::Stream(error))
    }
}

/// Seconds a client should wait before retrying a write the disk-free alarm refused: the
/// alarm is re-checked on every tick, and space comes back as consumers drain.
pub const DISK_LOW_RETRY_AFTER_S: u32 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // A request that got no reply in time, and a write a low disk refused, are answers
        // the client must handle, not faults of the server.
        let expected = matches!(
            self,
            ApiError::RequestTimeout { .. }
                | ApiError::Engine(EngineError::DiskLow { .. } | EngineError::DiskFull { .. })
        );
        if status.is_server_error() && !expected {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        if let ApiError::Lock(baton_engine::LockEngineError::Lock(
            baton_core::lock::LockError::Held {
                name,
                holder,
                expires_at,
            },
        )) = &self
        {
            // The holder and expiry travel as data beside the error, for clients to act on.
            let lock = baton_proto::LockHeld {
                name: name.to_string(),
                holder: holder.to_string(),
                expires_at: expires_at.as_millis(),
            };
            let body = baton_proto::LockHeldBody {
                error: body.error,
                lock,
            };
            return (status, Json(body)).into_response();
        }
        let mut response = (status, Json(body)).into_response();
        if code == ErrorCode::DiskLow {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(DISK_LOW_RETRY_AFTER_S),
            );
        }
        response
    }
}
