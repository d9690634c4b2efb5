//! Entry points for the fuzz targets in `fuzz/` (not an API: hidden from the docs, used by
//! nothing else). They run the SQS API's own request parsing on raw bytes, without a server:
//! the same functions `handle` calls, in the same order.

use axum::http::{header, HeaderMap, HeaderValue, Method};
use serde_json::{Map, Value};

use super::error::SqsError;
use super::{actions, messages};

/// A request's action and parameters, or the SQS error it is answered with.
pub type Parsed = Result<(String, Map<String, Value>), SqsError>;

/// The JSON 1.0 protocol: `X-Amz-Target: <target>` and `body`.
pub fn parse_json(target: &str, body: &[u8]) -> Parsed {
    super::parse_json(target, body)
}

/// The query protocol: a `POST` with the URL query `query` and the form-encoded `body`.
pub fn parse_query(query: Option<&str>, body: &[u8]) -> Parsed {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    super::parse_query(&Method::POST, query, &headers, body)
}

/// What `SendMessage` and `SendMessageBatch` make of parsed parameters before the engine is
/// called: the batch's entries (checked as `SendMessageBatch` checks them) or the one message,
/// each parsed as a message to a standard and to a FIFO queue. Returns the number of
/// messages that parsed.
pub fn parse_messages(action: &str, params: &Map<String, Value>) -> usize {
    let messages = if action == "SendMessageBatch" {
        match actions::batch_entries(params, "SendMessageBatchRequestEntry") {
            Ok(entries) => entries,
            Err(_) => return 0,
        }
    } else {
        vec![params.clone()]
    };
    let mut n_parsed = 0;
    for message in &messages {
        for fifo in [false, true] {
            if messages::outgoing(message, fifo).is_ok() {
                n_parsed += 1;
            }
        }
    }
    n_parsed
}
