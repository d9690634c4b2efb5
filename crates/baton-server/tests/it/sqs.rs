//! The SQS API on the wire, in both protocols (the full suite runs boto3 and the aws CLI in
//! `tests/sqs`; these checks keep the Rust build honest about the shapes).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;

async fn sqs_json(
    server: &TestServer,
    action: &str,
    body: Value,
) -> (StatusCode, Value, Option<String>) {
    let response = server
        .http
        .post(format!("{}/", server.base))
        .header("x-amz-target", format!("AmazonSQS.{action}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let query_error = response
        .headers()
        .get("x-amzn-query-error")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = response.json().await.unwrap();
    (status, body, query_error)
}

async fn sqs_query(server: &TestServer, params: &[(&str, &str)]) -> (StatusCode, String) {
    let response = server
        .http
        .post(format!("{}/", server.base))
        .form(params)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn json_protocol_round_trip_and_one_set_of_queues() {
    let server = TestServer::start().await;
    let (status, created, _) =
        sqs_json(&server, "CreateQueue", json!({"QueueName": "orders"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let url = created["QueueUrl"].as_str().unwrap().to_string();
    assert!(url.ends_with("/000000000000/orders"), "{url}");
    // The same queue through the native API.
    assert_eq!(server.get("/v1/queues/orders").await.0, StatusCode::OK);

    let (status, sent, _) = sqs_json(
        &server,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "hello",
               "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["MD5OfMessageBody"], "5d41402abc4b2a76b9719d911017c592");
    assert!(sent["MD5OfMessageAttributes"].is_string());

    let (_, received, _) = sqs_json(
        &server,
        "ReceiveMessage",
        json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "MessageAttributeNames": ["All"], "AttributeNames": ["All"]}),
    )
    .await;
    let message = &received["Messages"][0];
    assert_eq!(message["Body"], "hello");
    assert_eq!(message["MessageId"], sent["MessageId"]);
    assert_eq!(
        message["MD5OfMessageAttributes"],
        sent["MD5OfMessageAttributes"]
    );
    assert_eq!(message["Attributes"]["ApproximateReceiveCount"], "1");
    assert_eq!(message["MessageAttributes"]["k"]["StringValue"], "v");

    let (status, _, _) = sqs_json(
        &server,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.stats("orders").await["acked_total"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn json_protocol_errors_carry_type_and_query_error_header() {
    let server = TestServer::start().await;
    let (status, body, header) =
        sqs_json(&server, "GetQueueUrl", json!({"QueueName": "missing"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["__type"], "com.amazonaws.sqs#QueueDoesNotExist");
    assert_eq!(
        header.as_deref(),
        Some("AWS.SimpleQueueService.NonExistentQueue;Sender")
    );
    let (_, body, _) = sqs_json(&server, "NoSuchAction", json!({})).await;
    assert_eq!(body["__type"], "com.amazonaws.sqs#InvalidAction");
    server.shutdown().await;
}

#[tokio::test]
async fn query_protocol_answers_xml() {
    let server = TestServer::start().await;
    let (status, body) = sqs_query(
        &server,
        &[
            ("Action", "CreateQueue"),
            ("QueueName", "q1"),
            ("Version", "2012-11-05"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("<CreateQueueResponse xmlns=\"http://queue.amazonaws.com/doc/2012-11-05/\">"),
        "{body}"
    );
    assert!(body.contains("/000000000000/q1</QueueUrl>"), "{body}");
    let (status, body) = sqs_query(
        &server,
        &[
            ("Action", "SendMessage"),
            ("QueueUrl", "http://x/000000000000/q1"),
            ("MessageBody", "a&b"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<MD5OfMessageBody>"), "{body}");
    let (status, body) =
        sqs_query(&server, &[("Action", "GetQueueUrl"), ("QueueName", "nope")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("<Code>AWS.SimpleQueueService.NonExistentQueue</Code>"),
        "{body}"
    );
    assert!(body.contains("<Type>Sender</Type>"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn sqs_attribute_changes_keep_a_push_subscription() {
    let server = TestServer::start().await;
    let receiver = crate::receiver::Receiver::start().await;
    server.create_queue("pushed", json!({})).await;
    let (code, body) = server
        .put(
            "/v1/queues/pushed/push",
            json!({"url": receiver.url, "concurrency": 2}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body, _) = sqs_json(&server, "GetQueueUrl", json!({"QueueName": "pushed"})).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let url = body["QueueUrl"].as_str().unwrap().to_string();

    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let (code, body, _) = sqs_json(
        &server,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"VisibilityTimeout": "45", "Policy": policy}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, body, _) = sqs_json(
        &server,
        "CreateQueue",
        json!({"QueueName": "pushed", "Attributes": {"VisibilityTimeout": "45"}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    let (code, push) = server.get("/v1/queues/pushed/push").await;
    assert_eq!(code, StatusCode::OK, "{push}");
    assert_eq!(push["concurrency"], 2);
    let (code, body, _) = sqs_json(
        &server,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["VisibilityTimeout", "Policy"]}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["Attributes"]["VisibilityTimeout"], "45");
    // The subscription still delivers.
    server.send_bodies("pushed", &["after"]).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body, "after");
    server.shutdown().await;
}

#[tokio::test]
async fn internal_queue_names_are_refused_to_users() {
    let server = TestServer::start().await;
    let (code, body) = server.put("/v1/queues/_baton-mine", json!({})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_name");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reserved for Baton's internal queues"),
        "{body}"
    );
    let (code, body, query_error) = sqs_json(
        &server,
        "CreateQueue",
        json!({"QueueName": "_baton-callbacks"}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("reserved for Baton's internal queues"),
        "{body} {query_error:?}"
    );
    let (_, list) = server.get("/v1/queues").await;
    assert_eq!(list["queues"], json!([]), "{list}");
    // Names that merely contain the prefix elsewhere are ordinary.
    let (code, body) = server.put("/v1/queues/my_baton-queue", json!({})).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn concurrent_sqs_attribute_changes_and_a_push_put_keep_each_other() {
    let server = TestServer::start().await;
    let receiver = crate::receiver::Receiver::start().await;
    server.create_queue("raced", json!({})).await;
    let (_, body, _) = sqs_json(&server, "GetQueueUrl", json!({"QueueName": "raced"})).await;
    let url = body["QueueUrl"].as_str().unwrap().to_string();
    let sets = (0..20).map(|i| {
        let policy = format!(r#"{{"Version":"2012-10-17","Id":"p{i}","Statement":[]}}"#);
        sqs_json(
            &server,
            "SetQueueAttributes",
            json!({"QueueUrl": url, "Attributes": {"Policy": policy}}),
        )
    });
    let put = server.put("/v1/queues/raced/push", json!({"url": receiver.url}));
    let (results, (code, body)) = tokio::join!(futures::future::join_all(sets), put);
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(results.iter().all(|(code, _, _)| *code == StatusCode::OK));
    let (code, push) = server.get("/v1/queues/raced/push").await;
    assert_eq!(code, StatusCode::OK, "{push}");
    let (_, body, _) = sqs_json(
        &server,
        "GetQueueAttributes",
        json!({"QueueUrl": url, "AttributeNames": ["Policy"]}),
    )
    .await;
    assert!(body["Attributes"]["Policy"].is_string(), "{body}");
    server.shutdown().await;
}

/// Creates a queue through the SQS API and returns its URL.
async fn sqs_queue(server: &TestServer, name: &str, attributes: Value) -> String {
    let (status, body, _) = sqs_json(
        server,
        "CreateQueue",
        json!({"QueueName": name, "Attributes": attributes}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["QueueUrl"].as_str().unwrap().to_string()
}

/// Messages in the queue: visible, in flight and delayed.
async fn depth(server: &TestServer, queue: &str) -> u64 {
    let stats = server.stats(queue).await;
    ["visible", "in_flight", "delayed"]
        .iter()
        .map(|field| stats[field].as_u64().unwrap())
        .sum()
}

/// Receives up to `max` messages with a lease of `visibility` seconds; returns their bodies and
/// receipt handles.
async fn sqs_receive(
    server: &TestServer,
    url: &str,
    max: u32,
    visibility: u32,
) -> Vec<(String, String)> {
    let (status, body, _) = sqs_json(
        server,
        "ReceiveMessage",
        json!({"QueueUrl": url, "MaxNumberOfMessages": max, "VisibilityTimeout": visibility}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["Messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let field = |name: &str| m[name].as_str().unwrap().to_string();
            (field("Body"), field("ReceiptHandle"))
        })
        .collect()
}

async fn sqs_receive_one(server: &TestServer, url: &str, visibility: u32) -> String {
    sqs_receive(server, url, 1, visibility).await.remove(0).1
}

#[tokio::test]
async fn sqs_deletes_by_a_superseded_handle_and_the_native_ack_stays_strict() {
    let server = TestServer::start().await;
    let url = sqs_queue(&server, "standard", json!({})).await;
    server.send_bodies("standard", &["a", "b"]).await;
    // A lease of 0 s ends at once: the first handle of each message is superseded by the
    // second receive.
    let first = sqs_receive(&server, &url, 2, 0).await;
    let second = sqs_receive(&server, &url, 2, 60).await;
    let handle = |received: &[(String, String)], body: &str| {
        received.iter().find(|(b, _)| b == body).unwrap().1.clone()
    };
    let (first_a, first_b) = (handle(&first, "a"), handle(&first, "b"));
    let (second_a, second_b) = (handle(&second, "a"), handle(&second, "b"));
    for handle in [&first_a, &first_b, &second_a, &second_b] {
        assert!(handle.starts_with('B') && handle.len() == 33, "{handle}");
    }
    // The native API keeps its rule: only the current lease acks.
    let results = server.ack("standard", &[&first_a]).await;
    assert_eq!(results[0]["error"]["code"], "receipt_stale", "{results:?}");
    // SQS deletes by any handle issued for a message that is still there.
    let (status, body, _) = sqs_json(
        &server,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": first_a}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = sqs_json(
        &server,
        "DeleteMessageBatch",
        json!({"QueueUrl": url, "Entries": [{"Id": "b", "ReceiptHandle": first_b}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["Successful"], json!([{"Id": "b"}]), "{body}");
    assert_eq!(depth(&server, "standard").await, 0);
    assert_eq!(server.stats("standard").await["acked_total"], 2);
    // A deleted message: a delete still succeeds, a visibility change does not.
    let (status, _, _) = sqs_json(
        &server,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": second_a}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, header) = sqs_json(
        &server,
        "ChangeMessageVisibility",
        json!({"QueueUrl": url, "ReceiptHandle": second_a, "VisibilityTimeout": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(header.as_deref(), Some("InvalidParameterValue;Sender"));
    assert_eq!(
        body["message"],
        format!("Value {second_a} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn sqs_fifo_delete_by_an_expired_handle_is_refused() {
    let server = TestServer::start().await;
    let url = sqs_queue(
        &server,
        "jobs.fifo",
        json!({"FifoQueue": "true", "ContentBasedDeduplication": "true"}),
    )
    .await;
    let (status, body, _) = sqs_json(
        &server,
        "SendMessage",
        json!({"QueueUrl": url, "MessageBody": "x", "MessageGroupId": "g"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expired = sqs_receive_one(&server, &url, 0).await;
    let (status, body, header) = sqs_json(
        &server,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": expired}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(header.as_deref(), Some("InvalidParameterValue;Sender"));
    assert_eq!(
        body["message"],
        format!("Value {expired} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.")
    );
    assert_eq!(depth(&server, "jobs.fifo").await, 1);
    // Received again, the message is in flight: the old handle deletes it.
    sqs_receive_one(&server, &url, 60).await;
    let (status, body, _) = sqs_json(
        &server,
        "DeleteMessage",
        json!({"QueueUrl": url, "ReceiptHandle": expired}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(depth(&server, "jobs.fifo").await, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn sqs_fifo_batch_without_a_group_fails_whole() {
    let server = TestServer::start().await;
    let url = sqs_queue(&server, "batch.fifo", json!({"FifoQueue": "true"})).await;
    let (status, body, header) = sqs_json(
        &server,
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": [
            {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "1"},
            {"Id": "no-group", "MessageBody": "b", "MessageDeduplicationId": "2"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(header.as_deref(), Some("InvalidParameterValue;Sender"));
    assert_eq!(
        body["message"],
        "The request must contain the parameter MessageGroupId."
    );
    assert_eq!(depth(&server, "batch.fifo").await, 0);
    let (status, body, _) = sqs_json(
        &server,
        "DeleteMessageBatch",
        json!({"QueueUrl": url, "Entries": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["message"],
        "There should be at least one DeleteMessageBatchRequestEntry in the request."
    );
    server.shutdown().await;
}

#[tokio::test]
async fn receipts_of_every_api_never_start_with_a_dash() {
    let server = TestServer::start().await;
    server.create_queue("many", json!({})).await;
    let bodies: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    server.send_bodies("many", &bodies).await;
    let got = server
        .receive("many", json!({"max": 100, "visibility_timeout_ms": 60000}))
        .await;
    assert_eq!(got.len(), 100);
    for message in &got {
        let receipt = message["receipt"].as_str().unwrap();
        assert!(receipt.starts_with('B'), "{receipt}");
        assert!(
            receipt
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{receipt}"
        );
    }
    server.shutdown().await;
}
