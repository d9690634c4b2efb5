//! Long delays on the native API: `delay_ms` up to the queue's retention and an absolute
//! `deliver_at`, each refused precisely when out of range; the SQS API keeps its 15 minutes.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

const HOUR_MS: u64 = 60 * 60 * 1000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn send(server: &TestServer, message: Value) -> (StatusCode, Value) {
    server
        .post("/v1/queues/later/messages", json!({"messages": [message]}))
        .await
}

#[tokio::test]
async fn native_sends_may_be_delayed_up_to_the_retention() {
    let server = TestServer::start().await;
    let retention_ms = 2 * 24 * HOUR_MS;
    server
        .create_queue("later", json!({"retention_ms": retention_ms}))
        .await;
    let (status, body) = send(
        &server,
        json!({"body": "in a day", "delay_ms": 24 * HOUR_MS}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &server,
        json!({"body": "at", "deliver_at": now_ms() + 3 * HOUR_MS}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(&server, json!({"body": "past", "deliver_at": 1_000})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stats = server.stats("later").await;
    assert_eq!(
        (stats["delayed"].as_u64(), stats["visible"].as_u64()),
        (Some(2), Some(1)),
        "{stats}"
    );
    let received = server
        .receive("later", json!({"max": 10, "wait_ms": 0}))
        .await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0]["body"], "past",
        "a deliver_at already passed delivers at once"
    );

    let (status, body) = send(&server, json!({"body": "x", "delay_ms": retention_ms})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("within the queue's retention (172800000 ms)"),
        "{message}"
    );
    let (status, body) = send(
        &server,
        json!({"body": "x", "deliver_at": now_ms() + retention_ms + HOUR_MS}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        "{body}"
    );
    let (status, body) = send(
        &server,
        json!({"body": "x", "delay_ms": 1, "deliver_at": 1}),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not both"),
        "{body}"
    );
    assert_eq!(
        server.stats("later").await["delayed"],
        2,
        "refusals changed nothing"
    );
}

#[tokio::test]
async fn the_sqs_api_keeps_its_fifteen_minute_limit() {
    let server = TestServer::start().await;
    server.create_queue("later", json!({})).await;
    let url = format!("{}/000000000000/later", server.base);
    let response = server
        .http
        .post(format!("{}/", server.base))
        .form(&[
            ("Action", "SendMessage"),
            ("QueueUrl", url.as_str()),
            ("MessageBody", "x"),
            ("DelaySeconds", "901"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("DelaySeconds"), "{text}");
    assert_eq!(server.stats("later").await["delayed"], 0);
}
