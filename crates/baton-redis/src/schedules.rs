//! Schedules on Redis: the `ScheduleEngine` of `RedisEngine`, with the semantics of
//! `baton_core::schedule` (the embedded engine's, kept by the same conformance suite).
//!
//! # What lives where
//! - **A schedule** is one hash `{<namespace>:s:<name>}:h` in the slot its name hashes to
//!   (`keys.rs`): `rec`, the whole record as JSON (`schedule_codec.rs`: definition, pause,
//!   version, position, last outcome, figures); `rev`, raised by every write; `last`, the
//!   last version given to the name, kept after a delete. Nothing about a schedule is
//!   decided in Lua: every change reads the hash, applies the change to a one-schedule
//!   `ScheduleTable` on the engine's clock (`Engine::now`, never Redis `TIME`), and writes the
//!   result with `lua/schedule_write.lua`, a compare-and-set on `rev`. A lost compare-and-set
//!   reads again and decides again (at most `CAS_TRIES` times), so two nodes changing one
//!   schedule never overwrite each other's change.
//! - **The index** `{<namespace>}:schedules` (a sorted set by name, every score 0, in the
//!   registry's slot) serves `list_schedules`, `plan_schedules` and `schedules_max`. It is
//!   kept beside the records, as the lock index is: a *superset* of the names with a record.
//!   A name is admitted (`lua/lock_admit.lua`, refused past `schedules_max`) before its first
//!   write and added again after it; it is removed after a delete, then the record is read and
//!   the name put back if it exists (a put racing the delete). A name without a record is
//!   skipped by readers and swept out of a full index.
//! - **Firings to a queue** (`fire_to_queue`) span two slots, the schedule's and the queue's,
//!   so they are two steps: (1) the send, in the queue's slot, by `send.lua` after
//!   `lua/fired.lua`, which keeps per schedule the last tick sent to this queue (the queue's
//!   `fired` hash) and answers a tick at or below it as a duplicate of the message sent for
//!   it, whatever the dedup window, raising it in the same script as the send; (2) the step,
//!   a compare-and-set on the schedule's slot.
//!
//! # Invariants
//! - **Versions rise per name over its whole life** (`last` outlives deletes), so a plan made
//!   for an older definition, or for a deleted and recreated one, is refused (`Stale`).
//! - **A tick is stepped past once.** An advance whose position is not past the stored one
//!   (another node's advance of the same step won) changes nothing and answers the schedule
//!   as it stands; only a manual firing (`outcome.manual`) is recorded at or below the
//!   position. Two nodes firing one due tick therefore send one message (the queue's marker)
//!   and count one firing (the compare-and-set).
//! - **A tick sent is never sent again**: a node that dies between (1) and (2) leaves the
//!   tick due, and its next firing, by any node, is answered by the marker as the duplicate
//!   of the first message, then stepped past. The marker goes with the queue: a queue
//!   deleted and recreated between (1) and (2) takes the re-fire as a new message.
//! - **Refusals change nothing**: every check is made before any write.

use async_trait::async_trait;
use baton_core::schedule::{
    FireOutcome, Put, Schedule, ScheduleError, ScheduleLimits, ScheduleName, ScheduleSpec,
    ScheduleTable, SCHEDULE_LIST_MAX,
};
use baton_core::{SendOutcome, Timestamp};
use baton_engine::{
    Engine, EngineError, QueueFiring, ScheduleEngine, ScheduleEngineError, SchedulePlans,
};
use serde_json::Value;

use crate::client::{self, Access};
use crate::schedule_codec::{schedule_from_json, schedule_to_json, stored_name_limits};
use crate::{codec, keys, scripts, RedisEngine};

/// Names one index read returns, and records read at once.
const INDEX_CHUNK: usize = 100;
/// Names a sweep of a full index looks at, so a put stays short.
const SWEEP_MAX: usize = 1_000;
/// Reads and compare-and-sets one change makes before it gives up: each lost one means
/// another node changed the schedule meanwhile, which a firing task does once per tick.
const CAS_TRIES: usize = 8;

/// A schedule's hash as read.
struct Stored {
    rev: u64,
    last_version: u64,
    schedule: Option<Schedule>,
}

fn not_found(name: &ScheduleName) -> ScheduleEngineError {
    ScheduleError::NotFound {
        name: name.to_string(),
    }
    .into()
}

fn contended(name: &ScheduleName) -> ScheduleEngineError {
    EngineError::StorageUnavailable {
        reason: format!("schedule {name} kept changing under this write; try again"),
    }
    .into()
}

impl Stored {
    /// A table holding only this schedule, whose next version is `last_version + 1`; the
    /// limits are the engine's (the table's own count check never bites: it holds one).
    fn table(&self, limits: ScheduleLimits) -> ScheduleTable {
        let mut table = ScheduleTable::new(limits);
        table.restore_last_version(self.last_version);
        if let Some(schedule) = &self.schedule {
            table.restore(schedule.clone());
        }
        table
    }
}

impl RedisEngine {
    fn schedule_hash(&self, name: &ScheduleName) -> String {
        keys::schedule_hash(&self.namespace, name)
    }

    async fn read_schedule(&self, name: &ScheduleName) -> Result<Stored, EngineError> {
        let hash = self.schedule_hash(name);
        let mut hmget = redis::cmd("HMGET");
        hmget.arg(&hash).arg("rec").arg("rev").arg("last");
        let replies = self
            .call(self.redis.run_commands(&hash, vec![hmget], Access::Read))
            .await?;
        let fields = replies
            .first()
            .map(client::texts_with_nils)
            .unwrap_or_default();
        let number = |i: usize| -> Result<u64, EngineError> {
            match fields.get(i).cloned().flatten() {
                None => Ok(0),
                Some(text) => text
                    .parse()
                    .map_err(|e| codec::corrupt("schedule counter", &e)),
            }
        };
        let schedule = match fields.first().cloned().flatten() {
            Some(text) => Some(schedule_from_json(&text)?),
            None => None,
        };
        Ok(Stored {
            rev: number(1)?,
            last_version: number(2)?,
            schedule,
        })
    }

    /// Writes `schedule` (or deletes the record) if the hash is still at `rev`; false when
    /// another write came first.
    async fn write_schedule(
        &self,
        name: &ScheduleName,
        rev: u64,
        schedule: Option<&Schedule>,
        last_version: u64,
    ) -> Result<bool, EngineError> {
        let hash = self.schedule_hash(name);
        let args = [
            rev.to_string(),
            schedule.map(schedule_to_json).unwrap_or_default(),
            last_version.to_string(),
        ];
        let answer = self
            .call(self.redis.run_script(
                &scripts::SCHEDULE_WRITE,
                std::slice::from_ref(&hash),
                &args,
                Access::Write,
            ))
            .await?;
        let value: Value = serde_json::from_str(&answer)
            .map_err(|e| codec::corrupt("schedule write answer", &e))?;
        Ok(value.get("err").is_none())
    }

    async fn schedule_index_command(&self, cmd: redis::Cmd) -> Result<(), EngineError> {
        let index = keys::schedule_index(&self.namespace);
        self.call(self.redis.run_commands(&index, vec![cmd], Access::Write))
            .await
            .map(drop)
    }

    async fn schedule_index_add(&self, name: &ScheduleName) -> Result<(), EngineError> {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(keys::schedule_index(&self.namespace))
            .arg(0)
            .arg(name.as_str());
        self.schedule_index_command(zadd).await
    }

    /// Takes `name` out of the index unless it has a record: removed first, then the record
    /// read and the name put back if there is one, so a put racing this is never left out.
    async fn schedule_index_forget(&self, name: &ScheduleName) -> Result<(), EngineError> {
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(keys::schedule_index(&self.namespace))
            .arg(name.as_str());
        self.schedule_index_command(zrem).await?;
        if self.read_schedule(name).await?.schedule.is_some() {
            self.schedule_index_add(name).await?;
        }
        Ok(())
    }

    /// Names of the index after `start` (exclusive with `(`, `-` for the first), at most
    /// `INDEX_CHUNK`, with their records (`None`: a name left without one).
    async fn schedule_chunk(
        &self,
        start: &str,
    ) -> Result<(Option<String>, Vec<(ScheduleName, Option<Schedule>)>), EngineError> {
        let index = keys::schedule_index(&self.namespace);
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
        let names = replies.first().map(client::texts).unwrap_or_default();
        let last = names.last().cloned();
        let names: Vec<ScheduleName> = names
            .iter()
            .filter_map(|n| ScheduleName::new(n, &stored_name_limits()).ok())
            .collect();
        let reads = futures::future::join_all(names.iter().map(|n| self.read_schedule(n))).await;
        let mut out = Vec::with_capacity(names.len());
        for (name, stored) in names.into_iter().zip(reads) {
            out.push((name, stored?.schedule));
        }
        Ok((last, out))
    }

    /// Every schedule of the index, in name order; the index is bounded by `schedules_max`
    /// (plus names a sweep has not taken out yet).
    async fn all_schedules(&self) -> Result<Vec<Schedule>, EngineError> {
        let mut start = "-".to_string();
        let mut out = Vec::new();
        loop {
            let (last, chunk) = self.schedule_chunk(&start).await?;
            let Some(last) = last else {
                return Ok(out);
            };
            start = format!("({last}");
            out.extend(chunk.into_iter().filter_map(|(_, s)| s));
        }
    }

    /// Admits `name` to the index within `schedules_max`, sweeping names without a record out
    /// of a full index once.
    async fn admit_schedule(&self, name: &ScheduleName) -> Result<(), ScheduleEngineError> {
        let limit = self.schedule_limits.schedules_max;
        for attempt in 0..2 {
            let index = keys::schedule_index(&self.namespace);
            let args = [name.to_string(), limit.to_string()];
            let answer = self
                .call(self.redis.run_script(
                    &scripts::LOCK_ADMIT,
                    std::slice::from_ref(&index),
                    &args,
                    Access::Write,
                ))
                .await?;
            let value: Value = serde_json::from_str(&answer)
                .map_err(|e| codec::corrupt("schedule admit answer", &e))?;
            if value.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(());
            }
            if attempt == 0 {
                self.sweep_schedule_index().await?;
            }
        }
        Err(ScheduleError::TooManySchedules { limit }.into())
    }

    /// Takes up to `SWEEP_MAX` names without a record out of the index.
    async fn sweep_schedule_index(&self) -> Result<(), EngineError> {
        let mut start = "-".to_string();
        let mut n_seen = 0;
        while n_seen < SWEEP_MAX {
            let (last, chunk) = self.schedule_chunk(&start).await?;
            let Some(last) = last else {
                return Ok(());
            };
            start = format!("({last}");
            n_seen += chunk.len();
            for (name, schedule) in chunk {
                if schedule.is_none() {
                    self.schedule_index_forget(&name).await?;
                }
            }
        }
        Ok(())
    }

    /// Reads `name`, lets `decide` make the change on a one-schedule table, and writes it by
    /// compare-and-set, deciding again after a lost one. `decide` answers the value to return
    /// and the schedule to write (`None`: nothing to write).
    async fn change_schedule<T>(
        &self,
        name: &ScheduleName,
        mut decide: impl FnMut(
            &Stored,
            &mut ScheduleTable,
            Timestamp,
        ) -> Result<(T, Option<Schedule>), ScheduleEngineError>,
    ) -> Result<T, ScheduleEngineError> {
        for _ in 0..CAS_TRIES {
            let stored = self.read_schedule(name).await?;
            let mut table = stored.table(self.schedule_limits);
            let (answer, write) = decide(&stored, &mut table, Engine::now(self))?;
            let Some(schedule) = write else {
                return Ok(answer);
            };
            let last_version = stored.last_version.max(schedule.version);
            if self
                .write_schedule(name, stored.rev, Some(&schedule), last_version)
                .await?
            {
                return Ok(answer);
            }
        }
        Err(contended(name))
    }

    /// The step of an advance or a firing, by compare-and-set: `Stale` or `NotFound` as the
    /// table says; a step another node made already (the position is not past the stored
    /// one, and it is no manual firing) changes nothing and answers the schedule as it is.
    async fn step_schedule(
        &self,
        name: &ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<FireOutcome>,
    ) -> Result<Schedule, ScheduleEngineError> {
        self.change_schedule(name, |stored, table, _| {
            table.check_version(name, version)?;
            let Some(current) = &stored.schedule else {
                return Err(not_found(name));
            };
            let manual = outcome.as_ref().is_some_and(|o| o.manual);
            if !manual && position <= current.position {
                return Ok((current.clone(), None));
            }
            let after = table
                .advance(name, version, position, n_missed, outcome.clone())?
                .clone();
            Ok((after.clone(), Some(after)))
        })
        .await
    }
}

#[async_trait]
impl ScheduleEngine for RedisEngine {
    fn schedule_limits(&self) -> ScheduleLimits {
        self.schedule_limits
    }

    async fn put_schedule(
        &self,
        name: &ScheduleName,
        spec: ScheduleSpec,
        paused: bool,
    ) -> Result<(Put, Schedule), ScheduleEngineError> {
        // The name was checked against the caller's limits; these are the engine's.
        ScheduleName::new(name.as_str(), &self.schedule_limits)?;
        let mut admitted = false;
        for _ in 0..CAS_TRIES {
            let stored = self.read_schedule(name).await?;
            let mut table = stored.table(self.schedule_limits);
            let (put, schedule) = table.put(Engine::now(self), name, spec.clone(), paused)?;
            let schedule = schedule.clone();
            if put == Put::Unchanged {
                return Ok((put, schedule));
            }
            if stored.schedule.is_none() && !admitted {
                self.admit_schedule(name).await?;
                admitted = true;
            }
            if self
                .write_schedule(name, stored.rev, Some(&schedule), schedule.version)
                .await?
            {
                if put == Put::Created {
                    // The put stands whatever happens to the index, which a sweep may have
                    // emptied of this name between the admission and the write: it is only
                    // missing from listings and plans until the next put of it.
                    if let Err(error) = self.schedule_index_add(name).await {
                        tracing::warn!(%error, schedule = %name, "created, but not put back in the schedule index");
                    }
                }
                return Ok((put, schedule));
            }
        }
        Err(contended(name))
    }

    async fn delete_schedule(&self, name: &ScheduleName) -> Result<(), ScheduleEngineError> {
        for _ in 0..CAS_TRIES {
            let stored = self.read_schedule(name).await?;
            if stored.schedule.is_none() {
                return Err(not_found(name));
            }
            if self
                .write_schedule(name, stored.rev, None, stored.last_version)
                .await?
            {
                // The delete stands whatever happens to the index: a name left in it is
                // skipped by readers until a sweep takes it out.
                if let Err(error) = self.schedule_index_forget(name).await {
                    tracing::warn!(%error, schedule = %name, "deleted, but not taken out of the schedule index");
                }
                return Ok(());
            }
        }
        Err(contended(name))
    }

    async fn set_schedule_paused(
        &self,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<Schedule, ScheduleEngineError> {
        self.change_schedule(name, |stored, table, now| {
            let unchanged = stored.schedule.as_ref().is_some_and(|s| s.paused == paused);
            let after = table.set_paused(now, name, paused)?.clone();
            let write = (!unchanged).then(|| after.clone());
            Ok((after, write))
        })
        .await
    }

    async fn get_schedule(
        &self,
        name: &ScheduleName,
    ) -> Result<Option<Schedule>, ScheduleEngineError> {
        Ok(self.read_schedule(name).await?.schedule)
    }

    async fn list_schedules(
        &self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<Schedule>, ScheduleEngineError> {
        let max = max.min(SCHEDULE_LIST_MAX);
        let mut start = match after {
            Some(after) => format!("({after}"),
            None => "-".to_string(),
        };
        let mut out = Vec::new();
        while out.len() < max {
            let (last, chunk) = self.schedule_chunk(&start).await?;
            let Some(last) = last else {
                break;
            };
            start = format!("({last}");
            out.extend(chunk.into_iter().filter_map(|(_, s)| s));
        }
        out.truncate(max);
        Ok(out)
    }

    async fn plan_schedules(&self) -> Result<SchedulePlans, ScheduleEngineError> {
        let schedules = self.all_schedules().await?;
        let mut table = ScheduleTable::new(self.schedule_limits);
        for schedule in schedules {
            table.restore(schedule);
        }
        // Read after the records, so no tick planned is later than a record read says.
        let now = Engine::now(self);
        Ok(SchedulePlans {
            now,
            plans: table.plan(now),
            next_due: table.next_due(),
        })
    }

    async fn advance_schedule(
        &self,
        name: &ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<FireOutcome>,
    ) -> Result<Schedule, ScheduleEngineError> {
        self.step_schedule(name, version, position, n_missed, outcome)
            .await
    }

    async fn fire_to_queue(
        &self,
        firing: QueueFiring,
    ) -> Result<(Schedule, SendOutcome), ScheduleEngineError> {
        // Checked before anything is sent: a firing planned for another definition sends
        // nothing.
        let stored = self.read_schedule(&firing.name).await?;
        stored
            .table(self.schedule_limits)
            .check_version(&firing.name, firing.version)?;
        let sent = self
            .send_fired(&firing.queue, firing.entry, &firing.name, firing.tick)
            .await?;
        if self.cut_firings.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EngineError::StorageUnavailable {
                reason: "injected: the firing stopped after its send".to_string(),
            }
            .into());
        }
        let detail = if sent.duplicate {
            format!(
                "queue {}: already sent as message {}",
                firing.queue, sent.id
            )
        } else {
            format!("queue {}: message {}", firing.queue, sent.id)
        };
        let outcome = FireOutcome {
            tick: firing.tick,
            fired_at: Engine::now(self),
            ok: true,
            detail,
            manual: false,
        };
        // A definition changed between the send and this step answers `Stale`: the tick, if
        // the new definition still has it due, is fired again and answered by the marker.
        let schedule = self
            .step_schedule(
                &firing.name,
                firing.version,
                firing.position,
                firing.n_missed,
                Some(outcome),
            )
            .await?;
        Ok((schedule, sent))
    }
}
