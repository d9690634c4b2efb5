//! Queue semantics every engine keeps: creation, leases and receipts, visibility, delays, FIFO
//! groups, deduplication, dead letters and redrive, depth limits, atomic batches, purge,
//! retention, message status, long polls.

use std::sync::Arc;
use std::time::Duration;

use baton_core::{
    DeadLetterPolicy, HistoryEventKind, MessageStatus, QueueConfig, QueueError, ReceiptError,
};

use super::{entry, queue, take, Harness};
use crate::{Created, EngineConfig, EngineError, ReceiveOptions, RedriveOptions};

async fn fresh(harness: &dyn Harness) -> Arc<dyn crate::Engine> {
    harness.engine(EngineConfig::default()).await
}

async fn create(engine: &Arc<dyn crate::Engine>, name: &str, config: QueueConfig) {
    engine.create_queue(queue(name), config).await.unwrap();
}

fn fifo() -> QueueConfig {
    QueueConfig {
        fifo: true,
        ..QueueConfig::default()
    }
}

fn with_dead_letter(dlq: &str, max_receive_count: u32) -> QueueConfig {
    QueueConfig {
        visibility_timeout_ms: 1_000,
        dead_letter: Some(DeadLetterPolicy {
            queue: queue(dlq),
            max_receive_count,
        }),
        ..QueueConfig::default()
    }
}

pub async fn create_is_idempotent_and_conflicts_name_the_difference(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    assert!(matches!(
        engine
            .create_queue(queue("q"), QueueConfig::default())
            .await,
        Ok(Created::New(_))
    ));
    assert!(matches!(
        engine
            .create_queue(queue("q"), QueueConfig::default())
            .await,
        Ok(Created::Existing(_))
    ));
    let other = QueueConfig {
        visibility_timeout_ms: 5,
        ..QueueConfig::default()
    };
    let err = engine.create_queue(queue("q"), other).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::QueueExists { differences, .. } if differences.contains("visibility_timeout_ms")),
        "{err:?}"
    );
    let missing = engine.get_queue(&queue("nope")).await;
    assert!(matches!(missing, Err(EngineError::QueueNotFound { .. })));
}

pub async fn a_dead_letter_queue_must_exist_match_and_stay_while_used(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    let refused = engine
        .create_queue(queue("q"), with_dead_letter("dlq", 2))
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::DeadLetterQueueInvalid { .. })
    ));
    create(&engine, "dlq.fifo", fifo()).await;
    let refused = engine
        .create_queue(queue("q"), with_dead_letter("dlq.fifo", 2))
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::DeadLetterQueueInvalid { .. })
    ));
    create(&engine, "dlq", QueueConfig::default()).await;
    create(&engine, "q", with_dead_letter("dlq", 2)).await;
    assert!(matches!(
        engine.delete_queue(&queue("dlq")).await,
        Err(EngineError::QueueInUse { .. })
    ));
    engine.delete_queue(&queue("q")).await.unwrap();
    engine.delete_queue(&queue("dlq")).await.unwrap();
    let left: Vec<String> = engine
        .list_queues()
        .await
        .unwrap()
        .iter()
        .map(|v| v.name.to_string())
        .collect();
    assert_eq!(left, vec!["dlq.fifo".to_string()]);
}

pub async fn send_receive_ack_round_trip_counts_every_step(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let sent = engine
        .send(&queue("q"), vec![entry("a"), entry("b")])
        .await
        .unwrap();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|s| !s.duplicate));
    assert!(sent[0].seq < sent[1].seq, "sequences grow in send order");
    let got = engine
        .receive(&queue("q"), super::now(10, None))
        .await
        .unwrap();
    let bodies: Vec<&str> = got.iter().map(|d| &*d.body).collect();
    assert_eq!(bodies, vec!["a", "b"]);
    assert!(got.iter().all(|d| d.receive_count == 1));
    assert_eq!(got[0].id, sent[0].id);
    let stats = engine.get_queue(&queue("q")).await.unwrap().stats;
    assert_eq!((stats.visible, stats.in_flight), (0, 2));
    let acked = engine
        .ack(&queue("q"), got.iter().map(|d| d.receipt).collect())
        .await
        .unwrap();
    assert!(acked.iter().all(Result::is_ok), "{acked:?}");
    let again = engine.ack(&queue("q"), vec![got[0].receipt]).await.unwrap();
    assert!(
        again[0].is_err(),
        "an acked message's receipt does not ack twice"
    );
    let stats = engine.get_queue(&queue("q")).await.unwrap().stats;
    assert_eq!(
        (
            stats.depth(),
            stats.sent_total,
            stats.received_total,
            stats.acked_total
        ),
        (0, 2, 2, 2)
    );
}

pub async fn a_receive_returns_at_most_max_and_hides_what_it_returned(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let entries = (0..5).map(|i| entry(&format!("m{i}"))).collect();
    engine.send(&queue("q"), entries).await.unwrap();
    let first = take(&engine, "q", 3, None).await;
    assert_eq!(first.len(), 3);
    let second = take(&engine, "q", 10, None).await;
    let mut all: Vec<String> = first
        .iter()
        .chain(&second)
        .map(|(b, _)| b.clone())
        .collect();
    all.sort();
    assert_eq!(all, vec!["m0", "m1", "m2", "m3", "m4"], "each message once");
    assert!(take(&engine, "q", 10, None).await.is_empty());
}

pub async fn an_expired_lease_redelivers_and_its_receipt_no_longer_acks(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    engine.send(&queue("q"), vec![entry("m")]).await.unwrap();
    let first = engine
        .receive(&queue("q"), super::now(1, Some(1_000)))
        .await
        .unwrap();
    assert!(
        take(&engine, "q", 1, None).await.is_empty(),
        "hidden while leased"
    );
    harness.advance(&engine, 1_001).await;
    let second = engine
        .receive(&queue("q"), super::now(1, Some(60_000)))
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!((second[0].id, second[0].receive_count), (first[0].id, 2));
    let stale = engine
        .ack(&queue("q"), vec![first[0].receipt])
        .await
        .unwrap();
    assert_eq!(stale[0].as_ref().err(), Some(&ReceiptError::Stale));
    assert_eq!(
        engine.get_queue(&queue("q")).await.unwrap().stats.in_flight,
        1
    );
    let current = engine
        .ack(&queue("q"), vec![second[0].receipt])
        .await
        .unwrap();
    assert!(current[0].is_ok());
}

pub async fn nack_makes_a_message_visible_now_or_after_its_delay(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    engine
        .send(&queue("q"), vec![entry("now"), entry("later")])
        .await
        .unwrap();
    let got = take(&engine, "q", 2, None).await;
    let receipt = |body: &str| got.iter().find(|(b, _)| b == body).unwrap().1;
    let nacked = engine
        .nack(&queue("q"), vec![receipt("now")], None)
        .await
        .unwrap();
    assert!(nacked[0].is_ok());
    let nacked = engine
        .nack(&queue("q"), vec![receipt("later")], Some(5_000))
        .await
        .unwrap();
    assert!(nacked[0].is_ok());
    let visible: Vec<String> = take(&engine, "q", 10, None)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(visible, vec!["now".to_string()]);
    harness.advance(&engine, 5_001).await;
    let visible: Vec<String> = take(&engine, "q", 10, None)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(visible, vec!["later".to_string()]);
}

pub async fn a_visibility_change_extends_a_lease_and_zero_releases_it(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    engine
        .send(&queue("q"), vec![entry("kept"), entry("released")])
        .await
        .unwrap();
    let got = take(&engine, "q", 2, Some(1_000)).await;
    let receipt = |body: &str| got.iter().find(|(b, _)| b == body).unwrap().1;
    engine
        .change_visibility(&queue("q"), receipt("kept"), 60_000)
        .await
        .unwrap();
    engine
        .change_visibility(&queue("q"), receipt("released"), 0)
        .await
        .unwrap();
    let visible: Vec<String> = take(&engine, "q", 10, Some(60_000))
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(visible, vec!["released".to_string()]);
    harness.advance(&engine, 2_000).await;
    assert!(
        take(&engine, "q", 10, None).await.is_empty(),
        "the extended lease still holds"
    );
}

pub async fn delayed_sends_become_visible_after_their_delay(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let mut delayed = entry("delayed");
    delayed.delay_ms = Some(3_000);
    engine
        .send(&queue("q"), vec![delayed, entry("at once")])
        .await
        .unwrap();
    let stats = engine.get_queue(&queue("q")).await.unwrap().stats;
    assert_eq!((stats.visible, stats.delayed), (1, 1));
    let first: Vec<String> = take(&engine, "q", 10, Some(60_000))
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(first, vec!["at once".to_string()]);
    harness.advance(&engine, 3_001).await;
    let later: Vec<String> = take(&engine, "q", 10, None)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(later, vec!["delayed".to_string()]);
}

fn grouped(body: &str, group: &str) -> baton_core::SendEntry {
    let mut e = entry(body);
    e.group_id = Some(group.to_string());
    e.dedup_id = Some(body.to_string());
    e
}

pub async fn fifo_delivers_a_group_in_order_to_one_consumer_at_a_time(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q.fifo", fifo()).await;
    engine
        .send(
            &queue("q.fifo"),
            vec![grouped("a1", "a"), grouped("b1", "b"), grouped("a2", "a")],
        )
        .await
        .unwrap();
    let missing_group = engine.send(&queue("q.fifo"), vec![entry("x")]).await;
    assert!(matches!(
        missing_group,
        Err(EngineError::Queue(QueueError::GroupIdRequired { .. }))
    ));
    let first = take(&engine, "q.fifo", 1, None).await;
    assert_eq!(first[0].0, "a1");
    // Group a has a message in flight: the next receive skips it.
    let second = take(&engine, "q.fifo", 10, None).await;
    let bodies: Vec<&str> = second.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(bodies, vec!["b1"]);
    engine
        .ack(&queue("q.fifo"), vec![first[0].1])
        .await
        .unwrap();
    let third = take(&engine, "q.fifo", 10, None).await;
    let bodies: Vec<&str> = third.iter().map(|(b, _)| b.as_str()).collect();
    assert_eq!(
        bodies,
        vec!["a2"],
        "in order within the group, once a1 is done"
    );
}

pub async fn a_dedup_id_makes_a_repeated_send_a_duplicate(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q.fifo", fifo()).await;
    let first = engine
        .send(&queue("q.fifo"), vec![grouped("m", "g")])
        .await
        .unwrap();
    let again = engine
        .send(&queue("q.fifo"), vec![grouped("m", "g")])
        .await
        .unwrap();
    assert!(!first[0].duplicate && again[0].duplicate);
    assert_eq!(
        again[0].id, first[0].id,
        "a duplicate answers the original's id"
    );
    let stats = engine.get_queue(&queue("q.fifo")).await.unwrap().stats;
    assert_eq!((stats.visible, stats.duplicates_total), (1, 1));
}

pub async fn dead_letters_move_across_queues_and_redrive_brings_them_home(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "dlq", QueueConfig::default()).await;
    create(&engine, "q", with_dead_letter("dlq", 2)).await;
    let sent = engine
        .send(&queue("q"), vec![entry("poison")])
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(take(&engine, "q", 1, None).await.len(), 1);
        harness.advance(&engine, 1_001).await;
    }
    // The third receive would exceed max_receive_count: the message moves instead.
    assert!(take(&engine, "q", 1, None).await.is_empty());
    harness.advance(&engine, 1).await;
    assert_eq!(
        engine.get_queue(&queue("q")).await.unwrap().stats.depth(),
        0
    );
    assert_eq!(
        engine.get_queue(&queue("dlq")).await.unwrap().stats.visible,
        1
    );
    let status = engine
        .message_status(&queue("q"), sent[0].id)
        .await
        .unwrap();
    assert_eq!(status.status, MessageStatus::DeadLettered);
    let moved = engine
        .redrive(&queue("dlq"), RedriveOptions::default())
        .await
        .unwrap();
    assert_eq!(moved, 1);
    assert_eq!(
        engine.get_queue(&queue("dlq")).await.unwrap().stats.depth(),
        0
    );
    let back = engine
        .receive(&queue("q"), super::now(1, None))
        .await
        .unwrap();
    assert_eq!((back[0].id, back[0].receive_count), (sent[0].id, 1));
}

pub async fn max_depth_refuses_a_send_and_keeps_what_the_queue_has(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    let config = QueueConfig {
        max_depth: Some(2),
        ..QueueConfig::default()
    };
    create(&engine, "q", config).await;
    engine
        .send(&queue("q"), vec![entry("1"), entry("2")])
        .await
        .unwrap();
    let refused = engine.send(&queue("q"), vec![entry("3")]).await;
    assert!(matches!(
        refused,
        Err(EngineError::Queue(QueueError::QueueFull { .. }))
    ));
    assert_eq!(
        engine.get_queue(&queue("q")).await.unwrap().stats.visible,
        2
    );
}

pub async fn a_failing_batch_changes_nothing(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    let config = QueueConfig {
        max_message_bytes: 1024,
        ..QueueConfig::default()
    };
    create(&engine, "q", config).await;
    let big = "x".repeat(2048);
    let refused = engine
        .send(&queue("q"), vec![entry("fine"), entry(&big)])
        .await;
    assert!(matches!(
        refused,
        Err(EngineError::Queue(QueueError::MessageTooLarge { .. }))
    ));
    let stats = engine.get_queue(&queue("q")).await.unwrap().stats;
    assert_eq!((stats.visible, stats.sent_total), (0, 0));
}

/// SQS batch semantics: an entry failing its own checks fails alone, the rest is sent; a FIFO
/// entry without a dedup id (no content-based dedup) fails the whole call.
pub async fn send_each_fails_entries_alone_and_fifo_ids_whole(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    let config = QueueConfig {
        max_message_bytes: 1024,
        ..QueueConfig::default()
    };
    create(&engine, "q", config).await;
    let big = "x".repeat(2048);
    let results = engine
        .send_each(&queue("q"), vec![entry("a"), entry(&big), entry("c")])
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(matches!(
        results[1],
        Err(QueueError::MessageTooLarge {
            max_bytes: 1024,
            ..
        })
    ));
    let bodies: Vec<String> = take(&engine, "q", 10, None)
        .await
        .into_iter()
        .map(|(body, _)| body)
        .collect();
    assert_eq!(bodies, ["a", "c"]);

    create(&engine, "f.fifo", fifo()).await;
    let grouped = |body: &str, dedup: Option<&str>| {
        let mut e = entry(body);
        e.group_id = Some("g".into());
        e.dedup_id = dedup.map(str::to_string);
        e
    };
    let refused = engine
        .send_each(
            &queue("f.fifo"),
            vec![grouped("1", Some("d1")), grouped("2", None)],
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(EngineError::Queue(QueueError::DedupIdRequired { .. }))
        ),
        "{refused:?}"
    );
    let stats = engine.get_queue(&queue("f.fifo")).await.unwrap().stats;
    assert_eq!(stats.sent_total, 0, "a failed FIFO batch sends nothing");
}

/// Metadata patches change only their keys, and an expectation that no longer holds changes
/// nothing.
pub async fn a_metadata_patch_keeps_other_keys_and_checks_expectations(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "m", QueueConfig::default()).await;
    let map = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let patch = |put: &[(&str, &str)], remove: &[&str]| crate::MetaPatch {
        put_attributes: map(put),
        remove_attributes: remove.iter().map(|k| k.to_string()).collect(),
        ..crate::MetaPatch::default()
    };
    let name = queue("m");
    engine
        .update_queue_meta(&name, patch(&[("a", "1"), ("b", "2")], &[]))
        .await
        .unwrap();
    let view = engine
        .update_queue_meta(&name, patch(&[("c", "3")], &["a"]))
        .await
        .unwrap();
    assert_eq!(view.meta.attributes, map(&[("b", "2"), ("c", "3")]));
    let mut stale = patch(&[("b", "9")], &[]);
    stale.expect_attributes = [("b".to_string(), Some("1".to_string()))].into();
    let refused = engine.update_queue_meta(&name, stale).await;
    assert!(
        matches!(refused, Err(EngineError::MetaConflict { ref attribute, .. }) if attribute == "b"),
        "{refused:?}"
    );
    let mut fresh_expectation = patch(&[("b", "9")], &[]);
    fresh_expectation.expect_attributes = [
        ("b".to_string(), Some("2".to_string())),
        ("z".to_string(), None),
    ]
    .into();
    let view = engine
        .update_queue_meta(&name, fresh_expectation)
        .await
        .unwrap();
    assert_eq!(view.meta.attributes, map(&[("b", "9"), ("c", "3")]));
    let missing = engine
        .update_queue_meta(&queue("nope"), patch(&[], &[]))
        .await;
    assert!(matches!(missing, Err(EngineError::QueueNotFound { .. })));
}

/// A push subscription as the engine keeps it, for tests.
pub(crate) fn push_spec(url: &str) -> crate::PushSpec {
    crate::PushSpec {
        url: url.to_string(),
        headers: [("x-team".to_string(), "orders".to_string())].into(),
        concurrency: Some(4),
        timeout_ms: None,
        rate_per_s: Some(100),
    }
}

pub async fn a_push_subscription_is_set_whole_checked_and_removed(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "p", QueueConfig::default()).await;
    let name = queue("p");
    let (a, b) = (push_spec("http://a.test/in"), push_spec("http://b.test/in"));
    let view = engine
        .set_push(&name, Some(a.clone()), Some(None))
        .await
        .unwrap();
    assert_eq!(view.meta.push, Some(a.clone()));
    // Tags and attributes change apart from it.
    let patch = crate::MetaPatch {
        put_attributes: [("k".to_string(), "v".to_string())].into(),
        ..crate::MetaPatch::default()
    };
    let view = engine.update_queue_meta(&name, patch).await.unwrap();
    assert_eq!(view.meta.push, Some(a.clone()));
    for expect in [None::<crate::PushSpec>, Some(b.clone())] {
        let refused = engine.set_push(&name, Some(b.clone()), Some(expect)).await;
        assert!(
            matches!(refused, Err(EngineError::MetaConflict { ref attribute, .. }) if attribute == "push"),
            "{refused:?}"
        );
    }
    assert_eq!(
        engine.get_queue(&name).await.unwrap().meta.push,
        Some(a.clone())
    );
    let view = engine
        .set_push(&name, Some(b.clone()), Some(Some(a)))
        .await
        .unwrap();
    assert_eq!(view.meta.push, Some(b));
    let view = engine.set_push(&name, None, None).await.unwrap();
    assert_eq!(view.meta.push, None);
    assert_eq!(view.meta.attributes.len(), 1);
    let missing = engine.set_push(&queue("nope"), None, None).await;
    assert!(matches!(missing, Err(EngineError::QueueNotFound { .. })));
}

pub async fn purge_removes_every_message(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let sent = engine
        .send(&queue("q"), vec![entry("1"), entry("2"), entry("3")])
        .await
        .unwrap();
    take(&engine, "q", 1, None).await;
    assert_eq!(engine.purge_queue(&queue("q")).await.unwrap(), 3);
    let stats = engine.get_queue(&queue("q")).await.unwrap().stats;
    assert_eq!((stats.depth(), stats.purged_total), (0, 3));
    let status = engine
        .message_status(&queue("q"), sent[2].id)
        .await
        .unwrap();
    assert_eq!(status.status, MessageStatus::Purged);
}

pub async fn retention_expires_old_messages(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    let config = QueueConfig {
        retention_ms: 60_000,
        ..QueueConfig::default()
    };
    create(&engine, "q", config).await;
    let sent = engine.send(&queue("q"), vec![entry("old")]).await.unwrap();
    harness.advance(&engine, 30_000).await;
    engine
        .send(&queue("q"), vec![entry("young")])
        .await
        .unwrap();
    harness.advance(&engine, 30_001).await;
    let left: Vec<String> = take(&engine, "q", 10, None)
        .await
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    assert_eq!(left, vec!["young".to_string()]);
    let status = engine
        .message_status(&queue("q"), sent[0].id)
        .await
        .unwrap();
    assert_eq!(status.status, MessageStatus::Expired);
    assert_eq!(
        engine
            .get_queue(&queue("q"))
            .await
            .unwrap()
            .stats
            .expired_total,
        1
    );
}

pub async fn the_status_of_a_message_tells_its_history(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let sent = engine.send(&queue("q"), vec![entry("m")]).await.unwrap();
    let id = sent[0].id;
    assert_eq!(
        engine.message_status(&queue("q"), id).await.unwrap().status,
        MessageStatus::Pending
    );
    let got = take(&engine, "q", 1, None).await;
    assert_eq!(
        engine.message_status(&queue("q"), id).await.unwrap().status,
        MessageStatus::Processing
    );
    engine
        .nack(&queue("q"), vec![got[0].1], None)
        .await
        .unwrap();
    let got = take(&engine, "q", 1, None).await;
    engine.ack(&queue("q"), vec![got[0].1]).await.unwrap();
    let record = engine.message_status(&queue("q"), id).await.unwrap();
    assert_eq!(record.status, MessageStatus::Completed);
    let kinds: Vec<HistoryEventKind> = record.history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            HistoryEventKind::Sent,
            HistoryEventKind::Received,
            HistoryEventKind::Nacked,
            HistoryEventKind::Received,
            HistoryEventKind::Acked
        ]
    );
    let unknown = engine
        .message_status(&queue("q"), crate::new_message_id())
        .await;
    assert!(matches!(unknown, Err(EngineError::MessageNotFound { .. })));
}

pub async fn a_long_poll_returns_as_soon_as_a_message_arrives(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let options = ReceiveOptions {
                max: 1,
                wait_ms: Some(20_000),
                visibility_timeout_ms: None,
            };
            engine.receive(&queue("q"), options).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine
        .send(&queue("q"), vec![entry("hello")])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the long poll answered before its wait ended")
        .unwrap()
        .unwrap();
    assert_eq!(&*got[0].body, "hello");
}

pub async fn waiting_receives_are_bounded(harness: &dyn Harness) {
    let engine = harness
        .engine(EngineConfig {
            max_waiting_receives: 1,
            ..EngineConfig::default()
        })
        .await;
    create(&engine, "q", QueueConfig::default()).await;
    let wait = ReceiveOptions {
        max: 1,
        wait_ms: Some(5_000),
        visibility_timeout_ms: None,
    };
    let first = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.receive(&queue("q"), wait).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = engine.receive(&queue("q"), wait).await;
    assert!(
        matches!(second, Err(EngineError::TooManyWaiters { limit: 1 })),
        "{second:?}"
    );
    engine.send(&queue("q"), vec![entry("m")]).await.unwrap();
    assert_eq!(first.await.unwrap().unwrap().len(), 1);
}

pub async fn shutdown_ends_waiting_receives_with_no_messages(harness: &dyn Harness) {
    let engine = fresh(harness).await;
    create(&engine, "q", QueueConfig::default()).await;
    let waiter = {
        let engine = engine.clone();
        tokio::spawn(async move {
            let options = ReceiveOptions {
                max: 1,
                wait_ms: Some(20_000),
                visibility_timeout_ms: None,
            };
            engine.receive(&queue("q"), options).await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.begin_shutdown();
    let got = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("shutdown ended the wait")
        .unwrap()
        .unwrap();
    assert!(got.is_empty());
}
