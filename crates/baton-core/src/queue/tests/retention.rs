//! Retention, purge, stats, and the status records kept after a message ends.

use super::*;

// ---------------------------------------------------------------------------------------------
// Retention, purge, stats.

#[test]
fn messages_expire_after_retention() {
    check(standard().retention_ms(60_000), "send a; +30000; send b; +29999; stats => visible=2 oldest_age_ms=59999 sent=2; +1; stats => visible=1 oldest_age_ms=30000 sent=2 expired=1; status a => EXPIRED: sent expired; recv 10 => b");
}

#[test]
fn messages_in_flight_and_delayed_expire_too() {
    check(standard().retention_ms(60_000), "send a b:delay=100; recv 1 vt=43200000 => a; +60000; ack a => stale; stats => sent=2 received=1 expired=2; status a => EXPIRED: sent received expired; status b => EXPIRED: sent expired");
}

#[test]
fn retention_counts_from_the_original_send() {
    check(standard().retention_ms(60_000), "send a; recv 1 vt=10; +59990; recv 1 => a; nack a; +9; recv 1 => a; +1; recv 1 => -; stats => sent=1 received=3 nacked=1 expired=1");
}

#[test]
fn purge_deletes_every_message_in_any_state() {
    check(standard(), "send a b c:delay=100; recv 1 => a; purge => 3; stats => sent=3 received=1 purged=3; status a => PURGED: sent received purged; status c => PURGED: sent purged; recv 10 => -; purge => 0; send d => d");
}

#[test]
fn stats_report_depth_by_state_and_totals() {
    check(standard().dead_letter(1), "send a b c:delay=10 d:d=x e:d=x => a b c d dup:d; recv 2 => a b; ack a; nack b; moved => b; +5; stats => visible=1 delayed=1 oldest_age_ms=5 sent=5 duplicates=1 received=2 acked=1 nacked=1 dead_lettered=1; recv 1 => d; +5; stats => visible=1 in_flight=1 oldest_age_ms=10 sent=5 duplicates=1 received=3 acked=1 nacked=1 dead_lettered=1");
}

#[test]
fn oldest_age_is_zero_when_empty() {
    check(standard(), "stats => -; send a; +25; stats => visible=1 oldest_age_ms=25 sent=1; recv 1; ack a; stats => sent=1 received=1 acked=1");
}

#[test]
fn next_visible_at_is_the_earliest_delay_or_lease_end() {
    check(standard(), "next => -; send a:delay=50; next => 50; send b; recv 1 vt=20 => b; next => 20; +20; tick; next => 50; +30; tick; next => -");
}

// ---------------------------------------------------------------------------------------------
// Status records.

#[test]
fn unknown_message_has_no_status() {
    check(standard(), "status nobody => none");
}

#[test]
fn status_of_a_finished_message_is_kept_for_status_retention() {
    check(standard().status_retention_ms(1000), "send a; recv 1; ack a; records => 1; +999; status a => COMPLETED: sent received acked; +1; status a => none; records => 0");
}

#[test]
fn status_records_beyond_the_maximum_evict_the_oldest() {
    check(standard().status_records_max(2), "send a b c; recv 3; ack a; +1; ack b; +1; ack c; records => 2; status a => none; status b => COMPLETED: sent received acked; status c => COMPLETED: sent received acked");
}

#[test]
fn zero_status_records_keeps_none() {
    check(
        standard().status_records_max(0),
        "send a; recv 1; ack a; records => 0; status a => none",
    );
}

#[test]
fn history_is_capped_and_keeps_the_sent_event() {
    let mut h = Harness::new(&standard());
    h.run("send a");
    for i in 0..40u64 {
        h.now = at(i);
        assert_eq!(h.run("recv 1"), "a");
        assert_eq!(h.run("nack a"), "ok");
    }
    let id = h.id("a");
    let history = h.queue.status(id).unwrap().history;
    assert_eq!(history.len(), HISTORY_EVENTS_MAX);
    assert_eq!(history[0].kind, HistoryEventKind::Sent);
    let last = history.last().unwrap();
    assert_eq!(
        (last.kind, last.at, last.receive_count),
        (HistoryEventKind::Nacked, at(39), 40)
    );
    assert_eq!(last.detail.as_deref(), Some("nacked"));
    let second = &history[1];
    assert_eq!(
        (second.kind, second.receive_count),
        (HistoryEventKind::Nacked, 9),
        "the oldest later events were dropped"
    );
}

#[test]
fn history_says_why_a_lease_ended() {
    let mut h = Harness::new(&standard());
    for step in [
        "send a",
        "recv 1 vt=10",
        "+10",
        "recv 1",
        "vis a 0",
        "recv 1",
        "nack a",
    ] {
        h.run(step);
    }
    let id = h.id("a");
    let details: Vec<Option<String>> = h
        .queue
        .status(id)
        .unwrap()
        .history
        .into_iter()
        .filter(|e| e.kind == HistoryEventKind::Nacked)
        .map(|e| e.detail)
        .collect();
    let expected =
        ["visibility timeout expired", "released", "nacked"].map(|s| Some(s.to_string()));
    assert_eq!(details, expected);
}
