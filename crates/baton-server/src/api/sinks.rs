//! `/v1/sinks`: sinks into PostgreSQL (`crate::sinks`).
//!
//! - `PUT /v1/sinks/{name}` a definition → 201 (created) or 200 (the same one existed).
//! - `GET /v1/sinks` → `SinkList`; `GET /v1/sinks/{name}` → `SinkInfo`.
//! - `POST /v1/sinks/{name}/pause`, `POST /v1/sinks/{name}/resume` → `SinkInfo`.
//! - `DELETE /v1/sinks/{name}` → 204.
//!
//! Parsing and rendering only: every rule is the sink manager's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::AppState;

/// The sink routes, merged into the router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sinks", get(list))
        .route("/v1/sinks/{name}", get(show).put(put).delete(delete))
        .route("/v1/sinks/{name}/pause", post(pause))
        .route("/v1/sinks/{name}/resume", post(resume))
}

pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(definition): ApiJson<proto::SinkDefinition>,
) -> Result<(StatusCode, Json<proto::SinkInfo>), ApiError> {
    let (created, info) = state.sinks.put(&name, definition).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

pub async fn list(State(state): State<AppState>) -> Json<proto::SinkList> {
    Json(state.sinks.list().await)
}

pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::SinkInfo>, ApiError> {
    Ok(Json(state.sinks.show(&name).await?))
}

pub async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::SinkInfo>, ApiError> {
    Ok(Json(state.sinks.set_paused(&name, true).await?))
}

pub async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::SinkInfo>, ApiError> {
    Ok(Json(state.sinks.set_paused(&name, false).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.sinks.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
