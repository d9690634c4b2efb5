//! The framed protocol's authentication end to end: an auth frame names the connection's key;
//! every later request is checked against that key's permissions as the HTTP routes of the
//! same calls are; a revoked key stops working on an open connection; on both ways in (the
//! HTTP upgrade and the dedicated port).

use baton_sdk::proto::{ErrorCode, ReceiveRequest, SendMessage};
use baton_sdk::wire::WireClient;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::auth::{as_key, create_key, with_admin_key, ADMIN};
use crate::harness::TestServer;

fn message(body: &str) -> Vec<SendMessage> {
    vec![SendMessage {
        body: body.into(),
        ..Default::default()
    }]
}

fn code(error: &baton_sdk::Error) -> Option<ErrorCode> {
    error.code()
}

async fn clients(server: &TestServer) -> [WireClient; 2] {
    [
        WireClient::connect(&server.base).await.unwrap(),
        WireClient::connect_dedicated(server.wire).await.unwrap(),
    ]
}

#[tokio::test]
async fn requests_act_as_the_key_of_the_auth_frame() {
    let server = with_admin_key().await;
    for queue in ["orders", "payments"] {
        let path = format!("/v1/queues/{queue}");
        let (status, _) = as_key(&server, ADMIN, Method::PUT, &path, None).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let sender = create_key(
        &server,
        "sender",
        json!([{"actions": ["send"], "resources": ["queue:orders*"]}]),
    )
    .await;
    let worker = create_key(
        &server,
        "worker",
        json!([{"actions": ["send", "receive"], "resources": ["queue:orders"]}]),
    )
    .await;

    for client in clients(&server).await {
        // Before any auth frame: 401, saying how to authenticate.
        let error = client.send("orders", message("x")).await.unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Unauthorized), "{error}");
        assert!(error.to_string().contains("auth frame"), "{error}");

        // A wrong key is refused and leaves the connection unauthenticated.
        let error = client.authenticate("bk_not-a-key").await.unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Unauthorized), "{error}");
        let error = client.send("orders", message("x")).await.unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Unauthorized), "{error}");

        let answer = client.authenticate(&sender).await.unwrap();
        assert_eq!(answer.key.as_deref(), Some("sender"));
        client.send("orders", message("from sender")).await.unwrap();
        // Outside its pattern, and an action it lacks: 403 naming both.
        let error = client.send("payments", message("x")).await.unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Forbidden), "{error}");
        assert!(error.to_string().contains("queue:payments"), "{error}");
        let error = client
            .receive("orders", &ReceiveRequest::default())
            .await
            .unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Forbidden), "{error}");
        assert!(error.to_string().contains("receive"), "{error}");
        // Baton's internal queues need `admin`.
        let error = client
            .send("_baton-callbacks", message("x"))
            .await
            .unwrap_err();
        assert_eq!(code(&error), Some(ErrorCode::Forbidden), "{error}");

        // The same connection may switch to another key.
        assert_eq!(
            client.authenticate(&worker).await.unwrap().key.as_deref(),
            Some("worker")
        );
        let received = client
            .receive(
                "orders",
                &ReceiveRequest {
                    max: Some(10),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].body, "from sender");
        let acked = client
            .ack("orders", vec![received[0].receipt.clone()])
            .await
            .unwrap();
        assert!(acked.results[0].is_ok(), "{acked:?}");
    }

    // Revoked while the connection is open: the next request is refused.
    let client = WireClient::connect_dedicated(server.wire).await.unwrap();
    client.authenticate(&worker).await.unwrap();
    client.send("orders", message("before")).await.unwrap();
    let (status, _) = as_key(&server, ADMIN, Method::DELETE, "/v1/keys/worker", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let error = client.send("orders", message("after")).await.unwrap_err();
    assert_eq!(code(&error), Some(ErrorCode::Unauthorized), "{error}");
    assert!(error.to_string().contains("revoked"), "{error}");
}

#[tokio::test]
async fn an_auth_frame_on_a_server_without_keys_names_no_key() {
    let server = TestServer::start().await;
    let client = WireClient::connect_dedicated(server.wire).await.unwrap();
    let answer = client.authenticate("anything").await.unwrap();
    assert_eq!(answer.key, None);
}
