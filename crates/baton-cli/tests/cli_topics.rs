//! End-to-end tests of `baton topic ...`, `baton push ...` and `baton callbacks ...`: the
//! real binary against a real `baton serve` on a free port, with a local HTTP endpoint
//! receiving what the broker POSTs.

#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, table_rows, Endpoint, Server};
use serde_json::{json, Value};

#[test]
fn topics_fan_out_to_queue_stream_and_url_subscriptions_made_with_the_cli() {
    let server = Server::start();
    let endpoint = Endpoint::start();
    server
        .run(&["queue", "create", "eu-orders"])
        .assert_success();
    server
        .run(&["stream", "create", "order-log", "--partitions", "1"])
        .assert_success();

    let created = server
        .run(&["topic", "create", "orders"])
        .assert_success()
        .json();
    assert_eq!(created["name"], "orders");
    assert_eq!(created["subscriptions"], json!([]));
    server.run(&["topic", "create", "orders"]).assert_success();

    let eu = server.run(&[
        "topic",
        "subscribe",
        "orders",
        "eu",
        "--queue",
        "eu-orders",
        "--pattern",
        "order.eu.*",
        "--filter",
        r#"{"region": ["eu", {"prefix": "eu-"}]}"#,
    ]);
    let eu = eu.assert_success().json();
    assert_eq!(eu["name"], "eu");
    assert_eq!(eu["target"], json!({"queue": "eu-orders"}));
    assert_eq!(eu["pattern"], "order.eu.*");
    assert_eq!(eu["filter"], json!({"region": ["eu", {"prefix": "eu-"}]}));
    let log = server.run(&[
        "topic",
        "subscribe",
        "orders",
        "log",
        "--stream",
        "order-log",
        "--pattern",
        "order.#",
    ]);
    assert_eq!(
        log.assert_success().json()["target"],
        json!({"stream": "order-log"})
    );
    let hook_url = format!("{}/hook", endpoint.url);
    let hook = server.run(&[
        "topic",
        "subscribe",
        "orders",
        "hook",
        "--endpoint",
        &hook_url,
        "--header",
        "x-token=secret",
    ]);
    assert_eq!(
        hook.assert_success().json()["target"],
        json!({"url": hook_url, "headers": {"x-token": "secret"}})
    );
    // The same settings again change nothing; others are refused.
    server
        .run(&[
            "topic",
            "subscribe",
            "orders",
            "log",
            "--stream",
            "order-log",
            "--pattern",
            "order.#",
        ])
        .assert_success();
    server
        .run(&[
            "topic",
            "subscribe",
            "orders",
            "log",
            "--stream",
            "order-log",
        ])
        .assert_error(1, "error: subscription_exists: ");

    // Bad arguments never reach the server.
    let subscribe_bad = |extra: &[&str]| {
        let mut args = vec!["topic", "subscribe", "orders", "bad"];
        args.extend_from_slice(extra);
        server.run(&args)
    };
    subscribe_bad(&["--queue", "eu-orders", "--pattern", "ord*"]).assert_refused("invalid pattern");
    subscribe_bad(&["--queue", "eu-orders", "--filter", "{"]).assert_refused("not JSON");
    subscribe_bad(&["--queue", "eu-orders", "--filter", "[1]"]).assert_refused("JSON object");
    subscribe_bad(&["--queue", "eu-orders", "--stream", "order-log"])
        .assert_refused("cannot be used with");
    subscribe_bad(&["--queue", "eu-orders", "--header", "a=b"])
        .assert_refused("cannot be used with");
    subscribe_bad(&["--pattern", "a.b"]).assert_refused("required");
    subscribe_bad(&["--endpoint", "ftp://example.com"]).assert_refused("http:// or https://");
    subscribe_bad(&["--endpoint", &hook_url, "--header", "novalue"]).assert_refused("KEY=VALUE");
    // What only the server checks, it reports precisely, creating nothing.
    subscribe_bad(&["--queue", "no-such-queue"]).assert_error(1, "error: queue_not_found: ");
    subscribe_bad(&["--stream", "no-such-stream"]).assert_error(1, "error: stream_not_found: ");
    subscribe_bad(&[
        "--queue",
        "eu-orders",
        "--filter",
        r#"{"region": [{"glob": "*"}]}"#,
    ])
    .assert_error(1, "error: invalid_filter: ");
    server
        .run(&["topic", "subscribe", "nope", "x", "--queue", "eu-orders"])
        .assert_error(1, "error: topic_not_found: ");

    let listed = server
        .run(&["topic", "subscriptions", "orders"])
        .assert_success()
        .json();
    let names: Vec<&str> = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|subscription| subscription["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eu", "hook", "log"]);
    let table = server.run(&["topic", "subscriptions", "orders", "--table"]);
    let rows = table_rows(
        &table.assert_success().stdout,
        "SUBSCRIPTION TARGET PATTERN FILTER",
    );
    assert_eq!(
        rows[0],
        [
            "eu",
            "queue:eu-orders",
            "order.eu.*",
            r#"{"region":["eu",{"prefix":"eu-"}]}"#
        ]
    );
    assert_eq!(rows[1], ["hook", &format!("url:{hook_url}"), "-", "-"]);
    assert_eq!(rows[2], ["log", "stream:order-log", "order.#", "-"]);
    let shown = server
        .run(&["topic", "subscription", "orders", "eu"])
        .assert_success()
        .json();
    assert_eq!(shown, eu);
    server
        .run(&["topic", "subscription", "orders", "nope"])
        .assert_error(1, "error: subscription_not_found: ");

    let published = server.run(&[
        "publish",
        "orders",
        "order.eu.created",
        "order 1003",
        "--attr",
        "region=eu-west",
    ]);
    assert_eq!(
        published.assert_success().json()["messages"][0]["delivered_to"],
        3
    );
    let received = server
        .run(&["recv", "eu-orders", "--wait-ms", "5000"])
        .assert_success()
        .json();
    assert_eq!(received["messages"][0]["body"], "order 1003");
    let records = server.run(&["stream", "read", "order-log", "--from-offset", "0"]);
    let records = records.assert_success().json();
    assert_eq!(records["records"][0]["key"], "order.eu.created");
    assert_eq!(records["records"][0]["value"], "order 1003");
    let posted = endpoint.wait_for(1);
    assert_eq!(posted[0].path, "/hook");
    assert_eq!(posted[0].body, "order 1003");
    assert_eq!(posted[0].header("x-token"), Some("secret"));

    let topics = server.run(&["topic", "list"]).assert_success().json();
    assert_eq!(topics["topics"][0]["stats"]["published_total"], 1);
    let table = server.run(&["topic", "list", "--table"]);
    let rows = table_rows(
        &table.assert_success().stdout,
        "NAME SUBSCRIPTIONS PUBLISHED DELIVERED",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..6], ["orders", "3", "1", "3", "0", "0"]);
    assert!(
        rows[0][6].ends_with('Z'),
        "created_at in RFC 3339: {rows:?}"
    );
    let table = server.run(&["topic", "show", "orders", "--table"]);
    let stdout = &table.assert_success().stdout;
    assert_eq!(
        table_rows(stdout, "NAME SUBSCRIPTIONS")[0][..3],
        ["orders", "3", "1"]
    );
    let subscriptions = stdout.split_once("\n\n").unwrap().1;
    assert_eq!(table_rows(subscriptions, "SUBSCRIPTION TARGET").len(), 3);

    server
        .run(&["topic", "unsubscribe", "orders", "hook"])
        .assert_success();
    server
        .run(&["topic", "subscription", "orders", "hook"])
        .assert_error(1, "error: subscription_not_found: ");
    server
        .run(&["topic", "unsubscribe", "orders", "hook"])
        .assert_error(1, "error: subscription_not_found: ");
    let shown: Value = server
        .run(&["topic", "show", "orders"])
        .assert_success()
        .json();
    assert_eq!(shown["subscriptions"].as_array().unwrap().len(), 2);

    server.run(&["topic", "delete", "orders"]).assert_success();
    server
        .run(&["topic", "show", "orders"])
        .assert_error(1, "error: topic_not_found: ");
    // Delivered copies stay.
    let queue = server
        .run(&["queue", "show", "eu-orders"])
        .assert_success()
        .json();
    assert_eq!(queue["stats"]["in_flight"], 1);
}

#[test]
fn push_subscriptions_are_set_shown_and_deleted() {
    let server = Server::start();
    let endpoint = Endpoint::start();
    server.run(&["queue", "create", "work"]).assert_success();
    let target = format!("{}/work", endpoint.url);

    let set = server.run(&[
        "push",
        "set",
        "work",
        &target,
        "--header",
        "x-token=t",
        "--concurrency",
        "2",
        "--timeout-ms",
        "5000",
        "--rate-per-s",
        "100",
    ]);
    let set = set.assert_success().json();
    assert_eq!(set["queue"], "work");
    assert_eq!(set["url"], target.as_str());
    assert_eq!(set["headers"], json!({"x-token": "t"}));
    assert_eq!(
        (&set["concurrency"], &set["timeout_ms"], &set["rate_per_s"]),
        (&json!(2), &json!(5000), &json!(100))
    );

    server.run(&["send", "work", "job 1"]).assert_success();
    let posted = endpoint.wait_for(1);
    assert_eq!(posted[0].path, "/work");
    assert_eq!(posted[0].body, "job 1");
    assert_eq!(posted[0].header("x-token"), Some("t"));
    assert_eq!(posted[0].header("baton-queue"), Some("work"));
    let shown = eventually("the delivery is counted", || {
        let shown = server
            .run(&["push", "show", "work"])
            .assert_success()
            .json();
        (shown["stats"]["delivered_total"] == 1).then_some(shown)
    });
    assert_eq!(shown["stats"]["breaker"], "closed");
    let table = server.run(&["push", "show", "work", "--table"]);
    let rows = table_rows(
        &table.assert_success().stdout,
        "QUEUE URL HEADERS CONCURRENCY",
    );
    assert_eq!(
        rows[0],
        [
            "work",
            target.as_str(),
            "x-token",
            "2",
            "5000",
            "100",
            "1",
            "0",
            "0",
            "closed"
        ],
        "header names only, not their values"
    );

    // Bad arguments never reach the server.
    let set_bad = |extra: &[&str]| {
        let mut args = vec!["push", "set", "work"];
        args.extend_from_slice(extra);
        server.run(&args)
    };
    set_bad(&[]).assert_refused("<URL>");
    set_bad(&["localhost:8080/work"]).assert_refused("http:// or https://");
    set_bad(&[&target, "--concurrency", "0"]).assert_refused("--concurrency");
    set_bad(&[&target, "--timeout-ms", "300001"]).assert_refused("--timeout-ms");
    set_bad(&[&target, "--rate-per-s", "0"]).assert_refused("--rate-per-s");
    set_bad(&[&target, "--header", "=v"]).assert_refused("KEY=VALUE");
    // What only the server checks, it reports precisely.
    server
        .run(&["push", "set", "nope", &target])
        .assert_error(1, "error: queue_not_found: ");
    server
        .run(&["push", "set", "work", "http://169.254.169.254/latest"])
        .assert_error(1, "error: target_not_allowed: ");
    server
        .run(&["push", "set", "work", &target, "--header", "bad header=x"])
        .assert_error(1, "error: invalid_parameter: ");
    // A refused change leaves the subscription as it was.
    let kept = server
        .run(&["push", "show", "work"])
        .assert_success()
        .json();
    assert_eq!(kept["url"], target.as_str());

    server.run(&["push", "delete", "work"]).assert_success();
    server
        .run(&["push", "show", "work"])
        .assert_error(1, "error: push_not_configured: ");
    server
        .run(&["push", "delete", "work"])
        .assert_error(1, "error: push_not_configured: ");
}

#[test]
fn failed_callbacks_are_listed_and_retried() {
    // No automatic retries: a failed callback is parked at once.
    let server = Server::start_with(&[("BATON_CALLBACK_MAX_RETRIES", "0")]);
    let endpoint = Endpoint::start();
    endpoint.set_status(500);
    server.run(&["queue", "create", "orders"]).assert_success();
    let done = format!("{}/done", endpoint.url);
    let sent = server.http(
        "POST",
        "/v1/queues/orders/messages",
        json!({"messages": [{"body": "ship 7", "notify": {"url": done}}]}),
    );
    let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
    server
        .run(&["recv", "orders", "--wait-ms", "5000", "--ack"])
        .assert_success();

    let listed = eventually("the callback is parked", || {
        let listed = server.run(&["callbacks", "list"]).assert_success().json();
        (!listed["callbacks"].as_array().unwrap().is_empty()).then_some(listed)
    });
    let callback = &listed["callbacks"][0];
    assert_eq!(callback["queue"], "orders");
    assert_eq!(callback["id"], id.as_str());
    assert_eq!(callback["status"], "CALLBACK_FAILED");
    assert!(
        callback["reason"].as_str().unwrap().contains("HTTP 500"),
        "{callback}"
    );
    assert_eq!(endpoint.received()[0].path, "/done");
    let table = server.run(&["callbacks", "list", "--max", "10", "--table"]);
    let rows = table_rows(
        &table.assert_success().stdout,
        "QUEUE ID STATUS ATTEMPTS FAILED_AT REASON",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..3], ["orders", id.as_str(), "CALLBACK_FAILED"]);
    assert_eq!(rows[0][5..7], ["HTTP", "500"]);
    server
        .run(&["callbacks", "list", "--max", "0"])
        .assert_refused("--max");

    // Still failing: the outcome is printed and the exit status says so.
    let again = server.run(&["callbacks", "retry", "orders", &id]);
    again.assert_error(1, "error: the callback failed again: HTTP 500");
    let outcome = again.json();
    assert_eq!(outcome["ok"], false);
    assert_eq!(outcome["message"]["status"], "CALLBACK_FAILED");

    endpoint.set_status(200);
    let retried = server.run(&["callbacks", "retry", "orders", &id]);
    let retried = retried.assert_success().json();
    assert_eq!(retried["ok"], true);
    assert_eq!(retried["message"]["status"], "COMPLETED");
    let posted = endpoint.received();
    let payload: Value = serde_json::from_str(&posted.last().unwrap().body).unwrap();
    assert_eq!(
        (&payload["id"], &payload["status"]),
        (&json!(id), &json!("COMPLETED"))
    );
    let listed = server.run(&["callbacks", "list"]).assert_success().json();
    assert_eq!(listed["callbacks"], json!([]));

    server
        .run(&["callbacks", "retry", "orders", &id])
        .assert_error(1, "error: callback_not_failed: ");
    server
        .run(&["callbacks", "retry", "orders", "not-an-id"])
        .assert_refused("message id");
    server
        .run(&["callbacks", "retry", "nope", &id])
        .assert_error(1, "error: queue_not_found: ");
}
