//! Fenced writes: a send, ack, nack, append, group ack or publish that carries a lock's token
//! and is refused unless that token is the lock's live hold.
//!
//! # Why a gate
//! A token stops being current in two ways: a later grant (another holder) or time (expiry).
//! Time needs no ordering: once the hold has expired the check refuses. A grant does: a write
//! whose check passed must land before the next holder's grant, or the stale holder could
//! act after the new one started. So every lock name hashes to one of [`GATES`] read-write
//! gates. A fenced write holds its gate shared from the check until the write is durable; a
//! grant, renewal or release holds it exclusively around its table change. A grant therefore
//! waits for the fenced writes already past their check, and every write checked after it
//! sees the new token.
//!
//! The gate is the outermost lock of all: taken before any queue, stream or topic lock and
//! before the lock table's mutex, and a grant never waits for a write while holding anything
//! else, so it cannot deadlock. Waiting acquires do not hold it while they wait.

use std::hash::{Hash, Hasher};

use baton_core::lock::{FencingToken, LockName};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::LocalEngine;
use crate::locks::{FencedOutcome, FencedWrite, LockEngineError};
use crate::Engine;

/// Gates per engine: lock names spread over them, so fenced writes under one lock do not
/// hold up grants of another (a collision only costs waiting).
const GATES: usize = 64;

pub(crate) struct FenceGates {
    gates: Vec<RwLock<()>>,
}

impl FenceGates {
    pub(crate) fn new() -> Self {
        FenceGates {
            gates: (0..GATES).map(|_| RwLock::new(())).collect(),
        }
    }

    fn gate(&self, name: &LockName) -> &RwLock<()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        name.as_str().hash(&mut hasher);
        &self.gates[(hasher.finish() % GATES as u64) as usize]
    }

    /// Held by a fenced write from its check until it is durable.
    pub(crate) async fn shared(&self, name: &LockName) -> RwLockReadGuard<'_, ()> {
        self.gate(name).read().await
    }

    /// Held by a change of `name`'s holds (grant, renewal, release).
    pub(crate) async fn exclusive(&self, name: &LockName) -> RwLockWriteGuard<'_, ()> {
        self.gate(name).write().await
    }
}

impl LocalEngine {
    pub(crate) async fn fenced_impl(
        &self,
        lock: &LockName,
        token: FencingToken,
        write: FencedWrite,
    ) -> Result<FencedOutcome, LockEngineError> {
        self.check_ready()?;
        let _gate = self.locks.gates.shared(lock).await;
        let current = self.locks.current_token(self.clock.now(), lock);
        if current != Some(token) {
            return Err(LockEngineError::Fenced {
                lock: lock.to_string(),
                token: token.get(),
                current: current.map(FencingToken::get),
            });
        }
        Ok(match write {
            FencedWrite::Send { queue, entries } => {
                FencedOutcome::Sent(self.send(&queue, entries).await?)
            }
            FencedWrite::Ack {
                queue,
                receipts,
                reply,
            } => FencedOutcome::Acked(self.ack_with_reply(&queue, receipts, reply).await?),
            FencedWrite::Nack {
                queue,
                receipts,
                delay_ms,
            } => FencedOutcome::Nacked(self.nack(&queue, receipts, delay_ms).await?),
            FencedWrite::Append {
                stream,
                producer,
                records,
            } => FencedOutcome::Appended(self.append(&stream, producer, records).await?),
            FencedWrite::GroupAck { stream, group, ids } => {
                FencedOutcome::GroupAcked(self.group_ack(&stream, &group, ids).await?)
            }
            FencedWrite::Publish { topic, messages } => {
                FencedOutcome::Published(self.publish(&topic, messages).await?)
            }
        })
    }
}
