//! SQS's receipt rules (`Queue::delete`, `Queue::change_visibility_of_message`): any receipt
//! ever issued for a message acts on it, and only receipts never issued are invalid. The
//! native rule (`ack`, `nack`, `change_visibility`: the current lease only) is unchanged.

use super::*;

// ---------------------------------------------------------------------------------------------
// Delete on a standard queue.

#[test]
fn delete_by_the_current_receipt() {
    check(standard(), "send a; recv 1; del a => ok; stats => sent=1 received=1 acked=1; status a => COMPLETED: sent received acked; recv 1 => -");
}

#[test]
fn delete_by_an_expired_receipt_deletes_the_visible_message() {
    check(standard(), "send a; recv 1 vt=10; +10; del a => ok; recv 1 => -; stats => sent=1 received=1 acked=1; status a => COMPLETED: sent received nacked acked");
}

#[test]
fn delete_by_a_superseded_receipt_deletes_the_message_received_again() {
    check(standard(), "send a; recv 1 vt=10; +10; recv 1 => a; del a#1 => ok; stats => sent=1 received=2 acked=1; +30000; recv 1 => -; del a#2 => gone; ack a#2 => stale");
}

#[test]
fn delete_by_any_receipt_deletes_a_delayed_message() {
    check(standard(), "send a; recv 1; nack a 1000; del a => ok; +1000; recv 1 => -; stats => sent=1 received=1 acked=1 nacked=1");
}

#[test]
fn delete_of_a_message_that_left_is_gone() {
    check(standard(), "send a b; recv 2; del a; del a => gone; purge => 1; del b => gone; stats => sent=2 received=2 acked=1 purged=1");
    check(
        standard().retention_ms(60_000),
        "send a; recv 1; +60000; del a => gone",
    );
    check(
        standard().dead_letter(1),
        "send a; recv 1 vt=10; +10; tick; moved => a; del a => gone",
    );
}

#[test]
fn delete_by_a_receipt_never_issued_is_invalid_and_changes_nothing() {
    check(standard(), "send a; recv 1; del a!epoch => invalid; del a!seq => invalid; del a!zero => invalid; del a!lease => invalid; stats => in_flight=1 sent=1 received=1; del a => ok");
}

#[test]
fn the_native_ack_still_takes_only_the_current_lease() {
    check(
        standard(),
        "send a; recv 1 vt=10; +10; ack a => stale; recv 1 => a; ack a#1 => stale; del a#1 => ok",
    );
}

/// A receipt whose parts are each real but were never issued together (the lease of one
/// message with the sequence of another) is invalid: it must not delete the other message.
#[test]
fn a_receipt_spliced_from_two_receipts_is_invalid() {
    let mut h = Harness::new(&standard());
    h.run("send a b");
    h.run("recv 2");
    let (a, b) = (h.receipt("a"), h.receipt("b"));
    let spliced = ReceiptHandle { seq: b.seq, ..a };
    assert_eq!(h.queue.delete(h.now, &spliced), Err(ReceiptError::Invalid));
    assert_eq!(
        h.queue.change_visibility_of_message(h.now, &spliced, 0),
        Err(ReceiptError::Invalid)
    );
    assert_eq!(h.queue.depth(), 2);
}

#[test]
fn a_receipt_of_another_queue_or_incarnation_is_invalid() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    h.run("recv 1");
    let receipt = h.receipt("a");
    let mut other = Queue::new(
        QueueName::new("q").unwrap(),
        QueueConfig::default(),
        QueueLimits::default(),
        EPOCH + 1,
    )
    .unwrap();
    other
        .send(h.now, vec![SendEntry::new(MessageId::from_u128(9), "x")])
        .unwrap();
    other.receive(h.now, 1, None).unwrap();
    assert_eq!(other.delete(h.now, &receipt), Err(ReceiptError::Invalid));
    assert_eq!(other.depth(), 1);
}

#[test]
fn a_delete_read_back_from_text_deletes() {
    let mut h = Harness::new(&standard().visibility_ms(10));
    h.run("send a");
    h.run("recv 1");
    h.run("+10");
    h.run("recv 1");
    let first = ReceiptHandle::parse(&h.receipt("a#1").to_string()).unwrap();
    assert_eq!(
        h.queue
            .delete(h.now, &first)
            .map(|acked| acked.map(|a| a.id)),
        Ok(Some(h.id("a")))
    );
}

// ---------------------------------------------------------------------------------------------
// Delete on a FIFO queue.

#[test]
fn fifo_delete_by_an_expired_receipt_is_refused_and_changes_nothing() {
    check(fifo(), "send a:g=1 b:g=1; recv 1 vt=10 => a; +10; del a => stale; stats => visible=2 oldest_age_ms=10 sent=2 received=1; recv 1 => a; del a => ok");
}

#[test]
fn fifo_delete_by_an_extended_receipt_after_its_first_deadline() {
    check(
        fifo(),
        "send a:g=1; recv 1 vt=10; mvis a 100 => ok; +50; del a => ok; recv 1 => -",
    );
}

#[test]
fn fifo_delete_by_a_superseded_receipt_of_a_message_in_flight() {
    check(
        fifo(),
        "send a:g=1 b:g=1; recv 1 vt=10 => a; +10; recv 1 => a; del a#1 => ok; recv 1 => b",
    );
}

#[test]
fn fifo_delete_of_a_deleted_message_is_gone() {
    check(fifo(), "send a:g=1; recv 1; del a => ok; del a => gone");
}

// ---------------------------------------------------------------------------------------------
// Visibility changes.

#[test]
fn visibility_by_a_superseded_receipt_sets_the_current_lease() {
    check(standard(), "send a; recv 1 vt=10; +10; recv 1 vt=10 => a; mvis a#1 100 => ok; +10; recv 1 => -; +89; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn visibility_by_an_expired_receipt_leaves_a_visible_message_visible() {
    check(standard(), "send a; recv 1 vt=10; +10; mvis a 100 => not_in_flight; recv 1 => a; stats => in_flight=1 oldest_age_ms=10 sent=1 received=2");
    check(
        standard(),
        "send a; recv 1; nack a 50; mvis a 1000 => not_in_flight; +50; recv 1 => a",
    );
}

#[test]
fn visibility_of_a_deleted_message_is_gone() {
    check(standard(), "send a; recv 1; del a; mvis a 10 => gone");
    check(fifo(), "send a:g=1; recv 1; del a; mvis a 10 => gone");
}

#[test]
fn visibility_zero_releases_the_message() {
    check(standard(), "send a; recv 1; mvis a 0 => ok; recv 1 => a; stats => in_flight=1 sent=1 received=2 nacked=1; mvis a#1 0 => ok; recv 1 => a");
}

#[test]
fn visibility_by_a_receipt_never_issued_is_invalid() {
    check(standard(), "send a; recv 1; mvis a!epoch 0 => invalid; mvis a!seq 0 => invalid; stats => in_flight=1 sent=1 received=1");
}

proptest! {
    /// On a standard queue every receipt a message was ever given deletes it while it is
    /// here, whatever happened since; the other messages stay.
    #[test]
    fn any_issued_receipt_deletes_its_message(
        steps in proptest::collection::vec((0u64..30, 1u32..4), 1..12),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = Harness::new(&standard().visibility_ms(10));
        h.run("send a b c");
        for (ms, max) in steps {
            h.run(&format!("+{ms}"));
            h.run(&format!("recv {max}"));
        }
        let issued: Vec<(String, ReceiptHandle)> = h
            .receipts
            .iter()
            .flat_map(|(label, receipts)| receipts.iter().map(move |r| (label.clone(), *r)))
            .collect();
        prop_assume!(!issued.is_empty());
        let (label, receipt) = pick.get(&issued).clone();
        let deleted = h.queue.delete(h.now, &receipt).unwrap().map(|acked| acked.id);
        prop_assert_eq!(deleted, Some(h.id(&label)));
        prop_assert_eq!(h.queue.depth(), 2);
        prop_assert_eq!(h.queue.delete(h.now, &receipt), Ok(None));
        check_invariants(&h.queue);
    }
}
