//! Live stream subscriptions end to end: SSE and WebSocket followers from an offset (one
//! partition or all, from now on by default), retention skips reported as drops, a consumer
//! group over a WebSocket with acks and a bound on unacked records, records published through
//! a topic reaching a stream follower, and every bad input.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{error_code, TestServer};
use crate::topics::SseReader;

async fn create(server: &TestServer, name: &str, body: Value) {
    let (status, body) = server.put(&format!("/v1/streams/{name}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn append(server: &TestServer, name: &str, records: Value) {
    let (status, body) = server
        .post(
            &format!("/v1/streams/{name}/records"),
            json!({"records": records}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, path: &str) -> Socket {
    let url = format!("{}{path}", server.base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// No frame arrives within `ms`.
async fn quiet(socket: &mut Socket, ms: u64) {
    if let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(ms), socket.next()).await
    {
        panic!("unexpected frame {text}");
    }
}

#[tokio::test]
async fn sse_follows_a_partition_from_an_offset_then_live() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 2})).await;
    append(
        &server,
        "s",
        json!([{"value": "a", "partition": 0}, {"value": "b", "partition": 1},
               {"value": "c", "partition": 0}]),
    )
    .await;
    let mut from_start =
        SseReader::open(&server, "/v1/streams/s/live?partition=0&from_offset=0").await;
    let mut everything_new = SseReader::open(&server, "/v1/streams/s/live").await;
    for (offset, value) in [(0, "a"), (1, "c")] {
        let (event, data) = from_start.next().await;
        assert_eq!(event, "record");
        assert_eq!(
            (data["partition"].as_u64(), data["offset"].as_u64()),
            (Some(0), Some(offset))
        );
        assert_eq!(data["value"], value);
    }
    let (_, body) = server.get("/v1/streams/s").await;
    assert!(body.is_object());
    append(
        &server,
        "s",
        json!([{"value": "d", "partition": 1, "key": "k", "headers": {"h": "1"}},
               {"value": "e", "partition": 0}]),
    )
    .await;
    let (event, data) = from_start.next().await;
    assert_eq!(
        (event.as_str(), data["value"].as_str()),
        ("record", Some("e"))
    );
    // Without from_offset: only what was appended after opening, from every partition.
    let mut got = Vec::new();
    for _ in 0..2 {
        let (event, data) = everything_new.next().await;
        assert_eq!(event, "record");
        got.push(data);
    }
    got.sort_by_key(|d| d["partition"].as_u64());
    assert_eq!(got[0]["value"], "e");
    assert_eq!(got[1]["value"], "d");
    assert_eq!(got[1]["key"], "k");
    assert_eq!(got[1]["headers"], json!({"h": "1"}));
}

#[tokio::test]
async fn records_removed_by_retention_before_they_are_read_are_reported_as_dropped() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 1, "max_records": 2})).await;
    let records: Vec<Value> = (0..5).map(|n| json!({"value": n.to_string()})).collect();
    append(&server, "s", Value::Array(records)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = server.get("/v1/streams/s").await;
        if body["stats"]["partitions"][0]["first_offset"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "retention did not run: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut socket = connect(&server, "/v1/streams/s/ws?from_offset=1").await;
    assert_eq!(
        frame(&mut socket).await,
        json!({"type": "dropped", "partition": 0, "dropped": 2, "dropped_total": 2, "next_offset": 3})
    );
    for value in ["3", "4"] {
        let record = frame(&mut socket).await;
        assert_eq!(
            (record["type"].as_str(), record["value"].as_str()),
            (Some("record"), Some(value))
        );
    }
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn a_group_websocket_delivers_through_the_group_and_pauses_at_max_unacked() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 1})).await;
    let (status, body) = server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let records: Vec<Value> = (0..5).map(|n| json!({"value": n.to_string()})).collect();
    append(&server, "s", Value::Array(records)).await;
    let mut socket = connect(
        &server,
        "/v1/streams/s/groups/g/ws?consumer=c1&max_unacked=2",
    )
    .await;
    let first = frame(&mut socket).await;
    let second = frame(&mut socket).await;
    assert_eq!(first["type"], "record");
    assert_eq!(
        (first["value"].as_str(), second["value"].as_str()),
        (Some("0"), Some("1"))
    );
    assert_eq!(first["id"], "0-0");
    assert_eq!(first["delivery_count"], 1);
    quiet(&mut socket, 300).await;
    let (_, pending) = server.get("/v1/streams/s/groups/g/pending").await;
    assert_eq!(pending["count"], 2, "{pending}");

    // A bad frame is refused and the connection stays.
    socket
        .send(Message::Text("{\"nack\": 1}".into()))
        .await
        .unwrap();
    let refused = frame(&mut socket).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "malformed_request");

    socket
        .send(Message::Text(
            json!({"ack": ["0-0", "bogus"]}).to_string().into(),
        ))
        .await
        .unwrap();
    let acked = frame(&mut socket).await;
    assert_eq!(acked["type"], "acked");
    assert_eq!(acked["results"][0], json!({"ok": true}));
    assert_eq!(
        acked["results"][1]["error"]["code"], "record_id_invalid",
        "{acked}"
    );
    let third = frame(&mut socket).await;
    assert_eq!(third["value"], "2", "one ack frees one slot");
    quiet(&mut socket, 300).await;
    socket.close(None).await.unwrap();

    // What was delivered and not acked stays pending for the consumer.
    let (_, pending) = server.get("/v1/streams/s/groups/g/pending").await;
    assert_eq!(pending["count"], 2, "{pending}");
}

#[tokio::test]
async fn a_topic_publish_reaches_a_stream_follower() {
    let server = TestServer::start().await;
    create(&server, "audit", json!({"partitions": 1})).await;
    let (status, _) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .put(
            "/v1/topics/t/subscriptions/to-audit",
            json!({"target": {"stream": "audit"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut live = SseReader::open(&server, "/v1/streams/audit/live").await;
    let (status, _) = server
        .post(
            "/v1/topics/t/publish",
            json!({"messages": [{"routing_key": "user.login", "body": "alice"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (event, data) = live.next().await;
    assert_eq!(event, "record");
    assert_eq!(
        (data["key"].as_str(), data["value"].as_str()),
        (Some("user.login"), Some("alice"))
    );
}

#[tokio::test]
async fn bad_live_stream_requests_are_refused_precisely() {
    let server = TestServer::options()
        .config(|config| config.live_connections_max = 1)
        .start()
        .await;
    create(&server, "s", json!({"partitions": 2})).await;
    append(&server, "s", json!([{"value": "a", "partition": 0}])).await;
    let (status, body) = server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let cases = [
        (
            "/v1/streams/missing/live",
            StatusCode::NOT_FOUND,
            "stream_not_found",
        ),
        (
            "/v1/streams/s/live?partition=2",
            StatusCode::BAD_REQUEST,
            "partition_out_of_range",
        ),
        (
            "/v1/streams/s/live?partition=0&from_offset=5",
            StatusCode::BAD_REQUEST,
            "offset_out_of_range",
        ),
        (
            "/v1/streams/s/live?from_offset=x",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/streams/s/live?pattern=a",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/streams/bad.name/live",
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
    ];
    for (path, status, code) in cases {
        let (got, body) = server.get(path).await;
        assert_eq!((got, error_code(&body)), (status, code), "{path}: {body}");
    }
    let ws_cases = [
        ("/v1/streams/s/groups/g/ws", "invalid_parameter"),
        (
            "/v1/streams/s/groups/g/ws?consumer=c&max_unacked=0",
            "invalid_parameter",
        ),
        (
            "/v1/streams/s/groups/g/ws?consumer=c&max_unacked=1001",
            "invalid_parameter",
        ),
        ("/v1/streams/s/groups/nope/ws?consumer=c", "group_not_found"),
        ("/v1/streams/s/ws?partition=9", "partition_out_of_range"),
    ];
    for (path, code) in ws_cases {
        let url = format!("{}{path}", server.base.replace("http://", "ws://"));
        let error = tokio_tungstenite::connect_async(url).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("{path}: {error}");
        };
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert_eq!(error_code(&body), code, "{path}: {body}");
    }
    // Followers count toward live_connections_max.
    let _open = SseReader::open(&server, "/v1/streams/s/live").await;
    let (status, body) = server.get("/v1/streams/s/live").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_live_subscribers"),
        "{body}"
    );
}

#[tokio::test]
async fn shutdown_ends_stream_followers() {
    let server = TestServer::options()
        .config(|config| config.shutdown_grace_ms = 600_000)
        .start()
        .await;
    create(&server, "s", json!({"partitions": 1})).await;
    let _sse = SseReader::open(&server, "/v1/streams/s/live").await;
    let (status, body) = server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let _socket = connect(&server, "/v1/streams/s/groups/g/ws?consumer=c").await;
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
