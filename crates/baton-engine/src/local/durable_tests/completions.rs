//! Completions of notified messages: the hook, callback outcomes across restarts, and
//! recovery handing over the completions of replayed operations.

use super::*;
use crate::CompletionKind;

fn notify_entry(body: &str) -> SendEntry {
    SendEntry {
        notify: Some(baton_core::Notify {
            url: "http://127.0.0.1:9/cb".to_string(),
            headers: vec![("x-token".to_string(), "t".to_string())],
        }),
        ..SendEntry::new(new_message_id(), body)
    }
}

async fn receive_all(engine: &LocalEngine, queue: &str) -> Vec<Delivery> {
    engine
        .receive(
            &name(queue),
            ReceiveOptions {
                max: 10,
                wait_ms: Some(0),
                visibility_timeout_ms: None,
            },
        )
        .await
        .unwrap()
}

/// A fresh durable engine on a simulated disk, with the queues of `setup_queues`.
async fn fresh() -> (SimFs, Arc<ManualClock>, LocalEngine) {
    let fs = SimFs::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
    let engine = open(&fs, clock.clone(), 1 << 40);
    setup_queues(&engine).await;
    (fs, clock, engine)
}

/// Sends "done" and "doomed" (both notified) and "silent" to `q`; returns the ids of the
/// first two.
async fn send_done_doomed_and_silent(engine: &LocalEngine) -> (MessageId, MessageId) {
    let sent = engine
        .send(
            &name("q"),
            vec![
                notify_entry("done"),
                notify_entry("doomed"),
                SendEntry::new(new_message_id(), "silent"),
            ],
        )
        .await
        .unwrap();
    (sent[0].id, sent[1].id)
}

/// Acks "done" and "silent" (with `reply`, if given); nacks "doomed" until it is
/// dead-lettered (max_receive_count 3).
async fn ack_all_but_doomed(
    engine: &LocalEngine,
    clock: &ManualClock,
    doomed: MessageId,
    reply: Option<&str>,
) {
    for round in 0..3 {
        clock.advance_ms(2_000);
        for delivery in receive_all(engine, "q").await {
            if delivery.id == doomed {
                engine
                    .nack(&name("q"), vec![delivery.receipt], Some(0))
                    .await
                    .unwrap();
            } else if round == 0 {
                match reply {
                    Some(reply) => engine
                        .ack_with_reply(&name("q"), vec![delivery.receipt], Some(Arc::from(reply)))
                        .await
                        .unwrap(),
                    None => engine
                        .ack(&name("q"), vec![delivery.receipt])
                        .await
                        .unwrap(),
                };
            }
        }
    }
}

fn check_hook_saw_done_and_doomed(seen: &[Completion], done: MessageId, doomed: MessageId) {
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].id, seen[0].kind, seen[0].receive_count),
        (done, CompletionKind::Completed, 1)
    );
    assert_eq!(seen[0].reply.as_deref(), Some(r#"{"body":"ok"}"#));
    assert_eq!(seen[1].reply, None);
    assert_eq!(
        seen[0].notify.headers,
        [("x-token".to_string(), "t".to_string())]
    );
    assert_eq!(
        (
            seen[1].id,
            seen[1].kind,
            seen[1].receive_count,
            seen[1].queue.as_str()
        ),
        (doomed, CompletionKind::DeadLettered, 3, "q")
    );
}

/// "done"'s callback fails; "doomed"'s fails, then succeeds; an unknown message is refused.
async fn record_callbacks(engine: &LocalEngine, done: MessageId, doomed: MessageId) {
    let failed = engine
        .record_callback(&name("q"), done, false, Some("HTTP 503".to_string()))
        .await
        .unwrap();
    assert_eq!(failed.status, baton_core::MessageStatus::CallbackFailed);
    engine
        .record_callback(&name("q"), doomed, false, None)
        .await
        .unwrap();
    engine
        .record_callback(&name("q"), doomed, true, None)
        .await
        .unwrap();
    assert!(matches!(
        engine
            .record_callback(&name("q"), new_message_id(), true, None)
            .await,
        Err(EngineError::MessageNotFound { .. })
    ));
}

/// The callback outcomes, replayed from the log, then from a checkpoint.
async fn check_callback_outcomes_survive_restarts(
    fs: &SimFs,
    clock: &Arc<ManualClock>,
    done: MessageId,
    doomed: MessageId,
) {
    for checkpoint in [false, true] {
        let engine = open(fs, clock.clone(), 1 << 40);
        let listed = engine.callback_failed(10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].1.id), ("q", done));
        assert_eq!(
            listed[0].1.history.last().unwrap().detail.as_deref(),
            Some("HTTP 503")
        );
        let status = engine.message_status(&name("q"), doomed).await.unwrap();
        assert_eq!(status.status, baton_core::MessageStatus::DeadLettered);
        assert_eq!(
            status.history.last().unwrap().kind,
            HistoryEventKind::CallbackSucceeded
        );
        if !checkpoint {
            engine.checkpoint().unwrap();
        }
    }
}

#[tokio::test]
async fn completions_of_notified_messages_reach_the_hook_and_callback_outcomes_survive_restarts() {
    let (fs, clock, engine) = fresh().await;
    let seen: Arc<parking_lot::Mutex<Vec<Completion>>> = Arc::default();
    let sink = seen.clone();
    engine.set_completion_hook(Arc::new(move |c: Vec<Completion>| {
        sink.lock().extend(c);
        Box::pin(async {}) as crate::CompletionFuture
    }));

    let (done, doomed) = send_done_doomed_and_silent(&engine).await;
    ack_all_but_doomed(&engine, &clock, doomed, Some(r#"{"body":"ok"}"#)).await;
    let seen = seen.lock().clone();
    check_hook_saw_done_and_doomed(&seen, done, doomed);
    record_callbacks(&engine, done, doomed).await;
    drop(engine);
    check_callback_outcomes_survive_restarts(&fs, &clock, done, doomed).await;
}

#[tokio::test]
async fn an_ack_is_answered_only_after_the_completion_hook_handed_its_completions_over() {
    let (_fs, _clock, engine) = fresh().await;
    let handed_over: Arc<parking_lot::Mutex<Vec<MessageId>>> = Arc::default();
    let sink = handed_over.clone();
    engine.set_completion_hook(Arc::new(move |c: Vec<Completion>| {
        let sink = sink.clone();
        Box::pin(async move {
            // A slow hand-over (a callback job being written): the ack must wait for it.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            sink.lock().extend(c.iter().map(|c| c.id));
        }) as crate::CompletionFuture
    }));
    let sent = engine
        .send(&name("q"), vec![notify_entry("done")])
        .await
        .unwrap();
    let deliveries = receive_all(&engine, "q").await;
    assert_eq!(deliveries.len(), 1);
    engine
        .ack(&name("q"), vec![deliveries[0].receipt])
        .await
        .unwrap();
    assert_eq!(*handed_over.lock(), [sent[0].id]);
}

#[tokio::test]
async fn recovery_hands_over_the_completions_of_replayed_acks_and_dead_letters() {
    let (fs, clock, engine) = fresh().await;
    // No hook: as if the process died before any callback job was written.
    let (done, doomed) = send_done_doomed_and_silent(&engine).await;
    ack_all_but_doomed(&engine, &clock, doomed, None).await;
    clock.advance_ms(2_000);
    let _ = receive_all(&engine, "q").await;
    assert!(engine.take_recovered_completions().is_empty());
    drop(engine);
    fs.crash(CrashMode::LoseUnsynced);

    let engine = open(&fs, clock.clone(), 1 << 40);
    let mut got: Vec<_> = engine
        .take_recovered_completions()
        .into_iter()
        .map(|c| (c.id, c.kind, c.queue.to_string(), c.receive_count, c.reply))
        .collect();
    got.sort_by_key(|c| c.0);
    let mut want = vec![
        (done, CompletionKind::Completed, "q".to_string(), 1, None),
        (
            doomed,
            CompletionKind::DeadLettered,
            "q".to_string(),
            3,
            None,
        ),
    ];
    want.sort_by_key(|c| c.0);
    assert_eq!(got, want);
    // Handed over once.
    assert!(engine.take_recovered_completions().is_empty());
}
