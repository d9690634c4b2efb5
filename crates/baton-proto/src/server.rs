//! Server-level endpoints: health, readiness, node information.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
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
