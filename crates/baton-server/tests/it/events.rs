//! The seed facade (`/api/events`): one test per endpoint of seed A, with its own parameter
//! names and defaults, and its bad input.

use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

async fn fast_server(adjust: impl FnOnce(&mut baton_server::ServerConfig)) -> TestServer {
    TestServer::start_with(|c| {
        c.events_workers = 2;
        c.events_notification_ms = 0;
        c.events_data_processing_ms = 1;
        c.events_heavy_task_ms = 2;
        c.callback_retry_delay_ms = 10;
        adjust(c);
    })
    .await
}

async fn post(server: &TestServer, path_and_query: &str) -> (StatusCode, Value) {
    server.call(Method::POST, path_and_query, None).await
}

fn url_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn wait_status(server: &TestServer, id: &str, status: &str) -> Value {
    eventually(&format!("event {id} {status}"), || async {
        let (code, event) = server.get(&format!("/api/events/{id}")).await;
        (code == StatusCode::OK && event["status"] == status).then_some(event)
    })
    .await
}

#[tokio::test]
async fn server_info_names_the_server_and_host() {
    let server = fast_server(|c| c.node_id = Some("node-a".to_string())).await;
    let (status, info) = server.get("/api/events/server-info").await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["serverId"], "node-a");
    assert!(!info["hostName"].as_str().unwrap().is_empty());
    assert_eq!(info["workers"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn create_enqueues_an_event_that_the_workers_complete() {
    let server = fast_server(|_| {}).await;
    let (status, event) = post(&server, "/api/events?eventType=NOTIFICATION&payload=hello").await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["eventType"], "NOTIFICATION");
    assert_eq!(event["payload"], "hello");
    assert_eq!(event["queue"], "events");
    assert_eq!(event["duplicate"], false);
    let id = event["eventId"].as_str().unwrap().to_string();
    let done = wait_status(&server, &id, "COMPLETED").await;
    assert!(done["processedAt"].as_u64() >= done["createdAt"].as_u64());
    assert_eq!(done["receiveCount"], 1);
    // The payload defaults to empty.
    let (status, event) = post(&server, "/api/events?eventType=HEAVY_TASK").await;
    assert_eq!(
        (status, event["payload"].clone()),
        (StatusCode::OK, Value::from(""))
    );

    for (query, field) in [
        ("eventType=UNKNOWN&payload=x", "eventType"),
        ("payload=x", "eventType"),
        ("eventType=NOTIFICATION&colour=red", "colour"),
        ("eventType=NOTIFICATION&eventType=HEAVY_TASK", "eventType"),
    ] {
        let (status, body) = post(&server, &format!("/api/events?{query}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{query}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    assert_eq!(server.stats("events").await["sent_total"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn status_of_unknown_events_is_event_not_found() {
    let server = fast_server(|_| {}).await;
    for id in ["00000000-0000-0000-0000-000000000042", "not-an-id"] {
        let (status, body) = server.get(&format!("/api/events/{id}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::NOT_FOUND, "event_not_found"),
            "{id}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn queue_info_counts_processed_failed_and_dead_lettered_events() {
    let server = fast_server(|_| {}).await;
    let (_, info) = server.get("/api/events/queue-info").await;
    assert_eq!(info["queueSize"], 0);
    assert_eq!(info["processedCount"], 0);
    let (_, ok) = post(
        &server,
        "/api/events?eventType=DATA_PROCESSING&payload=fine",
    )
    .await;
    let (_, bad) = post(
        &server,
        "/api/events/advanced?eventType=DATA_PROCESSING&payload=please-fail&maxRetries=1&retryDelayMs=10",
    )
    .await;
    wait_status(&server, ok["eventId"].as_str().unwrap(), "COMPLETED").await;
    let failed = wait_status(&server, bad["eventId"].as_str().unwrap(), "FAILED").await;
    let processed = failed["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "nacked" && e["receive_count"].as_u64() <= Some(2))
        .count();
    assert_eq!(processed, 2, "one attempt and one retry: {failed}");
    let (status, info) = server.get("/api/events/queue-info").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["queueSize"], 0, "{info}");
    assert_eq!(info["processedCount"], 1, "{info}");
    assert_eq!(info["failedCount"], 1, "{info}");
    assert_eq!(info["deadLetterQueueSize"], 1, "{info}");
    assert_eq!(info["callbackFailedCount"], 0, "{info}");
    assert_eq!(info["callbackRetryQueueSize"], 0, "{info}");
    server.shutdown().await;
}

#[tokio::test]
async fn advanced_create_takes_every_seed_parameter() {
    let server = fast_server(|_| {}).await;
    let receiver = Receiver::start().await;
    let query = format!(
        "eventType=NOTIFICATION&payload=p1&notificationUrl={}&callbackHeaders={}&messageGroupId=user-7&deduplicationId=d-1&maxRetries=5&retryDelayMs=100&visibilityTimeoutMs=60000",
        url_encode(&receiver.url),
        url_encode("X-Api-Key: k1, X-Trace: t")
    );
    let (status, event) = post(&server, &format!("/api/events/advanced?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    assert_eq!(event["queue"], "events.fifo");
    assert_eq!(event["messageGroupId"], "user-7");
    assert_eq!(event["deduplicationId"], "d-1");
    let id = event["eventId"].as_str().unwrap().to_string();
    // The same deduplicationId again creates nothing.
    let (_, again) = post(&server, &format!("/api/events/advanced?{query}")).await;
    assert_eq!(
        (
            again["eventId"].as_str().unwrap(),
            again["duplicate"].clone()
        ),
        (id.as_str(), Value::from(true))
    );
    let callback = receiver.wait_for(1).await.remove(0);
    assert_eq!(callback.header("x-api-key"), "k1");
    assert_eq!(callback.header("x-trace"), "t");
    let payload = callback.json();
    assert_eq!(
        (
            payload["id"].as_str().unwrap(),
            payload["status"].as_str().unwrap()
        ),
        (id.as_str(), "COMPLETED")
    );
    assert_eq!(payload["queue"], "events.fifo");
    wait_status(&server, &id, "COMPLETED").await;
    // JSON headers work too, and the defaults apply when parameters are absent.
    let (status, event) = post(
        &server,
        &format!(
            "/api/events/advanced?eventType=HEAVY_TASK&notificationUrl={}&callbackHeaders={}",
            url_encode(&receiver.url),
            url_encode("{\"X-A\":\"1\"}")
        ),
    )
    .await;
    assert_eq!(
        (status, event["queue"].clone()),
        (StatusCode::OK, Value::from("events")),
        "{event}"
    );
    assert_eq!(receiver.wait_for(2).await[1].header("x-a"), "1");
    assert_eq!(server.stats("events.fifo").await["duplicates_total"], 1);

    let sent_before = server.stats("events").await["sent_total"].clone();
    for (query, code) in [
        ("eventType=NOTIFICATION&maxRetries=abc", "invalid_parameter"),
        ("eventType=NOTIFICATION&maxRetries=11", "invalid_parameter"),
        ("eventType=NOTIFICATION&retryDelayMs=-1", "invalid_parameter"),
        ("eventType=NOTIFICATION&visibilityTimeoutMs=0", "invalid_parameter"),
        ("eventType=NOTIFICATION&visibilityTimeoutMs=43200001", "invalid_parameter"),
        ("eventType=NOTIFICATION&notificationUrl=ftp%3A%2F%2Fx%2F", "invalid_parameter"),
        ("eventType=NOTIFICATION&notificationUrl=http%3A%2F%2F169.254.169.254%2F", "target_not_allowed"),
        ("eventType=NOTIFICATION&notificationUrl=http%3A%2F%2F127.0.0.1%2F&callbackHeaders=nocolon", "invalid_parameter"),
        ("eventType=NOTIFICATION&notificationUrl=http%3A%2F%2F127.0.0.1%2F&callbackHeaders=bad%20name%3A%20v", "invalid_parameter"),
        ("eventType=NOTIFICATION&callbackHeaders=X-A%3A%201", "invalid_parameter"),
        ("eventType=TASK", "invalid_parameter"),
        ("eventType=NOTIFICATION&maxRetry=1", "invalid_parameter"),
    ] {
        let (status, body) = post(&server, &format!("/api/events/advanced?{query}")).await;
        assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, code), "{query}: {body}");
    }
    assert_eq!(server.stats("events").await["sent_total"], sent_before);
    server.shutdown().await;
}

#[tokio::test]
async fn retry_callback_retries_a_failed_notification_by_hand() {
    let server = fast_server(|c| c.callback_max_retries = 0).await;
    let receiver = Receiver::start().await;
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    let (_, event) = post(
        &server,
        &format!(
            "/api/events/advanced?eventType=NOTIFICATION&payload=x&notificationUrl={}",
            url_encode(&receiver.url)
        ),
    )
    .await;
    let id = event["eventId"].as_str().unwrap().to_string();
    wait_status(&server, &id, "CALLBACK_FAILED").await;
    let info = eventually("the callback parked", || async {
        let (_, info) = server.get("/api/events/queue-info").await;
        (info["callbackParkedCount"] == 1).then_some(info)
    })
    .await;
    assert_eq!(info["callbackFailedCount"], 1, "{info}");
    assert_eq!(info["processedCount"], 1, "{info}");

    let path = format!("/api/events/retry-callback/{id}");
    let (status, answer) = post(&server, &path).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["success"].clone(), answer["status"].clone()),
        (Value::from(false), Value::from("CALLBACK_FAILED"))
    );
    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    let (_, answer) = post(&server, &path).await;
    assert_eq!(
        (answer["success"].clone(), answer["status"].clone()),
        (Value::from(true), Value::from("COMPLETED")),
        "{answer}"
    );
    let (_, info) = server.get("/api/events/queue-info").await;
    assert_eq!(
        (
            info["callbackFailedCount"].clone(),
            info["callbackParkedCount"].clone()
        ),
        (Value::from(0), Value::from(0))
    );

    let (status, body) = post(
        &server,
        "/api/events/retry-callback/00000000-0000-0000-0000-000000000042",
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "event_not_found")
    );
    let (status, body) = post(&server, &path).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "callback_not_failed")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn performance_test_creates_and_processes_events_and_reports() {
    let server = fast_server(|_| {}).await;
    let (status, report) = post(
        &server,
        "/api/events/performance-test?count=200&eventType=DATA_PROCESSING",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["count"], 200);
    assert_eq!(report["eventType"], "DATA_PROCESSING");
    assert_eq!(
        (report["processed"].clone(), report["failed"].clone()),
        (Value::from(200), Value::from(0))
    );
    assert_eq!(report["timedOut"], false);
    assert!(report["eventsPerSecond"].as_f64().unwrap() > 0.0);
    assert!(report["elapsedMs"].is_u64());
    // Latency percentiles of create→processed, ordered, and a timeline that counts every
    // processed event once.
    let latency = &report["latencyMs"];
    let at = |k: &str| {
        latency[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k}: {report}"))
    };
    assert!(at("p50") <= at("p90") && at("p90") <= at("p99") && at("p99") <= at("max"));
    assert!(latency["mean"].as_f64().unwrap() <= at("max") as f64);
    let bucket_ms = report["bucketMs"].as_u64().unwrap();
    let timeline = report["timeline"].as_array().unwrap();
    assert!(!timeline.is_empty() && timeline.len() <= 60, "{report}");
    assert_eq!(
        timeline
            .iter()
            .map(|b| b["processed"].as_u64().unwrap())
            .sum::<u64>(),
        200
    );
    for (i, bucket) in timeline.iter().enumerate() {
        assert_eq!(bucket["startMs"].as_u64().unwrap(), i as u64 * bucket_ms);
    }
    // Defaults: 1000 NOTIFICATION events.
    let (status, report) = post(&server, "/api/events/performance-test").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["count"].clone(), report["eventType"].clone()),
        (Value::from(1000), Value::from("NOTIFICATION"))
    );
    assert_eq!(report["processed"], 1000);
    for query in [
        "count=0",
        "count=abc",
        "count=100001",
        "eventType=FAST",
        "count=5&size=3",
    ] {
        let (status, body) = post(&server, &format!("/api/events/performance-test?{query}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{query}"
        );
    }
    assert_eq!(server.stats("events").await["sent_total"], 1200);
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_workers_switched_off_a_performance_test_waits_bounded_and_says_so() {
    let server = fast_server(|c| {
        c.events_workers = 0;
        c.events_performance_test_wait_ms = 100;
    })
    .await;
    let (status, report) = post(&server, "/api/events/performance-test?count=10").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["processed"].clone(), report["timedOut"].clone()),
        (Value::from(0), Value::from(true))
    );
    assert_eq!(report["latencyMs"], Value::Null);
    assert_eq!(report["timeline"], serde_json::json!([]));
    assert_eq!(server.stats("events").await["visible"], 10);
    server.shutdown().await;
}
