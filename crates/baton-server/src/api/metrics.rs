//! `GET /metrics` in the Prometheus text format (version 0.0.4), named by Prometheus
//! conventions (`baton_` prefix, `_total` counters, `_seconds`, `_bytes`).
//!
//! Queue and storage figures are read from the engine at scrape time; HTTP request counts and
//! latency histograms are recorded by a middleware. The exposition is written by hand: the
//! per-queue figures come from an async engine read at scrape time, which the collector APIs of
//! the Prometheus crates do not accommodate, and the format is a few lines of text.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_storage::wal::{BATCH_RECORDS_BUCKETS, SYNC_MICROS_BUCKETS};
use parking_lot::Mutex;

use crate::api::sqs::SqsAction;
use crate::api::AppState;
pub(crate) use crate::metrics_text::{family, histogram_lines};

/// Upper bounds of the request latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 25.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// One `(api, action, method)`'s latency and responses by status.
#[derive(Default)]
struct RouteFigures {
    latency: Histogram,
    statuses: BTreeMap<u16, u64>,
}

/// api → action → method → figures: a finite set, so the maps stay small. Nested so that a
/// request finds its entry by `&str` lookups, allocating only the first time a key is seen.
type RouteMap = BTreeMap<&'static str, BTreeMap<String, BTreeMap<String, RouteFigures>>>;

/// HTTP request metrics, recorded per route template (never per concrete path, which would
/// make a label per queue name and message id).
#[derive(Default)]
pub struct HttpMetrics {
    routes: Mutex<RouteMap>,
}

impl HttpMetrics {
    pub(crate) fn record(
        &self,
        api: &'static str,
        action: &str,
        method: &str,
        status: u16,
        seconds: f64,
    ) {
        let mut routes = self.routes.lock();
        let actions = routes.entry(api).or_default();
        if !actions.contains_key(action) {
            actions.insert(action.to_string(), BTreeMap::new());
        }
        let Some(methods) = actions.get_mut(action) else {
            return;
        };
        if !methods.contains_key(method) {
            methods.insert(method.to_string(), RouteFigures::default());
        }
        let Some(figures) = methods.get_mut(method) else {
            return;
        };
        let histogram = &mut figures.latency;
        histogram.count += 1;
        histogram.sum_seconds += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        *figures.statuses.entry(status).or_default() += 1;
    }

    /// Records one wire-protocol request (api `wire`, action the op, method `FRAME`) with
    /// the HTTP status the same call would have had.
    pub(crate) fn record_wire(&self, op: &'static str, status: u16, seconds: f64) {
        self.record("wire", op, "FRAME", status, seconds);
    }

    /// Every `(api, action, method)` with its figures, in label order.
    fn for_each(&self, mut visit: impl FnMut(&'static str, &str, &str, &RouteFigures)) {
        for (api, actions) in self.routes.lock().iter() {
            for (action, methods) in actions {
                for (method, figures) in methods {
                    visit(api, action, method, figures);
                }
            }
        }
    }

    /// Responses since start by class, for the dashboard's live stream.
    pub fn counters(&self) -> baton_proto::HttpCounters {
        let mut counters = baton_proto::HttpCounters::default();
        self.for_each(|_, _, _, figures| {
            for (status, count) in &figures.statuses {
                counters.responses_total += count;
                match status {
                    400..=499 => counters.client_errors_total += count,
                    500..=599 => counters.server_errors_total += count,
                    _ => {}
                }
            }
        });
        counters
    }
}

/// Records every request's route, status and duration.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let (api, action) = match (
        route.as_ref().map(MatchedPath::as_str),
        response.extensions().get::<SqsAction>(),
    ) {
        // SQS requests of either protocol carry their action in the response; requests that
        // named no valid action are `unknown`, so the label values stay a finite set.
        (Some("/") | Some("/000000000000/{queue}"), Some(SqsAction(action))) => {
            ("sqs", action.as_str())
        }
        (Some("/") | Some("/000000000000/{queue}"), None) => {
            if method == axum::http::Method::GET
                && response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
            {
                ("native", "/")
            } else {
                ("sqs", "unknown")
            }
        }
        (Some(route), _) => ("native", route),
        (None, _) => ("native", "unmatched"),
    };
    state.http_metrics.record(
        api,
        action,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// A per-queue counter: name, help, and how to read it from the stats.
type QueueCounter = (
    &'static str,
    &'static str,
    fn(&baton_core::QueueStats) -> u64,
);

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The data directory's free space, the disk-free alarm and what it refused.
fn disk_metrics(out: &mut String, disk: &baton_engine::DiskStatus) {
    family(
        out,
        "baton_disk_free_bytes",
        "gauge",
        "Free bytes on the data directory's file system (at the last check).",
    );
    let _ = writeln!(out, "baton_disk_free_bytes {}", disk.free_bytes);
    family(
        out,
        "baton_disk_free_min_bytes",
        "gauge",
        "The disk-free alarm's threshold (disk_free_min).",
    );
    let _ = writeln!(out, "baton_disk_free_min_bytes {}", disk.free_min_bytes);
    family(
        out,
        "baton_disk_alarm",
        "gauge",
        "1 while free space is below disk_free_min: sends, publishes and stream appends are refused.",
    );
    let _ = writeln!(out, "baton_disk_alarm {}", u8::from(disk.low));
    family(
        out,
        "baton_disk_reserve_present",
        "gauge",
        "1 while the emergency disk reserve (disk_reserve_bytes) is in place.",
    );
    let _ = writeln!(
        out,
        "baton_disk_reserve_present {}",
        u8::from(disk.reserve_present)
    );
}

/// The process's memory and the memory alarm.
fn memory_metrics(out: &mut String, memory: &baton_engine::MemoryStatus) {
    family(
        out,
        "baton_memory_used_bytes",
        "gauge",
        "Memory held for messages (bodies, attributes, index entries): what memory_high_watermark bounds.",
    );
    let _ = writeln!(out, "baton_memory_used_bytes {}", memory.used_bytes);
    family(
        out,
        "baton_process_resident_bytes",
        "gauge",
        "Resident memory of the broker process (at the last check).",
    );
    let _ = writeln!(
        out,
        "baton_process_resident_bytes {}",
        memory.resident_bytes
    );
    family(
        out,
        "baton_memory_high_watermark_bytes",
        "gauge",
        "The memory alarm's threshold (memory_high_watermark); 0 when the alarm is off.",
    );
    let _ = writeln!(
        out,
        "baton_memory_high_watermark_bytes {}",
        memory.high_watermark_bytes
    );
    family(
        out,
        "baton_memory_alarm",
        "gauge",
        "1 while memory is above memory_high_watermark: sends, publishes and stream appends are refused.",
    );
    let _ = writeln!(out, "baton_memory_alarm {}", u8::from(memory.alarm));
}

/// Producer writes the disk-free and the memory alarms refused.
fn refused_metrics(
    out: &mut String,
    disk: Option<&baton_engine::DiskStatus>,
    memory: Option<&baton_engine::MemoryStatus>,
) {
    if disk.is_none() && memory.is_none() {
        return;
    }
    family(
        out,
        "baton_writes_refused_total",
        "counter",
        "Producer writes (sends, publishes, stream appends) refused, by reason.",
    );
    if let Some(disk) = disk {
        let _ = writeln!(
            out,
            "baton_writes_refused_total{{reason=\"disk_low\"}} {}",
            disk.refused_writes
        );
    }
    if let Some(memory) = memory {
        let _ = writeln!(
            out,
            "baton_writes_refused_total{{reason=\"memory_pressure\"}} {}",
            memory.refused_writes
        );
    }
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    server_metrics(&state, &mut out);
    if let Ok(queues) = state.engine.list_queues().await {
        queue_metrics(&queues, &mut out);
    }
    if let Some(storage) = state.engine.storage_stats() {
        wal_metrics(&storage, &mut out);
    }
    http_metrics(&state, &mut out);
    state.audit.write_metrics(&mut out);
    connection_metrics(&state, &mut out);
    state.push.render_metrics(&mut out);
    state.callbacks.render_metrics(&mut out);
    state.sinks.write_metrics(&mut out).await;
    crate::api::topics::write_metrics(&state, &mut out).await;
    crate::api::stream_metrics::write_metrics(&state, &mut out).await;
    super::requests::write_metrics(&state, &mut out);
    crate::schedules::write_metrics(&state, &mut out).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// Open connections of both ports, and those closed at once by a connection limit.
fn connection_metrics(state: &AppState, out: &mut String) {
    family(
        out,
        "baton_connections_open",
        "gauge",
        "TCP connections open on the HTTP and wire ports (max_connections).",
    );
    let _ = writeln!(out, "baton_connections_open {}", state.connections.open());
    family(
        out,
        "baton_connections_refused_total",
        "counter",
        "New connections closed at once because a connection limit was reached.",
    );
    for (limit, n) in state.connections.refused() {
        let _ = writeln!(
            out,
            "baton_connections_refused_total{{limit=\"{}\"}} {n}",
            limit.as_str()
        );
    }
}

/// The broker's own figures: up, ready, uptime, storage and disk state.
fn server_metrics(state: &AppState, out: &mut String) {
    family(
        out,
        "baton_up",
        "gauge",
        "1 while the broker serves; readiness in baton_ready.",
    );
    let _ = writeln!(out, "baton_up 1");
    family(out, "baton_ready", "gauge", "1 once storage is recovered.");
    let _ = writeln!(out, "baton_ready {}", u8::from(state.engine.is_ready()));
    family(
        out,
        "baton_uptime_seconds",
        "gauge",
        "Seconds since the broker started.",
    );
    let _ = writeln!(
        out,
        "baton_uptime_seconds {:.3}",
        state.started.elapsed().as_secs_f64()
    );
    family(
        out,
        "baton_storage_failed",
        "gauge",
        "1 while storage refuses writes.",
    );
    let _ = writeln!(
        out,
        "baton_storage_failed {}",
        u8::from(state.engine.storage_failure().is_some())
    );
    let disk = state.engine.disk_status();
    if let Some(disk) = &disk {
        disk_metrics(out, disk);
    }
    let memory = state.engine.memory_status();
    if let Some(memory) = &memory {
        memory_metrics(out, memory);
    }
    refused_metrics(out, disk.as_ref(), memory.as_ref());
}

/// Every queue's messages by state, oldest age and counters.
fn queue_metrics(queues: &[baton_engine::QueueView], out: &mut String) {
    family(
        out,
        "baton_queue_messages",
        "gauge",
        "Messages in a queue by state.",
    );
    for view in queues {
        let queue = label(view.name.as_str());
        for (kind, value) in [
            ("visible", view.stats.visible),
            ("in_flight", view.stats.in_flight),
            ("delayed", view.stats.delayed),
        ] {
            let _ = writeln!(
                out,
                "baton_queue_messages{{queue=\"{queue}\",state=\"{kind}\"}} {value}"
            );
        }
    }
    family(
        out,
        "baton_queue_oldest_message_age_seconds",
        "gauge",
        "Age of the oldest message in a queue.",
    );
    for view in queues {
        let _ = writeln!(
            out,
            "baton_queue_oldest_message_age_seconds{{queue=\"{}\"}} {:.3}",
            label(view.name.as_str()),
            view.stats.oldest_age_ms as f64 / 1000.0
        );
    }
    let counters: [QueueCounter; 8] = [
        (
            "baton_queue_sent_total",
            "Messages sent to a queue (duplicates included).",
            |s| s.sent_total,
        ),
        (
            "baton_queue_duplicates_total",
            "Sends recognised as duplicates.",
            |s| s.duplicates_total,
        ),
        (
            "baton_queue_received_total",
            "Deliveries (receives) from a queue.",
            |s| s.received_total,
        ),
        (
            "baton_queue_acked_total",
            "Messages acknowledged (deleted).",
            |s| s.acked_total,
        ),
        (
            "baton_queue_nacked_total",
            "Messages given back (nack or visibility 0).",
            |s| s.nacked_total,
        ),
        (
            "baton_queue_dead_lettered_total",
            "Messages moved to the dead-letter queue.",
            |s| s.dead_lettered_total,
        ),
        (
            "baton_queue_expired_total",
            "Messages removed by retention.",
            |s| s.expired_total,
        ),
        (
            "baton_queue_purged_total",
            "Messages removed by purges.",
            |s| s.purged_total,
        ),
    ];
    for (name, help, get) in counters {
        family(out, name, "counter", help);
        for view in queues {
            let _ = writeln!(
                out,
                "{name}{{queue=\"{}\"}} {}",
                label(view.name.as_str()),
                get(&view.stats)
            );
        }
    }
}

/// The write-ahead log's counters and histograms.
fn wal_metrics(storage: &baton_engine::StorageStats, out: &mut String) {
    let counters = [
        (
            "baton_wal_batches_total",
            "Group-commit batches written.",
            storage.batches as f64,
        ),
        (
            "baton_wal_records_total",
            "Records written to the write-ahead log.",
            storage.records as f64,
        ),
        (
            "baton_wal_written_bytes_total",
            "Bytes written to the write-ahead log.",
            storage.bytes as f64,
        ),
        (
            "baton_wal_fsyncs_total",
            "fdatasync calls of the write-ahead log.",
            storage.syncs as f64,
        ),
        (
            "baton_wal_fsync_seconds_total",
            "Time spent in fdatasync.",
            storage.sync_micros as f64 / 1e6,
        ),
        (
            "baton_wal_write_seconds_total",
            "Time spent writing batches.",
            storage.write_micros as f64 / 1e6,
        ),
    ];
    for (name, help, value) in counters {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    family(
        out,
        "baton_wal_fsync_duration_seconds",
        "histogram",
        "Latency of the write-ahead log's fdatasync calls.",
    );
    let bounds = SYNC_MICROS_BUCKETS.map(|micros| micros as f64 / 1e6);
    histogram_lines(
        out,
        "baton_wal_fsync_duration_seconds",
        &bounds,
        &storage.sync_micros_buckets,
        storage.syncs,
        storage.sync_micros as f64 / 1e6,
    );
    family(
        out,
        "baton_wal_batch_records",
        "histogram",
        "Records per group-commit batch of the write-ahead log.",
    );
    let bounds = BATCH_RECORDS_BUCKETS.map(|records| records as f64);
    histogram_lines(
        out,
        "baton_wal_batch_records",
        &bounds,
        &storage.batch_records_buckets,
        storage.batches,
        storage.records as f64,
    );
}

/// HTTP latency and responses by API, action and method.
fn http_metrics(state: &AppState, out: &mut String) {
    family(
        out,
        "baton_http_request_duration_seconds",
        "histogram",
        "HTTP request latency by API and action.",
    );
    state.http_metrics.for_each(|api, action, method, figures| {
        let histogram = &figures.latency;
        let labels = format!(
            "api=\"{api}\",action=\"{}\",method=\"{method}\"",
            label(action)
        );
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets.iter()) {
            let _ = writeln!(
                out,
                "baton_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "baton_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            histogram.count
        );
        let _ = writeln!(
            out,
            "baton_http_request_duration_seconds_sum{{{labels}}} {}",
            histogram.sum_seconds
        );
        let _ = writeln!(
            out,
            "baton_http_request_duration_seconds_count{{{labels}}} {}",
            histogram.count
        );
    });
    family(
        out,
        "baton_http_responses_total",
        "counter",
        "HTTP responses by API, action and status.",
    );
    state
        .http_metrics
        .for_each(|api, action, method, figures| {
            for (status, count) in &figures.statuses {
                let _ = writeln!(
                    out,
                    "baton_http_responses_total{{api=\"{api}\",action=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                    label(action)
                );
            }
        });
}
