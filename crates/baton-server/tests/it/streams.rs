//! Streams over real HTTP: every endpoint, replay from an offset and from a time, long polls,
//! idempotent producers, a group of three consumers with one stopping mid-way (its pending
//! records are claimed by the others, none lost), retention, and every bad input with its
//! precise error (and nothing changed).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

pub(crate) async fn create(server: &TestServer, name: &str, body: Value) {
    let (status, body) = server.put(&format!("/v1/streams/{name}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

pub(crate) async fn append(server: &TestServer, name: &str, records: Value) -> Vec<Value> {
    let (status, body) = server
        .post(
            &format!("/v1/streams/{name}/records"),
            json!({"records": records}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["records"].as_array().unwrap().clone()
}

async fn group_read(server: &TestServer, path: &str, consumer: &str, max: u32) -> Vec<Value> {
    let (status, body) = server
        .post(
            &format!("{path}/read"),
            json!({"consumer": consumer, "max": max, "wait_ms": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["records"].as_array().unwrap().clone()
}

async fn ack(server: &TestServer, path: &str, ids: &[String]) -> Vec<Value> {
    let (status, body) = server
        .post(&format!("{path}/ack"), json!({"ids": ids}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["results"].as_array().unwrap().clone()
}

fn ids(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn records_total(server: &TestServer, name: &str) -> u64 {
    let (_, body) = server.get(&format!("/v1/streams/{name}")).await;
    body["stats"]["records"].as_u64().unwrap()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn stream_lifecycle_create_show_list_delete() {
    let server = TestServer::start().await;
    let attributes = json!({"partitions": 2, "retention_ms": 60000, "max_records": 100});
    create(&server, "s", attributes.clone()).await;
    let (status, body) = server.put("/v1/streams/s", attributes).await;
    assert_eq!(status, StatusCode::OK, "identical attributes: {body}");
    let (status, body) = server.put("/v1/streams/s", json!({"partitions": 3})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "stream_exists")
    );

    let (status, body) = server.get("/v1/streams/s").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "s");
    assert_eq!(body["attributes"]["partitions"], 2);
    assert_eq!(body["attributes"]["retention_ms"], 60000);
    assert_eq!(body["attributes"]["retention_bytes"], Value::Null);
    assert_eq!(body["stats"]["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(body["stats"]["partitions"][0]["last_offset"], Value::Null);

    append(
        &server,
        "s",
        json!([{"value": "a", "partition": 1}, {"value": "bb", "partition": 1}]),
    )
    .await;
    server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    let (status, body) = server.get("/v1/streams").await;
    assert_eq!(status, StatusCode::OK);
    let stream = &body["streams"][0];
    assert_eq!(stream["stats"]["records"], 2);
    assert_eq!(stream["stats"]["bytes"], 3);
    assert_eq!(stream["stats"]["partitions"][1]["first_offset"], 0);
    assert_eq!(stream["stats"]["partitions"][1]["last_offset"], 1);
    assert_eq!(stream["stats"]["partitions"][1]["next_offset"], 2);
    assert_eq!(stream["stats"]["groups"][0]["name"], "g");
    assert_eq!(stream["stats"]["groups"][0]["stats"]["lag"], json!([0, 2]));
    assert_eq!(stream["stats"]["groups"][0]["stats"]["lag_total"], 2);

    let (status, _) = server
        .call(reqwest::Method::DELETE, "/v1/streams/s", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/streams/s").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "stream_not_found")
    );
}

#[tokio::test]
async fn append_routes_by_key_and_replay_returns_everything_in_order() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 4})).await;
    let appended = append(
        &server,
        "s",
        json!([
            {"key": "user-1", "value": "v1", "headers": {"h": "x"}},
            {"key": "user-1", "value": "v2"},
            {"value": "keyless"}
        ]),
    )
    .await;
    assert_eq!(appended.len(), 3);
    assert_eq!(appended[0]["partition"], appended[1]["partition"]);
    assert_eq!(
        appended[1]["offset"].as_u64(),
        Some(appended[0]["offset"].as_u64().unwrap() + 1)
    );
    assert!(appended[0]["timestamp"].as_u64().unwrap() > 0);

    let partition = appended[0]["partition"].as_u64().unwrap();
    let (status, body) = server
        .get(&format!(
            "/v1/streams/s/records?partition={partition}&from_offset=0"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = body["records"].as_array().unwrap();
    let values: Vec<&str> = records
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert!(values.starts_with(&["v1", "v2"]), "{values:?}");
    assert_eq!(records[0]["key"], "user-1");
    assert_eq!(records[0]["headers"], json!({"h": "x"}));
    assert_eq!(records[0]["partition"].as_u64(), Some(partition));
    assert_eq!(body["next_offset"].as_u64(), Some(records.len() as u64));

    let (_, body) = server
        .get(&format!(
            "/v1/streams/s/records?partition={partition}&from_offset=1&max=1"
        ))
        .await;
    assert_eq!(body["records"][0]["value"], "v2");
    assert_eq!(body["next_offset"], 2);
}

#[tokio::test]
async fn replay_from_time_skips_older_records() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 1})).await;
    append(&server, "s", json!([{"value": "old"}])).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    append(
        &server,
        "s",
        json!([{"value": "new-1"}, {"value": "new-2"}]),
    )
    .await;
    let (status, body) = server
        .get(&format!(
            "/v1/streams/s/records?partition=0&from_time={from}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let values: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["new-1", "new-2"]);
    assert_eq!(body["next_offset"], 3);
    // A group can start from a time too.
    let (status, _) = server
        .put(
            "/v1/streams/s/groups/g",
            json!({"start": {"time": from}, "mode": "shared"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let got = group_read(&server, "/v1/streams/s/groups/g", "c", 10).await;
    assert_eq!(
        got.iter()
            .map(|r| r["value"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["new-1", "new-2"]
    );
}

#[tokio::test]
async fn long_polls_at_the_head_return_as_soon_as_records_arrive() {
    let server = std::sync::Arc::new(TestServer::start().await);
    create(&server, "s", json!({"partitions": 1})).await;
    server
        .put("/v1/streams/s/groups/g", json!({"start": "latest"}))
        .await;
    let started = Instant::now();
    let replay = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .get("/v1/streams/s/records?partition=0&from_offset=0&wait_ms=10000")
                .await
        })
    };
    let group = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .post(
                    "/v1/streams/s/groups/g/read",
                    json!({"consumer": "c", "max": 10, "wait_ms": 10000}),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    append(&server, "s", json!([{"value": "wake"}])).await;
    let (status, body) = replay.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["records"][0]["value"], "wake");
    let (status, body) = group.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["records"][0]["value"], "wake");
    assert_eq!(body["records"][0]["delivery_count"], 1);
    assert!(started.elapsed() < Duration::from_secs(5));

    // With nothing new, a poll ends empty after its wait.
    let started = Instant::now();
    let (status, body) = server
        .get("/v1/streams/s/records?partition=0&from_offset=1&wait_ms=200")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["records"].as_array().unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn an_idempotent_producer_retry_lands_once() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 3})).await;
    let batch =
        json!({"records": [{"value": "a"}, {"value": "b"}], "producer_id": "p-1", "sequence": 1});
    let (status, first) = server.post("/v1/streams/s/records", batch.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, retry) = server.post("/v1/streams/s/records", batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry, first);
    assert_eq!(records_total(&server, "s").await, 2);
    for sequence in 2..=7 {
        let (status, _) = server
            .post(
                "/v1/streams/s/records",
                json!({"records": [{"value": "n"}], "producer_id": "p-1", "sequence": sequence}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = server
        .post(
            "/v1/streams/s/records",
            json!({"records": [{"value": "late"}], "producer_id": "p-1", "sequence": 1}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "producer_sequence_stale")
    );
    assert_eq!(records_total(&server, "s").await, 8);
}

#[tokio::test]
async fn a_group_of_three_with_one_stopping_loses_nothing() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 3})).await;
    let path = "/v1/streams/s/groups/g";
    let (status, body) = server
        .put(
            path,
            json!({"start": "earliest", "session_timeout_ms": 400}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mode"], "partitioned");
    let records: Vec<Value> = (0..30)
        .map(|i| json!({"key": format!("k{i}"), "value": format!("v{i}")}))
        .collect();
    let appended = append(&server, "s", json!(records)).await;
    let all: BTreeSet<String> = appended
        .iter()
        .map(|a| format!("{}-{}", a["partition"], a["offset"]))
        .collect();

    // Everyone joins first, so the partitions are split three ways.
    for consumer in ["a", "b", "c"] {
        group_read(&server, path, consumer, 1).await;
        server
            .post(
                &format!("{path}/read"),
                json!({"consumer": consumer, "max": 1}),
            )
            .await;
    }
    let (_, info) = server.get(path).await;
    let consumers = info["stats"]["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 3, "{info}");

    // Each reads; `c` stops without acking what it holds.
    let mut acked = BTreeSet::new();
    let mut seen_by: std::collections::BTreeMap<String, String> = Default::default();
    let c_holds = {
        let (_, pending) = server.get(&format!("{path}/pending?consumer=c")).await;
        let mut held = ids(pending["pending"].as_array().unwrap());
        held.extend(ids(&group_read(&server, path, "c", 3).await));
        held
    };
    assert!(!c_holds.is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for consumer in ["a", "b"] {
            let (_, pending) = server
                .get(&format!("{path}/pending?consumer={consumer}"))
                .await;
            let mut mine = ids(pending["pending"].as_array().unwrap());
            let got = group_read(&server, path, consumer, 5).await;
            for id in ids(&got) {
                // Exactly one consumer per record until acked or claimed.
                assert!(
                    seen_by.insert(id.clone(), consumer.to_string()).is_none(),
                    "{id} delivered twice"
                );
                mine.push(id);
            }
            if !mine.is_empty() {
                assert!(ack(&server, path, &mine)
                    .await
                    .iter()
                    .all(|r| r["ok"] == true));
                acked.extend(mine);
            }
        }
        // Once `c` has been idle past the session timeout, `a` claims what it held.
        let (_, claimed) = server
            .post(
                &format!("{path}/claim"),
                json!({"consumer": "a", "min_idle_ms": 400, "max": 100}),
            )
            .await;
        let claimed = claimed["records"].as_array().unwrap().clone();
        for record in &claimed {
            assert_eq!(record["delivery_count"], 2);
        }
        if !claimed.is_empty() {
            let claimed_ids = ids(&claimed);
            assert!(ack(&server, path, &claimed_ids)
                .await
                .iter()
                .all(|r| r["ok"] == true));
            acked.extend(claimed_ids);
        }
        if acked == all || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(acked, all, "every record acked, none lost");
    for id in &c_holds {
        assert!(acked.contains(id));
    }
    let (_, info) = server.get(path).await;
    assert_eq!(info["stats"]["pending"], 0);
    assert_eq!(info["stats"]["lag_total"], 0);
    let live: Vec<&str> = info["stats"]["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(!live.contains(&"c"), "c stopped reading: {live:?}");
}

#[tokio::test]
async fn pending_claim_and_seek() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 1})).await;
    append(
        &server,
        "s",
        json!([{"value": "0"}, {"value": "1"}, {"value": "2"}]),
    )
    .await;
    let path = "/v1/streams/s/groups/g";
    server
        .put(path, json!({"start": "earliest", "mode": "shared"}))
        .await;
    let got = group_read(&server, path, "a", 2).await;
    assert_eq!(ids(&got), vec!["0-0", "0-1"]);
    let (status, body) = server.get(&format!("{path}/pending")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["count"], 2);
    assert_eq!(body["pending"][0]["id"], "0-0");
    assert_eq!(body["pending"][0]["consumer"], "a");
    assert_eq!(body["pending"][0]["delivery_count"], 1);
    assert!(body["pending"][0]["idle_ms"].as_u64().is_some());
    let (_, body) = server
        .get(&format!("{path}/pending?consumer=a&max=1"))
        .await;
    assert_eq!(
        (
            body["count"].as_u64(),
            body["pending"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );

    let (_, body) = server
        .post(
            &format!("{path}/claim"),
            json!({"consumer": "b", "min_idle_ms": 0, "max": 1}),
        )
        .await;
    assert_eq!(body["records"][0]["id"], "0-0");
    assert_eq!(body["records"][0]["value"], "0");
    assert_eq!(body["records"][0]["delivery_count"], 2);
    let results = ack(
        &server,
        path,
        &["0-0".to_string(), "0-0".to_string(), "zz".to_string()],
    )
    .await;
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["error"]["code"], "record_not_pending");
    assert_eq!(results[2]["error"]["code"], "record_id_invalid");

    let (status, body) = server
        .post(&format!("{path}/seek"), json!({"position": "earliest"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stats"]["lag"], json!([3]));
    let again = group_read(&server, path, "a", 10).await;
    assert_eq!(ids(&again), vec!["0-0", "0-1", "0-2"]);
    let (status, _) = server
        .post(
            &format!("{path}/seek"),
            json!({"position": {"offset": 2}, "partition": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.call(reqwest::Method::DELETE, path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get(path).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "group_not_found")
    );
}

#[tokio::test]
async fn retention_moves_the_first_offset_and_reads_past_it_name_it() {
    let server = TestServer::start().await;
    create(&server, "s", json!({"partitions": 1, "max_records": 2})).await;
    append(
        &server,
        "s",
        json!([{"value": "0"}, {"value": "1"}, {"value": "2"}, {"value": "3"}, {"value": "4"}]),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = server.get("/v1/streams/s").await;
        if body["stats"]["partitions"][0]["first_offset"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "retention did not run: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = server
        .get("/v1/streams/s/records?partition=0&from_offset=1")
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "offset_expired")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("first available offset is 3"),
        "{body}"
    );
}

#[tokio::test]
async fn a_durable_server_keeps_streams_and_groups_across_a_restart() {
    let fs = baton_storage::SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.get("/ready").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    create(&server, "s", json!({"partitions": 1})).await;
    append(&server, "s", json!([{"value": "a"}, {"value": "b"}])).await;
    server
        .put("/v1/streams/s/groups/g", json!({"start": "earliest"}))
        .await;
    let got = group_read(&server, "/v1/streams/s/groups/g", "c", 1).await;
    assert_eq!(got[0]["value"], "a");
    server.shutdown().await;

    let server = TestServer::options().durable(&fs).start().await;
    while server.get("/ready").await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = server
        .get("/v1/streams/s/records?partition=0&from_offset=0")
        .await;
    let values: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["a", "b"]);
    let (_, pending) = server.get("/v1/streams/s/groups/g/pending").await;
    assert_eq!(pending["count"], 1);
    assert_eq!(pending["pending"][0]["id"], "0-0");
    let got = group_read(&server, "/v1/streams/s/groups/g", "c", 10).await;
    assert_eq!(ids(&got), vec!["0-1"]);
}

#[tokio::test]
async fn the_sdk_drives_every_stream_endpoint() {
    use baton_sdk::proto::stream::{
        CreateGroup, CreateStream, GroupClaim, GroupMode, GroupRead, GroupSeek, NewRecord,
        StartKeyword, StartPosition,
    };
    use baton_sdk::streams::From;

    let server = TestServer::start().await;
    let client = baton_sdk::Client::new(server.base.clone());
    let attributes = CreateStream {
        partitions: 2,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    };
    let info = client.create_stream("s", &attributes).await.unwrap();
    assert_eq!(info.attributes.partitions, 2);
    let record = |value: &str| NewRecord {
        key: Some("k".to_string()),
        value: value.to_string(),
        headers: Default::default(),
        partition: None,
    };
    let appended = client
        .append(
            "s",
            vec![record("a"), record("b")],
            Some(("p".to_string(), 1)),
        )
        .await
        .unwrap();
    let again = client
        .append(
            "s",
            vec![record("a"), record("b")],
            Some(("p".to_string(), 1)),
        )
        .await
        .unwrap();
    assert_eq!(appended, again);
    let partition = appended[0].partition;
    let read = client
        .read_stream("s", partition, From::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(read.records.len(), 2);
    let read = client
        .read_stream("s", partition, From::Time(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(read.next_offset, 2);

    let earliest = StartPosition::Keyword(StartKeyword::Earliest);
    let create = CreateGroup {
        start: earliest,
        mode: Some(GroupMode::Shared),
        session_timeout_ms: None,
    };
    client.create_group("s", "g", &create).await.unwrap();
    assert_eq!(client.get_group("s", "g").await.unwrap().stats.lag_total, 2);
    let got = client
        .group_read(
            "s",
            "g",
            &GroupRead {
                consumer: "c".to_string(),
                max: Some(10),
                wait_ms: Some(0),
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let pending = client.group_pending("s", "g", Some("c")).await.unwrap();
    assert_eq!(pending.count, 2);
    let claimed = client
        .group_claim(
            "s",
            "g",
            &GroupClaim {
                consumer: "d".to_string(),
                min_idle_ms: 0,
                max: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(claimed[0].delivery_count, 2);
    let acks = client
        .group_ack("s", "g", got.iter().map(|r| r.id.clone()).collect())
        .await
        .unwrap();
    assert!(acks.results.iter().all(|r| r.is_ok()));
    let seeked = client
        .group_seek(
            "s",
            "g",
            &GroupSeek {
                position: earliest,
                partition: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(seeked.stats.lag_total, 2);
    assert_eq!(client.list_streams().await.unwrap().len(), 1);
    client.delete_group("s", "g").await.unwrap();
    client.delete_stream("s").await.unwrap();
    let error = client.get_stream("s").await.unwrap_err();
    assert_eq!(
        error.code(),
        Some(baton_sdk::proto::ErrorCode::StreamNotFound)
    );
}
