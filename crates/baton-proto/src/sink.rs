//! Sinks (`/v1/sinks/...`): a background task of the server that copies a stream, a queue or
//! a topic into a PostgreSQL table, exactly once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PUT /v1/sinks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkDefinition {
    pub source: SinkSource,
    pub postgres: PostgresTarget,
    /// Most rows one transaction writes (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_max: Option<u32>,
    /// How long a batch that is not full waits for more rows before it is written (default
    /// 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_ms: Option<u64>,
}

/// Where a sink reads: exactly one of `stream` (optionally through `group`), `topic`
/// (optionally only the routing keys matching `pattern`) or `queue`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// The table a sink writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresTarget {
    /// `postgres://user[:password]@host[:port]/database[?options]`.
    pub url: String,
    /// `table` or `schema.table`; quoted as given, so case is kept.
    pub table: String,
    /// Create the table (and the positions table) if missing (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_table: Option<bool>,
    /// Columns filled from each message instead of the default ones: column name → what goes
    /// in it (`$.field.sub` of a JSON body, or `$id`, `$source`, `$partition`, `$offset`,
    /// `$key`, `$headers`, `$value`, `$value_text`, `$timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<BTreeMap<String, SinkColumn>>,
}

/// One custom column: `"$.path"`, or `{"path": "$.path", "type": "bigint"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SinkColumn {
    Path(String),
    Typed {
        path: String,
        /// The column's PostgreSQL type when the sink creates the table (default `text`).
        #[serde(rename = "type")]
        sql_type: String,
    },
}

/// A sink as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkInfo {
    pub name: String,
    /// The definition with its defaults filled in and the URL's password hidden.
    pub definition: SinkDefinition,
    /// `running`, `paused` or `retrying` (PostgreSQL or the source failed; it backs off and
    /// tries again by itself).
    pub state: String,
    pub stats: SinkStats,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SinkStats {
    /// Rows this sink committed since the server started.
    pub rows_written_total: u64,
    /// Rows that were already in the table (a message delivered again) and were skipped.
    pub duplicates_skipped_total: u64,
    /// Batches committed since the server started.
    pub batches_total: u64,
    /// Stream records retention removed before the sink could write them.
    pub expired_skipped_total: u64,
    /// Failed attempts (PostgreSQL or the source) since the server started.
    pub errors_total: u64,
    /// Messages of the source not yet in the table, as of the last look.
    pub lag: u64,
    /// The last failure, until a batch succeeds again.
    pub last_error: Option<String>,
    /// When the last failure happened (ms since the epoch).
    pub last_error_at: Option<u64>,
    /// The next attempt's delay while retrying.
    pub retry_in_ms: Option<u64>,
}

/// `GET /v1/sinks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkList {
    pub sinks: Vec<SinkInfo>,
}

/// What the server keeps durably for a sink (in its internal queue's metadata): the
/// definition with its defaults, and whether it is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSink {
    pub definition: SinkDefinition,
    #[serde(default)]
    pub paused: bool,
}
