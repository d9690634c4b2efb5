//! The one place where failures become HTTP: `ApiError` and its exhaustive mapping to a
//! status and a stable `ErrorCode`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_core::{QueueError, ReceiptError};
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
    #[error("{limit} live streams are already open (the server's live_streams_max)")]
    TooManyLiveStreams { limit: u32 },
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        ApiError::Engine(EngineError::Queue(error))
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
            ApiError::TooManyLiveStreams { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyLiveStreams)
            }
        }
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
        EngineError::Receipt(receipt) => receipt_code(*receipt),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        (status, Json(body)).into_response()
    }
}
