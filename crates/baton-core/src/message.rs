//! What a message is and what can be said about it: ids, receipts, status and history.

use std::fmt;
use std::sync::Arc;

use crate::attributes::MessageAttributes;
use crate::name::QueueName;
pub use crate::receipt::ReceiptHandle;
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
    fn message_ids_print_as_uuids() {
        let id = MessageId::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(MessageId::parse(&id.to_string()), Some(id));
        assert_eq!(MessageId::parse("nope"), None);
    }
}
