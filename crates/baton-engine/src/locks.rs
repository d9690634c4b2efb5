//! The lock interface: distributed locks (leases with fencing tokens) as whole operations.
//!
//! A separate trait from [`Engine`](crate::Engine) (which requires it), so that locks stay one
//! concern: the local engine implements it in `local/locks.rs` over `baton_core::lock`, a
//! Redis engine would make each call one script on the lock's slot. Every call answers with
//! what a response needs; `acquire_lock` may wait (long poll) for the lock to come free.

use async_trait::async_trait;
use baton_core::lock::{FencingToken, Holder, LockError, LockHold, LockLimits, LockName, Released};

use baton_core::stream::{Appended, GroupName, ProducerSeq, RecordId, StreamError, StreamName};
use baton_core::{
    Acked, QueueName, ReceiptError, ReceiptHandle, SendEntry, SendOutcome, TopicName,
};

use crate::{EngineError, NewRecord, PublishEntry, PublishOutcome};

/// A write that may carry a fence: the same operations as on [`Engine`](crate::Engine), as
/// data, so an engine can run the check and the write as one step (a Redis engine: one
/// script).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FencedWrite {
    Send {
        queue: QueueName,
        entries: Vec<SendEntry>,
    },
    /// `reply`: as in [`Engine::ack_with_reply`](crate::Engine::ack_with_reply).
    Ack {
        queue: QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<std::sync::Arc<str>>,
    },
    Nack {
        queue: QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    },
    Append {
        stream: StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    },
    GroupAck {
        stream: StreamName,
        group: GroupName,
        ids: Vec<RecordId>,
    },
    Publish {
        topic: TopicName,
        messages: Vec<PublishEntry>,
    },
}

impl FencedWrite {
    /// The operation's name in metrics and call counts.
    pub fn op(&self) -> &'static str {
        match self {
            FencedWrite::Send { .. } => "send",
            FencedWrite::Ack { .. } => "ack",
            FencedWrite::Nack { .. } => "nack",
            FencedWrite::Append { .. } => "append",
            FencedWrite::GroupAck { .. } => "group_ack",
            FencedWrite::Publish { .. } => "publish",
        }
    }

    /// The queue, stream or topic written to.
    pub fn target(&self) -> String {
        match self {
            FencedWrite::Send { queue, .. }
            | FencedWrite::Ack { queue, .. }
            | FencedWrite::Nack { queue, .. } => queue.to_string(),
            FencedWrite::Append { stream, .. } | FencedWrite::GroupAck { stream, .. } => {
                stream.to_string()
            }
            FencedWrite::Publish { topic, .. } => topic.to_string(),
        }
    }
}

/// What the fenced write answered: the plain operation's answer, by the write's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FencedOutcome {
    Sent(Vec<SendOutcome>),
    Acked(Vec<Result<Acked, ReceiptError>>),
    Nacked(Vec<Result<(), ReceiptError>>),
    Appended(Vec<Appended>),
    GroupAcked(Vec<Result<(), StreamError>>),
    Published(Vec<PublishOutcome>),
}

/// Lock settings of an engine, besides the table's own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    pub limits: LockLimits,
    /// Acquires that may wait at once.
    pub waiters_max: u32,
    /// Longest `wait_ms` of one acquire.
    pub wait_ms_max: u64,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            limits: LockLimits::default(),
            waiters_max: 10_000,
            wait_ms_max: 60_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockEngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A fenced append or group ack failed as a stream operation.
    #[error(transparent)]
    Stream(#[from] crate::StreamEngineError),
    /// A fenced publish failed as a topic operation.
    #[error(transparent)]
    Topic(#[from] crate::TopicEngineError),
    #[error("{limit} lock acquires are already waiting (the server's lock_waiters_max)")]
    TooManyWaiters { limit: u32 },
    #[error("wait_ms {wait_ms} is more than the limit of {max}")]
    WaitTooLong { wait_ms: u64, max: u64 },
    #[error("fenced: token {token} is not the current hold of lock {lock}{}; nothing was written", current.map(|c| format!(" ({c} is)")).unwrap_or_else(|| " (nobody holds it)".to_string()))]
    Fenced {
        lock: String,
        token: u64,
        current: Option<u64>,
    },
}

#[async_trait]
pub trait LockEngine: Send + Sync {
    /// The limits names and TTLs are checked against.
    fn lock_settings(&self) -> LockSettings;

    /// Grants `name` to `holder` for `ttl_ms`. While someone else holds it, waits up to
    /// `wait_ms` for a release or expiry (0: answer at once).
    ///
    /// # Errors
    /// `LockError::Held` (with the holder and expiry) when it is still held after the wait;
    /// `WaitTooLong`, `TooManyWaiters`; the table's limits (`LockError`); storage failures.
    async fn acquire_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<LockHold, LockEngineError>;

    /// Extends `token`'s live hold to now + `ttl_ms`.
    async fn renew_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
        ttl_ms: u64,
    ) -> Result<LockHold, LockEngineError>;

    /// Ends `token`'s hold and wakes the acquires waiting for it.
    async fn release_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
    ) -> Result<Released, LockEngineError>;

    /// The live hold of `name`, if any.
    async fn get_lock(&self, name: &LockName) -> Result<Option<LockHold>, LockEngineError>;

    /// Runs `write` only while `token` is the live hold of `lock`, refused (`Fenced`, nothing
    /// written) otherwise. The check and the write are one step against every grant: a write
    /// that passed its check lands before any later holder's grant, so a holder that paused
    /// past its lease cannot act on stale ownership.
    async fn fenced(
        &self,
        lock: &LockName,
        token: FencingToken,
        write: FencedWrite,
    ) -> Result<FencedOutcome, LockEngineError>;

    /// Live holds by name prefix, after `after`, at most `max` (≤ `LOCK_LIST_MAX`).
    async fn list_locks(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<LockHold>, LockEngineError>;
}
