//! End-to-end tests of `baton topic ...`, `baton push ...` and `baton callbacks ...`: the
//! real binary against a real `baton serve` on a free port, with a local HTTP endpoint
//! receiving what the broker POSTs.

use crate::common::{eventually, table_rows, Endpoint, Server};
use serde_json::{json, Value};

const EU_FILTER: &str = r#"{"region": ["eu", {"prefix": "eu-"}]}"#;

/// A topic `orders` with a queue, a stream and a URL subscription (`eu`, `log`, `hook`).
fn subscribed(server: &Server, hook_url: &str) -> Value {
    server.cli("queue create eu-orders").assert_success();
    server
        .cli("stream create order-log --partitions 1")
        .assert_success();
    server.cli("topic create orders").assert_success();
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
        EU_FILTER,
    ]);
    let eu = eu.assert_success().json();
    let log = server.cli("topic subscribe orders log --stream order-log --pattern order.#");
    assert_eq!(
        log.assert_success().json()["target"],
        json!({"stream": "order-log"})
    );
    let hook = server.cli(&format!(
        "topic subscribe orders hook --endpoint {hook_url} --header x-token=secret"
    ));
    assert_eq!(
        hook.assert_success().json()["target"],
        json!({"url": hook_url, "headers": {"x-token": "secret"}})
    );
    eu
}

#[test]
fn topics_and_subscriptions_are_created_listed_shown_and_deleted() {
    let server = Server::start();
    let created = server.cli("topic create orders").assert_success().json();
    assert_eq!(
        (&created["name"], &created["subscriptions"]),
        (&json!("orders"), &json!([]))
    );
    server.cli("topic create orders").assert_success();
    server.cli("topic delete orders").assert_success();
    let hook_url = "http://127.0.0.1:9/hook";
    let eu = subscribed(&server, hook_url);
    assert_eq!(eu["name"], "eu");
    assert_eq!(eu["target"], json!({"queue": "eu-orders"}));
    assert_eq!(eu["pattern"], "order.eu.*");
    assert_eq!(
        eu["filter"],
        serde_json::from_str::<Value>(EU_FILTER).unwrap()
    );
    // The same settings again change nothing; others are refused.
    server
        .cli("topic subscribe orders log --stream order-log --pattern order.#")
        .assert_success();
    server
        .cli("topic subscribe orders log --stream order-log")
        .assert_error(1, "error: subscription_exists: ");

    let listed = server
        .cli("topic subscriptions orders")
        .assert_success()
        .json();
    let names: Vec<&str> = listed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|subscription| subscription["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["eu", "hook", "log"]);
    let table = server.cli("topic subscriptions orders --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "SUBSCRIPTION TARGET PATTERN FILTER",
    );
    let hook_target = format!("url:{hook_url}");
    assert_eq!(
        rows,
        [
            [
                "eu",
                "queue:eu-orders",
                "order.eu.*",
                r#"{"region":["eu",{"prefix":"eu-"}]}"#
            ],
            ["hook", hook_target.as_str(), "-", "-"],
            ["log", "stream:order-log", "order.#", "-"],
        ]
    );
    let shown = server.cli("topic subscription orders eu");
    assert_eq!(shown.assert_success().json(), eu);

    let topics = server.cli("topic list").assert_success().json();
    assert_eq!(topics["topics"][0]["name"], "orders");
    let table = server.cli("topic list --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "NAME SUBSCRIPTIONS PUBLISHED DELIVERED UNMATCHED LIVE_SUBSCRIBERS CREATED_AT",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..6], ["orders", "3", "0", "0", "0", "0"]);
    assert!(
        rows[0][6].ends_with('Z'),
        "created_at in RFC 3339: {rows:?}"
    );
    let table = server.cli("topic show orders --table");
    let stdout = &table.assert_success().stdout;
    assert_eq!(
        table_rows(stdout, "NAME SUBSCRIPTIONS")[0][..2],
        ["orders", "3"]
    );
    let subscriptions = stdout.split_once("\n\n").unwrap().1;
    assert_eq!(table_rows(subscriptions, "SUBSCRIPTION TARGET").len(), 3);

    server.cli("topic unsubscribe orders hook").assert_success();
    for gone in [
        "topic subscription orders hook",
        "topic unsubscribe orders hook",
    ] {
        server
            .cli(gone)
            .assert_error(1, "error: subscription_not_found: ");
    }
    let shown = server.cli("topic show orders").assert_success().json();
    assert_eq!(shown["subscriptions"].as_array().unwrap().len(), 2);
    server.cli("topic delete orders").assert_success();
    for gone in [
        "topic show orders",
        "topic delete orders",
        "topic subscriptions orders",
    ] {
        server.cli(gone).assert_error(1, "error: topic_not_found: ");
    }
}

#[test]
fn bad_subscriptions_are_refused_by_the_cli_or_reported_by_the_server() {
    let server = Server::start();
    server.cli("queue create eu-orders").assert_success();
    server.cli("topic create orders").assert_success();
    let subscribe = |extra: &[&str]| {
        let mut args = vec!["topic", "subscribe", "orders", "bad"];
        args.extend_from_slice(extra);
        server.run(&args)
    };
    // Never sent to the server.
    subscribe(&["--queue", "eu-orders", "--pattern", "ord*"]).assert_refused("invalid pattern");
    subscribe(&["--queue", "eu-orders", "--filter", "{"]).assert_refused("not JSON");
    subscribe(&["--queue", "eu-orders", "--filter", "[1]"]).assert_refused("JSON object");
    subscribe(&["--queue", "eu-orders", "--stream", "s"]).assert_refused("cannot be used with");
    subscribe(&["--queue", "eu-orders", "--header", "a=b"]).assert_refused("cannot be used with");
    subscribe(&["--pattern", "a.b"]).assert_refused("required");
    subscribe(&["--endpoint", "ftp://example.com"]).assert_refused("http:// or https://");
    subscribe(&["--endpoint", "http://h/x", "--header", "novalue"]).assert_refused("KEY=VALUE");
    // What only the server checks, it reports precisely, creating nothing.
    subscribe(&["--queue", "no-such-queue"]).assert_error(1, "error: queue_not_found: ");
    subscribe(&["--stream", "no-such-stream"]).assert_error(1, "error: stream_not_found: ");
    subscribe(&[
        "--queue",
        "eu-orders",
        "--filter",
        r#"{"region": [{"glob": "*"}]}"#,
    ])
    .assert_error(1, "error: invalid_filter: ");
    subscribe(&["--endpoint", "http://169.254.169.254/x"])
        .assert_error(1, "error: target_not_allowed: ");
    server
        .cli("topic subscribe nope x --queue eu-orders")
        .assert_error(1, "error: topic_not_found: ");
    let shown = server.cli("topic show orders").assert_success().json();
    assert_eq!(shown["subscriptions"], json!([]));
}

#[test]
fn a_publish_reaches_the_queue_stream_and_url_subscribed_with_the_cli() {
    let server = Server::start();
    let endpoint = Endpoint::start();
    let hook_url = format!("{}/hook", endpoint.url);
    subscribed(&server, &hook_url);

    let published = server.cli("publish orders order.eu.created order-1003 --attr region=eu-west");
    let published = published.assert_success().json();
    assert_eq!(published["messages"][0]["delivered_to"], 3);
    let unmatched = server.cli("publish orders order.us.created order-1004 --attr region=us");
    let unmatched = unmatched.assert_success().json();
    assert_eq!(unmatched["messages"][0]["delivered_to"], 2, "not eu");

    let received = server.cli("recv eu-orders --max 10 --wait-ms 5000");
    let received = received.assert_success().json();
    let bodies: Vec<&str> = received["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["order-1003"]);
    let records = server.cli("stream read order-log --from-offset 0");
    let records = records.assert_success().json();
    assert_eq!(records["records"][0]["key"], "order.eu.created");
    assert_eq!(records["records"][1]["value"], "order-1004");
    let posted = endpoint.wait_for(2);
    assert_eq!(posted[0].path, "/hook");
    assert_eq!(posted[0].header("x-token"), Some("secret"));
    let mut bodies: Vec<&str> = posted.iter().map(|post| post.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["order-1003", "order-1004"]);

    let table = server.cli("topic list --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "NAME SUBSCRIPTIONS PUBLISHED",
    );
    assert_eq!(rows[0][..5], ["orders", "3", "2", "5", "0"]);
    // Deleting the topic leaves delivered copies where they are.
    server.cli("topic delete orders").assert_success();
    let queue = server.cli("queue show eu-orders").assert_success().json();
    assert_eq!(queue["stats"]["in_flight"], 1);
}

#[test]
fn push_subscriptions_are_set_shown_and_deleted() {
    let server = Server::start();
    let endpoint = Endpoint::start();
    server.cli("queue create work").assert_success();
    let target = format!("{}/work", endpoint.url);
    let set = server.cli(&format!(
        "push set work {target} --header x-token=t --concurrency 2 --timeout-ms 5000 \
         --rate-per-s 100"
    ));
    let set = set.assert_success().json();
    assert_eq!(
        (&set["queue"], &set["url"]),
        (&json!("work"), &json!(target))
    );
    assert_eq!(set["headers"], json!({"x-token": "t"}));
    assert_eq!(
        (&set["concurrency"], &set["timeout_ms"], &set["rate_per_s"]),
        (&json!(2), &json!(5000), &json!(100))
    );

    server.cli("send work job-1").assert_success();
    let posted = endpoint.wait_for(1);
    assert_eq!(
        (posted[0].path.as_str(), posted[0].body.as_str()),
        ("/work", "job-1")
    );
    assert_eq!(posted[0].header("x-token"), Some("t"));
    assert_eq!(posted[0].header("baton-queue"), Some("work"));
    let shown = eventually("the delivery is counted", || {
        let shown = server.cli("push show work").assert_success().json();
        (shown["stats"]["delivered_total"] == 1).then_some(shown)
    });
    assert_eq!(shown["stats"]["breaker"], "closed");
    let table = server.cli("push show work --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "QUEUE URL HEADERS CONCURRENCY",
    );
    assert_eq!(
        rows,
        [[
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
        ]],
        "header names only, not their values"
    );

    // Never sent to the server.
    let set = |extra: &str| server.cli(&format!("push set work {extra}"));
    set("").assert_refused("<URL>");
    set("localhost:8080/work").assert_refused("http:// or https://");
    set(&format!("{target} --concurrency 0")).assert_refused("--concurrency");
    set(&format!("{target} --timeout-ms 300001")).assert_refused("--timeout-ms");
    set(&format!("{target} --rate-per-s 0")).assert_refused("--rate-per-s");
    set(&format!("{target} --header =v")).assert_refused("KEY=VALUE");
    // What only the server checks, it reports precisely, changing nothing.
    server
        .cli(&format!("push set nope {target}"))
        .assert_error(1, "error: queue_not_found: ");
    set("http://169.254.169.254/latest").assert_error(1, "error: target_not_allowed: ");
    let bad_header = server.run(&["push", "set", "work", &target, "--header", "bad header=x"]);
    bad_header.assert_error(1, "error: invalid_parameter: ");
    let kept = server.cli("push show work").assert_success().json();
    assert_eq!(kept["url"], target.as_str());

    server.cli("push delete work").assert_success();
    for gone in ["push show work", "push delete work"] {
        server
            .cli(gone)
            .assert_error(1, "error: push_not_configured: ");
    }
}

#[test]
fn failed_callbacks_are_listed_and_retried() {
    // No automatic retries: a failed callback is parked at once.
    let server = Server::start_with(&[("BATON_CALLBACK_MAX_RETRIES", "0")]);
    let endpoint = Endpoint::start();
    endpoint.set_status(500);
    server.cli("queue create orders").assert_success();
    let done = format!("{}/done", endpoint.url);
    let sent = server.http(
        "POST",
        "/v1/queues/orders/messages",
        json!({"messages": [{"body": "ship 7", "notify": {"url": done}}]}),
    );
    let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
    server
        .cli("recv orders --wait-ms 5000 --ack")
        .assert_success();

    let listed = eventually("the callback is parked", || {
        let listed = server.cli("callbacks list").assert_success().json();
        (!listed["callbacks"].as_array().unwrap().is_empty()).then_some(listed)
    });
    let callback = &listed["callbacks"][0];
    assert_eq!(
        (&callback["queue"], &callback["id"]),
        (&json!("orders"), &json!(id))
    );
    assert_eq!(callback["status"], "CALLBACK_FAILED");
    let reason = callback["reason"].as_str().unwrap();
    assert!(reason.starts_with("HTTP 500"), "{callback}");
    assert_eq!(endpoint.received()[0].path, "/done");
    let table = server.cli("callbacks list --max 10 --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "QUEUE ID STATUS ATTEMPTS FAILED_AT REASON",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][..3], ["orders", id.as_str(), "CALLBACK_FAILED"]);
    assert!(rows[0][4].ends_with('Z'), "failed_at in RFC 3339: {rows:?}");
    assert_eq!(rows[0][5..7], ["HTTP", "500"]);
    server.cli("callbacks list --max 0").assert_refused("--max");

    // Still failing: the outcome is printed and the exit status says so.
    let again = server.cli(&format!("callbacks retry orders {id}"));
    again.assert_error(1, "error: the callback failed again: HTTP 500");
    let outcome = again.json();
    assert_eq!(outcome["ok"], false);
    assert_eq!(outcome["message"]["status"], "CALLBACK_FAILED");

    endpoint.set_status(200);
    let retried = server.cli(&format!("callbacks retry orders {id}"));
    let retried = retried.assert_success().json();
    assert_eq!(retried["ok"], true);
    assert_eq!(retried["message"]["status"], "COMPLETED");
    let posted = endpoint.received();
    let payload: Value = serde_json::from_str(&posted.last().unwrap().body).unwrap();
    assert_eq!(
        (&payload["id"], &payload["status"]),
        (&json!(id), &json!("COMPLETED"))
    );
    let listed = server.cli("callbacks list").assert_success().json();
    assert_eq!(listed, json!({"callbacks": []}));

    server
        .cli(&format!("callbacks retry orders {id}"))
        .assert_error(1, "error: callback_not_failed: ");
    server
        .cli("callbacks retry orders not-an-id")
        .assert_refused("message id");
    server
        .cli(&format!("callbacks retry nope {id}"))
        .assert_error(1, "error: queue_not_found: ");
}
