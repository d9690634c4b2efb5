#![allow(clippy::unwrap_used)]

use baton_core::{DeadLetterPolicy, ManualClock, MessageStatus};

use super::*;
use crate::new_message_id;

fn name(s: &str) -> QueueName {
    QueueName::new(s).unwrap()
}

fn engine() -> (Arc<ManualClock>, LocalEngine) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = LocalEngine::in_memory(clock.clone(), EngineConfig::default());
    (clock, engine)
}

fn entry(body: &str) -> SendEntry {
    SendEntry::new(new_message_id(), body)
}

fn receive_now(max: u32) -> ReceiveOptions {
    ReceiveOptions {
        max,
        wait_ms: Some(0),
        visibility_timeout_ms: None,
    }
}

#[tokio::test]
async fn create_is_idempotent_and_conflicts_name_the_difference() {
    let (_, engine) = engine();
    assert!(matches!(
        engine.create_queue(name("q"), QueueConfig::default()).await,
        Ok(Created::New(_))
    ));
    assert!(matches!(
        engine.create_queue(name("q"), QueueConfig::default()).await,
        Ok(Created::Existing(_))
    ));
    let other = QueueConfig {
        visibility_timeout_ms: 5,
        ..QueueConfig::default()
    };
    let err = engine.create_queue(name("q"), other).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::QueueExists { differences, .. } if differences.contains("visibility_timeout_ms"))
    );
}

#[tokio::test]
async fn dead_letter_queue_must_exist_and_match_kind_and_cannot_be_deleted_while_used() {
    let (_, engine) = engine();
    let with_dlq = |queue: &str| QueueConfig {
        dead_letter: Some(DeadLetterPolicy {
            queue: name(queue),
            max_receive_count: 2,
        }),
        ..QueueConfig::default()
    };
    assert!(matches!(
        engine.create_queue(name("q"), with_dlq("dlq")).await,
        Err(EngineError::DeadLetterQueueInvalid { .. })
    ));
    engine
        .create_queue(
            name("dlq.fifo"),
            QueueConfig {
                fifo: true,
                ..QueueConfig::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        engine.create_queue(name("q"), with_dlq("dlq.fifo")).await,
        Err(EngineError::DeadLetterQueueInvalid { .. })
    ));
    engine
        .create_queue(name("dlq"), QueueConfig::default())
        .await
        .unwrap();
    engine
        .create_queue(name("q"), with_dlq("dlq"))
        .await
        .unwrap();
    assert!(matches!(
        engine.delete_queue(&name("dlq")).await,
        Err(EngineError::QueueInUse { .. })
    ));
    engine.delete_queue(&name("q")).await.unwrap();
    engine.delete_queue(&name("dlq")).await.unwrap();
    let left: Vec<_> = engine
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(left, vec![name("dlq.fifo")]);
}

#[tokio::test]
async fn dead_letters_move_across_queues_and_redrive_brings_them_home() {
    let (clock, engine) = engine();
    engine
        .create_queue(name("dlq"), QueueConfig::default())
        .await
        .unwrap();
    let config = QueueConfig {
        visibility_timeout_ms: 1_000,
        dead_letter: Some(DeadLetterPolicy {
            queue: name("dlq"),
            max_receive_count: 2,
        }),
        ..QueueConfig::default()
    };
    engine.create_queue(name("q"), config).await.unwrap();
    let sent = engine
        .send(&name("q"), vec![entry("poison")])
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            engine
                .receive(&name("q"), receive_now(1))
                .await
                .unwrap()
                .len(),
            1
        );
        clock.advance_ms(1_000);
    }
    engine.tick().await;
    assert_eq!(engine.get_queue(&name("q")).await.unwrap().stats.depth(), 0);
    assert_eq!(
        engine.get_queue(&name("dlq")).await.unwrap().stats.visible,
        1
    );
    let status = engine.message_status(&name("q"), sent[0].id).await.unwrap();
    assert_eq!(status.status, MessageStatus::DeadLettered);

    assert_eq!(
        engine
            .redrive(&name("dlq"), RedriveOptions::default())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        engine.get_queue(&name("dlq")).await.unwrap().stats.depth(),
        0
    );
    let back = engine.receive(&name("q"), receive_now(1)).await.unwrap();
    assert_eq!(back[0].id, sent[0].id);
    assert_eq!(
        back[0].receive_count, 1,
        "redrive gives a fresh receive count"
    );
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let clock = Arc::new(crate::SystemClock);
    let engine = Arc::new(LocalEngine::in_memory(clock, EngineConfig::default()));
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let options = ReceiveOptions {
                max: 1,
                wait_ms: Some(10_000),
                visibility_timeout_ms: None,
            };
            engine.receive(&name("q"), options).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    engine.send(&name("q"), vec![entry("hello")]).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&*got[0].body, "hello");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn waiting_receives_are_bounded() {
    let clock = Arc::new(crate::SystemClock);
    let config = EngineConfig {
        max_waiting_receives: 1,
        ..EngineConfig::default()
    };
    let engine = Arc::new(LocalEngine::in_memory(clock, config));
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .receive(
                    &name("q"),
                    ReceiveOptions {
                        max: 1,
                        wait_ms: Some(2_000),
                        visibility_timeout_ms: None,
                    },
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = engine
        .receive(
            &name("q"),
            ReceiveOptions {
                max: 1,
                wait_ms: Some(2_000),
                visibility_timeout_ms: None,
            },
        )
        .await;
    assert!(matches!(
        second,
        Err(EngineError::TooManyWaiters { limit: 1 })
    ));
    engine.begin_shutdown();
    assert!(
        first.await.unwrap().unwrap().is_empty(),
        "shutdown ends waits with no messages"
    );
}
