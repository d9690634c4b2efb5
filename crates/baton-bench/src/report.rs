//! The figures of a finished run: [`Report`], its JSON form (`--json`) and its human summary.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use crate::{Api, Config, System, Workload};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// The figures of a finished run.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Config,
    pub queue: String,
    /// Messages put in the queue before a `consume` run (not timed).
    pub prefilled: u64,
    pub sent: u64,
    pub received: u64,
    pub acked: u64,
    /// Failed calls, plus failed items of batch calls that succeeded.
    pub errors: u64,
    /// From the start to the last successful send or ack, whichever came later.
    pub elapsed: Duration,
    /// From the start to the last successful send: the time `sent` took.
    pub send_elapsed: Duration,
    /// From the start to the last successful ack: the time `received` and `acked` took.
    pub receive_elapsed: Duration,
    pub sent_bytes: u64,
    pub received_bytes: u64,
    /// Send → receive, from the time in each body; only for `e2e`.
    pub latency: Option<Percentiles>,
    /// Scheduled send → receive; only for `e2e` with a rate.
    pub latency_from_schedule: Option<Percentiles>,
    /// Round trip of one send call.
    pub send_call: Option<Percentiles>,
}

/// `count` a second over `elapsed`; 0 when nothing happened.
fn per_s(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    count as f64 / elapsed.as_secs_f64()
}

pub(crate) fn percentiles(histogram: &Histogram<u64>) -> Option<Percentiles> {
    if histogram.is_empty() {
        return None;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Some(Percentiles {
        count: histogram.len(),
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p90_ms: ms(histogram.value_at_quantile(0.90)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
    })
}

impl Percentiles {
    fn to_json(self) -> Value {
        json!({"count": self.count, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
               "p99_ms": self.p99_ms, "p999_ms": self.p999_ms, "max_ms": self.max_ms})
    }
}

impl Report {
    /// Sent messages a second, over `send_elapsed`.
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent, self.send_elapsed)
    }

    /// Received messages a second, over `receive_elapsed`.
    pub fn received_per_s(&self) -> f64 {
        per_s(self.received, self.receive_elapsed)
    }

    /// Sent megabytes (10^6 bytes of bodies) a second, over `send_elapsed`.
    pub fn sent_mb_per_s(&self) -> f64 {
        per_s(self.sent_bytes, self.send_elapsed) / 1e6
    }

    /// Received megabytes (10^6 bytes of bodies) a second, over `receive_elapsed`.
    pub fn received_mb_per_s(&self) -> f64 {
        per_s(self.received_bytes, self.receive_elapsed) / 1e6
    }

    /// The report as one JSON object (what `--json` prints).
    pub fn to_json(&self) -> Value {
        let config = &self.config;
        json!({
            "workload": workload_name(config.workload),
            "target": config.system.name(),
            "api": api_label(config),
            "url": config.broker_url(),
            "queue": self.queue,
            "producers": config.producers,
            "consumers": config.consumers,
            "message_bytes": config.message_bytes,
            "batch": config.batch,
            "receive_batch": config.receive_batch,
            "http2": config.http2,
            "inflight": config.inflight,
            "ack_inflight": config.ack_inflight,
            "rate_per_s": config.rate_per_s,
            "prefilled": self.prefilled,
            "sent": self.sent,
            "received": self.received,
            "acked": self.acked,
            "errors": self.errors,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "send_elapsed_s": self.send_elapsed.as_secs_f64(),
            "receive_elapsed_s": self.receive_elapsed.as_secs_f64(),
            "sent_per_s": self.sent_per_s(),
            "received_per_s": self.received_per_s(),
            "sent_mb_per_s": self.sent_mb_per_s(),
            "received_mb_per_s": self.received_mb_per_s(),
            "latency": self.latency.map(Percentiles::to_json),
            "latency_from_schedule": self.latency_from_schedule.map(Percentiles::to_json),
            "send_call": self.send_call.map(Percentiles::to_json),
        })
    }
}

/// The human summary printed at the end of a run.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.config;
        let mut workers = Vec::new();
        if config.workload != Workload::Consume {
            workers.push(format!(
                "{} producers × {} in flight",
                config.producers, config.inflight
            ));
        }
        if config.workload != Workload::Produce {
            workers.push(format!("{} consumers", config.consumers));
        }
        if config.rate_per_s != 0 {
            workers.push(format!("rate {}/s", config.rate_per_s));
        }
        writeln!(
            f,
            "baton bench {} against {} over the {} api: queue {}, {}, {} B messages, batch {}",
            workload_name(config.workload),
            config.system.name(),
            api_label(config),
            self.queue,
            workers.join(", "),
            config.message_bytes,
            config.batch,
        )?;
        if self.prefilled != 0 {
            writeln!(f, "prefilled   {} (not timed)", self.prefilled)?;
        }
        writeln!(
            f,
            "messages    sent {}  received {}  acked {}  errors {}",
            self.sent, self.received, self.acked, self.errors
        )?;
        writeln!(
            f,
            "elapsed     {:.2} s (last send at {:.2} s, last ack at {:.2} s)",
            self.elapsed.as_secs_f64(),
            self.send_elapsed.as_secs_f64(),
            self.receive_elapsed.as_secs_f64(),
        )?;
        writeln!(
            f,
            "throughput  sent {:.0} msg/s ({:.1} MB/s)  received {:.0} msg/s ({:.1} MB/s)",
            self.sent_per_s(),
            self.sent_mb_per_s(),
            self.received_per_s(),
            self.received_mb_per_s(),
        )?;
        let lines = [
            ("latency", self.latency),
            ("from sched.", self.latency_from_schedule),
            ("send call", self.send_call),
        ];
        for (name, percentiles) in lines {
            if let Some(p) = percentiles {
                writeln!(
                    f,
                    "{name:<11} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
                    p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
                )?;
            }
        }
        Ok(())
    }
}

fn workload_name(workload: Workload) -> &'static str {
    match workload {
        Workload::Produce => "produce",
        Workload::Consume => "consume",
        Workload::E2e => "e2e",
    }
}

/// The API or protocol the run used: Baton's `native` or `sqs`, or the peer's.
fn api_label(config: &Config) -> &'static str {
    match (config.system, config.api) {
        (System::Baton, Api::Native) => "native",
        (System::Baton, Api::Wire) => "wire",
        (System::Baton, Api::Sqs) => "sqs",
        (System::Redis, _) => "streams",
        (System::RabbitMq, _) if config.rabbitmq_quorum => "amqp-quorum",
        (System::RabbitMq, _) => "amqp-classic",
        (System::Nats, _) => "jetstream",
    }
}
