//! One batch limit on every write path: a queue send, a topic publish and a stream append each
//! take 1,000 messages or records and refuse 1,001 with a precise error, changing nothing; a
//! publish's fan-out has its own named limits (copies and bytes over all copies).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

const LIMIT: usize = 1000;

fn assert_refused(status: StatusCode, body: &Value, want: (StatusCode, &str), says: &str) {
    assert_eq!((status, error_code(body)), want, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
}

#[tokio::test]
async fn every_write_path_takes_1000_and_refuses_1001() {
    let server = TestServer::start().await;
    let limit_text = format!("{} messages given, at most {LIMIT} per call", LIMIT + 1);

    server.create_queue("q", json!({})).await;
    let messages = |n: usize| {
        (0..n)
            .map(|i| json!({"body": format!("m{i}")}))
            .collect::<Vec<_>>()
    };
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": messages(LIMIT)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), LIMIT);
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": messages(LIMIT + 1)}),
        )
        .await;
    assert_refused(
        status,
        &body,
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        &limit_text,
    );
    assert_eq!(server.stats("q").await["sent_total"], LIMIT);

    let (status, body) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server.create_queue("sub", json!({})).await;
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/s",
            json!({"target": {"queue": "sub"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let published = |n: usize| {
        (0..n)
            .map(|i| json!({"routing_key": "k", "body": format!("m{i}")}))
            .collect::<Vec<_>>()
    };
    let (status, body) = server
        .post(
            "/v1/topics/t/publish",
            json!({"messages": published(LIMIT)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages"].as_array().unwrap().len(), LIMIT);
    let (status, body) = server
        .post(
            "/v1/topics/t/publish",
            json!({"messages": published(LIMIT + 1)}),
        )
        .await;
    assert_refused(
        status,
        &body,
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        &limit_text,
    );
    assert_eq!(server.stats("sub").await["sent_total"], LIMIT);

    let (status, body) = server.put("/v1/streams/s", json!({"partitions": 1})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let records = |n: usize| {
        (0..n)
            .map(|i| json!({"value": format!("r{i}")}))
            .collect::<Vec<_>>()
    };
    let (status, body) = server
        .post("/v1/streams/s/records", json!({"records": records(LIMIT)}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), LIMIT);
    let (status, body) = server
        .post(
            "/v1/streams/s/records",
            json!({"records": records(LIMIT + 1)}),
        )
        .await;
    assert_refused(
        status,
        &body,
        (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
        &format!("{} records, at most {LIMIT} per call", LIMIT + 1),
    );
    let (_, stream) = server.get("/v1/streams/s").await;
    assert_eq!(stream["stats"]["records"], LIMIT, "{stream}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_publish_whose_fan_out_is_over_its_limits_is_refused_whole() {
    let server = TestServer::start().await;
    let (status, body) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // 51 subscriptions: 1,000 messages make 51,000 copies, over the 50,000 a publish may make.
    for i in 0..51 {
        server.create_queue(&format!("q{i}"), json!({})).await;
        let (status, body) = server
            .put(
                &format!("/v1/topics/t/subscriptions/s{i}"),
                json!({"target": {"queue": format!("q{i}")}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let messages = |n: usize| {
        (0..n)
            .map(|i| json!({"routing_key": "k", "body": format!("m{i}")}))
            .collect::<Vec<_>>()
    };
    let (status, body) = server
        .post("/v1/topics/t/publish", json!({"messages": messages(LIMIT)}))
        .await;
    assert_refused(
        status,
        &body,
        (StatusCode::PAYLOAD_TOO_LARGE, "fan_out_too_large"),
        "would make 51000 copies",
    );
    // 980 messages make 49,980 copies: within the limit.
    let (status, body) = server
        .post("/v1/topics/t/publish", json!({"messages": messages(980)}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.stats("q50").await["sent_total"], 980);

    // Bytes over all copies: 3 messages of 1,000,000 bytes to 51 queues are 153 MB, over 128 MiB.
    let big = "x".repeat(1_000_000);
    let heavy: Vec<Value> = (0..3)
        .map(|_| json!({"routing_key": "k", "body": big}))
        .collect();
    let (status, body) = server
        .post("/v1/topics/t/publish", json!({"messages": heavy}))
        .await;
    assert_refused(
        status,
        &body,
        (StatusCode::PAYLOAD_TOO_LARGE, "fan_out_too_large"),
        "153000000 bytes",
    );
    for i in 0..51 {
        assert_eq!(
            server.stats(&format!("q{i}")).await["sent_total"],
            980,
            "q{i}"
        );
    }
    server.shutdown().await;
}
