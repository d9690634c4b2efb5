//! The schedule interface: durable cron and one-shot schedules as whole operations.
//!
//! A separate trait from [`Engine`](crate::Engine) (which requires it), like locks: the local
//! engine implements it in `local/schedules.rs` over `baton_core::schedule`. The engine keeps
//! definitions and positions durable; it sends nothing itself. A firing task (the server's)
//! asks [`ScheduleEngine::plan_schedules`] what is due on the engine's clock, sends each tick
//! with the dedup id `schedule:<name>:<tick>` and reports the step with
//! [`ScheduleEngine::advance_schedule`], which is durable when it answers. A firing to a queue
//! is one call instead, [`ScheduleEngine::fire_to_queue`]: the send and the step are one
//! durable unit, so no crash can keep one without the other, however long the broker stays
//! down. For topic and stream targets a crash between the send and the advance leaves the tick
//! due: it is sent again with the same dedup id (a stream: the same producer sequence), which
//! the target answers as a duplicate while the topic's queues still remember the id.

use async_trait::async_trait;
use baton_core::schedule::{
    FireOutcome, Plan, Put, Schedule, ScheduleError, ScheduleLimits, ScheduleName, ScheduleSpec,
};
use baton_core::{QueueName, SendEntry, SendOutcome, Timestamp};

use crate::EngineError;

/// One step of a plan that fires to a queue (see [`ScheduleEngine::fire_to_queue`]).
#[derive(Debug, Clone)]
pub struct QueueFiring {
    pub name: ScheduleName,
    /// The definition the step was planned for.
    pub version: u64,
    /// The position the step reaches.
    pub position: Timestamp,
    pub n_missed: u64,
    /// The tick fired.
    pub tick: Timestamp,
    pub queue: QueueName,
    pub entry: SendEntry,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleEngineError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What is due now, and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulePlans {
    /// The engine's time the plans are for.
    pub now: Timestamp,
    pub plans: Vec<Plan>,
    /// The earliest tick of an active schedule not done yet (possibly already due).
    pub next_due: Option<Timestamp>,
}

#[async_trait]
pub trait ScheduleEngine: Send + Sync {
    /// The limits names, messages and the table are checked against.
    fn schedule_limits(&self) -> ScheduleLimits;

    /// Creates or replaces `name` (see `ScheduleTable::put` for what a replacement keeps).
    async fn put_schedule(
        &self,
        name: &ScheduleName,
        spec: ScheduleSpec,
        paused: bool,
    ) -> Result<(Put, Schedule), ScheduleEngineError>;

    /// Removes `name`.
    async fn delete_schedule(&self, name: &ScheduleName) -> Result<(), ScheduleEngineError>;

    /// Pauses or resumes `name`; a resume starts from now (ticks while paused never fire).
    async fn set_schedule_paused(
        &self,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<Schedule, ScheduleEngineError>;

    async fn get_schedule(
        &self,
        name: &ScheduleName,
    ) -> Result<Option<Schedule>, ScheduleEngineError>;

    /// Schedules after `after` in name order, at most `max` (≤ `SCHEDULE_LIST_MAX`).
    async fn list_schedules(
        &self,
        after: Option<&str>,
        max: usize,
    ) -> Result<Vec<Schedule>, ScheduleEngineError>;

    /// What is due at the engine's now.
    async fn plan_schedules(&self) -> Result<SchedulePlans, ScheduleEngineError>;

    /// Records one step of a plan (or a manual firing: `position` at or below the current
    /// one, `outcome.manual`), durably.
    ///
    /// # Errors
    /// `ScheduleError::Stale` when the schedule changed since `version` was planned,
    /// `NotFound`; storage failures.
    async fn advance_schedule(
        &self,
        name: &ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<FireOutcome>,
    ) -> Result<Schedule, ScheduleEngineError>;

    /// Sends `firing.entry` to `firing.queue` and records the step with its outcome (ok, the
    /// message named in the detail) as one durable unit. A send the queue refuses (it is
    /// missing, full, the entry is wrong) sends and records nothing: the error comes back as
    /// `ScheduleEngineError::Engine`, and the caller records the failed outcome with
    /// [`advance_schedule`](Self::advance_schedule).
    ///
    /// # Errors
    /// As `advance_schedule`, checked before anything is sent, and the send's.
    async fn fire_to_queue(
        &self,
        firing: QueueFiring,
    ) -> Result<(Schedule, SendOutcome), ScheduleEngineError>;
}
