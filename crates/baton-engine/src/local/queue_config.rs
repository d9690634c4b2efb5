//! How two queue configurations differ, for `queue_exists` answers that name the difference.

use super::*;

/// The attributes in which `existing` and `requested` differ, as `field is a, requested b`.
pub(crate) fn differences(existing: &QueueConfig, requested: &QueueConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |field: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{field} is {a}, requested {b}"));
        }
    };
    check(
        "fifo",
        existing.fifo.to_string(),
        requested.fifo.to_string(),
    );
    check(
        "visibility_timeout_ms",
        existing.visibility_timeout_ms.to_string(),
        requested.visibility_timeout_ms.to_string(),
    );
    check(
        "delay_ms",
        existing.delay_ms.to_string(),
        requested.delay_ms.to_string(),
    );
    check(
        "retention_ms",
        existing.retention_ms.to_string(),
        requested.retention_ms.to_string(),
    );
    check(
        "max_message_bytes",
        existing.max_message_bytes.to_string(),
        requested.max_message_bytes.to_string(),
    );
    check(
        "receive_wait_ms",
        existing.receive_wait_ms.to_string(),
        requested.receive_wait_ms.to_string(),
    );
    check(
        "dead_letter",
        format!("{:?}", existing.dead_letter),
        format!("{:?}", requested.dead_letter),
    );
    check(
        "content_based_dedup",
        existing.content_based_dedup.to_string(),
        requested.content_based_dedup.to_string(),
    );
    check(
        "max_depth",
        format!("{:?}", existing.max_depth),
        format!("{:?}", requested.max_depth),
    );
    check(
        "retry",
        format!("{:?}", existing.retry),
        format!("{:?}", requested.retry),
    );
    out
}
