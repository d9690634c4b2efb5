//! Schedules (cron or one-shot) as a pure table over injected time.
//!
//! A [`ScheduleTable`] maps [`ScheduleName`]s to their [`Schedule`]: a definition
//! ([`ScheduleSpec`]: when, what to send where, what to do with missed ticks, an optional
//! window) and a **position**, the instant up to which every tick is done (fired, counted as
//! missed, or before the definition existed). Nothing here sends anything: [`ScheduleTable::plan`]
//! says which ticks are due at `now`, the caller sends each one with the deterministic dedup
//! id [`dedup_id`] and reports back with [`ScheduleTable::advance`].
//!
//! # Missed ticks
//! A due tick is *on time* while `now - tick <= missed_grace_ms`, *missed* after that (the
//! broker was down, or fell behind). On-time ticks always fire, in order. Missed ones follow the
//! schedule's [`Missed`] policy: `skip` counts them and moves on, `once` fires the latest of
//! them (the others are counted), `all` fires every one, oldest first, at most
//! `catch_up_max` per plan.
//!
//! # Invariants
//! - **Positions only grow** for one definition (`advance` takes the max), so a tick at or
//!   before the position is never planned again: with the dedup id on the send, replaying an
//!   `advance` or re-sending a planned tick changes nothing.
//! - **Versions tell definitions apart.** Every put that changes a definition and every
//!   delete takes a new version from a table-wide counter; an `advance` for another version
//!   is refused (`Stale`), so a firing planned before a change never moves the new position.
//! - A put that keeps the timing and the window keeps the position (re-applying a
//!   definition at every deploy loses no tick); a new timing starts at the put's `now`.
//!   Resuming a paused schedule moves the position to `now`: ticks while paused are neither
//!   fired nor missed.
//! - **Refusals change nothing**; the table holds at most `schedules_max` schedules.
//!
//! The `restore_*` functions apply logged outcomes during recovery and skip the limits.

mod timing;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use timing::{CronTiming, Timing, CRON_PATTERN_CHARS_MAX, TIMEZONE_CHARS_MAX};

use crate::time::Timestamp;

/// Longest schedule name any configuration may allow: `schedule:<name>:<13 digits>` must fit
/// in a 128-character dedup id.
pub const SCHEDULE_NAME_CHARS_LIMIT: u32 = 100;
/// Most fire times one `next_fires` call computes.
pub const NEXT_FIRES_MAX: usize = 100;
/// Schedules one list call returns at most.
pub const SCHEDULE_LIST_MAX: usize = 1000;
/// Missed ticks counted one by one after a downtime; the count saturates here ("at least").
pub const MISSED_COUNT_MAX: u64 = 100_000;

/// The configured limits of a schedule table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleLimits {
    pub schedules_max: u32,
    /// Longest name, 1..=[`SCHEDULE_NAME_CHARS_LIMIT`].
    pub name_chars_max: u32,
    /// Largest message (body, attributes, group id, routing key and key together).
    pub message_bytes_max: u32,
    /// How late a tick may fire and still be on time rather than missed.
    pub missed_grace_ms: u64,
    /// Ticks one plan fires at most per schedule (a long catch-up under `all` spreads over
    /// several plans).
    pub catch_up_max: u32,
}

impl Default for ScheduleLimits {
    fn default() -> Self {
        ScheduleLimits {
            schedules_max: 10_000,
            name_chars_max: SCHEDULE_NAME_CHARS_LIMIT,
            message_bytes_max: 256 * 1024,
            missed_grace_ms: 2_000,
            catch_up_max: 100,
        }
    }
}

/// The deterministic dedup id of one tick's send: `schedule:<name>:<tick in ms>`.
pub fn dedup_id(name: &ScheduleName, tick: Timestamp) -> String {
    format!("schedule:{name}:{}", tick.as_millis())
}

/// A validated schedule name: 1..=`name_chars_max` characters of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScheduleName(Arc<str>);

impl ScheduleName {
    pub fn new(name: &str, limits: &ScheduleLimits) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidName {
            name: name.chars().take(80).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("a schedule name must not be empty".to_string()));
        }
        let n_chars = name.chars().count();
        let max = limits.name_chars_max.min(SCHEDULE_NAME_CHARS_LIMIT);
        if n_chars > max as usize {
            return Err(invalid(format!(
                "a schedule name is at most {max} characters, this one has {n_chars}"
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(invalid(format!(
                "character {bad:?} is not allowed: use A-Z, a-z, 0-9, '-', '_', '.' and ':'"
            )));
        }
        Ok(ScheduleName(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ScheduleName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScheduleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happens to ticks that passed while nothing could fire them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Counted, never fired.
    Skip,
    /// The latest of them fires once; the others are counted.
    #[default]
    Once,
    /// Every one fires, oldest first.
    All,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::Skip => "skip",
            Missed::Once => "once",
            Missed::All => "all",
        }
    }

    pub fn parse(s: &str) -> Option<Missed> {
        match s {
            "skip" => Some(Missed::Skip),
            "once" => Some(Missed::Once),
            "all" => Some(Missed::All),
            _ => None,
        }
    }
}

/// Where a firing's message goes. The name is checked by whoever knows the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Topic(String),
    Stream(String),
}

impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Queue(_) => "queue",
            Target::Topic(_) => "topic",
            Target::Stream(_) => "stream",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Target::Queue(n) | Target::Topic(n) | Target::Stream(n) => n,
        }
    }
}

/// The message every firing sends. Attributes are plain strings (a stream's headers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduledMessage {
    pub body: String,
    pub attributes: BTreeMap<String, String>,
    pub group_id: Option<String>,
    pub routing_key: Option<String>,
    pub key: Option<String>,
}

impl ScheduledMessage {
    /// Bytes the message counts against `message_bytes_max`.
    pub fn size_bytes(&self) -> usize {
        let optional = |s: &Option<String>| s.as_deref().map_or(0, str::len);
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + optional(&self.group_id)
            + optional(&self.routing_key)
            + optional(&self.key)
    }
}

/// A schedule's definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleSpec {
    pub timing: Timing,
    pub target: Target,
    pub message: ScheduledMessage,
    pub missed: Missed,
    /// No tick before this fires.
    pub start_at: Option<Timestamp>,
    /// No tick after this fires.
    pub end_at: Option<Timestamp>,
}

/// How one firing went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireOutcome {
    /// The tick fired (for a manual firing: when it was asked for).
    pub tick: Timestamp,
    /// When the send was answered.
    pub fired_at: Timestamp,
    /// False when the send failed; `detail` then says why.
    pub ok: bool,
    pub detail: String,
    /// A firing asked for by hand (`fire`), not a tick.
    pub manual: bool,
}

/// A schedule and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: ScheduleName,
    pub spec: ScheduleSpec,
    pub paused: bool,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Every tick at or before this is done.
    pub position: Timestamp,
    pub last_outcome: Option<FireOutcome>,
    pub n_fired: u64,
    pub n_missed: u64,
    pub n_failed: u64,
}

/// Where a schedule stands at some `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleState {
    Active,
    Paused,
    /// No tick is left: a one-shot that fired, or a window that ended.
    Finished,
}

impl ScheduleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Active => "active",
            ScheduleState::Paused => "paused",
            ScheduleState::Finished => "finished",
        }
    }
}

impl Schedule {
    /// Ticks after this are not done yet (the window's start folded in).
    fn cursor(&self) -> Timestamp {
        match self.spec.start_at {
            Some(start) => self
                .position
                .max(Timestamp::from_millis(start.as_millis().saturating_sub(1))),
            None => self.position,
        }
    }

    fn in_window(&self, tick: Timestamp) -> bool {
        self.spec.end_at.is_none_or(|end| tick <= end)
    }

    /// The first tick not done yet, if any is left.
    fn next_tick(&self, after: Timestamp) -> Option<Timestamp> {
        self.spec
            .timing
            .next_after(after)
            .filter(|t| self.in_window(*t))
    }

    /// Up to `n` (at most [`NEXT_FIRES_MAX`]) ticks not done yet, in order; due ones first.
    pub fn next_fires(&self, n: usize) -> Vec<Timestamp> {
        let mut fires = Vec::new();
        let mut after = self.cursor();
        while fires.len() < n.min(NEXT_FIRES_MAX) {
            let Some(tick) = self.next_tick(after) else {
                break;
            };
            fires.push(tick);
            after = tick;
        }
        fires
    }

    pub fn state(&self) -> ScheduleState {
        if self.next_tick(self.cursor()).is_none() {
            ScheduleState::Finished
        } else if self.paused {
            ScheduleState::Paused
        } else {
            ScheduleState::Active
        }
    }
}

/// One step of a plan: fire `tick` (if any), then move the position to `position` and count
/// `n_missed` ticks as missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub tick: Option<Timestamp>,
    pub position: Timestamp,
    pub n_missed: u64,
}

/// What is due for one schedule, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: ScheduleName,
    pub version: u64,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid cron pattern {pattern:?}: {reason}")]
    InvalidCron { pattern: String, reason: String },
    #[error("unknown time zone {timezone:?}: use an IANA name such as \"UTC\" or \"Asia/Seoul\"")]
    UnknownTimezone { timezone: String },
    #[error("cron pattern {pattern:?} never fires{}", if *.in_window { " within start_at..end_at" } else { "" })]
    NeverFires { pattern: String, in_window: bool },
    #[error("at {at} is not in the future (now is {now})", at = at.as_millis(), now = now.as_millis())]
    AtInPast { at: Timestamp, now: Timestamp },
    #[error("end_at {end_at} is not after start_at {start_at}", end_at = end_at.as_millis(), start_at = start_at.as_millis())]
    InvalidWindow {
        start_at: Timestamp,
        end_at: Timestamp,
    },
    #[error("end_at {end_at} is in the past (now is {now})", end_at = end_at.as_millis(), now = now.as_millis())]
    EndInPast { end_at: Timestamp, now: Timestamp },
    #[error("the message is {bytes} bytes, more than the limit of {max}")]
    MessageTooLarge { bytes: usize, max: u32 },
    #[error("the server already keeps {limit} schedules (its schedules_max)")]
    TooManySchedules { limit: u32 },
    #[error("schedule {name} does not exist")]
    NotFound { name: String },
    #[error("schedule {name} changed (version {current}) since this firing was planned (version {planned})")]
    Stale {
        name: ScheduleName,
        planned: u64,
        current: u64,
    },
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
    /// The same definition and pause state: nothing changed.
    Unchanged,
}

/// Every schedule of a server. See the module doc for the invariants.
#[derive(Debug, Clone)]
pub struct ScheduleTable {
    limits: ScheduleLimits,
    schedules: BTreeMap<ScheduleName, Schedule>,
    /// Versions handed out so far (the next is one more).
    last_version: u64,
}

impl ScheduleTable {
    pub fn new(limits: ScheduleLimits) -> Self {
        ScheduleTable {
            limits,
            schedules: BTreeMap::new(),
            last_version: 0,
        }
    }

    pub fn limits(&self) -> &ScheduleLimits {
        &self.limits
    }

    /// Checks a definition against `now` and the limits, as a put would.
    ///
    /// # Errors
    /// `AtInPast`, `InvalidWindow`, `EndInPast`, `MessageTooLarge`, `NeverFires`.
    pub fn check_spec(&self, now: Timestamp, spec: &ScheduleSpec) -> Result<(), ScheduleError> {
        if let Timing::At(at) = spec.timing {
            // Ticks come after the position a put starts at (`now`), so `at` must be later.
            if at <= now {
                return Err(ScheduleError::AtInPast { at, now });
            }
        }
        if let (Some(start_at), Some(end_at)) = (spec.start_at, spec.end_at) {
            if end_at <= start_at {
                return Err(ScheduleError::InvalidWindow { start_at, end_at });
            }
        }
        if let Some(end_at) = spec.end_at {
            if end_at < now {
                return Err(ScheduleError::EndInPast { end_at, now });
            }
        }
        let bytes = spec.message.size_bytes();
        if bytes > self.limits.message_bytes_max as usize {
            return Err(ScheduleError::MessageTooLarge {
                bytes,
                max: self.limits.message_bytes_max,
            });
        }
        if let Timing::Cron(cron) = &spec.timing {
            let from = spec
                .start_at
                .map_or(now, |s| {
                    Timestamp::from_millis(s.as_millis().saturating_sub(1))
                })
                .max(now);
            let next = spec.timing.next_after(from);
            if next.is_none_or(|t| spec.end_at.is_some_and(|end| end < t)) {
                return Err(ScheduleError::NeverFires {
                    pattern: cron.pattern().to_string(),
                    in_window: next.is_some(),
                });
            }
        }
        Ok(())
    }

    /// Creates or replaces `name`. A replacement that keeps the timing and the window keeps
    /// the position and the figures; a new timing starts at `now`.
    ///
    /// # Errors
    /// What `check_spec` finds, `TooManySchedules`.
    pub fn put(
        &mut self,
        now: Timestamp,
        name: &ScheduleName,
        spec: ScheduleSpec,
        paused: bool,
    ) -> Result<(Put, &Schedule), ScheduleError> {
        self.check_spec(now, &spec)?;
        let existing = self.schedules.get(name);
        if existing.is_none() && self.schedules.len() >= self.limits.schedules_max as usize {
            return Err(ScheduleError::TooManySchedules {
                limit: self.limits.schedules_max,
            });
        }
        if existing.is_some_and(|s| s.spec == spec && s.paused == paused) {
            return Ok((Put::Unchanged, &self.schedules[name]));
        }
        self.last_version += 1;
        let version = self.last_version;
        let put = if existing.is_some() {
            Put::Replaced
        } else {
            Put::Created
        };
        let schedule = match self.schedules.remove(name) {
            Some(old) => {
                // A put that resumes starts from now, as a resume does.
                let resumes = old.paused && !paused;
                let same_timing = old.spec.timing == spec.timing
                    && old.spec.start_at == spec.start_at
                    && !resumes;
                Schedule {
                    position: if same_timing { old.position } else { now },
                    spec,
                    paused,
                    version,
                    updated_at: now,
                    ..old
                }
            }
            None => Schedule {
                name: name.clone(),
                spec,
                paused,
                version,
                created_at: now,
                updated_at: now,
                position: now,
                last_outcome: None,
                n_fired: 0,
                n_missed: 0,
                n_failed: 0,
            },
        };
        let schedule = self.schedules.entry(name.clone()).or_insert(schedule);
        Ok((put, schedule))
    }

    /// Removes `name`; its version is used up.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn delete(&mut self, name: &ScheduleName) -> Result<Schedule, ScheduleError> {
        self.schedules
            .remove(name)
            .ok_or_else(|| ScheduleError::NotFound {
                name: name.to_string(),
            })
    }

    /// Pauses or resumes `name`. A resume moves the position to `now`.
    ///
    /// # Errors
    /// `NotFound`.
    pub fn set_paused(
        &mut self,
        now: Timestamp,
        name: &ScheduleName,
        paused: bool,
    ) -> Result<&Schedule, ScheduleError> {
        let schedule = self.get_mut(name)?;
        if schedule.paused != paused {
            if !paused {
                schedule.position = schedule.position.max(now);
            }
            schedule.paused = paused;
            schedule.updated_at = now;
        }
        Ok(schedule)
    }

    pub fn get(&self, name: &str) -> Option<&Schedule> {
        self.schedules.get(name)
    }

    fn get_mut(&mut self, name: &ScheduleName) -> Result<&mut Schedule, ScheduleError> {
        self.schedules
            .get_mut(name)
            .ok_or_else(|| ScheduleError::NotFound {
                name: name.to_string(),
            })
    }

    /// Schedules after `after` in name order, at most `max` (capped at [`SCHEDULE_LIST_MAX`]).
    pub fn list(&self, after: Option<&str>, max: usize) -> Vec<&Schedule> {
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Unbounded,
        };
        self.schedules
            .range::<str, _>((start, std::ops::Bound::Unbounded))
            .map(|(_, s)| s)
            .take(max.min(SCHEDULE_LIST_MAX))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.schedules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
    }

    /// What is due at `now` for every active schedule (see the module doc).
    pub fn plan(&self, now: Timestamp) -> Vec<Plan> {
        self.schedules
            .values()
            .filter(|s| !s.paused)
            .filter_map(|s| {
                let steps = plan_one(s, now, &self.limits);
                (!steps.is_empty()).then(|| Plan {
                    name: s.name.clone(),
                    version: s.version,
                    steps,
                })
            })
            .collect()
    }

    /// When the next tick of any active schedule is due, for the caller's sleep.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.schedules
            .values()
            .filter(|s| !s.paused)
            .filter_map(|s| s.next_tick(s.cursor()))
            .min()
    }

    /// Records a step's outcome: the position moves to `position` (never back), `n_missed`
    /// ticks are counted as missed, `outcome` (a firing) becomes the last one.
    ///
    /// # Errors
    /// `NotFound`, `Stale` when `version` is not the schedule's.
    pub fn advance(
        &mut self,
        name: &ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<FireOutcome>,
    ) -> Result<&Schedule, ScheduleError> {
        self.check_version(name, version)?;
        let schedule = self.get_mut(name)?;
        schedule.position = schedule.position.max(position);
        schedule.n_missed = schedule.n_missed.saturating_add(n_missed);
        if let Some(outcome) = outcome {
            if outcome.ok {
                schedule.n_fired += 1;
            } else {
                schedule.n_failed += 1;
            }
            schedule.last_outcome = Some(outcome);
        }
        Ok(schedule)
    }

    /// Whether `advance(name, version, ..)` would be taken: the schedule exists and is still
    /// at `version` (so an engine can check before it sends, and advance after).
    pub fn check_version(&self, name: &ScheduleName, version: u64) -> Result<(), ScheduleError> {
        let schedule = self
            .schedules
            .get(name)
            .ok_or_else(|| ScheduleError::NotFound {
                name: name.to_string(),
            })?;
        if schedule.version != version {
            return Err(ScheduleError::Stale {
                name: name.clone(),
                planned: version,
                current: schedule.version,
            });
        }
        Ok(())
    }

    /// Every schedule, for checkpoints.
    pub fn snapshot(&self) -> impl Iterator<Item = &Schedule> + '_ {
        self.schedules.values()
    }

    pub fn last_version(&self) -> u64 {
        self.last_version
    }

    /// Recovery: puts back one schedule as it was logged or checkpointed.
    pub fn restore(&mut self, schedule: Schedule) {
        self.last_version = self.last_version.max(schedule.version);
        self.schedules.insert(schedule.name.clone(), schedule);
    }

    /// Recovery: applies a logged delete.
    pub fn restore_delete(&mut self, name: &str) {
        self.schedules.remove(name);
    }

    /// Recovery: raises the version counter (never lowers it).
    pub fn restore_last_version(&mut self, version: u64) {
        self.last_version = self.last_version.max(version);
    }

    /// Recovery: applies a logged pause or resume.
    pub fn restore_paused(&mut self, name: &str, paused: bool, position: Timestamp, at: Timestamp) {
        if let Some(schedule) = self.schedules.get_mut(name) {
            schedule.paused = paused;
            schedule.position = schedule.position.max(position);
            schedule.updated_at = at;
        }
    }

    /// Recovery: applies a logged advance; one for another version is dropped, as it was
    /// live.
    pub fn restore_advance(
        &mut self,
        name: &ScheduleName,
        version: u64,
        position: Timestamp,
        n_missed: u64,
        outcome: Option<FireOutcome>,
    ) {
        let _ = self.advance(name, version, position, n_missed, outcome);
    }
}

/// The steps due for `schedule` at `now`.
fn plan_one(schedule: &Schedule, now: Timestamp, limits: &ScheduleLimits) -> Vec<Step> {
    let cursor = schedule.cursor();
    let Some(first) = schedule.next_tick(cursor).filter(|t| *t <= now) else {
        return Vec::new();
    };
    let on_time_from =
        Timestamp::from_millis(now.as_millis().saturating_sub(limits.missed_grace_ms));
    let budget = limits.catch_up_max.max(1) as usize;
    let mut steps = Vec::new();
    let mut after = cursor;
    if first < on_time_from {
        // Missed ticks: those at or before `on_time_from - 1ms`.
        let missed_until = Timestamp::from_millis(on_time_from.as_millis() - 1);
        match schedule.spec.missed {
            Missed::All => {}
            Missed::Skip => {
                let n = count_ticks(schedule, cursor, missed_until);
                steps.push(Step {
                    tick: None,
                    position: missed_until,
                    n_missed: n,
                });
                after = missed_until;
            }
            Missed::Once => {
                let latest = schedule
                    .spec
                    .timing
                    .latest_at_or_before(missed_until)
                    .filter(|t| cursor < *t && schedule.in_window(*t));
                let latest = match latest {
                    Some(t) => t,
                    // The window ended among the missed ticks: the last one in it.
                    None => last_tick_until(schedule, cursor, missed_until),
                };
                let n = count_ticks(schedule, cursor, latest);
                steps.push(Step {
                    tick: Some(latest),
                    position: missed_until,
                    n_missed: n.saturating_sub(1),
                });
                after = missed_until;
            }
        }
    }
    while steps.len() < budget {
        let Some(tick) = schedule.next_tick(after).filter(|t| *t <= now) else {
            break;
        };
        steps.push(Step {
            tick: Some(tick),
            position: tick,
            n_missed: 0,
        });
        after = tick;
    }
    steps
}

/// Ticks in `(after, until]`, counted up to [`MISSED_COUNT_MAX`].
fn count_ticks(schedule: &Schedule, after: Timestamp, until: Timestamp) -> u64 {
    let mut n = 0;
    let mut cursor = after;
    while n < MISSED_COUNT_MAX {
        match schedule.next_tick(cursor).filter(|t| *t <= until) {
            Some(t) => {
                n += 1;
                cursor = t;
            }
            None => break,
        }
    }
    n
}

/// The last tick in `(after, until]` by walking forward (bounded like `count_ticks`).
fn last_tick_until(schedule: &Schedule, after: Timestamp, until: Timestamp) -> Timestamp {
    let mut last = after;
    for _ in 0..MISSED_COUNT_MAX {
        match schedule.next_tick(last).filter(|t| *t <= until) {
            Some(t) => last = t,
            None => break,
        }
    }
    last
}
