//! Connection-level limits (docs/security.md, "Connection limits"), each reached on purpose:
//! the header read timeout (a slow-header client, a silent one, a TLS handshake that never
//! comes), the idle timeouts, the header size and count (431), and the connection caps in
//! total and per client address (closed at once). Raw sockets, so the test sees exactly what
//! the server does to the connection.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Version};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::TestServer;

fn addr(server: &TestServer) -> SocketAddr {
    server.base.trim_start_matches("http://").parse().unwrap()
}

/// Connects to `to` from the loopback address `from` (127.0.0.0/8 all reach loopback).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (or `within` passes: then `None`); the bytes
/// read and how long it took.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((all, started.elapsed())),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
        }
    }
}

/// One whole HTTP/1.1 request on `stream`; the head of the answer.
async fn request(stream: &mut TcpStream, path: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: baton\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_slow_header_client_is_cut_off_and_others_are_served() {
    let server = TestServer::options()
        .config(|config| {
            config.header_read_timeout_ms = 400;
            config.idle_timeout_ms = 800;
        })
        .start()
        .await;
    let to = addr(&server);

    // Sends its head one byte every 50 ms: it would take seconds, the server allows 400 ms.
    let mut slow = TcpStream::connect(to).await.unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        for byte in b"GET /health HTTP/1.1\r\nhost: baton\r\nx-slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let closed = until_closed(&mut slow, Duration::from_secs(5)).await;
        (started.elapsed(), closed)
    });
    // Meanwhile, others are served.
    for _ in 0..5 {
        assert_eq!(server.get("/health").await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (elapsed, closed) = trickle.await.unwrap();
    assert!(closed.is_some(), "the slow client was cut off");
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
        "cut off after {elapsed:?}"
    );

    // A client that never says anything is closed too.
    let mut silent = TcpStream::connect(to).await.unwrap();
    let (bytes, after) = until_closed(&mut silent, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(bytes.is_empty());
    assert!(after >= Duration::from_millis(350), "{after:?}");

    // HTTP/1.1 keep-alive: a connection idle for idle_timeout_ms is closed.
    let mut kept = TcpStream::connect(to).await.unwrap();
    assert!(request(&mut kept, "/health")
        .await
        .starts_with("HTTP/1.1 200"));
    let (_, after) = until_closed(&mut kept, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        after >= Duration::from_millis(750) && after < Duration::from_secs(3),
        "{after:?}"
    );

    // A request in flight longer than both timeouts (a long poll of 1.5 s) is answered.
    server.create_queue("slow", json!({})).await;
    let mut polling = TcpStream::connect(to).await.unwrap();
    let body = r#"{"max": 1, "wait_ms": 1500}"#;
    let head = format!(
        "POST /v1/queues/slow/receive HTTP/1.1\r\nhost: baton\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    polling.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), polling.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(1400));
    server.shutdown().await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    let dir = crate::tls::temp_dir("limits-handshake");
    let ca = crate::tls::Ca::new("handshake CA");
    let files = crate::tls::TlsFiles::write(&dir, &ca.leaf("server"));
    let server = crate::tls::tls_server(&files, |config| config.header_read_timeout_ms = 400).await;
    for to in [addr(&server), server.wire] {
        let mut silent = TcpStream::connect(to).await.unwrap();
        let (_, after) = until_closed(&mut silent, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(after >= Duration::from_millis(350), "{to}: {after:?}");
    }
    server.shutdown().await;
}

/// An HTTP/2 connection without TLS (prior knowledge): the preface and an empty SETTINGS.
async fn http2_connection(to: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(to).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    stream
}

/// Whether `bytes` (server frames) hold a GOAWAY frame.
fn has_goaway(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        if rest[3] == 0x7 {
            return true;
        }
        rest = rest.get(9 + len..).unwrap_or_default();
    }
    false
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_not_one_with_an_open_stream() {
    let server = TestServer::options()
        .config(|config| {
            config.idle_timeout_ms = 400;
            // How long a client that does not acknowledge the GOAWAY's ping (this raw one)
            // is waited for before it is dropped.
            config.header_read_timeout_ms = 500;
        })
        .start()
        .await;
    let to = addr(&server);
    let mut idle = http2_connection(to).await;
    let (bytes, after) = until_closed(&mut idle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(has_goaway(&bytes), "closed with GOAWAY");
    assert!(
        after >= Duration::from_millis(350) && after < Duration::from_secs(3),
        "{after:?}"
    );

    // A long poll of 1.5 s keeps its stream open past the idle timeout, and is answered.
    server.create_queue("idle", json!({})).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let started = Instant::now();
    let answer = h2
        .post(format!("{}/v1/queues/idle/receive", server.base))
        .json(&json!({"max": 1, "wait_ms": 1500}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), Version::HTTP_2);
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    server.shutdown().await;
}

#[tokio::test]
async fn too_large_or_too_many_headers_answer_431() {
    let server = TestServer::options()
        .config(|config| {
            config.max_header_bytes = 2048;
            config.max_header_count = 10;
        })
        .start()
        .await;
    let url = format!("{}/health", server.base);
    let h1 = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .build()
        .unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    for (client, version) in [(&h1, Version::HTTP_11), (&h2, Version::HTTP_2)] {
        let fine = client.get(&url).send().await.unwrap();
        assert_eq!(fine.status(), StatusCode::OK, "{version:?}");
        let big = client
            .get(&url)
            .header("x-big", "b".repeat(4096))
            .send()
            .await
            .unwrap();
        assert_eq!(
            big.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{version:?}"
        );
        let mut many = client.get(&url);
        for i in 0..20 {
            many = many.header(format!("x-h{i}"), "v");
        }
        let many = many.send().await.unwrap();
        assert_eq!(
            many.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{version:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limits_are_closed_at_once() {
    let server = TestServer::options()
        .config(|config| {
            config.max_connections = 5;
            config.max_connections_per_ip = 3;
        })
        .start()
        .await;
    let to = addr(&server);
    // Three connections from 127.0.0.1, each served a request and kept open.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.1", to).await;
        assert!(request(&mut stream, "/health")
            .await
            .starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    // A fourth from the same address is closed before anything is read or written.
    let mut fourth = connect_from("127.0.0.1", to).await;
    let (bytes, after) = until_closed(&mut fourth, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        bytes.is_empty() && after < Duration::from_secs(1),
        "{after:?}"
    );
    // Other addresses are served up to the total.
    for from in ["127.0.0.2", "127.0.0.3"] {
        let mut stream = connect_from(from, to).await;
        assert!(request(&mut stream, "/health")
            .await
            .starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut sixth = connect_from("127.0.0.4", to).await;
    assert!(until_closed(&mut sixth, Duration::from_secs(2))
        .await
        .is_some());
    // The wire port shares the count.
    let mut wire = connect_from("127.0.0.4", server.wire).await;
    assert!(until_closed(&mut wire, Duration::from_secs(2))
        .await
        .is_some());

    // A closed connection gives its place back.
    held.remove(0);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let mut stream = connect_from("127.0.0.1", to).await;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: baton\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        if let Some((bytes, _)) = until_closed(&mut stream, Duration::from_secs(5)).await {
            if !bytes.is_empty() {
                break String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        assert!(Instant::now() < deadline, "no place given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(text.contains("baton_connections_open 5"), "{text}");
    // Retries above may have been refused too while the place was being given back.
    let refused = |limit: &str| -> u64 {
        let prefix = format!("baton_connections_refused_total{{limit=\"{limit}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(refused("max_connections_per_ip") >= 1);
    assert!(refused("max_connections") >= 2);
    drop(held);
    server.shutdown().await;
}
