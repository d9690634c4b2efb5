//! Schedules in the local engine: one `baton_core::schedule::ScheduleTable` behind a mutex,
//! its records in the main log.
//!
//! # Locking and durability
//! The table's mutex is taken alone and never across an `.await`. A change is applied to the
//! table and its record (`ScheduleOp`, an outcome: the whole schedule after a put, the
//! position an advance reached) is submitted under the mutex, so log order is table order; the
//! answer waits for the record to be durable after the mutex is released. A change whose
//! record could not be submitted stays in memory until the engine reloads from disk (its
//! caller got an error and retries; for an advance the firing task simply plans the tick again
//! and the dedup id makes the second send a duplicate). The disk-free alarm does not refuse
//! schedule operations: their records are tiny, and the firings' sends are refused (or not)
//! by the targets themselves.

use async_trait::async_trait;
use baton_core::schedule::{
    FireOutcome, Put, Schedule, ScheduleError, ScheduleLimits, ScheduleName, ScheduleSpec,
    ScheduleTable,
};
use baton_core::Timestamp;
use baton_storage::records;
use baton_storage::schedule_records::{ScheduleOp, KIND_SCHEDULE_OP};
use parking_lot::Mutex;

use super::{max_lsn, not_found, Access, LocalEngine};
use crate::durable::{codec, schedules as disk};
use crate::schedules::{QueueFiring, ScheduleEngine, ScheduleEngineError, SchedulePlans};
use crate::EngineError;
use baton_core::SendOutcome;

pub(crate) struct Schedules {
    limits: ScheduleLimits,
    table: Mutex<ScheduleTable>,
}

impl Schedules {
    pub(crate) fn new(limits: ScheduleLimits) -> Self {
        Schedules {
            limits,
            table: Mutex::new(ScheduleTable::new(limits)),
        }
    }

    /// Replaces the table by what recovery rebuilt, under the configured limits.
    pub(crate) fn restore(&self, recovered: &ScheduleTable) {
        let mut table = ScheduleTable::new(self.limits);
        table.restore_last_version(recovered.last_version());
        for schedule in recovered.snapshot() {
            table.restore(schedule.clone());
        }
        *self.table.lock() = table;
    }
}

impl LocalEngine {
    /// This engine with schedule limits other than the defaults; call it before `recover`.
    pub fn with_schedule_limits(mut self, limits: ScheduleLimits) -> Self {
        self.schedules = Schedules::new(limits);
        self
    }

    /// Submits `op` when durable; its LSN to wait for.
    fn submit_schedule(&self, op: impl FnOnce() -> ScheduleOp) -> Result<Option<u64>, EngineError> {
        match &self.durable {
            Some(durable) => durable
                .submit_frame(KIND_SCHEDULE_OP, &records::encode(&op()))
                .map(Some),
            None => Ok(None),
        }
    }

    /// The checkpoint part of the schedule table; `last_lsn` is read under the table's mutex.
    pub(crate) fn schedules_checkpoint_part(&self, last_lsn: &dyn Fn() -> u64) -> (u8, Vec<u8>) {
        let table = self.schedules.table.lock();
        disk::checkpoint_part(&table, last_lsn())
    }

    /// The send and the step of [`ScheduleEngine::fire_to_queue`], under the table's mutex
    /// and the queue's lock: the queue's earlier records of this call (an advance) are
    /// submitted first, then one `FiredToQueue` record for the send and the step.
    fn fire_on(
        &self,
        table: &mut ScheduleTable,
        queue: &mut baton_core::Queue,
        now: Timestamp,
        journal: &mut super::Journal,
        firing: QueueFiring,
    ) -> Result<((Schedule, SendOutcome), Option<u64>), ScheduleEngineError> {
        let record = journal.enabled.then(|| codec::entry_to_disk(&firing.entry));
        let sent = queue
            .send(now, vec![firing.entry])
            .map_err(EngineError::Queue)?;
        let Some(sent) = sent.into_iter().next() else {
            return Err(EngineError::StorageUnavailable {
                reason: "a send of one entry answered no outcome".to_string(),
            }
            .into());
        };
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
            fired_at: now,
            ok: true,
            detail,
            manual: false,
        };
        let earlier = std::mem::replace(journal, self.journal());
        let advanced = self.submit(earlier, Access::Write)?;
        let schedule = table
            .advance(
                &firing.name,
                firing.version,
                firing.position,
                firing.n_missed,
                Some(outcome.clone()),
            )
            .expect("checked under the same mutex before the send")
            .clone();
        let fired = match record {
            Some(entry) => self.submit_schedule(|| ScheduleOp::FiredToQueue {
                name: firing.name.to_string(),
                version: firing.version,
                position: firing.position.as_millis(),
                n_missed: firing.n_missed,
                outcome: disk::outcome_to_disk(&outcome),
                queue: firing.queue.to_string(),
                now: now.as_millis(),
                entries: vec![entry],
            })?,
            None => None,
        };
        Ok(((schedule, sent), max_lsn(advanced, fired)))
    }

    /// Applies `change` to the table and logs what it returns, then waits for durability.
    async fn change_schedules<T>(
        &self,
        change: impl FnOnce(
            &mut ScheduleTable,
            Timestamp,
        ) -> Result<(T, Option<ScheduleOp>), ScheduleError>,
    ) -> Result<T, ScheduleEngineError> {
        self.check_ready()?;
        let (answer, lsn) = {
            let mut table = self.schedules.table.lock();
            let (answer, op) = change(&mut table, self.clock.now())?;
            let lsn = match op {
                Some(op) => self.submit_schedule(|| op)?,
                None => None,
            };
            (answer, lsn)
        };
        self.wait(lsn).await?;
        Ok(answer)
    }
}

#[async_trait]
impl ScheduleEngine for LocalEngine {
    fn schedule_limits(&self) -> ScheduleLimits {
        self.schedules.limits
    }

    async fn put_schedule(
        &self,
        name: &ScheduleName,
        spec: ScheduleSpec,
        paused: bool,
    ) -> Result<(Put, Schedule), ScheduleEngineError> {
        self.change_schedules(|table, now| {
            let (put, schedule) = table.put(now, name, spec, paused)?;
            let op = (put != Put::Unchanged)
                .then(|| ScheduleOp::Put(Box::new(disk::schedule_to_disk(schedule))));
            Ok(((put, schedule.clone()), op))
        })
        .await
    }

    async fn delete_schedule(&self, name: &ScheduleName) -> Result<(), ScheduleEngineError> {
        self.change_schedules(|table, now| {
            table.delete(name)?;
            let op = ScheduleOp::Deleted {
                name: name.to_string(),
                now: now.as_millis(),
            };
            Ok(((), Some(op)))
        })
        .await
    }

    async fn set_schedule_paused(
        &self,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<Schedule, ScheduleEngineError> {
        self.change_schedules(|table, now| {
            let schedule = table.set_paused(now, name, paused)?;
            let op = ScheduleOp::Paused {
                name: name.to_string(),
                paused,
                position: schedule.position.as_millis(),
                now: now.as_millis(),
            };
            Ok((schedule.clone(), Some(op)))
        })
        .await
    }

    async fn get_schedule(
        &self,
        name: &ScheduleName,
    ) -> Result<Option<Schedule>, ScheduleEngineError> {
        self.check_ready()?;
        Ok(self.schedules.table.lock().get(name.as_str()).cloned())
    }

    async fn list_schedules(
        &self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<Schedule>, ScheduleEngineError> {
        self.check_ready()?;
        let table = self.schedules.table.lock();
        Ok(table.list(after, max).into_iter().cloned().collect())
    }

    async fn plan_schedules(&self) -> Result<SchedulePlans, ScheduleEngineError> {
        self.check_ready()?;
        let table = self.schedules.table.lock();
        let now = self.clock.now();
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
        self.change_schedules(|table, _| {
            let op = ScheduleOp::Advanced {
                name: name.to_string(),
                version,
                position: position.as_millis(),
                n_missed,
                outcome: outcome.as_ref().map(disk::outcome_to_disk),
            };
            let schedule = table.advance(name, version, position, n_missed, outcome)?;
            Ok((schedule.clone(), Some(op)))
        })
        .await
    }

    async fn fire_to_queue(
        &self,
        firing: QueueFiring,
    ) -> Result<(Schedule, SendOutcome), ScheduleEngineError> {
        self.check_ready()?;
        let (answer, lsn) = {
            // Lock order: the schedule table, then the queue (nothing takes them the other
            // way round); both are held while the record is submitted, so log order is the
            // order of both.
            let mut table = self.schedules.table.lock();
            table.check_version(&firing.name, firing.version)?;
            let registry = self.queues.read();
            let slot = registry
                .get(&firing.queue)
                .ok_or_else(|| not_found(&firing.queue))?;
            self.check_write_alarms()?;
            let (fired, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    self.fire_on(&mut table, queue, now, journal, firing)
                })?;
            slot.visible.notify_waiters();
            let (answer, fired_lsn) = fired?;
            (answer, max_lsn(lsn, fired_lsn))
        };
        self.wait(lsn).await?;
        Ok(answer)
    }
}
