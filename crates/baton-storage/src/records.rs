//! The engine's on-disk record types, format version 1.
//!
//! These are dedicated storage types: plain fields, no domain or wire types, so that changing
//! a domain type never silently changes the disk format. They are encoded with postcard into
//! frame payloads. Compatibility rules: never reorder, remove or change a variant or field;
//! add new variants at the end of an enum; anything else needs a new frame kind.
//!
//! Frame kinds: [`KIND_QUEUE_OP`] for [`QueueOp`] in log segments, [`KIND_CHECKPOINT`] for
//! [`CheckpointPart`] in checkpoints.

use serde::{Deserialize, Serialize};

/// A log record: one whole engine operation on the queues.
pub const KIND_QUEUE_OP: u8 = 1;
/// One part of a checkpoint.
pub const KIND_CHECKPOINT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigV1 {
    pub fifo: bool,
    pub visibility_timeout_ms: u64,
    pub delay_ms: u64,
    pub retention_ms: u64,
    pub max_message_bytes: u32,
    pub receive_wait_ms: u64,
    /// `(queue, max_receive_count)`.
    pub dead_letter: Option<(String, u32)>,
    pub content_based_dedup: bool,
    pub max_depth: Option<u64>,
    /// `(base_delay_ms, max_delay_ms)`.
    pub retry: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeDataV1 {
    Text(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeV1 {
    pub name: String,
    pub data_type: String,
    pub data: AttributeDataV1,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyV1 {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryV1 {
    pub id: u128,
    /// Shared with the queue's copy: logging a send does not copy its body. Serialized as a
    /// string, so the format is the one a `String` had.
    pub body: std::sync::Arc<str>,
    pub attributes: Vec<AttributeV1>,
    pub delay_ms: Option<u64>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub notify: Option<NotifyV1>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryV1 {
    /// The event's stable name ("sent", "received", ...).
    pub event: String,
    pub at: u64,
    pub receive_count: u32,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedV1 {
    pub id: u128,
    pub body: String,
    pub attributes: Vec<AttributeV1>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub notify: Option<NotifyV1>,
    pub sent_at: u64,
    pub source: String,
    pub dead_letter_source: Option<String>,
    pub history: Vec<HistoryV1>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptV1 {
    pub seq: u64,
    pub lease: u64,
}

/// One engine operation, logged after it was applied and replayed in log order at recovery.
/// Every variant carries the time it was applied at, so replay reaches the same state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueOp {
    CreateQueue {
        name: String,
        config: ConfigV1,
        epoch: u64,
        now: u64,
    },
    UpdateQueue {
        name: String,
        config: ConfigV1,
        now: u64,
    },
    DeleteQueue {
        name: String,
        now: u64,
    },
    Send {
        queue: String,
        now: u64,
        entries: Vec<EntryV1>,
    },
    Receive {
        queue: String,
        now: u64,
        max: u32,
        visibility_timeout_ms: Option<u64>,
    },
    Ack {
        queue: String,
        now: u64,
        receipts: Vec<ReceiptV1>,
    },
    Nack {
        queue: String,
        now: u64,
        receipts: Vec<ReceiptV1>,
        delay_ms: Option<u64>,
    },
    ChangeVisibility {
        queue: String,
        now: u64,
        receipt: ReceiptV1,
        timeout_ms: u64,
    },
    /// Time-driven changes (expiry, ended leases) observed at `now`.
    Advance {
        queue: String,
        now: u64,
    },
    Purge {
        queue: String,
        now: u64,
    },
    /// Leases ended at start-up: leases are not durable.
    ReleaseLeases {
        queue: String,
        now: u64,
    },
    /// Messages taken out of `queue` to move elsewhere; `destinations[i]` receives `seqs[i]`.
    TakeForMove {
        queue: String,
        now: u64,
        seqs: Vec<u64>,
        destinations: Vec<String>,
    },
    /// A moved message arriving in `queue`. `kind` is the history event ("dead_lettered",
    /// "redriven").
    AcceptMoved {
        queue: String,
        now: u64,
        message: MovedV1,
        kind: String,
    },
    /// The queue's tags and API-specific attributes (e.g. SQS `Policy`), replaced whole.
    SetMeta {
        queue: String,
        now: u64,
        tags: Vec<(String, String)>,
        attributes: Vec<(String, String)>,
    },
    /// The outcome of a completion callback of finished message `id`, recorded on its status
    /// record (`reason` says why it failed).
    RecordCallback {
        queue: String,
        now: u64,
        id: u128,
        succeeded: bool,
        reason: Option<String>,
    },
    /// The queue's HTTP push subscription, set (`Some`) or removed (`None`) whole.
    SetPush {
        queue: String,
        now: u64,
        push: Option<PushV1>,
    },
}

/// An HTTP push subscription of a queue (the broker POSTs each message to `url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushV1 {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub concurrency: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub rate_per_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotalsV1 {
    pub sent_total: u64,
    pub duplicates_total: u64,
    pub received_total: u64,
    pub acked_total: u64,
    pub nacked_total: u64,
    pub dead_lettered_total: u64,
    pub expired_total: u64,
    pub purged_total: u64,
    pub moved_in_total: u64,
    pub moved_out_total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageStateV1 {
    Delayed { until: u64 },
    Visible,
    InFlight { deadline: u64, lease: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageV1 {
    pub seq: u64,
    pub id: u128,
    pub body: String,
    pub attributes: Vec<AttributeV1>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub notify: Option<NotifyV1>,
    pub sent_at: u64,
    pub state: MessageStateV1,
    pub receive_count: u32,
    pub first_received_at: Option<u64>,
    pub dead_letter_source: Option<String>,
    pub history: Vec<HistoryV1>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupV1 {
    pub dedup_id: String,
    pub id: u128,
    pub seq: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedV1 {
    pub id: u128,
    pub finished_at: u64,
    /// The status's stable name ("COMPLETED", ...).
    pub status: String,
    pub history: Vec<HistoryV1>,
}

/// A checkpoint is `Start`, then per queue a `Queue` header followed by its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointPart {
    /// Every log record up to `start_lsn` is reflected in the checkpoint.
    Start { start_lsn: u64 },
    /// A queue as of `covered_lsn` (≥ `start_lsn`): its records up to there are reflected.
    Queue {
        name: String,
        covered_lsn: u64,
        config: ConfigV1,
        epoch: u64,
        next_seq: u64,
        next_lease: u64,
        totals: TotalsV1,
    },
    Messages {
        queue: String,
        messages: Vec<MessageV1>,
    },
    Dedup {
        queue: String,
        entries: Vec<DedupV1>,
    },
    Archive {
        queue: String,
        records: Vec<ArchivedV1>,
    },
    /// The queue's creation and modification times, tags and API-specific attributes.
    Meta {
        queue: String,
        created_at: u64,
        modified_at: u64,
        tags: Vec<(String, String)>,
        attributes: Vec<(String, String)>,
    },
    /// The queue's push subscription (after its `Meta` part; absent without one).
    Push { queue: String, push: PushV1 },
}

/// [`HistoryV1`] borrowing its strings: encodes to the same bytes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryV1Ref<'a> {
    pub event: &'a str,
    pub at: u64,
    pub receive_count: u32,
    pub detail: Option<&'a str>,
}

/// [`ArchivedV1`] borrowing from the queue: encodes to the same bytes. `history` is anything
/// that serializes as a sequence of [`HistoryV1`] (e.g. of [`HistoryV1Ref`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ArchivedV1Ref<'a, H> {
    pub id: u128,
    pub finished_at: u64,
    pub status: &'a str,
    pub history: H,
}

/// `CheckpointPart::Archive` of borrowed records: encodes to the same bytes as the owned part,
/// so a checkpoint converts the statuses it holds (up to `status_records_max` per queue, under
/// the queue's lock) without an allocation per record and per history event.
#[derive(Debug)]
pub struct ArchivePartRef<'a, H> {
    pub queue: &'a str,
    pub records: &'a [ArchivedV1Ref<'a, H>],
}

/// The position of `Archive` among `CheckpointPart`'s variants (what postcard writes).
const ARCHIVE_VARIANT_INDEX: u32 = 4;

impl<H: Serialize> Serialize for ArchivePartRef<'_, H> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        let mut part = serializer.serialize_struct_variant(
            "CheckpointPart",
            ARCHIVE_VARIANT_INDEX,
            "Archive",
            2,
        )?;
        part.serialize_field("queue", self.queue)?;
        part.serialize_field("records", self.records)?;
        part.end()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("undecodable record of kind {kind}: {reason}")]
pub struct DecodeError {
    pub kind: u8,
    pub reason: String,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("record types always serialize")
}

/// [`encode`] into `buf` (cleared first), so a caller can reuse one buffer for every record.
pub fn encode_into<T: Serialize>(value: &T, mut buf: Vec<u8>) -> Vec<u8> {
    buf.clear();
    postcard::to_extend(value, buf).expect("record types always serialize")
}

pub fn decode<'a, T: Deserialize<'a>>(kind: u8, payload: &'a [u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(payload).map_err(|e| DecodeError {
        kind,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_borrowed_archive_part_encodes_as_the_owned_one() {
        let owned = CheckpointPart::Archive {
            queue: "q".to_string(),
            records: vec![
                ArchivedV1 {
                    id: 7,
                    finished_at: 9,
                    status: "COMPLETED".to_string(),
                    history: vec![
                        HistoryV1 {
                            event: "sent".to_string(),
                            at: 1,
                            receive_count: 0,
                            detail: None,
                        },
                        HistoryV1 {
                            event: "acked".to_string(),
                            at: 9,
                            receive_count: 1,
                            detail: Some("why".to_string()),
                        },
                    ],
                },
                ArchivedV1 {
                    id: u128::MAX,
                    finished_at: 10,
                    status: "EXPIRED".to_string(),
                    history: Vec::new(),
                },
            ],
        };
        let CheckpointPart::Archive { records, .. } = &owned else {
            unreachable!()
        };
        let histories: Vec<Vec<HistoryV1Ref>> = records
            .iter()
            .map(|r| {
                r.history
                    .iter()
                    .map(|h| HistoryV1Ref {
                        event: &h.event,
                        at: h.at,
                        receive_count: h.receive_count,
                        detail: h.detail.as_deref(),
                    })
                    .collect()
            })
            .collect();
        let borrowed: Vec<ArchivedV1Ref<&[HistoryV1Ref]>> = records
            .iter()
            .zip(&histories)
            .map(|(r, h)| ArchivedV1Ref {
                id: r.id,
                finished_at: r.finished_at,
                status: &r.status,
                history: h.as_slice(),
            })
            .collect();
        let part = ArchivePartRef {
            queue: "q",
            records: &borrowed,
        };
        assert_eq!(encode(&part), encode(&owned));
        assert_eq!(
            decode::<CheckpointPart>(KIND_CHECKPOINT, &encode(&part)).unwrap(),
            owned
        );
    }

    #[test]
    fn records_round_trip() {
        let op = QueueOp::Send {
            queue: "q".to_string(),
            now: 5,
            entries: vec![EntryV1 {
                id: u128::MAX,
                body: "héllo".into(),
                attributes: vec![AttributeV1 {
                    name: "a".to_string(),
                    data_type: "Binary".to_string(),
                    data: AttributeDataV1::Binary(vec![0, 255]),
                }],
                delay_ms: Some(3),
                group_id: None,
                dedup_id: Some("d".to_string()),
                notify: Some(NotifyV1 {
                    url: "http://x".to_string(),
                    headers: vec![("k".to_string(), "v".to_string())],
                }),
            }],
        };
        let bytes = encode(&op);
        assert_eq!(decode::<QueueOp>(KIND_QUEUE_OP, &bytes).unwrap(), op);
        assert!(decode::<QueueOp>(KIND_QUEUE_OP, &bytes[..bytes.len() - 1]).is_err());
    }

    /// The encoding of a record is part of the disk format: this pins it, so an accidental
    /// change of a field or variant order fails here instead of corrupting old data dirs.
    #[test]
    fn the_v1_encoding_is_stable() {
        let op = QueueOp::Ack {
            queue: "q".to_string(),
            now: 300,
            receipts: vec![ReceiptV1 { seq: 1, lease: 2 }],
        };
        assert_eq!(encode(&op), vec![5, 1, b'q', 0xAC, 0x02, 1, 1, 2]);
    }
}
