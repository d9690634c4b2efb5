//! Push delivery end to end: a real receiver, retries with backoff, dead letters, limits,
//! FIFO order, the circuit breaker, durability of the subscription, and bad input.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

async fn subscribe(server: &TestServer, queue: &str, subscription: Value) -> Value {
    let (status, body) = server
        .put(&format!("/v1/queues/{queue}/push"), subscription)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn wait_stat(server: &TestServer, queue: &str, stat: &str, value: u64) {
    eventually(&format!("{queue}.{stat} == {value}"), || async {
        (server.stats(queue).await[stat] == value).then_some(())
    })
    .await;
}

#[tokio::test]
async fn push_posts_body_and_headers_and_acks_on_2xx() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    let info = subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "headers": {"authorization": "Bearer t"}}),
    )
    .await;
    assert_eq!(info["concurrency"], 10);
    assert_eq!(info["timeout_ms"], 10000);
    let ids = server
        .send(
            "work",
            vec![json!({"body": "{\"n\":1}", "attributes": {"kind": {"type": "String", "value": "a"}}})],
        )
        .await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body, "{\"n\":1}");
    assert_eq!(got[0].header("authorization"), "Bearer t");
    assert_eq!(got[0].header("baton-message-id"), ids[0]);
    assert_eq!(got[0].header("baton-receive-count"), "1");
    assert_eq!(got[0].header("baton-queue"), "work");
    assert_eq!(got[0].header("baton-attr-kind"), "a");
    wait_stat(&server, "work", "acked_total", 1).await;
    let (_, status) = server
        .get(&format!("/v1/queues/work/messages/{}", ids[0]))
        .await;
    assert_eq!(status["status"], "COMPLETED");
    let (_, info) = server.get("/v1/queues/work/push").await;
    assert_eq!(info["stats"]["delivered_total"], 1);
    assert_eq!(info["stats"]["breaker"], "closed");
    server.shutdown().await;
}

#[tokio::test]
async fn failed_pushes_retry_with_the_queue_backoff_then_dead_letter() {
    let server = TestServer::start().await;
    let target = Receiver::closed_url().await;
    server.create_queue("dead", json!({})).await;
    server
        .create_queue(
            "work",
            json!({
                "dead_letter": {"queue": "dead", "max_receive_count": 3},
                "retry": {"base_delay_ms": 60, "max_delay_ms": 200}
            }),
        )
        .await;
    subscribe(&server, "work", json!({"url": target})).await;
    let ids = server.send_bodies("work", &["never delivered"]).await;
    wait_stat(&server, "dead", "visible", 1).await;
    let (_, status) = server
        .get(&format!("/v1/queues/work/messages/{}", ids[0]))
        .await;
    assert_eq!(status["status"], "DEAD_LETTERED");
    let events: Vec<(&str, u64)> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["at"].as_u64().unwrap()))
        .collect();
    let nacks: Vec<u64> = events
        .iter()
        .filter(|e| e.0 == "nacked")
        .map(|e| e.1)
        .collect();
    let receives: Vec<u64> = events
        .iter()
        .filter(|e| e.0 == "received")
        .map(|e| e.1)
        .collect();
    assert_eq!((nacks.len(), receives.len()), (3, 3), "{events:?}");
    // Backoff: base 60 ms after the first failure, 120 after the second, jitter in [d/2, d].
    assert!(receives[1] - nacks[0] >= 30, "{events:?}");
    assert!(receives[2] - nacks[1] >= 60, "{events:?}");
    let (_, info) = server.get("/v1/queues/work/push").await;
    assert_eq!(info["stats"]["failed_total"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_target_failing_n_times_then_succeeding_gets_the_message_acked() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail_first.store(2, Ordering::SeqCst);
    server
        .create_queue(
            "work",
            json!({"retry": {"base_delay_ms": 10, "max_delay_ms": 20}}),
        )
        .await;
    subscribe(&server, "work", json!({"url": receiver.url})).await;
    server.send_bodies("work", &["m"]).await;
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
    wait_stat(&server, "work", "acked_total", 1).await;
    assert_eq!(server.stats("work").await["nacked_total"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.behaviour.delay_ms.store(400, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "timeout_ms": 100}),
    )
    .await;
    server.send_bodies("work", &["slow"]).await;
    eventually("a timed-out delivery", || async {
        let (_, info) = server.get("/v1/queues/work/push").await;
        (info["stats"]["failed_total"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    receiver.behaviour.delay_ms.store(0, Ordering::SeqCst);
    wait_stat(&server, "work", "acked_total", 1).await;
    let last = receiver.requests().into_iter().last().unwrap();
    assert!(last.header("baton-receive-count").parse::<u32>().unwrap() >= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_concurrency_limit_holds_under_load() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.behaviour.delay_ms.store(30, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "concurrency": 3}),
    )
    .await;
    let bodies: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    server.send_bodies("work", &bodies).await;
    receiver.wait_for(30).await;
    wait_stat(&server, "work", "acked_total", 30).await;
    let max = receiver.behaviour.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "{max} deliveries at once");
    assert!(receiver.requests().iter().all(|r| r.concurrent <= 3));
    let (_, info) = server.get("/v1/queues/work/push").await;
    assert!(info["stats"]["in_flight_max_observed"].as_u64().unwrap() <= 3);
    assert_eq!(info["stats"]["delivered_total"], 30);
    server.shutdown().await;
}

#[tokio::test]
async fn the_rate_limit_spaces_deliveries() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "concurrency": 50, "rate_per_s": 20}),
    )
    .await;
    let bodies: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    server.send_bodies("work", &bodies).await;
    let got = receiver.wait_for(8).await;
    // 20 per second: 8 deliveries start no faster than one per 50 ms (the first at once).
    let span = got[7].at.duration_since(got[0].at);
    assert!(span >= Duration::from_millis(7 * 50 - 40), "{span:?}");
    assert!(receiver.behaviour.max_in_flight.load(Ordering::SeqCst) <= 2);
    server.shutdown().await;
}

#[tokio::test]
async fn fifo_push_delivers_one_message_per_group_at_a_time_in_order() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    receiver.behaviour.delay_ms.store(5, Ordering::SeqCst);
    receiver.behaviour.fail_first.store(1, Ordering::SeqCst);
    server
        .create_queue(
            "orders.fifo",
            json!({"fifo": true, "content_based_dedup": true}),
        )
        .await;
    subscribe(
        &server,
        "orders.fifo",
        json!({"url": receiver.url, "concurrency": 4}),
    )
    .await;
    let mut messages = Vec::new();
    for i in 0..6 {
        for group in ["a", "b", "c"] {
            messages.push(json!({"body": format!("{group}{i}"), "group_id": group}));
        }
    }
    server.send("orders.fifo", messages).await;
    wait_stat(&server, "orders.fifo", "acked_total", 18).await;
    assert_eq!(
        receiver
            .behaviour
            .max_group_in_flight
            .load(Ordering::SeqCst),
        1
    );
    let got = receiver.requests();
    for group in ["a", "b", "c"] {
        let delivered: Vec<String> = got
            .iter()
            .filter(|r| r.answered == 200 && r.header("baton-group-id") == group)
            .map(|r| r.body.clone())
            .collect();
        let expected: Vec<String> = (0..6).map(|i| format!("{group}{i}")).collect();
        assert_eq!(delivered, expected);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn the_circuit_breaker_pauses_a_failing_host_without_burning_receives_and_closes_on_success()
{
    let server = TestServer::options()
        .config(|c| {
            c.push_breaker_failures = 3;
            c.push_breaker_window_ms = 10_000;
            c.push_breaker_cooldown_ms = 600;
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "concurrency": 1}),
    )
    .await;
    let ids = server.send_bodies("work", &["m"]).await;
    eventually("the breaker to open", || async {
        let (_, info) = server.get("/v1/queues/work/push").await;
        (info["stats"]["breaker"] == "open").then_some(())
    })
    .await;
    let attempts = receiver.count();
    assert_eq!(attempts, 3);
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap().to_string();
    let host = receiver
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/hook");
    assert!(
        metrics.contains(&format!("baton_push_breaker_state{{host=\"{host}\"}} 1")),
        "{metrics}"
    );
    // While open nothing goes out and the message's receive count stays.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), attempts);
    let (_, status) = server
        .get(&format!("/v1/queues/work/messages/{}", ids[0]))
        .await;
    assert_eq!(status["status"], "PENDING");
    let receives = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "received")
        .count();
    assert_eq!(receives, 3);
    // The host recovers: the probe after the cool-down succeeds and the breaker closes.
    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    wait_stat(&server, "work", "acked_total", 1).await;
    let (_, info) = server.get("/v1/queues/work/push").await;
    assert_eq!(info["stats"]["breaker"], "closed");
    assert_eq!(info["stats"]["breaker_opened_total"], 1);
    assert_eq!(receiver.count(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn a_push_subscription_survives_a_restart_and_delete_stops_it() {
    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    let server = TestServer::options()
        .durable(&fs)
        .config(|_| {})
        .start()
        .await;
    eventually("ready", || async {
        (server.get("/ready").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    server.create_queue("work", json!({})).await;
    subscribe(
        &server,
        "work",
        json!({"url": receiver.url, "concurrency": 2, "rate_per_s": 1000}),
    )
    .await;
    server.shutdown().await;

    let server = TestServer::options()
        .durable(&fs)
        .config(|_| {})
        .start()
        .await;
    let info = eventually("the subscription back", || async {
        let (status, info) = server.get("/v1/queues/work/push").await;
        (status == StatusCode::OK).then_some(info)
    })
    .await;
    assert_eq!(info["url"], receiver.url);
    assert_eq!(
        (info["concurrency"].clone(), info["rate_per_s"].clone()),
        (json!(2), json!(1000))
    );
    server.send_bodies("work", &["after restart"]).await;
    assert_eq!(receiver.wait_for(1).await[0].body, "after restart");

    let (status, _) = server
        .call(Method::DELETE, "/v1/queues/work/push", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/queues/work/push").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "push_not_configured")
    );
    wait_stat(&server, "work", "acked_total", 1).await;
    server.send_bodies("work", &["stays"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(server.stats("work").await["visible"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_push_subscription_an_earlier_version_kept_in_queue_attributes_is_moved_and_resumed() {
    use baton_core::{QueueConfig, QueueName};
    use baton_engine::{Engine, EngineConfig, LocalEngine, QueueEngine, StorageConfig};
    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    {
        let engine = LocalEngine::durable(
            std::sync::Arc::new(baton_engine::SystemClock),
            EngineConfig::default(),
            std::sync::Arc::new(fs.clone()),
            StorageConfig::new("/data"),
            false,
        )
        .unwrap();
        engine.recover().await.unwrap();
        let queue = QueueName::new("work").unwrap();
        engine
            .create_queue(queue.clone(), QueueConfig::default())
            .await
            .unwrap();
        let json = json!({"url": receiver.url, "concurrency": 3}).to_string();
        let patch = baton_engine::MetaPatch {
            put_attributes: [("baton.push".to_string(), json)].into(),
            ..Default::default()
        };
        engine.update_queue_meta(&queue, patch).await.unwrap();
    }
    for round in 0..2 {
        let server = TestServer::options()
            .durable(&fs)
            .config(|_| {})
            .start()
            .await;
        let info = eventually("the subscription back", || async {
            let (status, info) = server.get("/v1/queues/work/push").await;
            (status == StatusCode::OK).then_some(info)
        })
        .await;
        assert_eq!(
            (info["url"].clone(), info["concurrency"].clone()),
            (json!(receiver.url), json!(3))
        );
        let body = format!("round {round}");
        server.send_bodies("work", &[body.as_str()]).await;
        assert_eq!(receiver.wait_for(round + 1).await[round].body, body);
        server.shutdown().await;
    }
    let engine = LocalEngine::durable(
        std::sync::Arc::new(baton_engine::SystemClock),
        EngineConfig::default(),
        std::sync::Arc::new(fs.clone()),
        StorageConfig::new("/data"),
        false,
    )
    .unwrap();
    engine.recover().await.unwrap();
    let meta = engine
        .get_queue(&QueueName::new("work").unwrap())
        .await
        .unwrap()
        .meta;
    assert!(meta.attributes.is_empty(), "{:?}", meta.attributes);
    assert_eq!(meta.push.map(|p| p.concurrency), Some(Some(3)));
}

#[tokio::test]
async fn bad_push_subscriptions_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    server.create_queue("work", json!({})).await;
    let cases = [
        (json!({"url": "not a url"}), "invalid_parameter"),
        (json!({"url": "ftp://127.0.0.1/x"}), "invalid_parameter"),
        (
            json!({"url": "http://169.254.169.254/latest"}),
            "target_not_allowed",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": {"bad header": "x"}}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "headers": {"x": "a\nb"}}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "concurrency": 0}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "concurrency": 1001}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "timeout_ms": 0}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "rate_per_s": 0}),
            "invalid_parameter",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "rate_per_s": "fast"}),
            "malformed_request",
        ),
        (
            json!({"url": "http://127.0.0.1:1/", "colour": "red"}),
            "malformed_request",
        ),
        (json!({}), "malformed_request"),
    ];
    for (body, code) in cases {
        let (status, answer) = server.put("/v1/queues/work/push", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(error_code(&answer), code, "{body}: {answer}");
    }
    let (status, body) = server.get("/v1/queues/work/push").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "push_not_configured")
    );
    let (status, body) = server
        .call(Method::DELETE, "/v1/queues/work/push", None)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "push_not_configured")
    );
    let (status, body) = server
        .put(
            "/v1/queues/missing/push",
            json!({"url": "http://127.0.0.1:1/"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "queue_not_found")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_outbound_allow_list_refuses_other_hosts() {
    let server = TestServer::options()
        .config(|c| c.outbound_allow = "hooks.example.com".to_string())
        .start()
        .await;
    server.create_queue("work", json!({})).await;
    let (status, body) = server
        .put(
            "/v1/queues/work/push",
            json!({"url": "http://127.0.0.1:9/x"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "target_not_allowed")
    );
    let (status, _) = server
        .put(
            "/v1/queues/work/push",
            json!({"url": "http://hooks.example.com/x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}
