//! Crash test of the durable embedded engine through the real binary: concurrent producers and
//! consumers run against `baton serve` while it is killed with SIGKILL at random moments and
//! restarted on a new port with the same data directory.
//!
//! Checked during the run: every received body was sent, no message whose ack was answered
//! `{"ok": true}` is delivered again, receipts from before a restart no longer ack, and
//! content-based deduplication survives restarts. Checked after the last restart and a full
//! drain: no acknowledged send is lost, no acked message is left, nothing is stored twice, FIFO
//! order holds within each group, and the queue statistics balance (also after one more kill).
//!
//! The seed is printed first; `BATON_CRASH_SEED=<seed>` replays the same choices (batch sizes,
//! kill delays, checkpoint settings, which messages are acked). Thread and disk timing still
//! vary, so a replay makes the same interleaving likely, not certain. On failure the data
//! directory and the server's log are kept, and their path is printed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{run_alone, spawn_baton, temp_dir, Serve, Server, ServerLog};

mod checks;
use checks::{
    check_drained, check_empty_stats, drain, probe_dedup, probe_old_receipts, queue_stats,
};

const CYCLES: u32 = 20;
/// Standard-queue producers and consumers per cycle (the FIFO queue gets one of each more).
const PRODUCERS: u32 = 4;
const CONSUMERS: u32 = 2;
const STANDARD_QUEUE: &str = "crash";
const FIFO_QUEUE: &str = "f.fifo";
const FIFO_GROUPS: u64 = 16;
const BATCH_MAX: u64 = 20;
const RECEIVE_MAX: u64 = 10;
/// Time the load runs before the kill, drawn per cycle.
const KILL_DELAY_MS: (u64, u64) = (50, 400);
/// Share of received messages acked; the rest stay in flight until the kill.
const ACK_PERCENT_STANDARD: u64 = 70;
const ACK_PERCENT_FIFO: u64 = 80;
/// Lease of receives during the run: far beyond a cycle, so only a restart ends one.
const LEASE_MS: u64 = 60_000;
/// Lease of the final drain, which acks everything it receives.
const DRAIN_LEASE_MS: u64 = 600_000;
const DRAIN_BATCH: u64 = 100;
/// Checkpoint thresholds drawn per start (`None`: the default), so that some restarts recover
/// from a checkpoint written during the run, some crash while one is written, some replay only
/// the log.
const CHECKPOINT_BYTES_MIN: [Option<u64>; 3] = [None, Some(4096), Some(65_536)];
/// The smallest segment size, so the log rotates during the run.
const SEGMENT_BYTES: u64 = 1 << 20;
/// Receipts of the previous run kept to try acking after a restart.
const OLD_RECEIPTS_MAX: usize = 8;
/// Acknowledged FIFO bodies sent again after each restart; each must be a duplicate.
const DEDUP_PROBES: usize = 2;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(20);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests per task per cycle; a cycle lasts at most `KILL_DELAY_MS.1`, this only bounds a
/// misbehaving one.
const TASK_REQUESTS_MAX: u32 = 5_000;
/// Send requests per producer per cycle, so a fast machine does not pile up a queue too large
/// to drain in time: at most `CYCLES × BATCH_MAX × PRODUCER_REQUESTS_MAX × (PRODUCERS + 1)`
/// = 200,000 messages in all.
const PRODUCER_REQUESTS_MAX: u32 = 100;
const VIOLATIONS_KEPT: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Standard,
    Fifo,
}

impl Target {
    const ALL: [Target; 2] = [Target::Standard, Target::Fifo];

    fn queue(self) -> &'static str {
        match self {
            Target::Standard => STANDARD_QUEUE,
            Target::Fifo => FIFO_QUEUE,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// splitmix64: tiny, good enough to draw test choices from a printed seed.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (the modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// What the clients know of one queue.
#[derive(Default)]
struct Ledger {
    /// Every body put in a send request, answered or not.
    attempted: HashSet<String>,
    /// Acknowledged sends (answered 200): body → the id the broker gave it.
    sent: HashMap<String, String>,
    /// Acknowledged sends in answer order, to pick dedup probes reproducibly.
    sent_order: Vec<String>,
    /// Bodies whose ack result was `{"ok": true}`.
    acked: HashSet<String>,
    /// Bodies whose ack request got no answer because the server died: acked or not.
    ack_unknown: HashSet<String>,
    received: u64,
}

struct OldReceipt {
    target: Target,
    body: String,
    receipt: String,
}

#[derive(Default)]
struct State {
    ledgers: [Ledger; 2],
    /// Receipts left in flight by this run's consumers, tried again after the restart.
    old_receipts: Vec<OldReceipt>,
    violations: Vec<String>,
    violation_count: usize,
}

struct Ctx {
    client: reqwest::Client,
    state: Mutex<State>,
}

impl Ctx {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn violation(&self, text: String) {
        eprintln!("VIOLATION: {text}");
        let mut state = self.state();
        state.violation_count += 1;
        if state.violations.len() < VIOLATIONS_KEPT {
            state.violations.push(text);
        }
    }
}

/// The broker process and its directory. Dropping it kills the process; the directory is
/// removed, unless the test is failing, when it is kept for inspection.
struct Broker {
    root: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    server: Option<Server>,
    url: String,
}

impl Broker {
    fn new() -> Broker {
        let root = temp_dir("crash");
        let data_dir = root.join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        Broker {
            log: root.join("server.log"),
            root,
            data_dir,
            server: None,
            url: String::new(),
        }
    }

    /// Starts `baton serve` on a fresh port, waits until `/ready` answers 200 and checks that
    /// it accepts writes on healthy storage; returns how long recovery took.
    async fn start(
        &mut self,
        client: &reqwest::Client,
        checkpoint_bytes_min: Option<u64>,
    ) -> Duration {
        assert!(
            self.server.is_none(),
            "the previous server is still running"
        );
        let started = Instant::now();
        let segment_bytes = SEGMENT_BYTES.to_string();
        let checkpoint_bytes = checkpoint_bytes_min.map(|bytes| bytes.to_string());
        let mut env = vec![
            ("RUST_LOG", "info"),
            ("BATON_SEGMENT_BYTES", segment_bytes.as_str()),
        ];
        if let Some(bytes) = &checkpoint_bytes {
            env.push(("BATON_CHECKPOINT_BYTES_MIN", bytes.as_str()));
        }
        let serve = Serve::new()
            .data_dir(&self.data_dir)
            .env(&env)
            .log(ServerLog::File(self.log.clone()));
        // The wait for readiness blocks: off the runtime's workers, so the test's own tasks
        // are not held up by it.
        let spawned = tokio::task::spawn_blocking(move || spawn_baton(serve))
            .await
            .unwrap();
        let server = spawned
            .unwrap_or_else(|error| panic!("not ready ({error}); log: {}", self.log.display()));
        assert!(
            started.elapsed() < STARTUP_TIMEOUT,
            "not ready within {STARTUP_TIMEOUT:?}; log: {}",
            self.log.display()
        );
        self.url = server.url.clone();
        self.server = Some(server);
        let ready_url = format!("{}/ready", self.url);
        match call(client, Method::GET, &ready_url, None).await {
            Ok((200, body)) => assert_eq!(
                (&body["ready"], &body["accepts_writes"], &body["storage"]),
                (&json!(true), &json!(true), &json!("ok")),
                "{body}"
            ),
            Ok((status, body)) => panic!("/ready answered {status}: {body}"),
            Err(error) => panic!("/ready failed ({error}); log: {}", self.log.display()),
        }
        started.elapsed()
    }

    /// SIGKILL, and wait until the process is gone (it holds the data directory's lock).
    fn kill(&mut self) {
        self.server.take().expect("no server running").kill();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "crash test failed: data directory and server log kept in {}",
                self.root.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// One HTTP request; `Err` when no complete answer arrived (connection refused or cut,
/// timeout) or the answer is not JSON.
async fn call(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| error_chain(&e))?;
    if bytes.is_empty() {
        return Ok((status, Value::Null));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "status {status} with a body that is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, value))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn messages_url(url: &str, target: Target) -> String {
    format!("{url}/v1/queues/{}/messages", target.queue())
}

fn receive_url(url: &str, target: Target) -> String {
    format!("{url}/v1/queues/{}/receive", target.queue())
}

fn ack_url(url: &str, target: Target) -> String {
    format!("{url}/v1/queues/{}/ack", target.queue())
}

/// FIFO bodies are `f-<number>`, numbers increasing in send order; the group follows from it.
fn fifo_number(body: &str) -> u64 {
    body.strip_prefix("f-").unwrap().parse().unwrap()
}

fn fifo_group(body: &str) -> String {
    format!("g{}", fifo_number(body) % FIFO_GROUPS)
}

fn send_entry(target: Target, body: &str) -> Value {
    match target {
        Target::Standard => json!({"body": body}),
        Target::Fifo => json!({"body": body, "group_id": fifo_group(body)}),
    }
}

/// Sends batches of fresh bodies until the server is killed.
async fn produce(
    ctx: Arc<Ctx>,
    url: String,
    target: Target,
    producer: u32,
    cycle: u32,
    mut rng: Rng,
    killed: Arc<AtomicBool>,
) {
    let mut n: u64 = 0;
    for _ in 0..PRODUCER_REQUESTS_MAX {
        if killed.load(Ordering::SeqCst) {
            break;
        }
        let size = rng.range(1, BATCH_MAX);
        let bodies: Vec<String> = (0..size)
            .map(|_| {
                n += 1;
                match target {
                    Target::Standard => format!("p{producer}-c{cycle}-{n}"),
                    Target::Fifo => format!("f-{:010}", u64::from(cycle) * 1_000_000 + n),
                }
            })
            .collect();
        let messages: Vec<Value> = bodies.iter().map(|b| send_entry(target, b)).collect();
        ctx.state().ledgers[target.index()]
            .attempted
            .extend(bodies.iter().cloned());
        let request = json!({"messages": messages});
        match call(
            &ctx.client,
            Method::POST,
            &messages_url(&url, target),
            Some(&request),
        )
        .await
        {
            Ok((200, reply)) => record_sent(&ctx, target, &bodies, &reply),
            Ok((status, reply)) => {
                ctx.violation(format!(
                    "send to {} answered {status}: {reply}",
                    target.queue()
                ));
                break;
            }
            Err(error) => {
                if !killed.load(Ordering::SeqCst) {
                    ctx.violation(format!(
                        "send to {} failed while the server was up: {error}",
                        target.queue()
                    ));
                }
                break;
            }
        }
    }
}

fn record_sent(ctx: &Ctx, target: Target, bodies: &[String], reply: &Value) {
    let items = reply["messages"].as_array().cloned().unwrap_or_default();
    if items.len() != bodies.len() {
        ctx.violation(format!(
            "send of {} messages to {} answered {} results: {reply}",
            bodies.len(),
            target.queue(),
            items.len()
        ));
        return;
    }
    let mut problems = Vec::new();
    {
        let mut state = ctx.state();
        let ledger = &mut state.ledgers[target.index()];
        for (body, item) in bodies.iter().zip(&items) {
            if item["duplicate"] != json!(false) {
                problems.push(format!(
                    "fresh body {body} answered as {item} in {}",
                    target.queue()
                ));
            }
            let Some(id) = item["id"].as_str() else {
                problems.push(format!("send result without id: {item}"));
                continue;
            };
            ledger.sent.insert(body.clone(), id.to_string());
            ledger.sent_order.push(body.clone());
        }
    }
    for problem in problems {
        ctx.violation(problem);
    }
}

/// Receives, acks some of what it got and leaves the rest in flight, until the server is
/// killed.
async fn consume(
    ctx: Arc<Ctx>,
    url: String,
    target: Target,
    mut rng: Rng,
    killed: Arc<AtomicBool>,
) {
    let ack_percent = match target {
        Target::Standard => ACK_PERCENT_STANDARD,
        Target::Fifo => ACK_PERCENT_FIFO,
    };
    let request = json!({"max": RECEIVE_MAX, "wait_ms": 100, "visibility_timeout_ms": LEASE_MS});
    for _ in 0..TASK_REQUESTS_MAX {
        if killed.load(Ordering::SeqCst) {
            break;
        }
        let messages = match call(
            &ctx.client,
            Method::POST,
            &receive_url(&url, target),
            Some(&request),
        )
        .await
        {
            Ok((200, reply)) => reply["messages"].as_array().cloned().unwrap_or_default(),
            Ok((status, reply)) => {
                ctx.violation(format!(
                    "receive from {} answered {status}: {reply}",
                    target.queue()
                ));
                break;
            }
            Err(error) => {
                if !killed.load(Ordering::SeqCst) {
                    ctx.violation(format!(
                        "receive from {} failed while the server was up: {error}",
                        target.queue()
                    ));
                }
                break;
            }
        };
        let mut to_ack: Vec<(String, String)> = Vec::new();
        let mut problems = Vec::new();
        {
            let mut state = ctx.state();
            let mut last_in_group: HashMap<String, u64> = HashMap::new();
            for message in &messages {
                let (Some(body), Some(receipt)) =
                    (message["body"].as_str(), message["receipt"].as_str())
                else {
                    problems.push(format!(
                        "received message without body or receipt: {message}"
                    ));
                    continue;
                };
                let ledger = &mut state.ledgers[target.index()];
                ledger.received += 1;
                if !ledger.attempted.contains(body) {
                    problems.push(format!(
                        "received {body} from {}, which was never sent",
                        target.queue()
                    ));
                }
                if ledger.acked.contains(body) {
                    problems.push(format!(
                        "received {body} from {} although its ack was answered ok: {message}",
                        target.queue()
                    ));
                }
                if target == Target::Fifo {
                    let number = fifo_number(body);
                    if let Some(previous) = last_in_group.insert(fifo_group(body), number) {
                        if previous >= number {
                            problems.push(format!(
                                "FIFO receive out of order within a group: {messages:?}"
                            ));
                        }
                    }
                }
                if rng.percent(ack_percent) {
                    to_ack.push((body.to_string(), receipt.to_string()));
                } else if state.old_receipts.len() < OLD_RECEIPTS_MAX * 2 {
                    state.old_receipts.push(OldReceipt {
                        target,
                        body: body.to_string(),
                        receipt: receipt.to_string(),
                    });
                }
            }
        }
        for problem in problems {
            ctx.violation(problem);
        }
        if to_ack.is_empty() {
            continue;
        }
        let receipts: Vec<&str> = to_ack.iter().map(|(_, r)| r.as_str()).collect();
        let ack_request = json!({"receipts": receipts});
        match call(
            &ctx.client,
            Method::POST,
            &ack_url(&url, target),
            Some(&ack_request),
        )
        .await
        {
            Ok((200, reply)) => record_acks(&ctx, target, &to_ack, &reply, "ack"),
            Ok((status, reply)) => {
                ctx.violation(format!(
                    "ack on {} answered {status}: {reply}",
                    target.queue()
                ));
                break;
            }
            Err(error) => {
                ctx.state().ledgers[target.index()]
                    .ack_unknown
                    .extend(to_ack.into_iter().map(|(body, _)| body));
                if !killed.load(Ordering::SeqCst) {
                    ctx.violation(format!(
                        "ack on {} failed while the server was up: {error}",
                        target.queue()
                    ));
                }
                break;
            }
        }
    }
}

/// Records the bodies whose ack result is `{"ok": true}`; any other result is a violation.
fn record_acks(ctx: &Ctx, target: Target, acked: &[(String, String)], reply: &Value, what: &str) {
    let results = reply["results"].as_array().cloned().unwrap_or_default();
    if results.len() != acked.len() {
        ctx.violation(format!(
            "{what} of {} receipts answered: {reply}",
            acked.len()
        ));
        return;
    }
    let mut problems = Vec::new();
    {
        let mut state = ctx.state();
        for ((body, _), result) in acked.iter().zip(&results) {
            if *result == json!({"ok": true}) {
                state.ledgers[target.index()].acked.insert(body.clone());
            } else {
                problems.push(format!(
                    "{what} of {body} in {} answered {result}",
                    target.queue()
                ));
            }
        }
    }
    for problem in problems {
        ctx.violation(problem);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_send_and_revives_no_acked_message() {
    let _alone = run_alone().await;
    let test_started = Instant::now();
    let seed = match std::env::var("BATON_CRASH_SEED") {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .expect("BATON_CRASH_SEED must be a u64"),
        Err(_) => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            Rng(nanos as u64 ^ u64::from(std::process::id())).next_u64()
        }
    };
    println!("crash test seed {seed} (replay with BATON_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let ctx = Arc::new(Ctx {
        client,
        state: Mutex::new(State::default()),
    });
    let mut broker = Broker::new();
    println!("data directory {}", broker.data_dir.display());
    broker.start(&ctx.client, None).await;

    for (target, attributes) in [
        (Target::Standard, json!({})),
        (Target::Fifo, json!({"content_based_dedup": true})),
    ] {
        let (status, reply) = call(
            &ctx.client,
            Method::PUT,
            &format!("{}/v1/queues/{}", broker.url, target.queue()),
            Some(&attributes),
        )
        .await
        .unwrap();
        assert_eq!(status, 201, "create {}: {reply}", target.queue());
    }

    let mut recoveries = Vec::new();
    for cycle in 0..CYCLES {
        let killed = Arc::new(AtomicBool::new(false));
        let old_receipts = std::mem::take(&mut ctx.state().old_receipts);
        let url = broker.url.clone();
        let load_started = Instant::now();
        let mut tasks = Vec::new();
        for producer in 0..PRODUCERS {
            tasks.push(tokio::spawn(produce(
                ctx.clone(),
                url.clone(),
                Target::Standard,
                producer,
                cycle,
                rng.fork(),
                killed.clone(),
            )));
        }
        tasks.push(tokio::spawn(produce(
            ctx.clone(),
            url.clone(),
            Target::Fifo,
            0,
            cycle,
            rng.fork(),
            killed.clone(),
        )));
        for _ in 0..CONSUMERS {
            tasks.push(tokio::spawn(consume(
                ctx.clone(),
                url.clone(),
                Target::Standard,
                rng.fork(),
                killed.clone(),
            )));
        }
        tasks.push(tokio::spawn(consume(
            ctx.clone(),
            url.clone(),
            Target::Fifo,
            rng.fork(),
            killed.clone(),
        )));
        let kill_delay = Duration::from_millis(rng.range(KILL_DELAY_MS.0, KILL_DELAY_MS.1));
        let checkpoint_bytes_min =
            CHECKPOINT_BYTES_MIN[rng.range(0, CHECKPOINT_BYTES_MIN.len() as u64 - 1) as usize];

        // While the load runs: probes of what the restart must have preserved or ended.
        let probed = probe_old_receipts(&ctx, &url, old_receipts).await;
        probe_dedup(&ctx, &url, &mut rng).await;

        tokio::time::sleep(kill_delay.saturating_sub(load_started.elapsed())).await;
        killed.store(true, Ordering::SeqCst);
        broker.kill();
        for task in tasks {
            tokio::time::timeout(TASK_STOP_TIMEOUT, task)
                .await
                .expect("a client task did not stop after the kill")
                .unwrap();
        }
        let recovery = broker.start(&ctx.client, checkpoint_bytes_min).await;
        recoveries.push(recovery);
        let state = ctx.state();
        let [standard, fifo] = &state.ledgers;
        println!(
            "cycle {cycle:2}: killed after {:3} ms, {probed} old receipts probed; totals: sent {} + {} fifo, acked {} + {} fifo; restart (checkpoint_bytes_min {checkpoint_bytes_min:?}) ready in {} ms",
            kill_delay.as_millis(),
            standard.sent.len(),
            fifo.sent.len(),
            standard.acked.len(),
            fifo.acked.len(),
            recovery.as_millis()
        );
    }

    let mut failures = Vec::new();
    let url = broker.url.clone();
    let mut drained = Vec::new();
    for target in Target::ALL {
        drained.push(drain(&ctx, &url, target, &mut failures).await);
    }
    let mut settled_counts = Vec::new();
    {
        let state = ctx.state();
        for target in Target::ALL {
            let ledger = &state.ledgers[target.index()];
            let bodies = &drained[target.index()];
            check_drained(target, ledger, bodies, &mut failures);
            let settled: HashSet<&String> = ledger.acked.iter().chain(bodies.iter()).collect();
            let maybe = ledger
                .ack_unknown
                .iter()
                .filter(|b| !settled.contains(b))
                .count();
            settled_counts.push((settled.len(), maybe));
        }
    }
    for target in Target::ALL {
        let (settled, maybe) = settled_counts[target.index()];
        let stats = queue_stats(&ctx, &url, target).await;
        check_empty_stats(
            target,
            &stats,
            settled,
            maybe,
            "after the drain",
            &mut failures,
        );
    }

    // The drain's acks are durable too: one more kill must not bring anything back.
    broker.kill();
    broker.start(&ctx.client, None).await;
    let url = broker.url.clone();
    for target in Target::ALL {
        let (settled, maybe) = settled_counts[target.index()];
        let stats = queue_stats(&ctx, &url, target).await;
        check_empty_stats(
            target,
            &stats,
            settled,
            maybe,
            "after the drain and another kill",
            &mut failures,
        );
        let again = drain(&ctx, &url, target, &mut failures).await;
        if !again.is_empty() {
            failures.push(format!(
                "{}: {} messages came back after the drain and a kill, e.g. {:?}",
                target.queue(),
                again.len(),
                &again[..again.len().min(10)]
            ));
        }
    }

    let state = ctx.state();
    for target in Target::ALL {
        let ledger = &state.ledgers[target.index()];
        let bodies = &drained[target.index()];
        let unanswered_stored = bodies
            .iter()
            .filter(|b| !ledger.sent.contains_key(*b))
            .count();
        println!(
            "{:6}: attempted {}, acknowledged sends {}, received {}, acked {} (+{} unknown at a kill), drained {} (of which {} sends unanswered at a kill)",
            target.queue(),
            ledger.attempted.len(),
            ledger.sent.len(),
            ledger.received,
            ledger.acked.len(),
            ledger.ack_unknown.len(),
            bodies.len(),
            unanswered_stored,
        );
    }
    let slowest = recoveries.iter().max().copied().unwrap_or_default();
    println!(
        "{CYCLES} cycles, seed {seed}, slowest recovery {} ms, total {:.1} s",
        slowest.as_millis(),
        test_started.elapsed().as_secs_f64()
    );
    let mut report = failures;
    if state.violation_count > 0 {
        report.push(format!(
            "{} violations during the run:",
            state.violation_count
        ));
        report.extend(state.violations.iter().cloned());
    }
    drop(state);
    assert!(
        report.is_empty(),
        "crash test failed (seed {seed}, replay with BATON_CRASH_SEED={seed}):\n{}",
        report.join("\n")
    );
}
