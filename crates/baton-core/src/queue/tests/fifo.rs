//! FIFO queues: groups in strict order, one batch in flight per group, dedup across groups.

use super::*;

// ---------------------------------------------------------------------------------------------
// FIFO.

#[test]
fn fifo_requires_a_group_id() {
    check(
        fifo(),
        "send a => err GroupIdRequired; send a:g=1 b => err GroupIdRequired; stats => -",
    );
}

#[test]
fn fifo_requires_a_dedup_id_or_content_based_dedup() {
    check(
        fifo().content_dedup(false),
        "send a:g=1 => err DedupIdRequired; send a:g=1:d=x => a; send b:g=1:d=x => dup:a",
    );
}

#[test]
fn fifo_group_is_received_in_strict_order() {
    check(fifo(), "send a:g=1 b:g=1 c:g=1 => a b c; recv 1 => a; recv 1 => -; ack a; recv 1 => b; ack b; recv 5 => c");
}

#[test]
fn fifo_receive_takes_consecutive_messages_of_each_group() {
    check(fifo(), "send a:g=1 b:g=2 c:g=1 d:g=2 e:g=1; recv 3 => a c e; recv 3 => b d; delivery c => rc=1 sent=0 first=0 group=1");
}

#[test]
fn fifo_group_in_flight_is_not_handed_to_another_receive() {
    check(fifo(), "send a:g=1 b:g=1 c:g=2; recv 1 => a; recv 10 => c; recv 10 => -; ack c; recv 10 => -; +30000; recv 10 => a b");
}

#[test]
fn fifo_groups_proceed_in_parallel() {
    check(fifo(), "send a:g=1 b:g=1 c:g=2 d:g=2; recv 1 => a; recv 1 => c; ack c; recv 1 => d; ack a; recv 1 => b");
}

#[test]
fn fifo_serves_the_group_with_the_oldest_head_first() {
    check(
        fifo(),
        "send a:g=2 b:g=1 c:g=2; recv 1 => a; recv 1 => b; recv 1 => -; ack a; recv 1 => c",
    );
}

#[test]
fn fifo_nack_returns_the_message_to_the_head_of_its_group() {
    check(fifo(), "send a:g=1 b:g=1; recv 1 => a; nack a => ok; recv 10 => a b; delivery a => rc=2 sent=0 first=0 group=1");
}

#[test]
fn fifo_nack_inside_a_batch_waits_for_the_rest_of_the_batch() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=1; recv 2 => a b; nack a; recv 5 => -; ack b; recv 5 => a c",
    );
}

#[test]
fn fifo_nack_with_delay_holds_back_the_group() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=2; recv 1 => a; nack a 100; recv 10 => c; +100; recv 10 => a b",
    );
}

#[test]
fn fifo_expired_lease_returns_the_message_to_the_head() {
    check(
        fifo(),
        "send a:g=1 b:g=1; recv 1 vt=10 => a; +10; recv 5 => a b",
    );
}

#[test]
fn fifo_delayed_head_holds_back_its_group() {
    check(
        fifo(),
        "send a:g=1:delay=100 b:g=1 c:g=2; recv 10 => c; +100; recv 10 => a b",
    );
}

#[test]
fn fifo_dead_lettering_unblocks_the_group() {
    check(
        fifo().dead_letter(1),
        "send a:g=1 b:g=1; recv 1 => a; nack a; moved => a; recv 5 => b",
    );
}

#[test]
fn fifo_purge_empties_every_group() {
    check(
        fifo(),
        "send a:g=1 b:g=1 c:g=2; recv 1 => a; purge => 3; send d:g=1 => d; recv 10 => d",
    );
}

#[test]
fn fifo_expiry_unblocks_the_group() {
    check(
        fifo().retention_ms(60_000),
        "send a:g=1; +1; send b:g=1; recv 1 vt=43200000 => a; +59999; recv 1 => b",
    );
}

#[test]
fn fifo_dedup_id_applies_across_groups() {
    check(
        fifo().content_dedup(false),
        "send a:g=1:d=x b:g=2:d=x => a dup:a",
    );
}
