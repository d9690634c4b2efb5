//! Schedules: definitions kept and listed, plans on the engine's time, advances that are
//! final, stale advances refused, pause and resume, a firing to a queue sent and stepped as
//! one (none of these needs a stream or a topic).

use baton_core::schedule::{
    CronTiming, FireOutcome, Missed, Put, ScheduleError, ScheduleLimits, ScheduleName,
    ScheduleSpec, ScheduledMessage, Target, Timing,
};

use super::{entry, queue, take, Harness};
use crate::{EngineConfig, EngineError, QueueFiring, ScheduleEngineError};

fn name(s: &str) -> ScheduleName {
    ScheduleName::new(s, &ScheduleLimits::default()).unwrap()
}

fn every_second(missed: Missed) -> ScheduleSpec {
    ScheduleSpec {
        timing: Timing::Cron(CronTiming::new("* * * * * *", None).unwrap()),
        target: Target::Queue("jobs".into()),
        message: ScheduledMessage {
            body: "tick".into(),
            ..ScheduledMessage::default()
        },
        missed,
        start_at: None,
        end_at: None,
    }
}

fn ok(tick: baton_core::Timestamp) -> FireOutcome {
    FireOutcome {
        tick,
        fired_at: tick,
        ok: true,
        detail: "sent".into(),
        manual: false,
    }
}

pub async fn a_schedule_is_kept_listed_replaced_and_deleted(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    let (put, created) = engine
        .put_schedule(&name("b"), every_second(Missed::Skip), false)
        .await
        .unwrap();
    assert_eq!(put, Put::Created);
    engine
        .put_schedule(&name("a"), every_second(Missed::Skip), true)
        .await
        .unwrap();
    let (put, again) = engine
        .put_schedule(&name("b"), every_second(Missed::Skip), false)
        .await
        .unwrap();
    assert_eq!((put, again.version), (Put::Unchanged, created.version));
    let (put, replaced) = engine
        .put_schedule(&name("b"), every_second(Missed::All), false)
        .await
        .unwrap();
    assert_eq!(put, Put::Replaced);
    assert!(replaced.version > created.version);
    let names: Vec<_> = engine
        .list_schedules(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name.to_string(), s.paused))
        .collect();
    assert_eq!(names, [("a".to_string(), true), ("b".to_string(), false)]);
    engine.delete_schedule(&name("a")).await.unwrap();
    assert_eq!(engine.get_schedule(&name("a")).await.unwrap(), None);
    assert_eq!(
        engine.delete_schedule(&name("a")).await,
        Err(ScheduleEngineError::Schedule(ScheduleError::NotFound {
            name: "a".into()
        }))
    );
}

pub async fn due_ticks_are_planned_on_the_engines_time_and_an_advance_is_final(
    harness: &impl Harness,
) {
    let engine = harness.engine(EngineConfig::default()).await;
    let (_, schedule) = engine
        .put_schedule(&name("s"), every_second(Missed::All), false)
        .await
        .unwrap();
    harness.advance(&engine, 2_100).await;
    let plans = engine.plan_schedules().await.unwrap();
    assert_eq!(plans.plans.len(), 1);
    let plan = &plans.plans[0];
    assert_eq!(plan.version, schedule.version);
    assert_eq!(plan.steps.len(), 2, "{plan:?}");
    for step in &plan.steps {
        let tick = step.tick.unwrap();
        assert!(schedule.position < tick && tick <= plans.now);
        engine
            .advance_schedule(&plan.name, plan.version, step.position, 0, Some(ok(tick)))
            .await
            .unwrap();
    }
    assert!(engine.plan_schedules().await.unwrap().plans.is_empty());
    let s = engine.get_schedule(&name("s")).await.unwrap().unwrap();
    assert_eq!(s.n_fired, 2);
    assert_eq!(s.last_outcome, Some(ok(plan.steps[1].tick.unwrap())));
    // A plan made before a change cannot move the new definition's position.
    harness.advance(&engine, 1_000).await;
    let stale = engine.plan_schedules().await.unwrap().plans.remove(0);
    engine
        .put_schedule(&name("s"), every_second(Missed::Skip), false)
        .await
        .unwrap();
    let refused = engine
        .advance_schedule(&stale.name, stale.version, stale.steps[0].position, 0, None)
        .await;
    assert!(
        matches!(
            refused,
            Err(ScheduleEngineError::Schedule(ScheduleError::Stale { .. }))
        ),
        "{refused:?}"
    );
}

pub async fn a_paused_schedule_plans_nothing_and_resumes_from_now(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    engine
        .put_schedule(&name("s"), every_second(Missed::All), false)
        .await
        .unwrap();
    let paused = engine.set_schedule_paused(&name("s"), true).await.unwrap();
    assert!(paused.paused);
    harness.advance(&engine, 5_000).await;
    let plans = engine.plan_schedules().await.unwrap();
    assert!(plans.plans.is_empty());
    assert_eq!(plans.next_due, None);
    let resumed = engine.set_schedule_paused(&name("s"), false).await.unwrap();
    assert_eq!(resumed.position, engine.now());
    assert!(engine.plan_schedules().await.unwrap().plans.is_empty());
    assert!(engine.plan_schedules().await.unwrap().next_due > Some(resumed.position));
}

pub async fn a_firing_to_a_queue_sends_once_and_steps_past_its_tick(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    engine
        .create_queue(queue("jobs"), baton_core::QueueConfig::default())
        .await
        .unwrap();
    let (_, schedule) = engine
        .put_schedule(&name("s"), every_second(Missed::All), false)
        .await
        .unwrap();
    harness.advance(&engine, 1_100).await;
    let plan = engine.plan_schedules().await.unwrap().plans.remove(0);
    let step = plan.steps[0];
    let tick = step.tick.unwrap();
    let firing = |version: u64| {
        let mut entry = entry("tick");
        entry.dedup_id = Some(baton_core::schedule::dedup_id(&plan.name, tick));
        QueueFiring {
            name: plan.name.clone(),
            version,
            position: step.position,
            n_missed: step.n_missed,
            tick,
            queue: queue("jobs"),
            entry,
        }
    };
    let (after, sent) = engine.fire_to_queue(firing(plan.version)).await.unwrap();
    assert!(!sent.duplicate);
    assert_eq!((after.position, after.n_fired), (step.position, 1));
    let outcome = after.last_outcome.unwrap();
    assert!(
        outcome.ok && outcome.tick == tick && !outcome.manual,
        "{outcome:?}"
    );
    assert!(engine.plan_schedules().await.unwrap().plans.is_empty());
    // A firing planned for another definition sends nothing.
    let refused = engine.fire_to_queue(firing(schedule.version + 100)).await;
    assert!(
        matches!(
            refused,
            Err(ScheduleEngineError::Schedule(ScheduleError::Stale { .. }))
        ),
        "{refused:?}"
    );
    // A firing to a missing queue sends and records nothing.
    let mut missing = firing(plan.version);
    missing.queue = queue("gone");
    assert!(matches!(
        engine.fire_to_queue(missing).await,
        Err(ScheduleEngineError::Engine(
            EngineError::QueueNotFound { .. }
        ))
    ));
    let bodies: Vec<_> = take(&engine, "jobs", 10, None)
        .await
        .into_iter()
        .map(|(body, _)| body)
        .collect();
    assert_eq!(bodies, ["tick"]);
    let s = engine.get_schedule(&name("s")).await.unwrap().unwrap();
    assert_eq!((s.n_fired, s.n_failed), (1, 0));
}
