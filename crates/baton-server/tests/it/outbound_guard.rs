//! The private-address guard end to end (`outbound_private = "deny"`, as a server listening
//! beyond loopback has by default): push subscriptions, topic URL subscriptions, notify URLs
//! and the event API's notification URL to loopback, private, link-local (cloud metadata) and
//! unspecified addresses are refused with `target_not_allowed` naming the address and the
//! setting, and nothing is stored; a network named in `outbound_allow` is let through and
//! delivered to.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

const REFUSED: &[&str] = &[
    "http://127.0.0.1:9/hook",
    "http://10.1.2.3/hook",
    "http://192.168.0.10/hook",
    "http://169.254.169.254/latest/meta-data/iam",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
    "http://0.0.0.0:9324/hook",
    "http://localhost:9/hook",
];

#[tokio::test]
async fn private_targets_are_refused_with_a_precise_error() {
    let server = TestServer::options()
        .config(|c| c.outbound_private = "deny".to_string())
        .start()
        .await;
    server.create_queue("work", json!({})).await;
    let (status, _) = server.put("/v1/topics/news", json!({})).await;
    assert!(status.is_success());
    for url in REFUSED {
        let (status, body) = server
            .put("/v1/queues/work/push", json!({ "url": url }))
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "target_not_allowed"),
            "{url}: {body}"
        );
        // The metadata address is in the default deny list as well, which is checked first.
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("outbound_private") || message.contains("outbound_deny"),
            "{url}: {message}"
        );

        let (status, body) = server
            .post(
                "/v1/queues/work/messages",
                json!({"messages": [{"body": "x", "notify": {"url": url}}]}),
            )
            .await;
        assert_eq!(error_code(&body), "target_not_allowed", "{url}: {body}");
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, body) = server
            .put(
                "/v1/topics/news/subscriptions/hook",
                json!({"target": {"url": url}}),
            )
            .await;
        assert_eq!(error_code(&body), "target_not_allowed", "{url}: {body}");
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    // Nothing was stored: no push subscription, no message, no subscription.
    let (status, _) = server.get("/v1/queues/work/push").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.stats("work").await["sent_total"], 0);
    let (status, _) = server.get("/v1/topics/news/subscriptions/hook").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let encoded = "http%3A%2F%2F127.0.0.1%3A9%2Fhook";
    let (status, body) = server
        .post(
            &format!("/api/events/advanced?eventType=NOTIFICATION&notificationUrl={encoded}"),
            json!({"x": 1}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "target_not_allowed"),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_network_named_in_the_allow_list_is_delivered_to() {
    let server = TestServer::options()
        .config(|c| {
            c.outbound_private = "deny".to_string();
            c.outbound_allow = "127.0.0.1/32".to_string();
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    let (status, body) = server
        .put("/v1/queues/work/push", json!({"url": receiver.url}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = server
        .post(
            "/v1/queues/work/messages",
            json!({"messages": [{"body": "hi"}]}),
        )
        .await;
    assert!(status.is_success());
    eventually("the push delivery", || async {
        (receiver.count() == 1).then_some(())
    })
    .await;
    // Other private networks stay refused.
    let (status, body) = server
        .put("/v1/queues/work/push", json!({"url": "http://10.0.0.1/x"}))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "target_not_allowed")
    );
    server.shutdown().await;
}
