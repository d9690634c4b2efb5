//! `POST /v1/queues/{q}/request` and `POST /v1/replies/{correlation_id}` over HTTP
//! (request/response: `service::replies`), and the request/reply figures of `/metrics`.

use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::Json;
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::service::replies;
use crate::state::AppState;

pub async fn request(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::RequestMessage>,
) -> Result<Json<proto::RequestResponse>, ApiError> {
    Ok(Json(replies::request(&state, &queue, request).await?))
}

pub async fn reply(
    State(state): State<AppState>,
    Path(correlation_id): Path<String>,
    ApiJson(reply): ApiJson<proto::Reply>,
) -> Result<Json<proto::ReplyOutcome>, ApiError> {
    Ok(Json(replies::reply(&state, correlation_id, reply)?))
}

/// The request/reply figures for `/metrics`.
pub fn write_metrics(state: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    let replies = &state.replies;
    super::metrics::family(
        out,
        "baton_requests_pending",
        "gauge",
        "Requests waiting for their replies.",
    );
    let _ = writeln!(out, "baton_requests_pending {}", replies.n_pending());
    for (name, help, value) in [
        (
            "baton_replies_delivered_total",
            "Replies handed to a waiting request.",
            &replies.delivered_total,
        ),
        (
            "baton_replies_discarded_total",
            "Replies discarded because no request waited for them (late, repeated or unknown).",
            &replies.discarded_total,
        ),
        (
            "baton_requests_timed_out_total",
            "Requests answered 504 because no reply came in time.",
            &replies.timed_out_total,
        ),
    ] {
        super::metrics::family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
    }
}
