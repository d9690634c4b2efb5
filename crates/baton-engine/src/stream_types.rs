//! What the engine's stream operations take and answer (the stream half of the [`Engine`]
//! trait). Semantics live in `baton_core::stream`; these types add the record bodies.
//!
//! [`Engine`]: crate::Engine

use baton_core::stream::{GroupConfig, GroupName, GroupStats, PendingInfo, StreamStats};
use baton_core::{StreamConfig, StreamName, Timestamp};

/// Streams one engine holds at once. Each durable stream has its own log and writer thread,
/// so this bounds threads and open files too.
pub const STREAMS_MAX: usize = 1000;

/// A record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    /// An explicit partition; otherwise `hash(key) % partitions`, or round-robin.
    pub partition: Option<u32>,
}

impl NewRecord {
    /// The size limits count: key, value, header names and values, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.key.as_ref().map_or(0, String::len) + self.value.len() + headers) as u64
    }
}

/// A stored record with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: Timestamp,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

/// A record handed to a group consumer (by a read or a claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    pub record: StreamRecord,
    pub delivery_count: u32,
}

/// A stream as seen from outside: attributes and statistics (groups and their lag included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamView {
    pub name: StreamName,
    pub config: StreamConfig,
    pub stats: StreamStats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub name: GroupName,
    pub config: GroupConfig,
    pub stats: GroupStats,
}

/// The answer to a partition read: the records and the offset to read next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    pub records: Vec<StreamRecord>,
    pub next_offset: u64,
}

/// A group's pending list: the total count and the first entries in id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingView {
    pub count: u64,
    pub entries: Vec<PendingInfo>,
}
