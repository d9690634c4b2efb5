//! Fenced writes end to end: an ack, nack, stream append, group ack and publish carrying a
//! replaced token are refused with 409 `fenced` and change nothing; with the current token
//! they land. (Fenced sends: `locks.rs`.)

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;

async fn acquire(server: &TestServer, holder: &str) -> u64 {
    let (status, body) = server
        .put(
            "/v1/locks/report",
            json!({"holder": holder, "ttl_ms": 60_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_u64().unwrap()
}

fn fence(token: u64) -> Value {
    json!({"lock": "report", "token": token})
}

/// A queue `jobs` with two messages in flight, a stream `audit` with one record pending in
/// group `g`, and a topic `reports` fanned out to queue `copies`: the receipts and the id.
async fn setup(server: &TestServer) -> (Vec<String>, String) {
    server.create_queue("jobs", json!({})).await;
    server.create_queue("copies", json!({})).await;
    server.send_bodies("jobs", &["one", "two"]).await;
    let received = server
        .receive("jobs", json!({"max": 2, "visibility_timeout_ms": 60_000}))
        .await;
    let receipts = received
        .iter()
        .map(|m| m["receipt"].as_str().unwrap().to_string())
        .collect();
    let (status, body) = server
        .put("/v1/streams/audit", json!({"partitions": 1}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .put(
            "/v1/streams/audit/groups/g",
            json!({"start": "earliest", "mode": "shared"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post(
            "/v1/streams/audit/records",
            json!({"records": [{"value": "first"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, read) = server
        .post(
            "/v1/streams/audit/groups/g/read",
            json!({"consumer": "w", "max": 1, "wait_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let id = read["records"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = server.put("/v1/topics/reports", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .put(
            "/v1/topics/reports/subscriptions/copies",
            json!({"target": {"queue": "copies"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (receipts, id)
}

/// Every counter a refused write could have changed.
async fn state(server: &TestServer) -> Value {
    let jobs = server.stats("jobs").await;
    let copies = server.stats("copies").await;
    let (_, audit) = server.get("/v1/streams/audit").await;
    let (_, group) = server.get("/v1/streams/audit/groups/g").await;
    json!({
        "jobs_in_flight": jobs["in_flight"],
        "jobs_visible": jobs["visible"],
        "copies": copies["visible"],
        "records": audit["stats"]["records"],
        "pending": group["stats"]["pending"],
    })
}

#[tokio::test]
async fn writes_with_a_replaced_token_are_fenced_and_change_nothing() {
    let server = TestServer::start().await;
    let (receipts, id) = setup(&server).await;
    let first = acquire(&server, "node-a").await;
    let (status, body) = server
        .post(
            "/v1/locks/report/release",
            json!({"holder": "node-a", "token": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = acquire(&server, "node-b").await;
    assert!(second > first);

    let writes = |token: u64| {
        [
            (
                "/v1/queues/jobs/ack",
                json!({"receipts": [receipts[0]], "fence": fence(token)}),
            ),
            (
                "/v1/queues/jobs/nack",
                json!({"receipts": [receipts[1]], "fence": fence(token)}),
            ),
            (
                "/v1/streams/audit/records",
                json!({"records": [{"value": "second"}], "fence": fence(token)}),
            ),
            (
                "/v1/streams/audit/groups/g/ack",
                json!({"ids": [id], "fence": fence(token)}),
            ),
            (
                "/v1/topics/reports/publish",
                json!({"messages": [{"routing_key": "daily", "body": "r"}], "fence": fence(token)}),
            ),
        ]
    };
    let before = state(&server).await;
    assert_eq!(
        before,
        json!({"jobs_in_flight": 2, "jobs_visible": 0, "copies": 0, "records": 1, "pending": 1})
    );
    for (path, body) in writes(first) {
        let (status, answer) = server.post(path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "fenced", "{path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{second} is")),
            "{path} names the current token: {message}"
        );
    }
    assert_eq!(
        state(&server).await,
        before,
        "refused writes changed nothing"
    );

    for (path, body) in writes(second) {
        let (status, answer) = server.post(path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        if let Some(results) = answer["results"].as_array() {
            assert!(results.iter().all(|r| r["ok"] == true), "{path}: {answer}");
        }
    }
    assert_eq!(
        state(&server).await,
        json!({"jobs_in_flight": 0, "jobs_visible": 1, "copies": 1, "records": 2, "pending": 0})
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_malformed_fence_is_refused_before_anything_is_written() {
    let server = TestServer::start().await;
    let (receipts, _) = setup(&server).await;
    let cases = [
        (
            json!({"lock": "report"}),
            (StatusCode::BAD_REQUEST, "malformed_request"),
        ),
        (
            json!({"lock": "", "token": 1}),
            (StatusCode::BAD_REQUEST, "invalid_name"),
        ),
        (
            json!({"lock": "report", "token": 1, "extra": 1}),
            (StatusCode::BAD_REQUEST, "malformed_request"),
        ),
        // Nobody holds the lock: every token is stale.
        (
            json!({"lock": "report", "token": 1}),
            (StatusCode::CONFLICT, "fenced"),
        ),
    ];
    for (fence, want) in cases {
        let (status, answer) = server
            .post(
                "/v1/queues/jobs/ack",
                json!({"receipts": [receipts[0]], "fence": fence}),
            )
            .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str().unwrap()),
            want,
            "{fence}: {answer}"
        );
    }
    assert_eq!(server.stats("jobs").await["in_flight"], 2);
    server.shutdown().await;
}
