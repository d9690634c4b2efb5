//! Streams over real HTTP, bad input: every wrong path, body and query of the stream and group
//! endpoints gets its precise error, and nothing changes.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};
use crate::streams::{append, create};

#[tokio::test]
async fn every_bad_input_gets_a_precise_error_and_changes_nothing() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 2})).await;
    server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    append(&server, "s", json!([{"value": "x", "partition": 0}])).await;
    let big = "x".repeat(1024 * 1024 + 1);
    let many: Vec<Value> = (0..1001).map(|_| json!({"value": "v"})).collect();
    let cases: Vec<(reqwest::Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            reqwest::Method::PUT,
            "/v1/streams/bad.name".into(),
            Some(json!({"partitions": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/t".into(),
            Some(json!({"partitions": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/t".into(),
            Some(json!({"partitions": 1025})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/t".into(),
            Some(json!({"partitions": 1, "max_records": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/t".into(),
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/t".into(),
            Some(json!({"partitions": 1, "colour": 1})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/nope".into(),
            None,
            StatusCode::NOT_FOUND,
            "stream_not_found",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/nope/records".into(),
            Some(json!({"records": [{"value": "v"}]})),
            StatusCode::NOT_FOUND,
            "stream_not_found",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": []})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": "ok"}, {"value": "v", "partition": 2}]})),
            StatusCode::BAD_REQUEST,
            "partition_out_of_range",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": "ok"}, {"value": big}]})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "record_too_large",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": many})),
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": "v"}], "producer_id": "p"})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": "v"}], "sequence": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": "v"}], "producer_id": "p q", "sequence": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/records".into(),
            Some(json!({"records": [{"value": 5}]})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=2&from_offset=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "partition_out_of_range",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=5".into(),
            None,
            StatusCode::BAD_REQUEST,
            "offset_out_of_range",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=0&from_time=1".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=x".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=0&max=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=0&max=1001".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=0&wait_ms=20001".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/records?partition=0&from_offset=0&colour=1".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/s/groups/g".into(),
            Some(json!({"start": "latest"})),
            StatusCode::CONFLICT,
            "group_exists",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/s/groups/h".into(),
            Some(json!({"start": "middle"})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/s/groups/h".into(),
            Some(json!({"start": {"offset": 9}})),
            StatusCode::BAD_REQUEST,
            "offset_out_of_range",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/s/groups/h".into(),
            Some(json!({"start": "earliest", "mode": "exclusive"})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/s/groups/h".into(),
            Some(json!({"start": "earliest", "session_timeout_ms": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::PUT,
            "/v1/streams/nope/groups/h".into(),
            Some(json!({"start": "earliest"})),
            StatusCode::NOT_FOUND,
            "stream_not_found",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/nope/read".into(),
            Some(json!({"consumer": "c"})),
            StatusCode::NOT_FOUND,
            "group_not_found",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/read".into(),
            Some(json!({"consumer": "c", "max": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/read".into(),
            Some(json!({"consumer": "c", "wait_ms": 20001})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/read".into(),
            Some(json!({"consumer": ""})),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/ack".into(),
            Some(json!({"ids": []})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/groups/g/pending?consumer=nobody".into(),
            None,
            StatusCode::NOT_FOUND,
            "consumer_not_found",
        ),
        (
            reqwest::Method::GET,
            "/v1/streams/s/groups/g/pending?max=0".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/claim".into(),
            Some(json!({"consumer": "c"})),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/claim".into(),
            Some(json!({"consumer": "c", "min_idle_ms": 0, "max": 1001})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/seek".into(),
            Some(json!({"position": "earliest", "partition": 2})),
            StatusCode::BAD_REQUEST,
            "partition_out_of_range",
        ),
        (
            reqwest::Method::POST,
            "/v1/streams/s/groups/g/seek".into(),
            Some(json!({"position": {"offset": 7}})),
            StatusCode::BAD_REQUEST,
            "offset_out_of_range",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (got_status, got) = server.call(method.clone(), &path, body).await;
        assert_eq!(
            (got_status, error_code(&got)),
            (status, code),
            "{method} {path}: {got}"
        );
    }
    // Nothing changed: one record, one group, nothing pending, no stream `t` or group `h`.
    let (_, body) = server.get("/v1/streams").await;
    assert_eq!(body["streams"].as_array().unwrap().len(), 1);
    assert_eq!(body["streams"][0]["stats"]["records"], 1);
    assert_eq!(
        body["streams"][0]["stats"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        body["streams"][0]["stats"]["groups"][0]["stats"]["pending"],
        0
    );
}
