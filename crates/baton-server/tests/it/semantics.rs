//! Queue semantics seen end to end: long polling, leases, FIFO groups, dead letters,
//! limits, concurrency and shutdown.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::Mutex;

use crate::harness::{error_code, TestServer};

#[tokio::test]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let server = Arc::new(TestServer::start().await);
    server.create_queue("q", json!({})).await;
    let waiter = {
        let server = server.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let messages = server.receive("q", json!({"wait_ms": 15000})).await;
            (messages, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.send_bodies("q", &["wake up"]).await;
    let (messages, waited) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(messages[0]["body"], "wake up");
    assert!(
        waited < Duration::from_secs(10),
        "returned early, after {waited:?}"
    );
}

#[tokio::test]
async fn long_poll_without_messages_returns_empty_after_the_wait() {
    let server = TestServer::start().await;
    server
        .create_queue("q", json!({"receive_wait_ms": 300}))
        .await;
    let started = Instant::now();
    assert!(server.receive("q", json!({})).await.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the queue's receive_wait_ms applies"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn visibility_expiry_redelivers_and_the_old_receipt_goes_stale() {
    let server = TestServer::start().await;
    server
        .create_queue("q", json!({"visibility_timeout_ms": 200}))
        .await;
    server.send_bodies("q", &["job"]).await;
    let first = server.receive("q", json!({})).await;
    assert!(
        server.receive("q", json!({})).await.is_empty(),
        "hidden while leased"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let second = server.receive("q", json!({})).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0]["id"], first[0]["id"]);
    assert_eq!(second[0]["receive_count"], 2);
    assert_eq!(
        second[0]["first_received_at"],
        first[0]["first_received_at"]
    );
    let results = server
        .ack("q", &[first[0]["receipt"].as_str().unwrap()])
        .await;
    assert_eq!(results[0]["error"]["code"], "receipt_stale");
    let results = server
        .ack("q", &[second[0]["receipt"].as_str().unwrap()])
        .await;
    assert_eq!(results[0], json!({"ok": true}));
    server.shutdown().await;
}

#[tokio::test]
async fn per_receive_visibility_timeout_overrides_the_queue_default() {
    let server = TestServer::start().await;
    server
        .create_queue("q", json!({"visibility_timeout_ms": 60000}))
        .await;
    server.send_bodies("q", &["job"]).await;
    server
        .receive("q", json!({"visibility_timeout_ms": 100}))
        .await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(server.receive("q", json!({})).await.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn fifo_groups_block_while_in_flight_and_keep_order() {
    let server = TestServer::start().await;
    server
        .create_queue("jobs.fifo", json!({"content_based_dedup": true}))
        .await;
    server
        .send(
            "jobs.fifo",
            vec![
                json!({"body": "a1", "group_id": "a"}),
                json!({"body": "a2", "group_id": "a"}),
                json!({"body": "b1", "group_id": "b"}),
            ],
        )
        .await;
    let first = server.receive("jobs.fifo", json!({"max": 1})).await;
    assert_eq!(first[0]["body"], "a1");
    assert_eq!(first[0]["group_id"], "a");
    let second = server.receive("jobs.fifo", json!({"max": 10})).await;
    let bodies: Vec<&str> = second.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        vec!["b1"],
        "group a is blocked while a1 is in flight"
    );
    assert!(server
        .receive("jobs.fifo", json!({"max": 10}))
        .await
        .is_empty());
    server
        .ack("jobs.fifo", &[first[0]["receipt"].as_str().unwrap()])
        .await;
    let third = server.receive("jobs.fifo", json!({"max": 10})).await;
    let bodies: Vec<&str> = third.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["a2"]);

    // Dedup: the same body within the window is a duplicate of the first.
    let (_, body) = server
        .post(
            "/v1/queues/jobs.fifo/messages",
            json!({"messages": [{"body": "a1", "group_id": "a"}]}),
        )
        .await;
    assert_eq!(body["messages"][0]["duplicate"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn fifo_receive_returns_several_messages_of_a_group_in_order() {
    let server = TestServer::start().await;
    server.create_queue("jobs.fifo", json!({})).await;
    let messages: Vec<_> = (0..5)
        .map(|i| json!({"body": format!("m{i}"), "group_id": "g", "dedup_id": format!("d{i}")}))
        .collect();
    server.send("jobs.fifo", messages).await;
    let got = server.receive("jobs.fifo", json!({"max": 10})).await;
    let bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["m0", "m1", "m2", "m3", "m4"]);
    server.shutdown().await;
}

#[tokio::test]
async fn dead_letter_after_max_receive_count_then_redrive() {
    let server = TestServer::start().await;
    server.create_queue("q-dlq", json!({})).await;
    server
        .create_queue(
            "q",
            json!({"dead_letter": {"queue": "q-dlq", "max_receive_count": 2}}),
        )
        .await;
    let id = server.send_bodies("q", &["poison"]).await.remove(0);
    for _ in 0..2 {
        let got = server.receive("q", json!({})).await;
        let (_, body) = server
            .post(
                "/v1/queues/q/nack",
                json!({"receipts": [got[0]["receipt"]]}),
            )
            .await;
        assert_eq!(body["results"][0], json!({"ok": true}));
    }
    assert!(server.receive("q", json!({})).await.is_empty());
    let stats = server.stats("q").await;
    assert_eq!(stats["dead_lettered_total"], 1);
    let (_, status) = server.get(&format!("/v1/queues/q/messages/{id}")).await;
    assert_eq!(status["status"], "DEAD_LETTERED");

    let in_dlq = server
        .receive("q-dlq", json!({"visibility_timeout_ms": 0}))
        .await;
    assert_eq!(in_dlq[0]["id"], id);
    assert_eq!(in_dlq[0]["body"], "poison");

    let (status, body) = server.post("/v1/queues/q-dlq/redrive", json!({})).await;
    assert_eq!(
        (status, body["moved"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    let back = server.receive("q", json!({})).await;
    assert_eq!(back[0]["id"], id);
    assert_eq!(server.stats("q-dlq").await["visible"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn max_depth_refuses_sends_with_429_and_keeps_what_it_has() {
    let server = TestServer::start().await;
    server.create_queue("q", json!({"max_depth": 2})).await;
    server.send_bodies("q", &["a"]).await;
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": [{"body": "b"}, {"body": "c"}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "queue_full")
    );
    assert_eq!(
        server.stats("q").await["visible"],
        1,
        "the batch changed nothing"
    );
    server.send_bodies("q", &["b"]).await;
    assert_eq!(server.stats("q").await["visible"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn in_flight_limit_caps_receives_then_answers_429() {
    let server = TestServer::options()
        .config(|c| c.in_flight_max_standard = 2)
        .start()
        .await;
    server.create_queue("q", json!({})).await;
    server.send_bodies("q", &["a", "b", "c"]).await;
    assert_eq!(server.receive("q", json!({"max": 10})).await.len(), 2);
    let (status, body) = server
        .post("/v1/queues/q/receive", json!({"max": 10}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_in_flight")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn waiting_receives_beyond_the_limit_answer_429() {
    let server = Arc::new(
        TestServer::options()
            .config(|c| c.max_waiting_receives = 1)
            .start()
            .await,
    );
    server.create_queue("q", json!({})).await;
    let first = {
        let server = server.clone();
        tokio::spawn(async move { server.receive("q", json!({"wait_ms": 3000})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = server
        .post("/v1/queues/q/receive", json!({"wait_ms": 3000}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_waiters")
    );
    server.send_bodies("q", &["x"]).await;
    assert_eq!(first.await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_consumers_drain_ten_thousand_messages_exactly_once() {
    const N: usize = 10_000;
    let server = Arc::new(TestServer::start().await);
    server.create_queue("work", json!({})).await;
    let mut sent = HashSet::new();
    for chunk in 0..N / 500 {
        let messages: Vec<_> = (0..500)
            .map(|i| json!({"body": format!("m{}", chunk * 500 + i)}))
            .collect();
        sent.extend(server.send("work", messages).await);
    }
    assert_eq!(sent.len(), N);

    let acked = Arc::new(Mutex::new(Vec::<String>::with_capacity(N)));
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let server = server.clone();
        let acked = acked.clone();
        consumers.push(tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                let messages = server
                    .receive("work", json!({"max": 100, "wait_ms": 200}))
                    .await;
                if messages.is_empty() {
                    return;
                }
                let receipts: Vec<&str> = messages
                    .iter()
                    .map(|m| m["receipt"].as_str().unwrap())
                    .collect();
                let results = server.ack("work", &receipts).await;
                let mut acked = acked.lock().await;
                for (message, result) in messages.iter().zip(results) {
                    assert_eq!(result, json!({"ok": true}));
                    acked.push(message["id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    for consumer in consumers {
        consumer.await.unwrap();
    }
    let acked = acked.lock().await;
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked.len(), N, "every message acked exactly once");
    assert_eq!(unique.len(), N, "no message acked twice");
    assert!(acked.iter().all(|id| sent.contains(id)));
    let stats = server.stats("work").await;
    assert_eq!(
        (stats["visible"].as_u64(), stats["in_flight"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(stats["acked_total"], N);
}

#[tokio::test]
async fn shutdown_ends_waiting_long_polls_and_stops_the_server() {
    let mut server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let trigger = server.shutdown_trigger();
    let http = server.http.clone();
    let url = format!("{}/v1/queues/q/receive", server.base);
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let response = http
            .post(url)
            .json(&json!({"wait_ms": 20000}))
            .send()
            .await
            .unwrap();
        (
            response.status(),
            response.json::<serde_json::Value>().await.unwrap(),
            started.elapsed(),
        )
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    trigger.send(()).unwrap();
    let (status, body, waited) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"], json!([]));
    assert!(waited < Duration::from_secs(10));
    server.shutdown().await;
}
