//! Every endpoint answers as the contract in DESIGN.md says.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{error_code, TestServer};

#[tokio::test]
async fn health_ready_and_server_info() {
    let server = TestServer::options()
        .config(|c| c.node_id = Some("node-a".to_string()))
        .start()
        .await;
    let (status, body) = server.get("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = server.get("/ready").await;
    assert_eq!(
        (status, body["ready"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, body) = server.get("/v1/server").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["node_id"], "node-a");
    assert_eq!(body["engine"], "memory");
    assert_eq!(body["cluster_members"], json!(["node-a"]));
    assert!(body["uptime_ms"].is_u64());
    assert_eq!(
        body["listen"].as_str().unwrap(),
        server.base.trim_start_matches("http://")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn queue_lifecycle_create_show_list_update_delete() {
    let server = TestServer::start().await;
    let (status, body) = server
        .put("/v1/queues/orders", json!({"visibility_timeout_ms": 5000}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "orders");
    assert_eq!(body["attributes"]["visibility_timeout_ms"], 5000);
    assert_eq!(body["attributes"]["retention_ms"], 4 * 24 * 3600 * 1000u64);
    assert_eq!(body["attributes"]["max_message_bytes"], 1_048_576);
    assert_eq!(body["stats"]["visible"], 0);

    // Same attributes: idempotent. Different: 409 naming the difference.
    let (status, _) = server
        .put("/v1/queues/orders", json!({"visibility_timeout_ms": 5000}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .put("/v1/queues/orders", json!({"visibility_timeout_ms": 6000}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "queue_exists")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("visibility_timeout_ms"));

    // An empty body creates with defaults; FIFO is inferred from the name.
    let (status, body) = server.call(Method::PUT, "/v1/queues/jobs.fifo", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["attributes"]["fifo"], true);

    let (status, body) = server.get("/v1/queues").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["jobs.fifo", "orders"]);

    let (status, body) = server
        .call(
            Method::PATCH,
            "/v1/queues/orders",
            Some(json!({"delay_ms": 100, "max_depth": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["attributes"]["delay_ms"], 100);
    assert_eq!(body["attributes"]["max_depth"], 10);
    assert_eq!(
        body["attributes"]["visibility_timeout_ms"], 5000,
        "untouched fields stay"
    );
    let (_, body) = server
        .call(
            Method::PATCH,
            "/v1/queues/orders",
            Some(json!({"max_depth": null})),
        )
        .await;
    assert_eq!(
        body["attributes"]["max_depth"],
        serde_json::Value::Null,
        "null clears"
    );
    let (status, body) = server
        .call(
            Method::PATCH,
            "/v1/queues/orders",
            Some(json!({"fifo": true})),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );

    let (status, _) = server.call(Method::DELETE, "/v1/queues/orders", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/queues/orders").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "queue_not_found")
    );
    let (status, body) = server.call(Method::DELETE, "/v1/queues/orders", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "queue_not_found")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn send_receive_ack_round_trips_bodies_and_typed_attributes() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": [{
                "body": "héllo",
                "attributes": {
                    "plain": "text",
                    "count": {"type": "Number", "value": "42"},
                    "blob": {"type": "Binary", "value": "AAEC"},
                    "label": {"type": "String.custom", "value": "x"}
                }
            }]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = &body["messages"][0];
    assert_eq!(sent["duplicate"], false);
    assert!(sent["seq"].is_u64());
    let id = sent["id"].as_str().unwrap();

    let messages = server.receive("q", json!({"max": 10})).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message["id"], id);
    assert_eq!(message["body"], "héllo");
    assert_eq!(message["attributes"]["plain"], "text");
    assert_eq!(
        message["attributes"]["count"],
        json!({"type": "Number", "value": "42"})
    );
    assert_eq!(
        message["attributes"]["blob"],
        json!({"type": "Binary", "value": "AAEC"})
    );
    assert_eq!(
        message["attributes"]["label"],
        json!({"type": "String.custom", "value": "x"})
    );
    assert_eq!(message["receive_count"], 1);
    assert!(message["sent_at"].as_u64().unwrap() <= message["first_received_at"].as_u64().unwrap());
    assert_eq!(message["group_id"], serde_json::Value::Null);

    let stats = server.stats("q").await;
    assert_eq!(
        (stats["visible"].as_u64(), stats["in_flight"].as_u64()),
        (Some(0), Some(1))
    );

    let results = server
        .ack("q", &[message["receipt"].as_str().unwrap()])
        .await;
    assert_eq!(results, vec![json!({"ok": true})]);
    let stats = server.stats("q").await;
    assert_eq!(stats["in_flight"], 0);
    assert_eq!(stats["acked_total"], 1);
    assert_eq!(stats["sent_total"], 1);
    assert_eq!(stats["received_total"], 1);

    // Acking again: the receipt is stale, per item, nothing changes.
    let results = server
        .ack("q", &[message["receipt"].as_str().unwrap(), "garbage"])
        .await;
    assert_eq!(results[0]["error"]["code"], "receipt_stale");
    assert_eq!(results[1]["error"]["code"], "receipt_invalid");
    assert_eq!(server.stats("q").await["acked_total"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn message_status_shows_history_through_ack() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let id = server.send_bodies("q", &["a"]).await.remove(0);
    let (status, body) = server.get(&format!("/v1/queues/q/messages/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["queue"], "q");

    let received = server.receive("q", json!({})).await;
    let (_, body) = server.get(&format!("/v1/queues/q/messages/{id}")).await;
    assert_eq!(body["status"], "PROCESSING");
    let receipt = received[0]["receipt"].as_str().unwrap();
    let (_, nacked) = server
        .post("/v1/queues/q/nack", json!({"receipts": [receipt]}))
        .await;
    assert_eq!(nacked["results"][0], json!({"ok": true}));
    let received = server.receive("q", json!({})).await;
    server
        .ack("q", &[received[0]["receipt"].as_str().unwrap()])
        .await;

    let (_, body) = server.get(&format!("/v1/queues/q/messages/{id}")).await;
    assert_eq!(body["status"], "COMPLETED");
    let events: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec!["sent", "received", "nacked", "received", "acked"]
    );
    assert_eq!(body["history"][4]["receive_count"], 2);

    let (status, body) = server
        .get("/v1/queues/q/messages/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "message_not_found")
    );
    let (status, body) = server.get("/v1/queues/q/messages/not-a-uuid").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn purge_deletes_everything_and_reports_the_count() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let ids = server.send_bodies("q", &["a", "b", "c"]).await;
    server.receive("q", json!({"max": 1})).await;
    let (status, body) = server.post("/v1/queues/q/purge", json!({})).await;
    assert_eq!((status, body["purged"].as_u64()), (StatusCode::OK, Some(3)));
    let stats = server.stats("q").await;
    assert_eq!(
        (stats["visible"].as_u64(), stats["in_flight"].as_u64()),
        (Some(0), Some(0))
    );
    let (_, body) = server
        .get(&format!("/v1/queues/q/messages/{}", ids[0]))
        .await;
    assert_eq!(body["status"], "PURGED");
    server.shutdown().await;
}

#[tokio::test]
async fn visibility_extends_and_releases_a_lease() {
    let server = TestServer::start().await;
    server
        .create_queue("q", json!({"visibility_timeout_ms": 300}))
        .await;
    server.send_bodies("q", &["a"]).await;
    let received = server.receive("q", json!({})).await;
    let receipt = received[0]["receipt"].as_str().unwrap();
    let (status, body) = server
        .post(
            "/v1/queues/q/visibility",
            json!({"receipt": receipt, "timeout_ms": 60000}),
        )
        .await;
    assert_eq!(
        (status, body.clone()),
        (StatusCode::OK, json!({"ok": true}))
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        server.receive("q", json!({})).await.is_empty(),
        "extended lease hides the message"
    );

    let (status, _) = server
        .post(
            "/v1/queues/q/visibility",
            json!({"receipt": receipt, "timeout_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = server.receive("q", json!({})).await;
    assert_eq!(again.len(), 1, "released at once");
    assert_eq!(again[0]["receive_count"], 2);

    let (status, body) = server
        .post(
            "/v1/queues/q/visibility",
            json!({"receipt": receipt, "timeout_ms": 10}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "receipt_stale")
    );
    let (status, body) = server
        .post(
            "/v1/queues/q/visibility",
            json!({"receipt": "xyz", "timeout_ms": 10}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "receipt_invalid")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn nack_with_delay_hides_the_message_until_the_delay_ends() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    server.send_bodies("q", &["a"]).await;
    let received = server.receive("q", json!({})).await;
    let receipt = received[0]["receipt"].as_str().unwrap();
    let (_, body) = server
        .post(
            "/v1/queues/q/nack",
            json!({"receipts": [receipt], "delay_ms": 400}),
        )
        .await;
    assert_eq!(body["results"][0], json!({"ok": true}));
    assert_eq!(server.stats("q").await["delayed"], 1);
    assert!(server.receive("q", json!({})).await.is_empty());
    let started = std::time::Instant::now();
    let again = server.receive("q", json!({"wait_ms": 5000})).await;
    assert_eq!(again.len(), 1, "a long poll wakes when the delay ends");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/v1/nothing").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = server.call(Method::DELETE, "/v1/queues", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_expose_queue_figures_and_request_latency() {
    let server = TestServer::start().await;
    server.create_queue("jobs", json!({})).await;
    server.send_bodies("jobs", &["a", "b"]).await;
    let got = server.receive("jobs", json!({"max": 1})).await;
    server
        .ack("jobs", &[got[0]["receipt"].as_str().unwrap()])
        .await;
    let response = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    for line in [
        "baton_ready 1",
        "baton_queue_messages{queue=\"jobs\",state=\"visible\"} 1",
        "baton_queue_messages{queue=\"jobs\",state=\"in_flight\"} 0",
        "baton_queue_sent_total{queue=\"jobs\"} 2",
        "baton_queue_acked_total{queue=\"jobs\"} 1",
        "# TYPE baton_http_request_duration_seconds histogram",
        "baton_http_responses_total{api=\"native\",action=\"/v1/queues/{queue}/messages\",method=\"POST\",status=\"200\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let count_line = text
        .lines()
        .find(|l| l.starts_with("baton_http_request_duration_seconds_count{api=\"native\",action=\"/v1/queues/{queue}/ack\""))
        .unwrap();
    assert!(count_line.ends_with(" 1"), "{count_line}");
    server.shutdown().await;
}
