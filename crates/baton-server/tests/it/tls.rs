//! TLS end to end (`tls_cert_file`, `tls_key_file`, `tls_client_ca_file`): HTTP/1.1 and
//! HTTP/2 chosen by ALPN, the wire protocol on both ports, client certificates, and
//! certificate reloads (by polling and by SIGHUP) under load. Certificates are made here with
//! rcgen: a CA, and leaf certificates it signs for `localhost` and 127.0.0.1.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_sdk::proto::{ReceiveRequest, SendMessage};
use baton_sdk::wire::{WireClient, WireTls};
use reqwest::{StatusCode, Version};
use serde_json::json;

use crate::harness::TestServer;

/// The CA and leaf certificates (shared with the CLI's tests).
#[path = "../support/certs.rs"]
mod certs;
pub use certs::{Ca, Leaf};

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("baton-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `path` whole (a temporary file renamed over it), as certificate tools do.
fn replace(path: &Path, text: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// The server's certificate and key files in `dir`.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn write(dir: &Path, leaf: &Leaf) -> TlsFiles {
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        files.replace(leaf);
        files
    }

    fn replace(&self, leaf: &Leaf) {
        replace(&self.cert, &leaf.cert);
        replace(&self.key, &leaf.key);
    }
}

/// A server with TLS from `files`, plus `adjust` for the rest of the configuration.
pub async fn tls_server(
    files: &TlsFiles,
    adjust: impl FnOnce(&mut baton_server::ServerConfig),
) -> TestServer {
    let (cert, key) = (files.cert.clone(), files.key.clone());
    TestServer::options()
        .config(move |config| {
            config.tls_cert_file = Some(cert);
            config.tls_key_file = Some(key);
            adjust(config);
        })
        .start()
        .await
}

/// `https://127.0.0.1:<port>` of a server started by the harness (which names it http://).
pub fn https_base(server: &TestServer) -> String {
    server.base.replacen("http://", "https://", 1)
}

/// A client trusting only the CAs given (and presenting `identity`, if any).
fn client(cas: &[&Ca], identity: Option<&Leaf>, version: Option<Version>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .no_proxy()
        .timeout(Duration::from_secs(10));
    for ca in cas {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap());
    }
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder = match version {
        Some(Version::HTTP_11) => builder.http1_only(),
        Some(Version::HTTP_2) => builder.http2_prior_knowledge(),
        _ => builder,
    };
    builder.build().unwrap()
}

#[tokio::test]
async fn https_serves_http1_and_http2_chosen_by_alpn() {
    let dir = temp_dir("tls-alpn");
    let ca = Ca::new("alpn test CA");
    let files = TlsFiles::write(&dir, &ca.leaf("server"));
    let server = tls_server(&files, |_| {}).await;
    let base = https_base(&server);

    for (version, expected) in [
        (Some(Version::HTTP_11), Version::HTTP_11),
        (Some(Version::HTTP_2), Version::HTTP_2),
        // Offering both, the server prefers HTTP/2.
        (None, Version::HTTP_2),
    ] {
        let client = client(&[&ca], None, version);
        let queue = format!(
            "alpn-{}",
            u8::from(version.is_some()) + u8::from(expected == Version::HTTP_2)
        );
        let created = client
            .put(format!("{base}/v1/queues/{queue}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.version(), expected);
        assert!(created.status().is_success(), "{}", created.status());
        let sent = client
            .post(format!("{base}/v1/queues/{queue}/messages"))
            .json(&json!({"messages": [{"body": "over tls"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::OK);
        let received: serde_json::Value = client
            .post(format!("{base}/v1/queues/{queue}/receive"))
            .json(&json!({"max": 1}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(received["messages"][0]["body"], "over tls", "{received}");
    }

    // Plain HTTP to the TLS port gets no answer: the bytes are no TLS handshake.
    let plain = server
        .http
        .get(format!("{}/health", server.base))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // A client that does not trust the server's CA refuses it.
    let other = Ca::new("another CA");
    let untrusted = client(&[&other], None, None)
        .get(format!("{base}/health"))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
    server.shutdown().await;
}

fn message(body: &str) -> SendMessage {
    SendMessage {
        body: body.to_string(),
        ..SendMessage::default()
    }
}

async fn wire_round_trip(wire: &WireClient, queue: &str) {
    wire.send(queue, vec![message("framed over tls")])
        .await
        .unwrap();
    let request = ReceiveRequest {
        max: Some(1),
        wait_ms: Some(1_000),
        visibility_timeout_ms: None,
    };
    let received = wire.receive(queue, &request).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, "framed over tls");
    wire.ack(queue, vec![received[0].receipt.clone()])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_wire_protocol_runs_over_tls_on_both_ports() {
    let dir = temp_dir("tls-wire");
    let ca = Ca::new("wire test CA");
    let files = TlsFiles::write(&dir, &ca.leaf("server"));
    let server = tls_server(&files, |_| {}).await;
    let base = https_base(&server);
    let http = client(&[&ca], None, None);
    let created = http
        .put(format!("{base}/v1/queues/framed"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());

    let tls = WireTls::with_root_ca_pem(ca.pem.as_bytes()).unwrap();
    let upgraded = WireClient::connect_tls(&base, &tls).await.unwrap();
    wire_round_trip(&upgraded, "framed").await;
    let dedicated = WireClient::connect_dedicated_tls(&server.wire.to_string(), &tls)
        .await
        .unwrap();
    wire_round_trip(&dedicated, "framed").await;
    // Pipelined calls on one TLS connection, more than one write's worth.
    let sends = (0..200).map(|i| {
        let wire = dedicated.clone();
        async move { wire.send("framed", vec![message(&format!("m{i}"))]).await }
    });
    for sent in futures::future::join_all(sends).await {
        sent.unwrap();
    }

    // Without TLS, neither port talks to a plain client.
    assert!(WireClient::connect(&server.base).await.is_err());
    assert!(WireClient::connect_dedicated(server.wire).await.is_err());
    // A CA the server's certificate is not from is refused by the client.
    let other = WireTls::with_root_ca_pem(Ca::new("other").pem.as_bytes()).unwrap();
    assert!(WireClient::connect_tls(&base, &other).await.is_err());
    drop((upgraded, dedicated));
    server.shutdown().await;
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let dir = temp_dir("tls-mtls");
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let files = TlsFiles::write(&dir, &server_ca.leaf("server"));
    let ca_file = dir.join("clients.pem");
    std::fs::write(&ca_file, &client_ca.pem).unwrap();
    let server = tls_server(&files, |config| {
        config.tls_client_ca_file = Some(ca_file);
    })
    .await;
    let base = https_base(&server);
    let health = format!("{base}/health");

    let service = client_ca.leaf("orders-service");
    let with_cert = client(&[&server_ca], Some(&service), None);
    let answer = with_cert.get(&health).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let http1 = client(&[&server_ca], Some(&service), Some(Version::HTTP_11));
    assert_eq!(
        http1.get(&health).send().await.unwrap().status(),
        StatusCode::OK
    );

    let without = client(&[&server_ca], None, None).get(&health).send().await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    let stranger = Ca::new("someone else's CA").leaf("intruder");
    let refused = client(&[&server_ca], Some(&stranger), None)
        .get(&health)
        .send()
        .await;
    assert!(refused.is_err(), "a certificate of another CA: {refused:?}");

    let wire_tls = WireTls::with_root_ca_pem(server_ca.pem.as_bytes()).unwrap();
    let wire_refused = WireClient::connect_dedicated_tls(&server.wire.to_string(), &wire_tls).await;
    assert!(wire_refused.is_err(), "wire without a client certificate");
    let wire_tls = wire_tls
        .with_client_cert_pem(service.cert.as_bytes(), service.key.as_bytes())
        .unwrap();
    let created = with_cert
        .put(format!("{base}/v1/queues/mtls"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let wire = WireClient::connect_dedicated_tls(&server.wire.to_string(), &wire_tls)
        .await
        .unwrap();
    wire_round_trip(&wire, "mtls").await;
    let upgraded = WireClient::connect_tls(&base, &wire_tls).await.unwrap();
    wire_round_trip(&upgraded, "mtls").await;
    drop((wire, upgraded));
    server.shutdown().await;
}

/// Polls until a client trusting only `ca` gets an answer from `base` (the server presents a
/// certificate of `ca`); false after `within`.
async fn served_by(base: &str, ca: &Ca, within: Duration) -> bool {
    let only = client(&[ca], None, Some(Version::HTTP_11));
    let deadline = Instant::now() + within;
    loop {
        if only.get(format!("{base}/health")).send().await.is_ok() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn certificates_reload_under_load_without_dropped_requests() {
    let dir = temp_dir("tls-reload");
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let files = TlsFiles::write(&dir, &old_ca.leaf("old"));
    let server = tls_server(&files, |config| {
        config.tls_reload_interval_ms = 100;
    })
    .await;
    let base = https_base(&server);
    assert!(served_by(&base, &old_ca, Duration::from_secs(5)).await);

    // Clients trusting both CAs: one keeps its connections (HTTP/2 and HTTP/1.1), one makes a
    // new connection, and so a new handshake, for every request.
    let kept_h2 = client(&[&old_ca, &new_ca], None, Some(Version::HTTP_2));
    let kept_h1 = client(&[&old_ca, &new_ca], None, Some(Version::HTTP_11));
    let fresh = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(old_ca.pem.as_bytes()).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(new_ca.pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for client in [kept_h2, kept_h1, fresh.clone(), fresh] {
        let (done, ok, url) = (done.clone(), ok.clone(), format!("{base}/health"));
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            // Bounded: at most 3000 requests each, and stopped once the test is done.
            for _ in 0..3000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                match client.get(&url).send().await {
                    Ok(answer) if answer.status() == StatusCode::OK => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(answer) => failures.push(format!("status {}", answer.status())),
                    Err(error) => failures.push(format!("{error:?}")),
                }
            }
            failures
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    files.replace(&new_ca.leaf("new"));
    assert!(
        served_by(&base, &new_ca, Duration::from_secs(10)).await,
        "the new certificate is served after the reload"
    );
    // A while more of load on the new certificate, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::SeqCst);
    for task in load {
        let failures = task.await.unwrap();
        assert!(
            failures.is_empty(),
            "requests failed during the reload: {failures:?}"
        );
    }
    assert!(ok.load(Ordering::Relaxed) > 50, "the load ran");
    assert!(
        !served_by(&base, &old_ca, Duration::ZERO).await,
        "the old one is gone"
    );

    // A bad file keeps the certificate in use.
    replace(
        &files.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(served_by(&base, &new_ca, Duration::ZERO).await);
    server.shutdown().await;
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let dir = temp_dir("tls-sighup");
    let (old_ca, new_ca) = (Ca::new("old CA"), Ca::new("new CA"));
    let files = TlsFiles::write(&dir, &old_ca.leaf("old"));
    // No polling: only SIGHUP reloads.
    let server = tls_server(&files, |config| {
        config.tls_reload_interval_ms = 0;
    })
    .await;
    let base = https_base(&server);
    assert!(served_by(&base, &old_ca, Duration::from_secs(5)).await);
    // The reload task listens for SIGHUP from its start; give it a moment to be scheduled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    files.replace(&new_ca.leaf("new"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !served_by(&base, &new_ca, Duration::ZERO).await,
        "not reloaded without a signal"
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(served_by(&base, &new_ca, Duration::from_secs(5)).await);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_over_tls_ends_long_polls_on_both_protocols_and_stops_the_server() {
    let dir = temp_dir("tls-shutdown");
    let ca = Ca::new("shutdown CA");
    let files = TlsFiles::write(&dir, &ca.leaf("server"));
    let mut server = tls_server(&files, |_| {}).await;
    let base = https_base(&server);
    let h1 = client(&[&ca], None, Some(Version::HTTP_11));
    let created = h1
        .put(format!("{base}/v1/queues/waiting"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    let trigger = server.shutdown_trigger();
    let mut waiters = Vec::new();
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let http = client(&[&ca], None, Some(version));
        let url = format!("{base}/v1/queues/waiting/receive");
        waiters.push(tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"wait_ms": 20000}))
                .send()
                .await
                .unwrap();
            (
                response.version(),
                response.status(),
                response.json::<serde_json::Value>().await.unwrap(),
            )
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    trigger.send(()).unwrap();
    for (waiter, expected) in waiters.into_iter().zip([Version::HTTP_11, Version::HTTP_2]) {
        let (version, status, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((version, status), (expected, StatusCode::OK));
        assert_eq!(body["messages"], json!([]));
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    server.shutdown().await;
}
