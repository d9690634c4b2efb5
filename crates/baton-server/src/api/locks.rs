//! `/v1/locks`: distributed locks with fencing tokens over the engine's `LockEngine`.
//!
//! - `PUT /v1/locks/{name}` `{"holder", "ttl_ms", "wait_ms"?}` → `LockInfo`, or 409
//!   `lock_held` with the current holder and expiry in the body's `lock`.
//! - `POST /v1/locks/{name}/renew` `{"holder", "token", "ttl_ms"}` → `LockInfo`.
//! - `POST /v1/locks/{name}/release` `{"holder", "token"}` → `{"released"}`.
//! - `GET /v1/locks/{name}` → `LockInfo` or 404 `lock_not_found`.
//! - `GET /v1/locks?prefix=&after=&max=` → `LockList`.
//!
//! Parsing and rendering only: every rule is the engine's (and `baton_core::lock`'s).

use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use baton_core::lock::LOCK_LIST_MAX;
use baton_core::lock::{FencingToken, Holder, LockError, LockHold, LockName, Released};
use baton_engine::LockEngineError;
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::api::streams::{number, query};
use crate::api::AppState;

/// The lock routes, merged into the router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/locks", get(list))
        .route("/v1/locks/{name}", put(acquire).get(show))
        .route("/v1/locks/{name}/renew", post(renew))
        .route("/v1/locks/{name}/release", post(release))
}

fn lock_error(error: LockError) -> ApiError {
    ApiError::Lock(LockEngineError::Lock(error))
}

fn name(state: &AppState, raw: &str) -> Result<LockName, ApiError> {
    LockName::new(raw, &state.engine.lock_settings().limits).map_err(lock_error)
}

fn holder(raw: &str) -> Result<Holder, ApiError> {
    Holder::new(raw).map_err(lock_error)
}

fn to_wire(hold: LockHold) -> proto::LockInfo {
    proto::LockInfo {
        name: hold.name.to_string(),
        holder: hold.holder.to_string(),
        token: hold.token.get(),
        acquired_at: hold.acquired_at.as_millis(),
        expires_at: hold.expires_at.as_millis(),
    }
}

pub async fn acquire(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(request): ApiJson<proto::AcquireLock>,
) -> Result<Json<proto::LockInfo>, ApiError> {
    let name = name(&state, &raw)?;
    let holder = holder(&request.holder)?;
    let hold = state
        .engine
        .acquire_lock(&name, &holder, request.ttl_ms, request.wait_ms.unwrap_or(0))
        .await?;
    Ok(Json(to_wire(hold)))
}

pub async fn renew(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(request): ApiJson<proto::RenewLock>,
) -> Result<Json<proto::LockInfo>, ApiError> {
    let name = name(&state, &raw)?;
    let holder = holder(&request.holder)?;
    let hold = state
        .engine
        .renew_lock(
            &name,
            &holder,
            FencingToken::new(request.token),
            request.ttl_ms,
        )
        .await?;
    Ok(Json(to_wire(hold)))
}

pub async fn release(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(request): ApiJson<proto::ReleaseLock>,
) -> Result<Json<proto::ReleaseResponse>, ApiError> {
    let name = name(&state, &raw)?;
    let holder = holder(&request.holder)?;
    let released = state
        .engine
        .release_lock(&name, &holder, FencingToken::new(request.token))
        .await?;
    Ok(Json(proto::ReleaseResponse {
        released: released == Released::Released,
    }))
}

pub async fn show(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<proto::LockInfo>, ApiError> {
    let name = name(&state, &raw)?;
    match state.engine.get_lock(&name).await? {
        Some(hold) => Ok(Json(to_wire(hold))),
        None => Err(lock_error(LockError::NotHeld {
            name: name.to_string(),
        })),
    }
}

pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<proto::LockList>, ApiError> {
    let params = query(raw, &["prefix", "after", "max"])?;
    let prefix = params.get("prefix").map_or("", String::as_str);
    let after = params.get("after").map(String::as_str);
    let max = number::<usize>(&params, "max")?.unwrap_or(100);
    if !(1..=LOCK_LIST_MAX).contains(&max) {
        return Err(ApiError::invalid(
            "max",
            format!("{max} is outside 1..={LOCK_LIST_MAX}"),
        ));
    }
    let locks = state.engine.list_locks(prefix, after, max).await?;
    let next_after = (locks.len() == max)
        .then(|| locks.last().map(|hold| hold.name.to_string()))
        .flatten();
    Ok(Json(proto::LockList {
        locks: locks.into_iter().map(to_wire).collect(),
        next_after,
    }))
}

/// A send with `"fence"`: checked and enqueued atomically by the engine.
pub(crate) async fn send_fenced(
    state: &AppState,
    queue: &str,
    entries: Vec<baton_core::SendEntry>,
    fence: proto::Fence,
) -> Result<proto::SendResponse, ApiError> {
    let queue = baton_core::QueueName::new(queue)?;
    let lock = name(state, &fence.lock)?;
    let outcomes = state
        .engine
        .send_fenced(&queue, entries, &lock, FencingToken::new(fence.token))
        .await?;
    Ok(proto::SendResponse {
        messages: outcomes
            .into_iter()
            .map(|o| proto::SentMessage {
                id: o.id.to_string(),
                seq: o.seq,
                duplicate: o.duplicate,
            })
            .collect(),
    })
}
