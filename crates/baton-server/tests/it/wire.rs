//! The framed TCP protocol (docs/wire-protocol.md) end to end: the SDK's `WireClient` and raw
//! frames against a server on ephemeral ports, each test on both ways in: a connection
//! upgraded from HTTP (`GET /v1/wire`, the default) and the dedicated port (`wire_listen`).

use std::collections::BTreeMap;
use std::time::Duration;

use baton_sdk::proto::wire::{self, Op};
use baton_sdk::proto::{AttributeValue, ErrorCode, NackRequest, ReceiveRequest, SendMessage};
use baton_sdk::wire::WireClient;
use baton_sdk::Error;
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::TestServer;

fn body(text: &str) -> SendMessage {
    SendMessage {
        body: text.to_string(),
        ..SendMessage::default()
    }
}

fn receive(max: u32, wait_ms: u64) -> ReceiveRequest {
    ReceiveRequest {
        max: Some(max),
        wait_ms: Some(wait_ms),
        visibility_timeout_ms: None,
    }
}

fn api_code(result: Result<impl std::fmt::Debug, Error>) -> (u16, ErrorCode, String) {
    match result {
        Err(Error::Api {
            status,
            code,
            message,
        }) => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn messages_go_through_the_wire_as_over_http() {
    for route in ROUTES {
        messages_go_through_the_wire_as_over_http_via(route).await;
    }
}

async fn messages_go_through_the_wire_as_over_http_via(route: Route) {
    let server = TestServer::start().await;
    server.create_queue("orders", json!({})).await;
    let wire = connect(&server, route).await;

    let tricky = "quote \" backslash \\ newline \n tab \t unicode 안녕 🎉";
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "kind".to_string(),
        AttributeValue::Plain("gift".to_string()),
    );
    let with_attributes = SendMessage {
        body: "second".to_string(),
        attributes,
        ..SendMessage::default()
    };
    let sent = wire
        .send(
            "orders",
            vec![body(tricky), with_attributes.clone(), body("bell \u{7}")],
        )
        .await;
    // A body with a character XML does not allow is refused as over HTTP, and nothing of the batch is sent.
    let (status, code, message) = api_code(sent);
    assert_eq!((status, code), (400, ErrorCode::InvalidParameter));
    assert!(message.contains("U+0007"), "{message}");
    assert_eq!(server.stats("orders").await["visible"], 0);

    let sent = wire
        .send("orders", vec![body(tricky), with_attributes])
        .await
        .unwrap();
    assert_eq!(sent.messages.len(), 2);
    assert!(sent.messages.iter().all(|m| !m.duplicate));

    let received = wire.receive("orders", &receive(10, 0)).await.unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, tricky);
    assert_eq!(received[0].id, sent.messages[0].id);
    assert_eq!(received[0].receive_count, 1);
    assert_eq!(received[1].body, "second");
    assert_eq!(
        received[1].attributes.get("kind"),
        Some(&AttributeValue::Plain("gift".to_string()))
    );
    // The same message seen over HTTP is the same message.
    assert_eq!(server.stats("orders").await["in_flight"], 2);

    let nacked = wire
        .nack(
            "orders",
            &NackRequest {
                receipts: vec![received[1].receipt.clone()],
                delay_ms: None,
                fence: None,
            },
        )
        .await
        .unwrap();
    assert!(nacked.results[0].is_ok());
    let acked = wire
        .ack(
            "orders",
            vec![received[0].receipt.clone(), "not-a-receipt".to_string()],
        )
        .await
        .unwrap();
    assert!(acked.results[0].is_ok());
    assert!(!acked.results[1].is_ok());
    let again = wire.receive("orders", &receive(10, 0)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body, "second");
    assert_eq!(again[0].receive_count, 2);

    // Errors carry the HTTP status and code the same call would get over HTTP.
    let (status, code, _) = api_code(wire.send("missing", vec![body("x")]).await);
    assert_eq!((status, code), (404, ErrorCode::QueueNotFound));
    let (status, code, _) = api_code(wire.receive("Bad Name!", &receive(1, 0)).await);
    assert_eq!((status, code), (400, ErrorCode::InvalidName));
    let (status, code, _) = api_code(wire.receive("orders", &receive(1, 999_999_999)).await);
    assert_eq!((status, code), (400, ErrorCode::InvalidParameter));

    // The server says where the wire protocol listens, and counts its calls.
    let (status, info) = server.get("/v1/server").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["wire_listen"], server.wire.to_string());
    assert_eq!(info["wire_path"], "/v1/wire");
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains(r#"api="wire",action="send",method="FRAME""#),
        "{metrics}"
    );
    server.shutdown().await;
}

/// The ways to a wire connection.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// The upgrade as a connection's first request (as the SDK does it).
    Upgrade,
    /// The upgrade after an HTTP request on the same kept-alive connection (raw connections
    /// only; the SDK's connections upgrade first).
    UpgradeAfterHttp,
    Dedicated,
}

const ROUTES: [Route; 3] = [Route::Upgrade, Route::UpgradeAfterHttp, Route::Dedicated];

async fn connect(server: &TestServer, route: Route) -> WireClient {
    match route {
        Route::Upgrade | Route::UpgradeAfterHttp => {
            WireClient::connect(&server.base).await.unwrap()
        }
        Route::Dedicated => WireClient::connect_dedicated(server.wire).await.unwrap(),
    }
}

/// Reads an HTTP answer's head (a byte at a time, so nothing after it is taken).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(str::to_string)
        })
        .unwrap()
        .parse()
        .unwrap()
}

/// A raw connection that speaks the framed protocol next (no handshake yet).
async fn open(server: &TestServer, route: Route) -> TcpStream {
    match route {
        Route::Dedicated => TcpStream::connect(server.wire).await.unwrap(),
        Route::Upgrade | Route::UpgradeAfterHttp => {
            let addr = server.base.strip_prefix("http://").unwrap();
            let mut stream = TcpStream::connect(addr).await.unwrap();
            if let Route::UpgradeAfterHttp = route {
                let health = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                stream.write_all(health.as_bytes()).await.unwrap();
                let head = read_head(&mut stream).await;
                assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
                let mut body = vec![0; content_length(&head)];
                stream.read_exact(&mut body).await.unwrap();
            }
            let request = format!(
                "GET /v1/wire HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: baton-wire\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let head = read_head(&mut stream).await;
            assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("upgrade: baton-wire\r\n"),
                "{head}"
            );
            stream
        }
    }
}

/// A raw connection that has done the handshake.
async fn raw(server: &TestServer, route: Route) -> TcpStream {
    let mut stream = open(server, route).await;
    stream.write_all(&wire::MAGIC).await.unwrap();
    let mut magic = [0; 8];
    stream.read_exact(&mut magic).await.unwrap();
    assert_eq!(magic, wire::MAGIC);
    stream
}

fn request(op: Op, id: u32, queue: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let start = wire::begin_frame(&mut out);
    wire::request_head(&mut out, op, id, queue);
    out.extend_from_slice(payload);
    wire::end_frame(&mut out, start);
    out
}

/// Reads one answer: its status byte, id and payload.
async fn answer(stream: &mut TcpStream) -> (u8, u32, Vec<u8>) {
    let mut len = [0; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut frame = vec![0; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut frame).await.unwrap();
    let id = u32::from_le_bytes(frame[1..5].try_into().unwrap());
    (frame[0], id, frame[5..].to_vec())
}

fn error_of(payload: &[u8]) -> (u16, String, String) {
    let error: wire::WireError = serde_json::from_slice(payload).unwrap();
    let code = baton_sdk::code_name(error.error.code);
    (error.status, code, error.error.message)
}

#[tokio::test]
async fn malformed_and_oversized_frames_are_answered_and_the_connection_goes_on() {
    for route in ROUTES {
        malformed_and_oversized_frames_are_answered_and_the_connection_goes_on_via(route).await;
    }
}

async fn malformed_and_oversized_frames_are_answered_and_the_connection_goes_on_via(route: Route) {
    let server = TestServer::options()
        .config(|c| c.max_request_bytes = 2048)
        .start()
        .await;
    server.create_queue("q", json!({})).await;
    let mut stream = raw(&server, route).await;

    // An unknown op, under its id.
    let mut unknown = request(Op::Send, 11, "q", b"");
    unknown[4] = 99;
    stream.write_all(&unknown).await.unwrap();
    let (status, id, payload) = answer(&mut stream).await;
    assert_eq!((status, id), (1, 11));
    let (http, code, message) = error_of(&payload);
    assert_eq!((http, code.as_str()), (400, "malformed_request"));
    assert!(message.contains("unknown op 99"), "{message}");

    // A send whose count promises more than it holds.
    let mut payload = Vec::new();
    wire::put_count(&mut payload, 2);
    wire::put_send_message(&mut payload, "one", b"");
    stream
        .write_all(&request(Op::Send, 12, "q", &payload))
        .await
        .unwrap();
    let (status, id, payload) = answer(&mut stream).await;
    assert_eq!((status, id), (1, 12));
    assert_eq!(error_of(&payload).1, "malformed_request");

    // A meta with an unknown field names the message and the field.
    let mut payload = Vec::new();
    wire::put_count(&mut payload, 2);
    wire::put_send_message(&mut payload, "one", b"");
    wire::put_send_message(&mut payload, "two", br#"{"delay":5}"#);
    stream
        .write_all(&request(Op::Send, 13, "q", &payload))
        .await
        .unwrap();
    let (status, id, payload) = answer(&mut stream).await;
    assert_eq!((status, id), (1, 13));
    let (_, code, message) = error_of(&payload);
    assert_eq!(code, "malformed_request");
    assert!(
        message.contains("messages[1]") && message.contains("delay"),
        "{message}"
    );

    // A frame over max_request_bytes is skipped whole and answered under its id.
    let mut payload = Vec::new();
    wire::put_count(&mut payload, 1);
    wire::put_send_message(&mut payload, &"x".repeat(4096), b"");
    stream
        .write_all(&request(Op::Send, 14, "q", &payload))
        .await
        .unwrap();
    let (status, id, payload) = answer(&mut stream).await;
    assert_eq!((status, id), (1, 14));
    let (http, code, _) = error_of(&payload);
    assert_eq!((http, code.as_str()), (413, "request_too_large"));
    assert_eq!(server.stats("q").await["visible"], 0);

    // And the connection still serves.
    let mut payload = Vec::new();
    wire::put_count(&mut payload, 1);
    wire::put_send_message(&mut payload, "fine", b"");
    stream
        .write_all(&request(Op::Send, 15, "q", &payload))
        .await
        .unwrap();
    let (status, id, payload) = answer(&mut stream).await;
    assert_eq!((status, id), (0, 15));
    let sent: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(sent["messages"].as_array().unwrap().len(), 1);
    assert_eq!(server.stats("q").await["visible"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_handshake_closes_the_connection() {
    for route in ROUTES {
        let server = TestServer::start().await;
        let mut stream = open(&server, route).await;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection");
        assert!(read.is_ok(), "{route:?}");
        assert!(rest.is_empty(), "{route:?}: nothing is answered: {rest:?}");
        server.shutdown().await;
    }
}

/// With `wire_max_inflight` = 1 a long poll holds up the connection's next request; with 2 the
/// send behind it is answered first.
#[tokio::test]
async fn wire_max_inflight_bounds_the_requests_served_at_once() {
    for route in ROUTES {
        wire_max_inflight_bounds_the_requests_served_at_once_via(route).await;
    }
}

async fn wire_max_inflight_bounds_the_requests_served_at_once_via(route: Route) {
    for (limit, send_first) in [(1, false), (2, true)] {
        let server = TestServer::options()
            .config(|c| c.wire_max_inflight = limit)
            .start()
            .await;
        server.create_queue("q", json!({})).await;
        server.create_queue("other", json!({})).await;
        let mut stream = raw(&server, route).await;
        stream
            .write_all(&request(Op::Receive, 1, "q", br#"{"max":1,"wait_ms":300}"#))
            .await
            .unwrap();
        let mut payload = Vec::new();
        wire::put_count(&mut payload, 1);
        wire::put_send_message(&mut payload, "x", b"");
        stream
            .write_all(&request(Op::Send, 2, "other", &payload))
            .await
            .unwrap();
        let first = answer(&mut stream).await;
        let second = answer(&mut stream).await;
        assert_eq!((first.0, second.0), (0, 0));
        let order = (first.1, second.1);
        assert_eq!(
            order,
            if send_first { (2, 1) } else { (1, 2) },
            "limit {limit}"
        );
        server.shutdown().await;
    }
}

#[tokio::test]
async fn calls_pipeline_on_one_connection_and_fail_when_it_closes() {
    for route in ROUTES {
        calls_pipeline_on_one_connection_and_fail_when_it_closes_via(route).await;
    }
}

async fn calls_pipeline_on_one_connection_and_fail_when_it_closes_via(route: Route) {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let wire = connect(&server, route).await;
    let mut calls = Vec::new();
    for i in 0..200 {
        let wire = wire.clone();
        calls.push(tokio::spawn(async move {
            wire.send("q", vec![body(&format!("m{i}"))]).await
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().messages.len(), 1);
    }
    assert_eq!(server.stats("q").await["visible"], 200);

    // A long poll under way when the server shuts down is answered (empty), and then the
    // connection is gone.
    server.create_queue("empty", json!({})).await;
    let waiting = {
        let wire = wire.clone();
        tokio::spawn(async move { wire.receive("empty", &receive(1, 20_000)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the long poll ends with the server")
        .unwrap();
    assert!(
        matches!(&ended, Ok(messages) if messages.is_empty())
            || matches!(ended, Err(Error::WireClosed)),
        "{ended:?}"
    );
    assert!(matches!(
        wire.send("q", vec![body("late")]).await,
        Err(Error::WireClosed)
    ));
}

#[tokio::test]
async fn frames_split_across_writes_or_packed_into_one_are_read_alike() {
    for route in ROUTES {
        frames_split_across_writes_or_packed_into_one_are_read_alike_via(route).await;
    }
}

async fn frames_split_across_writes_or_packed_into_one_are_read_alike_via(route: Route) {
    let server = TestServer::start().await;
    server.create_queue("q", json!({})).await;
    let mut stream = raw(&server, route).await;
    stream.set_nodelay(true).unwrap();
    let send = |id: u32, body: &str| {
        let mut payload = Vec::new();
        wire::put_count(&mut payload, 1);
        wire::put_send_message(&mut payload, body, b"");
        request(Op::Send, id, "q", &payload)
    };
    // One frame a byte at a time.
    for byte in send(1, &"a".repeat(3000)) {
        stream.write_all(&[byte]).await.unwrap();
    }
    assert_eq!(answer(&mut stream).await.0, 0);
    // Three frames in one write, the last one large enough to need a bigger buffer.
    let mut packed = send(2, "b");
    packed.extend(send(3, "c"));
    packed.extend(send(4, &"d".repeat(200_000)));
    stream.write_all(&packed).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, id, _) = answer(&mut stream).await;
        assert_eq!(status, 0);
        ids.push(id);
    }
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 3, 4]);
    let bodies: Vec<usize> = server
        .receive("q", json!({"max": 10}))
        .await
        .iter()
        .map(|m| m["body"].as_str().unwrap().len())
        .collect();
    assert_eq!(bodies, vec![3000, 1, 1, 200_000]);
    server.shutdown().await;
}

#[tokio::test]
async fn fifo_group_and_dedup_ids_travel_both_ways() {
    for route in ROUTES {
        fifo_group_and_dedup_ids_travel_both_ways_via(route).await;
    }
}

async fn fifo_group_and_dedup_ids_travel_both_ways_via(route: Route) {
    let server = TestServer::start().await;
    server
        .create_queue("jobs.fifo", json!({"fifo": true}))
        .await;
    let wire = connect(&server, route).await;
    let message = |body: &str, dedup: &str| SendMessage {
        body: body.to_string(),
        group_id: Some("tenant-1".to_string()),
        dedup_id: Some(dedup.to_string()),
        ..SendMessage::default()
    };
    let sent = wire
        .send(
            "jobs.fifo",
            vec![message("one", "d1"), message("again", "d1")],
        )
        .await
        .unwrap();
    assert!(!sent.messages[0].duplicate);
    assert!(sent.messages[1].duplicate);
    let (status, code, _) = api_code(wire.send("jobs.fifo", vec![body("no group")]).await);
    assert_eq!((status, code), (400, ErrorCode::GroupIdRequired));
    let received = wire.receive("jobs.fifo", &receive(10, 0)).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, "one");
    assert_eq!(received[0].group_id.as_deref(), Some("tenant-1"));
    assert_eq!(received[0].dedup_id.as_deref(), Some("d1"));
    assert!(received[0].attributes.is_empty());
    server.shutdown().await;
}

/// A client that writes requests but never reads its answers is not buffered without end:
/// once the socket's buffers are full the server stops reading its requests.
#[tokio::test]
async fn a_client_that_does_not_read_stops_being_served() {
    for route in ROUTES {
        a_client_that_does_not_read_stops_being_served_via(route).await;
    }
}

async fn a_client_that_does_not_read_stops_being_served_via(route: Route) {
    let server = TestServer::options()
        .config(|c| c.wire_max_inflight = 4)
        .start()
        .await;
    server.create_queue("big", json!({})).await;
    let wire = connect(&server, route).await;
    let body = "b".repeat(512 * 1024);
    for _ in 0..40 {
        wire.send(
            "big",
            vec![SendMessage {
                body: body.clone(),
                ..SendMessage::default()
            }],
        )
        .await
        .unwrap();
    }
    let mut stream = raw(&server, route).await;
    let mut requests = Vec::new();
    for id in 0..40 {
        requests.extend(request(Op::Receive, id, "big", br#"{"max":1}"#));
    }
    stream.write_all(&requests).await.unwrap();
    // 40 answers of 512 KiB are more than loopback buffers hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leased = server.stats("big").await["in_flight"].as_u64().unwrap();
    assert!(
        leased < 40,
        "every request was served without the client reading"
    );
    // Reading on lets the server go on until every request is answered.
    let mut bodies = 0;
    for _ in 0..40 {
        let (status, _, payload) = answer(&mut stream).await;
        assert_eq!(status, 0);
        bodies += wire::decode_received(&payload).unwrap().len();
    }
    assert_eq!(bodies, 40);
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_the_http_port_alone_serves_the_wire_protocol() {
    let server = TestServer::options().without_wire_port().start().await;
    server.create_queue("q", json!({})).await;
    let (status, info) = server.get("/v1/server").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["wire_path"], "/v1/wire", "{info}");
    assert!(info.get("wire_listen").is_none(), "{info}");
    // The HTTP address as a URL or bare, as the client is given it.
    let bare = server.base.strip_prefix("http://").unwrap();
    for address in [
        server.base.clone(),
        bare.to_string(),
        format!("{}/", server.base),
    ] {
        let wire = WireClient::connect(&address).await.unwrap();
        let sent = wire.send("q", vec![body(&address)]).await.unwrap();
        assert_eq!(sent.messages.len(), 1);
    }
    assert_eq!(server.stats("q").await["visible"], 3);
    // HTTP goes on beside the upgraded connections.
    let (status, _) = server.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_that_does_not_ask_for_the_upgrade_is_refused_precisely() {
    let server = TestServer::start().await;
    let addr = server.base.strip_prefix("http://").unwrap().to_string();
    for (after_http, (headers, says)) in [false, true].into_iter().flat_map(|after| {
        [
            ("", "send `Connection: Upgrade`"),
            ("Upgrade: baton-wire\r\n", "send `Connection: Upgrade`"),
            ("Connection: Upgrade\r\n", "send `Upgrade: baton-wire`"),
            (
                "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n",
                "send `Upgrade: baton-wire` (given: \"websocket\")",
            ),
        ]
        .map(|case| (after, case))
    }) {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        if after_http {
            let health = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            stream.write_all(health.as_bytes()).await.unwrap();
            let head = read_head(&mut stream).await;
            let mut body = vec![0; content_length(&head)];
            stream.read_exact(&mut body).await.unwrap();
        }
        let request = format!("GET /v1/wire HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 400 "), "{headers:?}: {head}");
        let mut body = vec![0; content_length(&head)];
        stream.read_exact(&mut body).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "malformed_request", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{after_http} {headers:?}: {message}"
        );
    }
    // Over HTTP/1.1 from an ordinary client too, and other methods are not allowed.
    let (status, body) = server.get("/v1/wire").await;
    assert_eq!(
        (status, crate::harness::error_code(&body)),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );
    let (status, _) = server.post("/v1/wire", json!({})).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // The client says why it cannot upgrade: an HTTPS address, or something that is no Baton.
    let refused = WireClient::connect("https://127.0.0.1:1").await;
    assert!(
        matches!(&refused, Err(Error::WireUpgrade(reason)) if reason.contains("not HTTPS")),
        "{refused:?}"
    );
    let other = crate::receiver::Receiver::start().await;
    let refused = WireClient::connect(&other.url).await;
    assert!(
        matches!(&refused, Err(Error::WireUpgrade(reason)) if reason.contains("HTTP/1.1 200 OK")),
        "{refused:?}"
    );
    server.shutdown().await;
}
