//! API keys end to end: permissions checked on every route, 401 and 403 with their codes,
//! listings filtered, keys durable across a restart, the start-up key, unsigned SQS requests
//! and the framed protocol refused while keys exist (signed ones: `sqs_auth.rs`), the refusal to listen beyond loopback without
//! keys, and a check that every route of the router has a permission rule.

use std::collections::BTreeSet;
use std::time::Duration;

use baton_server::config::AdminKey;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

pub(crate) const ADMIN: &str = "test-admin-key-0123456789abcdef0123456789";

/// `(status, body, WWW-Authenticate)` of a call with `key` (or none).
pub(crate) async fn call(
    server: &TestServer,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value, challenge)
}

pub(crate) async fn as_key(
    server: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, body, _) = call(server, Some(key), method, path, body).await;
    (status, body)
}

pub(crate) async fn with_admin_key() -> TestServer {
    TestServer::options()
        .config(|c| c.admin_key = Some(AdminKey::new(ADMIN.to_string())))
        .start()
        .await
}

/// Creates key `name` with `permissions`; returns its secret.
pub(crate) async fn create_key(server: &TestServer, name: &str, permissions: Value) -> String {
    let body = json!({"name": name, "permissions": permissions});
    let (status, created) = as_key(server, ADMIN, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], name);
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("bk_") && key.len() == 46, "{key}");
    key
}

fn send_body() -> Option<Value> {
    Some(json!({"messages": [{"body": "hello"}]}))
}

#[tokio::test]
async fn send_and_receive_need_their_permission_on_the_queue() {
    let server = with_admin_key().await;
    for queue in ["orders-eu", "payments"] {
        let path = format!("/v1/queues/{queue}");
        assert_eq!(
            as_key(&server, ADMIN, Method::PUT, &path, None).await.0,
            StatusCode::CREATED
        );
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
        json!([{"actions": ["receive"], "resources": ["queue:orders*"]}]),
    )
    .await;

    let (status, body) = as_key(
        &server,
        &sender,
        Method::POST,
        "/v1/queues/orders-eu/messages",
        send_body(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = as_key(
        &server,
        &sender,
        Method::POST,
        "/v1/queues/payments/messages",
        send_body(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "forbidden");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("send")
            && message.contains("queue:payments")
            && message.contains("sender"),
        "{message}"
    );

    // Receiving (and so acking) needs `receive`, which the sender lacks.
    let receive = Some(json!({"max": 10}));
    let (status, body) = as_key(
        &server,
        &sender,
        Method::POST,
        "/v1/queues/orders-eu/receive",
        receive.clone(),
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let (status, body) = as_key(
        &server,
        &worker,
        Method::POST,
        "/v1/queues/orders-eu/receive",
        receive,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let receipt = body["messages"][0]["receipt"].as_str().unwrap().to_string();
    let ack = Some(json!({"receipts": [receipt]}));
    let (status, body) = as_key(
        &server,
        &sender,
        Method::POST,
        "/v1/queues/orders-eu/ack",
        ack.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = as_key(
        &server,
        &worker,
        Method::POST,
        "/v1/queues/orders-eu/ack",
        ack,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["ok"], true);
    // Neither may send where it may only receive.
    let (status, _) = as_key(
        &server,
        &worker,
        Method::POST,
        "/v1/queues/orders-eu/messages",
        send_body(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn manage_and_admin_actions() {
    let server = with_admin_key().await;
    let sender = create_key(
        &server,
        "sender",
        json!([{"actions": ["send"], "resources": ["*"]}]),
    )
    .await;
    let ops = create_key(
        &server,
        "ops",
        json!([{"actions": ["manage"], "resources": ["queue:*", "stream:*"]}]),
    )
    .await;

    let (status, _) = as_key(&server, &sender, Method::PUT, "/v1/queues/jobs", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = as_key(&server, &ops, Method::PUT, "/v1/queues/jobs", None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = as_key(&server, &ops, Method::POST, "/v1/queues/jobs/purge", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = as_key(
        &server,
        &ops,
        Method::PUT,
        "/v1/streams/clicks",
        Some(json!({"partitions": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = as_key(&server, &ops, Method::PUT, "/v1/topics/news", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "manage on queues and streams is not on topics"
    );
    let (status, _) = as_key(&server, &sender, Method::DELETE, "/v1/queues/jobs", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Keys and the server are admin's: `manage` on everything is not enough.
    let all = create_key(
        &server,
        "all-but-admin",
        json!([{"actions": ["send", "receive", "manage"], "resources": ["*"]}]),
    )
    .await;
    for (method, path) in [
        (Method::GET, "/v1/keys"),
        (Method::GET, "/v1/keys/ops"),
        (Method::DELETE, "/v1/keys/ops"),
        (Method::GET, "/v1/server"),
        (Method::GET, "/metrics"),
    ] {
        let (status, body) = as_key(&server, &all, method.clone(), path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    let body =
        json!({"name": "sneaky", "permissions": [{"actions": ["admin"], "resources": ["*"]}]});
    let (status, _) = as_key(&server, &all, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Baton's internal queues (where keys live) are out of reach without admin.
    let (status, _) = as_key(
        &server,
        &all,
        Method::DELETE,
        "/v1/queues/_baton-key-ops",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_key(&server, ADMIN, Method::GET, "/v1/server", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = as_key(&server, ADMIN, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn missing_unknown_expired_and_revoked_keys_get_401() {
    let server = with_admin_key().await;
    let (status, body, challenge) = call(&server, None, Method::GET, "/v1/queues", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(challenge.unwrap().starts_with("Bearer"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer"));
    let (status, body, _) = call(
        &server,
        Some("bk_not-a-key-at-all"),
        Method::GET,
        "/v1/queues",
        None,
    )
    .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let basic = server
        .http
        .get(format!("{}/v1/queues", server.base))
        .header("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    // Liveness and readiness stay open.
    for path in ["/health", "/ready"] {
        assert_eq!(
            call(&server, None, Method::GET, path, None).await.0,
            StatusCode::OK,
            "{path}"
        );
    }

    // Expiry: the key works until `expires_at`, then is refused.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let expires_at = now + 700;
    let body = json!({"name": "brief", "permissions": [{"actions": ["send"], "resources": ["*"]}], "expires_at": expires_at});
    let (status, created) = as_key(&server, ADMIN, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["expires_at"], expires_at);
    let brief = created["key"].as_str().unwrap().to_string();
    assert_eq!(
        as_key(&server, &brief, Method::GET, "/v1/queues", None)
            .await
            .0,
        StatusCode::OK
    );
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        <= expires_at
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = as_key(&server, &brief, Method::GET, "/v1/queues", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let (_, shown) = as_key(&server, ADMIN, Method::GET, "/v1/keys/brief", None).await;
    assert_eq!(shown["expired"], true);
    let past = json!({"name": "late", "permissions": [{"actions": ["send"], "resources": ["*"]}], "expires_at": 1});
    let (status, body) = as_key(&server, ADMIN, Method::POST, "/v1/keys", Some(past)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );

    // Revocation takes effect at once.
    let doomed = create_key(
        &server,
        "doomed",
        json!([{"actions": ["send"], "resources": ["*"]}]),
    )
    .await;
    assert_eq!(
        as_key(&server, &doomed, Method::GET, "/v1/queues", None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _) = as_key(&server, ADMIN, Method::DELETE, "/v1/keys/doomed", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = as_key(&server, &doomed, Method::GET, "/v1/queues", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, body) = as_key(&server, ADMIN, Method::GET, "/v1/keys/doomed", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "key_not_found")
    );
    let (status, body) = as_key(&server, ADMIN, Method::DELETE, "/v1/keys/doomed", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "key_not_found")
    );
}

#[tokio::test]
async fn key_api_answers_and_errors() {
    let server = with_admin_key().await;
    let secret = create_key(
        &server,
        "app",
        json!([{"actions": ["send", "receive"], "resources": ["queue:app-*"]}]),
    )
    .await;
    let body = json!({"name": "app", "permissions": [{"actions": ["send"], "resources": ["*"]}]});
    let (status, answer) = as_key(&server, ADMIN, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "key_exists")
    );
    for bad in [
        json!({"name": "x", "permissions": []}),
        json!({"name": "x", "permissions": [{"actions": ["send"], "resources": ["bucket:a"]}]}),
        json!({"name": "x", "permissions": [{"actions": ["send"], "resources": ["queue:*a"]}]}),
        json!({"name": "bad name", "permissions": [{"actions": ["send"], "resources": ["*"]}]}),
    ] {
        let (status, answer) =
            as_key(&server, ADMIN, Method::POST, "/v1/keys", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
    }
    let fly = json!({"name": "x", "permissions": [{"actions": ["fly"], "resources": ["*"]}]});
    let (status, answer) = as_key(&server, ADMIN, Method::POST, "/v1/keys", Some(fly)).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "malformed_request")
    );

    // Listing and showing never reveal a secret.
    let (status, list) = as_key(&server, ADMIN, Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "app"]);
    assert!(!list.to_string().contains(&secret) && !list.to_string().contains(ADMIN));
    assert!(list["keys"][1].get("key").is_none());
    let (_, shown) = as_key(&server, ADMIN, Method::GET, "/v1/keys/app", None).await;
    assert_eq!(shown["permissions"][0]["resources"][0], "queue:app-*");
    assert_eq!(shown["expired"], false);

    // The last key that may manage keys cannot be revoked.
    let (status, answer) = as_key(&server, ADMIN, Method::DELETE, "/v1/keys/admin", None).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "last_admin_key")
    );
}

#[tokio::test]
async fn listings_show_only_what_the_key_may_see() {
    let server = with_admin_key().await;
    for (path, body) in [
        ("/v1/queues/orders-a", None),
        ("/v1/queues/orders-b", None),
        ("/v1/queues/payroll", None),
        ("/v1/streams/chat", Some(json!({"partitions": 1}))),
        ("/v1/streams/audit", Some(json!({"partitions": 1}))),
        ("/v1/topics/news", None),
        ("/v1/topics/secrets", None),
    ] {
        let (status, answer) = as_key(&server, ADMIN, Method::PUT, path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
    }
    let reader = create_key(
        &server,
        "reader",
        json!([
            {"actions": ["receive"], "resources": ["queue:orders*", "stream:chat"]},
            {"actions": ["send"], "resources": ["topic:news"]}
        ]),
    )
    .await;
    let names = |list: &Value, field: &str| -> Vec<String> {
        list[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, queues) = as_key(&server, &reader, Method::GET, "/v1/queues", None).await;
    assert_eq!(names(&queues, "queues"), ["orders-a", "orders-b"]);
    let (_, streams) = as_key(&server, &reader, Method::GET, "/v1/streams", None).await;
    assert_eq!(names(&streams, "streams"), ["chat"]);
    let (_, topics) = as_key(&server, &reader, Method::GET, "/v1/topics", None).await;
    assert_eq!(names(&topics, "topics"), ["news"]);
    // Describing another tenant's queue is refused too.
    let (status, _) = as_key(&server, &reader, Method::GET, "/v1/queues/payroll", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The admin sees everything, Baton's key queues included.
    let (_, all) = as_key(&server, ADMIN, Method::GET, "/v1/queues", None).await;
    let all = names(&all, "queues");
    assert!(
        all.contains(&"payroll".to_string()) && all.contains(&"_baton-key-reader".to_string()),
        "{all:?}"
    );
}

#[tokio::test]
async fn unsigned_sqs_requests_and_the_framed_protocol_are_refused_while_keys_exist() {
    let server = with_admin_key().await;
    let response = server
        .http
        .post(format!("{}/", server.base))
        .header("x-amz-target", "AmazonSQS.ListQueues")
        .header("content-type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["x-amzn-query-error"],
        "MissingAuthenticationToken;Sender"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["__type"],
        "com.amazonaws.sqs#MissingAuthenticationToken"
    );
    let query = server
        .http
        .post(format!("{}/", server.base))
        .form(&[("Action", "ListQueues")])
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), StatusCode::FORBIDDEN);
    assert!(query
        .text()
        .await
        .unwrap()
        .contains("<Code>MissingAuthenticationToken</Code>"));
    // The dashboard page itself is static and stays reachable.
    assert_eq!(
        call(&server, None, Method::GET, "/", None).await.0,
        StatusCode::OK
    );

    for client in [
        baton_sdk::wire::WireClient::connect(&server.base)
            .await
            .unwrap(),
        baton_sdk::wire::WireClient::connect_dedicated(server.wire)
            .await
            .unwrap(),
    ] {
        let error = client
            .send("q", vec![Default::default()])
            .await
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(baton_sdk::proto::ErrorCode::Unauthorized),
            "{error}"
        );
    }
}

#[tokio::test]
async fn options_open_sqs_wire_and_metrics_on_purpose() {
    let server = TestServer::options()
        .config(|c| {
            c.admin_key = Some(AdminKey::new(ADMIN.to_string()));
            c.sqs_without_auth = true;
            c.wire_without_auth = true;
            c.metrics_public = true;
        })
        .start()
        .await;
    let response = server
        .http
        .post(format!("{}/", server.base))
        .form(&[("Action", "ListQueues")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        call(&server, None, Method::GET, "/metrics", None).await.0,
        StatusCode::OK
    );
    let (status, _) = as_key(&server, ADMIN, Method::PUT, "/v1/queues/q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let client = baton_sdk::wire::WireClient::connect_dedicated(server.wire)
        .await
        .unwrap();
    let message = baton_sdk::proto::SendMessage {
        body: "x".into(),
        ..Default::default()
    };
    client.send("q", vec![message]).await.unwrap();
    // The native API still needs a key.
    assert_eq!(
        call(&server, None, Method::GET, "/v1/queues", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let fs = baton_storage::SimFs::new();
    let server = TestServer::options()
        .durable(&fs)
        .config(|c| c.admin_key = Some(AdminKey::new(ADMIN.to_string())))
        .start()
        .await;
    crate::storage_wait_ready(&server).await;
    let app = create_key(
        &server,
        "app",
        json!([{"actions": ["send"], "resources": ["queue:*"]}]),
    )
    .await;
    let doomed = create_key(
        &server,
        "doomed",
        json!([{"actions": ["send"], "resources": ["queue:*"]}]),
    )
    .await;
    assert_eq!(
        as_key(&server, ADMIN, Method::DELETE, "/v1/keys/doomed", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    server.shutdown().await;

    // Without the start-up key this time: what was created through the API is on disk.
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    assert_eq!(
        call(&server, None, Method::GET, "/v1/queues", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        as_key(&server, &app, Method::GET, "/v1/queues", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        as_key(&server, ADMIN, Method::GET, "/v1/keys", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        as_key(&server, &doomed, Method::GET, "/v1/queues", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_keys_everything_stays_open_on_loopback() {
    let server = TestServer::start().await;
    assert_eq!(
        call(&server, None, Method::PUT, "/v1/queues/q", None)
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        call(&server, None, Method::GET, "/metrics", None).await.0,
        StatusCode::OK
    );
    // The first key switches checking on; creating it needs no key (there is none yet).
    let body =
        json!({"name": "first", "permissions": [{"actions": ["admin"], "resources": ["*"]}]});
    let (status, created, _) = call(&server, None, Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        call(&server, None, Method::GET, "/v1/queues", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let key = created["key"].as_str().unwrap();
    assert_eq!(
        as_key(&server, key, Method::GET, "/v1/queues", None)
            .await
            .0,
        StatusCode::OK
    );
}

async fn serve_on_any_address(
    insecure: bool,
) -> (
    tokio::task::JoinHandle<Result<(), baton_server::ServerError>>,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = baton_server::ServerConfig {
        listen: "0.0.0.0:0".to_string(),
        insecure,
        ..baton_server::ServerConfig::default()
    };
    let engine = std::sync::Arc::new(baton_engine::LocalEngine::in_memory(
        std::sync::Arc::new(baton_engine::SystemClock),
        baton_engine::EngineConfig::default(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(baton_server::serve(
        config,
        engine,
        listener,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    (task, format!("http://127.0.0.1:{port}"), stop)
}

#[tokio::test]
async fn listening_beyond_loopback_without_keys_is_refused_unless_insecure() {
    let (task, base, _stop) = serve_on_any_address(false).await;
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("no API key exists")
            && error.contains("baton key create")
            && error.contains("--insecure"),
        "{error}"
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let gone = client.get(format!("{base}/health")).send().await;
    assert!(gone.is_err(), "nothing listens any more");

    let (task, base, stop) = serve_on_any_address(true).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ready = client.get(format!("{base}/ready")).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = client
        .put(format!("{base}/v1/queues/q"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Every `.route(...)` in `src/api/`, as `(method, template)`.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut files = vec![root];
    let mut routes = BTreeSet::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_some_and(|e| e == "rs") {
            routes_of(&std::fs::read_to_string(&path).unwrap(), &mut routes);
        }
    }
    routes
}

fn routes_of(source: &str, routes: &mut BTreeSet<(String, String)>) {
    for (start, _) in source.match_indices(".route(") {
        let rest = &source[start + ".route(".len()..];
        let rest = rest.trim_start();
        let (template, after) = if let Some(literal) = rest.strip_prefix('"') {
            let end = literal.find('"').unwrap();
            (literal[..end].to_string(), &literal[end + 1..])
        } else {
            let end = rest.find(',').unwrap();
            let name = rest[..end].trim();
            assert_eq!(
                name, "baton_proto::wire::UPGRADE_PATH",
                "a route path the test does not know"
            );
            (baton_proto::wire::UPGRADE_PATH.to_string(), &rest[end..])
        };
        // The method router: up to the `)` that closes `.route(`.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let methods = &after[..end];
        for method in ["get", "post", "put", "patch", "delete"] {
            for (at, _) in methods.match_indices(&format!("{method}(")) {
                let before = methods[..at].chars().last();
                if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                    routes.insert((method.to_uppercase(), template.clone()));
                }
            }
        }
    }
}

#[test]
fn every_route_of_the_router_has_a_permission_rule() {
    let routes = routes_in_source();
    assert!(
        routes.len() > 80,
        "the route reader found only {} routes",
        routes.len()
    );
    for (method, template) in &routes {
        assert!(
            baton_server::auth::routes::rule(method, template).is_ok(),
            "{method} {template} has no entry in auth::routes::ROUTES: add one (which permission does it need?)"
        );
    }
    // And no entry is left over from a route that is gone.
    for (method, template, _) in baton_server::auth::routes::ROUTES {
        assert!(
            routes.contains(&(method.to_string(), template.to_string())),
            "ROUTES has {method} {template}, which the router does not have"
        );
    }
}
