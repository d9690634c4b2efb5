//! `/v1/keys`: create (the only answer that shows a key's secret), list, show, revoke.
//! Admin only (`auth::routes`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::AppState;
use crate::auth::{tickets, Caller};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(create).get(list))
        .route("/v1/keys/{name}", get(show).delete(revoke))
        .route("/v1/tickets", post(ticket))
}

/// `POST /v1/tickets` (any valid key): a short-lived ticket for the caller's key
/// (`auth::tickets`), for a browser's `EventSource` or `WebSocket`.
async fn ticket(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<proto::Ticket>), ApiError> {
    let request: proto::CreateTicket = if body.iter().all(u8::is_ascii_whitespace) {
        proto::CreateTicket::default()
    } else {
        crate::api::json::parse(&body)?
    };
    let ttl_ms = request.ttl_ms.unwrap_or(tickets::TTL_MS_DEFAULT);
    if !(tickets::TTL_MS_MIN..=tickets::TTL_MS_MAX).contains(&ttl_ms) {
        return Err(ApiError::invalid(
            "ttl_ms",
            format!(
                "{ttl_ms} is out of range {}..={}",
                tickets::TTL_MS_MIN,
                tickets::TTL_MS_MAX
            ),
        ));
    }
    let Some(key) = caller.and_then(|Extension(caller)| caller.0) else {
        // No keys on this server: streams need no ticket.
        return Ok((
            StatusCode::OK,
            Json(proto::Ticket {
                ticket: None,
                key: None,
                expires_at: None,
            }),
        ));
    };
    let mut expires_at = state.engine.now().as_millis().saturating_add(ttl_ms);
    if let Some(key_expiry) = key.expires_at {
        expires_at = expires_at.min(key_expiry);
    }
    Ok((
        StatusCode::CREATED,
        Json(proto::Ticket {
            ticket: Some(tickets::issue(&key, expires_at)),
            key: Some(key.name.clone()),
            expires_at: Some(expires_at),
        }),
    ))
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
