//! Receive, ack, nack, visibility changes, and the native receipt rules.

use super::*;

// ---------------------------------------------------------------------------------------------
// Receive.

#[test]
fn receive_returns_at_most_max_oldest_first() {
    check(standard(), "send a b c d; recv 2 => a b; recv 10 => c d; recv 1 => -; stats => in_flight=4 sent=4 received=4");
}

#[test]
fn receive_refuses_bad_parameters_and_changes_nothing() {
    check(standard(), "send a; recv 0 => err InvalidParameter(max); recv 1001 => err InvalidParameter(max); recv 1 vt=43200001 => err InvalidParameter(visibility_timeout_ms); stats => visible=1 sent=1");
}

#[test]
fn receive_takes_up_to_receive_max() {
    let mut queue = standard().queue();
    for chunk in 0..2u128 {
        let batch = (0..1000)
            .map(|i| entry(chunk * 1000 + i + 1, "m"))
            .collect();
        queue.send(at(0), batch).unwrap();
    }
    assert_eq!(
        queue.receive(at(0), RECEIVE_MAX, None).unwrap().len(),
        RECEIVE_MAX as usize
    );
}

#[test]
fn received_message_is_invisible_for_the_queue_visibility_timeout() {
    check(standard().visibility_ms(1000), "send a; recv 1 => a; status a => PROCESSING: sent received; +999; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn receive_visibility_timeout_overrides_the_queue_default() {
    check(standard().visibility_ms(1000), "send a; recv 1 vt=100 => a; +99; recv 1 => -; +1; recv 1 vt=5000 => a; +4999; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn zero_visibility_timeout_leaves_the_message_visible() {
    check(
        standard(),
        "send a; recv 1 vt=0 => a; recv 1 => a; ack a#1 => stale; ack a#2 => ok",
    );
}

#[test]
fn redelivery_counts_receives_and_keeps_the_first_receive_time() {
    check(standard(), "+7; send a; +10; recv 1 vt=5 => a; delivery a => rc=1 sent=7 first=17; +5; recv 1 => a; delivery a => rc=2 sent=7 first=17; status a => PROCESSING: sent received nacked received");
}

#[test]
fn standard_receive_keeps_sequence_order_after_redelivery() {
    check(
        standard(),
        "send a b c d; recv 3 => a b c; nack c; nack a; recv 10 => a c d",
    );
}

// ---------------------------------------------------------------------------------------------
// Ack, nack, change visibility.

#[test]
fn ack_deletes_the_message_once() {
    check(standard(), "send a b; recv 1 => a; ack a => ok; ack a => stale; recv 10 => b; stats => in_flight=1 sent=2 received=2 acked=1; status a => COMPLETED: sent received acked");
}

#[test]
fn nack_without_delay_makes_the_message_visible_at_once() {
    check(standard(), "send a; recv 1 => a; nack a => ok; status a => PENDING: sent received nacked; stats => visible=1 sent=1 received=1 nacked=1; recv 1 => a; delivery a => rc=2 sent=0 first=0");
}

#[test]
fn nack_with_delay_hides_the_message_for_the_delay() {
    check(standard(), "send a; recv 1 => a; +10; nack a 100 => ok; status a => DELAYED: sent received nacked; next => 110; +99; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn nack_delay_is_capped_at_twelve_hours() {
    check(
        standard(),
        "send a; recv 1; nack a 99999999999 => ok; next => 43200000",
    );
}

#[test]
fn nack_explicit_delay_overrides_the_retry_policy() {
    check(
        standard().retry(1000, 10000),
        "send a; recv 1; nack a 0 => ok; recv 1 => a; nack a 10 => ok; next => 10",
    );
}

#[test]
fn nack_without_delay_waits_the_retry_backoff() {
    let policy = RetryPolicy {
        base_delay_ms: 100,
        max_delay_ms: 1000,
    };
    let mut h = Harness::new(&standard().retry(100, 1000));
    h.run("send a");
    for receive_count in 1..=6u32 {
        assert_eq!(h.run("recv 1"), "a");
        let seq = h.deliveries["a"].seq;
        let delay_ms = policy.delay_ms(receive_count, seq);
        let exponential = (100u64 << (receive_count - 1)).min(1000);
        assert!(
            exponential / 2 <= delay_ms && delay_ms <= exponential,
            "{receive_count}: {delay_ms}"
        );
        assert_eq!(h.run("nack a"), "ok");
        assert!(h.run("status a").starts_with("DELAYED"));
        assert_eq!(
            h.run("next"),
            h.now.plus_ms(delay_ms).as_millis().to_string()
        );
        h.now = h.now.plus_ms(delay_ms - 1);
        assert_eq!(h.run("recv 1"), "-", "{receive_count}");
        h.now = h.now.plus_ms(1);
        check_invariants(&h.queue);
    }
}

#[test]
fn nack_of_an_ended_lease_is_stale() {
    check(standard(), "send a; recv 1 vt=10; +10; nack a => stale; vis a 100 => stale; stats => visible=1 oldest_age_ms=10 sent=1 received=1");
}

#[test]
fn change_visibility_extends_the_lease_from_now() {
    check(standard(), "send a; recv 1 vt=100 => a; +50; vis a 100 => ok; +99; recv 1 => -; +1; recv 1 => a; delivery a => rc=2 sent=0 first=0");
}

#[test]
fn change_visibility_can_shorten_the_lease() {
    check(
        standard(),
        "send a; recv 1 vt=1000 => a; vis a 10 => ok; next => 10; +10; recv 1 => a",
    );
}

#[test]
fn change_visibility_to_zero_releases_the_message() {
    check(standard().retry(1000, 10000), "send a; recv 1 => a; vis a 0 => ok; stats => visible=1 sent=1 received=1 nacked=1; status a => PENDING: sent received nacked; recv 1 => a; ack a#1 => stale; ack a => ok");
}

#[test]
fn extended_lease_keeps_its_receipt() {
    check(
        standard(),
        "send a; recv 1 vt=10; vis a 1000; +500; vis a 1000 => ok; +999; ack a => ok",
    );
}

// ---------------------------------------------------------------------------------------------
// Receipts.

#[test]
fn receipt_of_another_incarnation_or_unknown_sequence_is_invalid_and_changes_nothing() {
    check(standard(), "send a; recv 1; ack a!epoch => invalid; ack a!seq => invalid; nack a!epoch => invalid; nack a!seq => invalid; vis a!epoch 0 => invalid; vis a!seq 0 => invalid; status a => PROCESSING: sent received; ack a => ok");
}

#[test]
fn receipt_with_a_sequence_zero_or_a_lease_never_issued_is_invalid() {
    check(standard(), "send a; recv 1; ack a!zero => invalid; ack a!lease => invalid; nack a!lease => invalid; ack a => ok");
}

#[test]
fn a_move_delivered_twice_keeps_one_live_copy() {
    let mut source = standard().dead_letter(1).queue();
    let mut dlq = standard().named("dlq").queue();
    source.send(at(0), vec![entry(1, "a")]).unwrap();
    let delivery = source.receive(at(0), 1, None).unwrap().remove(0);
    source.nack(at(0), &delivery.receipt, None).unwrap();
    let moved = source.take_moved().remove(0);
    assert!(dlq.accept_moved(at(1), moved.clone(), HistoryEventKind::DeadLettered));
    assert!(!dlq.accept_moved(at(1), moved, HistoryEventKind::DeadLettered));
    check_invariants(&dlq);
    assert_eq!(dlq.depth(), 1);
}

#[test]
fn receipt_after_ack_is_stale() {
    check(
        standard(),
        "send a; recv 1; ack a; ack a => stale; nack a => stale; vis a 10 => stale",
    );
}

#[test]
fn receipt_after_its_lease_expired_is_stale() {
    check(standard(), "send a; recv 1 vt=100; +99; vis a 1 => ok; +1; ack a => stale; status a => PENDING: sent received nacked");
}

#[test]
fn receipt_of_an_earlier_delivery_is_stale() {
    check(standard(), "send a; recv 1 vt=10; +10; recv 1 => a; ack a#1 => stale; nack a#1 => stale; status a => PROCESSING: sent received nacked received; ack a#2 => ok");
}

#[test]
fn receipt_after_nack_is_stale_even_when_redelivered() {
    check(
        standard(),
        "send a; recv 1; nack a; ack a#1 => stale; recv 1 => a; ack a#1 => stale; ack a#2 => ok",
    );
}

#[test]
fn receipt_after_purge_is_stale() {
    check(standard(), "send a; recv 1; purge => 1; ack a => stale");
}

#[test]
fn receipts_round_trip_through_text() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    h.run("recv 1");
    let text = h.receipt("a").to_string();
    let parsed = ReceiptHandle::parse(&text).unwrap();
    assert_eq!(
        h.queue.ack(h.now, &parsed).map(|acked| acked.id),
        Ok(h.id("a"))
    );
}

/// A receive is answered before its record is durable, so a crash can forget leases a
/// consumer already holds. The queue rebuilt from the log (here: the same sends without that
/// receive) must never hand out those lease numbers again after the restart's release.
#[test]
fn after_a_restart_no_lease_number_is_issued_twice_and_old_receipts_are_stale() {
    let message = || SendEntry {
        group_id: Some("g".to_string()),
        ..entry(1, "a")
    };
    for setup in [standard(), fifo()] {
        let mut before_crash = setup.queue();
        before_crash.send(at(0), vec![message()]).unwrap();
        let lost = before_crash
            .receive(at(1), 1, None)
            .unwrap()
            .remove(0)
            .receipt;

        let mut recovered = setup.queue();
        recovered.send(at(0), vec![message()]).unwrap();
        recovered.release_all_leases(at(2));
        let fresh = recovered.receive(at(3), 1, None).unwrap().remove(0).receipt;
        assert_ne!(fresh, lost, "{}: a lease number came back", setup.name);
        assert_eq!(
            recovered.ack(at(4), &lost),
            Err(ReceiptError::Stale),
            "{}: a receipt from before the restart",
            setup.name
        );
        assert!(recovered.ack(at(4), &fresh).is_ok(), "{}", setup.name);
    }
}
