//! Topic subscriptions with stream targets end to end: a publish appends each matching message
//! to the stream (key = routing key, headers = attributes), stream and queue targets of one
//! publish agree, a missing or deleted stream is a precise error that changes nothing, and
//! everything survives a restart of the durable engine.

use baton_storage::SimFs;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

async fn create_stream(server: &TestServer, name: &str, partitions: u32) {
    let (status, body) = server
        .put(
            &format!("/v1/streams/{name}"),
            json!({"partitions": partitions}),
        )
        .await;
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

/// Every record of a stream, partition by partition, in offset order.
async fn records(server: &TestServer, stream: &str) -> Vec<Value> {
    let (_, view) = server.get(&format!("/v1/streams/{stream}")).await;
    let partitions = view["attributes"]["partitions"].as_u64().unwrap();
    let mut out = Vec::new();
    for partition in 0..partitions {
        let mut from = 0;
        loop {
            let (status, body) = server
                .get(&format!(
                    "/v1/streams/{stream}/records?partition={partition}&from_offset={from}&max=1000"
                ))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let got = body["records"].as_array().unwrap();
            if got.is_empty() {
                break;
            }
            out.extend(got.iter().cloned());
            from = body["next_offset"].as_u64().unwrap();
        }
    }
    out
}

fn values(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_publish_appends_matching_messages_to_a_subscribed_stream() {
    let server = TestServer::start().await;
    create_stream(&server, "events", 1).await;
    server.create_queue("q", json!({})).await;
    let (status, _) = server.put("/v1/topics/orders", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    subscribe(
        &server,
        "orders",
        "to-events",
        json!({"target": {"stream": "events"}, "pattern": "order.#"}),
    )
    .await;
    subscribe(&server, "orders", "to-q", json!({"target": {"queue": "q"}})).await;
    let (_, body) = server.get("/v1/topics/orders").await;
    assert_eq!(
        body["subscriptions"][0]["target"],
        json!({"stream": "events"}),
        "{body}"
    );

    let (status, body) = publish(
        &server,
        "orders",
        json!([
            {"routing_key": "order.created", "body": "1", "attributes": {"region": "eu"}},
            {"routing_key": "audit", "body": "not for the stream"},
            {"routing_key": "order.paid", "body": "2"},
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reached: Vec<u64> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["delivered_to"].as_u64().unwrap())
        .collect();
    assert_eq!(reached, [2, 1, 2]);
    let got = records(&server, "events").await;
    assert_eq!(values(&got), ["1", "2"]);
    assert_eq!(got[0]["key"], "order.created", "key = routing key");
    assert_eq!(
        got[0]["headers"],
        json!({"region": "eu"}),
        "headers = attributes"
    );
    assert_eq!(got[1]["headers"], json!({}));
    let (_, topic) = server.get("/v1/topics/orders").await;
    assert_eq!(topic["stats"]["delivered_total"], 5);
}

#[tokio::test]
async fn stream_targets_that_do_not_exist_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    create_stream(&server, "s", 1).await;
    let (status, _) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/x",
            json!({"target": {"stream": "missing"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "stream_not_found"),
        "{body}"
    );
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/x",
            json!({"target": {"stream": "bad.name"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        "{body}"
    );
    subscribe(&server, "t", "to-s", json!({"target": {"stream": "s"}})).await;
    subscribe(&server, "t", "to-q", json!({"target": {"queue": "q"}})).await;
    // Re-putting the same stream subscription is a no-op; another target is a conflict.
    let (status, _) = server
        .put(
            "/v1/topics/t/subscriptions/to-s",
            json!({"target": {"stream": "s"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/to-s",
            json!({"target": {"queue": "q"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The stream disappears under its subscription: the publish fails whole.
    let (status, _) = server.call(Method::DELETE, "/v1/streams/s", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = publish(&server, "t", json!([{"routing_key": "k", "body": "x"}])).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "stream_not_found"),
        "{body}"
    );
    assert_eq!(
        server.stats("q").await["visible"],
        0,
        "the queue got nothing either"
    );
}

#[tokio::test]
async fn stream_subscriptions_and_their_records_survive_a_restart() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    create_stream(&server, "s", 4).await;
    let (status, _) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    subscribe(&server, "t", "to-s", json!({"target": {"stream": "s"}})).await;
    let messages: Vec<Value> = (0..50)
        .map(|n| json!({"routing_key": format!("k{}", n % 5), "body": n.to_string()}))
        .collect();
    let (status, body) = publish(&server, "t", Value::Array(messages)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let before = records(&server, "s").await;
    assert_eq!(before.len(), 50);
    server.shutdown().await;

    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    assert_eq!(
        records(&server, "s").await,
        before,
        "nothing lost, nothing doubled"
    );
    // Per key, the records are in publish order.
    for key in 0..5 {
        let of_key: Vec<u64> = before
            .iter()
            .filter(|r| r["key"] == format!("k{key}"))
            .map(|r| r["value"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(of_key.windows(2).all(|w| w[0] < w[1]), "{of_key:?}");
        assert_eq!(of_key.len(), 10);
    }
    let (status, body) = publish(
        &server,
        "t",
        json!([{"routing_key": "k0", "body": "after"}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(records(&server, "s").await.len(), 51);
    server.shutdown().await;
}
