//! Sinks into the machine's PostgreSQL (127.0.0.1:5432, database `test`, user postgres):
//! rows arrive exactly once from streams, groups, queues and topics, across a crash of the
//! server and across PostgreSQL becoming unreachable; bad definitions change nothing.
//!
//! Each test works in a schema of its own (`sink_<random>`), dropped at its end.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::harness::TestServer;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of the test's own, dropped when the test ends well.
struct Schema {
    name: String,
    client: tokio_postgres::Client,
}

impl Schema {
    async fn new() -> Schema {
        let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
            .await
            .expect("the test PostgreSQL at 127.0.0.1:5432");
        tokio::spawn(connection);
        let name = format!("sink_{}", uuid::Uuid::new_v4().simple());
        Schema { name, client }
    }

    fn table(&self, table: &str) -> String {
        format!("{}.{table}", self.name)
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {}.{table}", self.name);
        match self.client.query_one(&sql, &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0, // not created yet
        }
    }

    async fn ids(&self, table: &str) -> Vec<String> {
        let sql = format!("SELECT id FROM {}.{table}", self.name);
        let rows = self.client.query(&sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }

    async fn drop(self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        self.client.batch_execute(&sql).await.unwrap();
    }
}

/// Waits until `check` holds, for at most 30 s.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_sink(server: &TestServer, name: &str, definition: Value) -> Value {
    let (status, body) = server.put(&format!("/v1/sinks/{name}"), definition).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn sink(server: &TestServer, name: &str) -> Value {
    let (status, body) = server.get(&format!("/v1/sinks/{name}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn create_stream(server: &TestServer, stream: &str, partitions: u32) {
    let (status, body) = server
        .put(
            &format!("/v1/streams/{stream}"),
            json!({"partitions": partitions}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Appends `n` records numbered from `from`: even ones JSON, odd ones text.
async fn append(server: &TestServer, stream: &str, from: u32, n: u32) {
    let records: Vec<Value> = (from..from + n)
        .map(|i| {
            let value = if i % 2 == 0 {
                json!({"n": i, "type": if i % 4 == 0 { "login" } else { "logout" }}).to_string()
            } else {
                format!("plain {i}")
            };
            json!({"key": format!("k{}", i % 7), "value": value, "headers": {"h": format!("{i}")}})
        })
        .collect();
    let (status, body) = server
        .post(
            &format!("/v1/streams/{stream}/records"),
            json!({"records": records}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn assert_distinct(ids: &[String], expected: usize) {
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), expected, "rows");
    assert_eq!(distinct.len(), expected, "distinct rows");
}

#[tokio::test]
async fn stream_records_arrive_once_with_json_and_text_values() {
    let server = TestServer::start().await;
    let pg = Schema::new().await;
    create_stream(&server, "clicks", 3).await;
    append(&server, "clicks", 0, 300).await;
    let body = put_sink(
        &server,
        "clicks-archive",
        json!({"source": {"stream": "clicks"}, "postgres": {"url": PG_URL, "table": pg.table("events")}, "batch_max": 50, "flush_ms": 10}),
    )
    .await;
    assert_eq!(body["definition"]["batch_max"], 50);
    assert_eq!(body["definition"]["postgres"]["create_table"], true);
    until("300 rows", || async { pg.count("events").await == 300 }).await;
    append(&server, "clicks", 300, 100).await;
    until("400 rows", || async { pg.count("events").await == 400 }).await;
    assert_distinct(&pg.ids("events").await, 400);

    let row = pg
        .client
        .query_one(
            &format!("SELECT value, value_text, key, headers, source, \"offset\" FROM {} WHERE value->>'n' = '4'", pg.table("events")),
            &[],
        )
        .await
        .unwrap();
    let value: Value = row.get(0);
    assert_eq!(value, json!({"n": 4, "type": "login"}));
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<String>>(2).as_deref(), Some("k4"));
    assert_eq!(row.get::<_, Value>(3), json!({"h": "4"}));
    assert_eq!(row.get::<_, String>(4), "clicks");
    let text: i64 = pg
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE value IS NULL AND value_text LIKE 'plain %'",
                pg.table("events")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, 200);
    let index: i64 = pg
        .client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'events' AND indexdef LIKE '%(\"timestamp\")%'",
            &[&pg.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(index, 1, "the default table has an index on time");

    until("lag 0 and 400 written", || async {
        let s = sink(&server, "clicks-archive").await;
        s["stats"]["lag"] == 0 && s["stats"]["rows_written_total"] == 400
    })
    .await;
    let s = sink(&server, "clicks-archive").await;
    assert_eq!(s["state"], "running");
    assert_eq!(s["stats"]["duplicates_skipped_total"], 0);
    assert_eq!(s["stats"]["last_error"], Value::Null);
    server.shutdown().await;
    pg.drop().await;
}

#[tokio::test]
async fn queue_messages_arrive_once_and_leave_the_queue() {
    let server = TestServer::start().await;
    let pg = Schema::new().await;
    server.create_queue("orders", json!({})).await;
    let bodies: Vec<String> = (0..250).map(|i| json!({"order": i}).to_string()).collect();
    let mut ids = Vec::new();
    for chunk in bodies.chunks(100) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        ids.extend(server.send_bodies("orders", &refs).await);
    }
    put_sink(
        &server,
        "orders-archive",
        json!({"source": {"queue": "orders"}, "postgres": {"url": PG_URL, "table": pg.table("orders")}, "batch_max": 64, "flush_ms": 10}),
    )
    .await;
    until("250 rows", || async { pg.count("orders").await == 250 }).await;
    let mut stored = pg.ids("orders").await;
    assert_distinct(&stored, 250);
    stored.sort();
    ids.sort();
    assert_eq!(stored, ids, "the rows' ids are the message ids");
    until("an empty queue", || async {
        let (_, q) = server.get("/v1/queues/orders").await;
        q["stats"]["visible"] == 0 && q["stats"]["in_flight"] == 0
    })
    .await;
    server.shutdown().await;
    pg.drop().await;
}

#[tokio::test]
async fn group_and_topic_sources_arrive_once() {
    let server = TestServer::start().await;
    let pg = Schema::new().await;
    create_stream(&server, "access", 2).await;
    append(&server, "access", 0, 120).await;
    put_sink(
        &server,
        "by-group",
        json!({"source": {"stream": "access", "group": "archiver"}, "postgres": {"url": PG_URL, "table": pg.table("access")}, "flush_ms": 10}),
    )
    .await;
    until("120 rows", || async { pg.count("access").await == 120 }).await;
    assert_distinct(&pg.ids("access").await, 120);
    until("nothing pending", || async {
        let (_, g) = server.get("/v1/streams/access/groups/archiver").await;
        g["stats"]["pending"] == 0
    })
    .await;

    let (status, _) = server.put("/v1/topics/chat", json!({})).await;
    assert!(status.is_success());
    put_sink(
        &server,
        "chat-archive",
        json!({"source": {"topic": "chat", "pattern": "room.*"}, "postgres": {"url": PG_URL, "table": pg.table("chat"),
          "columns": {"room": "$.room", "n": {"path": "$.n", "type": "bigint"}, "at": "$timestamp"}}, "flush_ms": 10}),
    )
    .await;
    let messages: Vec<Value> = (0..40)
        .map(|i| {
            let key = if i % 4 == 0 { "other.x" } else { "room.a" };
            json!({"routing_key": key, "body": json!({"room": "a", "n": i}).to_string()})
        })
        .collect();
    let (status, body) = server
        .post("/v1/topics/chat/publish", json!({"messages": messages}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    until("30 chat rows", || async { pg.count("chat").await == 30 }).await;
    let row = pg
        .client
        .query_one(
            &format!(
                "SELECT sum(n)::bigint, min(room), count(DISTINCT id), min(source) FROM {}",
                pg.table("chat")
            ),
            &[],
        )
        .await
        .unwrap();
    let expected: i64 = (0..40).filter(|i| i % 4 != 0).sum();
    assert_eq!(row.get::<_, i64>(0), expected);
    assert_eq!(row.get::<_, String>(1), "a");
    assert_eq!(row.get::<_, i64>(2), 30);
    assert_eq!(row.get::<_, String>(3), "chat");
    server.shutdown().await;
    pg.drop().await;
}

#[tokio::test]
async fn a_crash_mid_flow_neither_loses_nor_duplicates() {
    let fs = baton_storage::SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let pg = Schema::new().await;
    // A table without any unique key: only the positions keep a stream sink exactly once.
    pg.client
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.plain (id text, source text, \"partition\" integer, \"offset\" bigint, key text, headers jsonb, value jsonb, value_text text, \"timestamp\" timestamptz)",
            pg.name
        ))
        .await
        .unwrap();
    create_stream(&server, "log", 2).await;
    server.create_queue("jobs", json!({})).await;
    put_sink(
        &server,
        "log-sink",
        json!({"source": {"stream": "log"}, "postgres": {"url": PG_URL, "table": pg.table("plain"), "create_table": false}, "batch_max": 7, "flush_ms": 0}),
    )
    .await;
    put_sink(
        &server,
        "jobs-sink",
        json!({"source": {"queue": "jobs"}, "postgres": {"url": PG_URL, "table": pg.table("jobs")}, "batch_max": 9, "flush_ms": 0}),
    )
    .await;
    let mut sent = 0;
    for round in 0..10 {
        append(&server, "log", round * 20, 20).await;
        let bodies: Vec<String> = (0..20).map(|i| format!("job {round}-{i}")).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        server.send_bodies("jobs", &refs).await;
        sent += 20;
    }
    // Crash while the sinks are busy (some rows are in, some are not).
    until("some rows", || async {
        pg.count("plain").await > 0 && pg.count("jobs").await > 0
    })
    .await;
    server.crash(&fs).await;

    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let (status, list) = server.get("/v1/sinks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["sinks"].as_array().unwrap().len(),
        2,
        "definitions survive: {list}"
    );
    // Whatever the crash took back was not acknowledged; count what the server still has.
    let (_, stream) = server.get("/v1/streams/log").await;
    let records = stream["stats"]["records"].as_u64().unwrap_or(0) as i64;
    assert!(records >= 200, "acknowledged appends survive: {stream}");
    append(&server, "log", 1000, 30).await;
    server.send_bodies("jobs", &["after 1", "after 2"]).await;
    until("every record once", || async {
        pg.count("plain").await == records + 30
    })
    .await;
    assert_distinct(&pg.ids("plain").await, (records + 30) as usize);
    until("every job once", || async {
        pg.count("jobs").await == sent + 2
    })
    .await;
    assert_distinct(&pg.ids("jobs").await, (sent + 2) as usize);
    server.shutdown().await;
    pg.drop().await;
}

/// A TCP proxy to PostgreSQL that the test can cut (every connection closed, nothing
/// accepted) and restore on the same port.
struct Proxy {
    addr: std::net::SocketAddr,
    cut: CancellationToken,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = CancellationToken::new();
        tokio::spawn(Self::serve(listener, cut.clone()));
        Proxy { addr, cut }
    }

    async fn serve(listener: TcpListener, cut: CancellationToken) {
        loop {
            let (mut client, _) = tokio::select! {
                _ = cut.cancelled() => return,
                accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => return },
            };
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect("127.0.0.1:5432").await else {
                    return;
                };
                tokio::select! {
                    _ = cut.cancelled() => {}
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                }
            });
        }
    }

    fn cut(&mut self) {
        self.cut.cancel();
    }

    async fn restore(&mut self) {
        self.cut = CancellationToken::new();
        let listener = TcpListener::bind(self.addr).await.unwrap();
        tokio::spawn(Self::serve(listener, self.cut.clone()));
    }
}

#[tokio::test]
async fn postgres_unreachable_means_retrying_then_catching_up() {
    let server = TestServer::options()
        .config(|c| {
            c.sink_retry_base_ms = 20;
            c.sink_retry_max_ms = 200;
        })
        .start()
        .await;
    let pg = Schema::new().await;
    let mut proxy = Proxy::start().await;
    let url = format!("postgres://postgres@{}/test", proxy.addr);
    create_stream(&server, "feed", 2).await;
    put_sink(
        &server,
        "feed-sink",
        json!({"source": {"stream": "feed"}, "postgres": {"url": url, "table": pg.table("feed")}, "batch_max": 10, "flush_ms": 5}),
    )
    .await;
    append(&server, "feed", 0, 50).await;
    until("50 rows", || async { pg.count("feed").await == 50 }).await;

    proxy.cut();
    // Baton keeps accepting records while PostgreSQL is out of reach.
    for round in 0..5 {
        append(&server, "feed", 50 + round * 20, 20).await;
    }
    until("state retrying", || async {
        let s = sink(&server, "feed-sink").await;
        s["state"] == "retrying" && s["stats"]["last_error"].is_string()
    })
    .await;
    let s = sink(&server, "feed-sink").await;
    assert!(s["stats"]["errors_total"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["stats"]["lag"].as_u64().unwrap() > 0, "{s}");
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("baton_sink_state{sink=\"feed-sink\",state=\"retrying\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_sink_errors_total{sink=\"feed-sink\"}"));

    proxy.restore().await;
    until("150 rows", || async { pg.count("feed").await == 150 }).await;
    assert_distinct(&pg.ids("feed").await, 150);
    until("running again", || async {
        let s = sink(&server, "feed-sink").await;
        s["state"] == "running" && s["stats"]["last_error"].is_null() && s["stats"]["lag"] == 0
    })
    .await;
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("baton_sink_rows_written_total{sink=\"feed-sink\"} 150"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_sink_state{sink=\"feed-sink\",state=\"running\"} 1"));
    server.shutdown().await;
    pg.drop().await;
}

#[tokio::test]
async fn pause_and_resume_are_durable_and_lose_nothing() {
    let fs = baton_storage::SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let pg = Schema::new().await;
    create_stream(&server, "s", 1).await;
    put_sink(
        &server,
        "p",
        json!({"source": {"stream": "s"}, "postgres": {"url": PG_URL, "table": pg.table("t")}, "flush_ms": 5}),
    )
    .await;
    append(&server, "s", 0, 10).await;
    until("10 rows", || async { pg.count("t").await == 10 }).await;
    let (status, body) = server.post("/v1/sinks/p/pause", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "paused");
    append(&server, "s", 10, 10).await;
    server.shutdown().await;

    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    until("the sink back, paused", || async {
        let (status, body) = server.get("/v1/sinks/p").await;
        status == StatusCode::OK && body["state"] == "paused"
    })
    .await;
    // The lag of a paused sink counts from its stored positions.
    until("lag 10", || async {
        sink(&server, "p").await["stats"]["lag"] == 10
    })
    .await;
    let (status, body) = server.post("/v1/sinks/p/resume", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    until("20 rows", || async { pg.count("t").await == 20 }).await;
    assert_distinct(&pg.ids("t").await, 20);
    let (status, _) = server
        .call(reqwest::Method::DELETE, "/v1/sinks/p", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server.get("/v1/sinks/p").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "sink_not_found");
    let (_, queues) = server.get("/v1/queues").await;
    assert!(!queues.to_string().contains("_baton-sink-p"), "{queues}");
    server.shutdown().await;
    pg.drop().await;
}

#[tokio::test]
async fn bad_definitions_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    create_stream(&server, "s", 1).await;
    server.create_queue("q", json!({})).await;
    let good = json!({"source": {"stream": "s"}, "postgres": {"url": PG_URL, "table": "t"}});
    let with = |path: &[&str], value: Value| {
        let mut d = good.clone();
        let mut at = &mut d;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        d
    };
    let cases = [
        (
            json!({"source": {"stream": "nope"}, "postgres": good["postgres"]}),
            404,
            "stream_not_found",
            "nope",
        ),
        (
            json!({"source": {"queue": "nope"}, "postgres": good["postgres"]}),
            404,
            "queue_not_found",
            "nope",
        ),
        (
            json!({"source": {"topic": "nope"}, "postgres": good["postgres"]}),
            404,
            "topic_not_found",
            "nope",
        ),
        (
            json!({"source": {"stream": "s", "queue": "q"}, "postgres": good["postgres"]}),
            400,
            "invalid_parameter",
            "exactly one",
        ),
        (
            json!({"source": {"queue": "q", "group": "g"}, "postgres": good["postgres"]}),
            400,
            "invalid_parameter",
            "source.group",
        ),
        (
            json!({"source": {"topic": "t", "pattern": "a..b.#x"}, "postgres": good["postgres"]}),
            400,
            "invalid_pattern",
            "",
        ),
        (
            with(&["postgres", "url"], json!("mysql://h/db")),
            400,
            "invalid_parameter",
            "postgres.url",
        ),
        (
            with(&["postgres", "url"], json!("postgres://u@h:notaport/db")),
            400,
            "invalid_parameter",
            "postgres.url",
        ),
        (
            with(&["postgres", "table"], json!("t\"; DROP TABLE x; --")),
            400,
            "invalid_parameter",
            "postgres.table",
        ),
        (
            with(&["postgres", "table"], json!("a.b.c")),
            400,
            "invalid_parameter",
            "postgres.table",
        ),
        (
            with(&["postgres", "columns"], json!({"c": "no-dollar"})),
            400,
            "invalid_parameter",
            "postgres.columns.c",
        ),
        (
            with(&["postgres", "columns"], json!({"bad col": "$.x"})),
            400,
            "invalid_parameter",
            "postgres.columns",
        ),
        (
            with(
                &["postgres", "columns"],
                json!({"c": {"path": "$.x", "type": "text); DROP"}}),
            ),
            400,
            "invalid_parameter",
            "type",
        ),
        (
            with(&["batch_max"], json!(0)),
            400,
            "invalid_parameter",
            "batch_max",
        ),
        (
            with(&["batch_max"], json!(10_001)),
            400,
            "invalid_parameter",
            "batch_max",
        ),
        (
            with(&["flush_ms"], json!(60_001)),
            400,
            "invalid_parameter",
            "flush_ms",
        ),
        (
            with(&["extra"], json!(1)),
            400,
            "malformed_request",
            "extra",
        ),
    ];
    for (definition, status, code, words) in cases {
        let (got, body) = server.put("/v1/sinks/x", definition.clone()).await;
        assert_eq!(got.as_u16(), status, "{definition}: {body}");
        assert_eq!(body["error"]["code"], code, "{definition}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(words),
            "{definition}: {body}"
        );
    }
    let (status, body) = server.put("/v1/sinks/bad%20name", good.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_name"))
    );
    let (_, list) = server.get("/v1/sinks").await;
    assert_eq!(list["sinks"], json!([]));
    let (_, queues) = server.get("/v1/queues").await;
    assert!(!queues.to_string().contains("_baton-sink"), "{queues}");

    // The same definition again is fine; another one under the name is a conflict.
    let (status, _) = server.put("/v1/sinks/x", good.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = server.put("/v1/sinks/x", good.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .put("/v1/sinks/x", with(&["batch_max"], json!(5)))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "sink_exists");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("batch_max"));
    for (method, path) in [
        (reqwest::Method::GET, "/v1/sinks/none"),
        (reqwest::Method::POST, "/v1/sinks/none/pause"),
        (reqwest::Method::POST, "/v1/sinks/none/resume"),
        (reqwest::Method::DELETE, "/v1/sinks/none"),
    ] {
        let (status, body) = server.call(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(body["error"]["code"], "sink_not_found");
    }
    // A password never shows.
    let (status, body) = server
        .put(
            "/v1/sinks/secret",
            with(
                &["postgres", "url"],
                json!("postgres://u:hunter2@127.0.0.1:1/db"),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(!body.to_string().contains("hunter2"), "{body}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_sink_limit_is_enforced() {
    let server = TestServer::options()
        .config(|c| c.sinks_max = 2)
        .start()
        .await;
    create_stream(&server, "s", 1).await;
    let d = json!({"source": {"stream": "s"}, "postgres": {"url": "postgres://u@127.0.0.1:1/db", "table": "t"}});
    for name in ["a", "b"] {
        let (status, _) = server.put(&format!("/v1/sinks/{name}"), d.clone()).await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = server.put("/v1/sinks/c", d.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "limit_reached");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sinks_max"));
    let (_, list) = server.get("/v1/sinks").await;
    assert_eq!(list["sinks"].as_array().unwrap().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_missing_table_is_reported_and_the_sink_resumes_once_it_exists() {
    let server = TestServer::options()
        .config(|c| {
            c.sink_retry_base_ms = 20;
            c.sink_retry_max_ms = 100;
        })
        .start()
        .await;
    let pg = Schema::new().await;
    server.create_queue("work", json!({})).await;
    server
        .send_bodies(
            "work",
            &[r#"{"kind": "a", "n": 1}"#, r#"{"kind": "b", "n": 2}"#],
        )
        .await;
    put_sink(
        &server,
        "typed",
        json!({"source": {"queue": "work"}, "postgres": {"url": PG_URL, "table": pg.table("typed"), "create_table": false,
          "columns": {"kind": "$.kind", "n": {"path": "$.n", "type": "bigint"}}}, "flush_ms": 5}),
    )
    .await;
    let expected = format!("table {} is missing", pg.table("typed"));
    until("the missing table reported", || async {
        let s = sink(&server, "typed").await;
        s["state"] == "retrying"
            && s["stats"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(&expected))
    })
    .await;
    pg.client
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.typed (id text, source text, kind text, PRIMARY KEY (source, id))",
            pg.name
        ))
        .await
        .unwrap();
    until("the missing column reported", || async {
        let s = sink(&server, "typed").await;
        s["stats"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("has no column n"))
    })
    .await;
    pg.client
        .batch_execute(&format!(
            "ALTER TABLE {}.typed ADD COLUMN n bigint",
            pg.name
        ))
        .await
        .unwrap();
    until("2 rows", || async { pg.count("typed").await == 2 }).await;
    let total: i64 = pg
        .client
        .query_one(
            &format!("SELECT sum(n)::bigint FROM {}", pg.table("typed")),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 3);
    until("running", || async {
        sink(&server, "typed").await["state"] == "running"
    })
    .await;
    server.shutdown().await;
    pg.drop().await;
}
