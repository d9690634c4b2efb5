//! Locks in the local engine: one `baton_core::lock::LockTable` behind a mutex, its records
//! in the main log, and waiting acquires.
//!
//! # Locking and durability
//! Every change of a name's holds first takes that name's fence gate exclusively
//! (`fenced.rs`: fenced writes checked before it land before it). The table's mutex is taken
//! alone, inside the gate, never across an `.await`. A change is applied to the table and its
//! record (`LockOp`, an outcome:
//! the token granted, the expiry set) is submitted to the log under the mutex, so log order is
//! table order; the answer waits for the record to be durable after the mutex is released.
//! A grant whose record cannot be submitted is taken back at once (its token is simply never
//! seen), so a failed acquire leaves nobody holding the lock. A renewal or release that could
//! not be logged stays in memory until the engine reloads from disk; its caller got an error
//! and retries. The disk-free alarm does not refuse lock operations: their records are tiny
//! and a job's coordination must go on while producers are paused.
//!
//! # Waiting
//! A waiting acquire registers for `freed` *before* it looks at the table, so a release
//! between the look and the wait still wakes it; it also sleeps no later than the current
//! hold's expiry (on the engine's clock), so an expiry needs no wake-up. Waiters are bounded by
//! `LockSettings::waiters_max`; shutdown ends them with the lock's current holder.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use baton_core::lock::{FencingToken, Holder, LockError, LockHold, LockName, LockTable, Released};
use baton_storage::lock_records::{LockOp, KIND_LOCK_OP};
use baton_storage::records;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::fenced::FenceGates;
use super::{LocalEngine, WaitPermit};
use crate::durable::locks as disk;
use crate::locks::{FencedOutcome, FencedWrite, LockEngine, LockEngineError, LockSettings};
use crate::EngineError;

pub(crate) struct Locks {
    settings: LockSettings,
    table: Mutex<LockTable>,
    /// Orders fenced writes against grants (`fenced.rs`).
    pub(super) gates: FenceGates,
    /// Woken on every release and after recovery; waiters look again.
    freed: Notify,
    n_waiting: AtomicU32,
}

impl Locks {
    pub(crate) fn new(settings: LockSettings) -> Self {
        Locks {
            settings,
            table: Mutex::new(LockTable::new(settings.limits)),
            gates: FenceGates::new(),
            freed: Notify::new(),
            n_waiting: AtomicU32::new(0),
        }
    }

    /// Replaces the table by what recovery rebuilt, under the configured limits.
    pub(crate) fn restore(&self, recovered: &LockTable) {
        let mut table = LockTable::new(self.settings.limits);
        table.restore_floor(recovered.token_floor());
        for snapshot in recovered.snapshot() {
            table.restore_snapshot(snapshot);
        }
        *self.table.lock() = table;
        self.freed.notify_waiters();
    }

    /// The token of `name`'s live hold at `now` (the fencing check).
    pub(crate) fn current_token(
        &self,
        now: baton_core::Timestamp,
        name: &LockName,
    ) -> Option<FencingToken> {
        self.table.lock().get(now, name).map(|hold| hold.token)
    }

    fn wait_permit(&self) -> Result<WaitPermit<'_>, LockEngineError> {
        let limit = self.settings.waiters_max;
        if self.n_waiting.fetch_add(1, Ordering::SeqCst) >= limit {
            self.n_waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(LockEngineError::TooManyWaiters { limit });
        }
        Ok(WaitPermit(&self.n_waiting))
    }
}

impl LocalEngine {
    /// This engine with lock settings other than the defaults; call it before `recover`.
    pub fn with_lock_settings(mut self, settings: LockSettings) -> Self {
        self.locks = Locks::new(settings);
        self
    }

    /// Submits `op` when durable; its LSN to wait for.
    fn submit_lock(&self, op: impl FnOnce() -> LockOp) -> Result<Option<u64>, EngineError> {
        match &self.durable {
            Some(durable) => durable
                .submit_frame(KIND_LOCK_OP, &records::encode(&op()))
                .map(Some),
            None => Ok(None),
        }
    }

    /// One attempt at a grant; the LSN to wait for on success.
    fn try_acquire(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
    ) -> Result<(LockHold, Option<u64>), LockEngineError> {
        self.check_ready()?;
        let mut table = self.locks.table.lock();
        let hold = table.acquire(self.clock.now(), name, holder, ttl_ms)?;
        match self.submit_lock(|| disk::granted_to_disk(&hold)) {
            Ok(lsn) => Ok((hold, lsn)),
            Err(error) => {
                table.restore_release(name, hold.token);
                Err(error.into())
            }
        }
    }

    /// The checkpoint part of the lock table; `last_lsn` is read under the table's mutex.
    pub(crate) fn locks_checkpoint_part(&self, last_lsn: &dyn Fn() -> u64) -> (u8, Vec<u8>) {
        let table = self.locks.table.lock();
        disk::checkpoint_part(&table, last_lsn())
    }

    /// Whether `token` is `name`'s live hold now (the fencing check).
    pub fn lock_is_current(&self, name: &LockName, token: FencingToken) -> bool {
        self.locks
            .table
            .lock()
            .is_current(self.clock.now(), name, token)
    }
}

#[async_trait]
impl LockEngine for LocalEngine {
    fn lock_settings(&self) -> LockSettings {
        self.locks.settings
    }

    async fn acquire_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        let max = self.locks.settings.wait_ms_max;
        if wait_ms > max {
            return Err(LockEngineError::WaitTooLong { wait_ms, max });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        let mut permit = None;
        loop {
            let freed = self.locks.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let attempt = {
                let _gate = self.locks.gates.exclusive(name).await;
                self.try_acquire(name, holder, ttl_ms)
            };
            let expires_at = match attempt {
                Ok((hold, lsn)) => {
                    self.wait(lsn).await?;
                    return Ok(hold);
                }
                Err(LockEngineError::Lock(LockError::Held { expires_at, .. }))
                    if tokio::time::Instant::now() < deadline && !self.shutdown.is_cancelled() =>
                {
                    expires_at
                }
                Err(error) => return Err(error),
            };
            if permit.is_none() {
                permit = Some(self.locks.wait_permit()?);
            }
            let expires_in = expires_at.millis_since(self.clock.now());
            let wake_at =
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(expires_in));
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    async fn renew_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
        ttl_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        self.check_ready()?;
        let gate = self.locks.gates.exclusive(name).await;
        let (hold, lsn) = {
            let mut table = self.locks.table.lock();
            let now = self.clock.now();
            let hold = table.renew(now, name, holder, token, ttl_ms)?;
            let lsn = self.submit_lock(|| LockOp::Renewed {
                name: name.to_string(),
                token: token.get(),
                now: now.as_millis(),
                expires_at: hold.expires_at.as_millis(),
            })?;
            (hold, lsn)
        };
        drop(gate);
        self.wait(lsn).await?;
        Ok(hold)
    }

    async fn release_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
    ) -> Result<Released, LockEngineError> {
        self.check_ready()?;
        let gate = self.locks.gates.exclusive(name).await;
        let (released, lsn) = {
            let mut table = self.locks.table.lock();
            let now = self.clock.now();
            let released = table.release(now, name, holder, token)?;
            let lsn = match released {
                Released::Released => self.submit_lock(|| LockOp::Released {
                    name: name.to_string(),
                    token: token.get(),
                    now: now.as_millis(),
                })?,
                // Nothing changed that the log does not already imply (an expired hold).
                Released::AlreadyEnded => None,
            };
            (released, lsn)
        };
        drop(gate);
        self.locks.freed.notify_waiters();
        self.wait(lsn).await?;
        Ok(released)
    }

    async fn fenced(
        &self,
        lock: &LockName,
        token: FencingToken,
        write: FencedWrite,
    ) -> Result<FencedOutcome, LockEngineError> {
        self.fenced_impl(lock, token, write).await
    }

    async fn get_lock(&self, name: &LockName) -> Result<Option<LockHold>, LockEngineError> {
        self.check_ready()?;
        Ok(self.locks.table.lock().get(self.clock.now(), name))
    }

    async fn list_locks(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<LockHold>, LockEngineError> {
        self.check_ready()?;
        Ok(self
            .locks
            .table
            .lock()
            .list(self.clock.now(), prefix, after, max))
    }
}
