//! JSON request bodies with precise errors: the path of the offending field, what was
//! expected, and where. Bodies over the server's limit are refused with 413 (the limit is also
//! enforced before reading, from `Content-Length`, by `limit_body`).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::api::AppState;

/// A required JSON body.
pub struct ApiJson<T>(pub T);

/// A JSON answer written with `sonic-rs`, whose SIMD string escaping costs a fraction of
/// `serde_json`'s byte-by-byte loop: for answers that carry message bodies (receive), where
/// escaping was a quarter of the server's instructions per message (docs/benchmarks.md).
/// The bytes are the same JSON `axum::Json` would write.
pub struct BodyJson<T>(pub T);

impl<T: Serialize> IntoResponse for BodyJson<T> {
    fn into_response(self) -> Response {
        match sonic_rs::to_vec(&self.0) {
            Ok(bytes) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Body::from(bytes),
            )
                .into_response(),
            // Our answer types always serialize; should one not, serde_json says why.
            Err(_) => axum::Json(self.0).into_response(),
        }
    }
}

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

/// Parses a JSON body; an error names the offending field's path.
///
/// Valid bodies are parsed without tracking the path (which allocates per key); only a body
/// that fails is parsed again, the same way, to name where it failed. The second parse must
/// refuse what the first refused: it ends with the check for trailing characters that
/// `serde_json::from_slice` makes (without it, `{"receipts":[]} junk` was accepted).
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." || path.is_empty() {
            ApiError::Malformed(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::Malformed(format!("invalid JSON body at `{path}`: {inner}"))
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::Malformed(format!("invalid JSON body: {error}")))?;
    Ok(value)
}

/// The body of an [`ApiJson`]: whitespace only is refused.
pub(crate) fn required<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Malformed("a JSON body is required".to_string()));
    }
    parse(bytes)
}

/// The body of an [`OptionalJson`]: whitespace only is `T::default()`.
pub(crate) fn optional<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse(bytes)
}

/// Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs, used by
/// nothing else): the body parsing of [`ApiJson`] and [`OptionalJson`] without a request,
/// and the service's conversion of a message's attributes, which every send runs next.
#[doc(hidden)]
pub mod fuzzing {
    use std::collections::BTreeMap;

    use baton_proto as proto;
    use serde::de::DeserializeOwned;

    use crate::api::error::ApiError;

    /// What `ApiJson<T>` makes of a body.
    pub fn required<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
        super::required(bytes)
    }

    /// What `OptionalJson<T>` makes of a body.
    pub fn optional<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
        super::optional(bytes)
    }

    /// `service::queues::attributes_from_wire`: a message's attributes, checked.
    pub fn attributes(
        wire: BTreeMap<String, proto::AttributeValue>,
    ) -> Result<baton_core::MessageAttributes, String> {
        crate::service::queues::attributes_from_wire(0, wire).map_err(|e| e.to_string())
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        required(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state).await?;
        optional(&bytes).map(OptionalJson)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use baton_proto as proto;

    /// Found by the `native_json` fuzz target (`fuzz/regressions/native_json/`): the precise
    /// second parse accepted a valid body followed by anything.
    #[test]
    fn a_body_with_trailing_characters_is_malformed() {
        for body in [&b"{\"receipts\":[]} junk"[..], b"{\"receipts\":[]}}"] {
            let parsed = super::parse::<proto::AckRequest>(body);
            assert!(
                matches!(&parsed, Err(crate::api::error::ApiError::Malformed(reason)) if reason.contains("trailing characters")),
                "{parsed:?}"
            );
        }
        assert!(super::parse::<proto::AckRequest>(b" {\"receipts\":[]} \n").is_ok());
    }

    /// `BodyJson` must write the very bytes `axum::Json` (serde_json) would: clients compare
    /// bodies and MD5 digests byte for byte.
    #[test]
    fn sonic_writes_what_serde_json_writes() {
        let bodies = [
            String::new(),
            "plain".to_string(),
            "quote \" backslash \\ slash / tab \t newline \n return \r".to_string(),
            "controls \u{1} \u{1f} del \u{7f}".to_string(),
            "unicode 안녕 🎉 \u{2028} \u{2029} \u{fffd}".to_string(),
            "x".repeat(4096) + "\"" + &"y".repeat(33),
        ];
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "kind \"q\"".to_string(),
            proto::AttributeValue::Plain("v\\1".to_string()),
        );
        attributes.insert(
            "n".to_string(),
            proto::AttributeValue::Typed(proto::TypedAttribute {
                data_type: "Number".to_string(),
                value: "12.5".to_string(),
            }),
        );
        let response = proto::ReceiveResponse {
            messages: bodies
                .iter()
                .enumerate()
                .map(|(i, body)| proto::ReceivedMessage {
                    id: format!("id-{i}"),
                    seq: u64::MAX - i as u64,
                    body: body.clone(),
                    attributes: attributes.clone(),
                    receipt: "r/+=".to_string(),
                    receive_count: 3,
                    sent_at: 1_700_000_000_000,
                    first_received_at: 0,
                    group_id: (i % 2 == 0).then(|| "g".to_string()),
                    dedup_id: None,
                })
                .collect(),
        };
        assert_eq!(
            String::from_utf8(sonic_rs::to_vec(&response).unwrap()).unwrap(),
            serde_json::to_string(&response).unwrap()
        );
    }
}
