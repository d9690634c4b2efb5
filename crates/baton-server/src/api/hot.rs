//! The hot routes: `POST /v1/queues/{queue}/messages`, `.../receive` and `.../ack`, and the
//! SQS API's `POST /` and `POST /000000000000/{queue}`, answered without the general router,
//! for the one-message-per-call sends, receives and acks most clients make (curl, HTTP
//! libraries, AWS SDK loops).
//!
//! The router's layers and extractors cost a large part of such a call's server instructions
//! (route matching, the matched path and connection info as request extensions, two
//! `from_fn` route layers, the trace layer's future, the body-limit layers). This path does
//! only what those layers would do for this route, and is taken only when they would do
//! nothing else:
//! - no rate limits or caller limits are on, keys are not still loading, and (native API)
//!   either no API keys exist or the request's
//!   bearer key is valid and holds the call's permission (`auth::middleware::admitted_key`:
//!   exactly when `authorize` would let it through and do nothing else; every refusal is
//!   the router's to answer and audit),
//! - the trace layer's DEBUG events are off (so it would log nothing),
//! - the path needs no percent-decoding, and the body's length is declared and within
//!   `max_request_bytes` (larger or undeclared bodies take the router, which answers them).
//!
//! What it still does as the router would: the same JSON parsing and errors
//! (`json::required`, `json::optional`), the same service call and answer, and the same
//! request metrics
//! (`baton_http_responses_total` and `baton_http_request_duration_seconds`, under the route's
//! template). Every other
//! request, and every request when any of the conditions fails, goes to the router.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_proto as proto;
use hyper::body::Incoming;

use crate::api::error::ApiError;
use crate::api::json::{self, BodyJson};
use crate::api::sqs::SqsAction;
use crate::auth::middleware::admitted_key;
use crate::auth::store::{KeyEntry, Mode};
use crate::caller_limits::Who;
use crate::http_listener::ClientAddr;
use crate::service::queues;
use crate::state::AppState;

/// A call the hot routes answer, with its queue's name and the key it is made with.
pub(crate) struct HotCall {
    action: Action,
    queue: String,
    key: Option<Arc<KeyEntry>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Send,
    Receive,
    Ack,
    /// `POST /` or `POST /000000000000/{queue}`: the SQS API, which checks its callers itself
    /// (SigV4, `api::sqs::auth`).
    Sqs,
}

impl Action {
    /// The route template the router matches it by (and the metrics name it by).
    fn template(self) -> &'static str {
        match self {
            Action::Send => "/v1/queues/{queue}/messages",
            Action::Receive => "/v1/queues/{queue}/receive",
            Action::Ack => "/v1/queues/{queue}/ack",
            Action::Sqs => "/",
        }
    }
}

/// The call of a request the hot routes answer, or `None` for the router.
pub(crate) fn hot_call(state: &AppState, request: &hyper::Request<Incoming>) -> Option<HotCall> {
    if request.method() != Method::POST {
        return None;
    }
    let path = request.uri().path();
    let (action, queue) = if let Some(rest) = path.strip_prefix("/v1/queues/") {
        let (queue, action) = rest.rsplit_once('/')?;
        let action = match action {
            "messages" => Action::Send,
            "receive" => Action::Receive,
            "ack" => Action::Ack,
            _ => return None,
        };
        (action, queue)
    } else if path == "/" {
        (Action::Sqs, "")
    } else {
        (Action::Sqs, path.strip_prefix("/000000000000/")?)
    };
    if (queue.is_empty() && path != "/") || queue.bytes().any(|b| b == b'/' || b == b'%') {
        return None;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    if declared > state.config.max_request_bytes {
        return None;
    }
    if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
        return None;
    }
    let limits_off = state.rate_limits.is_off() && state.caller_limits.is_off();
    let key = match (state.keys.mode(), action) {
        (Mode::Loading, _) => return None,
        (Mode::Open, _) | (Mode::Enforced, Action::Sqs) => {
            if !limits_off {
                return None;
            }
            None
        }
        (Mode::Enforced, _) => {
            let params = [("queue".to_string(), queue.to_string())];
            Some(admitted_key(
                state,
                request.headers(),
                Method::POST.as_str(),
                action.template(),
                &params,
            )?)
        }
    };
    Some(HotCall {
        action,
        queue: queue.to_string(),
        key,
    })
}

/// Answers `call` the way its handler behind the router does (`api::queues`, `api::sqs`),
/// and records its metrics. `client`: the connection's client address.
pub(crate) async fn answer(
    state: AppState,
    call: HotCall,
    request: hyper::Request<Incoming>,
    client: ClientAddr,
) -> Response {
    let started = Instant::now();
    let action = call.action;
    let response = if action == Action::Sqs {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(client));
        crate::api::sqs::handle(State(state.clone()), request).await
    } else {
        match native(&state, call, request, client).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    };
    // As `metrics::track` labels them: SQS calls by the action they named.
    let (api, label) = match action {
        Action::Sqs => (
            "sqs",
            response
                .extensions()
                .get::<SqsAction>()
                .map_or("unknown", |SqsAction(action)| action.as_str()),
        ),
        other => ("native", other.template()),
    };
    state.http_metrics.record(
        api,
        label,
        Method::POST.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// A native queue call, as its handler in `api::queues` answers it.
async fn native(
    state: &AppState,
    call: HotCall,
    request: hyper::Request<Incoming>,
    client: ClientAddr,
) -> Result<Response, ApiError> {
    let limit = usize::try_from(state.config.max_request_bytes).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(Body::new(request.into_body()), limit)
        .await
        .map_err(|error| {
            ApiError::Malformed(format!("could not read the request body: {error}"))
        })?;
    let queue = &call.queue;
    Ok(match call.action {
        // `answer` gives SQS calls to `api::sqs::handle`; a send is what it can only be here.
        Action::Send | Action::Sqs => {
            let request: proto::SendRequest = json::required(&bytes)?;
            Json(queues::send(state, queue, request).await?).into_response()
        }
        Action::Receive => {
            let request: proto::ReceiveRequest = json::optional(&bytes)?;
            let who = Who {
                key: call.key.clone(),
                client: Some(client.0.ip()),
            };
            BodyJson(queues::receive(state, queue, request, &who).await?).into_response()
        }
        Action::Ack => {
            let request: proto::AckRequest = json::required(&bytes)?;
            Json(queues::ack(state, queue, request).await?).into_response()
        }
    })
}
