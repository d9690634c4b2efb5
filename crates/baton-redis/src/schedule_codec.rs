//! A schedule's record as Redis keeps it: one JSON document (the definition, the pause, the
//! version, the position, the last outcome and the figures), read and written whole by the
//! engine and never parsed by a script (`lua/schedule_write.lua` only compares the hash's
//! `rev`). The document is this crate's own shape, versioned by its `v` field, so a change
//! of `baton_core::schedule` types does not change what is in Redis by accident.

use std::collections::BTreeMap;

use baton_core::schedule::{
    CronTiming, FireOutcome, Missed, Schedule, ScheduleLimits, ScheduleName, ScheduleSpec,
    ScheduledMessage, Target, Timing, SCHEDULE_NAME_CHARS_LIMIT,
};
use baton_core::Timestamp;
use baton_engine::EngineError;
use serde::{Deserialize, Serialize};

use crate::codec::corrupt;

/// The version of the document this engine writes (and the only one it reads).
const DOC_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct ScheduleDoc {
    v: u32,
    name: String,
    /// `cron` with `pattern` and `tz`, or `at` with `at`.
    timing: String,
    #[serde(default)]
    pattern: String,
    #[serde(default)]
    tz: String,
    #[serde(default)]
    at: u64,
    /// `queue`, `topic` or `stream`, and its name.
    target_kind: String,
    target: String,
    body: String,
    attributes: BTreeMap<String, String>,
    group_id: Option<String>,
    routing_key: Option<String>,
    key: Option<String>,
    missed: String,
    start_at: Option<u64>,
    end_at: Option<u64>,
    paused: bool,
    version: u64,
    created_at: u64,
    updated_at: u64,
    position: u64,
    last_outcome: Option<OutcomeDoc>,
    n_fired: u64,
    n_missed: u64,
    n_failed: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct OutcomeDoc {
    tick: u64,
    fired_at: u64,
    ok: bool,
    detail: String,
    manual: bool,
}

/// Limits for names read back from Redis: any name a configuration ever allowed.
pub(crate) fn stored_name_limits() -> ScheduleLimits {
    ScheduleLimits {
        name_chars_max: SCHEDULE_NAME_CHARS_LIMIT,
        ..ScheduleLimits::default()
    }
}

pub(crate) fn schedule_to_json(schedule: &Schedule) -> String {
    let spec = &schedule.spec;
    let (timing, pattern, tz, at) = match &spec.timing {
        Timing::Cron(cron) => (
            "cron",
            cron.pattern().to_string(),
            cron.timezone().to_string(),
            0,
        ),
        Timing::At(at) => ("at", String::new(), String::new(), at.as_millis()),
    };
    let message = &spec.message;
    let doc = ScheduleDoc {
        v: DOC_VERSION,
        name: schedule.name.to_string(),
        timing: timing.to_string(),
        pattern,
        tz,
        at,
        target_kind: spec.target.kind().to_string(),
        target: spec.target.name().to_string(),
        body: message.body.clone(),
        attributes: message.attributes.clone(),
        group_id: message.group_id.clone(),
        routing_key: message.routing_key.clone(),
        key: message.key.clone(),
        missed: spec.missed.as_str().to_string(),
        start_at: spec.start_at.map(Timestamp::as_millis),
        end_at: spec.end_at.map(Timestamp::as_millis),
        paused: schedule.paused,
        version: schedule.version,
        created_at: schedule.created_at.as_millis(),
        updated_at: schedule.updated_at.as_millis(),
        position: schedule.position.as_millis(),
        last_outcome: schedule.last_outcome.as_ref().map(|o| OutcomeDoc {
            tick: o.tick.as_millis(),
            fired_at: o.fired_at.as_millis(),
            ok: o.ok,
            detail: o.detail.clone(),
            manual: o.manual,
        }),
        n_fired: schedule.n_fired,
        n_missed: schedule.n_missed,
        n_failed: schedule.n_failed,
    };
    // A document of strings, numbers and maps of strings always serializes.
    serde_json::to_string(&doc).unwrap_or_default()
}

pub(crate) fn schedule_from_json(text: &str) -> Result<Schedule, EngineError> {
    let bad = |detail: &dyn std::fmt::Display| corrupt("schedule record", detail);
    let doc: ScheduleDoc = serde_json::from_str(text).map_err(|e| bad(&e))?;
    if doc.v != DOC_VERSION {
        return Err(bad(&format!("document version {}", doc.v)));
    }
    let timing = match doc.timing.as_str() {
        "cron" => Timing::Cron(CronTiming::new(&doc.pattern, Some(&doc.tz)).map_err(|e| bad(&e))?),
        "at" => Timing::At(Timestamp::from_millis(doc.at)),
        other => return Err(bad(&format!("timing {other:?}"))),
    };
    let target = match doc.target_kind.as_str() {
        "queue" => Target::Queue(doc.target),
        "topic" => Target::Topic(doc.target),
        "stream" => Target::Stream(doc.target),
        other => return Err(bad(&format!("target kind {other:?}"))),
    };
    let missed =
        Missed::parse(&doc.missed).ok_or_else(|| bad(&format!("missed {:?}", doc.missed)))?;
    let name = ScheduleName::new(&doc.name, &stored_name_limits()).map_err(|e| bad(&e))?;
    Ok(Schedule {
        name,
        spec: ScheduleSpec {
            timing,
            target,
            message: ScheduledMessage {
                body: doc.body,
                attributes: doc.attributes,
                group_id: doc.group_id,
                routing_key: doc.routing_key,
                key: doc.key,
            },
            missed,
            start_at: doc.start_at.map(Timestamp::from_millis),
            end_at: doc.end_at.map(Timestamp::from_millis),
        },
        paused: doc.paused,
        version: doc.version,
        created_at: Timestamp::from_millis(doc.created_at),
        updated_at: Timestamp::from_millis(doc.updated_at),
        position: Timestamp::from_millis(doc.position),
        last_outcome: doc.last_outcome.map(|o| FireOutcome {
            tick: Timestamp::from_millis(o.tick),
            fired_at: Timestamp::from_millis(o.fired_at),
            ok: o.ok,
            detail: o.detail,
            manual: o.manual,
        }),
        n_fired: doc.n_fired,
        n_missed: doc.n_missed,
        n_failed: doc.n_failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ScheduleName {
        ScheduleName::new(s, &ScheduleLimits::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let cron =
            CronTiming::new("*/5 * * * * *", Some("Asia/Seoul")).unwrap_or_else(|e| panic!("{e}"));
        let schedule = Schedule {
            name: name("nightly:report"),
            spec: ScheduleSpec {
                timing: Timing::Cron(cron),
                target: Target::Topic("reports".into()),
                message: ScheduledMessage {
                    body: "go".into(),
                    attributes: BTreeMap::from([("a".to_string(), "b".to_string())]),
                    group_id: None,
                    routing_key: Some("r.k".into()),
                    key: None,
                },
                missed: Missed::All,
                start_at: Some(Timestamp::from_millis(5)),
                end_at: None,
            },
            paused: true,
            version: 7,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(2),
            position: Timestamp::from_millis(3),
            last_outcome: Some(FireOutcome {
                tick: Timestamp::from_millis(3),
                fired_at: Timestamp::from_millis(4),
                ok: false,
                detail: "queue jobs: gone".into(),
                manual: false,
            }),
            n_fired: 1,
            n_missed: 2,
            n_failed: 3,
        };
        let back = schedule_from_json(&schedule_to_json(&schedule));
        assert_eq!(back, Ok(schedule.clone()));
        let at = Schedule {
            spec: ScheduleSpec {
                timing: Timing::At(Timestamp::from_millis(99)),
                target: Target::Queue("jobs".into()),
                ..schedule.spec.clone()
            },
            ..schedule
        };
        assert_eq!(schedule_from_json(&schedule_to_json(&at)), Ok(at));
    }

    #[test]
    fn a_record_of_another_version_is_refused() {
        let refused = schedule_from_json(r#"{"v":2}"#);
        assert!(
            matches!(refused, Err(EngineError::StorageUnavailable { .. })),
            "{refused:?}"
        );
    }
}
