//! A disk that fills up, over HTTP: sends, stream appends and publishes are refused with 507
//! `disk_low` and `Retry-After` while receives and acks go on; `/ready`, `/metrics` and the
//! live snapshot say so; once consumers have drained, the node accepts writes again by itself.

use std::time::{Duration, Instant};

use baton_storage::SimFs;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{error_code, TestServer};

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn a_filling_disk_refuses_producers_with_507_lets_consumers_drain_and_resumes_by_itself() {
    let fs = SimFs::new();
    fs.set_capacity(Some(12 * MIB));
    let server = TestServer::options()
        .durable(&fs)
        .config(|config| {
            config.segment_bytes = MIB;
            config.disk_free_min = Some(3 * MIB);
            config.disk_reserve_bytes = Some(MIB);
        })
        .start()
        .await;
    server.create_queue("q", json!({})).await;
    let (status, _) = server.put("/v1/streams/s", json!({"partitions": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);

    // One 60 KB message per request until the broker refuses.
    let body = "x".repeat(60 * 1024);
    let mut acknowledged = 0u64;
    let refusal = loop {
        let response = server
            .http
            .post(format!("{}/v1/queues/q/messages", server.base))
            .json(&json!({"messages": [{"body": format!("{acknowledged:06}{body}")}]}))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::OK {
            break response;
        }
        acknowledged += 1;
        assert!(acknowledged < 1000, "the disk never filled");
    };
    assert_eq!(refusal.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(
        refusal
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let refused: serde_json::Value = refusal.json().await.unwrap();
    assert_eq!(error_code(&refused), "disk_low", "{refused}");
    assert!(acknowledged > 20, "{acknowledged}");

    let (status, ready) = server.get("/ready").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a low disk still serves consumers: {ready}"
    );
    assert_eq!(ready["accepts_writes"], false);
    assert_eq!(ready["accepts_consumers"], true);
    assert_eq!(ready["storage"], "disk_low");
    assert_eq!(ready["disk"]["low"], true);
    assert_eq!(ready["disk"]["free_min_bytes"], 3 * MIB);

    let (status, body) = server
        .post(
            "/v1/streams/s/records",
            json!({"records": [{"value": "v"}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INSUFFICIENT_STORAGE, "disk_low")
    );
    let (status, body) = server
        .post(
            "/v1/topics/t/publish",
            json!({"messages": [{"routing_key": "k", "body": "b"}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INSUFFICIENT_STORAGE, "disk_low")
    );

    let metrics = server.metrics_text().await;
    assert!(metrics.contains("baton_disk_alarm 1"), "{metrics}");
    let refused_line = metrics
        .lines()
        .find(|l| l.starts_with("baton_writes_refused_total{reason=\"disk_low\"}"))
        .unwrap();
    let refused_n: u64 = refused_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(refused_n >= 3, "{refused_line}");

    // Consumers drain everything that was acknowledged.
    let mut drained = Vec::new();
    loop {
        let got = server.receive("q", json!({"max": 10})).await;
        if got.is_empty() {
            break;
        }
        let receipts: Vec<&str> = got.iter().map(|m| m["receipt"].as_str().unwrap()).collect();
        for result in server.ack("q", &receipts).await {
            assert_eq!(result["ok"], true, "{result}");
        }
        drained.extend(
            got.iter()
                .map(|m| m["body"].as_str().unwrap()[..6].to_string()),
        );
    }
    let expected: Vec<String> = (0..acknowledged).map(|n| format!("{n:06}")).collect();
    assert_eq!(drained, expected, "every acknowledged send, once, in order");

    // The drained log is checkpointed away and the alarm clears without a restart.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = server
            .post(
                "/v1/queues/q/messages",
                json!({"messages": [{"body": "after"}]}),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(
            Instant::now() < deadline,
            "writes were not accepted again by themselves"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = server.get("/ready").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["accepts_writes"], true, "{ready}");
    assert_eq!(ready["storage"], "ok");
    server.shutdown().await;
}

#[tokio::test]
async fn sqs_sends_on_a_low_disk_answer_service_unavailable() {
    let fs = SimFs::new();
    fs.set_capacity(Some(8 * MIB));
    let server = TestServer::options()
        .durable(&fs)
        .config(|config| {
            config.segment_bytes = MIB;
            // The alarm is on from the start: less than this is free.
            config.disk_free_min = Some(16 * MIB);
            config.disk_reserve_bytes = Some(0);
        })
        .start()
        .await;
    server.create_queue("q", json!({})).await;
    let response = server
        .http
        .post(format!("{}/", server.base))
        .header("x-amz-target", "AmazonSQS.SendMessage")
        .header("content-type", "application/x-amz-json-1.0")
        .body(
            json!({"QueueUrl": format!("{}/000000000000/q", server.base), "MessageBody": "m"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("disk space low")
            || body["Message"]
                .as_str()
                .unwrap_or_default()
                .contains("disk space low"),
        "{body}"
    );
    server.shutdown().await;
}
