//! `/v1/queues/{q}/push` (push subscriptions) and `/v1/callbacks/...` (completion callbacks).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use baton_core::MessageId;
use baton_proto as proto;
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::AppState;

/// Most failed callbacks one listing returns.
pub const FAILED_LIST_MAX: usize = 1_000;
const FAILED_LIST_DEFAULT: usize = 100;

fn queue_name(raw: &str) -> Result<baton_core::QueueName, ApiError> {
    Ok(baton_core::QueueName::new(raw)?)
}

pub async fn put(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::PushSubscription>,
) -> Result<Json<proto::PushInfo>, ApiError> {
    let name = queue_name(&queue)?;
    Ok(Json(state.push.put(&name, request).await?))
}

pub async fn get(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<proto::PushInfo>, ApiError> {
    let name = queue_name(&queue)?;
    Ok(Json(state.push.get(&name).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = queue_name(&queue)?;
    state.push.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    max: Option<String>,
}

pub async fn failed(
    State(state): State<AppState>,
    Query(query): Query<FailedQuery>,
) -> Result<Json<proto::FailedCallbackList>, ApiError> {
    let max = match query.max {
        None => FAILED_LIST_DEFAULT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=FAILED_LIST_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "max",
                    format!("{text:?} is not a number in 1..={FAILED_LIST_MAX}"),
                ))
            }
        },
    };
    Ok(Json(state.callbacks.failed(max).await?))
}

pub async fn retry(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
) -> Result<Json<proto::CallbackRetryResult>, ApiError> {
    let name = queue_name(&queue)?;
    let id = MessageId::parse(&id)
        .ok_or_else(|| ApiError::invalid("id", format!("{id:?} is not a message id")))?;
    Ok(Json(state.callbacks.retry(&name, id).await?))
}
