//! Liveness, readiness and node information.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_proto::{Health, Readiness, ServerInfo};

use crate::api::AppState;

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// 200 once storage is recovered, 503 before.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let ready = state.engine.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready }))
}

pub async fn server_info(State(state): State<AppState>) -> Json<ServerInfo> {
    Json(info(&state))
}

/// What `/v1/server` answers (also part of every live snapshot).
pub fn info(state: &AppState) -> ServerInfo {
    ServerInfo {
        node_id: state.node_id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        engine: state.engine.kind().to_string(),
        data_dir: state.config.data_dir.display().to_string(),
        listen: state.listen.to_string(),
        wire_listen: state.wire_listen.as_deref().map(str::to_string),
        wire_path: Some(baton_proto::wire::UPGRADE_PATH.to_string()),
        cluster_members: vec![state.node_id.to_string()],
    }
}
