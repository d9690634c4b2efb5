//! Liveness, readiness and node information.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use baton_proto::{DiskInfo, Health, MemoryInfo, Readiness, ServerInfo, StorageState};

use crate::api::AppState;

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_string(),
    })
}

/// 200 while the node serves consumers, 503 when it cannot serve at all (recovering, or its
/// log stopped); the fields say whether writes are accepted and why not.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let mut readiness = readiness(state.engine.as_ref());
    readiness.keys_required = state.keys.mode() == crate::auth::Mode::Enforced;
    if readiness.ready && state.keys.mode() == crate::auth::Mode::Loading {
        // Storage is back, but requests wait for the API keys (`auth::store`).
        readiness.ready = false;
        readiness.accepts_writes = false;
        readiness.accepts_consumers = false;
        readiness.reason = Some("the API keys are loading".to_string());
    }
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness))
}

/// What `/ready` answers (the dashboard shows the same).
pub fn readiness(engine: &dyn baton_engine::Engine) -> Readiness {
    let disk = engine.disk_status();
    let failure = engine.storage_failure();
    let (storage, reason) = if !engine.is_ready() {
        (
            StorageState::Recovering,
            Some("storage is recovering".to_string()),
        )
    } else if let Some(reason) = failure {
        let full = disk.is_some_and(|d| d.log_stopped_full);
        let storage = if full {
            StorageState::DiskFull
        } else {
            StorageState::Failed
        };
        (storage, Some(reason))
    } else if let Some(d) = disk.filter(|d| d.low) {
        let reason = format!(
            "disk space low: {} bytes free, below disk_free_min ({}); sends, publishes and stream appends are refused until space is freed",
            d.free_bytes, d.free_min_bytes
        );
        (StorageState::DiskLow, Some(reason))
    } else {
        (StorageState::Ok, None)
    };
    let serves = matches!(storage, StorageState::Ok | StorageState::DiskLow);
    let memory = engine.memory_status();
    let memory_alarm = memory.is_some_and(|m| m.alarm);
    let reason = match memory.filter(|m| m.alarm) {
        Some(m) if storage == StorageState::Ok => Some(format!(
            "memory alarm: messages hold {} bytes, at or above memory_high_watermark ({}); sends, publishes and stream appends are refused until consumers drain",
            m.used_bytes, m.high_watermark_bytes
        )),
        _ => reason,
    };
    Readiness {
        ready: serves,
        accepts_writes: storage == StorageState::Ok && !memory_alarm,
        accepts_consumers: serves,
        storage,
        reason,
        memory: memory.map(|m| MemoryInfo {
            used_bytes: m.used_bytes,
            resident_bytes: m.resident_bytes,
            high_watermark_bytes: m.high_watermark_bytes,
            alarm: m.alarm,
            refused_writes: m.refused_writes,
        }),
        disk: disk.map(|d| DiskInfo {
            free_bytes: d.free_bytes,
            free_min_bytes: d.free_min_bytes,
            low: d.low,
            reserve_present: d.reserve_present,
            reserve_bytes: d.reserve_bytes,
            refused_writes: d.refused_writes,
        }),
        keys_required: false,
    }
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
