//! `/v1/queues`: the native queue API over HTTP. Parses and renders only; the checks and
//! the engine calls are the service layer's (`service::queues`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use baton_proto as proto;
use baton_proto::{BatchResponse, ItemResult};

use crate::api::error::ApiError;
use crate::api::json::{ApiJson, BodyJson, OptionalJson};
use crate::auth::Caller;
use crate::service::queues;
use crate::state::AppState;

/// Only the queues the caller's key may see (every queue without keys).
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<proto::QueueList>, ApiError> {
    let mut list = queues::list(&state).await?;
    if let Some(Extension(caller)) = caller {
        list.queues
            .retain(|q| caller.sees(&format!("queue:{}", q.name)));
    }
    Ok(Json(list))
}

pub async fn create(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    OptionalJson(request): OptionalJson<proto::CreateQueue>,
) -> Result<Response, ApiError> {
    let (created, info) = queues::create(&state, &queue, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<proto::QueueInfo>, ApiError> {
    Ok(Json(queues::show(&state, &queue).await?))
}

pub async fn update(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::UpdateQueue>,
) -> Result<Json<proto::QueueInfo>, ApiError> {
    Ok(Json(queues::update(&state, &queue, request).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<StatusCode, ApiError> {
    queues::delete(&state, &queue).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn purge(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<proto::PurgeResponse>, ApiError> {
    Ok(Json(queues::purge(&state, &queue).await?))
}

pub async fn send(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::SendRequest>,
) -> Result<Json<proto::SendResponse>, ApiError> {
    Ok(Json(queues::send(&state, &queue, request).await?))
}

pub async fn receive(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    who: crate::caller_limits::Who,
    OptionalJson(request): OptionalJson<proto::ReceiveRequest>,
) -> Result<BodyJson<proto::ReceiveResponse>, ApiError> {
    Ok(BodyJson(
        queues::receive(&state, &queue, request, &who).await?,
    ))
}

pub async fn ack(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::AckRequest>,
) -> Result<Json<proto::AckResponse>, ApiError> {
    Ok(Json(queues::ack(&state, &queue, request).await?))
}

pub async fn nack(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::NackRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    Ok(Json(queues::nack(&state, &queue, request).await?))
}

pub async fn visibility(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    ApiJson(request): ApiJson<proto::VisibilityRequest>,
) -> Result<Json<ItemResult>, ApiError> {
    Ok(Json(queues::visibility(&state, &queue, request).await?))
}

pub async fn message_status(
    State(state): State<AppState>,
    Path((queue, id)): Path<(String, String)>,
) -> Result<Json<proto::MessageStatus>, ApiError> {
    Ok(Json(queues::message_status(&state, &queue, &id).await?))
}

pub async fn redrive(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    OptionalJson(request): OptionalJson<proto::RedriveRequest>,
) -> Result<Json<proto::RedriveResponse>, ApiError> {
    Ok(Json(queues::redrive(&state, &queue, request).await?))
}
