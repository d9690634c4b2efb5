//! Schedules in the local engine: durability. Restarts, with and without a checkpoint, keep
//! definitions, positions, figures and outcomes; deletions stay deleted; versions never go
//! back, so an advance planned before a restart cannot move a later definition; a crash
//! between a tick's send and its advance delivers the tick once.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use baton_core::schedule::{
    CronTiming, FireOutcome, Missed, ScheduleLimits, ScheduleName, ScheduleSpec, ScheduledMessage,
    Target, Timing,
};
use baton_core::ManualClock;
use baton_storage::{CrashMode, SimFs, SyncPolicy};

use super::*;
use crate::schedules::ScheduleEngine;

fn name(s: &str) -> ScheduleName {
    ScheduleName::new(s, &ScheduleLimits::default()).unwrap()
}

fn spec(pattern: &str) -> ScheduleSpec {
    ScheduleSpec {
        timing: Timing::Cron(CronTiming::new(pattern, Some("Asia/Seoul")).unwrap()),
        target: Target::Stream("access".into()),
        message: ScheduledMessage {
            body: "cleanup".into(),
            attributes: [("older_than_days".to_string(), "60".to_string())].into(),
            key: Some("k".into()),
            ..ScheduledMessage::default()
        },
        missed: Missed::Once,
        start_at: None,
        end_at: None,
    }
}

fn open(fs: &SimFs, clock: Arc<ManualClock>) -> LocalEngine {
    let storage = StorageConfig {
        data_dir: "/data".into(),
        sync: SyncPolicy::Always,
        segment_bytes_max: 2048,
        checkpoint_bytes_min: 1 << 40,
        repair: false,
        disk_free_min_bytes: 0,
        disk_reserve_bytes: 0,
        keys: None,
    };
    let engine = LocalEngine::durable(
        clock,
        EngineConfig::default(),
        Arc::new(fs.clone()),
        storage,
        false,
    )
    .unwrap();
    engine.reload().unwrap();
    engine
}

/// Fires every due step of `engine` (without sending anything); the ticks fired.
async fn fire_due(engine: &LocalEngine) -> Vec<Timestamp> {
    let mut fired = Vec::new();
    for plan in engine.plan_schedules().await.unwrap().plans {
        for step in plan.steps {
            let outcome = step.tick.map(|tick| FireOutcome {
                tick,
                fired_at: engine.now(),
                ok: true,
                detail: format!("fired {}", tick.as_millis()),
                manual: false,
            });
            fired.extend(step.tick);
            engine
                .advance_schedule(
                    &plan.name,
                    plan.version,
                    step.position,
                    step.n_missed,
                    outcome,
                )
                .await
                .unwrap();
        }
    }
    fired
}

async fn restart_keeps_everything(checkpoint: bool) {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone());
    engine
        .put_schedule(&name("every-second"), spec("* * * * * *"), false)
        .await
        .unwrap();
    engine
        .put_schedule(&name("gone"), spec("0 3 * * *"), false)
        .await
        .unwrap();
    engine
        .put_schedule(&name("paused"), spec("0 3 * * *"), true)
        .await
        .unwrap();
    clock.advance_ms(3_200);
    assert_eq!(fire_due(&engine).await.len(), 3);
    if checkpoint {
        engine.checkpoint().unwrap();
    }
    engine.delete_schedule(&name("gone")).await.unwrap();
    clock.advance_ms(1_000);
    assert_eq!(fire_due(&engine).await.len(), 1);
    let before = engine.list_schedules(None, 10).await.unwrap();
    let planned = engine.plan_schedules().await.unwrap();
    drop(engine);
    fs.crash(CrashMode::LoseUnsynced);

    let engine = open(&fs, clock.clone());
    assert_eq!(engine.list_schedules(None, 10).await.unwrap(), before);
    // Nothing fired before the crash is due again.
    assert_eq!(engine.plan_schedules().await.unwrap(), planned);
    clock.advance_ms(1_000);
    let fired = fire_due(&engine).await;
    assert_eq!(fired.len(), 1);
    assert!(fired[0] > before[0].position);
    // A new definition gets a version no earlier one had.
    let (_, again) = engine
        .put_schedule(&name("gone"), spec("0 4 * * *"), false)
        .await
        .unwrap();
    assert!(
        before.iter().all(|s| s.version < again.version),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_restart_replays_schedule_records() {
    restart_keeps_everything(false).await;
}

#[tokio::test]
async fn a_restart_from_a_checkpoint_keeps_schedules() {
    restart_keeps_everything(true).await;
}

/// The crash the firing task's order is made for: a tick's send is durable, its advance is
/// not. After the restart the tick is planned again, its second send (same dedup id) is a
/// duplicate, and the queue holds it once.
#[tokio::test]
async fn a_crash_between_a_ticks_send_and_its_advance_delivers_it_once() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone());
    let queue = QueueName::new("jobs").unwrap();
    engine
        .create_queue(queue.clone(), QueueConfig::default())
        .await
        .unwrap();
    let mut every_second = spec("* * * * * *");
    every_second.target = Target::Queue("jobs".into());
    every_second.missed = Missed::All;
    engine
        .put_schedule(&name("s"), every_second, false)
        .await
        .unwrap();
    clock.advance_ms(1_100);
    let send = |tick: Timestamp| {
        let mut entry = SendEntry::new(crate::new_message_id(), "tick");
        entry.dedup_id = Some(baton_core::schedule::dedup_id(&name("s"), tick));
        entry
    };
    let plan = engine.plan_schedules().await.unwrap().plans.remove(0);
    let tick = plan.steps[0].tick.unwrap();
    let first = engine.send(&queue, vec![send(tick)]).await.unwrap();
    assert!(!first[0].duplicate);
    drop(engine);
    fs.crash(CrashMode::LoseUnsynced);

    let engine = open(&fs, clock.clone());
    let again = engine.plan_schedules().await.unwrap().plans.remove(0);
    assert_eq!(
        again.steps[0].tick,
        Some(tick),
        "the unrecorded tick is due again"
    );
    let second = engine.send(&queue, vec![send(tick)]).await.unwrap();
    assert!(second[0].duplicate);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(engine.get_queue(&queue).await.unwrap().stats.visible, 1);
}

/// A firing to a queue is one record: after a power loss and a downtime far longer than the
/// queue's dedup window, the tick is neither due again nor sent twice, and the queue holds the
/// message once — from the log, and from a checkpoint taken after the firing.
#[tokio::test]
async fn a_firing_to_a_queue_survives_a_crash_and_a_long_downtime_once() {
    for checkpoint in [false, true] {
        let fs = SimFs::new();
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let engine = open(&fs, clock.clone());
        let queue = QueueName::new("jobs").unwrap();
        engine
            .create_queue(queue.clone(), QueueConfig::default())
            .await
            .unwrap();
        let mut every_hour = spec("0 0 * * * *");
        every_hour.target = Target::Queue("jobs".into());
        every_hour.missed = Missed::All;
        engine
            .put_schedule(&name("s"), every_hour, false)
            .await
            .unwrap();
        clock.advance_ms(3_600_000);
        let plan = engine.plan_schedules().await.unwrap().plans.remove(0);
        let step = plan.steps[0];
        let tick = step.tick.unwrap();
        let mut entry = SendEntry::new(crate::new_message_id(), "tick");
        entry.dedup_id = Some(baton_core::schedule::dedup_id(&name("s"), tick));
        let firing = crate::QueueFiring {
            name: plan.name.clone(),
            version: plan.version,
            position: step.position,
            n_missed: step.n_missed,
            tick,
            queue: queue.clone(),
            entry,
        };
        let (schedule, sent) = engine.fire_to_queue(firing).await.unwrap();
        assert!(!sent.duplicate);
        assert_eq!(schedule.position, step.position);
        let outcome = schedule.last_outcome.clone().unwrap();
        assert!(outcome.ok && outcome.detail.contains(&sent.id.to_string()));
        if checkpoint {
            engine.checkpoint().unwrap();
        }
        drop(engine);
        fs.crash(CrashMode::LoseUnsynced);
        // Down for 30 minutes: the 5-minute dedup window is long gone.
        clock.advance_ms(30 * 60_000);

        let engine = open(&fs, clock.clone());
        let plans = engine.plan_schedules().await.unwrap().plans;
        assert!(plans.is_empty(), "checkpoint {checkpoint}: {plans:?}");
        let recovered = engine.get_schedule(&name("s")).await.unwrap().unwrap();
        assert_eq!(recovered.position, step.position);
        assert_eq!(recovered.n_fired, 1);
        assert_eq!(recovered.last_outcome, Some(outcome));
        let view = engine.get_queue(&queue).await.unwrap();
        assert_eq!((view.stats.visible, view.stats.sent_total), (1, 1));
    }
}

/// A send the queue refuses sends and records nothing: the step is still due.
#[tokio::test]
async fn a_refused_firing_to_a_queue_changes_nothing() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone());
    let mut every_second = spec("* * * * * *");
    every_second.target = Target::Queue("missing".into());
    engine
        .put_schedule(&name("s"), every_second, false)
        .await
        .unwrap();
    clock.advance_ms(1_100);
    let plan = engine.plan_schedules().await.unwrap().plans.remove(0);
    let step = plan.steps[0];
    let firing = crate::QueueFiring {
        name: plan.name.clone(),
        version: plan.version,
        position: step.position,
        n_missed: step.n_missed,
        tick: step.tick.unwrap(),
        queue: QueueName::new("missing").unwrap(),
        entry: SendEntry::new(crate::new_message_id(), "tick"),
    };
    let refused = engine.fire_to_queue(firing.clone()).await;
    assert!(
        matches!(
            refused,
            Err(crate::ScheduleEngineError::Engine(
                EngineError::QueueNotFound { .. }
            ))
        ),
        "{refused:?}"
    );
    let stale = crate::QueueFiring {
        version: plan.version + 1,
        ..firing
    };
    assert!(matches!(
        engine.fire_to_queue(stale).await,
        Err(crate::ScheduleEngineError::Schedule(
            baton_core::schedule::ScheduleError::Stale { .. }
        ))
    ));
    let again = engine.plan_schedules().await.unwrap().plans.remove(0);
    assert_eq!(again.steps[0].tick, step.tick);
}
