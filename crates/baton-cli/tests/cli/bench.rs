//! `baton bench` against the real binary: every workload over both APIs moves exactly the
//! messages it was asked to, reports no errors and ordered latency percentiles, and leaves no
//! queue behind; the same e2e run against each peer (Redis, RabbitMQ, NATS JetStream on their
//! standard ports, present on this machine and in CI) does the same. Speed is never asserted:
//! these machines are shared.

use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{spawn_baton, Serve, Server, ServerLog, BATON};

/// A server on a fresh data directory for a bench run; its log is discarded.
fn start() -> Server {
    start_with(&[])
}

/// `start`, with more `baton serve` flags.
fn start_with(extra: &[&str]) -> Server {
    spawn_baton(Serve::new().args(extra).log(ServerLog::Discard))
        .unwrap_or_else(|error| panic!("baton serve did not start: {error}"))
}

fn client(url: &str, args: &[&str]) -> Output {
    Command::new(BATON)
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .unwrap()
}

/// Runs `baton bench <args> --json` and parses its one JSON object.
fn bench(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = client(&server.url, &all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn count(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap()
}

fn assert_percentiles_ordered(percentiles: &Value) {
    let ms = |key: &str| percentiles[key].as_f64().unwrap();
    assert!(0.0 < ms("p50_ms"), "{percentiles}");
    assert!(ms("p50_ms") <= ms("p90_ms"), "{percentiles}");
    assert!(ms("p90_ms") <= ms("p99_ms"), "{percentiles}");
    assert!(ms("p99_ms") <= ms("p999_ms"), "{percentiles}");
    assert!(ms("p999_ms") <= ms("max_ms"), "{percentiles}");
}

fn assert_no_queue_left(server: &Server) {
    let output = client(&server.url, &["queue", "list"]);
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(list["queues"], serde_json::json!([]));
}

/// `GET /v1/server` of the server at `url` (`http://host:port`).
fn server_info(url: &str) -> Value {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /v1/server HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap()
}

fn e2e_moves_every_message_once(api: &str) {
    e2e_moves_every_message_once_on(&start(), api, &[]);
}

fn e2e_moves_every_message_once_on(server: &Server, api: &str, extra: &[&str]) {
    let mut args = vec!["e2e", "--api", api];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--producers",
        "2",
        "--consumers",
        "2",
        "--batch",
        "10",
        "--messages",
        "2000",
        "--duration-s",
        "20",
    ]);
    let report = bench(server, &args);
    assert_eq!(report["workload"], "e2e");
    assert_eq!(report["api"], api);
    assert_eq!(count(&report, "sent"), 2000, "{report}");
    assert_eq!(count(&report, "received"), 2000, "{report}");
    assert_eq!(count(&report, "acked"), 2000, "{report}");
    assert_eq!(count(&report, "errors"), 0, "{report}");
    assert_eq!(report["latency"]["count"], 2000, "{report}");
    assert_percentiles_ordered(&report["latency"]);
    assert_percentiles_ordered(&report["send_call"]);
    assert_eq!(report["latency_from_schedule"], Value::Null);
    assert!(0.0 < report["elapsed_s"].as_f64().unwrap());
    assert_no_queue_left(server);
}

#[test]
fn e2e_over_the_native_api_moves_every_message_once() {
    e2e_moves_every_message_once("native");
}

#[test]
fn e2e_over_the_sqs_api_moves_every_message_once() {
    e2e_moves_every_message_once("sqs");
}

#[test]
fn e2e_over_the_wire_protocol_upgrades_on_the_http_port_by_default() {
    let server = start();
    // `baton serve` has no dedicated wire port unless asked.
    let info = server_info(&server.url);
    assert_eq!(info["wire_path"], "/v1/wire", "{info}");
    assert!(info.get("wire_listen").is_none(), "{info}");
    e2e_moves_every_message_once_on(&server, "wire", &[]);
}

#[test]
fn e2e_over_a_dedicated_wire_port_when_asked() {
    let server = start_with(&["--wire-listen", "127.0.0.1:0"]);
    let info = server_info(&server.url);
    let wire = info["wire_listen"].as_str().unwrap().to_string();
    assert_ne!(format!("http://{wire}"), server.url);
    e2e_moves_every_message_once_on(&server, "wire", &["--wire-addr", &wire]);
    let output = client(&server.url, &["bench", "e2e", "--wire-addr", &wire]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--wire-addr is for --api wire"), "{stderr}");
}

#[test]
fn e2e_with_a_rate_also_measures_from_the_schedule() {
    let server = start();
    let report = bench(
        &server,
        &[
            "e2e",
            "--rate",
            "1000",
            "--inflight",
            "4",
            "--messages",
            "300",
            "--duration-s",
            "20",
        ],
    );
    assert_eq!(count(&report, "acked"), 300, "{report}");
    assert_eq!(count(&report, "errors"), 0, "{report}");
    assert_percentiles_ordered(&report["latency"]);
    assert_percentiles_ordered(&report["latency_from_schedule"]);
}

#[test]
fn produce_only_sends_and_consume_drains_a_prefilled_queue() {
    let server = start();
    for api in ["native", "sqs"] {
        let produced = bench(
            &server,
            &[
                "produce",
                "--api",
                api,
                "--batch",
                "10",
                "--messages",
                "300",
            ],
        );
        assert_eq!(count(&produced, "sent"), 300, "{produced}");
        assert_eq!(count(&produced, "received"), 0, "{produced}");
        assert_eq!(count(&produced, "errors"), 0, "{produced}");
        assert_eq!(produced["latency"], Value::Null);
        assert_percentiles_ordered(&produced["send_call"]);

        let consumed = bench(
            &server,
            &[
                "consume",
                "--api",
                api,
                "--consumers",
                "2",
                "--batch",
                "10",
                "--messages",
                "300",
            ],
        );
        assert_eq!(count(&consumed, "prefilled"), 300, "{consumed}");
        assert_eq!(count(&consumed, "sent"), 0, "{consumed}");
        assert_eq!(count(&consumed, "received"), 300, "{consumed}");
        assert_eq!(count(&consumed, "acked"), 300, "{consumed}");
        assert_eq!(count(&consumed, "errors"), 0, "{consumed}");
    }
    assert_no_queue_left(&server);
}

#[test]
fn named_queue_is_created_and_kept() {
    let server = start();
    let report = bench(
        &server,
        &["produce", "--queue", "bench-kept", "--messages", "5"],
    );
    assert_eq!(report["queue"], "bench-kept");
    let output = client(&server.url, &["queue", "show", "bench-kept"]);
    let queue: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(queue["stats"]["visible"], 5, "{queue}");
}

#[test]
fn out_of_range_options_are_refused_before_any_request() {
    let output = client(
        "http://127.0.0.1:1",
        &["bench", "e2e", "--api", "sqs", "--batch", "11"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--batch must be 1..=10"), "{stderr}");
}

/// Runs `baton bench e2e --target <target>` (no Baton server) and checks that it moved every
/// message exactly once. The peers run on their standard ports on this machine and in CI.
fn peer_e2e_moves_every_message_once(target: &str, extra: &[&str], api: &str) {
    let mut args = vec![
        "bench",
        "e2e",
        "--target",
        target,
        "--producers",
        "1",
        "--consumers",
        "1",
        "--batch",
        "10",
        "--messages",
        "500",
        "--duration-s",
        "20",
        "--json",
    ];
    args.extend_from_slice(extra);
    let output = client("http://127.0.0.1:1", &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["target"], target, "{report}");
    assert_eq!(report["api"], api, "{report}");
    assert_eq!(count(&report, "sent"), 500, "{report}");
    assert_eq!(count(&report, "received"), 500, "{report}");
    assert_eq!(count(&report, "acked"), 500, "{report}");
    assert_eq!(count(&report, "errors"), 0, "{report}");
    assert_eq!(report["latency"]["count"], 500, "{report}");
    assert_percentiles_ordered(&report["latency"]);
    assert_percentiles_ordered(&report["send_call"]);
}

#[test]
fn e2e_against_redis_streams_moves_every_message_once() {
    peer_e2e_moves_every_message_once("redis", &[], "streams");
}

#[test]
fn e2e_against_rabbitmq_moves_every_message_once() {
    peer_e2e_moves_every_message_once("rabbitmq", &[], "amqp-classic");
    peer_e2e_moves_every_message_once("rabbitmq", &["--rabbitmq-quorum"], "amqp-quorum");
}

#[test]
fn e2e_against_nats_jetstream_moves_every_message_once() {
    peer_e2e_moves_every_message_once("nats", &[], "jetstream");
}

#[test]
fn peer_options_are_refused_where_they_do_not_apply() {
    let cases: [(&[&str], &str); 4] = [
        (&["--target", "redis", "--api", "sqs"], "--api is only for"),
        (&["--target", "nats", "--queue", "q"], "--queue is only for"),
        (&["--rabbitmq-quorum"], "--rabbitmq-quorum is only for"),
        (
            &["--target", "redis", "--target-url", "http://127.0.0.1:6379"],
            "--target-url must start with redis://",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["bench", "e2e"];
        args.extend_from_slice(extra);
        let output = client("http://127.0.0.1:1", &args);
        assert!(!output.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
}
