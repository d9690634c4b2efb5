//! The event API (`/api/events/...`): the shapes of the event-delegation service's REST API, in its
//! camelCase spelling.

use serde::{Deserialize, Serialize};

/// `GET /api/events/server-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventServerInfo {
    pub server_id: String,
    pub host_name: String,
    pub version: String,
    pub uptime_ms: u64,
    pub engine: String,
    /// Workers of the built-in event processor (0: switched off).
    pub workers: u32,
}

/// An event as created and as its status is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: String,
    /// Known to the node that created the event (kept in memory, bounded); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The event API's statuses: PENDING, DELAYED, PROCESSING, COMPLETED, FAILED (dead-lettered),
    /// CALLBACK_FAILED, EXPIRED, PURGED.
    pub status: String,
    /// The queue the event lives in (`events`, or `events.fifo` for message groups).
    pub queue: String,
    pub created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processed_at: Option<u64>,
    pub receive_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication_id: Option<String>,
    /// True when `deduplicationId` was seen before: no new event was created, `eventId` is
    /// the original's.
    pub duplicate: bool,
    pub history: Vec<crate::queue::HistoryEntry>,
}

/// `GET /api/events/queue-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventQueueInfo {
    /// Events waiting, delayed or in processing.
    pub queue_size: u64,
    pub processed_count: u64,
    /// Events that used up their retries (dead-lettered).
    pub failed_count: u64,
    pub callback_failed_count: u64,
    /// Callbacks waiting for their next automatic attempt (all queues).
    pub callback_retry_queue_size: u64,
    /// Callbacks whose automatic retries are used up, waiting for a manual retry (all queues).
    pub callback_parked_count: u64,
    pub in_flight_count: u64,
    pub delayed_count: u64,
    pub dead_letter_queue_size: u64,
    pub workers: u32,
}

/// `POST /api/events/retry-callback/{eventId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventCallbackRetry {
    pub event_id: String,
    pub success: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub status: String,
}

/// `POST /api/events/performance-test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceTestResult {
    pub count: u32,
    pub event_type: String,
    pub elapsed_ms: u64,
    pub events_per_second: f64,
    pub processed: u32,
    pub failed: u32,
    /// True when the wait (`events_performance_test_wait_ms`) ended before every event was
    /// processed.
    pub timed_out: bool,
    /// Create→processed latency of the processed events (sent to acked by the broker's clock);
    /// null when none was processed.
    #[serde(default)]
    pub latency_ms: Option<LatencyPercentiles>,
    /// Width of each `timeline` bucket.
    #[serde(default)]
    pub bucket_ms: u64,
    /// Events processed per bucket, from the first event's creation to the last one processed
    /// (empty buckets included): throughput over time.
    #[serde(default)]
    pub timeline: Vec<ThroughputBucket>,
}

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyPercentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
}

/// One bucket of a performance test's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputBucket {
    /// Start of the bucket, in milliseconds since the first event was created.
    pub start_ms: u64,
    pub processed: u32,
    pub events_per_second: f64,
}
