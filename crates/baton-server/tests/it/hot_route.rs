//! The hot route (`api::hot`: `POST /v1/queues/{queue}/messages` without the router) answers
//! exactly as the router does. Each request is sent twice, to twin queues: once as clients
//! send it (the hot route) and once with a percent-encoded queue name, which the hot route
//! leaves to the router (which decodes it to the twin's name). Status, body and request
//! metrics must match; with API keys on, every send takes the router and keys still apply.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::TestServer;

/// `text` with every message id blanked (ids are fresh per send) and the router twin's
/// queue names read as the hot twin's.
fn normalized(value: &Value) -> String {
    let mut value = value.clone();
    if let Some(messages) = value.get_mut("messages").and_then(Value::as_array_mut) {
        for message in messages {
            if let Some(id) = message.get_mut("id") {
                *id = json!("<id>");
            }
        }
    }
    value.to_string().replace("b-", "a-")
}

async fn twin_queues(server: &TestServer) {
    for name in ["a-orders", "b-orders"] {
        let (status, body) = server.put(&format!("/v1/queues/{name}"), json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for name in ["a-jobs.fifo", "b-jobs.fifo"] {
        let (status, body) = server
            .put(&format!("/v1/queues/{name}"), json!({"fifo": true}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

const BODIES: &[&str] = &[
    r#"{"messages":[{"body":"one"}]}"#,
    r#"{"messages":[{"body":"a"},{"body":"b","delay_ms":10},{"body":"c"}]}"#,
    r#"{"messages":[{"body":"x","delay_ms":"soon"}]}"#,
    r#"{"messages":[{"body":"x","colour":"red"}]}"#,
    r#"{"messages":[]}"#,
    r#"{"messages":[{"body":"x"}]} trailing"#,
    "not json",
    "   ",
    "",
];

#[tokio::test]
async fn the_hot_route_answers_as_the_router_does() {
    let server = TestServer::start().await;
    twin_queues(&server).await;
    // (hot path, router path): the router's has the queue's first letter percent-encoded.
    let paths = [
        (
            "/v1/queues/a-orders/messages",
            "/v1/queues/%62-orders/messages",
        ),
        (
            "/v1/queues/a-jobs.fifo/messages",
            "/v1/queues/%62-jobs.fifo/messages",
        ),
        (
            "/v1/queues/a-missing/messages",
            "/v1/queues/%62-missing/messages",
        ),
        (
            "/v1/queues/a-bad!name/messages",
            "/v1/queues/%62-bad!name/messages",
        ),
    ];
    let mut compared = 0;
    for (hot, routed) in paths {
        for body in BODIES {
            let (hot_status, hot_body) = server.raw(Method::POST, hot, body).await;
            let (routed_status, routed_body) = server.raw(Method::POST, routed, body).await;
            assert_eq!(
                (hot_status, normalized(&hot_body)),
                (routed_status, normalized(&routed_body)),
                "{hot} with {body:?}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 36);
    // Both twins received the same messages.
    for name in ["a-orders", "b-orders"] {
        let (_, info) = server.get(&format!("/v1/queues/{name}")).await;
        assert_eq!(info["stats"]["sent_total"], 4, "{name}: {info}");
    }
    // The cases cover answers of every kind, not one kind 36 times.
    let (status, _) = server
        .raw(Method::POST, "/v1/queues/a-orders/messages", BODIES[0])
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .raw(Method::POST, "/v1/queues/a-missing/messages", BODIES[0])
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("queue_not_found"))
    );
    let (status, _) = server
        .raw(Method::POST, "/v1/queues/a-orders/messages", BODIES[6])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Every request is counted under the route's template, whichever path answered it: 36
    // on each path, and the three checks.
    let metrics = server.metrics_text().await;
    let counted: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                r#"baton_http_request_duration_seconds_count{api="native",action="/v1/queues/{queue}/messages",method="POST"} "#,
            )
        })
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counted, 75, "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn with_api_keys_sends_take_the_router_and_need_a_key() {
    let server = TestServer::options()
        .config(|config| {
            config.admin_key = Some(baton_server::config::AdminKey::new(
                "bk_hot_route_admin_key_0123456789abcdef".to_string(),
            ))
        })
        .start()
        .await;
    let (status, body) = server
        .raw(Method::POST, "/v1/queues/a-orders/messages", BODIES[0])
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized")),
        "{body}"
    );
    server.shutdown().await;
}
