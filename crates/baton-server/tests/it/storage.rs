//! Storage seen over HTTP: readiness after recovery, a failing disk answered with 503 while
//! reads keep working, and recovery once the disk works again.

use std::time::{Duration, Instant};

use baton_storage::SimFs;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{error_code, TestServer};

async fn wait_ready(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/ready").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "not ready in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failing_disk_answers_503_keeps_reads_and_recovers_by_itself() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    wait_ready(&server).await;
    let (_, info) = server.get("/v1/server").await;
    assert_eq!(info["engine"], "embedded");
    server.create_queue("q", json!({})).await;
    server.send_bodies("q", &["kept"]).await;

    fs.fail_writes(Some(std::io::ErrorKind::Other));
    let (status, body) = server
        .post(
            "/v1/queues/q/messages",
            json!({"messages": [{"body": "refused"}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("storage"), "{message}");
    let (status, _) = server.get("/v1/queues/q").await;
    assert_eq!(status, StatusCode::OK, "reads keep working");
    let (status, _) = server.get("/v1/queues").await;
    assert_eq!(status, StatusCode::OK);

    fs.fail_writes(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = server
            .post(
                "/v1/queues/q/messages",
                json!({"messages": [{"body": "after"}]}),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "storage did not recover by itself"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_ready(&server).await;
    let got = server.receive("q", json!({"max": 10})).await;
    let mut bodies: Vec<&str> = got.iter().map(|m| m["body"].as_str().unwrap()).collect();
    bodies.sort_unstable();
    assert_eq!(
        bodies,
        vec!["after", "kept"],
        "the refused send is not there"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_report_write_ahead_log_activity() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    wait_ready(&server).await;
    server.create_queue("q", json!({})).await;
    server.send_bodies("q", &["a"]).await;
    let text = server.metrics_text().await;
    let value = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert!(
        value("baton_wal_records_total") >= 2.0,
        "queue creation and the send are logged"
    );
    assert!(value("baton_wal_fsyncs_total") >= 1.0);
    assert_eq!(value("baton_storage_failed"), 0.0);
    server.shutdown().await;
}
