//! Errors of the queue semantics. The server maps each variant to a stable wire code in one
//! exhaustive `match`.

use crate::name::QueueName;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid value for `{field}`: {reason}")]
    InvalidParameter { field: String, reason: String },
    #[error(
        "message is {size_bytes} bytes, more than this queue's max_message_bytes of {max_bytes}"
    )]
    MessageTooLarge { size_bytes: u64, max_bytes: u32 },
    #[error("queue {queue} is FIFO: every message needs a group_id")]
    GroupIdRequired { queue: QueueName },
    #[error("queue {queue} is FIFO: every message needs a dedup_id, or content_based_dedup on the queue")]
    DedupIdRequired { queue: QueueName },
    #[error("queue {queue} holds {depth} messages and its max_depth is {max_depth}")]
    QueueFull {
        queue: QueueName,
        depth: u64,
        max_depth: u64,
    },
    #[error("queue {queue} has {in_flight} messages in flight, its limit")]
    TooManyInFlight { queue: QueueName, in_flight: u32 },
}

/// Why a receipt was refused. Refusal changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt was not issued by this queue")]
    Invalid,
    #[error("the receipt's lease has ended: the message was acked, expired, re-delivered or its visibility timeout passed")]
    Stale,
}
