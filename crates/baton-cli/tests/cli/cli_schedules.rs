//! End-to-end tests of `baton schedule ...`, and a crash test: the real binary against a real
//! `baton serve`, killed with SIGKILL at random moments while per-second schedules fire; no
//! tick is delivered twice and none is lost under `missed = all`. Also `baton send`'s long
//! delays (`--delay-ms` up to the retention, `--deliver-at`).
//!
//! The crash test's seed is printed first; `BATON_SCHEDULE_CRASH_SEED=<seed>` replays the same
//! kill delays (the firings' timing still varies).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{table_rows, temp_dir, Server};

#[test]
fn schedules_are_put_shown_listed_paused_fired_and_deleted() {
    let server = Server::start();
    server.http("PUT", "/v1/queues/maintenance", json!({}));
    let put = server
        .run(&[
            "schedule",
            "put",
            "stream-cleanup",
            "--cron",
            "0 3 * * *",
            "--timezone",
            "Asia/Seoul",
            "--queue",
            "maintenance",
            "--body",
            "cleanup",
            "--attr",
            "older_than_days=60",
            "--missed",
            "skip",
        ])
        .assert_success()
        .json();
    assert_eq!(put["state"], "active");
    assert_eq!(put["missed"], "skip");
    assert_eq!(put["next_fires"].as_array().unwrap().len(), 5);
    let shown = server
        .cli("schedule show stream-cleanup")
        .assert_success()
        .json();
    assert_eq!(shown, put);
    let table = server
        .cli("schedule list --table")
        .assert_success()
        .stdout
        .clone();
    let rows = table_rows(&table, "NAME WHEN TARGET");
    assert_eq!(rows.len(), 1, "{table}");
    assert_eq!(rows[0][0], "stream-cleanup");

    let paused = server
        .cli("schedule pause stream-cleanup")
        .assert_success()
        .json();
    assert_eq!(paused["state"], "paused");
    let fired = server
        .cli("schedule fire stream-cleanup")
        .assert_success()
        .json();
    assert_eq!(fired["outcome"]["ok"], true);
    let received = server.http(
        "POST",
        "/v1/queues/maintenance/receive",
        json!({"max": 10, "wait_ms": 0}),
    );
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["attributes"]["older_than_days"], "60");
    let resumed = server
        .cli("schedule resume stream-cleanup")
        .assert_success()
        .json();
    assert_eq!(resumed["state"], "active");

    server
        .run(&[
            "schedule",
            "put",
            "bad",
            "--cron",
            "61 * * * *",
            "--queue",
            "maintenance",
        ])
        .assert_error(1, "error: invalid_cron: ");
    server
        .run(&[
            "schedule",
            "put",
            "bad",
            "--cron",
            "* * * * *",
            "--queue",
            "nope",
        ])
        .assert_error(1, "error: schedule_target_not_found: ");
    server
        .cli("schedule delete stream-cleanup")
        .assert_success();
    server
        .cli("schedule show stream-cleanup")
        .assert_error(1, "error: schedule_not_found: ");
}

const SCHEDULES: usize = 8;
const KILLS: u32 = 4;
/// How long the server runs before each kill, drawn per cycle.
const RUN_MS: (u64, u64) = (700, 2_500);

fn seed() -> u64 {
    match std::env::var("BATON_SCHEDULE_CRASH_SEED") {
        Ok(seed) => seed
            .parse()
            .expect("BATON_SCHEDULE_CRASH_SEED must be a u64"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// xorshift64*: enough to draw kill delays reproducibly.
fn draw(state: &mut u64, (lo, hi): (u64, u64)) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    lo + state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (hi - lo)
}

#[test]
fn kill_9_while_schedules_fire_neither_repeats_nor_loses_a_tick() {
    let seed = seed();
    println!("schedule crash seed {seed} (BATON_SCHEDULE_CRASH_SEED replays it)");
    let mut rng = seed | 1;
    let data_dir = temp_dir("schedule-crash");
    let env = [("BATON_SCHEDULE_MISSED_GRACE_MS", "200")];
    let mut server = Server::start_in(&data_dir, &[], &env);
    server.http("PUT", "/v1/queues/ticks", json!({}));
    for n in 0..SCHEDULES {
        server
            .run(&[
                "schedule",
                "put",
                &format!("s{n}"),
                "--cron",
                "* * * * * *",
                "--queue",
                "ticks",
                "--missed",
                "all",
            ])
            .assert_success();
    }
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(draw(&mut rng, RUN_MS)));
        server.kill();
        server = Server::start_in(&data_dir, &[], &env);
    }
    std::thread::sleep(Duration::from_millis(1_500));
    for n in 0..SCHEDULES {
        server.cli(&format!("schedule pause s{n}")).assert_success();
    }
    // A send already on its way when the pause came is recorded right after it.
    std::thread::sleep(Duration::from_millis(500));
    let mut last = BTreeMap::new();
    for n in 0..SCHEDULES {
        let paused = server
            .cli(&format!("schedule show s{n}"))
            .assert_success()
            .json();
        last.insert(format!("s{n}"), paused);
    }
    let ticks = drain(&server);
    for (name, paused) in &last {
        let got = ticks.get(name.as_str()).cloned().unwrap_or_default();
        // The first tick is the first whole second after the schedule was created.
        let first = (paused["created_at"].as_u64().unwrap() / 1000 + 1) * 1000;
        let position = paused["position"].as_u64().unwrap();
        let every: Vec<u64> = (first / 1000..=position / 1000).map(|s| s * 1000).collect();
        assert_eq!(
            got, every,
            "schedule {name} (seed {seed}): every tick once, in order"
        );
        assert_eq!(paused["missed_ticks"], 0, "{name}");
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Every message of `ticks`, as fire times per schedule, in order received (acked).
fn drain(server: &Server) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    loop {
        let received = server.http(
            "POST",
            "/v1/queues/ticks/receive",
            json!({"max": 10, "wait_ms": 0}),
        );
        let messages = received["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            break;
        }
        let receipts: Vec<Value> = messages.iter().map(|m| m["receipt"].clone()).collect();
        for message in &messages {
            let name = message["attributes"]["baton.schedule"].as_str().unwrap();
            let tick: u64 = message["attributes"]["baton.fire_time"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            out.entry(name.to_string()).or_default().push(tick);
        }
        server.http(
            "POST",
            "/v1/queues/ticks/ack",
            json!({"receipts": receipts}),
        );
    }
    for ticks in out.values_mut() {
        ticks.sort_unstable();
    }
    out
}

#[test]
fn send_delays_up_to_the_retention_and_until_a_time() {
    let server = Server::start();
    server.http("PUT", "/v1/queues/later", json!({}));
    let in_an_hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    server
        .cli(&format!("send later hi --deliver-at {in_an_hour}"))
        .assert_success();
    server
        .cli("send later hi --delay-ms 86400000")
        .assert_success();
    let stats = server.http("GET", "/v1/queues/later", json!(null))["stats"].clone();
    assert_eq!(stats["delayed"], 2, "{stats}");
    server
        .cli("send later hi --delay-ms 345600000")
        .assert_error(1, "error: invalid_parameter: ");
}
