//! The Amazon SQS API on Baton's main port, for the AWS SDKs and the aws CLI.
//!
//! `POST /` (and the queue URLs `/000000000000/{queue}`) accepts both protocols the SDKs use: JSON 1.0
//! (`X-Amz-Target: AmazonSQS.<Action>`) and query (`Action=...`, XML answers). Both are reduced
//! to JSON-shaped parameters (`protocol.rs`), served by one set of actions (`actions.rs`) over
//! the same engine as the native API, so a queue is one queue whichever API created it.
//! While API keys exist, every request must carry an AWS Signature Version 4 made with the
//! SQS credentials of a key, and the key's permissions are checked per action (`auth.rs`,
//! over `auth::sigv4`); without keys, or with `sqs_without_auth`, credentials are accepted
//! unchecked.
//!
//! State that SQS keeps beyond the engine's (the last purge per queue for
//! `PurgeQueueInProgress`, `ReceiveRequestAttemptId` answers, message move tasks) lives in
//! `SqsState`, in memory: SQS itself treats all three as best effort.

mod actions;
mod auth;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod md5;
mod messages;
mod move_tasks;
mod params;
pub mod protocol;
mod queue_meta;
mod receipts;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use baton_core::{Delivery, QueueName};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::api::AppState;
use crate::auth::audit::Outcome;
use crate::auth::KeyEntry;
pub use error::SqsError;
use protocol::Protocol;

/// The account id in queue URLs and ARNs.
pub const ACCOUNT_ID: &str = "000000000000";
/// The region in ARNs.
pub const REGION: &str = "us-east-1";
/// Largest SQS request accepted. SQS limits a message (and a whole batch) to 1 MiB of
/// characters, but the SDKs escape non-ASCII characters (`\uXXXX` in JSON, `%XX` in query) at
/// up to 6 bytes each, so the wire allows for that.
pub const SQS_REQUEST_BYTES_MAX: usize = 8 * 1024 * 1024;
/// `ReceiveRequestAttemptId` answers kept, over all queues.
const ATTEMPTS_MAX: usize = 10_000;
/// Message move tasks kept (finished ones are dropped oldest first).
const MOVE_TASKS_MAX: usize = 1_000;

/// Answers to `ReceiveRequestAttemptId`s: (queue, attempt id) → when, and what was delivered.
type Attempts = HashMap<(QueueName, String), (Instant, Vec<Delivery>)>;

/// What the SQS API remembers between requests.
#[derive(Default)]
pub struct SqsState {
    last_purge: Mutex<HashMap<QueueName, Instant>>,
    attempts: Mutex<Attempts>,
    tasks: Mutex<Vec<Arc<move_tasks::MoveTask>>>,
}

/// Everything an action needs from the request.
pub struct Call<'a> {
    pub state: &'a AppState,
    pub params: Map<String, Value>,
    /// `host[:port]` from the Host header, for queue URLs.
    pub host: String,
    /// The queue named by the request path (`/{account}/{queue}`), if any.
    pub path_queue: Option<String>,
    /// The verified key of the request; `None` when nothing is checked.
    pub key: Option<Arc<KeyEntry>>,
    /// The client's address.
    pub client: Option<std::net::IpAddr>,
}

impl Call<'_> {
    /// Who makes the call, for the per-caller limits.
    pub fn who(&self) -> crate::caller_limits::Who {
        crate::caller_limits::Who {
            key: self.key.clone(),
            client: self.client,
        }
    }
}

impl Call<'_> {
    /// Whether the caller may see `queue` (in a listing).
    pub fn sees(&self, queue: &QueueName) -> bool {
        self.key
            .as_ref()
            .is_none_or(|key| key.grants.sees(&format!("queue:{queue}")))
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Refuses an SQS request before it is read (`auth`): `ServiceUnavailable` while API keys
/// load.
pub fn refuse_loading(headers: &HeaderMap, message: String) -> Response {
    SqsError::service_unavailable(message).render(protocol_of(headers), &request_id())
}

/// The answer to an SQS request refused by a rate limit before it reached `handle`.
pub fn refuse_throttled(headers: &HeaderMap, error: &crate::service::ServiceError) -> Response {
    throttled(error, protocol_of(headers), &request_id())
}

fn protocol_of(headers: &HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    }
}

/// Whether a request to `/` is the dashboard (`GET` without an `Action`), not the SQS API.
pub fn is_dashboard(method: &Method, query: Option<&str>) -> bool {
    method == Method::GET
        && !query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"))
}

/// Answers one SQS request in either protocol.
pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let request_id = request_id();
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let protocol = if target.is_some() {
        Protocol::Json
    } else {
        Protocol::Query
    };
    let body = match axum::body::to_bytes(body, SQS_REQUEST_BYTES_MAX).await {
        Ok(body) => body,
        Err(_) => {
            return SqsError::batch_request_too_long(format!(
                "The request is larger than {SQS_REQUEST_BYTES_MAX} bytes."
            ))
            .render(protocol, &request_id)
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| state.listen.to_string());
    let path_queue = parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .nth(1)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    // Before the parameters are even parsed: an unsigned request learns nothing.
    let key = match auth::authenticate(&state, &parts, &body) {
        Ok(key) => key,
        Err(error) => {
            let status = error.status.as_u16();
            auth::audit(
                &state,
                &parts,
                None,
                (None, "-"),
                Outcome::Unauthorized,
                status,
            );
            return error.render(protocol, &request_id);
        }
    };
    let mut charged = crate::rate_limits::Charged::default();
    if let Some(key) = &key {
        let bytes = body.len() as u64;
        if let Err(error) = state.rate_limits.admit_key(&key.name, bytes, &mut charged) {
            let who = Some(key.name.as_str());
            auth::audit(&state, &parts, who, (None, "-"), Outcome::RateLimited, 429);
            return throttled(&error, protocol, &request_id);
        }
    }
    let key_name = key.as_ref().map(|key| key.name.clone());
    let parsed = match &target {
        Some(target) => parse_json(target, &body),
        None => parse_query(&parts.method, parts.uri.query(), headers, &body),
    };
    let (action, params) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return error.render(protocol, &request_id),
    };
    let call = Call {
        state: &state,
        params,
        host,
        path_queue,
        key,
        client: crate::http_listener::ClientAddr::ip_of(&parts.extensions),
    };
    let checked = match &call.key {
        Some(key) => auth::authorize(key, &action, &call),
        None => Ok(None),
    };
    let (outcome, managed) = match checked {
        Ok(managed) => (actions::dispatch(&action, call).await, managed),
        Err(error) => {
            if error.name == "AccessDenied" {
                let status = error.status.as_u16();
                let outcome = Outcome::Forbidden;
                auth::audit(
                    &state,
                    &parts,
                    key_name.as_deref(),
                    (None, "-"),
                    outcome,
                    status,
                );
            }
            (Err(error), None)
        }
    };
    let (mut response, known) = match outcome {
        Ok(result) => (render(protocol, &action, &result, &request_id), true),
        Err(error) => {
            if error.status.is_server_error() {
                tracing::error!(action, code = error.name, message = %error.message, "sqs request failed");
            }
            let known = error.name != "InvalidAction";
            (error.render(protocol, &request_id), known)
        }
    };
    if known {
        // For the metrics middleware: the action of either protocol (the query protocol's is
        // in the body, which the middleware cannot read). Only known actions, so the label's
        // values stay a finite set.
        response.extensions_mut().insert(SqsAction(action));
    }
    if let Some(bytes) = axum::body::HttpBody::size_hint(response.body()).exact() {
        state.rate_limits.charge_answer(&charged, bytes);
    }
    if let Some(resource) = managed {
        let status = response.status().as_u16();
        let need = (Some(baton_proto::KeyAction::Manage), resource.as_str());
        let outcome = Outcome::of_status(status);
        auth::audit(&state, &parts, key_name.as_deref(), need, outcome, status);
    }
    response
}

/// A key over its rate limit: `RequestThrottled` (which the AWS SDKs retry with backoff),
/// with `Retry-After`.
fn throttled(
    error: &crate::service::ServiceError,
    protocol: Protocol,
    request_id: &str,
) -> Response {
    let mut response = SqsError::request_throttled(error.to_string()).render(protocol, request_id);
    if let Some(seconds) = error.rate_limit_retry_after_s() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The SQS action a response answered, as a response extension (read by `metrics::track`).
#[derive(Debug, Clone)]
pub struct SqsAction(pub String);

/// `GET /`: the query protocol with parameters in the URL (the SDKs POST, but the query API
/// allows GET); anything else is not found here.
pub async fn handle_get(state: State<AppState>, request: Request) -> Response {
    let is_sqs = request
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Action"));
    if is_sqs {
        return handle(state, request).await;
    }
    // A plain `GET /` is a person with a browser: the dashboard.
    crate::api::dashboard::index()
}

fn parse_json(target: &str, body: &[u8]) -> Result<(String, Map<String, Value>), SqsError> {
    let action = target
        .strip_prefix("AmazonSQS.")
        .ok_or_else(|| {
            SqsError::invalid_action(format!(
                "The action {target} is not valid for this endpoint."
            ))
        })?
        .to_string();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((action, Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(params)) => Ok((action, params)),
        Ok(_) => Err(SqsError::invalid_parameter_value(
            "The request body must be a JSON object.",
        )),
        Err(error) => Err(SqsError::invalid_parameter_value(format!(
            "The request body is not valid JSON: {error}"
        ))),
    }
}

fn parse_query(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Map<String, Value>), SqsError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(query) = query {
        pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        pairs.extend(form_urlencoded::parse(body).into_owned());
    }
    let mut params = protocol::query_to_json(pairs).map_err(|name| {
        SqsError::invalid_parameter_value(format!(
            "The parameter name {name} has more than {} parts.",
            protocol::QUERY_KEY_PARTS_MAX
        ))
    })?;
    let action = match params.remove("Action") {
        Some(Value::String(action)) => action,
        _ => {
            return Err(SqsError::missing_parameter(
                "The request must contain the parameter Action.",
            ))
        }
    };
    params.remove("Version");
    Ok((action, params))
}

fn render(protocol: Protocol, action: &str, result: &Value, request_id: &str) -> Response {
    match protocol {
        Protocol::Json => {
            let mut response = axum::Json(result).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            if let Ok(value) = HeaderValue::from_str(request_id) {
                headers.insert("x-amzn-requestid", value);
            }
            response
        }
        Protocol::Query => {
            let body = protocol::render_xml(action, result, request_id);
            ([(header::CONTENT_TYPE, "text/xml")], body).into_response()
        }
    }
}
