//! "10,000 idle connections do not stop new ones from being served", under the real binary
//! (a process of its own, so the test's 10,000 sockets and the server's 10,000 fit the file
//! descriptor limit of each).
//!
//! The server is configured to keep them all (`max_connections_per_ip` above 10,000 and a
//! long `header_read_timeout_ms`, since they all come from 127.0.0.1 and say nothing): the
//! worst case for it. Meanwhile a new client sends and receives as usual, within a bound.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::Server;

const IDLE: usize = 10_000;

#[tokio::test]
async fn ten_thousand_idle_connections_do_not_stop_new_ones_from_being_served() {
    let _alone = crate::common::run_alone().await;
    let server = Server::start_with(&[
        ("BATON_ENGINE", "memory"),
        ("BATON_MAX_CONNECTIONS", "20000"),
        ("BATON_MAX_CONNECTIONS_PER_IP", "20000"),
        ("BATON_HEADER_READ_TIMEOUT_MS", "600000"),
    ]);
    let address = server.url.trim_start_matches("http://").to_string();
    let started = Instant::now();
    let idle = tokio::task::spawn_blocking(move || {
        let mut idle = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            idle.push(TcpStream::connect(&address).unwrap());
        }
        idle
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "connected in {:?}",
        started.elapsed()
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = &server.url;
    // Accepted, every one (they are counted as the server accepts them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let open = loop {
        let text = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let open: usize = text
            .lines()
            .find_map(|line| line.strip_prefix("baton_connections_open "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        if open > IDLE || Instant::now() > deadline {
            break open;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(open > IDLE, "{open} connections open");

    // New connections are served, each request well within a second.
    for round in 0..20 {
        let fresh = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let asked = Instant::now();
        let health = fresh.get(format!("{url}/health")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "round {round}: {:?}",
            asked.elapsed()
        );
    }
    let created = client
        .put(format!("{url}/v1/queues/busy"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let sent = client
        .post(format!("{url}/v1/queues/busy/messages"))
        .json(&json!({"messages": [{"body": "still served"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::OK);
    let received: Value = client
        .post(format!("{url}/v1/queues/busy/receive"))
        .json(&json!({"max": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["messages"][0]["body"], "still served");
    drop(idle);
    server.stop();
}

/// `baton serve`'s TLS flags reach the configuration, and a start with unusable TLS settings
/// is refused naming the setting and the file.
#[test]
fn tls_flags_that_cannot_be_used_refuse_the_start_precisely() {
    use crate::common::{spawn_baton, temp_dir, Serve, ServerLog};

    let dir = temp_dir("tls-flags");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let cert_arg = cert.to_string_lossy().into_owned();
    for (args, says) in [
        (
            vec!["--tls-cert-file", cert_arg.as_str()],
            "`tls_key_file` is not set",
        ),
        (
            vec![
                "--tls-cert-file",
                cert_arg.as_str(),
                "--tls-key-file",
                cert_arg.as_str(),
            ],
            "`tls_cert_file` cannot be used",
        ),
    ] {
        let refused = spawn_baton(Serve::new().args(&args).log(ServerLog::Capture));
        let Err(stderr) = refused else {
            panic!("{args:?} started");
        };
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(stderr.contains(&cert_arg) || args.len() == 2, "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
