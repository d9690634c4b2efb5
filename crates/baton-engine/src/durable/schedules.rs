//! Durability of schedules: the schedule table's records and checkpoint part, and their replay.
//!
//! # Which records apply
//! Schedule records are submitted under the schedule table's mutex, and the checkpoint's
//! `Schedules` part reads the table and its `covered_lsn` under that same mutex, so the part
//! holds exactly the records up to `covered_lsn`. A schedule record applies when its LSN is
//! above it (or above the checkpoint's `start_lsn` when there is no `Schedules` part). A put
//! record is the whole schedule afterwards; an advance takes the max of positions, so applying
//! one twice could not move a position back.

use baton_core::schedule::{
    CronTiming, FireOutcome, Missed, Schedule, ScheduleLimits, ScheduleName, ScheduleSpec,
    ScheduleTable, ScheduledMessage, Target, Timing, SCHEDULE_NAME_CHARS_LIMIT,
};
use baton_core::Timestamp;
use baton_storage::records;
use baton_storage::schedule_records::{
    OutcomeV1, ScheduleCheckpointPart, ScheduleOp, ScheduleV1, ScheduledMessageV1, TargetV1,
    TimingV1, KIND_SCHEDULE_CHECKPOINT, KIND_SCHEDULE_OP,
};

use super::codec::DecodeResult;
use super::replay::ReplayState;

/// The schedule table as replay rebuilds it.
pub(crate) struct ScheduleReplay {
    pub table: ScheduleTable,
    /// Schedule records at or below this LSN are in the checkpoint.
    covered_lsn: Option<u64>,
}

impl Default for ScheduleReplay {
    fn default() -> Self {
        ScheduleReplay {
            table: ScheduleTable::new(replay_limits()),
            covered_lsn: None,
        }
    }
}

/// Replay accepts every schedule that was ever put, whatever the limits are now.
fn replay_limits() -> ScheduleLimits {
    ScheduleLimits {
        name_chars_max: SCHEDULE_NAME_CHARS_LIMIT,
        schedules_max: u32::MAX,
        message_bytes_max: u32::MAX,
        ..ScheduleLimits::default()
    }
}

fn schedule_name(name: &str) -> DecodeResult<ScheduleName> {
    ScheduleName::new(name, &replay_limits()).map_err(|e| e.to_string())
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn missed_to_disk(missed: Missed) -> u8 {
    match missed {
        Missed::Skip => 0,
        Missed::Once => 1,
        Missed::All => 2,
    }
}

fn missed_from_disk(missed: u8) -> DecodeResult<Missed> {
    match missed {
        0 => Ok(Missed::Skip),
        1 => Ok(Missed::Once),
        2 => Ok(Missed::All),
        other => Err(format!("unknown missed policy {other}")),
    }
}

pub(crate) fn outcome_to_disk(outcome: &FireOutcome) -> OutcomeV1 {
    OutcomeV1 {
        tick: outcome.tick.as_millis(),
        fired_at: outcome.fired_at.as_millis(),
        ok: outcome.ok,
        detail: outcome.detail.clone(),
        manual: outcome.manual,
    }
}

fn outcome_from_disk(outcome: OutcomeV1) -> FireOutcome {
    FireOutcome {
        tick: at(outcome.tick),
        fired_at: at(outcome.fired_at),
        ok: outcome.ok,
        detail: outcome.detail,
        manual: outcome.manual,
    }
}

pub(crate) fn schedule_to_disk(s: &Schedule) -> ScheduleV1 {
    let timing = match &s.spec.timing {
        Timing::Cron(cron) => TimingV1::Cron {
            pattern: cron.pattern().to_string(),
            timezone: cron.timezone().to_string(),
        },
        Timing::At(t) => TimingV1::At(t.as_millis()),
    };
    let target = match &s.spec.target {
        Target::Queue(n) => TargetV1::Queue(n.clone()),
        Target::Topic(n) => TargetV1::Topic(n.clone()),
        Target::Stream(n) => TargetV1::Stream(n.clone()),
    };
    let m = &s.spec.message;
    ScheduleV1 {
        name: s.name.to_string(),
        version: s.version,
        timing,
        target,
        message: ScheduledMessageV1 {
            body: m.body.clone(),
            attributes: m.attributes.clone().into_iter().collect(),
            group_id: m.group_id.clone(),
            routing_key: m.routing_key.clone(),
            key: m.key.clone(),
        },
        missed: missed_to_disk(s.spec.missed),
        start_at: s.spec.start_at.map(Timestamp::as_millis),
        end_at: s.spec.end_at.map(Timestamp::as_millis),
        paused: s.paused,
        created_at: s.created_at.as_millis(),
        updated_at: s.updated_at.as_millis(),
        position: s.position.as_millis(),
        last_outcome: s.last_outcome.as_ref().map(outcome_to_disk),
        n_fired: s.n_fired,
        n_missed: s.n_missed,
        n_failed: s.n_failed,
    }
}

fn schedule_from_disk(s: ScheduleV1) -> DecodeResult<Schedule> {
    let timing = match s.timing {
        TimingV1::Cron { pattern, timezone } => {
            Timing::Cron(CronTiming::new(&pattern, Some(&timezone)).map_err(|e| e.to_string())?)
        }
        TimingV1::At(t) => Timing::At(at(t)),
    };
    let target = match s.target {
        TargetV1::Queue(n) => Target::Queue(n),
        TargetV1::Topic(n) => Target::Topic(n),
        TargetV1::Stream(n) => Target::Stream(n),
    };
    Ok(Schedule {
        name: schedule_name(&s.name)?,
        spec: ScheduleSpec {
            timing,
            target,
            message: ScheduledMessage {
                body: s.message.body,
                attributes: s.message.attributes.into_iter().collect(),
                group_id: s.message.group_id,
                routing_key: s.message.routing_key,
                key: s.message.key,
            },
            missed: missed_from_disk(s.missed)?,
            start_at: s.start_at.map(at),
            end_at: s.end_at.map(at),
        },
        paused: s.paused,
        version: s.version,
        created_at: at(s.created_at),
        updated_at: at(s.updated_at),
        position: at(s.position),
        last_outcome: s.last_outcome.map(outcome_from_disk),
        n_fired: s.n_fired,
        n_missed: s.n_missed,
        n_failed: s.n_failed,
    })
}

/// The checkpoint part holding `table`, as of `covered_lsn`.
pub(crate) fn checkpoint_part(table: &ScheduleTable, covered_lsn: u64) -> (u8, Vec<u8>) {
    let part = ScheduleCheckpointPart::Schedules {
        covered_lsn,
        last_version: table.last_version(),
        schedules: table.snapshot().map(schedule_to_disk).collect(),
    };
    (KIND_SCHEDULE_CHECKPOINT, records::encode(&part))
}

pub(crate) fn apply_checkpoint(state: &mut ReplayState, payload: &[u8]) -> DecodeResult<()> {
    let part: ScheduleCheckpointPart =
        records::decode(KIND_SCHEDULE_CHECKPOINT, payload).map_err(|e| e.to_string())?;
    let ScheduleCheckpointPart::Schedules {
        covered_lsn,
        last_version,
        schedules,
    } = part;
    let replay = &mut state.schedules;
    replay.covered_lsn = Some(covered_lsn);
    replay.table = ScheduleTable::new(replay_limits());
    replay.table.restore_last_version(last_version);
    for schedule in schedules {
        replay.table.restore(schedule_from_disk(schedule)?);
    }
    Ok(())
}

pub(crate) fn apply_record(state: &mut ReplayState, lsn: u64, payload: &[u8]) -> DecodeResult<()> {
    let op: ScheduleOp = records::decode(KIND_SCHEDULE_OP, payload).map_err(|e| e.to_string())?;
    let table_covers = lsn <= state.schedules.covered_lsn.unwrap_or(state.start_lsn());
    if let ScheduleOp::FiredToQueue {
        name,
        version,
        position,
        n_missed,
        outcome,
        queue,
        now,
        entries,
    } = op
    {
        // The send applies by the queue's own coverage (`apply_send`), the step by the table's.
        let entries = entries
            .into_iter()
            .map(super::codec::entry_from_disk)
            .collect::<DecodeResult<Vec<_>>>()?;
        state.apply_send(
            "schedule firing",
            lsn,
            &super::codec::name(&queue)?,
            at(now),
            entries,
        );
        if !table_covers {
            state.schedules.table.restore_advance(
                &schedule_name(&name)?,
                version,
                at(position),
                n_missed,
                Some(outcome_from_disk(outcome)),
            );
        }
        return Ok(());
    }
    if table_covers {
        return Ok(());
    }
    let table = &mut state.schedules.table;
    match op {
        ScheduleOp::Put(schedule) => table.restore(schedule_from_disk(*schedule)?),
        ScheduleOp::Deleted { name, .. } => table.restore_delete(&name),
        ScheduleOp::Paused {
            name,
            paused,
            position,
            now,
        } => table.restore_paused(&name, paused, at(position), at(now)),
        ScheduleOp::Advanced {
            name,
            version,
            position,
            n_missed,
            outcome,
        } => table.restore_advance(
            &schedule_name(&name)?,
            version,
            at(position),
            n_missed,
            outcome.map(outcome_from_disk),
        ),
        ScheduleOp::FiredToQueue { .. } => unreachable!("applied above"),
    }
    Ok(())
}
