//! Tickets for browsers end to end: `POST /v1/tickets` gives a short-lived ticket that opens
//! live streams (`?ticket=` on a GET) as its key, never more; a wrong, tampered or expired
//! ticket gets 401; the dashboard's live data shows only what the key may see; revoking a
//! key ends the live streams (SSE and WebSocket) opened with it.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::auth::{as_key, create_key, with_admin_key, ADMIN};
use crate::harness::TestServer;

async fn ticket(server: &TestServer, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    as_key(server, key, Method::POST, "/v1/tickets", body).await
}

/// The first `event: stats` snapshot of a live stats stream.
async fn first_stats(response: reqwest::Response) -> Value {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("a snapshot within 5 s")
    {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if let Some(start) = text.find("event: stats\ndata: ") {
            if let Some(end) = text[start..].find("\n\n") {
                let data = &text[start + "event: stats\ndata: ".len()..start + end];
                return serde_json::from_str(data).unwrap();
            }
        }
    }
    panic!("the stream ended before a snapshot: {text}");
}

async fn setup() -> (TestServer, String) {
    let server = with_admin_key().await;
    for queue in ["orders-1", "payroll"] {
        let (status, _) = as_key(
            &server,
            ADMIN,
            Method::PUT,
            &format!("/v1/queues/{queue}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, _) = as_key(
        &server,
        ADMIN,
        Method::PUT,
        "/v1/topics/news",
        Some(json!({})),
    )
    .await;
    assert!(status.is_success());
    let watcher = create_key(
        &server,
        "watcher",
        json!([{"actions": ["receive"], "resources": ["queue:orders*", "topic:news"]}]),
    )
    .await;
    (server, watcher)
}

#[tokio::test]
async fn a_ticket_opens_live_streams_as_its_key_and_nothing_more() {
    let (server, watcher) = setup().await;
    let (status, created) = ticket(&server, &watcher, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["key"], "watcher");
    let ticket = created["ticket"].as_str().unwrap().to_string();
    assert!(
        ticket.starts_with("bt_") && !ticket.contains(&watcher),
        "{ticket}"
    );

    // The dashboard's live data: only the queues the key may see, in lists and totals.
    let live = server
        .http
        .get(format!("{}/v1/live/stats?ticket={ticket}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    let snapshot = first_stats(live).await;
    let names: Vec<&str> = snapshot["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders-1"], "{snapshot}");
    assert_eq!(snapshot["topics"]["count"], 1);
    assert!(snapshot["wal"].is_null(), "storage figures are the admin's");

    // A topic the key may read: served; one it may not: 403, as with the key itself.
    let topic = server
        .http
        .get(format!(
            "{}/v1/topics/news/live?ticket={ticket}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(topic.status(), StatusCode::OK);
    drop(topic);
    let (status, _) = as_key(
        &server,
        ADMIN,
        Method::PUT,
        "/v1/topics/secret",
        Some(json!({})),
    )
    .await;
    assert!(status.is_success());
    let refused = server
        .http
        .get(format!(
            "{}/v1/topics/secret/live?ticket={ticket}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Only GETs take tickets; a tampered ticket is refused.
    let post = server
        .http
        .post(format!(
            "{}/v1/queues/orders-1/receive?ticket={ticket}",
            server.base
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    let mut tampered = ticket.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let response = server
        .http
        .get(format!("{}/v1/live/stats?ticket={tampered}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tickets_expire_and_their_lifetime_is_bounded() {
    let (server, watcher) = setup().await;
    let (status, body) = ticket(&server, &watcher, Some(json!({"ttl_ms": 10}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, created) = ticket(&server, &watcher, Some(json!({"ttl_ms": 1000}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let ticket = created["ticket"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = server
        .http
        .get(format!("{}/v1/live/stats?ticket={ticket}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    // Without a key there is no ticket to have.
    let anonymous = server
        .http
        .post(format!("{}/v1/tickets", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoking_a_key_ends_its_live_streams() {
    let (server, watcher) = setup().await;
    let (_, created) = ticket(&server, &watcher, None).await;
    let ticket = created["ticket"].as_str().unwrap().to_string();
    let sse = server
        .http
        .get(format!(
            "{}/v1/topics/news/live?ticket={ticket}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    let ws_url = format!(
        "{}/v1/topics/news/ws?ticket={ticket}",
        server.base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let (status, _) = as_key(&server, ADMIN, Method::DELETE, "/v1/keys/watcher", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Both end (a live stream never ends by itself while its topic exists).
    let mut body = sse.bytes_stream();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream went on after the revoke");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = socket.next().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the WebSocket stayed open after the revoke");
}
