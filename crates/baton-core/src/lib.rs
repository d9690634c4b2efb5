//! # baton-core
//!
//! Baton's broker semantics as pure state machines: what a queue does when a message is sent,
//! received, acked, nacked, delayed, leased, dead-lettered, expired or purged.
//!
//! This crate is *not* a broker: it does no I/O, spawns nothing and never reads a clock. Every
//! operation takes `now` as an argument and returns what the caller must persist and reply, so
//! every rule is unit- and property-tested without sleeping, and recovery can replay a log
//! deterministically. Message ids and queue epochs come in from the caller for the same reason.
//!
//! Limits live in [`limits`]; every operation is O(log n) in queue depth (amortised), except
//! `purge`, which is linear in what it deletes.

pub mod attributes;
pub mod config;
pub mod error;
pub mod limits;
pub mod lock;
pub mod message;
pub mod name;
pub mod queue;
pub mod receipt;
pub mod schedule;
pub mod stream;
pub mod time;
pub mod topic;

pub use attributes::{AttributeData, AttributeValue, BaseType, MessageAttributes};
pub use config::{DeadLetterPolicy, QueueConfig, RetryPolicy};
pub use error::{QueueError, ReceiptError};
pub use limits::QueueLimits;
pub use message::{
    Delivery, HistoryEvent, HistoryEventKind, MessageId, MessageStatus, MovedMessage, Notify,
    ReceiptHandle, Seq, StatusRecord,
};
pub use name::{QueueName, SubscriptionName, TopicName};
pub use queue::{
    Acked, ArchivedSnapshot, DedupSnapshot, MessageSnapshot, MessageStateSnapshot, PeekState,
    PeekedMessage, Queue, QueueHeaderSnapshot, QueueStats, SendEntry, SendOutcome,
    VisibilityOutcome,
};
pub use stream::{StreamConfig, StreamError, StreamName};
pub use time::{Clock, ManualClock, Timestamp};
