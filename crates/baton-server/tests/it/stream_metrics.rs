//! Stream figures in `/metrics`: records, bytes, appended total per stream, lag and pending per
//! consumer group, and live followers, moving as records flow.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;
use crate::metrics::{scrape, value};
use crate::topics::SseReader;

#[tokio::test]
async fn stream_figures_move_as_records_are_appended_read_and_acked() {
    let server = TestServer::start().await;
    let (status, body) = server.put("/v1/streams/s", json!({"partitions": 2})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let records: Vec<Value> = (0..6)
        .map(|n| json!({"value": format!("v{n}"), "partition": n % 2}))
        .collect();
    let (status, body) = server
        .post("/v1/streams/s/records", json!({"records": records}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stream = [("stream", "s")];
    let group = [("stream", "s"), ("group", "g")];

    let before = scrape(&server).await;
    assert_eq!(value(&before, "baton_stream_records", &stream), Some(6.0));
    assert_eq!(value(&before, "baton_stream_bytes", &stream), Some(12.0));
    assert_eq!(
        value(&before, "baton_stream_appended_total", &stream),
        Some(6.0)
    );
    assert_eq!(value(&before, "baton_stream_group_lag", &group), Some(6.0));
    assert_eq!(
        value(&before, "baton_stream_group_pending", &group),
        Some(0.0)
    );
    assert_eq!(
        value(&before, "baton_stream_live_followers", &stream),
        Some(0.0)
    );

    let (status, body) = server
        .post(
            "/v1/streams/s/groups/g/read",
            json!({"consumer": "c", "max": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty());
    let (status, _) = server
        .post("/v1/streams/s/groups/g/ack", json!({"ids": [ids[0]]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut live = SseReader::open(&server, "/v1/streams/s/live?partition=0&from_offset=0").await;
    let (event, _) = live.next().await;
    assert_eq!(event, "record");

    let after = scrape(&server).await;
    let n = ids.len() as f64;
    assert_eq!(
        value(&after, "baton_stream_group_lag", &group),
        Some(6.0 - n)
    );
    assert_eq!(
        value(&after, "baton_stream_group_pending", &group),
        Some(n - 1.0)
    );
    assert_eq!(
        value(&after, "baton_stream_live_followers", &stream),
        Some(1.0)
    );
    assert!(value(&after, "baton_stream_live_sent_total", &stream).unwrap() >= 1.0);
    assert_eq!(
        value(&after, "baton_stream_live_dropped_total", &stream),
        Some(0.0)
    );
}
