//! The one place where failures become HTTP: `ApiError` is what only HTTP can get wrong
//! (unparseable bodies, unknown routes) plus every `ServiceError`; the status comes from the
//! error's stable `ErrorCode` (`ErrorCode::http_status`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_core::topic::TopicError;
use baton_core::{QueueError, StreamError};
use baton_engine::EngineError;
use baton_proto::{ErrorBody, ErrorCode, ErrorDetail};

pub use crate::service::error::{receipt_code, stream_code};
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("the request body is larger than the server's limit of {limit_bytes} bytes")]
    RequestTooLarge { limit_bytes: u64 },
    #[error("no such endpoint: {method} {path}")]
    NotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Every error the service layer converts reaches the API through `ServiceError`.
macro_rules! through_service {
    ($($error:ty),* $(,)?) => {
        $(
            impl From<$error> for ApiError {
                fn from(error: $error) -> Self {
                    ApiError::Service(error.into())
                }
            }
        )*
    };
}

through_service!(
    EngineError,
    QueueError,
    TopicError,
    StreamError,
    baton_engine::LockEngineError,
    baton_engine::ScheduleEngineError,
    baton_engine::StreamEngineError,
    baton_engine::TopicEngineError,
);

impl ApiError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::Service(ServiceError::invalid(field, reason))
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Malformed(_) => ErrorCode::MalformedRequest,
            ApiError::RequestTooLarge { .. } => ErrorCode::RequestTooLarge,
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            ApiError::Service(error) => error.code(),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        let code = self.code();
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, code)
    }
}

/// Seconds a client should wait before retrying a write the disk-free or the memory alarm
/// refused: the alarms are re-checked on every tick, and room comes back as consumers drain.
pub const ALARM_RETRY_AFTER_S: u32 = 5;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let expected = matches!(&self, ApiError::Service(error) if error.is_expected());
        if status.is_server_error() && !expected {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        if let ApiError::Service(ServiceError::Lock(baton_engine::LockEngineError::Lock(
            baton_core::lock::LockError::Held {
                name,
                holder,
                expires_at,
            },
        ))) = &self
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
        if code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"baton\""),
            );
        }
        if let Some(seconds) = match &self {
            ApiError::Service(error) => error.rate_limit_retry_after_s(),
            _ => None,
        } {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if matches!(code, ErrorCode::DiskLow | ErrorCode::MemoryPressure) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(ALARM_RETRY_AFTER_S),
            );
        }
        response
    }
}
