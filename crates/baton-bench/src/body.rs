//! Message bodies that carry their own send times, and the open-loop schedule.
//!
//! A body starts with two 16-digit lowercase hex numbers: the nanoseconds since the Unix epoch
//! at which the message was actually sent, then the time it was scheduled to be sent (equal
//! without `--rate`). The rest is `x` up to the requested size. Producer and consumer read the
//! same wall clock (one machine), so `receive time − sent time` is the end-to-end latency.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bytes of the timestamps at the start of every body.
pub const HEADER_BYTES: u32 = 32;

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// A body of exactly `len_bytes` bytes (at least [`HEADER_BYTES`]) carrying both times.
pub fn encode(sent_ns: u64, scheduled_ns: u64, len_bytes: u32) -> String {
    assert!(HEADER_BYTES <= len_bytes, "a body holds its two timestamps");
    let len = usize::try_from(len_bytes).unwrap_or(usize::MAX);
    let mut body = String::with_capacity(len);
    let _ = write!(body, "{sent_ns:016x}{scheduled_ns:016x}");
    // Copies of a ready filler, not a push per character (a fifth of the load generator's CPU
    // time once) nor bytes that then need UTF-8 validation.
    while body.len() < len {
        let n = (len - body.len()).min(FILLER.len());
        body.push_str(FILLER.get(..n).unwrap_or_default());
    }
    body
}

/// What follows the timestamps in every body.
static FILLER: &str = concat!(
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
);

/// The `(sent_ns, scheduled_ns)` of a body made by [`encode`]; `None` for any other body.
pub fn decode(body: &str) -> Option<(u64, u64)> {
    let sent = u64::from_str_radix(body.get(0..16)?, 16).ok()?;
    let scheduled = u64::from_str_radix(body.get(16..32)?, 16).ok()?;
    Some((sent, scheduled))
}

/// When message number `index` (counted over all producers from 0) is due, measured from the
/// start of the run, at `rate_per_s` messages a second. `rate_per_s` must not be 0.
///
/// The schedule depends only on the index, never on when earlier messages went out, so a slow
/// broker cannot slow the offered load (no coordinated omission): a late producer sends at once
/// and the latency from the scheduled time includes the wait.
pub fn scheduled_offset(index: u64, rate_per_s: u64) -> Duration {
    assert!(rate_per_s != 0, "an unthrottled run has no schedule");
    let nanos = u128::from(index) * 1_000_000_000 / u128::from(rate_per_s);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_both_times_and_has_the_requested_size() {
        let body = encode(1_700_000_000_123_456_789, 1_700_000_000_000_000_000, 1024);
        assert_eq!(body.len(), 1024);
        assert_eq!(
            decode(&body),
            Some((1_700_000_000_123_456_789, 1_700_000_000_000_000_000))
        );
        let smallest = encode(u64::MAX, 0, HEADER_BYTES);
        assert_eq!(smallest.len(), 32);
        assert_eq!(decode(&smallest), Some((u64::MAX, 0)));
    }

    #[test]
    fn foreign_bodies_do_not_decode() {
        assert_eq!(decode("hello"), None);
        assert_eq!(decode(&"z".repeat(40)), None);
        assert_eq!(decode(""), None);
    }

    #[test]
    fn schedule_spaces_messages_evenly_from_the_start() {
        assert_eq!(scheduled_offset(0, 1000), Duration::ZERO);
        assert_eq!(scheduled_offset(1, 1000), Duration::from_millis(1));
        assert_eq!(scheduled_offset(2500, 1000), Duration::from_millis(2500));
        assert_eq!(scheduled_offset(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(
            scheduled_offset(u64::MAX, 1),
            Duration::from_nanos(u64::MAX)
        );
    }
}
