//! Per-operation cost of the queue state machine: `send`, `receive` + `ack`, and `nack`, on a
//! standard and a FIFO queue (1000 groups) holding 1e3 and 1e6 messages.
//!
//! Each queue is prefilled once per depth. An iteration is one operation on one message; the
//! operations are timed in chunks of `CHUNK`, and after each chunk the depth is restored with
//! untimed work (sends are drained by receive + ack, receive + ack is refilled by sends, nacks
//! are fed by receives), so the depth stays within `CHUNK` of its target throughout.
//!
//! The clock advances 1 ms per operation, as a queue serving 1000 operations a second would
//! see it; the prefill's dedup ids (FIFO) have aged out before measuring starts, so the dedup
//! window holds what the benchmark itself sent in the last five minutes at every depth.
//!
//! Run: `cargo bench -p baton-core --bench queue_ops -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::limits::DEDUP_WINDOW_MS;
use baton_core::{
    MessageId, Queue, QueueConfig, QueueLimits, QueueName, ReceiptHandle, SendEntry, Timestamp,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const DEPTHS: [u64; 2] = [1_000, 1_000_000];
const FIFO_GROUPS: u128 = 1_000;
/// Operations timed back to back before the depth is restored. At most `FIFO_GROUPS`, so that
/// the nack benchmark can lease one message of a different group per receive.
const CHUNK: u64 = 100;
const PREFILL_BATCH: u64 = 1_000;
const BODY_BYTES: usize = 128;

struct Bench {
    queue: Queue,
    fifo: bool,
    now: Timestamp,
    next_id: u128,
    body: Arc<str>,
}

impl Bench {
    fn new(fifo: bool, depth: u64) -> Self {
        let (name, config) = if fifo {
            (
                "bench.fifo",
                QueueConfig {
                    fifo: true,
                    ..QueueConfig::default()
                },
            )
        } else {
            ("bench", QueueConfig::default())
        };
        let queue = Queue::new(
            QueueName::new(name).unwrap(),
            config,
            QueueLimits::default(),
            1,
        )
        .unwrap();
        let mut bench = Bench {
            queue,
            fifo,
            now: Timestamp::from_millis(1_700_000_000_000),
            next_id: 1,
            body: Arc::from("x".repeat(BODY_BYTES)),
        };
        let mut left = depth;
        while left > 0 {
            let n = left.min(PREFILL_BATCH);
            let batch = (0..n).map(|_| bench.entry()).collect();
            bench.queue.send(bench.now, batch).unwrap();
            left -= n;
        }
        // Let the prefill's dedup ids age out, untimed, so that only the benchmark's own sends
        // fill the dedup window.
        bench.now = bench.now.plus_ms(DEDUP_WINDOW_MS);
        bench.queue.advance(bench.now);
        assert_eq!(bench.queue.depth(), depth);
        bench
    }

    fn entry(&mut self) -> SendEntry {
        let id = self.next_id;
        self.next_id += 1;
        let mut entry = SendEntry::new(MessageId::from_u128(id), self.body.clone());
        if self.fifo {
            entry.group_id = Some(format!("group-{}", id % FIFO_GROUPS));
            entry.dedup_id = Some(format!("dedup-{id}"));
        }
        entry
    }

    fn tick(&mut self) -> Timestamp {
        self.now = self.now.plus_ms(1);
        self.now
    }

    fn refill(&mut self, n: u64) {
        let batch = (0..n).map(|_| self.entry()).collect();
        let now = self.tick();
        self.queue.send(now, batch).unwrap();
    }

    fn drain(&mut self, n: u64) {
        for _ in 0..n {
            let now = self.tick();
            let delivery = self.queue.receive(now, 1, None).unwrap().pop().unwrap();
            self.queue.ack(now, &delivery.receipt).unwrap();
        }
    }

    /// `iters` single-message sends, timed; the depth is restored after each chunk.
    fn send(&mut self, iters: u64) -> Duration {
        let mut measured = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let entries: Vec<SendEntry> = (0..n).map(|_| self.entry()).collect();
            let start = Instant::now();
            for entry in entries {
                let now = self.tick();
                black_box(self.queue.send(now, vec![entry]).unwrap());
            }
            measured += start.elapsed();
            self.drain(n);
            left -= n;
        }
        measured
    }

    /// `iters` times a receive of one message and its ack, timed; refilled after each chunk.
    fn receive_ack(&mut self, iters: u64) -> Duration {
        let mut measured = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let start = Instant::now();
            for _ in 0..n {
                let now = self.tick();
                let delivery = self.queue.receive(now, 1, None).unwrap().pop().unwrap();
                black_box(self.queue.ack(now, &delivery.receipt).unwrap());
            }
            measured += start.elapsed();
            self.refill(n);
            left -= n;
        }
        measured
    }

    /// `iters` nacks (no delay, so the message is visible again at once), timed; the messages
    /// are leased by untimed receives before each chunk.
    fn nack(&mut self, iters: u64) -> Duration {
        let mut measured = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK);
            let receipts: Vec<ReceiptHandle> = (0..n)
                .map(|_| {
                    let now = self.tick();
                    self.queue
                        .receive(now, 1, None)
                        .unwrap()
                        .pop()
                        .unwrap()
                        .receipt
                })
                .collect();
            let start = Instant::now();
            for receipt in receipts {
                let now = self.tick();
                self.queue.nack(now, &receipt, None).unwrap();
            }
            measured += start.elapsed();
            left -= n;
        }
        measured
    }
}

fn queue_ops(c: &mut Criterion) {
    for fifo in [false, true] {
        let mut group = c.benchmark_group(if fifo { "fifo" } else { "standard" });
        group.throughput(Throughput::Elements(1));
        for depth in DEPTHS {
            let mut bench = Bench::new(fifo, depth);
            group.bench_function(BenchmarkId::new("send", depth), |b| {
                b.iter_custom(|iters| bench.send(iters))
            });
            group.bench_function(BenchmarkId::new("receive_ack", depth), |b| {
                b.iter_custom(|iters| bench.receive_ack(iters))
            });
            group.bench_function(BenchmarkId::new("nack", depth), |b| {
                b.iter_custom(|iters| bench.nack(iters))
            });
            let drift = bench.queue.depth().abs_diff(depth);
            assert!(drift <= CHUNK, "depth drifted by {drift}");
        }
        group.finish();
    }
}

criterion_group!(benches, queue_ops);
criterion_main!(benches);
