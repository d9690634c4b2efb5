//! The hot routes (`api::hot`: `POST /v1/queues/{queue}/messages`, `.../receive` and `.../ack`
//! without the router) answer exactly as the router does. Each request is sent twice, to twin queues: once as clients
//! send it (the hot route) and once with a percent-encoded queue name (SQS: a chunked body),
//! which the hot route leaves to the router (which decodes it to the twin's name). Status, body and request
//! metrics must match; with API keys on, every send takes the router and keys still apply.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::TestServer;

/// `value` with what is fresh per message blanked (ids, receipts, times) and the router twin's
/// queue names read as the hot twin's.
fn normalized(value: &Value) -> String {
    let mut value = value.clone();
    if let Some(messages) = value.get_mut("messages").and_then(Value::as_array_mut) {
        for message in messages {
            for fresh in ["id", "receipt", "sent_at", "first_received_at"] {
                if let Some(field) = message.get_mut(fresh) {
                    *field = json!("<fresh>");
                }
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
async fn with_api_keys_hot_calls_need_the_same_key_and_permission() {
    let server = crate::auth::with_admin_key().await;
    let admin = crate::auth::ADMIN;
    for name in ["a-orders", "b-orders"] {
        let (status, body) = crate::auth::as_key(
            &server,
            admin,
            Method::PUT,
            &format!("/v1/queues/{name}"),
            Some(json!({})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let sender = crate::auth::create_key(
        &server,
        "sender",
        json!([{"actions": ["send"], "resources": ["queue:a-*", "queue:b-*"]}]),
    )
    .await;
    let message = json!({"messages": [{"body": "with a key"}]});
    // (key, expected status): none, a wrong one, one without `receive`, one with `send`.
    let cases: [(Option<&str>, &str, StatusCode); 4] = [
        (None, "messages", StatusCode::UNAUTHORIZED),
        (Some("bk_not_a_key"), "messages", StatusCode::UNAUTHORIZED),
        (Some(&sender), "receive", StatusCode::FORBIDDEN),
        (Some(&sender), "messages", StatusCode::OK),
    ];
    for (key, action, expected) in cases {
        let mut answers = Vec::new();
        for queue in ["a-orders", "%62-orders"] {
            let path = format!("/v1/queues/{queue}/{action}");
            let body = if action == "messages" {
                Some(message.clone())
            } else {
                None
            };
            let (status, answer, _) =
                crate::auth::call(&server, key, Method::POST, &path, body).await;
            answers.push((status, normalized(&answer)));
        }
        assert_eq!(answers[0], answers[1], "{key:?} {action}");
        assert_eq!(answers[0].0, expected, "{key:?} {action}: {}", answers[0].1);
    }
    for name in ["a-orders", "b-orders"] {
        let (_, info) = crate::auth::as_key(
            &server,
            admin,
            Method::GET,
            &format!("/v1/queues/{name}"),
            None,
        )
        .await;
        assert_eq!(info["stats"]["sent_total"], 1, "{name}: {info}");
    }
    server.shutdown().await;
}

const RECEIVES: &[&str] = &[
    r#"{"max":1,"wait_ms":0}"#,
    "",
    r#"{"max":0}"#,
    r#"{"max":"x"}"#,
    r#"{"wait_ms":99999999}"#,
    r#"{"bogus":1}"#,
    "not json",
];

const ACKS: &[&str] = &[
    r#"{"receipts":["garbage"]}"#,
    r#"{"receipts":[]}"#,
    r#"{"receipts":"x"}"#,
    "not json",
    "",
];

#[tokio::test]
async fn hot_receives_and_acks_answer_as_the_router_does() {
    let server = TestServer::start().await;
    twin_queues(&server).await;
    for name in ["a-orders", "b-orders"] {
        for body in ["first", "second", "third"] {
            let (status, _) = server
                .post(
                    &format!("/v1/queues/{name}/messages"),
                    json!({"messages": [{"body": body}]}),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    let mut receipts = Vec::new();
    for (hot, routed) in [
        (
            "/v1/queues/a-orders/receive",
            "/v1/queues/%62-orders/receive",
        ),
        (
            "/v1/queues/a-missing/receive",
            "/v1/queues/%62-missing/receive",
        ),
    ] {
        for body in RECEIVES {
            let (hot_status, hot_body) = server.raw(Method::POST, hot, body).await;
            let (routed_status, routed_body) = server.raw(Method::POST, routed, body).await;
            assert_eq!(
                (hot_status, normalized(&hot_body)),
                (routed_status, normalized(&routed_body)),
                "{hot} with {body:?}"
            );
            for answer in [&hot_body, &routed_body] {
                if let Some(messages) = answer["messages"].as_array() {
                    receipts.extend(messages.iter().map(|m| m["receipt"].clone()));
                }
            }
        }
    }
    // Two receives of one message each on both twins: "first" and "second".
    assert_eq!(receipts.len(), 4, "{receipts:?}");
    for (hot, routed) in [
        ("/v1/queues/a-orders/ack", "/v1/queues/%62-orders/ack"),
        ("/v1/queues/a-missing/ack", "/v1/queues/%62-missing/ack"),
    ] {
        for body in ACKS {
            let (hot_status, hot_body) = server.raw(Method::POST, hot, body).await;
            let (routed_status, routed_body) = server.raw(Method::POST, routed, body).await;
            assert_eq!(
                (hot_status, normalized(&hot_body)),
                (routed_status, normalized(&routed_body)),
                "{hot} with {body:?}"
            );
        }
    }
    // Real receipts: the hot twin's to the hot route, the router twin's to the router.
    let (hot_status, hot_acked) = server
        .post(
            "/v1/queues/a-orders/ack",
            json!({"receipts": [receipts[0], receipts[2]]}),
        )
        .await;
    let (routed_status, routed_acked) = server
        .post(
            "/v1/queues/%62-orders/ack",
            json!({"receipts": [receipts[1], receipts[3]]}),
        )
        .await;
    assert_eq!((hot_status, &hot_acked), (routed_status, &routed_acked));
    assert_eq!(
        hot_acked["results"].as_array().unwrap().len(),
        2,
        "{hot_acked}"
    );
    for name in ["a-orders", "b-orders"] {
        let (_, info) = server.get(&format!("/v1/queues/{name}")).await;
        assert_eq!(info["stats"]["acked_total"], 2, "{name}: {info}");
    }
    server.shutdown().await;
}

/// An SQS answer with what is fresh per call blanked: request ids, message ids, receipts.
fn sqs_normalized(text: &str) -> String {
    let mut text = text.replace("b-", "a-");
    for (open, close) in [
        ("<RequestId>", "</RequestId>"),
        ("<MessageId>", "</MessageId>"),
        ("<ReceiptHandle>", "</ReceiptHandle>"),
        ("\"MessageId\":\"", "\""),
        ("\"ReceiptHandle\":\"", "\""),
    ] {
        let mut out = String::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(open) {
            out.push_str(&rest[..at + open.len()]);
            rest = &rest[at + open.len()..];
            let end = rest.find(close).unwrap_or(rest.len());
            out.push_str("<fresh>");
            rest = &rest[end..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// One SQS call: with its length declared (the hot route), or chunked (the router's).
async fn sqs_call(
    server: &TestServer,
    path: &str,
    target: Option<&str>,
    body: String,
    chunked: bool,
) -> (StatusCode, String) {
    let mut request = server.http.post(format!("{}{path}", server.base));
    request = match target {
        Some(target) => request
            .header("x-amz-target", format!("AmazonSQS.{target}"))
            .header("content-type", "application/x-amz-json-1.0"),
        None => request.header("content-type", "application/x-www-form-urlencoded"),
    };
    request = if chunked {
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(body.into_bytes())]);
        request.body(reqwest::Body::wrap_stream(chunks))
    } else {
        request.body(body)
    };
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn hot_sqs_calls_answer_as_the_router_does() {
    let server = TestServer::start().await;
    twin_queues(&server).await;
    let url = |queue: &str| format!("{}/000000000000/{queue}", server.base);
    let mut compared = 0;
    for (hot_queue, routed_queue) in [("a-orders", "b-orders"), ("a-missing", "b-missing")] {
        let json_calls = |queue: &str| {
            vec![
                (
                    "SendMessage",
                    format!(r#"{{"QueueUrl":"{}","MessageBody":"hello"}}"#, url(queue)),
                ),
                ("SendMessage", format!(r#"{{"QueueUrl":"{}"}}"#, url(queue))),
                ("GetQueueUrl", format!(r#"{{"QueueName":"{queue}"}}"#)),
                (
                    "ReceiveMessage",
                    format!(r#"{{"QueueUrl":"{}","MaxNumberOfMessages":1}}"#, url(queue)),
                ),
                ("NoSuchAction", "{}".to_string()),
                ("SendMessage", "not json".to_string()),
            ]
        };
        for ((target, hot_body), (_, routed_body)) in json_calls(hot_queue)
            .into_iter()
            .zip(json_calls(routed_queue))
        {
            let hot = sqs_call(&server, "/", Some(target), hot_body, false).await;
            let routed = sqs_call(&server, "/", Some(target), routed_body, true).await;
            assert_eq!(
                (hot.0, sqs_normalized(&hot.1)),
                (routed.0, sqs_normalized(&routed.1)),
                "{target} on {hot_queue}"
            );
            compared += 1;
        }
        // The query protocol, on the queue's own path.
        let form = "Action=SendMessage&MessageBody=hi%20there".to_string();
        let hot = sqs_call(
            &server,
            &format!("/000000000000/{hot_queue}"),
            None,
            form.clone(),
            false,
        )
        .await;
        let routed = sqs_call(
            &server,
            &format!("/000000000000/{routed_queue}"),
            None,
            form,
            true,
        )
        .await;
        assert_eq!(
            (hot.0, sqs_normalized(&hot.1)),
            (routed.0, sqs_normalized(&routed.1)),
            "query SendMessage on {hot_queue}"
        );
        compared += 1;
    }
    assert_eq!(compared, 14);
    for name in ["a-orders", "b-orders"] {
        let (_, info) = server.get(&format!("/v1/queues/{name}")).await;
        assert_eq!(info["stats"]["sent_total"], 2, "{name}: {info}");
    }
    // Counted under the SQS action, whichever path answered: three SendMessage calls per side
    // and queue pair (the one whose body is not JSON names no action: `unknown`).
    let metrics = server.metrics_text().await;
    let sends: u64 = metrics
        .lines()
        .filter(|line| {
            line.starts_with(
                "baton_http_request_duration_seconds_count{api=\"sqs\",action=\"SendMessage\"",
            )
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(sends, 12, "{metrics}");
    server.shutdown().await;
}
