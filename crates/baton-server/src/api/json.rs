//! JSON request bodies with precise errors: the path of the offending field, what was
//! expected, and where. Bodies over the server's limit are refused with 413 (the limit is also
//! enforced before reading, from `Content-Length`, by `limit_body`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::api::error::ApiError;
use crate::api::AppState;

/// A required JSON body.
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent (empty), in which case `T::default()` is used.
pub struct OptionalJson<T>(pub T);

async fn read_body(request: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::RequestTooLarge {
                    limit_bytes: state.config.max_request_bytes,
                }
            } else {
                ApiError::Malformed(format!("could not read the request body: {rejection}"))
            }
        })
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Malformed(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::Malformed(format!("invalid JSON body at `{path}`: {inner}"))
        }
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::Malformed("a JSON body is required".to_string()));
        }
        parse(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse(&bytes).map(OptionalJson)
    }
}
