//! `baton key ...` and keys around `baton serve`: the first admin key offline and from
//! `BATON_ADMIN_KEY`, keys over the API with `--allow`, the client commands' `--key`, and the
//! refusal to listen beyond loopback without keys (`--insecure` overrides it).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{baton, read_on_thread, temp_dir, wait_with_timeout, Server, BATON};

const TOKEN: &str = "cli-test-admin-key-0123456789abcdefghijkl";

#[test]
fn an_offline_admin_key_then_keys_over_the_api() {
    let dir = temp_dir("keys");
    let dir_arg = dir.to_str().unwrap();
    let created = baton(
        &[
            "key",
            "create",
            "--data-dir",
            dir_arg,
            "--name",
            "admin",
            "--admin",
        ],
        "",
    );
    let created = created.assert_success().json();
    let admin = created["key"].as_str().unwrap().to_string();
    assert!(admin.starts_with("bk_"), "{created}");
    assert_eq!(created["permissions"][0]["resources"][0], "*");
    let listed = baton(&["key", "list", "--data-dir", dir_arg], "")
        .assert_success()
        .json();
    assert_eq!(listed["keys"][0]["name"], "admin");
    assert!(
        !listed.to_string().contains(&admin),
        "no secret in a listing"
    );

    let server = Server::start_in(&dir, &[], &[]);
    keys_over_the_api(&server, &admin);
    // The data directory is locked by the running broker: an offline change is refused.
    baton(
        &[
            "key",
            "create",
            "--data-dir",
            dir_arg,
            "--name",
            "x",
            "--admin",
        ],
        "",
    )
    .assert_error(1, "stop it first");
    // Argument mistakes are refused before anything is asked.
    server
        .run(&["key", "create", "--name", "x", "--allow", "fly:queue:x"])
        .assert_refused("unknown action");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn baton_admin_key_installs_the_admin_key_at_start() {
    let server = Server::start_with(&[("BATON_ADMIN_KEY", TOKEN)]);
    server
        .run(&["queue", "list"])
        .assert_error(1, "unauthorized");
    let keys = server
        .run(&["--key", TOKEN, "key", "list"])
        .assert_success()
        .json();
    assert_eq!(keys["keys"][0]["name"], "admin");
    // BATON_KEY is the environment's `--key`.
    let output = Command::new(BATON)
        .args(["--url", &server.url, "queue", "list"])
        .env("BATON_KEY", TOKEN)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn bench_signs_sqs_requests_with_a_keys_sqs_credentials() {
    let server = Server::start_with(&[("BATON_ADMIN_KEY", TOKEN)]);
    let created = server
        .run(&[
            "--key",
            TOKEN,
            "key",
            "create",
            "--name",
            "sqs-bench",
            "--sqs",
            "--allow",
            "send,receive,manage:queue:*",
        ])
        .assert_success()
        .json();
    let key = created["key"].as_str().unwrap();
    let id = created["access_key_id"].as_str().unwrap();
    let secret = created["secret_access_key"].as_str().unwrap();
    let run = "bench e2e --api sqs --batch 10 --messages 200 --duration-s 20 --json";
    let run: Vec<&str> = run.split(' ').collect();
    // Unsigned SQS requests are refused while keys exist: nothing is sent...
    let unsigned = [&["--key", key][..], &run].concat();
    let refused = server.run(&unsigned).assert_success().json();
    assert_eq!(refused["sent"], 0, "{refused}");
    assert!(refused["errors"].as_u64().unwrap() > 0, "{refused}");
    // ...and signed ones, as an AWS SDK signs them, move every message.
    let signed = [
        &["--key", key][..],
        &run,
        &["--sqs-access-key-id", id, "--sqs-secret-access-key", secret],
    ]
    .concat();
    let report = server.run(&signed).assert_success().json();
    assert_eq!(report["sent"], 200, "{report}");
    assert_eq!(report["acked"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn bench_carries_the_key_to_a_server_that_has_keys() {
    let server = Server::start_with(&[("BATON_ADMIN_KEY", TOKEN)]);
    // A small e2e run, first without the key, then with it (the global `--key` goes first).
    let run =
        "bench e2e --producers 1 --consumers 1 --batch 10 --messages 200 --duration-s 20 --json";
    let run: Vec<&str> = run.split(' ').collect();
    server.run(&run).assert_error(1, "unauthorized");
    let keyed = [&["--key", TOKEN][..], &run].concat();
    let report = server.run(&keyed).assert_success().json();
    assert_eq!(report["sent"], 200, "{report}");
    assert_eq!(report["acked"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

/// Runs `baton serve --listen 0.0.0.0:0` with `args`; returns the child and its URL on
/// 127.0.0.1.
fn serve_on_any_address(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(BATON)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .args(args)
        .env_remove("BATON_ADMIN_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    (child, format!("http://127.0.0.1:{port}"))
}

#[test]
fn listening_beyond_loopback_needs_a_key_or_insecure() {
    let dir = temp_dir("secure-default");
    let dir_arg = dir.to_str().unwrap();
    let (mut child, _) = serve_on_any_address(&["--data-dir", dir_arg]);
    let stderr = read_on_thread(child.stderr.take().unwrap());
    let status =
        wait_with_timeout(&mut child, Duration::from_secs(20)).expect("serve did not stop");
    assert_eq!(status.code(), Some(1));
    let stderr = stderr.join().unwrap();
    assert!(
        stderr.contains("no API key exists") && stderr.contains("baton key create --data-dir"),
        "{stderr}"
    );

    let (mut child, url) = serve_on_any_address(&["--data-dir", dir_arg, "--insecure"]);
    let server_ready = baton(&["--url", &url, "queue", "create", "open"], "");
    server_ready.assert_success();
    let _ = child.kill();
    let _ = child.wait();

    // With a key in the data directory the same start is fine, and checked.
    baton(
        &[
            "key",
            "create",
            "--data-dir",
            dir_arg,
            "--name",
            "admin",
            "--admin",
        ],
        "",
    )
    .assert_success();
    let (mut child, url) = serve_on_any_address(&["--data-dir", dir_arg]);
    baton(&["--url", &url, "queue", "list"], "").assert_error(1, "unauthorized");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a key with `--allow` may do, and the key commands over the API.
fn keys_over_the_api(server: &Server, admin: &str) {
    server
        .run(&["queue", "list"])
        .assert_error(1, "unauthorized");
    server
        .run(&["--key", admin, "queue", "create", "orders-eu"])
        .assert_success();
    server
        .run(&["--key", admin, "queue", "create", "payments"])
        .assert_success();
    let app = server
        .run(&[
            "--key",
            admin,
            "key",
            "create",
            "--name",
            "app",
            "--allow",
            "send,receive:queue:orders*",
        ])
        .assert_success()
        .json();
    let app = app["key"].as_str().unwrap().to_string();
    server
        .run(&["--key", &app, "send", "orders-eu", "hello"])
        .assert_success();
    server
        .run(&["--key", &app, "send", "payments", "hello"])
        .assert_error(1, "forbidden");
    let received = server
        .run(&["--key", &app, "recv", "orders-eu", "--ack"])
        .assert_success()
        .json();
    assert_eq!(received["messages"][0]["body"], "hello");
    let queues = server
        .run(&["--key", &app, "queue", "list"])
        .assert_success()
        .json();
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders-eu"]);
    server
        .run(&["--key", &app, "key", "list"])
        .assert_error(1, "forbidden");

    let keys = server
        .run(&["--key", admin, "key", "list"])
        .assert_success()
        .json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let shown = server
        .run(&["--key", admin, "key", "show", "app"])
        .assert_success()
        .json();
    assert_eq!(
        shown["permissions"][0]["actions"],
        serde_json::json!(["send", "receive"])
    );
    server
        .run(&["--key", admin, "key", "list", "--table"])
        .assert_success();
    server
        .run(&["--key", admin, "key", "revoke", "app"])
        .assert_success();
    server
        .run(&["--key", &app, "queue", "list"])
        .assert_error(1, "unauthorized");
    server
        .run(&["--key", admin, "key", "revoke", "admin"])
        .assert_error(1, "last_admin_key");
}
