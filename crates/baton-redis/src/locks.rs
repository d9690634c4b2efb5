//! Locks on Redis: the `LockEngine` of `RedisEngine`, with the semantics of
//! `baton_core::lock` (the embedded engine's, kept by the same conformance suite).
//!
//! # What lives where
//! - **A lock** is one hash `{<namespace>:l:<name>}:h` in the slot its name hashes to
//!   (`keys.rs`, `lua/lock_lib.lua`): the name's last token and, while it has one, its hold
//!   (holder, acquired at, expires at). Acquire, renew, release and get are each one script
//!   there (`lua/lock_*.lua`), so every change of one lock is atomic whatever the number of
//!   Baton nodes. Writes wait for replicas like queue writes (`client.rs`).
//! - **Time** is the engine's clock (`Engine::now`: the injected clock in tests, the node's
//!   system clock otherwise), passed into every script; a hold is live while now < expires
//!   at. Redis `TIME` is never read, so an injected clock drives expiry exactly; across nodes
//!   a skew of their clocks lengthens or shortens a hold by that skew, which is why writes
//!   are fenced by token, not by time.
//! - **The index** `{<namespace>}:locks` is a sorted set of names (every score 0, so ordered
//!   by name) in the registry's slot, for `list_locks` and `locks_max`. It lives in another
//!   slot than the locks, so it is kept beside the lock scripts, never inside them, and is a
//!   *superset* of the names with a live hold: a name is admitted (`lua/lock_admit.lua`,
//!   which refuses past `locks_max`) before its grant and added again after it; a name is
//!   taken out only after its release or by a sweep, each of which removes it, then reads the
//!   lock and puts it back if it is held (so a grant racing a removal is put back by one of
//!   the two). Listing reads each candidate's lock and keeps the live holds.
//!
//! # Invariants
//! - **Tokens strictly increase per name over the lock's whole life.** The hash keeps `last`
//!   after every release and expiry and is never deleted by the engine; a grant is
//!   `last + 1`, in the same script that reads `last`. The cost is one small hash per name
//!   ever locked; `locks_max` bounds the index (names that may be held), not these counters.
//! - **Refusals change nothing**: every refusing script returns before any write.
//! - **Bounded**: `locks_max` names in the index (approximately: a sweep races grants on
//!   other nodes), `waiters_max` waiting acquires per node, `wait_ms_max` per wait, the
//!   names' and TTLs' limits checked before any script runs.
//!
//! # Waiting
//! A waiting acquire registers for the lock's wake-up (`waits.rs`, the sharded channel
//! `{<namespace>:l:<name>}:wake` that the release script publishes on, and this node's own
//! releases at once) before each attempt, and sleeps no later than the current hold's expiry
//! and at most `waits::REPOLL_MS`, so a lost wake-up only costs latency.
//!
//! # Fenced writes
//! The lock and the written queue live in different slots, so no one script sees both.
//! (1) The lock's `get` script says whether the token is the live hold; if not, the write is
//! refused (`Fenced`). (2) The write's own script on the queue's slot (`lua/fence.lua`
//! before `send`, `ack` or `nack`) refuses a token below the queue's fence floor for that
//! lock and raises the floor to the token. The window left: a write that passed (1) may land
//! after a later holder was granted the lock, as long as that holder has not yet written to
//! the same queue under the same lock; once it has, the older token can never write there
//! again. Writes to streams and topics answer `NotOnEngine`, as those calls do.

use std::time::Duration;

use async_trait::async_trait;
use baton_core::lock::{
    FencingToken, Holder, LockError, LockHold, LockLimits, LockName, Released, LOCK_LIST_MAX,
    LOCK_NAME_CHARS_LIMIT,
};
use baton_core::{QueueError, ReceiptError, Timestamp};
use baton_engine::{
    Engine, EngineError, FencedOutcome, FencedWrite, LockEngine, LockEngineError, LockSettings,
};
use serde_json::Value;

use crate::client::{self, Access};
use crate::keys::{self, LockKeys};
use crate::messages::Rule;
use crate::scripts::{self, Script};
use crate::unavailable::not_yet;
use crate::waits::{self, WaitPermit};
use crate::{codec, RedisEngine, WriteError};

/// Names one index read returns, and locks read at once while listing or sweeping.
const INDEX_CHUNK: usize = 100;
/// Names a sweep of a full index looks at, so an acquire stays short; what is left waits for
/// the next sweep.
const SWEEP_MAX: usize = 1_000;

/// A fenced write's lock and token, as the fenced queue scripts take them (`lua/fence.lua`).
pub(crate) struct Fence {
    pub(crate) lock: LockName,
    pub(crate) token: FencingToken,
}

fn corrupt(what: &str, detail: &dyn std::fmt::Display) -> LockEngineError {
    LockEngineError::Engine(codec::corrupt(what, detail))
}

fn number(value: &Value, field: &str) -> Option<u64> {
    value.get(field).and_then(Value::as_u64)
}

fn text<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

/// A hold as the scripts answer it (`view` in `lua/lock_lib.lua`).
fn hold_from(name: &LockName, value: &Value) -> Result<LockHold, LockEngineError> {
    let holder = text(value, "holder").ok_or_else(|| corrupt("lock holder", &"missing"))?;
    let field = |f: &str| number(value, f).ok_or_else(|| corrupt("lock hold", &f));
    Ok(LockHold {
        name: name.clone(),
        holder: Holder::new(holder).map_err(|e| corrupt("lock holder", &e))?,
        token: FencingToken::new(field("token")?),
        acquired_at: Timestamp::from_millis(field("acq")?),
        expires_at: Timestamp::from_millis(field("exp")?),
    })
}

/// The error a lock script's refusal `code` stands for; `token` is the one presented.
fn refusal(name: &LockName, token: Option<FencingToken>, value: &Value) -> LockEngineError {
    let code = text(value, "err").unwrap_or_default();
    let token = token.unwrap_or(FencingToken::new(0));
    let error = match code {
        "HELD" => match text(value, "holder").map(Holder::new) {
            Some(Ok(holder)) => LockError::Held {
                name: name.clone(),
                holder,
                expires_at: Timestamp::from_millis(number(value, "exp").unwrap_or(0)),
            },
            _ => return corrupt("lock holder", &"missing or invalid"),
        },
        "NOT_HELD" => LockError::NotHeld {
            name: name.to_string(),
        },
        "TOKEN_STALE" => LockError::TokenStale {
            name: name.clone(),
            token,
            current: number(value, "current").map(FencingToken::new),
        },
        "EXPIRED" => LockError::Expired {
            name: name.clone(),
            token,
            expired_at: Timestamp::from_millis(number(value, "exp").unwrap_or(0)),
        },
        other => {
            return LockEngineError::Engine(EngineError::StorageUnavailable {
                reason: format!("a lock script refused with an unknown code {other}"),
            })
        }
    };
    LockEngineError::Lock(error)
}

fn check_ttl(limits: &LockLimits, ttl_ms: u64) -> Result<(), LockError> {
    let (min, max) = (limits.ttl_ms_min, limits.ttl_ms_max);
    if min <= ttl_ms && ttl_ms <= max {
        Ok(())
    } else {
        Err(LockError::TtlOutOfRange { ttl_ms, min, max })
    }
}

/// Limits for names read back from the index: any name a configuration ever allowed.
fn index_limits() -> LockLimits {
    LockLimits {
        name_chars_max: LOCK_NAME_CHARS_LIMIT,
        ..LockLimits::default()
    }
}

impl RedisEngine {
    fn lock_keys(&self, name: &LockName) -> LockKeys {
        LockKeys::new(&self.namespace, name)
    }

    /// Runs lock script `script` on `name`'s slot with the engine's time and `args`; the
    /// script's answer, refusals included (an object with `err`).
    async fn run_lock(
        &self,
        name: &LockName,
        script: &Script,
        access: Access,
        args: &[String],
    ) -> Result<Value, LockEngineError> {
        let mut all = vec![Engine::now(self).as_millis().to_string(), name.to_string()];
        all.extend_from_slice(args);
        let keys = [self.lock_keys(name).hash()];
        let answer = self
            .call(self.redis.run_script(script, &keys, &all, access))
            .await?;
        serde_json::from_str(&answer).map_err(|e| corrupt("lock script answer", &e))
    }

    /// The live hold of `name`, if any.
    async fn read_lock(&self, name: &LockName) -> Result<Option<LockHold>, LockEngineError> {
        let value = self
            .run_lock(name, &scripts::LOCK_GET, Access::Read, &[])
            .await?;
        if value.get("none").is_some() {
            return Ok(None);
        }
        hold_from(name, &value).map(Some)
    }

    /// One grant attempt.
    async fn try_grant(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        let args = [holder.to_string(), ttl_ms.to_string()];
        let value = self
            .run_lock(name, &scripts::LOCK_ACQUIRE, Access::Write, &args)
            .await?;
        if value.get("err").is_some() {
            return Err(refusal(name, None, &value));
        }
        hold_from(name, &value)
    }

    async fn index_command(&self, cmd: redis::Cmd) -> Result<Vec<redis::Value>, EngineError> {
        let index = keys::lock_index(&self.namespace);
        self.call(self.redis.run_commands(&index, vec![cmd], Access::Write))
            .await
    }

    /// Puts `name` in the index (after a grant, in case a sweep took it out meanwhile).
    async fn index_add(&self, name: &LockName) -> Result<(), EngineError> {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(keys::lock_index(&self.namespace))
            .arg(0)
            .arg(name.as_str());
        self.index_command(zadd).await.map(drop)
    }

    /// Takes `name` out of the index unless it is held: removed first, then the lock read and
    /// the name put back if held, so a grant racing this is never left out (the grant adds
    /// it again after itself; see the module doc).
    async fn index_forget_if_free(&self, name: &LockName) -> Result<(), LockEngineError> {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(keys::lock_index(&self.namespace))
            .arg(name.as_str());
        self.index_command(zrem).await?;
        if self.read_lock(name).await?.is_some() {
            self.index_add(name).await?;
        }
        Ok(())
    }

    /// Names of the index after `start` (exclusive with `(`, inclusive with `[`), at most
    /// `INDEX_CHUNK`.
    async fn index_range(&self, start: &str) -> Result<Vec<String>, LockEngineError> {
        let index = keys::lock_index(&self.namespace);
        let mut range = redis::cmd("ZRANGE");
        range
            .arg(&index)
            .arg(start)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(INDEX_CHUNK);
        let replies = self
            .call(self.redis.run_commands(&index, vec![range], Access::Read))
            .await?;
        Ok(replies.first().map(client::texts).unwrap_or_default())
    }

    /// Admits `name` to the index within `locks_max`, sweeping names without a live hold out
    /// of a full index once.
    async fn admit(&self, name: &LockName) -> Result<(), LockEngineError> {
        let limit = self.lock_settings.limits.locks_max;
        for attempt in 0..2 {
            let index = keys::lock_index(&self.namespace);
            let args = [name.to_string(), limit.to_string()];
            let answer = self
                .call(self.redis.run_script(
                    &scripts::LOCK_ADMIT,
                    std::slice::from_ref(&index),
                    &args,
                    Access::Write,
                ))
                .await?;
            let value: Value =
                serde_json::from_str(&answer).map_err(|e| corrupt("lock admit answer", &e))?;
            if value.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(());
            }
            if attempt == 0 {
                self.sweep_index().await?;
            }
        }
        Err(LockError::TooManyLocks { limit }.into())
    }

    /// Takes up to `SWEEP_MAX` names without a live hold out of the index.
    async fn sweep_index(&self) -> Result<(), LockEngineError> {
        let mut start = "-".to_string();
        let mut n_seen = 0;
        while n_seen < SWEEP_MAX {
            let names = self.index_range(&start).await?;
            let Some(last) = names.last() else {
                return Ok(());
            };
            start = format!("({last}");
            n_seen += names.len();
            let names: Vec<LockName> = names
                .iter()
                .filter_map(|n| LockName::new(n, &index_limits()).ok())
                .collect();
            let holds = futures::future::join_all(names.iter().map(|n| self.read_lock(n))).await;
            for (name, hold) in names.iter().zip(holds) {
                if hold?.is_none() {
                    self.index_forget_if_free(name).await?;
                }
            }
        }
        Ok(())
    }

    fn lock_wait_permit(&self) -> Result<WaitPermit<'_>, LockEngineError> {
        let limit = self.lock_settings.waiters_max;
        if self
            .n_lock_waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            >= limit
        {
            self.n_lock_waiting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            return Err(LockEngineError::TooManyWaiters { limit });
        }
        Ok(WaitPermit(&self.n_lock_waiting))
    }

    /// The fenced write's first step: `token` must be `lock`'s live hold.
    async fn check_fence(
        &self,
        lock: &LockName,
        token: FencingToken,
    ) -> Result<(), LockEngineError> {
        let current = self.read_lock(lock).await?.map(|hold| hold.token);
        if current == Some(token) {
            return Ok(());
        }
        Err(LockEngineError::Fenced {
            lock: lock.to_string(),
            token: token.get(),
            current: current.map(FencingToken::get),
        })
    }

    /// The error of a fenced queue write; a refusal by the queue's fence floor (a later token
    /// than the write's has written there) is `Fenced` with the lock's current hold.
    async fn refused_by_floor(&self, error: WriteError, fence: &Fence) -> LockEngineError {
        let floor = match error {
            WriteError::Engine(error) => return error.into(),
            WriteError::Fenced { floor } => floor,
        };
        tracing::debug!(lock = %fence.lock, token = %fence.token, floor, "a queue's fence floor refused a write");
        let current = match self.read_lock(&fence.lock).await {
            Ok(hold) => hold.map(|hold| hold.token.get()),
            Err(error) => return error,
        };
        LockEngineError::Fenced {
            lock: fence.lock.to_string(),
            token: fence.token.get(),
            current,
        }
    }
}

#[async_trait]
impl LockEngine for RedisEngine {
    fn lock_settings(&self) -> LockSettings {
        self.lock_settings
    }

    async fn acquire_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<LockHold, LockEngineError> {
        let settings = self.lock_settings;
        if wait_ms > settings.wait_ms_max {
            return Err(LockEngineError::WaitTooLong {
                wait_ms,
                max: settings.wait_ms_max,
            });
        }
        // The name was checked against the caller's limits; these are the engine's.
        LockName::new(name.as_str(), &settings.limits)?;
        check_ttl(&settings.limits, ttl_ms)?;
        self.admit(name).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        let channel = self.lock_keys(name).wake_channel();
        let notify = self.waits.notify_for(&channel);
        let mut permit = None;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let expires_at = match self.try_grant(name, holder, ttl_ms).await {
                Ok(hold) => {
                    // The grant stands whatever happens to the index, which is only a hint
                    // for listings: failing the call now would leave the caller holding a
                    // lock it was told it did not get.
                    if let Err(error) = self.index_add(name).await {
                        tracing::warn!(%error, lock = %name, "granted, but not put back in the lock index");
                    }
                    return Ok(hold);
                }
                Err(LockEngineError::Lock(LockError::Held { expires_at, .. }))
                    if tokio::time::Instant::now() < deadline && !self.is_shutting_down() =>
                {
                    expires_at
                }
                Err(error) => return Err(error),
            };
            if permit.is_none() {
                permit = Some(self.lock_wait_permit()?);
                self.waits.ensure_subscribed(&self.redis, &channel).await;
            }
            let now = tokio::time::Instant::now();
            let expires_in = expires_at.millis_since(Engine::now(self));
            let wake_at = deadline
                .min(now + Duration::from_millis(waits::REPOLL_MS))
                .min(now + Duration::from_millis(expires_in));
            tokio::select! {
                _ = notified => {}
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
        check_ttl(&self.lock_settings.limits, ttl_ms)?;
        let args = [
            holder.to_string(),
            token.get().to_string(),
            ttl_ms.to_string(),
        ];
        let value = self
            .run_lock(name, &scripts::LOCK_RENEW, Access::Write, &args)
            .await?;
        if value.get("err").is_some() {
            return Err(refusal(name, Some(token), &value));
        }
        hold_from(name, &value)
    }

    async fn release_lock(
        &self,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
    ) -> Result<Released, LockEngineError> {
        let args = [holder.to_string(), token.get().to_string()];
        let value = self
            .run_lock(name, &scripts::LOCK_RELEASE, Access::Write, &args)
            .await?;
        if value.get("err").is_some() {
            return Err(refusal(name, Some(token), &value));
        }
        // This node's waiters at once; other nodes' through the script's SPUBLISH.
        self.waits.wake(&self.lock_keys(name).wake_channel());
        // The release stands whatever happens to the index: a name left in it is only read
        // and skipped by listings until a sweep takes it out.
        if let Err(error) = self.index_forget_if_free(name).await {
            tracing::warn!(%error, lock = %name, "released, but not taken out of the lock index");
        }
        Ok(match text(&value, "r") {
            Some("released") => Released::Released,
            _ => Released::AlreadyEnded,
        })
    }

    async fn get_lock(&self, name: &LockName) -> Result<Option<LockHold>, LockEngineError> {
        self.read_lock(name).await
    }

    async fn fenced(
        &self,
        lock: &LockName,
        token: FencingToken,
        write: FencedWrite,
    ) -> Result<FencedOutcome, LockEngineError> {
        // Streams and topics are not on this engine: answered before any check, as their
        // plain calls are, so nothing here can write to them unfenced once they exist.
        let fence = Fence {
            lock: lock.clone(),
            token,
        };
        match write {
            FencedWrite::Append { .. } | FencedWrite::GroupAck { .. } => {
                Err(LockEngineError::Stream(not_yet("streams").into()))
            }
            FencedWrite::Publish { .. } => Err(LockEngineError::Topic(not_yet("topics").into())),
            FencedWrite::Send { queue, entries } => {
                self.check_fence(lock, token).await?;
                let results = match self
                    .send_entries_fenced(&queue, entries, false, Some(&fence))
                    .await
                {
                    Ok(results) => results,
                    Err(error) => return Err(self.refused_by_floor(error, &fence).await),
                };
                let sent = results
                    .into_iter()
                    .collect::<Result<Vec<_>, QueueError>>()
                    .map_err(EngineError::from)?;
                Ok(FencedOutcome::Sent(sent))
            }
            FencedWrite::Ack {
                queue,
                receipts,
                reply,
            } => {
                self.check_fence(lock, token).await?;
                match self
                    .finish_fenced(&queue, receipts, reply, Rule::CurrentLease, Some(&fence))
                    .await
                {
                    Ok(results) => Ok(FencedOutcome::Acked(
                        results
                            .into_iter()
                            .map(|r| r.and_then(|acked| acked.ok_or(ReceiptError::Stale)))
                            .collect(),
                    )),
                    Err(error) => Err(self.refused_by_floor(error, &fence).await),
                }
            }
            FencedWrite::Nack {
                queue,
                receipts,
                delay_ms,
            } => {
                self.check_fence(lock, token).await?;
                match self
                    .nack_fenced(&queue, receipts, delay_ms, Some(&fence))
                    .await
                {
                    Ok(results) => Ok(FencedOutcome::Nacked(results)),
                    Err(error) => Err(self.refused_by_floor(error, &fence).await),
                }
            }
        }
    }

    async fn list_locks(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<LockHold>, LockEngineError> {
        let max = max.min(LOCK_LIST_MAX);
        let mut start = match after {
            Some(after) if after >= prefix => format!("({after}"),
            _ => format!("[{prefix}"),
        };
        let mut out = Vec::new();
        // Ends when the index has no more names with `prefix` (they are contiguous in name
        // order) or `max` holds are found; the index is bounded by `locks_max`.
        while out.len() < max {
            let names = self.index_range(&start).await?;
            let Some(last) = names.last() else {
                break;
            };
            start = format!("({last}");
            let matching: Vec<LockName> = names
                .iter()
                .take_while(|n| n.starts_with(prefix))
                .filter_map(|n| LockName::new(n, &index_limits()).ok())
                .collect();
            let more = matching.len() == names.len();
            let holds = futures::future::join_all(matching.iter().map(|n| self.read_lock(n))).await;
            for hold in holds {
                if let Some(hold) = hold? {
                    out.push(hold);
                }
            }
            if !more {
                break;
            }
        }
        out.truncate(max);
        Ok(out)
    }
}
