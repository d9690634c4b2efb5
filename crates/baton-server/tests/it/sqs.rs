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
