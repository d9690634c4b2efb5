//! AWS Signature Version 4 on the SQS API, over real HTTP: requests signed by hand with
//! `auth::sigv4` in both protocols (header and presigned), each refusal with AWS's code and
//! status (unknown key, wrong signature, tampered body, stale date, malformed header, expired
//! and revoked keys), and each action's permission (`AccessDenied`, filtered listings,
//! internal queues). A refused request changes nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_server::auth::sigv4;
use baton_server::config::AdminKey;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;

const ADMIN: &str = "test-admin-key-0123456789abcdef0123456789";

struct Creds {
    id: String,
    secret: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn server() -> TestServer {
    TestServer::options()
        .config(|c| c.admin_key = Some(AdminKey::new(ADMIN.to_string())))
        .start()
        .await
}

/// Creates key `name` with SQS credentials and `permissions`.
async fn sqs_key(
    server: &TestServer,
    name: &str,
    permissions: Value,
    expires_at: Option<u64>,
) -> Creds {
    let mut body = json!({"name": name, "permissions": permissions, "sqs": true});
    if let Some(at) = expires_at {
        body["expires_at"] = json!(at);
    }
    let response = server
        .http
        .post(format!("{}/v1/keys", server.base))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let id = created["access_key_id"].as_str().unwrap().to_string();
    let secret = created["secret_access_key"].as_str().unwrap().to_string();
    assert!(id.starts_with("BKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40);
    Creds { id, secret }
}

async fn native_queue(server: &TestServer, name: &str) {
    let response = server
        .http
        .put(format!("{}/v1/queues/{name}", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn sent_total(server: &TestServer, name: &str) -> u64 {
    let response = server
        .http
        .get(format!("{}/v1/queues/{name}", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let view: Value = response.json().await.unwrap();
    view["stats"]["sent_total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{view}"))
}

fn queue_url(server: &TestServer, name: &str) -> String {
    format!("{}/000000000000/{name}", server.base)
}

/// How a request is sent: the JSON protocol or the form-encoded query protocol.
#[derive(Clone, Copy)]
enum Protocol {
    Json,
    Query,
}

struct Sent {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Sent {
    /// The error code as botocore reads it (the query code), in either protocol.
    fn code(&self) -> String {
        if let Some(code) = self.headers.get("x-amzn-query-error") {
            return code
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
        }
        let start = self.text.find("<Code>").map(|i| i + 6).unwrap_or(0);
        let end = self.text.find("</Code>").unwrap_or(start);
        self.text[start..end].to_string()
    }
}

/// Signs `body` (for `action`) at `at_ms` with `creds`, then sends `sent_body` (normally the
/// same).
async fn signed(
    server: &TestServer,
    creds: &Creds,
    protocol: Protocol,
    action: &str,
    body: &str,
    sent_body: &str,
    at_ms: u64,
) -> Sent {
    let host = server.base.trim_start_matches("http://");
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    headers.insert(
        "x-amz-date",
        HeaderValue::from_str(&sigv4::amz_date(at_ms)).unwrap(),
    );
    match protocol {
        Protocol::Json => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            headers.insert(
                "x-amz-target",
                HeaderValue::from_str(&format!("AmazonSQS.{action}")).unwrap(),
            );
        }
        Protocol::Query => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
            );
        }
    }
    let request = sigv4::Request {
        method: "POST",
        path: "/",
        query: None,
        authority: None,
        headers: &headers,
        body: body.as_bytes(),
    };
    let authorization = sigv4::authorization(&request, &creds.id, &creds.secret, "eu-central-1");
    headers.insert(
        HeaderName::from_static("authorization"),
        HeaderValue::from_str(&authorization).unwrap(),
    );
    send(
        server,
        reqwest::Method::POST,
        &format!("{}/", server.base),
        headers,
        sent_body,
    )
    .await
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    url: &str,
    mut headers: HeaderMap,
    body: &str,
) -> Sent {
    headers.remove("host");
    let response = server
        .http
        .request(method, url)
        .headers(headers)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Sent {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

async fn json_call(server: &TestServer, creds: &Creds, action: &str, body: Value) -> Sent {
    let body = body.to_string();
    signed(
        server,
        creds,
        Protocol::Json,
        action,
        &body,
        &body,
        now_ms(),
    )
    .await
}

#[tokio::test]
async fn signed_requests_send_receive_and_delete_in_both_protocols() {
    let server = server().await;
    native_queue(&server, "orders").await;
    let app = sqs_key(
        &server,
        "app",
        json!([{"actions": ["send", "receive"], "resources": ["queue:orders*"]}]),
        None,
    )
    .await;
    let url = queue_url(&server, "orders");
    let sent = json_call(
        &server,
        &app,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "one"}),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let form = format!(
        "Action=SendMessage&Version=2012-11-05&QueueUrl={}&MessageBody=two",
        form_urlencoded::byte_serialize(url.as_bytes()).collect::<String>()
    );
    let sent = signed(
        &server,
        &app,
        Protocol::Query,
        "SendMessage",
        &form,
        &form,
        now_ms(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert!(sent.text.contains("<SendMessageResponse"), "{}", sent.text);
    let received = json_call(
        &server,
        &app,
        "ReceiveMessage",
        json!({"QueueUrl": url, "MaxNumberOfMessages": 10}),
    )
    .await;
    assert_eq!(received.status, StatusCode::OK, "{}", received.text);
    let messages: Value = serde_json::from_str(&received.text).unwrap();
    let messages = messages["Messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    for message in messages {
        let deleted = json_call(
            &server,
            &app,
            "DeleteMessage",
            json!({"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}),
        )
        .await;
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    }
}

#[tokio::test]
async fn bad_signatures_get_awss_codes_and_change_nothing() {
    let server = server().await;
    native_queue(&server, "orders").await;
    let app = sqs_key(
        &server,
        "app",
        json!([{"actions": ["send"], "resources": ["queue:orders"]}]),
        None,
    )
    .await;
    let url = queue_url(&server, "orders");
    let body = json!({"QueueUrl": url, "MessageBody": "signed"}).to_string();
    let tampered = json!({"QueueUrl": url, "MessageBody": "forged"}).to_string();

    // The body is signed: another body does not verify.
    let sent = signed(
        &server,
        &app,
        Protocol::Json,
        "SendMessage",
        &body,
        &tampered,
        now_ms(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::FORBIDDEN);
    assert_eq!(sent.code(), "SignatureDoesNotMatch");
    assert!(
        sent.text
            .contains("com.amazonaws.sqs#SignatureDoesNotMatch"),
        "{}",
        sent.text
    );

    // The wrong secret.
    let wrong = Creds {
        id: app.id.clone(),
        secret: "x".repeat(40),
    };
    let sent = signed(
        &server,
        &wrong,
        Protocol::Json,
        "SendMessage",
        &body,
        &body,
        now_ms(),
    )
    .await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
    );

    // An access key id nobody has, in the query protocol (XML).
    let unknown = Creds {
        id: "BKIAUNKNOWNUNKNOWN00".into(),
        secret: app.secret.clone(),
    };
    let form = "Action=ListQueues";
    let sent = signed(
        &server,
        &unknown,
        Protocol::Query,
        "ListQueues",
        form,
        form,
        now_ms(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::FORBIDDEN);
    assert_eq!(sent.code(), "InvalidClientTokenId");
    assert!(
        sent.text
            .contains("The security token included in the request is invalid."),
        "{}",
        sent.text
    );

    // Signed 20 minutes ago, or 20 minutes ahead.
    for skew in [-(20 * 60_000i64), 20 * 60_000] {
        let at = (now_ms() as i64 + skew) as u64;
        let sent = signed(
            &server,
            &app,
            Protocol::Json,
            "SendMessage",
            &body,
            &body,
            at,
        )
        .await;
        assert_eq!(
            (sent.status, sent.code().as_str()),
            (StatusCode::BAD_REQUEST, "RequestExpired"),
            "{}",
            sent.text
        );
    }

    // A malformed Authorization header.
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonSQS.ListQueues"),
    );
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    headers.insert(
        "authorization",
        HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=BKIA"),
    );
    let sent = send(
        &server,
        reqwest::Method::POST,
        &format!("{}/", server.base),
        headers,
        "{}",
    )
    .await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::BAD_REQUEST, "IncompleteSignature")
    );

    assert_eq!(
        sent_total(&server, "orders").await,
        0,
        "no refused request sent anything"
    );
    let sent = signed(
        &server,
        &app,
        Protocol::Json,
        "SendMessage",
        &body,
        &body,
        now_ms(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent_total(&server, "orders").await, 1);
}

#[tokio::test]
async fn presigned_urls_work_until_they_expire() {
    let server = server().await;
    native_queue(&server, "orders").await;
    let app = sqs_key(
        &server,
        "app",
        json!([{"actions": ["send"], "resources": ["queue:orders"]}]),
        None,
    )
    .await;
    let host = server.base.trim_start_matches("http://");
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_str(host).unwrap());
    let path = "/000000000000/orders";
    let unsigned = sigv4::Request {
        method: "GET",
        path,
        query: Some("Action=SendMessage&MessageBody=presigned%20hello"),
        authority: None,
        headers: &headers,
        body: b"",
    };
    let query = sigv4::presign(&unsigned, &app.id, &app.secret, "us-west-2", now_ms(), 300);
    let url = format!("{}{path}?{query}", server.base);
    let sent = send(&server, reqwest::Method::GET, &url, HeaderMap::new(), "").await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    assert_eq!(sent_total(&server, "orders").await, 1);

    // Made an hour ago, good for 5 minutes.
    let old = sigv4::presign(
        &unsigned,
        &app.id,
        &app.secret,
        "us-west-2",
        now_ms() - 3_600_000,
        300,
    );
    let url = format!("{}{path}?{old}", server.base);
    let sent = send(&server, reqwest::Method::GET, &url, HeaderMap::new(), "").await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::BAD_REQUEST, "RequestExpired"),
        "{}",
        sent.text
    );
    // Another message under the same signature.
    let forged = query.replace("presigned%20hello", "forged");
    let url = format!("{}{path}?{forged}", server.base);
    let sent = send(&server, reqwest::Method::GET, &url, HeaderMap::new(), "").await;
    assert_eq!(sent.code(), "SignatureDoesNotMatch");
    assert_eq!(sent_total(&server, "orders").await, 1);
}

#[tokio::test]
async fn each_action_needs_its_permission() {
    let server = server().await;
    for name in ["orders", "orders-eu", "payments"] {
        native_queue(&server, name).await;
    }
    let reader = sqs_key(
        &server,
        "reader",
        json!([{"actions": ["receive"], "resources": ["queue:orders*"]}]),
        None,
    )
    .await;
    let url = queue_url(&server, "orders");
    let sent = json_call(
        &server,
        &reader,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "x"}),
    )
    .await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::FORBIDDEN, "AccessDenied")
    );
    assert!(
        sent.text.contains("is not authorized to perform: sqs:SendMessage on resource: arn:aws:sqs:us-east-1:000000000000:orders")
            && sent.text.contains("no `send` permission on queue:orders"),
        "{}",
        sent.text
    );
    assert_eq!(sent_total(&server, "orders").await, 0);
    let sent = json_call(
        &server,
        &reader,
        "CreateQueue",
        json!({"QueueName": "orders-new"}),
    )
    .await;
    assert_eq!(sent.code(), "AccessDenied");
    let sent = json_call(&server, &reader, "PurgeQueue", json!({"QueueUrl": url})).await;
    assert_eq!(sent.code(), "AccessDenied");
    // Reads need any permission on the queue.
    let sent = json_call(
        &server,
        &reader,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["All"]}),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let sent = json_call(
        &server,
        &reader,
        "GetQueueUrl",
        json!({"QueueName": "payments"}),
    )
    .await;
    assert_eq!(sent.code(), "AccessDenied");
    // ListQueues lists what the key may see.
    let sent = json_call(&server, &reader, "ListQueues", json!({})).await;
    let listed: Value = serde_json::from_str(&sent.text).unwrap();
    let urls: Vec<&str> = listed["QueueUrls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        [
            queue_url(&server, "orders"),
            queue_url(&server, "orders-eu")
        ]
    );

    // `manage` on every queue still does not reach Baton's internal queues.
    let manager = sqs_key(
        &server,
        "manager",
        json!([{"actions": ["send", "receive", "manage"], "resources": ["*"]}]),
        None,
    )
    .await;
    let sent = json_call(
        &server,
        &manager,
        "CreateQueue",
        json!({"QueueName": "created-by-sqs"}),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text);
    let sent = json_call(
        &server,
        &manager,
        "GetQueueUrl",
        json!({"QueueName": "_baton-key-admin"}),
    )
    .await;
    assert_eq!(sent.code(), "AccessDenied");
    let sent = json_call(&server, &manager, "ListQueues", json!({})).await;
    assert!(!sent.text.contains("_baton-"), "{}", sent.text);
}

#[tokio::test]
async fn expired_and_revoked_keys_are_refused() {
    let server = server().await;
    native_queue(&server, "orders").await;
    let permissions = json!([{"actions": ["send"], "resources": ["queue:*"]}]);
    let brief = sqs_key(
        &server,
        "brief",
        permissions.clone(),
        Some(now_ms() + 1_500),
    )
    .await;
    let kept = sqs_key(&server, "kept", permissions, None).await;
    let body = json!({"QueueUrl": queue_url(&server, "orders"), "MessageBody": "x"});
    assert_eq!(
        json_call(&server, &brief, "SendMessage", body.clone())
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let sent = json_call(&server, &brief, "SendMessage", body.clone()).await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::FORBIDDEN, "ExpiredToken"),
        "{}",
        sent.text
    );

    assert_eq!(
        json_call(&server, &kept, "SendMessage", body.clone())
            .await
            .status,
        StatusCode::OK
    );
    let response = server
        .http
        .delete(format!("{}/v1/keys/kept", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let sent = json_call(&server, &kept, "SendMessage", body).await;
    assert_eq!(
        (sent.status, sent.code().as_str()),
        (StatusCode::FORBIDDEN, "InvalidClientTokenId")
    );
    assert_eq!(sent_total(&server, "orders").await, 2);

    // Listings show the access key id, never the secret.
    let response = server
        .http
        .get(format!("{}/v1/keys", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        text.contains(&brief.id) && !text.contains(&brief.secret),
        "{text}"
    );
}
