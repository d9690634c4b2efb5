//! A real full disk under the real binary: a 48 MiB tmpfs as the data directory, 4 MiB log
//! segments, one 60 KB message per send until the broker refuses — as a new user would try it.
//!
//! Checked: with the disk-free alarm, sends are refused with 507 `disk_low` before the disk is
//! full; a `kill -9` while it is full and a restart on it lose nothing acknowledged; consumers
//! drain and the broker accepts sends again without a restart. Without the alarm, the disk
//! really fills (ENOSPC) over and over, the broker reopens its log by itself each time, and
//! after `kill -9` it starts again with every acknowledged message, and `baton storage verify`
//! finds the directory whole. (This is where a cut of an empty new segment once rewound the
//! segment before it and lost acknowledged messages.)
//!
//! Mounting a tmpfs needs root; otherwise the test says so on stderr and does nothing — the
//! same scenarios run on the simulated disk in baton-engine's `full_disk_tests` every time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{baton, run_alone, temp_dir, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

const BODY_BYTES: usize = 60 * 1024;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = temp_dir("tmpfs");
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn skip(reason: &str) {
    eprintln!("SKIPPED (full-disk test on a real tmpfs): {reason}; the same scenarios ran on the simulated disk in baton-engine's full_disk_tests");
}

fn config_file(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.with_extension("toml");
    std::fs::write(
        &path,
        format!("segment_bytes = 4194304\ntick_interval_ms = 50\n{extra}"),
    )
    .unwrap();
    path
}

async fn send(client: &reqwest::Client, url: &str, body: &str) -> (StatusCode, Value) {
    let response = client
        .post(format!("{url}/v1/queues/q/messages"))
        .json(&json!({"messages": [{"body": body}]}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends numbered 60 KB messages from `*next` on until one is refused; returns the refusal.
async fn fill(
    client: &reqwest::Client,
    url: &str,
    next: &mut u64,
    acknowledged: &mut BTreeSet<String>,
) -> (StatusCode, Value) {
    let filler = "x".repeat(BODY_BYTES);
    for _ in 0..5_000 {
        let body = format!("{:08}{filler}", *next);
        let (status, reply) = send(client, url, &body).await;
        if status != StatusCode::OK {
            return (status, reply);
        }
        acknowledged.insert(format!("{:08}", *next));
        *next += 1;
    }
    panic!("the disk never filled");
}

/// Receives everything visible (acking it when `ack`); returns the message numbers.
async fn receive_all(client: &reqwest::Client, url: &str, ack: bool) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let reply: Value = client
            .post(format!("{url}/v1/queues/q/receive"))
            .json(&json!({"max": 100, "visibility_timeout_ms": 600_000}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = reply["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            return seen;
        }
        if ack {
            let receipts: Vec<&Value> = messages.iter().map(|m| &m["receipt"]).collect();
            let acked: Value = client
                .post(format!("{url}/v1/queues/q/ack"))
                .json(&json!({"receipts": receipts}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for result in acked["results"].as_array().unwrap() {
                assert_eq!(result["ok"], true, "{result}");
            }
        }
        seen.extend(
            messages
                .iter()
                .map(|m| m["body"].as_str().unwrap()[..8].to_string()),
        );
    }
}

async fn get(client: &reqwest::Client, url: &str, path: &str) -> (StatusCode, Value) {
    let response = client.get(format!("{url}{path}")).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_refuses_sends_before_a_real_disk_is_full_and_nothing_acknowledged_is_lost() {
    let _alone = run_alone().await;
    let Some(disk) = Tmpfs::mount("48m") else {
        return skip("cannot mount a tmpfs (needs root)");
    };
    let data = disk.dir.join("data");
    let config = config_file(&disk.dir, "");
    let config = config.to_str().unwrap();
    let client = client();
    let server = Server::start_in(&data, &["--config", config], &[]);
    let (status, _) = client
        .put(format!("{}/v1/queues/q", server.url))
        .json(&json!({}))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::CREATED);
    let (mut next, mut acknowledged) = (0u64, BTreeSet::new());
    let (status, reply) = fill(&client, &server.url, &mut next, &mut acknowledged).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (StatusCode::INSUFFICIENT_STORAGE, Some("disk_low")),
        "{reply}"
    );
    assert!(
        acknowledged.len() > 300,
        "only {} sends before the alarm",
        acknowledged.len()
    );
    let (status, ready) = get(&client, &server.url, "/ready").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(
        (ready["storage"].as_str(), ready["accepts_writes"].as_bool()),
        (Some("disk_low"), Some(false))
    );

    // kill -9 in the middle of consumers' and refused producers' traffic on the full disk.
    let url = server.url.clone();
    let busy = {
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let _ = send(&client, &url, "refused").await;
                let _ = client
                    .post(format!("{url}/v1/queues/q/receive"))
                    .json(&json!({"max": 5, "visibility_timeout_ms": 1000}))
                    .send()
                    .await;
            }
        })
    };
    // A random moment of that traffic (printed, to tell failures apart).
    let delay_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 400;
    eprintln!("kill -9 after {delay_ms} ms of traffic on the full disk");
    tokio::time::sleep(Duration::from_millis(u64::from(delay_ms))).await;
    server.kill();
    let _ = busy.await;

    // A restart on the full disk starts; every acknowledged message is there.
    let server = Server::start_in(&data, &["--config", config], &[]);
    let found: BTreeSet<String> = receive_all(&client, &server.url, false)
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&found).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost after kill -9, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    server.kill();

    // Consumers drain, and sends are accepted again without a restart.
    let server = Server::start_in(&data, &["--config", config], &[]);
    let drained: BTreeSet<String> = receive_all(&client, &server.url, true)
        .await
        .into_iter()
        .collect();
    assert_eq!(drained, acknowledged);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, reply) = send(&client, &server.url, "after the drain").await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{reply}");
        assert!(
            Instant::now() < deadline,
            "sends were not accepted again by themselves"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, ready) = get(&client, &server.url, "/ready").await;
    assert_eq!(ready["accepts_writes"], true, "{ready}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_alarm_a_real_disk_fills_the_broker_resumes_when_space_is_freed_and_always_starts(
) {
    let _alone = run_alone().await;
    let Some(disk) = Tmpfs::mount("48m") else {
        return skip("cannot mount a tmpfs (needs root)");
    };
    let data = disk.dir.join("data");
    let config = config_file(&disk.dir, "disk_free_min = 0\ndisk_reserve_bytes = 0\n");
    let config = config.to_str().unwrap();
    // Another program's file on the same disk, which an operator deletes later.
    let other = disk.dir.join("other-program.log");
    std::fs::write(&other, vec![b'o'; 8 * 1024 * 1024]).unwrap();
    let client = client();
    let server = Server::start_in(&data, &["--config", config], &[]);
    let status = client
        .put(format!("{}/v1/queues/q", server.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::CREATED);
    let (mut next, mut acknowledged) = (0u64, BTreeSet::new());
    let mut per_round = Vec::new();
    for round in 0..2 {
        let before = acknowledged.len();
        let (status, reply) = fill(&client, &server.url, &mut next, &mut acknowledged).await;
        assert!(
            (status == StatusCode::INSUFFICIENT_STORAGE && reply["error"]["code"] == "disk_low")
                || status == StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: {status} {reply}"
        );
        per_round.push(acknowledged.len() - before);
        // Reads keep working while the log is stopped (but for the moment of the reopen,
        // which reloads the state from disk and answers 503 `not_ready` meanwhile).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, reply) = get(&client, &server.url, "/v1/queues/q").await;
            if status == StatusCode::OK {
                break;
            }
            assert_eq!(reply["error"]["code"], "not_ready", "{status} {reply}");
            assert!(Instant::now() < deadline, "reads did not come back");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The operator frees space; the broker reopens its log by itself (about once a second).
        let _ = std::fs::remove_file(&other);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    assert!(
        per_round.iter().all(|n| *n > 50),
        "acknowledged per round: {per_round:?}"
    );
    server.kill();
    let verify = baton(
        &["storage", "verify", "--data-dir", data.to_str().unwrap()],
        "",
    );
    assert!(
        verify.status.success(),
        "verify: {}\n{}",
        verify.stdout,
        verify.stderr
    );
    let report: Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let server = Server::start_in(&data, &["--config", config], &[]);
    let found: BTreeSet<String> = receive_all(&client, &server.url, false)
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&found).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    server.stop();
}
