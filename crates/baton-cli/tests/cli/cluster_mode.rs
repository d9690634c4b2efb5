//! Cluster mode end to end: real `baton serve --engine redis` processes on a real 6-process
//! Redis Cluster (`redis_cluster`, the engine crate's own test support): two nodes sharing
//! one namespace serve one set of queues, a long poll on one node is woken by a send on the
//! other, the strict start-up check refuses a cluster without the append-only file and
//! `relaxed` starts on it, a lock held on one node is held for all, a schedule made on one
//! node fires once per tick while both nodes run the firing task, a topic made on one node
//! takes a publish on the other into its queue once, what is not on the Redis engine yet
//! (streams) answers 503 `not_on_engine`, and what the server runs on queues works across
//! nodes: API keys, push, callbacks.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{baton, spawn_baton, temp_dir, Endpoint, Serve, Server, ServerLog};
use crate::redis_cluster::{self, Cluster};

/// A long poll's `wait_ms`: far longer than a wake-up may take, so a poll that returns a
/// message returned because of it.
const LONG_POLL_MS: u64 = 20_000;

/// `baton serve --engine redis` arguments for `cluster` and `namespace`, plus `more`.
fn node(cluster: &Cluster, namespace: &str, more: &[&str]) -> Serve {
    let urls = cluster.urls().join(",");
    Serve::new()
        .args(&[
            "--engine",
            "redis",
            "--redis-url",
            &urls,
            "--redis-namespace",
            namespace,
        ])
        .args(more)
}

fn started(serve: Serve) -> Server {
    spawn_baton(serve).unwrap_or_else(|error| panic!("baton serve did not start: {error}"))
}

/// An HTTP call whose status the test checks itself: `(status, body)`.
fn call(server: &Server, method: &str, path: &str, body: Value) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", server.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn receive(server: &Server, queue: &str, wait_ms: u64) -> Vec<Value> {
    let path = format!("/v1/queues/{queue}/receive");
    let received = server.http("POST", &path, json!({"max": 10, "wait_ms": wait_ms}));
    received["messages"].as_array().unwrap().clone()
}

#[test]
fn two_nodes_share_queues_and_a_send_on_one_wakes_a_long_poll_on_the_other() {
    let cluster = redis_cluster::shared();
    let namespace = redis_cluster::fresh_namespace();
    let log = temp_dir("cluster-node-2").with_extension("log");
    let one = started(node(cluster, &namespace, &[]));
    let two = started(
        node(cluster, &namespace, &[])
            .env(&[("RUST_LOG", "info")])
            .log(ServerLog::File(log.clone())),
    );

    for server in [&one, &two] {
        let info = server.http("GET", "/v1/server", json!(null));
        assert_eq!(info["engine"], "redis", "{info}");
        let (status, ready) = call(server, "GET", "/ready", json!(null));
        assert_eq!((status, &ready["ready"]), (200, &json!(true)), "{ready}");
    }

    one.http("PUT", "/v1/queues/orders", json!({}));
    let sent = one.http(
        "POST",
        "/v1/queues/orders/messages",
        json!({"messages": [{"body": "order-1"}]}),
    );
    let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
    let got = receive(&two, "orders", 1_000);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0]["id"].as_str(), &got[0]["body"]),
        (Some(id.as_str()), &json!("order-1"))
    );
    let acked = two.http(
        "POST",
        "/v1/queues/orders/ack",
        json!({"receipts": [got[0]["receipt"]]}),
    );
    assert_eq!(acked["results"][0]["ok"], true, "{acked}");
    let stats = one.http("GET", "/v1/queues/orders", json!(null));
    assert_eq!(stats["stats"]["acked_total"], 1, "{stats}");
    assert_eq!(stats["stats"]["visible"], 0, "{stats}");

    // A long poll on node 2, woken by a send on node 1.
    let poll_url = two.url.clone();
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let messages = crate::common::http(
            "POST",
            &format!("{poll_url}/v1/queues/orders/receive"),
            json!({"max": 1, "wait_ms": LONG_POLL_MS}),
        );
        (messages, started.elapsed())
    });
    // Let the poll start waiting (it subscribes to the queue's channel first).
    std::thread::sleep(Duration::from_millis(500));
    one.http(
        "POST",
        "/v1/queues/orders/messages",
        json!({"messages": [{"body": "wake-up"}]}),
    );
    let (woken, waited) = poll.join().unwrap();
    let woken = woken["messages"].as_array().unwrap().clone();
    assert_eq!(
        woken.len(),
        1,
        "the long poll returned {woken:?} after {waited:?}"
    );
    assert_eq!(woken[0]["body"], "wake-up");
    assert!(
        waited < Duration::from_millis(LONG_POLL_MS / 2),
        "woken only after {waited:?}"
    );

    // A lock taken on one node is held for every node; its tokens only go up across nodes.
    let (status, held) = call(
        &one,
        "PUT",
        "/v1/locks/nightly",
        json!({"holder": "a", "ttl_ms": 10_000}),
    );
    assert_eq!(status, 200, "{held}");
    let (status, refused) = call(
        &two,
        "PUT",
        "/v1/locks/nightly",
        json!({"holder": "b", "ttl_ms": 10_000}),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("lock_held")),
        "{refused}"
    );
    let (status, released) = call(
        &two,
        "POST",
        "/v1/locks/nightly/release",
        json!({"holder": "a", "token": held["token"]}),
    );
    assert_eq!(status, 200, "{released}");
    let (status, next) = call(
        &two,
        "PUT",
        "/v1/locks/nightly",
        json!({"holder": "b", "ttl_ms": 10_000}),
    );
    assert_eq!(status, 200, "{next}");
    assert!(
        next["token"].as_u64() > held["token"].as_u64(),
        "{held} then {next}"
    );

    // Streams are not on the Redis engine yet: a precise, lasting 503.
    let (status, refused) = call(&one, "PUT", "/v1/streams/clicks", json!({"partitions": 1}));
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "not_on_engine", "{refused}");
    // Topics are on the Redis engine: a topic and its queue subscription made on node 1, a
    // publish on node 2 lands in the queue once.
    one.http("PUT", "/v1/queues/news-in", json!({}));
    let (status, created) = call(&one, "PUT", "/v1/topics/news", json!({}));
    assert_eq!(status, 201, "{created}");
    let (status, subscribed) = call(
        &one,
        "PUT",
        "/v1/topics/news/subscriptions/inbox",
        json!({"target": {"queue": "news-in"}}),
    );
    assert!(status == 200 || status == 201, "{status} {subscribed}");
    let (status, published) = call(
        &two,
        "POST",
        "/v1/topics/news/publish",
        json!({"messages": [{"routing_key": "news.eu", "body": "headline"}]}),
    );
    assert_eq!(status, 200, "{published}");
    let landed = receive(&one, "news-in", 1_000);
    assert_eq!(landed.len(), 1, "{landed:?}");
    assert_eq!(landed[0]["body"], "headline");
    assert!(receive(&two, "news-in", 0).is_empty(), "one copy only");
    // Metrics leave out what the engine does not have, and name the queue.
    assert!(two.get_text("/metrics").contains("orders"));

    // Schedules are on the Redis engine: a schedule made on node 1 fires once per tick while
    // both nodes run the firing task, the messages received from node 2.
    one.http("PUT", "/v1/queues/ticks", json!({}));
    let (status, created) = call(
        &one,
        "PUT",
        "/v1/schedules/every-second",
        json!({"cron": "* * * * * *", "target": {"queue": "ticks"},
               "message": {"body": "tick"}, "missed": "skip"}),
    );
    assert_eq!(status, 201, "{created}");
    // A schedule to a topic that does not exist is refused (topics are on this engine now).
    let (status, refused) = call(
        &two,
        "PUT",
        "/v1/schedules/to-topic",
        json!({"cron": "* * * * * *", "target": {"topic": "no-such-topic"}, "message": {"body": "x"}}),
    );
    assert_eq!(
        (status, &refused["error"]["code"]),
        (400, &json!("schedule_target_not_found")),
        "{refused}"
    );
    let started_at = Instant::now();
    let mut ticks: Vec<u64> = Vec::new();
    while ticks.len() < 4 {
        assert!(
            started_at.elapsed() < Duration::from_secs(20),
            "ticks so far: {ticks:?}"
        );
        for message in receive(&two, "ticks", 1_000) {
            assert_eq!(message["attributes"]["baton.schedule"], "every-second");
            let tick = message["attributes"]["baton.fire_time"].as_str().unwrap();
            ticks.push(tick.parse().unwrap());
            let receipt = message["receipt"].clone();
            two.http(
                "POST",
                "/v1/queues/ticks/ack",
                json!({"receipts": [receipt]}),
            );
        }
    }
    let paused = two.http("POST", "/v1/schedules/every-second/pause", json!(null));
    assert_eq!(paused["state"], "paused", "{paused}");
    // A firing on its way when the pause landed completes; then nothing more comes.
    std::thread::sleep(Duration::from_millis(1_500));
    loop {
        let late = receive(&one, "ticks", 0);
        if late.is_empty() {
            break;
        }
        for message in late {
            let tick = message["attributes"]["baton.fire_time"].as_str().unwrap();
            ticks.push(tick.parse().unwrap());
            let receipt = message["receipt"].clone();
            one.http(
                "POST",
                "/v1/queues/ticks/ack",
                json!({"receipts": [receipt]}),
            );
        }
    }
    let mut distinct = ticks.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ticks.len(), "no tick twice: {ticks:?}");
    assert!(distinct.iter().all(|t| t % 1_000 == 0), "{ticks:?}");
    let schedule = one.http("GET", "/v1/schedules/every-second", json!(null));
    assert_eq!(
        schedule["fired"].as_u64(),
        Some(ticks.len() as u64),
        "one firing counted per message: {schedule} {ticks:?}"
    );
    assert_eq!(schedule["failures"], 0, "{schedule}");

    drop(two);
    let lines: Vec<String> = BufReader::new(std::fs::File::open(&log).unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let _ = std::fs::remove_file(&log);
    // The firing task runs: it is not idle, and it did not fail a firing.
    for needle in ["schedule firing task is idle", "a schedule's firing failed"] {
        let n = lines.iter().filter(|line| line.contains(needle)).count();
        assert_eq!(n, 0, "{needle:?} in the log:\n{}", lines.join("\n"));
    }
    // The refused requests are answers, not server faults: not logged as failed requests.
    let refusals = lines
        .iter()
        .filter(|line| line.contains("not available on the redis engine"))
        .count();
    assert_eq!(refusals, 0, "log:\n{}", lines.join("\n"));
}

#[test]
fn strict_start_refuses_a_cluster_without_appendonly_and_relaxed_starts() {
    let cluster = redis_cluster::shared_without_appendonly();
    let namespace = redis_cluster::fresh_namespace();
    let refused = spawn_baton(node(cluster, &namespace, &[]).log(ServerLog::Capture))
        .err()
        .expect("a strict start on a cluster without appendonly was refused");
    for needle in [
        "appendonly = no",
        "node 127.0.0.1:",
        "--redis-durability relaxed",
    ] {
        assert!(refused.contains(needle), "{needle:?} not in: {refused}");
    }
    assert!(!refused.contains("appendfsync ="), "{refused}");

    let relaxed = started(
        node(cluster, &namespace, &["--redis-durability", "relaxed"]).log(ServerLog::Discard),
    );
    assert_eq!(
        relaxed.http("GET", "/v1/server", json!(null))["engine"],
        "redis"
    );
    relaxed.http("PUT", "/v1/queues/relaxed", json!({}));
    relaxed.http(
        "POST",
        "/v1/queues/relaxed/messages",
        json!({"messages": [{"body": "kept in memory only"}]}),
    );
    assert_eq!(receive(&relaxed, "relaxed", 0).len(), 1);
}

#[test]
fn serve_refuses_redis_without_url_and_a_bad_url_naming_the_key() {
    let dir = temp_dir("cluster-config");
    let data_dir = dir.to_str().unwrap();
    let args = |more: &[&'static str]| {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir];
        all.extend_from_slice(more);
        all
    };
    baton(&args(&["--engine", "redis"]), "").assert_error(1, "`redis_url` is required");
    baton(
        &args(&["--engine", "redis", "--redis-url", "redis://10.0.0.1"]),
        "",
    )
    .assert_error(
        1,
        "`redis_url` \"redis://10.0.0.1\" is not like redis://host:port",
    );
    baton(
        &args(&[
            "--engine",
            "redis",
            "--redis-url",
            "redis://h:1",
            "--redis-durability",
            "lax",
        ]),
        "",
    )
    .assert_error(1, "--redis-durability \"lax\" is not `strict` or `relaxed`");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_keys_live_in_the_cluster_a_key_made_on_one_node_opens_the_other() {
    const ADMIN: &str = "cluster-test-admin-key-0123456789abcdefgh";
    let cluster = redis_cluster::shared();
    let namespace = redis_cluster::fresh_namespace();
    // Both nodes install the same admin key at start: the second finds it there already.
    let keyed =
        |serve: Serve| serve.env(&[("BATON_ADMIN_KEY", ADMIN), ("BATON_KEYS_REFRESH_MS", "200")]);
    let one = started(keyed(node(cluster, &namespace, &[])));
    let two = started(keyed(node(cluster, &namespace, &[])));
    two.run(&["queue", "list"]).assert_error(1, "unauthorized");

    let created = one
        .run(&[
            "--key",
            ADMIN,
            "key",
            "create",
            "--name",
            "app",
            "--allow",
            "send,receive:queue:jobs*",
        ])
        .assert_success()
        .json();
    let app = created["key"].as_str().unwrap().to_string();
    one.run(&["--key", ADMIN, "queue", "create", "jobs"])
        .assert_success();
    // Node 2 learns of the key by its periodic re-read (keys_refresh_ms).
    crate::common::eventually("node 2 accepts the key made on node 1", || {
        let sent = two.run(&["--key", &app, "send", "jobs", "hello"]);
        sent.status.success().then_some(())
    });
    two.run(&["--key", &app, "queue", "create", "other"])
        .assert_error(1, "forbidden");
}

#[test]
fn push_and_completion_callbacks_run_on_the_cluster() {
    let cluster = redis_cluster::shared();
    let namespace = redis_cluster::fresh_namespace();
    let one = started(node(cluster, &namespace, &[]));
    let two = started(node(cluster, &namespace, &[]));
    let endpoint = Endpoint::start();

    // A push subscription set on node 1 delivers what node 2 was sent.
    one.cli("queue create work").assert_success();
    let target = format!("{}/work", endpoint.url);
    one.cli(&format!("push set work {target}")).assert_success();
    two.cli("send work job-1").assert_success();
    let posted = endpoint.wait_for(1);
    assert_eq!(
        (posted[0].path.as_str(), posted[0].body.as_str()),
        ("/work", "job-1")
    );
    // Node 2 starts a worker of its own for it (its re-sync of stored subscriptions) ...
    crate::common::eventually("node 2 knows the subscription set on node 1", || {
        let shown = two.cli("push show work");
        shown
            .status
            .success()
            .then(|| assert_eq!(shown.json()["url"], target.as_str()))
    });
    // ... and stops it within a re-sync (2 s) of the subscription's delete on node 1:
    // nothing is pushed after.
    one.cli("push delete work").assert_success();
    std::thread::sleep(Duration::from_secs(3));
    two.cli("send work job-2").assert_success();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(endpoint.received().len(), 1, "{:?}", endpoint.received());
    assert_eq!(
        receive(&one, "work", 0).len(),
        1,
        "job-2 waits in the queue"
    );

    // A completion callback of a message sent on node 1 and acked on node 2.
    one.cli("queue create orders").assert_success();
    let done = format!("{}/done", endpoint.url);
    let sent = one.http(
        "POST",
        "/v1/queues/orders/messages",
        json!({"messages": [{"body": "ship 7", "notify": {"url": done}}]}),
    );
    let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
    two.cli("recv orders --wait-ms 5000 --ack").assert_success();
    let posted = endpoint.wait_for(2);
    let callback = posted
        .iter()
        .find(|request| request.path == "/done")
        .unwrap_or_else(|| panic!("no callback among {posted:?}"));
    let report: Value = serde_json::from_str(&callback.body).unwrap();
    assert_eq!(
        (&report["id"], &report["queue"], &report["status"]),
        (&json!(id), &json!("orders"), &json!("COMPLETED")),
        "{report}"
    );
    // Its outcome is recorded on the message, seen from the node that sent it.
    crate::common::eventually("the callback's outcome is recorded", || {
        let status = one.http(
            "GET",
            &format!("/v1/queues/orders/messages/{id}"),
            json!(null),
        );
        status
            .to_string()
            .contains("callback_succeeded")
            .then_some(())
    });
}
