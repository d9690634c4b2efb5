//! Every bad input gets a precise JSON error and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

async fn expect(
    server: &TestServer,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
    code: &str,
) {
    let (got_status, got) = server.call(method.clone(), path, body.clone()).await;
    assert_eq!(
        (got_status, error_code(&got)),
        (status, code),
        "{method} {path} {body:?} → {got}"
    );
    assert!(
        !got["error"]["message"].as_str().unwrap_or("").is_empty(),
        "a message explains it"
    );
}

#[tokio::test]
async fn malformed_bodies_are_rejected_with_the_offending_field() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let cases: &[(&str, &'static str, &str)] = &[
        ("/v1/queues/q/messages", "{not json", "invalid JSON"),
        ("/v1/queues/q/messages", "", "required"),
        (
            "/v1/queues/q/messages",
            r#"{"messages": [{"body": 5}]}"#,
            "messages[0].body",
        ),
        (
            "/v1/queues/q/messages",
            r#"{"messages": [{"body": "x", "colour": "red"}]}"#,
            "colour",
        ),
        ("/v1/queues/q/messages", r#"{"msgs": []}"#, "msgs"),
        ("/v1/queues/q/receive", r#"{"max": "ten"}"#, "max"),
        ("/v1/queues/q/receive", r#"{"max": -1}"#, "max"),
        ("/v1/queues/q/ack", r#"{"receipts": "abc"}"#, "receipts"),
        (
            "/v1/queues/q/nack",
            r#"{"receipts": ["a"], "delay": 5}"#,
            "delay",
        ),
    ];
    for (path, body, mentions) in cases {
        let (status, got) = server.raw(Method::POST, path, body).await;
        assert_eq!(
            (status, error_code(&got)),
            (StatusCode::BAD_REQUEST, "malformed_request"),
            "{path} {body}"
        );
        let message = got["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(mentions),
            "{message:?} should mention {mentions:?}"
        );
    }
    let (status, got) = server
        .raw(Method::PUT, "/v1/queues/r", r#"{"visibility_timeout": 5}"#)
        .await;
    assert_eq!(
        (status, error_code(&got)),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    assert_eq!(server.stats("q").await["sent_total"], 0);
    let (_, list) = server.get("/v1/queues").await;
    assert_eq!(
        list["queues"].as_array().unwrap().len(),
        1,
        "no queue was created by a bad request"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn names_that_break_the_rule_are_invalid() {
    let server = TestServer::start().await;
    let long = "x".repeat(81);
    for name in ["a.b", "sp%20ace", "dollar$", long.as_str(), ".fifo"] {
        expect(
            &server,
            Method::PUT,
            &format!("/v1/queues/{name}"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_name",
        )
        .await;
        expect(
            &server,
            Method::GET,
            &format!("/v1/queues/{name}"),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_name",
        )
        .await;
    }
    expect(
        &server,
        Method::PUT,
        "/v1/queues/plain",
        Some(json!({"fifo": true})),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    expect(
        &server,
        Method::PUT,
        "/v1/queues/x.fifo",
        Some(json!({"fifo": false})),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    let (_, list) = server.get("/v1/queues").await;
    assert_eq!(list["queues"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn attribute_ranges_are_checked_on_create_and_update() {
    let server = TestServer::start().await;
    let bad = [
        json!({"visibility_timeout_ms": 43_200_001u64}),
        json!({"delay_ms": 900_001}),
        json!({"retention_ms": 59_999}),
        json!({"retention_ms": 1_209_600_001u64}),
        json!({"max_message_bytes": 1023}),
        json!({"max_message_bytes": 1_048_577}),
        json!({"receive_wait_ms": 20_001}),
        json!({"max_depth": 0}),
        json!({"retry": {"base_delay_ms": 10, "max_delay_ms": 5}}),
    ];
    for attributes in &bad {
        expect(
            &server,
            Method::PUT,
            "/v1/queues/q",
            Some(attributes.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
    server.create_queue("q", json!({})).await;
    for attributes in &bad {
        expect(
            &server,
            Method::PATCH,
            "/v1/queues/q",
            Some(attributes.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
    let (_, body) = server.get("/v1/queues/q").await;
    assert_eq!(
        body["attributes"]["visibility_timeout_ms"], 30000,
        "nothing changed"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn dead_letter_queue_must_exist_and_be_of_the_same_kind() {
    let server = TestServer::start().await;
    let dlq = |queue: &str| json!({"dead_letter": {"queue": queue, "max_receive_count": 3}});
    expect(
        &server,
        Method::PUT,
        "/v1/queues/q",
        Some(dlq("missing")),
        StatusCode::BAD_REQUEST,
        "dead_letter_queue_invalid",
    )
    .await;
    server.create_queue("dlq.fifo", json!({})).await;
    expect(
        &server,
        Method::PUT,
        "/v1/queues/q",
        Some(dlq("dlq.fifo")),
        StatusCode::BAD_REQUEST,
        "dead_letter_queue_invalid",
    )
    .await;
    expect(
        &server,
        Method::PUT,
        "/v1/queues/q",
        Some(dlq("q")),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    expect(
        &server,
        Method::PUT,
        "/v1/queues/q",
        Some(json!({"dead_letter": {"queue": "dlq", "max_receive_count": 0}})),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    server.create_queue("dlq", json!({})).await;
    server.create_queue("q", dlq("dlq")).await;
    expect(
        &server,
        Method::DELETE,
        "/v1/queues/dlq",
        None,
        StatusCode::CONFLICT,
        "queue_in_use",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn sends_that_break_a_rule_change_nothing() {
    let server = TestServer::start().await;
    server
        .create_queue("q", json!({"max_message_bytes": 1024}))
        .await;
    server.create_queue("f.fifo", json!({})).await;
    let send = |messages: Value| Some(json!({"messages": messages}));
    let big = "x".repeat(1025);
    let nearly = "x".repeat(1020);
    let cases = [
        (
            "q",
            send(json!([{"body": big}])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        // Attribute names, types and values count toward the size.
        (
            "q",
            send(json!([{"body": nearly, "attributes": {"ab": "c"}}])),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
        (
            "q",
            send(json!([])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "ok"}, {"body": "bad\u{0}"}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "delay_ms": 345_600_000u64}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "attributes": {"n": {"type": "Number", "value": "abc"}}}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "attributes": {"b": {"type": "Binary", "value": "%%%"}}}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "attributes": {"AWS.x": "v"}}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "notify": {"url": "ftp://x"}}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "q",
            send(json!([{"body": "x", "group_id": ""}])),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "f.fifo",
            send(json!([{"body": "x", "dedup_id": "d"}])),
            StatusCode::BAD_REQUEST,
            "group_id_required",
        ),
        (
            "f.fifo",
            send(json!([{"body": "x", "group_id": "g"}])),
            StatusCode::BAD_REQUEST,
            "dedup_id_required",
        ),
        (
            "missing",
            send(json!([{"body": "x"}])),
            StatusCode::NOT_FOUND,
            "queue_not_found",
        ),
    ];
    for (queue, body, status, code) in cases {
        expect(
            &server,
            Method::POST,
            &format!("/v1/queues/{queue}/messages"),
            body,
            status,
            code,
        )
        .await;
    }
    let eleven: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("a{i}"), json!("v"))).collect();
    expect(
        &server,
        Method::POST,
        "/v1/queues/q/messages",
        send(json!([{"body": "x", "attributes": eleven}])),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    let too_many: Vec<Value> = (0..1001).map(|_| json!({"body": "x"})).collect();
    expect(
        &server,
        Method::POST,
        "/v1/queues/q/messages",
        send(Value::Array(too_many)),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_eq!(server.stats("q").await["sent_total"], 0);
    assert_eq!(server.stats("f.fifo").await["sent_total"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn receive_ack_nack_and_visibility_ranges_are_checked() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    server.send_bodies("q", &["a"]).await;
    let bad = [
        ("/v1/queues/q/receive", json!({"max": 0})),
        ("/v1/queues/q/receive", json!({"max": 1001})),
        ("/v1/queues/q/receive", json!({"wait_ms": 20001})),
        (
            "/v1/queues/q/receive",
            json!({"visibility_timeout_ms": 43_200_001u64}),
        ),
        ("/v1/queues/q/ack", json!({"receipts": []})),
        (
            "/v1/queues/q/nack",
            json!({"receipts": ["x"], "delay_ms": 43_200_001u64}),
        ),
        (
            "/v1/queues/q/visibility",
            json!({"receipt": "x", "timeout_ms": 43_200_001u64}),
        ),
        ("/v1/queues/q/redrive", json!({"max": 0})),
    ];
    for (path, body) in bad {
        expect(
            &server,
            Method::POST,
            path,
            Some(body),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
    let too_many: Vec<String> = (0..1001).map(|i| format!("r{i}")).collect();
    expect(
        &server,
        Method::POST,
        "/v1/queues/q/ack",
        Some(json!({"receipts": too_many})),
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    expect(
        &server,
        Method::POST,
        "/v1/queues/missing/receive",
        Some(json!({})),
        StatusCode::NOT_FOUND,
        "queue_not_found",
    )
    .await;
    let stats = server.stats("q").await;
    assert_eq!(
        (stats["visible"].as_u64(), stats["received_total"].as_u64()),
        (Some(1), Some(0))
    );

    // A receipt of another queue, or of a deleted-and-recreated queue, is invalid here.
    server.create_queue("other", json!({})).await;
    server.send_bodies("other", &["b"]).await;
    let foreign = server.receive("other", json!({})).await;
    let results = server
        .ack("q", &[foreign[0]["receipt"].as_str().unwrap()])
        .await;
    assert_eq!(results[0]["error"]["code"], "receipt_invalid");
    server.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_server_limit_are_refused_before_being_read() {
    let server = TestServer::options()
        .config(|c| c.max_request_bytes = 64 * 1024)
        .start()
        .await;
    server.create_queue("q", json!({})).await;
    let body = json!({"messages": [{"body": "x".repeat(100 * 1024)}]});
    let (status, got) = server.post("/v1/queues/q/messages", body).await;
    assert_eq!(
        (status, error_code(&got)),
        (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large")
    );

    // Without a Content-Length (chunked), the limit still holds while reading.
    let chunks = futures::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])));
    let response = server
        .http
        .post(format!("{}/v1/queues/q/messages", server.base))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let got: Value = response.json().await.unwrap();
    assert_eq!(error_code(&got), "request_too_large");
    assert_eq!(server.stats("q").await["sent_total"], 0);
    server.shutdown().await;
}
