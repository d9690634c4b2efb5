//! Restarts keep what was acknowledged; checkpoints bound the log; a failing disk refuses
//! writes, keeps reads and recovers by itself.

use super::*;
use crate::conformance::queues::push_spec;

#[tokio::test]
async fn a_restart_keeps_messages_statuses_and_totals_and_releases_leases() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 40);
    setup_queues(&engine).await;
    let ids: Vec<MessageId> = engine
        .send(
            &name("q"),
            (0..5)
                .map(|i| SendEntry::new(new_message_id(), format!("m{i}")))
                .collect(),
        )
        .await
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    let got = engine
        .receive(
            &name("q"),
            ReceiveOptions {
                max: 2,
                wait_ms: Some(0),
                visibility_timeout_ms: None,
            },
        )
        .await
        .unwrap();
    engine.ack(&name("q"), vec![got[0].receipt]).await.unwrap();
    drop(engine);

    let engine = open(&fs, clock.clone(), 1 << 40);
    let stats = engine.get_queue(&name("q")).await.unwrap().stats;
    assert_eq!(
        (
            stats.visible,
            stats.in_flight,
            stats.acked_total,
            stats.sent_total
        ),
        (4, 0, 1, 5)
    );
    assert_eq!(
        engine
            .message_status(&name("q"), ids[0])
            .await
            .unwrap()
            .status,
        baton_core::MessageStatus::Completed
    );
    let released = engine.message_status(&name("q"), got[1].id).await.unwrap();
    assert_eq!(released.status, baton_core::MessageStatus::Pending);
    assert_eq!(
        released.history.last().unwrap().detail.as_deref(),
        Some("broker restarted")
    );
    // The old receipt is stale after the restart; a new receive counts on.
    assert_eq!(
        engine.ack(&name("q"), vec![got[1].receipt]).await.unwrap()[0],
        Err(ReceiptError::Stale)
    );
    let again = engine
        .receive(
            &name("q"),
            ReceiveOptions {
                max: 10,
                wait_ms: Some(0),
                visibility_timeout_ms: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 4);
    assert_eq!(
        again
            .iter()
            .find(|d| d.id == got[1].id)
            .unwrap()
            .receive_count,
        2,
        "receive counts survive"
    );
}

/// SQS's delete by a receipt from before a restart (its lease ended with the restart, and the
/// message was received again since) deletes the message, and the deletion is replayed.
#[tokio::test]
async fn a_delete_by_a_receipt_from_before_a_restart_is_durable() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 40);
    setup_queues(&engine).await;
    let receive = ReceiveOptions {
        max: 10,
        wait_ms: Some(0),
        visibility_timeout_ms: None,
    };
    engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "m")])
        .await
        .unwrap();
    let first = engine.receive(&name("q"), receive).await.unwrap();
    drop(engine);

    let engine = open(&fs, clock.clone(), 1 << 40);
    let again = engine.receive(&name("q"), receive).await.unwrap();
    assert_eq!(again[0].id, first[0].id);
    let deleted = engine
        .delete(&name("q"), vec![first[0].receipt])
        .await
        .unwrap();
    assert_eq!(
        deleted[0].as_ref().unwrap().as_ref().unwrap().id,
        first[0].id
    );
    // The message is gone: the native ack of the newer receipt finds no lease to end.
    assert_eq!(
        engine
            .ack(&name("q"), vec![again[0].receipt])
            .await
            .unwrap()[0],
        Err(ReceiptError::Stale)
    );
    engine.durable.as_ref().unwrap().flush().await.unwrap();
    drop(engine);

    let engine = open(&fs, clock.clone(), 1 << 40);
    let stats = engine.get_queue(&name("q")).await.unwrap().stats;
    assert_eq!((stats.visible, stats.acked_total), (0, 1));
    assert_eq!(
        engine
            .delete(&name("q"), vec![again[0].receipt])
            .await
            .unwrap()[0],
        Ok(None)
    );
}

#[tokio::test]
async fn checkpoints_bound_the_log_and_restarts_read_them() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 4096);
    for queue in ["q", "pushed"] {
        engine
            .create_queue(name(queue), QueueConfig::default())
            .await
            .unwrap();
    }
    // One push subscription the checkpoint holds, one only the log after it.
    let (in_checkpoint, in_log) = (push_spec("http://a.test/in"), push_spec("http://b.test/in"));
    engine
        .set_push(&name("pushed"), Some(in_checkpoint.clone()), None)
        .await
        .unwrap();
    for round in 0..200 {
        let sent = engine
            .send(
                &name("q"),
                vec![SendEntry::new(
                    new_message_id(),
                    format!("body {round} {}", "x".repeat(100)),
                )],
            )
            .await
            .unwrap();
        let got = engine
            .receive(
                &name("q"),
                ReceiveOptions {
                    max: 1,
                    wait_ms: Some(0),
                    visibility_timeout_ms: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(got[0].id, sent[0].id);
        engine.ack(&name("q"), vec![got[0].receipt]).await.unwrap();
        engine.tick().await;
    }
    let keep = engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "kept")])
        .await
        .unwrap();
    engine.tick().await;
    let files = fs.list(std::path::Path::new("/data/wal")).unwrap();
    let segments = files.iter().filter(|f| f.ends_with(".seg")).count();
    let checkpoints = files.iter().filter(|f| f.ends_with(".ckpt")).count();
    assert!(checkpoints == 1, "{files:?}");
    assert!(segments <= 4, "the log is compacted: {files:?}");
    engine
        .set_push(&name("q"), Some(in_log.clone()), None)
        .await
        .unwrap();
    drop(engine);
    let engine = open(&fs, clock, 4096);
    for (queue, push) in [("pushed", in_checkpoint), ("q", in_log)] {
        let view = engine.get_queue(&name(queue)).await.unwrap();
        assert_eq!(view.meta.push, Some(push), "{queue}");
    }
    let got = engine
        .receive(
            &name("q"),
            ReceiveOptions {
                max: 10,
                wait_ms: Some(0),
                visibility_timeout_ms: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, keep[0].id);
    assert_eq!(
        engine
            .get_queue(&name("q"))
            .await
            .unwrap()
            .stats
            .acked_total,
        200
    );
}

#[tokio::test]
async fn a_failing_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 40);
    engine
        .create_queue(name("q"), QueueConfig::default())
        .await
        .unwrap();
    engine
        .send(
            &name("q"),
            vec![SendEntry::new(new_message_id(), "durable")],
        )
        .await
        .unwrap();
    fs.fail_writes(Some(std::io::ErrorKind::Other));
    let refused = engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "lost")])
        .await;
    assert!(
        matches!(refused, Err(EngineError::StorageUnavailable { .. })),
        "{refused:?}"
    );
    let again = engine
        .send(
            &name("q"),
            vec![SendEntry::new(new_message_id(), "refused")],
        )
        .await;
    assert!(matches!(again, Err(EngineError::StorageUnavailable { .. })));
    assert!(engine.storage_failure().is_some());
    // Reads keep working.
    assert!(engine.get_queue(&name("q")).await.is_ok());
    assert!(engine.list_queues().await.is_ok());
    // While the disk is still full, reopening fails and writes stay refused.
    engine.tick().await;
    assert!(engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "x")])
        .await
        .is_err());
    // Space returns: the engine reloads from disk; only what was acknowledged is there.
    fs.fail_writes(None);
    *engine.durable.as_ref().unwrap().last_reopen_for_tests() = None;
    engine.tick().await;
    assert!(engine.storage_failure().is_none());
    engine
        .send(&name("q"), vec![SendEntry::new(new_message_id(), "after")])
        .await
        .unwrap();
    let got = engine
        .receive(
            &name("q"),
            ReceiveOptions {
                max: 10,
                wait_ms: Some(0),
                visibility_timeout_ms: None,
            },
        )
        .await
        .unwrap();
    let bodies: BTreeSet<String> = got.iter().map(|d| d.body.to_string()).collect();
    assert_eq!(
        bodies,
        ["after".to_string(), "durable".to_string()]
            .into_iter()
            .collect()
    );
}
