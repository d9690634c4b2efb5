//! The `max_depth` and in-flight limits.

use super::*;

// ---------------------------------------------------------------------------------------------
// Limits: max_depth and in-flight.

#[test]
fn send_beyond_max_depth_is_refused_and_changes_nothing() {
    check(standard().max_depth(2), "send a => a; send b c => err QueueFull(1/2); stats => visible=1 sent=1; send b => b; send c => err QueueFull(2/2); recv 1; ack a; send c => c");
}

#[test]
fn duplicates_do_not_count_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a:d=x b => a b; send c:d=x => dup:a; send d:d=y e:d=y => err QueueFull(2/2)",
    );
}

#[test]
fn repeats_within_a_batch_count_once_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a; send b:d=y c:d=y => b dup:b; stats => visible=2 sent=3 duplicates=1",
    );
}

#[test]
fn messages_in_flight_and_delayed_count_toward_max_depth() {
    check(
        standard().max_depth(2),
        "send a b:delay=100; recv 1; send c => err QueueFull(2/2)",
    );
}

#[test]
fn standard_receive_at_the_in_flight_limit_is_refused() {
    check(standard().in_flight_max(2), "send a b c d; recv 1 => a; recv 5 => b; recv 1 => err TooManyInFlight(2); stats => visible=2 in_flight=2 sent=4 received=2; ack a; recv 5 => c; nack c; recv 5 => c");
}

#[test]
fn standard_receive_at_the_in_flight_limit_with_nothing_visible_is_empty() {
    check(
        standard().in_flight_max(1),
        "send a b:delay=10; recv 1 => a; recv 1 => -",
    );
}

#[test]
fn fifo_receive_at_the_in_flight_limit_is_empty() {
    check(
        fifo().in_flight_max(2),
        "send a:g=1 b:g=2 c:g=3; recv 5 => a b; recv 1 => -; ack b; recv 5 => c",
    );
}
