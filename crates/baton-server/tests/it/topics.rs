//! Topics end to end: every endpoint, fan-out by pattern and filter, all-or-nothing publish,
//! durability across a restart, live SSE and WebSocket delivery with slow-consumer drops, and
//! every bad input.

use std::time::Duration;

use baton_storage::SimFs;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

async fn topic(server: &TestServer, name: &str) {
    let (status, body) = server.put(&format!("/v1/topics/{name}"), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn subscribe(server: &TestServer, topic: &str, name: &str, request: Value) {
    let (status, body) = server
        .put(&format!("/v1/topics/{topic}/subscriptions/{name}"), request)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn publish(server: &TestServer, topic: &str, messages: Value) -> (StatusCode, Value) {
    server
        .post(
            &format!("/v1/topics/{topic}/publish"),
            json!({ "messages": messages }),
        )
        .await
}

fn bodies(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect()
}

async fn depth(server: &TestServer, queue: &str) -> u64 {
    let stats = server.stats(queue).await;
    stats["visible"].as_u64().unwrap()
        + stats["in_flight"].as_u64().unwrap()
        + stats["delayed"].as_u64().unwrap()
}

#[tokio::test]
async fn topics_and_subscriptions_are_created_listed_shown_and_deleted() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    topic(&server, "orders").await;
    let (status, body) = server.put("/v1/topics/orders", json!({})).await;
    assert_eq!(status, StatusCode::OK, "an existing topic is found: {body}");
    let (status, _) = server.raw(Method::PUT, "/v1/topics/empty-body", "").await;
    assert_eq!(status, StatusCode::CREATED, "the body is optional");

    let request =
        json!({"target": {"queue": "q"}, "pattern": "order.*", "filter": {"region": ["eu"]}});
    subscribe(&server, "orders", "eu", request.clone()).await;
    let (status, body) = server
        .put("/v1/topics/orders/subscriptions/eu", request)
        .await;
    assert_eq!(status, StatusCode::OK, "identical is idempotent: {body}");
    assert_eq!(body["pattern"], "order.*");
    assert_eq!(body["filter"], json!({"region": ["eu"]}));
    let (status, body) = server
        .put(
            "/v1/topics/orders/subscriptions/eu",
            json!({"target": {"queue": "q"}, "pattern": "order.#"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "subscription_exists")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("pattern"), "{message}");

    let (status, body) = server.get("/v1/topics/orders/subscriptions/eu").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["target"], json!({"queue": "q"}));
    let (status, body) = server.get("/v1/topics/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "orders");
    assert_eq!(body["subscriptions"].as_array().unwrap().len(), 1);
    assert_eq!(body["stats"]["published_total"], 0);
    let (_, body) = server.get("/v1/topics").await;
    let names: Vec<&str> = body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["empty-body", "orders"]);

    let (status, _) = server
        .call(Method::DELETE, "/v1/topics/orders/subscriptions/eu", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .call(Method::DELETE, "/v1/topics/orders/subscriptions/eu", None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "subscription_not_found")
    );
    let (status, body) = server.get("/v1/topics/orders/subscriptions/eu").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "subscription_not_found")
    );
    let (status, _) = server.call(Method::DELETE, "/v1/topics/orders", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (method, path) in [
        (Method::GET, "/v1/topics/orders"),
        (Method::DELETE, "/v1/topics/orders"),
        (Method::GET, "/v1/topics/orders/subscriptions/eu"),
    ] {
        let (status, body) = server.call(method, path, None).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "topic_not_found"),
            "{path}"
        );
    }
    let (status, body) = publish(
        &server,
        "orders",
        json!([{"routing_key": "a", "body": "x"}]),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "topic_not_found")
    );
    let (status, body) = server
        .put(
            "/v1/topics/orders/subscriptions/s",
            json!({"target": {"queue": "q"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "topic_not_found")
    );
}

#[tokio::test]
async fn publish_fans_out_to_every_matching_queue_by_pattern_and_filter() {
    let server = TestServer::start().await;
    for queue in ["audit", "eu-created", "big", "never"] {
        server.create_queue(queue, json!({})).await;
    }
    topic(&server, "orders").await;
    subscribe(
        &server,
        "orders",
        "all",
        json!({"target": {"queue": "audit"}}),
    )
    .await;
    subscribe(
        &server,
        "orders",
        "eu-created",
        json!({"target": {"queue": "eu-created"}, "pattern": "order.eu.created"}),
    )
    .await;
    subscribe(
        &server,
        "orders",
        "also-eu",
        json!({"target": {"queue": "eu-created"}, "pattern": "order.eu.#"}),
    )
    .await;
    subscribe(
        &server,
        "orders",
        "big",
        json!({"target": {"queue": "big"}, "pattern": "order.#",
               "filter": {"amount": [{"numeric": [">=", 1000]}], "currency": [{"anything-but": ["XXX"]}]}}),
    )
    .await;
    subscribe(
        &server,
        "orders",
        "never",
        json!({"target": {"queue": "never"}, "pattern": "refund.*"}),
    )
    .await;

    let (status, body) = publish(
        &server,
        "orders",
        json!([
            {"routing_key": "order.eu.created", "body": "1",
             "attributes": {"amount": {"type": "Number", "value": "50"}, "currency": "EUR"}},
            {"routing_key": "order.us.created", "body": "2",
             "attributes": {"amount": {"type": "Number", "value": "5000"}, "currency": "USD"}},
            {"routing_key": "order.us.created", "body": "3",
             "attributes": {"amount": {"type": "Number", "value": "5000"}, "currency": "XXX"}},
            {"routing_key": "order.eu.created", "body": "4",
             "attributes": {"amount": {"type": "Number", "value": "1000"}, "currency": "EUR"}},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delivered: Vec<u64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delivered_to"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered, [3, 2, 1, 4]);

    let received = server.receive("audit", json!({"max": 10})).await;
    assert_eq!(bodies(&received), ["1", "2", "3", "4"]);
    assert_eq!(
        received[0]["id"], body["messages"][0]["id"],
        "every copy carries the published id"
    );
    assert_eq!(received[0]["attributes"]["currency"], "EUR");
    let received = server.receive("eu-created", json!({"max": 10})).await;
    assert_eq!(
        bodies(&received),
        ["1", "4"],
        "two matching subscriptions to one queue deliver one copy"
    );
    let received = server.receive("big", json!({"max": 10})).await;
    assert_eq!(bodies(&received), ["2", "4"]);
    assert_eq!(depth(&server, "never").await, 0);

    let (status, body) = publish(
        &server,
        "orders",
        json!([{"routing_key": "nothing.here", "body": "x"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["messages"][0]["delivered_to"], 1,
        "`all` has no filter"
    );
    server
        .call(Method::DELETE, "/v1/topics/orders/subscriptions/all", None)
        .await;
    let (_, body) = publish(
        &server,
        "orders",
        json!([{"routing_key": "nothing.here", "body": "y"}]),
    )
    .await;
    assert_eq!(body["messages"][0]["delivered_to"], 0);
    let (_, body) = server.get("/v1/topics/orders").await;
    assert_eq!(
        body["stats"],
        json!({"published_total": 6, "delivered_total": 11, "unmatched_total": 1,
               "live_subscribers": 0, "live_sent_total": 0, "live_dropped_total": 0})
    );
}

#[tokio::test]
async fn a_publish_that_cannot_reach_every_target_changes_nothing() {
    let server = TestServer::start().await;
    server.create_queue("ok", json!({})).await;
    server.create_queue("full", json!({"max_depth": 2})).await;
    server.send_bodies("full", &["already"]).await;
    topic(&server, "t").await;
    subscribe(&server, "t", "ok", json!({"target": {"queue": "ok"}})).await;
    subscribe(
        &server,
        "t",
        "full",
        json!({"target": {"queue": "full"}, "pattern": "to-full"}),
    )
    .await;

    // Two copies for `full` would exceed its max_depth of 2: nothing is enqueued anywhere.
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "to-full", "body": "a"}, {"routing_key": "to-full", "body": "b"}]),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "queue_full")
    );
    assert_eq!(depth(&server, "ok").await, 0);
    assert_eq!(depth(&server, "full").await, 1);
    let (status, _) = publish(
        &server,
        "t",
        json!([{"routing_key": "to-full", "body": "a"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "one copy fits");
    assert_eq!(
        (depth(&server, "ok").await, depth(&server, "full").await),
        (1, 2)
    );

    // A subscription whose queue is gone: the publish fails whole and names it.
    server.create_queue("gone", json!({})).await;
    subscribe(
        &server,
        "t",
        "gone",
        json!({"target": {"queue": "gone"}, "pattern": "x"}),
    )
    .await;
    server.call(Method::DELETE, "/v1/queues/gone", None).await;
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "y", "body": "fine"}, {"routing_key": "x", "body": "to gone"}]),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "subscription_target_missing")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("gone"), "{message}");
    assert_eq!(depth(&server, "ok").await, 1);

    // A FIFO target needs a group id and a dedup id (or content-based dedup).
    server
        .call(Method::DELETE, "/v1/topics/t/subscriptions/gone", None)
        .await;
    server.create_queue("f.fifo", json!({})).await;
    subscribe(&server, "t", "fifo", json!({"target": {"queue": "f.fifo"}})).await;
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "y", "body": "no group"}]),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "group_id_required")
    );
    assert_eq!(depth(&server, "ok").await, 1);
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "y", "body": "grouped", "group_id": "g", "dedup_id": "d1"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages"][0]["delivered_to"], 2);
    assert_eq!(
        (depth(&server, "ok").await, depth(&server, "f.fifo").await),
        (2, 1)
    );

    // A message too large for one target's max_message_bytes.
    server
        .create_queue("small", json!({"max_message_bytes": 1024}))
        .await;
    subscribe(
        &server,
        "t",
        "small",
        json!({"target": {"queue": "small"}, "pattern": "big"}),
    )
    .await;
    let big = "x".repeat(2000);
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "big", "body": big, "group_id": "g", "dedup_id": "d2"}]),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "message_too_large")
    );
    assert_eq!(
        (depth(&server, "ok").await, depth(&server, "small").await),
        (2, 0)
    );
}

#[tokio::test]
async fn bad_topic_input_is_refused_precisely() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    topic(&server, "t").await;
    let put = |body: Value| {
        let server = &server;
        async move { server.put("/v1/topics/t/subscriptions/s", body).await }
    };
    let cases = [
        (
            json!({"target": {"queue": "q"}, "pattern": "a..b"}),
            "invalid_pattern",
            "empty",
        ),
        (
            json!({"target": {"queue": "q"}, "pattern": "a.b*"}),
            "invalid_pattern",
            "whole words",
        ),
        (
            json!({"target": {"queue": "q"}, "pattern": ""}),
            "invalid_pattern",
            "empty",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": []}),
            "invalid_filter",
            "object",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {}}),
            "invalid_filter",
            "at least one",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": "x"}}),
            "invalid_filter",
            "list",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [true]}}),
            "invalid_filter",
            "filter.a[0]",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"suffix": "x"}]}}),
            "invalid_filter",
            "unknown operator",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"numeric": [">", "x"]}]}}),
            "invalid_filter",
            "number",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"numeric": ["~", 1]}]}}),
            "invalid_filter",
            "one of",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"numeric": [">", 1, ">", 2]}]}}),
            "invalid_filter",
            "lower bound",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"exists": "yes"}]}}),
            "invalid_filter",
            "true or false",
        ),
        (
            json!({"target": {"queue": "q"}, "filter": {"a": [{"prefix": "x", "exists": true}]}}),
            "invalid_filter",
            "exactly one key",
        ),
        (
            json!({"target": {"stream": "missing"}}),
            "stream_not_found",
            "missing",
        ),
        (
            json!({"target": {"url": "ftp://example.com/hook"}}),
            "invalid_parameter",
            "target.url",
        ),
        (
            json!({"target": {"queue": "q", "stream": "s"}}),
            "invalid_parameter",
            "exactly one",
        ),
        (json!({"target": {}}), "invalid_parameter", "exactly one"),
        (
            json!({"target": {"queue": "bad name"}}),
            "invalid_parameter",
            "not allowed",
        ),
        (
            json!({"target": {"queue": "missing"}}),
            "queue_not_found",
            "missing",
        ),
        (
            json!({"target": {"queue": "q"}, "extra": 1}),
            "malformed_request",
            "extra",
        ),
    ];
    for (request, code, reason) in cases {
        let (status, body) = put(request.clone()).await;
        assert_eq!(error_code(&body), code, "{request}: {body}");
        assert!(status.is_client_error(), "{request}: {status}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{request}: {message}");
    }
    let (_, body) = server.get("/v1/topics/t").await;
    assert_eq!(body["subscriptions"], json!([]), "nothing was subscribed");

    let (status, body) = server.put("/v1/topics/bad.name", json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/bad!name",
            json!({"target": {"queue": "q"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );

    subscribe(&server, "t", "s", json!({"target": {"queue": "q"}})).await;
    for (messages, status, code) in [
        (json!([]), StatusCode::BAD_REQUEST, "invalid_parameter"),
        (
            json!([{"routing_key": "a.*", "body": "x"}]),
            StatusCode::BAD_REQUEST,
            "invalid_pattern",
        ),
        (
            json!([{"routing_key": "", "body": "x"}]),
            StatusCode::BAD_REQUEST,
            "invalid_pattern",
        ),
        (
            json!([{"routing_key": "a", "body": "x", "attributes": {"bad name": "v"}}]),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            json!([{"body": "x"}]),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            json!([{"routing_key": "a", "body": "x".repeat(1024 * 1024 + 1)}]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
        ),
    ] {
        let (got, body) = publish(&server, "t", messages).await;
        assert_eq!((got, error_code(&body)), (status, code), "{body}");
    }
    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"routing_key": "a", "body": "x"}))
        .collect();
    let (status, body) = publish(&server, "t", Value::Array(too_many)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 1000"));
    let body_900k = "x".repeat(900 * 1024);
    let heavy: Vec<Value> = (0..5)
        .map(|_| json!({"routing_key": "a", "body": body_900k}))
        .collect();
    let (status, body) = publish(&server, "t", Value::Array(heavy)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large")
    );
    assert_eq!(
        depth(&server, "q").await,
        0,
        "no bad publish enqueued anything"
    );
}

#[tokio::test]
async fn topics_subscriptions_and_fan_out_survive_a_restart_of_the_durable_engine() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    server.create_queue("a", json!({})).await;
    server.create_queue("b", json!({})).await;
    topic(&server, "t").await;
    topic(&server, "deleted").await;
    subscribe(
        &server,
        "t",
        "to-a",
        json!({"target": {"queue": "a"}, "pattern": "x.#"}),
    )
    .await;
    subscribe(
        &server,
        "t",
        "to-b",
        json!({"target": {"queue": "b"}, "filter": {"k": [{"prefix": "v"}]}}),
    )
    .await;
    subscribe(&server, "t", "gone", json!({"target": {"queue": "b"}})).await;
    server
        .call(Method::DELETE, "/v1/topics/t/subscriptions/gone", None)
        .await;
    server
        .call(Method::DELETE, "/v1/topics/deleted", None)
        .await;
    let (status, _) = publish(
        &server,
        "t",
        json!([{"routing_key": "x.1", "body": "both", "attributes": {"k": "v1"}},
               {"routing_key": "x.2", "body": "only a"},
               {"routing_key": "y", "body": "only b", "attributes": {"k": "value"}}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;

    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let (status, body) = server.get("/v1/topics").await;
    assert_eq!(status, StatusCode::OK);
    let topics = body["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 1, "{body}");
    let subscriptions: Vec<&str> = topics[0]["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subscriptions, ["to-a", "to-b"]);
    assert_eq!(
        topics[0]["subscriptions"][1]["filter"],
        json!({"k": [{"prefix": "v"}]})
    );
    assert_eq!(
        bodies(&server.receive("a", json!({"max": 10})).await),
        ["both", "only a"]
    );
    assert_eq!(
        bodies(&server.receive("b", json!({"max": 10})).await),
        ["both", "only b"]
    );
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "x.3", "body": "after"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"][0]["delivered_to"], 1);
    server.shutdown().await;
}

/// Reads Server-Sent Events as `(event, data)` pairs.
pub(crate) struct SseReader {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    pub(crate) async fn open(server: &TestServer, path: &str) -> Self {
        // A live stream lasts as long as the test needs it: no whole-request timeout (the
        // harness client's 30 s cut long bursts off on a loaded machine); `next` bounds each
        // wait for an event instead.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = client
            .get(format!("{}{}", server.base, path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        SseReader {
            stream: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    pub(crate) async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("event:") {
                        event = rest.trim().to_string();
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push_str(rest.trim_start());
                    }
                }
                if event.is_empty() {
                    continue; // a keep-alive comment
                }
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event in time")
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn live_sse_delivers_matching_messages_in_order_after_they_are_durable() {
    let server = TestServer::start().await;
    topic(&server, "chat").await;
    let mut room = SseReader::open(&server, "/v1/topics/chat/live?pattern=room.*").await;
    let mut all = SseReader::open(&server, "/v1/topics/chat/live").await;
    let (_, body) = server.get("/v1/topics/chat").await;
    assert_eq!(body["stats"]["live_subscribers"], 2);
    let (status, _) = publish(
        &server,
        "chat",
        json!([{"routing_key": "room.1", "body": "hello", "attributes": {"from": "ann"}},
               {"routing_key": "dm.2", "body": "psst"},
               {"routing_key": "room.2", "body": "hi"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (event, first) = room.next().await;
    assert_eq!(event, "message");
    assert_eq!(
        (
            first["body"].as_str(),
            first["routing_key"].as_str(),
            first["topic"].as_str()
        ),
        (Some("hello"), Some("room.1"), Some("chat"))
    );
    assert_eq!(first["attributes"]["from"], "ann");
    assert_eq!(room.next().await.1["body"], "hi");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(all.next().await.1["body"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["hello", "psst", "hi"]);
    drop(room);
    drop(all);

    for (path, code) in [
        ("/v1/topics/nope/live", "topic_not_found"),
        ("/v1/topics/chat/live?pattern=a..b", "invalid_pattern"),
        ("/v1/topics/chat/live?colour=red", "malformed_request"),
    ] {
        let (status, body) = server.get(path).await;
        assert!(status.is_client_error(), "{path}");
        assert_eq!(error_code(&body), code, "{path}");
    }
}

#[tokio::test]
async fn a_slow_live_consumer_loses_messages_only_for_itself_and_is_told_how_many() {
    let server = TestServer::options()
        .config(|config| config.live_buffer_messages = 2)
        .start()
        .await;
    server.create_queue("archive", json!({})).await;
    topic(&server, "burst").await;
    subscribe(
        &server,
        "burst",
        "archive",
        json!({"target": {"queue": "archive"}}),
    )
    .await;
    let mut slow = SseReader::open(&server, "/v1/topics/burst/live").await;
    // The test runtime has one thread: the publish offers all ten messages before the
    // connection's task can take any, so its buffer of two overflows by eight.
    let messages: Vec<Value> = (0..10)
        .map(|i| json!({"routing_key": "k", "body": i.to_string()}))
        .collect();
    let (status, _) = publish(&server, "burst", Value::Array(messages)).await;
    assert_eq!(status, StatusCode::OK);
    // The drop is reported with the next frame sent; the buffered messages follow.
    assert_eq!(slow.next().await.1["body"], "0");
    let (event, dropped) = slow.next().await;
    assert_eq!(event, "dropped");
    assert_eq!(dropped, json!({"dropped": 8, "dropped_total": 8}));
    assert_eq!(slow.next().await.1["body"], "1");
    let (status, _) = publish(
        &server,
        "burst",
        json!([{"routing_key": "k", "body": "later"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slow.next().await.1["body"], "later");
    let (_, body) = server.get("/v1/topics/burst").await;
    assert_eq!(body["stats"]["live_dropped_total"], 8);
    assert_eq!(body["stats"]["live_sent_total"], 3);
    assert_eq!(
        depth(&server, "archive").await,
        11,
        "durable storage lost nothing"
    );
}

#[tokio::test]
async fn live_connections_are_bounded() {
    let server = TestServer::options()
        .config(|config| config.live_connections_max = 1)
        .start()
        .await;
    topic(&server, "t").await;
    let first = SseReader::open(&server, "/v1/topics/t/live").await;
    let (status, body) = server.get("/v1/topics/t/live").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_live_subscribers")
    );
    drop(first);
    // The server notices the closed connection when it next writes or polls it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        publish(&server, "t", json!([{"routing_key": "k", "body": "ping"}])).await;
        let (_, body) = server.get("/v1/topics/t").await;
        if body["stats"]["live_subscribers"] == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed connection was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _again = SseReader::open(&server, "/v1/topics/t/live").await;
}

#[tokio::test]
async fn live_websocket_delivers_matching_messages_as_json_frames() {
    use tokio_tungstenite::tungstenite::Message;
    let server = TestServer::options()
        .config(|config| config.live_buffer_messages = 1)
        .start()
        .await;
    topic(&server, "ticks").await;
    let url = format!(
        "{}/v1/topics/ticks/ws?pattern=price.%23",
        server.base.replace("http://", "ws://")
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (status, _) = publish(
        &server,
        "ticks",
        json!([{"routing_key": "price.eur", "body": "1.10"},
               {"routing_key": "volume.eur", "body": "7"},
               {"routing_key": "price.usd", "body": "1.00"},
               {"routing_key": "price.gbp", "body": "0.85"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut frames = Vec::new();
    while frames.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            frames.push(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    assert_eq!(frames[0]["type"], "message");
    assert_eq!(frames[0]["body"], "1.10");
    assert_eq!(frames[0]["routing_key"], "price.eur");
    assert_eq!(
        frames[1],
        json!({"type": "dropped", "dropped": 2, "dropped_total": 2}),
        "a buffer of one keeps the first match and drops the other two"
    );
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_live_streams_instead_of_waiting_for_them() {
    let server = TestServer::options()
        .config(|config| config.shutdown_grace_ms = 600_000)
        .start()
        .await;
    topic(&server, "t").await;
    let mut live = SseReader::open(&server, "/v1/topics/t/live").await;
    publish(&server, "t", json!([{"routing_key": "k", "body": "last"}])).await;
    let started = std::time::Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        live.next().await.1["body"],
        "last",
        "buffered messages are still sent"
    );
}

/// The chat burst at test scale: a burst published to a topic with a live subscriber and a queue
/// subscription. The live subscriber sees every message it gets in publish order and is told
/// of every one it missed; the queue holds all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_the_archive_whole_and_the_live_subscriber_in_order() {
    const N: usize = 20_000;
    const BATCH: usize = 500;
    let server = TestServer::start().await;
    server.create_queue("archive", json!({})).await;
    topic(&server, "chat").await;
    subscribe(
        &server,
        "chat",
        "archive",
        json!({"target": {"queue": "archive"}}),
    )
    .await;
    let mut live = SseReader::open(&server, "/v1/topics/chat/live").await;
    let reader = tokio::spawn(async move {
        let (mut seen, mut dropped, mut last) = (0usize, 0usize, None::<usize>);
        while seen + dropped < N {
            let (event, data) = live.next().await;
            match event.as_str() {
                "message" => {
                    let n: usize = data["body"].as_str().unwrap().parse().unwrap();
                    assert!(
                        last.is_none_or(|last| last < n),
                        "out of order: {last:?} then {n}"
                    );
                    last = Some(n);
                    seen += 1;
                }
                "dropped" => dropped += data["dropped"].as_u64().unwrap() as usize,
                other => panic!("unexpected event {other}"),
            }
        }
        (seen, dropped)
    });
    for start in (0..N).step_by(BATCH) {
        let messages: Vec<Value> = (start..start + BATCH)
            .map(|n| json!({"routing_key": "room.1", "body": n.to_string()}))
            .collect();
        let (status, body) = publish(&server, "chat", Value::Array(messages)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (seen, dropped) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the live subscriber accounts for every message")
        .unwrap();
    assert_eq!(seen + dropped, N);
    assert_eq!(depth(&server, "archive").await, N as u64, "none missing");
    let (_, body) = server.get("/v1/topics/chat").await;
    assert_eq!(body["stats"]["live_dropped_total"], dropped);
    assert_eq!(body["stats"]["live_sent_total"], seen);
}
