//! What only the Redis engine's schedules have: two nodes racing one due tick, a firing cut
//! between its send and its step (the queue's marker answers the re-fire as a duplicate, even
//! after the dedup window), the name index behind listing and `schedules_max`, and versions
//! that rise over a name's whole life.

use std::sync::Arc;

use baton_core::schedule::{
    dedup_id, CronTiming, Missed, Plan, Put, ScheduleError, ScheduleLimits, ScheduleName,
    ScheduleSpec, ScheduledMessage, Target, Timing,
};
use baton_core::{Clock, ManualClock, QueueConfig, QueueName, SendEntry, Timestamp};
use baton_engine::{
    EngineConfig, QueueEngine, QueueFiring, ReceiveOptions, ScheduleEngine, ScheduleEngineError,
};
use baton_redis::{RedisEngine, RedisSettings};

use crate::cluster;

fn name(s: &str) -> ScheduleName {
    ScheduleName::new(s, &ScheduleLimits::default()).unwrap()
}

fn jobs() -> QueueName {
    QueueName::new("jobs").unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
}

async fn node(namespace: &str, clock: &Arc<ManualClock>) -> RedisEngine {
    let settings = RedisSettings::new(cluster::shared().urls());
    let clock = clock.clone() as Arc<dyn baton_core::Clock>;
    RedisEngine::connect(settings, namespace, EngineConfig::default(), Some(clock))
        .await
        .unwrap()
}

fn every_second() -> ScheduleSpec {
    ScheduleSpec {
        timing: Timing::Cron(CronTiming::new("* * * * * *", None).unwrap()),
        target: Target::Queue("jobs".into()),
        message: ScheduledMessage {
            body: "tick".into(),
            ..ScheduledMessage::default()
        },
        missed: Missed::All,
        start_at: None,
        end_at: None,
    }
}

/// The firing of a plan's first step as the server's firing task builds it: a fresh message
/// id, the tick's dedup id.
fn first_firing(plan: &Plan) -> QueueFiring {
    let step = plan.steps[0];
    let tick = step.tick.unwrap();
    let mut entry = SendEntry::new(baton_engine::new_message_id(), "tick");
    entry.dedup_id = Some(dedup_id(&plan.name, tick));
    QueueFiring {
        name: plan.name.clone(),
        version: plan.version,
        position: step.position,
        n_missed: step.n_missed,
        tick,
        queue: jobs(),
        entry,
    }
}

async fn bodies(engine: &RedisEngine) -> Vec<String> {
    let options = ReceiveOptions {
        max: 10,
        wait_ms: Some(0),
        visibility_timeout_ms: None,
    };
    engine
        .receive(&jobs(), options)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.body.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_firing_one_due_tick_send_one_message_and_step_once() {
    let namespace = cluster::fresh_namespace();
    let clock = clock();
    let first = Arc::new(node(&namespace, &clock).await);
    let second = Arc::new(node(&namespace, &clock).await);
    first
        .create_queue(jobs(), QueueConfig::default())
        .await
        .unwrap();
    first
        .put_schedule(&name("every-second"), every_second(), false)
        .await
        .unwrap();
    for round in 0..5 {
        clock.advance_ms(1_000);
        let (a, b) = tokio::join!(first.plan_schedules(), second.plan_schedules());
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        assert_eq!(
            a.plans, b.plans,
            "round {round}: both nodes plan the same tick"
        );
        assert_eq!(a.plans.len(), 1);
        let (mut firing_a, mut firing_b) = (
            first_firing(&a.plans.remove(0)),
            first_firing(&b.plans.remove(0)),
        );
        if round % 2 == 1 {
            // Without the dedup id every other round: the queue's marker alone decides.
            firing_a.entry.dedup_id = None;
            firing_b.entry.dedup_id = None;
        }
        let (fired_a, fired_b) = tokio::join!(
            first.fire_to_queue(firing_a),
            second.fire_to_queue(firing_b),
        );
        let ((_, sent_a), (_, sent_b)) = (fired_a.unwrap(), fired_b.unwrap());
        assert_eq!(
            [sent_a.duplicate, sent_b.duplicate]
                .iter()
                .filter(|d| !**d)
                .count(),
            1,
            "round {round}: exactly one of the two sends is new"
        );
        assert_eq!(sent_a.id, sent_b.id, "the duplicate names the message sent");
    }
    let schedule = second
        .get_schedule(&name("every-second"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((schedule.n_fired, schedule.n_failed), (5, 0));
    assert!(first.plan_schedules().await.unwrap().plans.is_empty());
    assert_eq!(bodies(&second).await, ["tick"; 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_cut_after_its_send_is_a_duplicate_when_fired_again_after_the_dedup_window() {
    let namespace = cluster::fresh_namespace();
    let clock = clock();
    let dying = node(&namespace, &clock).await;
    let other = node(&namespace, &clock).await;
    dying
        .create_queue(jobs(), QueueConfig::default())
        .await
        .unwrap();
    dying
        .put_schedule(&name("s"), every_second(), false)
        .await
        .unwrap();
    clock.advance_ms(1_100);
    let plan = dying.plan_schedules().await.unwrap().plans.remove(0);
    let cut = first_firing(&plan);
    let tick = cut.tick;
    dying.inject_firing_cut(true);
    let refused = dying.fire_to_queue(cut).await;
    assert!(refused.is_err(), "{refused:?}");
    let before = other.get_schedule(&name("s")).await.unwrap().unwrap();
    assert_eq!(before.n_fired, 0, "the step was not recorded");
    // Past the 5-minute dedup window: only the queue's marker still knows the tick was sent.
    clock.advance_ms(6 * 60 * 1_000);
    let plan = other.plan_schedules().await.unwrap().plans.remove(0);
    assert_eq!(plan.steps[0].tick, Some(tick), "the cut tick is still due");
    let mut again = first_firing(&plan);
    // Not even the dedup id: the marker alone answers.
    again.entry.dedup_id = None;
    let (after, sent) = other.fire_to_queue(again).await.unwrap();
    assert!(sent.duplicate, "{sent:?}");
    assert_eq!(after.n_fired, 1);
    assert!(after.position >= Timestamp::from_millis(tick.as_millis()));
    let detail = after.last_outcome.unwrap().detail;
    assert!(detail.contains("already sent"), "{detail}");
    assert_eq!(bodies(&other).await, ["tick"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_in_name_order_and_skips_names_left_without_a_record() {
    let namespace = cluster::fresh_namespace();
    let clock = clock();
    let engine = node(&namespace, &clock).await;
    let mut names: Vec<String> = (0..130).map(|i| format!("s{i:03}")).collect();
    for n in &names {
        engine
            .put_schedule(&name(n), every_second(), true)
            .await
            .unwrap();
    }
    // A name in the index whose record is gone (a delete cut before its index removal).
    let port = cluster::shared().ports[0];
    let index = format!("{{{namespace}}}:schedules");
    cluster::shared().cli(port, &["-c", "ZADD", &index, "0", "s050x"]);
    engine.delete_schedule(&name("s070")).await.unwrap();
    names.retain(|n| n != "s070");
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = engine.list_schedules(after.as_deref(), 40).await.unwrap();
        assert!(page.len() <= 40);
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.name.to_string());
        listed.extend(page.into_iter().map(|s| s.name.to_string()));
    }
    assert_eq!(listed, names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_max_counts_the_index_and_versions_outlive_a_delete() {
    let namespace = cluster::fresh_namespace();
    let clock = clock();
    let limits = ScheduleLimits {
        schedules_max: 2,
        name_chars_max: 4,
        message_bytes_max: 8,
        ..ScheduleLimits::default()
    };
    let engine = node(&namespace, &clock).await.with_schedule_limits(limits);
    let (_, a) = engine
        .put_schedule(&name("a"), every_second(), false)
        .await
        .unwrap();
    engine
        .put_schedule(&name("b"), every_second(), false)
        .await
        .unwrap();
    assert_eq!(
        engine.put_schedule(&name("c"), every_second(), false).await,
        Err(ScheduleEngineError::Schedule(
            ScheduleError::TooManySchedules { limit: 2 }
        ))
    );
    // A replacement is no new schedule.
    let mut other = every_second();
    other.missed = Missed::Skip;
    let (put, _) = engine.put_schedule(&name("b"), other, false).await.unwrap();
    assert_eq!(put, Put::Replaced);
    let long = engine
        .put_schedule(&name("abcde"), every_second(), false)
        .await;
    assert!(
        matches!(
            long,
            Err(ScheduleEngineError::Schedule(
                ScheduleError::InvalidName { .. }
            ))
        ),
        "{long:?}"
    );
    let mut large = every_second();
    large.message.body = "123456789".into();
    assert_eq!(
        engine.put_schedule(&name("a"), large, false).await,
        Err(ScheduleEngineError::Schedule(
            ScheduleError::MessageTooLarge { bytes: 9, max: 8 }
        ))
    );
    engine.delete_schedule(&name("a")).await.unwrap();
    let (put, again) = engine
        .put_schedule(&name("a"), every_second(), false)
        .await
        .unwrap();
    assert_eq!(put, Put::Created);
    assert!(
        again.version > a.version,
        "{} > {}",
        again.version,
        a.version
    );
    // A plan made for the deleted definition cannot step the new one.
    let stale = engine
        .advance_schedule(&name("a"), a.version, clock.now(), 0, None)
        .await;
    assert!(
        matches!(
            stale,
            Err(ScheduleEngineError::Schedule(ScheduleError::Stale { .. }))
        ),
        "{stale:?}"
    );
}
