//! The dashboard's server side: the embedded pages at `/` and `/ui/`, message browsing
//! without consuming (`GET /v1/queues/{q}/messages`), and the live stream (`/v1/live/stats`).

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};

#[tokio::test]
async fn plain_get_of_root_serves_the_dashboard_and_sqs_get_still_works() {
    let server = TestServer::start().await;
    let response = server.http.get(&server.base).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>Baton</title>"), "{html}");
    assert!(html.contains("/ui/app.js"), "{html}");

    let script = server
        .http
        .get(format!("{}/ui/app.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));

    let (status, body) = server.get("/ui/no-such-file.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");

    // The SQS query protocol on GET / is untouched.
    let response = server
        .http
        .get(format!("{}/?Action=ListQueues", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("ListQueuesResponse"));
}

#[tokio::test]
async fn peek_pages_through_messages_without_consuming_them() {
    let server = TestServer::start().await;
    server.create_queue("browse", json!({})).await;
    let bodies: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let ids = server.send_bodies("browse", &refs).await;
    server
        .send(
            "browse",
            vec![json!({"body": "later", "delay_ms": 60000, "attributes": {"k": "v"}})],
        )
        .await;
    let received = server
        .receive("browse", json!({"max": 1, "visibility_timeout_ms": 60000}))
        .await;
    assert_eq!(received[0]["id"], ids[0].as_str());

    let (status, page) = server.get("/v1/queues/browse/messages?max=4").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let states: Vec<(&str, &str)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["body"].as_str().unwrap(), m["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("m0", "in_flight"),
            ("m1", "visible"),
            ("m2", "visible"),
            ("m3", "visible")
        ]
    );
    assert_eq!(page["messages"][0]["receive_count"], 1);
    assert!(page["messages"][0]["until"].as_u64().is_some());
    let after = page["next_after"].as_u64().unwrap();

    let (_, rest) = server
        .get(&format!("/v1/queues/browse/messages?max=4&after={after}"))
        .await;
    let rest_messages = rest["messages"].as_array().unwrap();
    assert_eq!(rest_messages.len(), 2);
    assert_eq!(rest_messages[1]["body"], "later");
    assert_eq!(rest_messages[1]["state"], "delayed");
    assert_eq!(rest_messages[1]["attributes"]["k"], "v");
    assert_eq!(rest["next_after"], Value::Null);

    // Nothing was consumed: counts and receive counts are unchanged.
    let stats = server.stats("browse").await;
    assert_eq!(stats["visible"], 4);
    assert_eq!(stats["in_flight"], 1);
    assert_eq!(stats["delayed"], 1);
    assert_eq!(stats["received_total"], 1);
    let again = server.receive("browse", json!({"max": 10})).await;
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|m| m["receive_count"] == 1));
}

#[tokio::test]
async fn peek_rejects_bad_queries_precisely() {
    let server = TestServer::start().await;
    server.create_queue("browse", json!({})).await;
    for (query, code) in [
        ("max=0", "invalid_parameter"),
        ("max=101", "invalid_parameter"),
        ("max=ten", "invalid_parameter"),
        ("after=-1", "invalid_parameter"),
        ("limit=5", "malformed_request"),
    ] {
        let (status, body) = server
            .get(&format!("/v1/queues/browse/messages?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(error_code(&body), code, "{query}: {body}");
    }
    let (status, body) = server.get("/v1/queues/nope/messages").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "queue_not_found");
    let (status, body) = server.get("/v1/queues/bad%20name/messages").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_name");
}

/// Reads server-sent events from `response` until `n` `stats` events have arrived.
async fn read_stats_events(response: reqwest::Response, n: usize) -> Vec<Value> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.lines().any(|line| line == "event: stats") {
                let data: String = block
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                events.push(serde_json::from_str(&data).unwrap());
            }
        }
    }
    events
}

#[tokio::test]
async fn live_stream_sends_snapshots_that_follow_the_queues() {
    let server = TestServer::start().await;
    server.create_queue("live", json!({})).await;
    let response = server
        .http
        .get(format!("{}/v1/live/stats", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = response;
    let first = {
        let events = read_stats_events(stream, 1).await;
        events[0].clone()
    };
    assert_eq!(first["ready"], true);
    assert_eq!(first["queues"][0]["name"], "live");
    assert_eq!(first["totals"]["sent_total"], 0);
    assert!(first["server"]["node_id"].is_string());

    server.send_bodies("live", &["a", "b", "c"]).await;
    stream = server
        .http
        .get(format!("{}/v1/live/stats", server.base))
        .send()
        .await
        .unwrap();
    let events = read_stats_events(stream, 2).await;
    let last = events.last().unwrap();
    assert_eq!(last["totals"]["sent_total"], 3);
    assert_eq!(last["queues"][0]["stats"]["visible"], 3);
    assert!(last["at"].as_u64().unwrap() >= events[0]["at"].as_u64().unwrap() + 900);
    assert!(last["http"]["responses_total"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn live_streams_beyond_the_limit_get_429_and_a_closed_one_frees_its_place() {
    let server = TestServer::options()
        .config(|config| config.live_streams_max = 1)
        .start()
        .await;
    let url = format!("{}/v1/live/stats", server.base);
    let first = server.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let (status, body) = server.get("/v1/live/stats").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "too_many_live_streams");

    drop(first);
    // The server notices the disconnect at its next write (at most one interval later).
    let mut freed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = server.http.get(&url).send().await.unwrap();
        if response.status() == StatusCode::OK {
            freed = true;
            break;
        }
    }
    assert!(freed, "the closed stream's place was not freed");
}

#[tokio::test]
async fn shutdown_ends_open_live_streams() {
    let mut server = TestServer::start().await;
    let response = server
        .http
        .get(format!("{}/v1/live/stats", server.base))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let _first = stream.next().await.unwrap().unwrap();
    let _ = server.shutdown_trigger().send(());
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the live stream outlived shutdown");
}

#[tokio::test]
async fn dashboard_push_status_is_null_without_a_subscription_and_the_subscription_with_one() {
    let server = TestServer::start().await;
    server.create_queue("pushed", json!({})).await;
    let (status, body) = server.get("/v1/dashboard/push/pushed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"push": null}));
    let (status, body) = server
        .put(
            "/v1/queues/pushed/push",
            json!({"url": "http://127.0.0.1:9/push", "concurrency": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.get("/v1/dashboard/push/pushed").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["push"]["url"], "http://127.0.0.1:9/push");
    assert_eq!(body["push"]["concurrency"], 2);
    assert!(body["push"]["stats"]["breaker"].is_string(), "{body}");
    // Same answer as the push API itself, apart from counters that move.
    let (_, direct) = server.get("/v1/queues/pushed/push").await;
    assert_eq!(body["push"]["queue"], direct["queue"]);
    // Errors are the push API's: unknown queue, bad name.
    let (status, body) = server.get("/v1/dashboard/push/nope").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "queue_not_found")
    );
    let (status, body) = server.get("/v1/dashboard/push/bad%20name").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_name")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn live_snapshots_sum_up_streams_and_topics() {
    let server = TestServer::start().await;
    let url = format!("{}/v1/live/stats", server.base);
    let first = read_stats_events(server.http.get(&url).send().await.unwrap(), 1).await;
    assert_eq!(
        first[0]["streams"],
        json!({"count": 0, "records": 0, "bytes": 0, "groups": 0, "lag_total": 0, "pending": 0})
    );
    assert_eq!(
        first[0]["topics"],
        json!({"count": 0, "subscriptions": 0, "published_total": 0, "delivered_total": 0, "live_subscribers": 0})
    );

    for (path, body) in [
        ("/v1/streams/clicks", json!({"partitions": 2})),
        ("/v1/streams/clicks/groups/a", json!({"start": "earliest"})),
        ("/v1/streams/clicks/groups/b", json!({"start": "earliest"})),
        ("/v1/topics/orders", json!({})),
        (
            "/v1/topics/orders/subscriptions/all",
            json!({"target": {"queue": "sink"}}),
        ),
    ] {
        if path.contains("subscriptions") {
            server.create_queue("sink", json!({})).await;
        }
        let (status, answer) = server.put(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {answer}");
    }
    let records: Vec<Value> = (0..5).map(|i| json!({"value": format!("v{i}")})).collect();
    let (status, answer) = server
        .post("/v1/streams/clicks/records", json!({"records": records}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = server
        .post(
            "/v1/streams/clicks/groups/a/read",
            json!({"consumer": "c1", "max": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = server
        .post(
            "/v1/topics/orders/publish",
            json!({"messages": [{"routing_key": "k", "body": "x"}, {"routing_key": "k", "body": "y"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let now = read_stats_events(server.http.get(&url).send().await.unwrap(), 1).await;
    let streams = &now[0]["streams"];
    assert_eq!(
        (
            streams["count"].clone(),
            streams["records"].clone(),
            streams["groups"].clone()
        ),
        (json!(1), json!(5), json!(2))
    );
    // Group a read 2 of 5 (pending, lag 3); group b read nothing (lag 5).
    assert_eq!(
        (streams["lag_total"].clone(), streams["pending"].clone()),
        (json!(8), json!(2)),
        "{streams}"
    );
    assert!(streams["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        now[0]["topics"],
        json!({"count": 1, "subscriptions": 1, "published_total": 2, "delivered_total": 2, "live_subscribers": 0})
    );
    server.shutdown().await;
}
