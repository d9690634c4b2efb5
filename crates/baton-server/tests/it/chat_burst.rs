//! The chat burst end to end: a burst of 100,000 messages published to a topic with a live subscriber
//! and a stream subscription. The live subscriber sees every message it gets in publish order
//! and is told of every one it missed (slow-consumer drops); the stream holds all 100,000,
//! none missing, none twice, in publish order.
//!
//! With `BATON_CHAT_BURST_REPORT=1` it prints the burst time and the fan-out latency percentiles
//! (publish call start → live receipt) for docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;
use crate::topics::SseReader;

const N: usize = 100_000;
/// Messages per publish call (the limit is 500).
const BATCH: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_burst_reaches_the_stream_whole_and_the_live_subscriber_in_order() {
    let server = TestServer::options()
        .config(|config| config.live_buffer_messages = 10_000)
        .start()
        .await;
    let (status, body) = server
        .put("/v1/streams/history", json!({"partitions": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = server.put("/v1/topics/chat", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .put(
            "/v1/topics/chat/subscriptions/history",
            json!({"target": {"stream": "history"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // When each batch's publish call started, to measure publish → live receipt.
    let batch_started: Arc<Mutex<Vec<Option<Instant>>>> =
        Arc::new(Mutex::new(vec![None; N / BATCH]));
    let mut live = SseReader::open(&server, "/v1/topics/chat/live").await;
    let started_for_reader = batch_started.clone();
    let reader = tokio::spawn(async move {
        let (mut seen, mut dropped, mut last) = (0usize, 0usize, None::<usize>);
        let mut latencies = Vec::with_capacity(N);
        while seen + dropped < N {
            let (event, data) = live.next().await;
            match event.as_str() {
                "message" => {
                    let received = Instant::now();
                    let n: usize = data["body"].as_str().unwrap().parse().unwrap();
                    assert!(
                        last.is_none_or(|last| last < n),
                        "out of order: {last:?} then {n}"
                    );
                    last = Some(n);
                    seen += 1;
                    if let Some(start) = started_for_reader.lock()[n / BATCH] {
                        latencies.push(received.duration_since(start));
                    }
                }
                "dropped" => dropped += data["dropped"].as_u64().unwrap() as usize,
                other => panic!("unexpected event {other}"),
            }
        }
        (seen, dropped, latencies)
    });

    let burst = Instant::now();
    for (index, start) in (0..N).step_by(BATCH).enumerate() {
        let messages: Vec<Value> = (start..start + BATCH)
            .map(|n| json!({"routing_key": "room.1", "body": n.to_string()}))
            .collect();
        batch_started.lock()[index] = Some(Instant::now());
        let (status, body) = server
            .post("/v1/topics/chat/publish", json!({ "messages": messages }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let burst_time = burst.elapsed();
    let (seen, dropped, mut latencies) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the live subscriber accounts for every message")
        .unwrap();
    assert_eq!(seen + dropped, N, "every message seen or reported dropped");

    // The stream holds all of them, once each, in publish order.
    let mut from = 0u64;
    let mut expected = 0usize;
    loop {
        let (status, body) = server
            .get(&format!(
                "/v1/streams/history/records?partition=0&from_offset={from}&max=1000"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let records = body["records"].as_array().unwrap();
        if records.is_empty() {
            break;
        }
        for record in records {
            assert_eq!(
                record["value"].as_str().unwrap(),
                expected.to_string(),
                "the stream holds every message once, in order"
            );
            assert_eq!(record["key"], "room.1");
            expected += 1;
        }
        from = body["next_offset"].as_u64().unwrap();
    }
    assert_eq!(expected, N, "none missing");
    let (_, topic) = server.get("/v1/topics/chat").await;
    assert_eq!(topic["stats"]["published_total"], N);
    assert_eq!(topic["stats"]["live_dropped_total"], dropped);

    if std::env::var_os("BATON_CHAT_BURST_REPORT").is_some() {
        latencies.sort();
        println!(
            "chat burst: {N} messages in batches of {BATCH}: burst {:.2} s ({:.0} msg/s); live seen {seen}, dropped {dropped}; fan-out latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            burst_time.as_secs_f64(),
            N as f64 / burst_time.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.9).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
}
