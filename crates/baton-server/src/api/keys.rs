//! `/v1/keys`: create (the only answer that shows a key's secret), list, show, revoke.
//! Admin only (`auth::routes`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(create).get(list))
        .route("/v1/keys/{name}", get(show).delete(revoke))
}

async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<proto::CreateKey>,
) -> Result<(StatusCode, Json<proto::CreatedKey>), ApiError> {
    let created = state.keys.create(request).await?;
    tracing::info!(key = %created.name, "API key created");
    Ok((StatusCode::CREATED, Json(created)))
}

async fn list(State(state): State<AppState>) -> Json<proto::KeyList> {
    Json(state.keys.list())
}

async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<proto::KeyInfo>, ApiError> {
    Ok(Json(state.keys.show(&name)?))
}

async fn revoke(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.keys.revoke(&name).await?;
    tracing::info!(key = %name, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
