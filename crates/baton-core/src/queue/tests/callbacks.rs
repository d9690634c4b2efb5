//! Callback outcomes on status records.

use super::*;

// ---------------------------------------------------------------------------------------------
// Callback outcomes on status records.

fn kinds(record: &StatusRecord) -> Vec<&'static str> {
    record.history.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn callback_failure_marks_a_completed_message_and_success_restores_completed() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(1), 1, None).unwrap().remove(0);
    queue.ack(at(2), &delivery.receipt).unwrap();
    let id = delivery.id;

    let failed = queue
        .record_callback(at(3), id, false, Some("HTTP 500".to_string()))
        .unwrap();
    assert_eq!(failed.status, MessageStatus::CallbackFailed);
    assert_eq!(
        kinds(&failed),
        ["sent", "received", "acked", "callback_failed"]
    );
    let last = failed.history.last().unwrap();
    assert_eq!(
        (last.at, last.receive_count, last.detail.as_deref()),
        (at(3), 1, Some("HTTP 500"))
    );
    assert_eq!(queue.callback_failed(10), vec![failed]);

    let done = queue.record_callback(at(4), id, true, None).unwrap();
    assert_eq!(done.status, MessageStatus::Completed);
    assert_eq!(
        kinds(&done),
        [
            "sent",
            "received",
            "acked",
            "callback_failed",
            "callback_succeeded"
        ]
    );
    assert_eq!(queue.status(id).unwrap(), done);
    assert!(queue.callback_failed(10).is_empty());
}

#[test]
fn callback_success_after_a_dead_letter_keeps_dead_lettered() {
    let mut queue = standard().dead_letter(1).queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(0), 1, None).unwrap().remove(0);
    queue.nack(at(1), &delivery.receipt, None).unwrap();
    let id = delivery.id;
    let failed = queue.record_callback(at(2), id, false, None).unwrap();
    assert_eq!(failed.status, MessageStatus::CallbackFailed);
    let done = queue.record_callback(at(3), id, true, None).unwrap();
    assert_eq!(done.status, MessageStatus::DeadLettered);
}

#[test]
fn callback_outcome_of_an_unknown_or_live_message_changes_nothing() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let live = MessageId::from_u128(1);
    let before = queue.status(live);
    assert_eq!(queue.record_callback(at(1), live, false, None), None);
    assert_eq!(queue.status(live), before);
    assert_eq!(
        queue.record_callback(at(1), MessageId::from_u128(99), true, None),
        None
    );
}

#[test]
fn callback_history_stays_bounded() {
    let mut queue = standard().queue();
    queue.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = queue.receive(at(0), 1, None).unwrap().remove(0);
    queue.ack(at(0), &delivery.receipt).unwrap();
    for i in 0..(HISTORY_EVENTS_MAX as u64 * 2) {
        queue
            .record_callback(at(i), delivery.id, false, None)
            .unwrap();
    }
    let record = queue.status(delivery.id).unwrap();
    assert_eq!(record.history.len(), HISTORY_EVENTS_MAX);
    assert_eq!(record.history[0].kind, HistoryEventKind::Sent);
}
