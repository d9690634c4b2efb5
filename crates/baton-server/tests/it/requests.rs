//! Request/response end to end: replies through the ack and through `/v1/replies`, timeouts
//! (504), late and unknown replies discarded and counted, limits and bad input.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

/// Starts a request in the background; returns its eventual `(status, body)`.
fn request(
    server: &TestServer,
    queue: &str,
    body: Value,
) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let http = server.http.clone();
    let url = format!("{}/v1/queues/{queue}/request", server.base);
    tokio::spawn(async move {
        let response = http.post(url).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    })
}

async fn receive_one(server: &TestServer, queue: &str) -> Value {
    let messages = server
        .receive(queue, json!({"max": 1, "wait_ms": 10000}))
        .await;
    assert_eq!(messages.len(), 1);
    messages[0].clone()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_request_gets_the_reply_given_with_the_ack() {
    let server = TestServer::start().await;
    server.create_queue("rpc", json!({})).await;
    let pending = request(
        &server,
        "rpc",
        json!({"body": "2+2", "attributes": {"op": "add"}, "timeout_ms": 10000}),
    );
    let message = receive_one(&server, "rpc").await;
    assert_eq!(message["body"], "2+2");
    assert_eq!(message["attributes"]["op"], "add");
    let correlation_id = message["attributes"]["baton.correlation_id"]
        .as_str()
        .unwrap();
    assert_eq!(correlation_id, message["id"].as_str().unwrap());
    let (status, body) = server
        .post(
            "/v1/queues/rpc/ack",
            json!({"receipts": [message["receipt"]], "reply": {"body": "4", "attributes": {"status": "ok"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"], json!([{"ok": true}]));
    assert_eq!(
        body["replies"],
        json!([{"correlation_id": correlation_id, "delivered": true}])
    );
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["reply"],
        json!({"body": "4", "attributes": {"status": "ok"}})
    );
    assert_eq!(body["correlation_id"], correlation_id);
    assert_eq!(server.stats("rpc").await["acked_total"], 1);
    let text = server.metrics_text().await;
    assert_eq!(metric(&text, "baton_replies_delivered_total"), 1);
    assert_eq!(metric(&text, "baton_requests_pending"), 0);
}

#[tokio::test]
async fn a_request_gets_the_reply_posted_to_its_correlation_id() {
    let server = TestServer::start().await;
    server.create_queue("rpc", json!({})).await;
    let pending = request(&server, "rpc", json!({"body": "ping", "timeout_ms": 10000}));
    let message = receive_one(&server, "rpc").await;
    let correlation_id = message["attributes"]["baton.correlation_id"]
        .as_str()
        .unwrap();
    let (status, body) = server
        .post(
            &format!("/v1/replies/{correlation_id}"),
            json!({"body": "pong"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"correlation_id": correlation_id, "delivered": true})
    );
    let (status, body) = pending.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["reply"]["body"], "pong");
    let (status, body) = server
        .post(
            &format!("/v1/replies/{correlation_id}"),
            json!({"body": "again"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "reply_not_expected"),
        "a second reply is discarded"
    );
}

#[tokio::test]
async fn a_request_without_a_reply_times_out_and_late_replies_are_discarded_and_counted() {
    let server = TestServer::start().await;
    server.create_queue("rpc", json!({})).await;
    let (status, body) = request(&server, "rpc", json!({"body": "slow", "timeout_ms": 100}))
        .await
        .unwrap();
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "request_timeout")
    );
    let message_text = body["error"]["message"].as_str().unwrap();
    assert!(message_text.contains("100 ms"), "{message_text}");
    let message = receive_one(&server, "rpc").await;
    let correlation_id = message["attributes"]["baton.correlation_id"]
        .as_str()
        .unwrap();
    let (status, body) = server
        .post(
            &format!("/v1/replies/{correlation_id}"),
            json!({"body": "late"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "reply_not_expected")
    );
    let (status, body) = server
        .post(
            "/v1/queues/rpc/ack",
            json!({"receipts": [message["receipt"]], "reply": {"body": "late too"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the ack itself succeeds");
    assert_eq!(body["results"], json!([{"ok": true}]));
    assert_eq!(
        body["replies"],
        json!([{"correlation_id": correlation_id, "delivered": false}])
    );
    let (status, body) = server
        .post("/v1/replies/no-such-request", json!({"body": "x"}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "reply_not_expected")
    );
    let text = server.metrics_text().await;
    assert_eq!(metric(&text, "baton_requests_timed_out_total"), 1);
    assert_eq!(metric(&text, "baton_replies_discarded_total"), 3);
    assert_eq!(metric(&text, "baton_requests_pending"), 0);
}

#[tokio::test]
async fn pending_requests_are_bounded() {
    let server = TestServer::options()
        .config(|config| config.max_pending_requests = 1)
        .start()
        .await;
    server.create_queue("rpc", json!({})).await;
    let first = request(&server, "rpc", json!({"body": "1", "timeout_ms": 10000}));
    let message = receive_one(&server, "rpc").await;
    let (status, body) = server
        .post(
            "/v1/queues/rpc/request",
            json!({"body": "2", "timeout_ms": 10000}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_pending_requests")
    );
    assert_eq!(
        server.stats("rpc").await["visible"],
        0,
        "the refused request sent nothing"
    );
    server
        .post(
            "/v1/queues/rpc/ack",
            json!({"receipts": [message["receipt"]], "reply": {"body": "done"}}),
        )
        .await;
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    let (status, _) = server
        .post(
            "/v1/queues/rpc/request",
            json!({"body": "3", "timeout_ms": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "the slot was freed");
}

#[tokio::test]
async fn bad_request_and_reply_input_is_refused_precisely() {
    let server = TestServer::options()
        .config(|config| config.request_timeout_ms_max = 1000)
        .start()
        .await;
    server.create_queue("rpc", json!({})).await;
    for (request, status, code) in [
        (
            json!({"body": "x", "timeout_ms": 0}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            json!({"body": "x", "timeout_ms": 1001}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            json!({"body": "x"}),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            json!({"body": "x", "timeout_ms": 10, "attributes": {"baton.correlation_id": "mine"}}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            json!({"body": "x".repeat(1024 * 1024 + 1), "timeout_ms": 10}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
    ] {
        let (got, body) = server.post("/v1/queues/rpc/request", request).await;
        assert_eq!((got, error_code(&body)), (status, code), "{body}");
    }
    let (status, body) = server
        .post(
            "/v1/queues/nope/request",
            json!({"body": "x", "timeout_ms": 10}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "queue_not_found")
    );
    assert_eq!(
        server.stats("rpc").await["visible"],
        0,
        "no bad request sent anything"
    );

    let (status, body) = server
        .post(
            "/v1/replies/x",
            json!({"body": "x", "attributes": {"bad name": "v"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("reply.attributes"));
    let (status, body) = server.post("/v1/replies/x", json!({"text": "x"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    let (status, body) = server
        .post(
            "/v1/queues/rpc/ack",
            json!({"receipts": [], "reply": {"body": "x".repeat(1024 * 1024 + 1)}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("reply"));
}
