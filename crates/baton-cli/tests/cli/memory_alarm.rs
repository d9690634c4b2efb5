//! The memory alarm under the real binary: a budget (`memory_high_watermark`) of 32 MiB for
//! messages, then batches of 1 KiB messages until the broker refuses — the backlog of a queue
//! whose consumers are down.
//!
//! Checked: the refusal is 503 `memory_pressure` with `Retry-After`, `/ready` says writes are
//! not accepted while consumers are, every acknowledged message is received and acked, and
//! once the backlog is drained the broker accepts sends again by itself.

use std::time::{Duration, Instant};

use crate::common::Server;
use reqwest::StatusCode;
use serde_json::{json, Value};

const BATCH: usize = 100;
const WATERMARK: u64 = 32 * 1024 * 1024;

async fn ready(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(format!("{url}/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_backlog_that_outgrows_the_memory_budget_is_refused_drained_and_accepted_again() {
    let watermark = WATERMARK.to_string();
    let server = Server::start_with(&[
        ("BATON_MEMORY_HIGH_WATERMARK", watermark.as_str()),
        ("BATON_FSYNC", "never"),
    ]);
    let client = reqwest::Client::new();
    let url = &server.url;
    let created = client
        .put(format!("{url}/v1/queues/backlog"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());

    let body = "x".repeat(1024);
    let mut acknowledged = 0u64;
    let refusal = loop {
        let messages: Vec<Value> = (0..BATCH)
            .map(|i| json!({"body": format!("{:08}{body}", acknowledged + i as u64)}))
            .collect();
        let response = client
            .post(format!("{url}/v1/queues/backlog/messages"))
            .json(&json!({ "messages": messages }))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            break response;
        }
        acknowledged += BATCH as u64;
        // 32 MiB of budget holds far fewer than 100,000 messages of 1 KiB.
        assert!(acknowledged < 100_000, "the memory alarm never went on");
    };
    assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refusal
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let refused: Value = refusal.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "memory_pressure", "{refused}");
    // About 1,160 bytes each (body, id, index): the alarm went on near 28,900 messages, a
    // tick's worth of sends later at most.
    assert!(
        (25_000..40_000).contains(&acknowledged),
        "{acknowledged} messages before the alarm"
    );

    let during = ready(&client, url).await;
    assert!(
        during["memory"]["used_bytes"].as_u64().unwrap() >= WATERMARK,
        "{during}"
    );
    assert!(
        during["memory"]["resident_bytes"].as_u64().unwrap() > WATERMARK,
        "{during}"
    );
    assert_eq!(during["accepts_writes"], false, "{during}");
    assert_eq!(during["accepts_consumers"], true, "{during}");
    assert_eq!(during["memory"]["alarm"], true, "{during}");

    // The consumers come back and drain the backlog.
    let mut drained = 0u64;
    loop {
        let got: Value = client
            .post(format!("{url}/v1/queues/backlog/receive"))
            .json(&json!({"max": 1000, "wait_ms": 0}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = got["messages"].as_array().unwrap();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let expected = format!("{drained:08}");
            assert_eq!(&message["body"].as_str().unwrap()[..8], expected);
            drained += 1;
        }
        let receipts: Vec<&str> = messages
            .iter()
            .map(|m| m["receipt"].as_str().unwrap())
            .collect();
        let acked: Value = client
            .post(format!("{url}/v1/queues/backlog/ack"))
            .json(&json!({ "receipts": receipts }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            acked["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["ok"] == true),
            "{acked}"
        );
    }
    assert_eq!(
        drained, acknowledged,
        "every acknowledged message, once, in order"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = ready(&client, url).await;
        if after["accepts_writes"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes were not accepted again after the drain: {after}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = client
        .post(format!("{url}/v1/queues/backlog/messages"))
        .json(&json!({"messages": [{"body": "after the drain"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
