//! Schedules: `/v1/schedules/...` (cron and one-shot firings of a message to a queue, a
//! topic or a stream).
//!
//! Each firing sends `message` to `target` with the dedup id `schedule:<name>:<tick>` (the
//! tick in milliseconds since the epoch), so a tick is delivered once even when a restart
//! makes the server send it again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An instant: milliseconds since the Unix epoch, or an RFC 3339 text
/// (`"2026-12-24T09:00:00+09:00"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Instant {
    Millis(u64),
    Text(String),
}

/// Where firings go: exactly one of the three.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

/// What every firing sends. `group_id` is for FIFO queues (and topics reaching them),
/// `routing_key` for topics, `key` for streams; attributes are a stream record's headers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleMessage {
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `PUT /v1/schedules/{name}`: `cron` (five fields, or six with seconds first) with an
/// optional `timezone` (IANA, default `UTC`), or a one-shot `at`. `missed` is `skip`, `once`
/// (the default) or `all`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Instant>,
    pub target: ScheduleTarget,
    #[serde(default)]
    pub message: ScheduleMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// How one firing went. Times are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireOutcomeInfo {
    /// The tick fired (for `fire`: when it was asked for).
    pub tick: u64,
    pub fired_at: u64,
    pub ok: bool,
    /// What was sent (message id, offsets), or why the send failed.
    pub detail: String,
    /// Asked for with `POST .../fire`.
    pub manual: bool,
}

/// A schedule: its definition, state and figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    pub target: ScheduleTarget,
    pub message: ScheduleMessage,
    pub missed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<u64>,
    pub paused: bool,
    /// `active`, `paused` or `finished` (a one-shot that fired, a window that ended).
    pub state: String,
    /// Changes with every change of the definition.
    pub version: u64,
    pub created_at: u64,
    pub updated_at: u64,
    /// Every tick at or before this is done (fired, or counted as missed).
    pub position: u64,
    /// The next five fire times (ticks already due first).
    pub next_fires: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<FireOutcomeInfo>,
    pub fired: u64,
    pub missed_ticks: u64,
    pub failures: u64,
}

/// `GET /v1/schedules?after=&max=`: schedules in name order. `next_after` is set when there
/// may be more: pass it as `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// `POST /v1/schedules/{name}/fire`'s answer: the firing's outcome and the schedule after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FireResponse {
    pub outcome: FireOutcomeInfo,
    pub schedule: ScheduleInfo,
}
