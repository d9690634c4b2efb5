//! Topic subscriptions with an HTTP endpoint target: delivery with the baton headers,
//! retries, idempotent and conflicting puts, refused targets (nothing created), delete and
//! restart.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

async fn publish(server: &TestServer, topic: &str, body: &str) -> Value {
    let (status, answer) = server
        .post(
            &format!("/v1/topics/{topic}/publish"),
            json!({"messages": [{"routing_key": "orders.new", "body": body}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// Names of the internal queues (those starting with `_baton-`).
async fn internal_queues(server: &TestServer) -> Vec<String> {
    let (_, list) = server.get("/v1/queues").await;
    list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap().to_string())
        .filter(|n| n.starts_with("_baton-"))
        .collect()
}

#[tokio::test]
async fn a_url_subscription_posts_each_publish_with_headers_and_is_idempotent() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.put("/v1/topics/orders", json!({})).await;
    let request = json!({
        "target": {"url": receiver.url, "headers": {"authorization": "Bearer t"}},
        "pattern": "orders.*"
    });
    let (status, info) = server
        .put("/v1/topics/orders/subscriptions/hook", request.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{info}");
    assert_eq!(info["target"]["url"], receiver.url);
    assert_eq!(info["target"]["headers"]["authorization"], "Bearer t");
    let (status, again) = server
        .put("/v1/topics/orders/subscriptions/hook", request)
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &info));
    let (status, conflict) = server
        .put(
            "/v1/topics/orders/subscriptions/hook",
            json!({"target": {"url": format!("{}/other", receiver.url)}, "pattern": "orders.*"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&conflict)),
        (StatusCode::CONFLICT, "subscription_exists"),
        "{conflict}"
    );
    let (_, shown) = server.get("/v1/topics/orders/subscriptions/hook").await;
    assert_eq!(shown, info);
    let (_, topic) = server.get("/v1/topics/orders").await;
    assert_eq!(topic["subscriptions"][0]["target"]["url"], receiver.url);

    let answer = publish(&server, "orders", "{\"n\":1}").await;
    assert_eq!(answer["messages"][0]["delivered_to"], 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body, "{\"n\":1}");
    assert_eq!(got[0].header("authorization"), "Bearer t");
    assert_eq!(got[0].header("baton-receive-count"), "1");
    assert!(got[0]
        .header("baton-queue")
        .starts_with("_baton-topic-orders-"));
    assert!(!got[0].header("baton-message-id").is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_succeeds() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail_first.store(2, Ordering::SeqCst);
    server.put("/v1/topics/t", json!({})).await;
    let (status, _) = server
        .put(
            "/v1/topics/t/subscriptions/s",
            json!({"target": {"url": receiver.url}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    publish(&server, "t", "m").await;
    let got = receiver.wait_for(3).await;
    let counts: Vec<&str> = got
        .iter()
        .map(|r| r.header("baton-receive-count"))
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_url_targets_are_refused_and_create_nothing() {
    let server = TestServer::options()
        .config(|c| c.outbound_allow = "hooks.example.com".to_string())
        .start()
        .await;
    server.put("/v1/topics/t", json!({})).await;
    let cases = [
        (json!({"url": "not a url"}), "invalid_parameter"),
        (
            json!({"url": "ftp://hooks.example.com/x"}),
            "invalid_parameter",
        ),
        (json!({"url": "http://127.0.0.1:9/x"}), "target_not_allowed"),
        (
            json!({"url": "http://hooks.example.com/x", "headers": {"bad name": "v"}}),
            "invalid_parameter",
        ),
        (json!({"queue": "_baton-callbacks"}), "invalid_parameter"),
    ];
    for (target, code) in cases {
        let (status, body) = server
            .put("/v1/topics/t/subscriptions/s", json!({"target": target}))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, code),
            "{target}: {body}"
        );
    }
    let (status, body) = server
        .put(
            "/v1/topics/missing/subscriptions/s",
            json!({"target": {"url": "http://hooks.example.com/x"}}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "topic_not_found")
    );
    let (_, topic) = server.get("/v1/topics/t").await;
    assert_eq!(topic["subscriptions"], json!([]));
    assert_eq!(internal_queues(&server).await, Vec::<String>::new());
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_the_subscription_or_the_topic_stops_delivery_and_removes_the_queue() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.put("/v1/topics/t", json!({})).await;
    let subscribe = || async {
        let (status, _) = server
            .put(
                "/v1/topics/t/subscriptions/s",
                json!({"target": {"url": receiver.url}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    };
    subscribe().await;
    assert_eq!(internal_queues(&server).await.len(), 1);
    publish(&server, "t", "one").await;
    receiver.wait_for(1).await;
    let (status, _) = server
        .call(Method::DELETE, "/v1/topics/t/subscriptions/s", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(internal_queues(&server).await, Vec::<String>::new());
    let answer = publish(&server, "t", "two").await;
    assert_eq!(answer["messages"][0]["delivered_to"], 0);

    subscribe().await;
    assert_eq!(internal_queues(&server).await.len(), 1);
    let (status, _) = server.call(Method::DELETE, "/v1/topics/t", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(internal_queues(&server).await, Vec::<String>::new());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_url_subscription_survives_a_restart() {
    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    let server = TestServer::options()
        .durable(&fs)
        .config(|_| {})
        .start()
        .await;
    crate::storage_wait_ready(&server).await;
    server.put("/v1/topics/t", json!({})).await;
    let (status, _) = server
        .put(
            "/v1/topics/t/subscriptions/s",
            json!({"target": {"url": receiver.url, "headers": {"x-k": "v"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    server.shutdown().await;

    let server = TestServer::options()
        .durable(&fs)
        .config(|_| {})
        .start()
        .await;
    crate::storage_wait_ready(&server).await;
    let (_, shown) = eventually("the push subscription back", || async {
        let (status, shown) = server.get("/v1/topics/t/subscriptions/s").await;
        (status == StatusCode::OK && shown["target"]["url"] == json!(receiver.url))
            .then_some((status, shown))
    })
    .await;
    assert_eq!(shown["target"]["headers"]["x-k"], "v");
    publish(&server, "t", "after restart").await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body, "after restart");
    assert_eq!(got[0].header("x-k"), "v");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_puts_with_different_urls_leave_one_winner() {
    let server = TestServer::start().await;
    server.put("/v1/topics/t", json!({})).await;
    let put = |url: &'static str| {
        server.put(
            "/v1/topics/t/subscriptions/s",
            json!({"target": {"url": url}}),
        )
    };
    let ((a, body_a), (b, body_b)) =
        futures::join!(put("http://127.0.0.1:9/a"), put("http://127.0.0.1:9/b"));
    let mut statuses = [a, b];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
    let winner = if a == StatusCode::CREATED {
        body_a
    } else {
        body_b
    };
    let (_, shown) = server.get("/v1/topics/t/subscriptions/s").await;
    assert_eq!(shown["target"], winner["target"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_left_over_backing_queue_is_removed_at_start() {
    use baton_core::{Clock, ManualClock, QueueConfig, QueueName};
    use baton_engine::{Engine, EngineConfig, LocalEngine, QueueEngine, StorageConfig};
    let fs = baton_storage::SimFs::new();
    // As if a server stopped between creating a backing queue and the subscription a minute
    // ago (removed), and another server is in the middle of a put now (kept).
    let now = baton_engine::SystemClock.now();
    for (at, queue) in [
        (now.as_millis() - 60_000, "_baton-topic-t-0123456789abcdef"),
        (now.as_millis(), "_baton-topic-u-0123456789abcdef"),
    ] {
        let engine = LocalEngine::durable(
            std::sync::Arc::new(ManualClock::new(baton_core::Timestamp::from_millis(at))),
            EngineConfig::default(),
            std::sync::Arc::new(fs.clone()),
            StorageConfig::new("/data"),
            false,
        )
        .unwrap();
        engine.recover().await.unwrap();
        for name in [queue, "kept"] {
            let _ = engine
                .create_queue(QueueName::new(name).unwrap(), QueueConfig::default())
                .await
                .unwrap();
        }
    }
    let server = TestServer::options()
        .durable(&fs)
        .config(|_| {})
        .start()
        .await;
    crate::storage_wait_ready(&server).await;
    eventually("the old left-over queue removed", || async {
        (internal_queues(&server).await == ["_baton-topic-u-0123456789abcdef"]).then_some(())
    })
    .await;
    assert_eq!(server.get("/v1/queues/kept").await.0, StatusCode::OK);
    server.shutdown().await;
}
