//! The memory alarm over HTTP and the SQS API, with the engine's memory usage injected: above
//! `memory_high_watermark` sends, stream appends and publishes answer 503 `memory_pressure`
//! with `Retry-After` (SQS: `ServiceUnavailable`) while receives and acks go on; `/ready` and
//! `/metrics` say so; once usage falls the node accepts writes again by itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::{EngineConfig, LocalEngine, MemoryAlarm, SystemClock};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

const WATERMARK: u64 = 64 * 1024 * 1024;

async fn wait_for_writes(server: &TestServer, accepted: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, ready) = server.get("/ready").await;
        if ready["accepts_writes"] == accepted {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "accepts_writes never became {accepted}: {ready}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn above_the_watermark_producers_get_503_memory_pressure_and_consumers_drain() {
    let usage = Arc::new(AtomicU64::new(WATERMARK / 2));
    let probe = usage.clone();
    let engine =
        LocalEngine::in_memory(Arc::new(SystemClock), EngineConfig::default()).with_memory_alarm(
            MemoryAlarm::with_probe(WATERMARK, Arc::new(move || probe.load(Ordering::Relaxed))),
        );
    let server = TestServer::options().engine(Arc::new(engine)).start().await;
    server.create_queue("q", json!({})).await;
    let (status, _) = server.put("/v1/streams/s", json!({"partitions": 1})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = server.put("/v1/topics/t", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": [{"body": "before"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ready = wait_for_writes(&server, true).await;
    assert_eq!(ready["memory"]["alarm"], false, "{ready}");
    assert_eq!(ready["memory"]["high_watermark_bytes"], WATERMARK);

    usage.store(WATERMARK + 1, Ordering::Relaxed);
    let ready = wait_for_writes(&server, false).await;
    assert_eq!(ready["ready"], true, "consumers are still served: {ready}");
    assert_eq!(ready["accepts_consumers"], true);
    assert_eq!(ready["storage"], "ok");
    assert_eq!(ready["memory"]["alarm"], true);
    assert_eq!(ready["memory"]["used_bytes"], WATERMARK + 1);
    assert!(
        ready["reason"]
            .as_str()
            .unwrap()
            .contains("memory_high_watermark"),
        "{ready}"
    );

    let refusal = server
        .http
        .post(format!("{}/v1/queues/q/messages", server.base))
        .json(&json!({"messages": [{"body": "during"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refusal
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let refused: Value = refusal.json().await.unwrap();
    assert_eq!(error_code(&refused), "memory_pressure", "{refused}");
    for (path, body) in [
        (
            "/v1/streams/s/records",
            json!({"records": [{"value": "v"}]}),
        ),
        (
            "/v1/topics/t/publish",
            json!({"messages": [{"routing_key": "k", "body": "b"}]}),
        ),
    ] {
        let (status, answer) = server.post(path, body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::SERVICE_UNAVAILABLE, "memory_pressure"),
            "{path}: {answer}"
        );
    }
    let sqs = server
        .http
        .post(format!("{}/", server.base))
        .header("x-amz-target", "AmazonSQS.SendMessage")
        .header("content-type", "application/x-amz-json-1.0")
        .body(
            json!({"QueueUrl": format!("{}/000000000000/q", server.base), "MessageBody": "sqs"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(sqs.status(), StatusCode::SERVICE_UNAVAILABLE);
    let sqs: Value = sqs.json().await.unwrap();
    assert!(
        sqs["__type"]
            .as_str()
            .unwrap()
            .ends_with("ServiceUnavailable"),
        "{sqs}"
    );

    let metrics = server.metrics_text().await;
    assert!(metrics.contains("baton_memory_alarm 1"), "{metrics}");
    assert!(
        metrics.contains(&format!("baton_memory_high_watermark_bytes {WATERMARK}")),
        "{metrics}"
    );
    let refused_line = metrics
        .lines()
        .find(|l| l.starts_with("baton_writes_refused_total{reason=\"memory_pressure\"}"))
        .unwrap();
    assert!(refused_line.ends_with(" 4"), "{refused_line}");

    // Consumers drain what was accepted: only the message sent before the alarm is there.
    let got = server.receive("q", json!({"max": 10})).await;
    let bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["before"]);
    let acked = server
        .ack("q", &[got[0]["receipt"].as_str().unwrap()])
        .await;
    assert_eq!(acked[0]["ok"], true, "{acked:?}");

    usage.store(WATERMARK / 2, Ordering::Relaxed);
    let ready = wait_for_writes(&server, true).await;
    assert_eq!(ready["memory"]["alarm"], false, "{ready}");
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": [{"body": "after"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
