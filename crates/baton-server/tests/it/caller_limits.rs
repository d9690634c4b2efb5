//! Open long polls and live streams per API key and per client address, end to end: one
//! over its limit gets 429 naming who, the limit and the setting, while other keys and
//! addresses are served; a slot is given back when its long poll or stream ends.

use std::net::IpAddr;
use std::time::Duration;

use baton_sdk::proto::{ErrorCode, ReceiveRequest};
use baton_sdk::wire::WireClient;
use baton_server::config::AdminKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::auth::{as_key, create_key, ADMIN};
use crate::harness::{error_code, TestServer};
use crate::receiver::eventually;

fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

async fn long_poll(server: &TestServer, key: &str, wait_ms: u64) -> (StatusCode, Value) {
    let body = json!({"max": 1, "wait_ms": wait_ms});
    as_key(
        server,
        key,
        Method::POST,
        "/v1/queues/q/receive",
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_key_holds_at_most_its_long_polls() {
    let server = TestServer::options()
        .config(|c| {
            c.admin_key = Some(AdminKey::new(ADMIN.to_string()));
            c.key_long_polls_max = 1;
        })
        .start()
        .await;
    let (status, _) = as_key(&server, ADMIN, Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let grant = json!([{"actions": ["receive"], "resources": ["queue:q"]}]);
    let a = create_key(&server, "poller-a", grant.clone()).await;
    let b = create_key(&server, "poller-b", grant).await;

    let waiting = {
        let (base, key) = (server.base.clone(), a.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{base}/v1/queues/q/receive"))
                .bearer_auth(key)
                .json(&json!({"wait_ms": 1500}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = long_poll(&server, &a, 1000).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_waiters"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("poller-a") && message.contains("key_long_polls_max"),
        "{message}"
    );
    // A receive that does not wait needs no slot; another key has its own.
    assert_eq!(long_poll(&server, &a, 0).await.0, StatusCode::OK);
    assert_eq!(long_poll(&server, &b, 100).await.0, StatusCode::OK);
    // The first ends: its slot is given back.
    assert_eq!(waiting.await.unwrap(), StatusCode::OK);
    assert_eq!(long_poll(&server, &a, 100).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_address_holds_at_most_its_live_streams() {
    let server = TestServer::options()
        .config(|c| c.client_live_streams_max = 1)
        .start()
        .await;
    let (status, _) = server.put("/v1/topics/news", json!({})).await;
    assert!(status.is_success());
    let url = format!("{}/v1/topics/news/live", server.base);
    let flood = client_from([127, 0, 0, 2]);
    let first = flood.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = flood.get(&url).send().await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = second.json().await.unwrap();
    assert_eq!(error_code(&body), "too_many_live_streams", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client 127.0.0.2"),
        "{body}"
    );
    // Another address is served; a WebSocket counts as well.
    let other = client_from([127, 0, 0, 3]).get(&url).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    let ws = format!(
        "{}/v1/topics/news/ws",
        server.base.replacen("http", "ws", 1)
    );
    let refused = tokio_tungstenite::connect_async(&ws).await;
    // From 127.0.0.1 (no stream open yet): served.
    let (socket, _) = refused.expect("a first WebSocket from 127.0.0.1");
    match tokio_tungstenite::connect_async(&ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS)
        }
        other => panic!(
            "a second WebSocket from one address: {:?}",
            other.map(|_| ())
        ),
    }
    drop(socket);
    // Closing the first stream gives its slot back.
    drop(first);
    eventually("the slot given back", || async {
        (flood.get(&url).send().await.unwrap().status() == StatusCode::OK).then_some(())
    })
    .await;
}

#[tokio::test]
async fn framed_protocol_long_polls_count_too() {
    let server = TestServer::options()
        .config(|c| c.client_long_polls_max = 1)
        .start()
        .await;
    let (status, _) = server.put("/v1/queues/q", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let client = WireClient::connect_dedicated(server.wire).await.unwrap();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move {
            let wait = ReceiveRequest {
                wait_ms: Some(1500),
                ..Default::default()
            };
            client.receive("q", &wait).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wait = ReceiveRequest {
        wait_ms: Some(500),
        ..Default::default()
    };
    let error = client.receive("q", &wait).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::TooManyWaiters), "{error}");
    assert!(waiting.await.unwrap().unwrap().is_empty());
    assert!(client.receive("q", &wait).await.unwrap().is_empty());
}
