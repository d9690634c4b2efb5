//! Locks in the local engine: contention with waiting acquires (woken by a release, or by
//! the expiry on the injected clock), the waiter limit, and durability: restarts and
//! checkpoints keep holds and never let a token go back.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use baton_core::lock::{FencingToken, Holder, LockError, LockLimits, LockName, Released};
use baton_core::ManualClock;
use baton_storage::{CrashMode, SimFs, SyncPolicy};

use super::*;
use crate::locks::{FencedOutcome, FencedWrite, LockEngine, LockEngineError, LockSettings};

fn lock(s: &str) -> LockName {
    LockName::new(s, &LockLimits::default()).unwrap()
}

fn holder(s: &str) -> Holder {
    Holder::new(s).unwrap()
}

fn memory(clock: Arc<ManualClock>) -> Arc<LocalEngine> {
    Arc::new(LocalEngine::in_memory(clock, EngineConfig::default()))
}

fn open(fs: &SimFs, clock: Arc<ManualClock>, settings: LockSettings) -> LocalEngine {
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
    .unwrap()
    .with_lock_settings(settings);
    engine.reload().unwrap();
    engine
}

/// Lets spawned tasks run until they wait (the runtime is single-threaded, time paused).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiting_acquire_gets_the_lock_on_release_with_a_larger_token() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000)));
    let engine = memory(clock.clone());
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 10_000, 0)
        .await
        .unwrap();
    let refused = engine
        .acquire_lock(&lock("job"), &holder("b"), 10_000, 0)
        .await;
    assert_eq!(
        refused,
        Err(LockEngineError::Lock(LockError::Held {
            name: lock("job"),
            holder: holder("a"),
            expires_at: Timestamp::from_millis(11_000),
        }))
    );
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .acquire_lock(&lock("job"), &holder("b"), 10_000, 5_000)
                .await
        })
    };
    settle().await;
    assert!(!waiter.is_finished());
    let released = engine
        .release_lock(&lock("job"), &holder("a"), first.token)
        .await
        .unwrap();
    assert_eq!(released, Released::Released);
    let second = waiter.await.unwrap().unwrap();
    assert_eq!(second.holder, holder("b"));
    assert!(second.token > first.token);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_acquire_gets_the_lock_when_it_expires_on_the_engine_clock() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let engine = memory(clock.clone());
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 1_000, 0)
        .await
        .unwrap();
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .acquire_lock(&lock("job"), &holder("b"), 1_000, 5_000)
                .await
        })
    };
    settle().await;
    assert!(!waiter.is_finished());
    // The engine's clock reaches the expiry; the waiter's sleep ends at the same moment.
    clock.advance_ms(1_000);
    let second = waiter.await.unwrap().unwrap();
    assert_eq!(second.token, FencingToken::new(first.token.get() + 1));
    assert_eq!(second.acquired_at, Timestamp::from_millis(1_000));
    assert!(!engine.lock_is_current(&lock("job"), first.token));
    assert!(engine.lock_is_current(&lock("job"), second.token));
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_ends_answers_with_the_current_holder() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let engine = memory(clock.clone());
    engine
        .acquire_lock(&lock("job"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    let refused = engine
        .acquire_lock(&lock("job"), &holder("b"), 1_000, 2_000)
        .await;
    assert!(matches!(
        refused,
        Err(LockEngineError::Lock(LockError::Held { holder: h, .. })) if h == holder("a")
    ));
    assert_eq!(
        engine
            .acquire_lock(&lock("job"), &holder("b"), 1_000, 60_001)
            .await,
        Err(LockEngineError::WaitTooLong {
            wait_ms: 60_001,
            max: 60_000
        })
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_acquires_are_bounded() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let engine = Arc::new(
        LocalEngine::in_memory(clock, EngineConfig::default()).with_lock_settings(LockSettings {
            waiters_max: 1,
            ..LockSettings::default()
        }),
    );
    engine
        .acquire_lock(&lock("job"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    let first_waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .acquire_lock(&lock("job"), &holder("b"), 1_000, 10_000)
                .await
        })
    };
    settle().await;
    assert_eq!(
        engine
            .acquire_lock(&lock("job"), &holder("c"), 1_000, 10_000)
            .await,
        Err(LockEngineError::TooManyWaiters { limit: 1 })
    );
    first_waiter.abort();
}

#[tokio::test]
async fn a_restart_keeps_holds_and_tokens_keep_increasing() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let engine = open(&fs, clock.clone(), LockSettings::default());
    let mut last = FencingToken::new(0);
    for _ in 0..3 {
        let hold = engine
            .acquire_lock(&lock("job"), &holder("a"), 1_000, 0)
            .await
            .unwrap();
        assert!(hold.token > last);
        last = hold.token;
        engine
            .release_lock(&lock("job"), &holder("a"), hold.token)
            .await
            .unwrap();
    }
    let held = engine
        .acquire_lock(&lock("held"), &holder("a"), 5_000, 0)
        .await
        .unwrap();
    let renewed = engine
        .renew_lock(&lock("held"), &holder("a"), held.token, 9_000)
        .await
        .unwrap();
    drop(engine);
    fs.crash(CrashMode::LoseUnsynced);

    let engine = open(&fs, clock.clone(), LockSettings::default());
    assert_eq!(engine.get_lock(&lock("held")).await.unwrap(), Some(renewed));
    assert_eq!(engine.get_lock(&lock("job")).await.unwrap(), None);
    let after = engine
        .acquire_lock(&lock("job"), &holder("b"), 1_000, 0)
        .await
        .unwrap();
    assert!(after.token > last, "{:?} after {last:?}", after.token);
    // The hold kept its expiry across the restart, on the engine's clock.
    clock.advance_ms(9_000);
    assert_eq!(engine.get_lock(&lock("held")).await.unwrap(), None);
}

#[tokio::test]
async fn checkpoints_keep_tokens_of_released_and_swept_names() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let settings = LockSettings {
        limits: LockLimits {
            locks_max: 2,
            ..LockLimits::default()
        },
        ..LockSettings::default()
    };
    let engine = open(&fs, clock.clone(), settings);
    for _ in 0..4 {
        let hold = engine
            .acquire_lock(&lock("a"), &holder("h"), 1_000, 0)
            .await
            .unwrap();
        engine
            .release_lock(&lock("a"), &holder("h"), hold.token)
            .await
            .unwrap();
    }
    // `b` and then `c` fill the table; `c` sweeps `a` (token 4) into the floor.
    let b = engine
        .acquire_lock(&lock("b"), &holder("h"), 1_000, 0)
        .await
        .unwrap();
    engine
        .release_lock(&lock("b"), &holder("h"), b.token)
        .await
        .unwrap();
    let c = engine
        .acquire_lock(&lock("c"), &holder("h"), 60_000, 0)
        .await
        .unwrap();
    assert!(c.token.get() > 4);
    engine.checkpoint().unwrap();
    let c2 = engine
        .renew_lock(&lock("c"), &holder("h"), c.token, 30_000)
        .await
        .unwrap();
    drop(engine);
    fs.crash(CrashMode::LoseUnsynced);

    let engine = open(&fs, clock.clone(), settings);
    assert_eq!(engine.get_lock(&lock("c")).await.unwrap(), Some(c2));
    let a = engine
        .acquire_lock(&lock("a"), &holder("h"), 1_000, 0)
        .await
        .unwrap();
    assert!(a.token.get() > 4, "{:?}", a.token);
}

#[tokio::test]
async fn a_fenced_send_needs_the_live_token_at_the_moment_it_is_enqueued() {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(0)));
    let engine = memory(clock.clone());
    let queue = QueueName::new("q").unwrap();
    engine
        .create_queue(queue.clone(), QueueConfig::default())
        .await
        .unwrap();
    let entry = || SendEntry::new(crate::new_message_id(), "body");
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 1_000, 0)
        .await
        .unwrap();
    let sent = engine
        .fenced(&lock("job"), first.token, send(&queue, entry()))
        .await
        .unwrap();
    assert!(matches!(sent, FencedOutcome::Sent(outcomes) if outcomes.len() == 1));
    // The hold expires on the engine's clock: the same token is fenced now.
    clock.advance_ms(1_000);
    assert_eq!(
        engine
            .fenced(&lock("job"), first.token, send(&queue, entry()))
            .await,
        Err(LockEngineError::Fenced {
            lock: "job".into(),
            token: first.token.get(),
            current: None,
        })
    );
    let second = engine
        .acquire_lock(&lock("job"), &holder("b"), 1_000, 0)
        .await
        .unwrap();
    assert!(matches!(
        engine
            .fenced(&lock("job"), first.token, send(&queue, entry()))
            .await,
        Err(LockEngineError::Fenced { current: Some(t), .. }) if t == second.token.get()
    ));
    let view = engine.get_queue(&queue).await.unwrap();
    assert_eq!(view.stats.visible, 1, "refused sends wrote nothing");
}

fn send(queue: &QueueName, entry: SendEntry) -> FencedWrite {
    FencedWrite::Send {
        queue: queue.clone(),
        entries: vec![entry],
    }
}
