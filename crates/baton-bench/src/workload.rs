//! The timed part of a run: the producer and consumer workers, the untimed prefill of
//! `consume`, the live progress line, and the counters and histograms they share.
//!
//! Invariants: every connection is opened before the clock starts; producers never claim more
//! than `messages` in total ([`Shared::claim`]); consumers stop once everything sent was acked
//! (or at the deadline, plus [`DRAIN_TIMEOUT`] for `e2e`).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::broker::{Broker, Consumer, Producer};
use crate::report::percentiles;
use crate::{body, BenchError, Config, Report, Workload, BATCH_BYTES_MAX_NATIVE, DRAIN_TIMEOUT};

/// Pause of a worker after a failed call, so a broken broker is not hammered.
const ERROR_BACKOFF: Duration = Duration::from_millis(20);
/// Largest latency the histograms hold; larger values are recorded as this.
const LATENCY_US_MAX: u64 = 10 * 60 * 1_000_000;
/// Messages per send while filling the queue for `consume`.
const PREFILL_BATCH: u32 = 1000;
/// Concurrent sends while filling the queue for `consume`.
const PREFILL_SENDERS: u32 = 4;
/// How often the progress line is redrawn.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Counters shared by every worker of one run.
pub(crate) struct Shared {
    workload: Workload,
    start: Instant,
    /// Wall clock at `start`, in ns since the epoch, for the schedule in bodies.
    start_ns: u64,
    /// Producers send nothing after it; `consume` consumers stop at it.
    deadline: Instant,
    messages: u64,
    claimed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    sent_bytes: AtomicU64,
    received_bytes: AtomicU64,
    /// Nanoseconds from `start` to the last successful send.
    last_sent_ns: AtomicU64,
    /// Nanoseconds from `start` to the last successful ack.
    last_acked_ns: AtomicU64,
    producers_done: AtomicBool,
    stop: watch::Sender<bool>,
}

/// What the workers measured.
pub(crate) struct Measured {
    shared: Arc<Shared>,
    latency: Histogram<u64>,
    latency_from_schedule: Histogram<u64>,
    send_call: Histogram<u64>,
}

impl Shared {
    /// Zeroed counters for a run of `messages` that starts at `start` and sends until `deadline`.
    fn new(workload: Workload, messages: u64, start: Instant, deadline: Instant) -> Self {
        Shared {
            workload,
            start,
            start_ns: body::now_ns(),
            deadline,
            messages,
            claimed: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            sent_bytes: AtomicU64::new(0),
            received_bytes: AtomicU64::new(0),
            last_sent_ns: AtomicU64::new(0),
            last_acked_ns: AtomicU64::new(0),
            producers_done: AtomicBool::new(false),
            stop: watch::channel(false).0,
        }
    }

    /// Takes the next up to `n_max` messages of the budget: `(index of the first, count)`.
    fn claim(&self, n_max: u64) -> Option<(u64, u64)> {
        let messages = self.messages;
        self.claimed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |claimed| {
                (claimed < messages).then(|| claimed + n_max.min(messages - claimed))
            })
            .ok()
            .map(|first| (first, n_max.min(messages - first)))
    }

    /// Moves `last` (one of the `last_*_ns`) to now.
    fn mark(&self, last: &AtomicU64) {
        let since_start = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        last.fetch_max(since_start, Ordering::SeqCst);
    }

    /// Tells consumers to stop once everything there is to receive was acked.
    fn stop_when_drained(&self) {
        let drained = match self.workload {
            Workload::Produce => true,
            Workload::Consume => self.messages <= self.acked.load(Ordering::SeqCst),
            Workload::E2e => {
                self.producers_done.load(Ordering::SeqCst)
                    && self.sent.load(Ordering::SeqCst) <= self.acked.load(Ordering::SeqCst)
            }
        };
        if drained {
            self.stop.send_replace(true);
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("the bounds are valid")
}

fn record_us(histogram: &mut Histogram<u64>, from_ns: u64, to_ns: u64) {
    let micros = to_ns.saturating_sub(from_ns) / 1000;
    histogram.saturating_record(micros.clamp(1, LATENCY_US_MAX));
}

/// Prefills for `consume`, then runs the timed part. Returns `(prefilled, measured)`.
pub(crate) async fn run_on(
    config: &Config,
    broker: &Broker,
) -> Result<(u64, Measured), BenchError> {
    let prefilled = if config.workload == Workload::Consume {
        prefill(config, broker).await?
    } else {
        0
    };
    // Every connection is opened before the clock starts.
    let mut consumer_sessions = Vec::new();
    if config.workload != Workload::Produce {
        for _ in 0..config.consumers {
            consumer_sessions.push(
                broker
                    .consumer(config.receive_batch, config.wait_ms)
                    .await?,
            );
        }
    }
    let mut producer_sessions = Vec::new();
    if config.workload != Workload::Consume {
        for _ in 0..config.producers {
            producer_sessions.push(broker.producer(false).await?);
        }
    }
    let start = Instant::now();
    let messages = if config.workload == Workload::Consume {
        prefilled
    } else {
        config.messages
    };
    let shared = Arc::new(Shared::new(
        config.workload,
        messages,
        start,
        start + config.duration,
    ));
    let progress = (config.progress && std::io::stdout().is_terminal())
        .then(|| tokio::spawn(draw_progress(Arc::clone(&shared))));

    let mut consumers = JoinSet::new();
    if config.workload != Workload::Produce {
        for session in consumer_sessions {
            consumers.spawn(consume(Arc::clone(&shared), session, config.clone()));
        }
    }
    let mut send_call = histogram();
    if config.workload != Workload::Consume {
        let mut producers = JoinSet::new();
        // The `inflight` senders of one producer share its connection.
        for session in &producer_sessions {
            for _ in 0..config.inflight {
                producers.spawn(produce(
                    Arc::clone(&shared),
                    session.clone(),
                    config.clone(),
                ));
            }
        }
        while let Some(joined) = producers.join_next().await {
            if let Ok(histogram) = joined {
                let _ = send_call.add(histogram);
            }
        }
    }
    shared.producers_done.store(true, Ordering::SeqCst);
    shared.stop_when_drained();
    let mut latency = histogram();
    let mut latency_from_schedule = histogram();
    while let Some(joined) = consumers.join_next().await {
        if let Ok((own, own_from_schedule)) = joined {
            let _ = latency.add(own);
            let _ = latency_from_schedule.add(own_from_schedule);
        }
    }
    shared.stop.send_replace(true);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    Ok((
        prefilled,
        Measured {
            shared,
            latency,
            latency_from_schedule,
            send_call,
        },
    ))
}

/// Fills the queue with `config.messages` messages (Baton: over the native API), untimed.
async fn prefill(config: &Config, broker: &Broker) -> Result<u64, BenchError> {
    let claimed = Arc::new(AtomicU64::new(0));
    let mut senders = JoinSet::new();
    for _ in 0..PREFILL_SENDERS {
        let claimed = Arc::clone(&claimed);
        let native = broker.producer(true).await?;
        let (messages, message_bytes) = (config.messages, config.message_bytes);
        let batch = u64::from(PREFILL_BATCH)
            .min(BATCH_BYTES_MAX_NATIVE / u64::from(message_bytes))
            .max(1);
        senders.spawn(async move {
            let mut sent = 0;
            loop {
                let first = claimed.fetch_add(batch, Ordering::SeqCst);
                if messages <= first {
                    return Ok::<u64, BenchError>(sent);
                }
                let n = batch.min(messages - first);
                let now = body::now_ns();
                let bodies = (0..n)
                    .map(|_| body::encode(now, now, message_bytes))
                    .collect();
                sent += native.send(bodies).await?;
            }
        });
    }
    let mut prefilled = 0;
    while let Some(joined) = senders.join_next().await {
        if let Ok(sent) = joined {
            prefilled += sent?;
        }
    }
    Ok(prefilled)
}

/// One concurrent sender: claims batches of the budget until it or the time runs out.
/// Returns the round trips of its send calls.
async fn produce(shared: Arc<Shared>, target: Producer, config: Config) -> Histogram<u64> {
    let mut send_call = histogram();
    let batch = u64::from(config.batch);
    loop {
        if shared.deadline <= Instant::now() {
            break;
        }
        let Some((first, n)) = shared.claim(batch) else {
            break;
        };
        // With a rate, message `i` is due at `scheduled_offset(i)`; the batch leaves when its
        // last message is due.
        let due = |idx: u64| body::scheduled_offset(idx, config.rate_per_s);
        if config.rate_per_s != 0 {
            let at = shared.start + due(first + n - 1);
            if shared.deadline <= at {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        let sent_ns = body::now_ns();
        let bodies = (first..first + n)
            .map(|idx| {
                let scheduled_ns = if config.rate_per_s == 0 {
                    sent_ns
                } else {
                    let offset = u64::try_from(due(idx).as_nanos()).unwrap_or(u64::MAX);
                    shared.start_ns.saturating_add(offset)
                };
                body::encode(sent_ns, scheduled_ns, config.message_bytes)
            })
            .collect();
        let call_start = Instant::now();
        match target.send(bodies).await {
            Ok(sent) => {
                let micros = u64::try_from(call_start.elapsed().as_micros()).unwrap_or(u64::MAX);
                send_call.saturating_record(micros.clamp(1, LATENCY_US_MAX));
                shared.sent.fetch_add(sent, Ordering::SeqCst);
                shared
                    .sent_bytes
                    .fetch_add(sent * u64::from(config.message_bytes), Ordering::SeqCst);
                shared.errors.fetch_add(n - sent, Ordering::SeqCst);
                shared.mark(&shared.last_sent_ns);
            }
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
    send_call
}

/// One consumer: receives and acks until told to stop, or until its time is up. Returns its
/// latency histograms (from the send time, and from the scheduled time).
async fn consume(
    shared: Arc<Shared>,
    mut target: Consumer,
    config: Config,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut latency = histogram();
    let mut latency_from_schedule = histogram();
    let mut stop = shared.stop.subscribe();
    let end = match config.workload {
        Workload::E2e => shared.deadline + DRAIN_TIMEOUT,
        Workload::Produce | Workload::Consume => shared.deadline,
    };
    let mut pending_acks = std::collections::VecDeque::new();
    loop {
        if *stop.borrow() || end <= Instant::now() {
            break;
        }
        let received = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep_until(end.into()) => break,
            received = target.receive(config.receive_batch, config.wait_ms) => received,
        };
        let messages = match received {
            Ok(messages) => messages,
            Err(_) => {
                shared.errors.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        };
        if messages.is_empty() {
            shared.stop_when_drained();
            continue;
        }
        let received_ns = body::now_ns();
        let n = messages.len() as u64;
        let mut receipts = Vec::with_capacity(messages.len());
        let mut bytes = 0;
        for message in messages {
            bytes += message.body.len() as u64;
            if let Some((sent_ns, scheduled_ns)) = body::decode(&message.body) {
                record_us(&mut latency, sent_ns, received_ns);
                record_us(&mut latency_from_schedule, scheduled_ns, received_ns);
            }
            receipts.push(message.receipt);
        }
        shared.received.fetch_add(n, Ordering::SeqCst);
        shared.received_bytes.fetch_add(bytes, Ordering::SeqCst);
        match target.detached_ack(receipts) {
            // Up to `ack_inflight` acks run while the next receive does; beyond that the
            // oldest must be done first.
            Ok(ack) => {
                if pending_acks.len() >= config.ack_inflight as usize {
                    if let Some(oldest) = pending_acks.pop_front() {
                        let _: Result<(), _> = oldest.await;
                    }
                }
                let shared = shared.clone();
                pending_acks.push_back(tokio::spawn(async move {
                    count_ack(&shared, n, ack.await).await;
                }));
            }
            Err(receipts) => count_ack(&shared, n, target.ack(receipts).await).await,
        }
    }
    for pending in pending_acks {
        let _ = pending.await;
    }
    (latency, latency_from_schedule)
}

/// Counts the outcome of acking `n` received messages.
async fn count_ack(shared: &Shared, n: u64, acked: Result<u64, BenchError>) {
    match acked {
        Ok(acked) => {
            shared.acked.fetch_add(acked, Ordering::SeqCst);
            shared.errors.fetch_add(n - acked, Ordering::SeqCst);
            shared.mark(&shared.last_acked_ns);
        }
        Err(_) => {
            shared.errors.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
    shared.stop_when_drained();
}

/// Redraws a spinner with the current rates until the run stops.
async fn draw_progress(shared: Arc<Shared>) {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
        bar.set_style(style);
    }
    let mut stop = shared.stop.subscribe();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    let (mut last_sent, mut last_acked, mut last_at) = (0, 0, Instant::now());
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = ticker.tick() => {}
        }
        let (sent, acked) = (
            shared.sent.load(Ordering::SeqCst),
            shared.acked.load(Ordering::SeqCst),
        );
        let seconds = last_at.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "sent {sent} ({:.0}/s)  acked {acked} ({:.0}/s)  errors {}",
            (sent - last_sent) as f64 / seconds,
            (acked - last_acked) as f64 / seconds,
            shared.errors.load(Ordering::SeqCst),
        ));
        bar.tick();
        (last_sent, last_acked, last_at) = (sent, acked, Instant::now());
    }
    bar.finish_and_clear();
}

impl Measured {
    pub(crate) fn into_report(self, config: Config, queue: String, prefilled: u64) -> Report {
        let shared = &self.shared;
        let send_elapsed = Duration::from_nanos(shared.last_sent_ns.load(Ordering::SeqCst));
        let receive_elapsed = Duration::from_nanos(shared.last_acked_ns.load(Ordering::SeqCst));
        let elapsed = send_elapsed.max(receive_elapsed);
        let rated = config.rate_per_s != 0;
        Report {
            queue,
            prefilled,
            sent: shared.sent.load(Ordering::SeqCst),
            received: shared.received.load(Ordering::SeqCst),
            acked: shared.acked.load(Ordering::SeqCst),
            errors: shared.errors.load(Ordering::SeqCst),
            elapsed,
            send_elapsed,
            receive_elapsed,
            sent_bytes: shared.sent_bytes.load(Ordering::SeqCst),
            received_bytes: shared.received_bytes.load(Ordering::SeqCst),
            // In `consume` the bodies were written by the untimed prefill, so their age says
            // how long the prefill took, not how fast the broker delivers.
            latency: percentiles(&self.latency).filter(|_| config.workload == Workload::E2e),
            latency_from_schedule: percentiles(&self.latency_from_schedule)
                .filter(|_| rated && config.workload == Workload::E2e),
            send_call: percentiles(&self.send_call),
            config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(messages: u64) -> Shared {
        let start = Instant::now();
        Shared::new(Workload::Produce, messages, start, start)
    }

    #[test]
    fn claims_split_the_budget_exactly() {
        let shared = shared(25);
        assert_eq!(shared.claim(10), Some((0, 10)));
        assert_eq!(shared.claim(10), Some((10, 10)));
        assert_eq!(shared.claim(10), Some((20, 5)));
        assert_eq!(shared.claim(10), None);
    }
}
