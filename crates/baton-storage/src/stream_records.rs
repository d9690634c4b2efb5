//! The on-disk record types of stream logs, format version 1.
//!
//! Each stream has its own log (`<data_dir>/streams/<name>/wal-*.seg`, the same segments,
//! frames and group commit as the main log) holding only [`StreamOp`] frames of kind
//! [`KIND_STREAM_OP`]. Each appended record is one frame, so its body can be read back with one
//! positioned read. The compatibility rules of [`crate::records`] apply: never reorder, remove
//! or change a variant or field; add variants at the end.

use serde::{Deserialize, Serialize};

/// A frame of a stream log. Distinct from the main log's kinds, so a stream segment can never
/// be mistaken for a queue log (or the other way round).
pub const KIND_STREAM_OP: u8 = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConfigV1 {
    pub partitions: u32,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub max_records: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartV1 {
    Earliest,
    Latest,
    Offset(u64),
    Time(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingV1 {
    pub partition: u32,
    pub offset: u64,
    pub consumer: String,
    pub delivered_at: u64,
    pub delivery_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupV1 {
    pub name: String,
    pub start: StartV1,
    /// `true` for mode `shared`.
    pub shared: bool,
    pub session_timeout_ms: u64,
    pub positions: Vec<u64>,
    pub pending: Vec<PendingV1>,
}

/// The answer to one idempotent batch: `[(partition, offset, timestamp)]`.
pub type AnswerV1 = Vec<(u32, u64, u64)>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerV1 {
    pub producer: String,
    pub last_seen: u64,
    /// `(sequence, [(partition, offset, timestamp)])`, oldest first.
    pub batches: Vec<(u64, AnswerV1)>,
}

/// Everything about a stream except its records: written when the stream is created and
/// again before retention deletes segments that hold group operations, so the log can always
/// be replayed from its oldest remaining segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSnapshotV1 {
    pub name: String,
    pub config: StreamConfigV1,
    /// Per partition `(first_offset, next_offset)`.
    pub bounds: Vec<(u64, u64)>,
    pub round_robin: u32,
    pub groups: Vec<GroupV1>,
    pub producers: Vec<ProducerV1>,
    pub now: u64,
}

/// One appended record. The records of one append call are consecutive frames
/// (`batch_index` 0..`batch_len`); replay keeps a batch only when all of them are there, so a
/// torn write cannot half-apply a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecordV1 {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: u64,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
    /// `(producer_id, sequence)` of an idempotent append.
    pub producer: Option<(String, u64)>,
    pub batch_index: u32,
    pub batch_len: u32,
    pub now: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamOp {
    Snapshot(StreamSnapshotV1),
    Record(StreamRecordV1),
    GroupCreated(GroupV1),
    GroupDeleted {
        group: String,
    },
    /// A group read handed these `(partition, offset)`s to `consumer`.
    Delivered {
        group: String,
        consumer: String,
        now: u64,
        ids: Vec<(u32, u64)>,
    },
    Claimed {
        group: String,
        consumer: String,
        now: u64,
        ids: Vec<(u32, u64)>,
    },
    Acked {
        group: String,
        ids: Vec<(u32, u64)>,
    },
    /// A seek set these `(partition, position)`s.
    Seeked {
        group: String,
        positions: Vec<(u32, u64)>,
    },
    /// Retention moved these partitions' first offsets.
    Trimmed {
        firsts: Vec<(u32, u64)>,
    },
    /// The stream was deleted; its files are removed after this is durable.
    Deleted,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::records::{decode, encode};

    #[test]
    fn stream_ops_round_trip() {
        let op = StreamOp::Record(StreamRecordV1 {
            partition: 3,
            offset: 9,
            timestamp: 77,
            key: Some("k".to_string()),
            value: "v".to_string(),
            headers: vec![("h".to_string(), "x".to_string())],
            producer: Some(("p".to_string(), 4)),
            batch_index: 0,
            batch_len: 1,
            now: 77,
        });
        let bytes = encode(&op);
        assert_eq!(decode::<StreamOp>(KIND_STREAM_OP, &bytes).unwrap(), op);
    }

    /// Pins the encoding, as `records::tests::the_v1_encoding_is_stable` does.
    #[test]
    fn the_v1_stream_encoding_is_stable() {
        let op = StreamOp::Acked {
            group: "g".to_string(),
            ids: vec![(1, 2)],
        };
        assert_eq!(encode(&op), vec![6, 1, b'g', 1, 1, 2]);
    }
}
