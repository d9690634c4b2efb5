//! Server-level endpoints: health, readiness, node information.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// `GET /ready`: 200 when the node serves consumers (receives, acks, reads), 503 when it
/// cannot serve at all; the fields say which capabilities it has right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    /// Sends, publishes and stream appends are accepted (false while the disk is low or the
    /// memory alarm is on).
    #[serde(default)]
    pub accepts_writes: bool,
    /// Receives, acks, nacks and visibility changes are served.
    #[serde(default)]
    pub accepts_consumers: bool,
    #[serde(default)]
    pub storage: StorageState,
    /// Why a capability is missing, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The data directory's disk (the embedded engine only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskInfo>,
    /// The process's memory and the memory alarm (engines that hold messages in the process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryInfo>,
    /// Requests need an API key (keys exist on this server): what the dashboard asks for
    /// before it opens anything.
    #[serde(default)]
    pub keys_required: bool,
}

/// Memory in use and the memory alarm (`memory_high_watermark`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryInfo {
    /// Memory the broker holds for messages (bodies, attributes, index entries) at the last
    /// sample: what the alarm compares with its threshold.
    pub used_bytes: u64,
    /// The process's resident memory when asked (0 where it cannot be read).
    #[serde(default)]
    pub resident_bytes: u64,
    /// The alarm's threshold; 0 when the alarm is off.
    pub high_watermark_bytes: u64,
    /// The memory alarm is on: producers are refused.
    pub alarm: bool,
    /// Writes the alarm refused since start.
    pub refused_writes: u64,
}

/// The state of a node's storage, for `/ready` and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// Everything works.
    #[default]
    Ok,
    /// Recovery has not finished.
    Recovering,
    /// Below `disk_free_min`: producers are refused, consumers go on.
    DiskLow,
    /// A log stopped because the disk is full; it reopens by itself once there is space.
    DiskFull,
    /// A log stopped because the disk failed; it reopens by itself once the disk works.
    Failed,
}

/// Free space and the disk-free alarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskInfo {
    pub free_bytes: u64,
    pub free_min_bytes: u64,
    /// The disk-free alarm is on.
    pub low: bool,
    /// The emergency reserve (`disk_reserve_bytes`) is in place.
    pub reserve_present: bool,
    pub reserve_bytes: u64,
    /// Writes the alarm refused since start.
    pub refused_writes: u64,
}

/// `GET /v1/server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub node_id: String,
    pub version: String,
    pub uptime_ms: u64,
    pub engine: String,
    pub data_dir: String,
    pub listen: String,
    /// Where a dedicated port serves the framed TCP protocol (docs/wire-protocol.md); absent
    /// when it is off (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_listen: Option<String>,
    /// The HTTP path that upgrades a connection to the framed protocol (`/v1/wire`); absent
    /// from servers that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_path: Option<String>,
    pub cluster_members: Vec<String>,
}
