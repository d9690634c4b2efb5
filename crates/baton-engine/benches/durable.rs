//! Durable-engine measurements (not a test; numbers go to docs/benchmarks.md):
//!
//! - `send`: durable send throughput with 1, 16 and 64 concurrent producers, 1 KiB messages,
//!   one message per send call, fsync `always` against `never`, and messages per fsync;
//! - `recover`: recovery time and peak memory for N live 1 KiB messages, and memory per
//!   queued message beyond its body (measured in a child process so the numbers are its own);
//! - `fsync`: latency of a bare 4 KiB write + fdatasync loop on the same disk.
//!
//! `cargo bench -p baton-engine --bench durable -- [send|recover|fsync|all] [--seconds S]
//! [--messages N] [--dir PATH]`. Data goes under `--dir` (default `target/bench-durable`),
//! which must be on the disk being measured (not a tmpfs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::{QueueConfig, QueueName, SendEntry};
use baton_engine::{
    new_message_id, Engine, EngineConfig, LocalEngine, QueueEngine, StorageConfig, SystemClock,
};
use baton_storage::{RealFs, SyncPolicy};

struct Options {
    what: String,
    seconds: u64,
    messages: u64,
    dir: PathBuf,
}

fn options() -> Options {
    let mut options = Options {
        what: "all".to_string(),
        seconds: 3,
        messages: 1_000_000,
        dir: PathBuf::from("target/bench-durable"),
    };
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => options.seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--messages" => {
                options.messages = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1_000_000)
            }
            "--dir" => options.dir = PathBuf::from(args.next().unwrap_or_default()),
            "recover-child" => {
                let dir = PathBuf::from(args.next().unwrap_or_default());
                recover_child(&dir);
                std::process::exit(0);
            }
            other => options.what = other.to_string(),
        }
    }
    options
}

fn engine(dir: &Path, sync: SyncPolicy) -> LocalEngine {
    let storage = StorageConfig {
        sync,
        ..StorageConfig::new(dir)
    };
    LocalEngine::durable(
        Arc::new(SystemClock),
        EngineConfig::default(),
        Arc::new(RealFs),
        storage,
        true,
    )
    .expect("open the data dir")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn body() -> String {
    "x".repeat(1024)
}

fn bench_send(options: &Options) {
    println!(
        "## durable send, 1 KiB messages, one message per send call, {} s per run",
        options.seconds
    );
    println!("| producers | fsync | messages/s | MB/s | messages per fsync | fsyncs/s | µs per fsync | µs per write |");
    println!("|---|---|---|---|---|---|---|---|");
    for producers in [1usize, 16, 64] {
        for sync in [SyncPolicy::Always, SyncPolicy::Never] {
            let dir = options.dir.join(format!("send-{producers}-{sync}"));
            let _ = std::fs::remove_dir_all(&dir);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let (rate, per_sync, syncs_per_s, sync_us, write_us) = runtime.block_on(async {
                let engine = Arc::new(engine(&dir, sync));
                engine.recover().await.expect("recover");
                let queue = QueueName::new("bench").expect("name");
                engine
                    .create_queue(queue.clone(), QueueConfig::default())
                    .await
                    .expect("create");
                let before = engine.storage_stats().unwrap_or_default();
                let sent = Arc::new(AtomicU64::new(0));
                let stop = Arc::new(AtomicBool::new(false));
                let started = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..producers {
                    let (engine, queue, sent, stop) =
                        (engine.clone(), queue.clone(), sent.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move {
                        let body = body();
                        while !stop.load(Ordering::Relaxed) {
                            engine
                                .send(
                                    &queue,
                                    vec![SendEntry::new(new_message_id(), body.as_str())],
                                )
                                .await
                                .expect("send");
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }));
                }
                tokio::time::sleep(Duration::from_secs(options.seconds)).await;
                stop.store(true, Ordering::Relaxed);
                for task in tasks {
                    task.await.expect("producer");
                }
                let elapsed = started.elapsed().as_secs_f64();
                let after = engine.storage_stats().unwrap_or_default();
                let n = sent.load(Ordering::Relaxed) as f64;
                let syncs = (after.syncs - before.syncs) as f64;
                let per_sync = if syncs > 0.0 { n / syncs } else { f64::NAN };
                let batches = (after.batches - before.batches).max(1) as f64;
                let sync_us = (after.sync_micros - before.sync_micros) as f64 / syncs.max(1.0);
                let write_us = (after.write_micros - before.write_micros) as f64 / batches;
                (n / elapsed, per_sync, syncs / elapsed, sync_us, write_us)
            });
            println!(
                "| {producers} | {sync} | {rate:.0} | {:.1} | {per_sync:.1} | {syncs_per_s:.0} | {sync_us:.0} | {write_us:.0} |",
                rate * 1024.0 / 1e6
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn recover_child(dir: &Path) {
    let baseline = rss_kib("VmRSS:");
    let started = Instant::now();
    let engine = engine(dir, SyncPolicy::Always);
    block_on(engine.recover()).expect("recover");
    let elapsed = started.elapsed();
    let rss = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    let stats = block_on(engine.get_queue(&QueueName::new("bench").expect("name")))
        .expect("queue")
        .stats;
    println!(
        "{} {} {} {} {}",
        elapsed.as_millis(),
        baseline,
        rss,
        peak,
        stats.visible
    );
}

fn bench_recover(options: &Options) {
    let n = options.messages;
    let dir = options.dir.join("recover");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let engine = engine(&dir, SyncPolicy::Never);
            engine.recover().await.expect("recover");
            let queue = QueueName::new("bench").expect("name");
            engine
                .create_queue(queue.clone(), QueueConfig::default())
                .await
                .expect("create");
            let body = body();
            let mut left = n;
            while left > 0 {
                let batch = left.min(1000);
                let entries = (0..batch)
                    .map(|_| SendEntry::new(new_message_id(), body.as_str()))
                    .collect();
                engine.send(&queue, entries).await.expect("send");
                left -= batch;
            }
        });
    }
    let disk: u64 = walk_bytes(&dir);
    let me = std::env::current_exe().expect("exe");
    let mut results = Vec::new();
    for _ in 0..3 {
        let output = std::process::Command::new(&me)
            .args(["recover-child"])
            .arg(&dir)
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: Vec<u64> = text
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() == 5 {
            results.push(fields);
        } else {
            eprintln!(
                "recover child failed: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    println!(
        "## recovery of {n} live 1 KiB messages (log only, no checkpoint), {:.0} MiB on disk",
        disk as f64 / 1048576.0
    );
    println!("| run | recovery ms | RSS after MiB | peak RSS MiB | bytes per message beyond the 1024-byte body |");
    println!("|---|---|---|---|---|");
    for (i, r) in results.iter().enumerate() {
        let per_message = ((r[2] - r[1]) * 1024) as f64 / n as f64 - 1024.0;
        println!(
            "| {} | {} | {:.0} | {:.0} | {per_message:.0} |",
            i + 1,
            r[0],
            r[2] as f64 / 1024.0,
            r[3] as f64 / 1024.0
        );
        assert_eq!(r[4], n, "every message recovered");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk_bytes(&path)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn bench_fsync(options: &Options) {
    std::fs::create_dir_all(&options.dir).expect("dir");
    let path = options.dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("file");
    let block = vec![7u8; 4096];
    let mut latencies = Vec::new();
    for _ in 0..500 {
        let started = Instant::now();
        file.write_all(&block).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(started.elapsed().as_micros() as u64);
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("## fdatasync after a 4 KiB append, 500 times");
    println!(
        "p50 {} µs, p90 {} µs, p99 {} µs, max {} µs",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let _ = std::fs::remove_file(&path);
}

fn main() {
    let options = options();
    std::fs::create_dir_all(&options.dir).expect("bench dir");
    match options.what.as_str() {
        "send" => bench_send(&options),
        "recover" => bench_recover(&options),
        "fsync" => bench_fsync(&options),
        _ => {
            bench_fsync(&options);
            bench_send(&options);
            bench_recover(&options);
        }
    }
}
