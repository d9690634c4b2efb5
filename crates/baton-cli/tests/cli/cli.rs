//! End-to-end tests of the `baton` binary: a real `baton serve` on a free port, driven by the
//! client commands exactly as a user or a script would run them. Queues, messages, publish,
//! tail and request here; streams in `cli_streams.rs`, topics, push and callbacks in
//! `cli_topics.rs`; the shared helpers in `common/mod.rs`.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{
    baton, http, read_on_thread, wait_with_timeout, Server, BATON, COMMAND_TIMEOUT,
};
use serde_json::Value;

#[test]
fn queue_lifecycle_send_receive_ack_through_the_cli() {
    let server = Server::start();
    let url = server.url.clone();
    let with_url = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--url".to_string(), url.clone()];
        all.extend(args.iter().map(|arg| arg.to_string()));
        all
    };
    let run = |args: &[&str]| {
        let args = with_url(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        baton(&args, "")
    };

    let created = run(&[
        "queue",
        "create",
        "orders",
        "--visibility-timeout-ms",
        "60000",
        "--max-depth",
        "100",
    ]);
    let created = created.assert_success().json();
    assert_eq!(created["name"], "orders");
    assert_eq!(created["attributes"]["visibility_timeout_ms"], 60000);
    assert_eq!(created["attributes"]["max_depth"], 100);

    let sent = run(&["send", "orders", "hello baton", "--attr", "source=cli"]);
    let sent = sent.assert_success().json();
    let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(sent["messages"][0]["duplicate"], false);

    // `-` reads the body from stdin, verbatim.
    let args = with_url(&["send", "orders", "-"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    baton(&args, "from stdin\n").assert_success();

    let shown = run(&["queue", "show", "orders"]).assert_success().json();
    assert_eq!(shown["stats"]["visible"], 2);

    let received = run(&[
        "recv",
        "orders",
        "--max",
        "10",
        "--wait-ms",
        "1000",
        "--ack",
    ])
    .assert_success()
    .json();
    let messages = received["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{received}");
    let first = messages
        .iter()
        .find(|message| message["id"] == id.as_str())
        .unwrap();
    assert_eq!(first["body"], "hello baton");
    assert_eq!(first["attributes"]["source"], "cli");
    assert!(messages
        .iter()
        .any(|message| message["body"] == "from stdin\n"));

    let shown = run(&["queue", "show", "orders"]).assert_success().json();
    assert_eq!(shown["stats"]["visible"], 0, "{shown}");
    assert_eq!(shown["stats"]["in_flight"], 0, "{shown}");
    assert_eq!(shown["stats"]["acked_total"], 2, "{shown}");

    let empty = run(&["recv", "orders", "--wait-ms", "0"])
        .assert_success()
        .json();
    assert_eq!(empty["messages"].as_array().unwrap().len(), 0);

    let listed = run(&["queue", "list"]).assert_success().json();
    let names: Vec<&str> = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|queue| queue["name"].as_str())
        .collect();
    assert_eq!(names, ["orders"]);
    let table = run(&["queue", "list", "--table"]);
    let table = &table.assert_success().stdout;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.lines().any(|line| line.starts_with("orders ")),
        "{table}"
    );

    let missing = run(&["recv", "no-such-queue"]);
    assert_eq!(missing.status.code(), Some(1), "stderr: {}", missing.stderr);
    assert!(
        missing.stderr.starts_with("error: queue_not_found: "),
        "stderr: {}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty(), "stdout: {}", missing.stdout);

    run(&["queue", "delete", "orders"]).assert_success();
    let gone = run(&["queue", "show", "orders"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        gone.stderr.contains("queue_not_found"),
        "stderr: {}",
        gone.stderr
    );
    let listed = run(&["queue", "list"]).assert_success().json();
    assert_eq!(listed["queues"].as_array().unwrap().len(), 0, "{listed}");

    let status = server.stop();
    assert!(
        status.success(),
        "server exited with {status:?} after SIGTERM"
    );
}

#[test]
fn help_describes_every_command() {
    let help = baton(&["--help"], "");
    let help = &help.assert_success().stdout;
    for command in [
        "serve",
        "queue",
        "send",
        "recv",
        "publish",
        "tail",
        "request",
        "stream",
        "topic",
        "push",
        "callbacks",
    ] {
        assert!(
            help.contains(command),
            "`{command}` missing from --help:\n{help}"
        );
    }
    let queue_help = baton(&["queue", "--help"], "");
    let queue_help = &queue_help.assert_success().stdout;
    for command in ["create", "list", "show", "delete", "purge"] {
        assert!(
            queue_help.contains(command),
            "`{command}` missing from queue --help:\n{queue_help}"
        );
    }
    for args in [
        &["serve", "--help"][..],
        &["send", "--help"],
        &["recv", "--help"],
        &["queue", "create", "--help"],
    ] {
        baton(args, "").assert_success();
    }
}

#[test]
fn unreachable_server_is_named_in_the_error() {
    // Port 1 is privileged and unused, so the connection is refused at once.
    let output = baton(&["--url", "http://127.0.0.1:1", "queue", "list"], "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output
            .stderr
            .contains("cannot reach Baton at http://127.0.0.1:1"),
        "stderr: {}",
        output.stderr
    );
}

#[test]
fn serve_refuses_a_bad_listen_address() {
    let output = baton(
        &[
            "serve",
            "--listen",
            "not-an-address",
            "--data-dir",
            "unused",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        output.stderr.contains("listen"),
        "stderr: {}",
        output.stderr
    );
    assert!(output.stdout.is_empty(), "stdout: {}", output.stdout);
}

#[test]
fn tail_prints_a_topics_live_messages_and_request_waits_for_its_reply() {
    let server = Server::start();
    let url = server.url.clone();
    http(
        "PUT",
        &format!("{url}/v1/topics/chat"),
        serde_json::json!({}),
    );

    let mut tail = Command::new(BATON)
        .args([
            "--url",
            &url,
            "tail",
            "chat",
            "--pattern",
            "room.*",
            "--count",
            "2",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tail_out = read_on_thread(tail.stdout.take().unwrap());
    let tail_err = read_on_thread(tail.stderr.take().unwrap());
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while http("GET", &format!("{url}/v1/topics/chat"), Value::Null)["stats"]["live_subscribers"]
        != 1
    {
        assert!(Instant::now() < deadline, "baton tail did not connect");
        thread::sleep(Duration::from_millis(20));
    }
    for (key, body) in [("room.1", "hello"), ("dm.7", "secret"), ("room.2", "bye")] {
        let published = baton(&["--url", &url, "publish", "chat", key, body], "");
        assert_eq!(
            published.assert_success().json()["messages"][0]["delivered_to"],
            0
        );
    }
    let status = wait_with_timeout(&mut tail, COMMAND_TIMEOUT).expect("tail stops after --count");
    let stdout = tail_out.join().unwrap();
    assert!(status.success(), "{stdout} {}", tail_err.join().unwrap());
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        (lines[0]["type"].as_str(), lines[0]["body"].as_str()),
        (Some("message"), Some("hello"))
    );
    assert_eq!(lines[1]["routing_key"], "room.2");

    http(
        "PUT",
        &format!("{url}/v1/queues/rpc"),
        serde_json::json!({}),
    );
    let mut request = Command::new(BATON)
        .args([
            "--url",
            &url,
            "request",
            "rpc",
            "ping",
            "--timeout-ms",
            "20000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let request_out = read_on_thread(request.stdout.take().unwrap());
    let received = baton(&["--url", &url, "recv", "rpc", "--wait-ms", "10000"], "");
    let message = received.assert_success().json()["messages"][0].clone();
    assert_eq!(message["body"], "ping");
    let correlation_id = message["attributes"]["baton.correlation_id"]
        .as_str()
        .unwrap();
    http(
        "POST",
        &format!("{url}/v1/replies/{correlation_id}"),
        serde_json::json!({"body": "pong"}),
    );
    let status = wait_with_timeout(&mut request, COMMAND_TIMEOUT).expect("request ends");
    let stdout = request_out.join().unwrap();
    assert!(status.success(), "{stdout}");
    let reply: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(reply["reply"]["body"], "pong");
    assert_eq!(reply["correlation_id"], correlation_id);

    let timed_out = baton(
        &[
            "--url",
            &url,
            "request",
            "rpc",
            "anyone?",
            "--timeout-ms",
            "100",
        ],
        "",
    );
    assert!(!timed_out.status.success());
    assert!(
        timed_out.stderr.contains("request_timeout"),
        "{}",
        timed_out.stderr
    );
}

#[test]
fn tail_prints_a_streams_records_and_tells_topics_and_streams_apart() {
    let server = Server::start();
    let url = server.url.clone();
    http(
        "PUT",
        &format!("{url}/v1/streams/clicks"),
        serde_json::json!({"partitions": 1}),
    );
    http(
        "POST",
        &format!("{url}/v1/streams/clicks/records"),
        serde_json::json!({"records": [{"value": "a", "key": "u1"}, {"value": "b"}, {"value": "c"}]}),
    );
    // No `--stream`: the CLI asks the server, finds no topic and a stream.
    let tailed = baton(
        &[
            "--url",
            &url,
            "tail",
            "clicks",
            "--from-offset",
            "1",
            "--count",
            "2",
        ],
        "",
    );
    tailed.assert_success();
    let lines: Vec<Value> = tailed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{}", tailed.stdout);
    assert_eq!(
        (
            lines[0]["type"].as_str(),
            lines[0]["offset"].as_u64(),
            lines[0]["value"].as_str()
        ),
        (Some("record"), Some(1), Some("b"))
    );
    assert_eq!(lines[1]["value"], "c");
    let forced = baton(
        &[
            "--url",
            &url,
            "tail",
            "clicks",
            "--stream",
            "--from-offset",
            "0",
            "--count",
            "1",
        ],
        "",
    );
    assert_eq!(forced.assert_success().json()["key"], "u1");

    let missing = baton(&["--url", &url, "tail", "nothing"], "");
    assert_eq!(missing.status.code(), Some(1), "stderr: {}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("no topic or stream named \"nothing\""),
        "{}",
        missing.stderr
    );
    let wrong = baton(&["--url", &url, "tail", "clicks", "--pattern", "a.*"], "");
    assert_eq!(wrong.status.code(), Some(1), "stderr: {}", wrong.stderr);
    assert!(
        wrong.stderr.contains("--pattern applies to topics"),
        "{}",
        wrong.stderr
    );
}

#[test]
fn stream_topic_push_and_callback_commands_show_examples_in_their_help() {
    let commands: [&[&str]; 28] = [
        &["stream", "create"],
        &["stream", "list"],
        &["stream", "show"],
        &["stream", "delete"],
        &["stream", "append"],
        &["stream", "read"],
        &["stream", "follow"],
        &["stream", "group", "create"],
        &["stream", "group", "show"],
        &["stream", "group", "read"],
        &["stream", "group", "ack"],
        &["stream", "group", "pending"],
        &["stream", "group", "claim"],
        &["stream", "group", "seek"],
        &["stream", "group", "delete"],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "show"],
        &["topic", "delete"],
        &["topic", "subscribe"],
        &["topic", "subscriptions"],
        &["topic", "subscription"],
        &["topic", "unsubscribe"],
        &["push", "set"],
        &["push", "show"],
        &["push", "delete"],
        &["callbacks", "list"],
        &["callbacks", "retry"],
    ];
    for command in commands {
        let name = format!("baton {}", command.join(" "));
        let mut args = command.to_vec();
        args.push("--help");
        let help = baton(&args, "");
        let help = &help.assert_success().stdout;
        let examples = help
            .split_once("Example")
            .map_or("", |(_, examples)| examples);
        assert!(
            examples.contains(&format!("{name} ")),
            "no example of `{name}` in its --help:\n{help}"
        );
    }
}
