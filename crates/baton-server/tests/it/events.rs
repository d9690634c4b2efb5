//! The event API (`/api/events`): one test per endpoint, with its own parameter names and
//! defaults, its documented calls replayed verbatim, and its bad input.

use std::sync::atomic::Ordering;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

async fn fast_server(adjust: impl FnOnce(&mut baton_server::ServerConfig)) -> TestServer {
    TestServer::options()
        .config(|c| {
            c.events_workers = 2;
            c.events_notification_ms = 0;
            c.events_data_processing_ms = 1;
            c.events_heavy_task_ms = 2;
            c.callback_retry_delay_ms = 10;
            adjust(c);
        })
        .start()
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
async fn advanced_create_takes_every_documented_parameter() {
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
    let shown = wait_status(&server, &id, "COMPLETED").await;
    assert_eq!(
        (&shown["messageGroupId"], &shown["deduplicationId"]),
        (&Value::from("user-7"), &Value::from("d-1")),
        "the status answer shows them too: {shown}"
    );
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

/// The event API's documented calls, as its README gives them (`<eventId>` is filled in).
const DOCUMENTED: [&str; 7] = [
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=NOTIFICATION&payload=%7B%22message%22%3A%22Hello%22%7D&notificationUrl=https%3A%2F%2Fexample.com%2Fnotification&callbackHeaders%5B'Content-Type'%5D=application%2Fjson""#,
    r#"curl -X POST "http://localhost:8080/api/events/retry-callback/<eventId>""#,
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=DATA_PROCESSING&payload=%7B%22orderId%22%3A%22123%22%7D&messageGroupId=order-processing""#,
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=NOTIFICATION&payload=%7B%22message%22%3A%22Hello%22%7D&deduplicationId=msg-20230601-001""#,
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=HEAVY_TASK&payload=%7B%22taskId%22%3A%22456%22%7D&maxRetries=5&retryDelayMs=10000""#,
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=DATA_PROCESSING&payload=%7B%22fileId%22%3A%22789%22%7D&visibilityTimeoutMs=60000""#,
    r#"curl -X POST "http://localhost:8080/api/events/advanced?eventType=HEAVY_TASK&payload=%7B%22jobId%22%3A%22abc123%22%7D&notificationUrl=https%3A%2F%2Fexample.com%2Fnotification&messageGroupId=job-processing&deduplicationId=job-abc123&maxRetries=5&retryDelayMs=10000&visibilityTimeoutMs=60000""#,
];

/// The path and query of a documented `curl -X POST "http://localhost:8080/..."` line.
fn documented_path(line: &str) -> &str {
    line.strip_prefix(r#"curl -X POST "http://localhost:8080"#)
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap()
}

/// Sends `POST path` byte for byte as curl does (no client re-encodes the query), returning
/// the status and the JSON answer.
async fn post_verbatim(server: &TestServer, path: &str) -> (StatusCode, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server.base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(!head.contains("chunked"), "{head}");
    (
        StatusCode::from_u16(code).unwrap(),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

/// A string attribute of a received message (plain or `{"type", "value"}`).
fn attribute<'a>(message: &'a Value, name: &str) -> &'a str {
    let value = &message["attributes"][name];
    value.as_str().or_else(|| value["value"].as_str()).unwrap()
}

#[tokio::test]
async fn the_documented_calls_work_verbatim() {
    // No workers: the events are created and stay pending, so nothing calls example.com.
    let server = fast_server(|c| c.events_workers = 0).await;
    let expect = [
        ("events", "NOTIFICATION", r#"{"message":"Hello"}"#),
        ("", "", ""),
        ("events.fifo", "DATA_PROCESSING", r#"{"orderId":"123"}"#),
        ("events", "NOTIFICATION", r#"{"message":"Hello"}"#),
        ("events", "HEAVY_TASK", r#"{"taskId":"456"}"#),
        ("events", "DATA_PROCESSING", r#"{"fileId":"789"}"#),
        ("events.fifo", "HEAVY_TASK", r#"{"jobId":"abc123"}"#),
    ];
    let mut first_id = String::new();
    for (line, (queue, kind, payload)) in DOCUMENTED.iter().zip(expect) {
        let path = documented_path(line).replace("<eventId>", &first_id);
        let (status, event) = post_verbatim(&server, &path).await;
        if queue.is_empty() {
            // Retrying the callback of an event that is not processed yet: nothing to retry,
            // and the answer says the event's status.
            assert_eq!(
                (status, error_code(&event)),
                (StatusCode::CONFLICT, "callback_not_failed"),
                "{line}: {event}"
            );
            let message = event["error"]["message"].as_str().unwrap();
            assert!(message.contains("PENDING"), "{message}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{line}: {event}");
        assert_eq!(event["queue"], queue, "{line}: {event}");
        assert_eq!(event["eventType"], kind, "{line}");
        assert_eq!(event["payload"], payload, "{line}");
        assert_eq!(event["status"], "PENDING", "{line}");
        assert_eq!(event["duplicate"], false, "{line}");
        if first_id.is_empty() {
            first_id = event["eventId"].as_str().unwrap().to_string();
        }
    }
    // Each documented setting is on the message the facade made.
    let (_, messages) = server
        .post("/v1/queues/events/receive", serde_json::json!({"max": 10}))
        .await;
    let messages = messages["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 4, "{messages:?}");
    let heavy = messages
        .iter()
        .find(|m| m["body"] == r#"{"taskId":"456"}"#)
        .unwrap();
    assert_eq!(attribute(heavy, "maxRetries"), "5", "{heavy}");
    assert_eq!(attribute(heavy, "retryDelayMs"), "10000");
    let file = messages
        .iter()
        .find(|m| m["body"] == r#"{"fileId":"789"}"#)
        .unwrap();
    assert_eq!(attribute(file, "visibilityTimeoutMs"), "60000");
    let (_, fifo) = server
        .post(
            "/v1/queues/events.fifo/receive",
            serde_json::json!({"max": 10}),
        )
        .await;
    let groups: Vec<&str> = fifo["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["group_id"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["order-processing", "job-processing"]);
    // The deduplication ids hold: the same calls again create nothing.
    for index in [3, 6] {
        let (status, event) = post_verbatim(&server, documented_path(DOCUMENTED[index])).await;
        assert_eq!(
            (status, event["duplicate"].clone()),
            (StatusCode::OK, Value::from(true)),
            "{event}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn documented_callback_headers_arrive_and_the_documented_retry_delivers() {
    let server = fast_server(|c| {
        c.callback_max_retries = 0;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail_first.store(1, Ordering::SeqCst);
    // The first documented line, with the local receiver in place of example.com.
    let path = documented_path(DOCUMENTED[0]).replace(
        "https%3A%2F%2Fexample.com%2Fnotification",
        &url_encode(&receiver.url),
    );
    let (status, event) = post_verbatim(&server, &path).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    let id = event["eventId"].as_str().unwrap().to_string();
    let failed = receiver.wait_for(1).await.remove(0);
    assert_eq!(failed.header("content-type"), "application/json");
    wait_status(&server, &id, "CALLBACK_FAILED").await;
    // The documented retry, verbatim but for the id: delivered now.
    let retry = documented_path(DOCUMENTED[1]).replace("<eventId>", &id);
    let (status, answer) = post_verbatim(&server, &retry).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        (answer["success"].clone(), answer["status"].clone()),
        (Value::from(true), Value::from("COMPLETED")),
        "{answer}"
    );
    let delivered = receiver.wait_for(2).await.remove(1);
    assert_eq!(delivered.header("content-type"), "application/json");
    assert_eq!(delivered.json()["id"], id.as_str());
    server.shutdown().await;
}

#[tokio::test]
async fn callback_headers_take_every_map_form_and_refuse_malformed_keys() {
    let server = fast_server(|_| {}).await;
    let receiver = Receiver::start().await;
    let url = url_encode(&receiver.url);
    let query = format!(
        "eventType=NOTIFICATION&notificationUrl={url}&callbackHeaders%5BX-Plain%5D=1&callbackHeaders%5B'X-Single'%5D=2&callbackHeaders%5B%22X-Double%22%5D=3&callbackHeaders.X-Dot=4&callbackHeaders=X-List%3A%205"
    );
    let (status, event) = post_verbatim(&server, &format!("/api/events/advanced?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    let got = receiver.wait_for(1).await.remove(0);
    for (name, value) in [
        ("x-plain", "1"),
        ("x-single", "2"),
        ("x-double", "3"),
        ("x-dot", "4"),
        ("x-list", "5"),
    ] {
        assert_eq!(got.header(name), value, "{name}");
    }

    let sent_before = server.stats("events").await["sent_total"].clone();
    let base = format!("eventType=NOTIFICATION&notificationUrl={url}");
    for (extra, field, says) in [
        (
            "callbackHeaders%5BX-A=1",
            "callbackHeaders[X-A",
            "unclosed bracket",
        ),
        ("callbackHeaders%5B%5D=1", "callbackHeaders[]", "empty"),
        ("callbackHeaders%5B''%5D=1", "callbackHeaders['']", "empty"),
        ("callbackHeaders.=1", "callbackHeaders.", "empty"),
        (
            "callbackHeaders%5B'X-A%5D=1",
            "callbackHeaders['X-A]",
            "quote ' is not closed",
        ),
        (
            "callbackHeaders%5B%22X-A'%5D=1",
            "callbackHeaders[\"X-A']",
            "not closed",
        ),
        (
            "callbackHeaders%5BX-A%5Dz=1",
            "callbackHeaders[X-A]z",
            "follows the closing bracket",
        ),
        (
            "callbackHeaders%5Bbad%20name%5D=1",
            "callbackHeaders[bad name]",
            "not a valid HTTP header name",
        ),
        (
            "callbackHeaders%5BX-A%5D=a%0Ab",
            "callbackHeaders[X-A]",
            "not a valid HTTP header value",
        ),
        (
            "callbackHeaders%5BX-A%5D=1&callbackHeaders.x-a=2",
            "callbackHeaders.x-a",
            "more than once",
        ),
        (
            "callbackHeaders%5BX-A%5D=1&callbackHeaders=X-A%3A%202",
            "callbackHeaders.X-A",
            "more than once",
        ),
        (
            "callbackHeadersX=1",
            "callbackHeadersX",
            "unknown parameter",
        ),
    ] {
        let (status, body) =
            post_verbatim(&server, &format!("/api/events/advanced?{base}&{extra}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{extra}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("`{field}`")),
            "{extra}: {message}"
        );
        assert!(message.contains(says), "{extra}: {message}");
    }
    // Map-style headers need a notificationUrl too.
    let (status, body) = post(
        &server,
        "/api/events/advanced?eventType=NOTIFICATION&callbackHeaders%5BX-A%5D=1",
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        "{body}"
    );
    assert_eq!(server.stats("events").await["sent_total"], sent_before);
    server.shutdown().await;
}
