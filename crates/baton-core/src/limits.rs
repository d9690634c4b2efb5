//! Every limit of the queue semantics, named once. The wire layers (native and SQS) validate
//! against these same constants so that both APIs agree.

/// Largest message: body plus attribute names, types and values (SQS's limit since 2026).
pub const MESSAGE_BYTES_MAX: u32 = 1024 * 1024;
/// Smallest value `max_message_bytes` may be set to (as SQS).
pub const MESSAGE_BYTES_MIN: u32 = 1024;
/// Message attributes per message (as SQS).
pub const MESSAGE_ATTRIBUTES_MAX: usize = 10;
/// Longest message attribute name (as SQS).
pub const ATTRIBUTE_NAME_CHARS_MAX: usize = 256;
/// Longest message attribute data type, including a custom `.label` (as SQS).
pub const ATTRIBUTE_TYPE_CHARS_MAX: usize = 256;

/// Messages or records in one write call, the same on every write path: a queue send, a
/// topic publish (`topic::PUBLISH_BATCH_MAX`), a stream append (`stream::APPEND_BATCH_MAX`).
pub const WRITE_BATCH_MAX: usize = 1000;
/// Messages in one native send call.
pub const SEND_BATCH_MAX: usize = WRITE_BATCH_MAX;
/// Messages one receive may return.
pub const RECEIVE_MAX: u32 = 1000;
/// Receipts in one ack or nack call.
pub const RECEIPT_BATCH_MAX: usize = 1000;
/// Longest long poll.
pub const WAIT_MS_MAX: u64 = 20_000;

pub const VISIBILITY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Longest visibility timeout and longest nack delay (12 hours, as SQS).
pub const VISIBILITY_TIMEOUT_MS_MAX: u64 = 12 * 60 * 60 * 1000;
/// Longest default delay of a queue (its `delay_ms`) and longest delay of an SQS send (15
/// minutes, as SQS). A native send may be delayed up to the queue's retention.
pub const DELAY_MS_MAX: u64 = 15 * 60 * 1000;
pub const RETENTION_MS_DEFAULT: u64 = 4 * 24 * 60 * 60 * 1000;
pub const RETENTION_MS_MIN: u64 = 60 * 1000;
pub const RETENTION_MS_MAX: u64 = 14 * 24 * 60 * 60 * 1000;
pub const MAX_RECEIVE_COUNT_MAX: u32 = 1000;

/// How long a deduplication id suppresses repeats (5 minutes, as SQS).
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Longest deduplication id and group id (as SQS).
pub const DEDUP_ID_CHARS_MAX: usize = 128;
pub const GROUP_ID_CHARS_MAX: usize = 128;

/// In-flight messages per queue (as SQS).
pub const IN_FLIGHT_MAX_STANDARD: u32 = 120_000;
pub const IN_FLIGHT_MAX_FIFO: u32 = 20_000;

/// History events kept per message; beyond it the oldest events after `sent` are dropped.
pub const HISTORY_EVENTS_MAX: usize = 64;
/// How long a finished message's status stays queryable, and how many are kept per queue.
pub const STATUS_RETENTION_MS_DEFAULT: u64 = 60 * 60 * 1000;
pub const STATUS_RECORDS_MAX_DEFAULT: u32 = 100_000;

/// Limits that operators may lower or raise; the defaults are the SQS values above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub in_flight_max_standard: u32,
    pub in_flight_max_fifo: u32,
    pub status_retention_ms: u64,
    pub status_records_max: u32,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            in_flight_max_standard: IN_FLIGHT_MAX_STANDARD,
            in_flight_max_fifo: IN_FLIGHT_MAX_FIFO,
            status_retention_ms: STATUS_RETENTION_MS_DEFAULT,
            status_records_max: STATUS_RECORDS_MAX_DEFAULT,
        }
    }
}

/// Most messages one peek (`Queue::peek`, the dashboard's message browser) returns.
pub const PEEK_MAX: u32 = 100;
