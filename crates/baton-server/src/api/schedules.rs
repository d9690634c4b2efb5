//! `/v1/schedules`: cron and one-shot schedules over `service::schedules`.
//!
//! - `PUT /v1/schedules/{name}` `PutSchedule` → 201 (created) or 200 (replaced) `ScheduleInfo`.
//! - `GET /v1/schedules/{name}` → `ScheduleInfo` (with the next five fire times and the last
//!   outcome), or 404 `schedule_not_found`.
//! - `GET /v1/schedules?after=&max=` → `ScheduleList`.
//! - `DELETE /v1/schedules/{name}` → 204.
//! - `POST /v1/schedules/{name}/pause`, `.../resume` → `ScheduleInfo`.
//! - `POST /v1/schedules/{name}/fire` → `FireResponse` (sends the message now).
//!
//! Parsing and rendering only: every rule is the service's (and `baton_core::schedule`'s).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::streams::{number, query};
use crate::api::AppState;
use crate::service::schedules as service;

/// The schedule routes, merged into the router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules", get(list))
        .route("/v1/schedules/{name}", get(show).put(put).delete(delete))
        .route("/v1/schedules/{name}/pause", post(pause))
        .route("/v1/schedules/{name}/resume", post(resume))
        .route("/v1/schedules/{name}/fire", post(fire))
}

async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<proto::PutSchedule>,
) -> Result<Response, ApiError> {
    let (created, info) = service::put(&state, &name, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::ScheduleInfo>, ApiError> {
    Ok(Json(service::show(&state, &name).await?))
}

async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<proto::ScheduleList>, ApiError> {
    let params = query(raw, &["after", "max"])?;
    let after = params.get("after").map(String::as_str);
    let max = number::<usize>(&params, "max")?.unwrap_or(100);
    Ok(Json(service::list(&state, after, max).await?))
}

async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::delete(&state, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::ScheduleInfo>, ApiError> {
    Ok(Json(service::set_paused(&state, &name, true).await?))
}

async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::ScheduleInfo>, ApiError> {
    Ok(Json(service::set_paused(&state, &name, false).await?))
}

async fn fire(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::FireResponse>, ApiError> {
    Ok(Json(service::fire(&state, &name).await?))
}
