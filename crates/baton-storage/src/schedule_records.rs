//! On-disk record types of schedules, format version 1 (see `records` for the rules: dedicated
//! plain types, postcard, never change a variant, append new ones at the end).
//!
//! Frame kinds: [`KIND_SCHEDULE_OP`] for [`ScheduleOp`] in the main log,
//! [`KIND_SCHEDULE_CHECKPOINT`] for [`ScheduleCheckpointPart`] in checkpoints.
//!
//! Records hold outcomes (the whole schedule after a put, the position a firing reached),
//! never the request: replay depends neither on timing nor on the limits configured at the time.

use serde::{Deserialize, Serialize};

/// A log record: one change to the schedule table.
pub const KIND_SCHEDULE_OP: u8 = 20;
/// The checkpoint part holding the schedule table.
pub const KIND_SCHEDULE_CHECKPOINT: u8 = 21;

/// One change to the schedule table, logged after it was applied. Times are milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScheduleOp {
    /// A schedule created or replaced: its whole state afterwards (boxed: the other variants
    /// are small; postcard encodes a box as its content).
    Put(Box<ScheduleV1>),
    Deleted {
        name: String,
        now: u64,
    },
    /// Paused or resumed; `position` is the position afterwards.
    Paused {
        name: String,
        paused: bool,
        position: u64,
        now: u64,
    },
    /// A firing or a count of missed ticks moved the position of `version`'s definition.
    Advanced {
        name: String,
        version: u64,
        position: u64,
        n_missed: u64,
        outcome: Option<OutcomeV1>,
    },
    /// A firing to a queue and the step it made, as one record: `entries` were sent to
    /// `queue` at `now` and the schedule advanced as in `Advanced`. Replay applies each part
    /// where the checkpoint does not cover it (the queue's and the schedule table's own
    /// positions), so a crash can never keep one without the other.
    FiredToQueue {
        name: String,
        version: u64,
        position: u64,
        n_missed: u64,
        outcome: OutcomeV1,
        queue: String,
        now: u64,
        entries: Vec<crate::records::EntryV1>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TimingV1 {
    Cron { pattern: String, timezone: String },
    At(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetV1 {
    Queue(String),
    Topic(String),
    Stream(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledMessageV1 {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub group_id: Option<String>,
    pub routing_key: Option<String>,
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeV1 {
    pub tick: u64,
    pub fired_at: u64,
    pub ok: bool,
    pub detail: String,
    pub manual: bool,
}

/// A schedule with its progress. `missed`: 0 skip, 1 once, 2 all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleV1 {
    pub name: String,
    pub version: u64,
    pub timing: TimingV1,
    pub target: TargetV1,
    pub message: ScheduledMessageV1,
    pub missed: u8,
    pub start_at: Option<u64>,
    pub end_at: Option<u64>,
    pub paused: bool,
    pub created_at: u64,
    pub updated_at: u64,
    pub position: u64,
    pub last_outcome: Option<OutcomeV1>,
    pub n_fired: u64,
    pub n_missed: u64,
    pub n_failed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScheduleCheckpointPart {
    /// The whole schedule table as of `covered_lsn`: schedule records at or below it are in
    /// here. No version above `last_version` was handed out.
    Schedules {
        covered_lsn: u64,
        last_version: u64,
        schedules: Vec<ScheduleV1>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::records::{decode, encode};

    fn schedule() -> ScheduleV1 {
        ScheduleV1 {
            name: "cleanup".into(),
            version: 3,
            timing: TimingV1::Cron {
                pattern: "0 3 * * *".into(),
                timezone: "Asia/Seoul".into(),
            },
            target: TargetV1::Stream("access".into()),
            message: ScheduledMessageV1 {
                body: "{}".into(),
                attributes: vec![("kind".into(), "cleanup".into())],
                group_id: None,
                routing_key: None,
                key: Some("k".into()),
            },
            missed: 1,
            start_at: None,
            end_at: Some(9),
            paused: false,
            created_at: 1,
            updated_at: 2,
            position: 5,
            last_outcome: Some(OutcomeV1 {
                tick: 4,
                fired_at: 5,
                ok: true,
                detail: "sent".into(),
                manual: false,
            }),
            n_fired: 1,
            n_missed: 0,
            n_failed: 0,
        }
    }

    #[test]
    fn schedule_records_round_trip() {
        let op = ScheduleOp::Put(Box::new(schedule()));
        let bytes = encode(&op);
        assert_eq!(decode::<ScheduleOp>(KIND_SCHEDULE_OP, &bytes).unwrap(), op);
        assert!(decode::<ScheduleOp>(KIND_SCHEDULE_OP, &bytes[..bytes.len() - 1]).is_err());
        let part = ScheduleCheckpointPart::Schedules {
            covered_lsn: 9,
            last_version: 3,
            schedules: vec![schedule()],
        };
        assert_eq!(
            decode::<ScheduleCheckpointPart>(KIND_SCHEDULE_CHECKPOINT, &encode(&part)).unwrap(),
            part
        );
    }

    #[test]
    fn the_v1_schedule_encoding_is_stable() {
        let op = ScheduleOp::Advanced {
            name: "j".into(),
            version: 2,
            position: 3,
            n_missed: 1,
            outcome: None,
        };
        assert_eq!(encode(&op), [3, 1, b'j', 2, 3, 1, 0]);
    }
}
