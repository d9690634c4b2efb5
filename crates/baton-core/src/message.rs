//! What a message is and what can be said about it: ids, receipts, status and history.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::attributes::MessageAttributes;
use crate::name::QueueName;
use crate::time::Timestamp;

/// A message's identity, stable across redelivery, dead-lettering and redrive. Shown as a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(u128);

impl MessageId {
    pub const fn from_u128(id: u128) -> Self {
        MessageId(id)
    }

    pub const fn as_u128(self) -> u128 {
        self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text)
            .ok()
            .map(|uuid| MessageId(uuid.as_u128()))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_u128(self.0).hyphenated(), f)
    }
}

/// Position of a message in its queue: dense, increasing, never reused by the queue.
pub type Seq = u64;

/// Opaque token a consumer presents to `ack`, `nack` or change the visibility of one lease.
/// Only `Queue::receive` mints them. It names the queue incarnation (`epoch`), the message and
/// the lease, so a receipt of a deleted-and-recreated queue or of an older lease is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptHandle {
    pub(crate) epoch: u64,
    pub(crate) seq: Seq,
    pub(crate) lease: u64,
}

impl ReceiptHandle {
    const ENCODED_BYTES: usize = 24;

    /// The receipt's parts, for a durable engine's log.
    pub fn parts(&self) -> (u64, Seq, u64) {
        (self.epoch, self.seq, self.lease)
    }

    /// Rebuilds a receipt from its logged parts, to replay an ack, nack or visibility change.
    /// Outside replay, receipts come from `Queue::receive` only.
    pub fn from_parts(epoch: u64, seq: Seq, lease: u64) -> Self {
        ReceiptHandle { epoch, seq, lease }
    }

    /// Parses the text form; `None` when it is not a receipt at all.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        if bytes.len() != Self::ENCODED_BYTES {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            let chunk: [u8; 8] = bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?;
            Some(u64::from_be_bytes(chunk))
        };
        Some(ReceiptHandle {
            epoch: word(0)?,
            seq: word(1)?,
            lease: word(2)?,
        })
    }
}

impl fmt::Display for ReceiptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; Self::ENCODED_BYTES];
        bytes[..8].copy_from_slice(&self.epoch.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.seq.to_be_bytes());
        bytes[16..].copy_from_slice(&self.lease.to_be_bytes());
        f.write_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Where to report a message's completion (used by push delivery and callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// Where a message stands, as the status API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Pending,
    Delayed,
    Processing,
    Completed,
    Failed,
    DeadLettered,
    CallbackFailed,
    Expired,
    Purged,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "PENDING",
            MessageStatus::Delayed => "DELAYED",
            MessageStatus::Processing => "PROCESSING",
            MessageStatus::Completed => "COMPLETED",
            MessageStatus::Failed => "FAILED",
            MessageStatus::DeadLettered => "DEAD_LETTERED",
            MessageStatus::CallbackFailed => "CALLBACK_FAILED",
            MessageStatus::Expired => "EXPIRED",
            MessageStatus::Purged => "PURGED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryEventKind {
    Sent,
    Received,
    Nacked,
    Acked,
    DeadLettered,
    Expired,
    Purged,
    Redriven,
    CallbackSucceeded,
    CallbackFailed,
}

impl HistoryEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HistoryEventKind::Sent => "sent",
            HistoryEventKind::Received => "received",
            HistoryEventKind::Nacked => "nacked",
            HistoryEventKind::Acked => "acked",
            HistoryEventKind::DeadLettered => "dead_lettered",
            HistoryEventKind::Expired => "expired",
            HistoryEventKind::Purged => "purged",
            HistoryEventKind::Redriven => "redriven",
            HistoryEventKind::CallbackSucceeded => "callback_succeeded",
            HistoryEventKind::CallbackFailed => "callback_failed",
        }
    }
}

/// One step of a message's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    pub kind: HistoryEventKind,
    pub at: Timestamp,
    pub receive_count: u32,
    /// The queue the event happened in, when it is not the one being asked about, or a reason.
    pub detail: Option<String>,
}

/// What `GET .../messages/{id}` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRecord {
    pub id: MessageId,
    pub status: MessageStatus,
    pub history: Vec<HistoryEvent>,
}

/// A received message together with its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: MessageId,
    pub seq: Seq,
    pub body: Arc<str>,
    pub attributes: MessageAttributes,
    pub receipt: ReceiptHandle,
    pub receive_count: u32,
    pub sent_at: Timestamp,
    pub first_received_at: Timestamp,
    pub group_id: Option<Arc<str>>,
    pub dedup_id: Option<Arc<str>>,
    /// The queue this message was dead-lettered from, while it sits in a dead-letter queue.
    pub dead_letter_source: Option<QueueName>,
}

/// A message leaving its queue for a dead-letter queue, or coming back by redrive. It carries
/// everything the receiving queue needs, including its history so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedMessage {
    pub id: MessageId,
    pub body: Arc<str>,
    pub attributes: MessageAttributes,
    pub group_id: Option<Arc<str>>,
    pub dedup_id: Option<Arc<str>>,
    pub notify: Option<Notify>,
    pub sent_at: Timestamp,
    pub source: QueueName,
    /// Where the message was dead-lettered from, so redrive can send it home.
    pub dead_letter_source: Option<QueueName>,
    pub history: Vec<HistoryEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip_and_reject_garbage() {
        let receipt = ReceiptHandle {
            epoch: 7,
            seq: u64::MAX,
            lease: 42,
        };
        assert_eq!(ReceiptHandle::parse(&receipt.to_string()), Some(receipt));
        assert_eq!(ReceiptHandle::parse("not a receipt"), None);
        assert_eq!(ReceiptHandle::parse(""), None);
        assert_eq!(ReceiptHandle::parse("AAAA"), None);
    }

    #[test]
    fn message_ids_print_as_uuids() {
        let id = MessageId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        assert_eq!(MessageId::parse("nope"), None);
    }
}
