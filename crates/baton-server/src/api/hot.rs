//! The hot route: `POST /v1/queues/{queue}/messages` answered without the general router,
//! for the single-message sends most clients make (curl, HTTP libraries, one call per message).
//!
//! The router's layers and extractors cost about a fifth of such a send's server instructions
//! (route matching, the matched path and connection info as request extensions, two
//! `from_fn` route layers, the trace layer's future, the body-limit layers). This path does
//! only what those layers would do for this route, and is taken only when they would do
//! nothing else:
//! - no API keys, rate limits or caller limits are on (so `auth::middleware::authorize`
//!   would pass the request straight through),
//! - the trace layer's DEBUG events are off (so it would log nothing),
//! - the path needs no percent-decoding, and the body's length is declared and within
//!   `max_request_bytes` (larger or undeclared bodies take the router, which answers them).
//!
//! What it still does as the router would: the same JSON parsing and errors
//! (`json::required`), the same service call and answer, and the same request metrics
//! (`baton_http_responses_total` and `baton_http_request_duration_seconds`, under the route's
//! template). Every other
//! request, and every request when any of the conditions fails, goes to the router.

use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_proto as proto;
use hyper::body::Incoming;

use crate::api::error::ApiError;
use crate::api::json;
use crate::auth::store::Mode;
use crate::service::queues;
use crate::state::AppState;

/// The route template the metrics name this route by (as the router's `MatchedPath`).
const SEND_TEMPLATE: &str = "/v1/queues/{queue}/messages";

/// The queue of a request the hot route answers, or `None` for the router.
pub(crate) fn send_queue<'r>(
    state: &AppState,
    request: &'r hyper::Request<Incoming>,
) -> Option<&'r str> {
    if request.method() != Method::POST {
        return None;
    }
    let queue = request
        .uri()
        .path()
        .strip_prefix("/v1/queues/")?
        .strip_suffix("/messages")?;
    if queue.is_empty() || queue.bytes().any(|b| b == b'/' || b == b'%') {
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
    let checks_nothing = state.keys.mode() == Mode::Open
        && state.rate_limits.is_off()
        && state.caller_limits.is_off();
    let traces_nothing = !tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG);
    (checks_nothing && traces_nothing).then_some(queue)
}

/// Answers a send the way `queues::send` behind the router does, and records its metrics.
pub(crate) async fn send(
    state: AppState,
    queue: String,
    request: hyper::Request<Incoming>,
) -> Response {
    let started = Instant::now();
    let limit = usize::try_from(state.config.max_request_bytes).unwrap_or(usize::MAX);
    let response = match answer(&state, &queue, request, limit).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    state.http_metrics.record(
        "native",
        SEND_TEMPLATE,
        Method::POST.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn answer(
    state: &AppState,
    queue: &str,
    request: hyper::Request<Incoming>,
    limit: usize,
) -> Result<Response, ApiError> {
    let bytes = axum::body::to_bytes(Body::new(request.into_body()), limit)
        .await
        .map_err(|error| {
            ApiError::Malformed(format!("could not read the request body: {error}"))
        })?;
    let request: proto::SendRequest = json::required(&bytes)?;
    Ok(Json(queues::send(state, queue, request).await?).into_response())
}
