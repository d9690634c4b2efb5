//! Dead-lettering after `max_receive_count`, and redrive from a dead-letter queue.

use super::*;

// ---------------------------------------------------------------------------------------------
// Dead-lettering and redrive.

#[test]
fn nack_after_max_receive_count_dead_letters() {
    check(standard().dead_letter(2), "send a b; recv 1 => a; nack a; moved => -; recv 1 => a; nack a => ok; moved => a; moved => -; status a => DEAD_LETTERED: sent received nacked received nacked dead_lettered; stats => visible=1 sent=2 received=2 nacked=2 dead_lettered=1; recv 10 => b");
}

#[test]
fn lease_expiry_after_max_receive_count_dead_letters() {
    check(standard().dead_letter(2), "send a; recv 1 vt=10; +10; recv 1 vt=10 => a; +9; moved => -; tick; moved => -; +1; recv 1 => -; moved => a; ack a => stale; stats => sent=1 received=2 dead_lettered=1");
}

#[test]
fn release_after_max_receive_count_dead_letters() {
    check(
        standard().dead_letter(1),
        "send a; recv 1; vis a 0 => ok; moved => a; recv 1 => -",
    );
}

#[test]
fn ack_on_the_last_allowed_receive_completes() {
    check(
        standard().dead_letter(1),
        "send a; recv 1; ack a => ok; moved => -; status a => COMPLETED: sent received acked",
    );
}

#[test]
fn moved_message_carries_its_content_and_history() {
    let mut source = standard().dead_letter(1).queue();
    let mut one = entry(1, "payload");
    one.attributes = attributes(&[("k", "String", text("v"))]);
    one.dedup_id = Some("d".to_string());
    one.group_id = Some("g".to_string());
    one.notify = Some(Notify {
        url: "http://x".to_string(),
        headers: vec![],
    });
    source.send(at(5), vec![one.clone()]).unwrap();
    let delivery = source.receive(at(6), 1, None).unwrap().remove(0);
    source.nack(at(7), &delivery.receipt, None).unwrap();
    let moved = source.take_moved();
    assert_eq!(moved.len(), 1);
    let m = &moved[0];
    assert_eq!(
        (m.id, &*m.body, &m.attributes),
        (one.id, "payload", &one.attributes)
    );
    assert_eq!(
        (m.group_id.as_deref(), m.dedup_id.as_deref()),
        (Some("g"), Some("d"))
    );
    assert_eq!(m.notify, one.notify);
    assert_eq!(m.sent_at, at(5));
    assert_eq!(m.source.as_str(), "q");
    assert_eq!(
        m.dead_letter_source.as_ref().map(QueueName::as_str),
        Some("q")
    );
    let events: Vec<(HistoryEventKind, u64, u32)> = m
        .history
        .iter()
        .map(|e| (e.kind, e.at.as_millis(), e.receive_count))
        .collect();
    assert_eq!(
        events,
        [
            (HistoryEventKind::Sent, 5, 0),
            (HistoryEventKind::Received, 6, 1),
            (HistoryEventKind::Nacked, 7, 1),
            (HistoryEventKind::DeadLettered, 7, 1),
        ]
    );
    assert_eq!(m.history[3].detail.as_deref(), Some("moved to dlq"));
    assert_eq!(
        source.status(one.id).map(|r| r.status),
        Some(MessageStatus::DeadLettered)
    );
    check_invariants(&source);
}

#[test]
fn dead_letter_queue_accepts_moved_messages_and_redrives_them_home() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = standard().named("dlq").queue();
    source
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    for delivery in source.receive(at(0), 10, None).unwrap() {
        source.nack(at(0), &delivery.receipt, None).unwrap();
    }
    let moved = source.take_moved();
    assert_eq!(moved.len(), 2);
    for m in moved {
        dlq.accept_moved(at(10), m, HistoryEventKind::DeadLettered);
    }
    check_invariants(&dlq);
    let stats = dlq.stats(at(10));
    assert_eq!(
        (stats.visible, stats.moved_in_total, stats.sent_total),
        (2, 2, 0)
    );
    let id = MessageId::from_u128(1);
    let in_dlq = dlq.status(id).unwrap();
    assert_eq!(in_dlq.status, MessageStatus::Pending);
    let kinds: Vec<HistoryEventKind> = in_dlq.history.iter().map(|e| e.kind).collect();
    use HistoryEventKind::*;
    assert_eq!(
        kinds,
        [Sent, Received, Nacked, DeadLettered],
        "no second event for the arrival"
    );

    // The dead-letter queue delivers with a fresh receive count and the original send time.
    let delivered = dlq.receive(at(20), 1, None).unwrap();
    assert_eq!((delivered[0].id, delivered[0].receive_count), (id, 1));
    assert_eq!(
        (delivered[0].sent_at, delivered[0].first_received_at),
        (at(0), at(20))
    );

    // Redrive skips messages in flight and those from other sources, and takes at most `max`.
    let from_elsewhere =
        |source: Option<&QueueName>| source.map(QueueName::as_str) == Some("other");
    assert!(dlq.take_for_redrive(at(30), 10, from_elsewhere).is_empty());
    let from_source = |source: Option<&QueueName>| source.map(QueueName::as_str) == Some("q");
    let back = dlq.take_for_redrive(at(30), 10, from_source);
    assert_eq!(
        back.iter().map(|m| m.id).collect::<Vec<_>>(),
        [MessageId::from_u128(2)]
    );
    dlq.nack(at(30), &delivered[0].receipt, None).unwrap();
    let back_too = dlq.take_for_redrive(at(40), 1, from_source);
    assert_eq!(back_too.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
    let stats = dlq.stats(at(40));
    assert_eq!((stats.depth(), stats.moved_out_total), (0, 2));
    check_invariants(&dlq);

    // Home again: live, with a `redriven` event, its dead-letter record replaced.
    assert_eq!(source.n_status_records(), 2);
    for m in back.into_iter().chain(back_too) {
        assert_eq!(m.source.as_str(), "dlq");
        source.accept_moved(at(50), m, HistoryEventKind::Redriven);
    }
    assert_eq!(source.n_status_records(), 0);
    let home = source.status(id).unwrap();
    assert_eq!(home.status, MessageStatus::Pending);
    let last = home.history.last().unwrap();
    assert_eq!(
        (last.kind, last.at, last.detail.as_deref()),
        (Redriven, at(50), Some("from dlq"))
    );
    let again = source.receive(at(50), 10, None).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.id.as_u128(), d.receive_count))
            .collect::<Vec<_>>(),
        [(2, 1), (1, 1)],
        "in the order they came home"
    );
    let stats = source.stats(at(50));
    assert_eq!((stats.dead_lettered_total, stats.moved_in_total), (2, 2));
    check_invariants(&source);
}

#[test]
fn moved_messages_are_accepted_beyond_max_depth() {
    let mut dlq = standard().named("dlq").max_depth(1).queue();
    dlq.send(at(0), vec![entry(1, "a")]).unwrap();
    let mut source = standard().dead_letter(1).queue();
    source.send(at(0), vec![entry(2, "b")]).unwrap();
    let d = source.receive(at(0), 1, None).unwrap();
    source.nack(at(0), &d[0].receipt, None).unwrap();
    for m in source.take_moved() {
        dlq.accept_moved(at(0), m, HistoryEventKind::DeadLettered);
    }
    assert_eq!(dlq.depth(), 2);
    check_invariants(&dlq);
}

#[test]
fn fifo_dead_letter_queue_groups_messages_without_a_group_by_source() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = fifo().named("dlq.fifo").queue();
    source
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    for d in source.receive(at(0), 10, None).unwrap() {
        source.nack(at(0), &d.receipt, None).unwrap();
    }
    for m in source.take_moved() {
        dlq.accept_moved(at(0), m, HistoryEventKind::DeadLettered);
    }
    check_invariants(&dlq);
    let delivered = dlq.receive(at(0), 10, None).unwrap();
    let groups: Vec<Option<&str>> = delivered.iter().map(|d| d.group_id.as_deref()).collect();
    assert_eq!(groups, [Some("q"), Some("q")]);
}
