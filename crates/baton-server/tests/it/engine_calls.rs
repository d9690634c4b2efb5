//! What a request costs in engine calls: SQS SendMessage, ReceiveMessage and DeleteMessage
//! (and their batches) make exactly one each, in both SQS protocols, so that an engine behind
//! a network (Redis Cluster) costs one round trip per request. A counting wrapper around the
//! in-memory engine observes the calls that name the test's queue.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_engine::counting::CountingEngine;
use baton_engine::{Engine, EngineConfig, LocalEngine, SystemClock};
use baton_server::ServerConfig;
use serde_json::{json, Value};

use crate::harness::TestServer;

async fn counted_server() -> (TestServer, Arc<CountingEngine>) {
    let inner: Arc<dyn Engine> = Arc::new(LocalEngine::in_memory(
        Arc::new(SystemClock),
        EngineConfig::default(),
    ));
    let counting = Arc::new(CountingEngine::new(inner));
    let server = TestServer::options()
        .engine(counting.clone())
        // Keeps the default tick this test was written with (the harness default is 20 ms).
        .config(|c| c.tick_interval_ms = ServerConfig::default().tick_interval_ms)
        .start()
        .await;
    (server, counting)
}

async fn sqs_json(server: &TestServer, action: &str, body: Value) -> Value {
    let response = server
        .http
        .post(format!("{}/", server.base))
        .header("x-amz-target", format!("AmazonSQS.{action}"))
        .header("content-type", "application/x-amz-json-1.0")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{action}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn sqs_query(server: &TestServer, params: &[(&str, &str)]) -> String {
    let response = server
        .http
        .post(format!("{}/", server.base))
        .form(params)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{params:?}");
    response.text().await.unwrap()
}

fn one(operation: &'static str) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([(operation, 1)])
}

/// The text between `<tag>` and `</tag>` in a query-protocol answer.
fn xml_field(xml: &str, tag: &str) -> String {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_string()
}

#[tokio::test]
async fn sqs_send_receive_and_delete_each_make_one_engine_call() {
    for queue in ["counted", "counted.fifo"] {
        let (server, engine) = counted_server().await;
        let fifo = queue.ends_with(".fifo");
        let attributes = if fifo {
            json!({"FifoQueue": "true", "ContentBasedDeduplication": "true"})
        } else {
            json!({})
        };
        let url = sqs_json(
            &server,
            "CreateQueue",
            json!({"QueueName": queue, "Attributes": attributes}),
        )
        .await["QueueUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let group = |mut message: Value| {
            if fifo {
                message["MessageGroupId"] = json!("g");
            }
            message
        };
        engine.take(queue);

        let send = group(json!({"QueueUrl": url, "MessageBody": "one"}));
        sqs_json(&server, "SendMessage", send).await;
        assert_eq!(engine.take(queue), one("send"), "{queue}: SendMessage");

        let entries: Vec<Value> = (0..3)
            .map(|i| group(json!({"Id": format!("e{i}"), "MessageBody": format!("m{i}")})))
            .collect();
        let batch = sqs_json(
            &server,
            "SendMessageBatch",
            json!({"QueueUrl": url, "Entries": entries}),
        )
        .await;
        assert_eq!(batch["Successful"].as_array().unwrap().len(), 3, "{batch}");
        assert_eq!(engine.take(queue), one("send_each"), "{queue}: batch");

        let received = sqs_json(
            &server,
            "ReceiveMessage",
            json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
        )
        .await;
        assert_eq!(
            engine.take(queue),
            one("receive"),
            "{queue}: ReceiveMessage"
        );
        let handles: Vec<String> = received["Messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["ReceiptHandle"].as_str().unwrap().to_string())
            .collect();
        assert!(!handles.is_empty());

        let delete = json!({"QueueUrl": url, "ReceiptHandle": handles[0]});
        sqs_json(&server, "DeleteMessage", delete).await;
        assert_eq!(engine.take(queue), one("delete"), "{queue}: DeleteMessage");

        let rest: Vec<Value> = handles[1..]
            .iter()
            .enumerate()
            .map(|(i, h)| json!({"Id": format!("d{i}"), "ReceiptHandle": h}))
            .collect();
        if !rest.is_empty() {
            let deleted = sqs_json(
                &server,
                "DeleteMessageBatch",
                json!({"QueueUrl": url, "Entries": rest}),
            )
            .await;
            assert!(
                deleted["Failed"].as_array().unwrap().is_empty(),
                "{deleted}"
            );
            assert_eq!(engine.take(queue), one("delete"), "{queue}: batch delete");
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_query_protocol_costs_the_same_one_call() {
    let (server, engine) = counted_server().await;
    let created = sqs_query(&server, &[("Action", "CreateQueue"), ("QueueName", "q")]).await;
    let url = xml_field(&created, "QueueUrl");
    engine.take("q");
    sqs_query(
        &server,
        &[
            ("Action", "SendMessage"),
            ("QueueUrl", &url),
            ("MessageBody", "x"),
        ],
    )
    .await;
    assert_eq!(engine.take("q"), one("send"));
    let received = sqs_query(
        &server,
        &[
            ("Action", "ReceiveMessage"),
            ("QueueUrl", &url),
            ("WaitTimeSeconds", "1"),
        ],
    )
    .await;
    assert_eq!(engine.take("q"), one("receive"));
    let handle = xml_field(&received, "ReceiptHandle");
    sqs_query(
        &server,
        &[
            ("Action", "DeleteMessage"),
            ("QueueUrl", &url),
            ("ReceiptHandle", &handle),
        ],
    )
    .await;
    assert_eq!(engine.take("q"), one("delete"));
    let stats = sqs_query(
        &server,
        &[
            ("Action", "GetQueueAttributes"),
            ("QueueUrl", &url),
            ("AttributeName.1", "ApproximateNumberOfMessages"),
        ],
    )
    .await;
    assert!(stats.contains("<Value>0</Value>"), "{stats}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_native_send_receive_and_ack_make_one_engine_call_each() {
    let (server, engine) = counted_server().await;
    server.create_queue("native", json!({})).await;
    engine.take("native");
    server.send_bodies("native", &["a", "b"]).await;
    assert_eq!(engine.take("native"), one("send"));
    let received = server.receive("native", json!({"max": 2})).await;
    assert_eq!(engine.take("native"), one("receive"));
    let receipts: Vec<&str> = received
        .iter()
        .map(|m| m["receipt"].as_str().unwrap())
        .collect();
    server.ack("native", &receipts).await;
    assert_eq!(engine.take("native"), one("ack_with_reply"));
    server.shutdown().await;
}
