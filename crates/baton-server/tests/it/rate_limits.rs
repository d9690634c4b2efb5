//! Rate limits per API key and per client address, end to end: a flood from one key or one
//! address gets 429 `rate_limited` with `Retry-After` while another key or address is served,
//! and is served again once its bucket refilled; bytes count as well as requests; the SQS API
//! answers `RequestThrottled`; the framed protocol answers the same error under the frame's id.

use std::net::IpAddr;
use std::time::Duration;

use baton_sdk::proto::{ErrorCode, SendMessage};
use baton_sdk::wire::WireClient;
use baton_server::config::AdminKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::auth::{as_key, create_key, ADMIN};
use crate::harness::TestServer;

/// A client whose connections come from `address` (any of 127.0.0.0/8 is loopback).
fn client_from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

async fn send(
    http: &reqwest::Client,
    server: &TestServer,
    key: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = http
        .post(format!("{}/v1/queues/q/messages", server.base))
        .json(&json!({"messages": [{"body": body}]}));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

async fn assert_limited(response: reqwest::Response, who: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(who), "{message}");
}

#[tokio::test]
async fn a_flooding_key_is_limited_while_another_is_served() {
    let server = TestServer::options()
        .config(|c| {
            c.admin_key = Some(AdminKey::new(ADMIN.to_string()));
            c.key_requests_per_s = 5;
        })
        .start()
        .await;
    let (status, _) = as_key(&server, ADMIN, Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let grant = json!([{"actions": ["send"], "resources": ["queue:q"]}]);
    let flood = create_key(&server, "flood", grant.clone()).await;
    let calm = create_key(&server, "calm", grant).await;

    let mut admitted = 0;
    let mut refused = None;
    for _ in 0..20 {
        let response = send(&server.http, &server, Some(&flood), "x").await;
        if response.status().is_success() {
            admitted += 1;
        } else {
            refused = Some(response);
            break;
        }
    }
    // The bucket holds one second of the rate; a few more may refill while the loop runs.
    assert!((5..=7).contains(&admitted), "{admitted}");
    assert_limited(
        refused.expect("the flood was never limited"),
        "API key `flood`",
    )
    .await;
    // The other key has its own bucket.
    assert!(send(&server.http, &server, Some(&calm), "y")
        .await
        .status()
        .is_success());
    // Refilled after a second: served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(send(&server.http, &server, Some(&flood), "z")
        .await
        .status()
        .is_success());
}

#[tokio::test]
async fn bytes_per_second_count_requests_and_answers() {
    let server = TestServer::options()
        .config(|c| {
            c.admin_key = Some(AdminKey::new(ADMIN.to_string()));
            c.key_bytes_per_s = 4000;
        })
        .start()
        .await;
    let (status, _) = as_key(&server, ADMIN, Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let key = create_key(
        &server,
        "bulk",
        json!([{"actions": ["send", "receive"], "resources": ["queue:q"]}]),
    )
    .await;
    let body = "b".repeat(3000);
    assert!(send(&server.http, &server, Some(&key), &body)
        .await
        .status()
        .is_success());
    // 3,000 of 4,000 bytes used: a second body of 3,000 is admitted (the bucket is not in
    // debt yet) and takes it below zero; the third waits.
    assert!(send(&server.http, &server, Some(&key), &body)
        .await
        .status()
        .is_success());
    assert_limited(
        send(&server.http, &server, Some(&key), "small").await,
        "4000 bytes/s",
    )
    .await;
    // Full again after the debt is paid off; a receive of both bodies (a small request, an
    // answer of over 6,000 bytes) puts it in debt again.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let received = server
        .http
        .post(format!("{}/v1/queues/q/receive", server.base))
        .bearer_auth(&key)
        .json(&json!({"max": 10}))
        .send()
        .await
        .unwrap();
    assert!(received.status().is_success());
    let received: Value = received.json().await.unwrap();
    assert_eq!(received["messages"].as_array().unwrap().len(), 2);
    assert_limited(
        send(&server.http, &server, Some(&key), "small").await,
        "4000 bytes/s",
    )
    .await;
}

#[tokio::test]
async fn a_flooding_address_is_limited_while_another_is_served() {
    let server = TestServer::options()
        .config(|c| c.client_requests_per_s = 3)
        .start()
        .await;
    let (status, _) = server.call(Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let flood = client_from([127, 0, 0, 2]);
    let calm = client_from([127, 0, 0, 3]);
    let mut last = None;
    for _ in 0..10 {
        let response = send(&flood, &server, None, "x").await;
        if !response.status().is_success() {
            last = Some(response);
            break;
        }
    }
    assert_limited(last.expect("never limited"), "client 127.0.0.2").await;
    assert!(send(&calm, &server, None, "y").await.status().is_success());
    // `/health` and `/ready` are never limited: monitoring keeps working during a flood.
    let health = flood
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // The SQS API answers in its own terms: RequestThrottled, 429, which the SDKs retry.
    let sqs = flood
        .post(format!("{}/", server.base))
        .header("x-amz-target", "AmazonSQS.ListQueues")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(sqs.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sqs.headers().contains_key("retry-after"));
    let body: Value = sqs.json().await.unwrap();
    assert_eq!(
        body["__type"], "com.amazonaws.sqs#RequestThrottled",
        "{body}"
    );
}

#[tokio::test]
async fn the_framed_protocol_is_limited_per_frame() {
    let server = TestServer::options()
        .config(|c| c.client_requests_per_s = 3)
        .start()
        .await;
    let (status, _) = server.call(Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let client = WireClient::connect_dedicated(server.wire).await.unwrap();
    let message = || {
        vec![SendMessage {
            body: "w".into(),
            ..Default::default()
        }]
    };
    let mut limited = None;
    for _ in 0..10 {
        if let Err(error) = client.send("q", message()).await {
            limited = Some(error);
            break;
        }
    }
    let error = limited.expect("never limited");
    assert_eq!(error.code(), Some(ErrorCode::RateLimited), "{error}");
    assert!(error.to_string().contains("client 127.0.0.1"), "{error}");
    // The connection goes on and is served again after the refill.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.send("q", message()).await.unwrap();
}
