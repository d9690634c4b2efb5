//! The audit trail end to end: `manage` and `admin` actions and refused requests each leave
//! one structured log line (target `baton::audit`) naming the key, action, resource, outcome
//! and client address, and count in `baton_audit_events_total`; ordinary sends and receives
//! leave none.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::auth::{as_key, create_key, with_admin_key, ADMIN};

/// The audit lines of the whole test process, as JSON objects.
fn audit_lines() -> &'static Arc<Mutex<Vec<u8>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || Sink(sink.clone()))
            .with_max_level(tracing::Level::INFO)
            .finish();
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = subscriber.with(
            tracing_subscriber::filter::Targets::new()
                .with_target("baton::audit", tracing::Level::INFO),
        );
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test sets a global subscriber");
        lines
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The audit lines whose key is `key`, or (for `None`) those without a key on `path`.
fn lines_of(key: Option<&str>, path: &str) -> Vec<Value> {
    let bytes = audit_lines().lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|line| line["fields"].clone())
        .filter(|fields| match key {
            Some(key) => fields["key"] == key,
            None => fields["key"] == "-" && fields["path"] == path,
        })
        .collect()
}

#[tokio::test]
async fn manage_actions_and_refusals_are_audited() {
    audit_lines();
    let server = with_admin_key().await;
    let ops = create_key(
        &server,
        "audit-ops",
        json!([{"actions": ["manage", "send", "receive"], "resources": ["queue:audited*"]}]),
    )
    .await;
    let reader = create_key(
        &server,
        "audit-reader",
        json!([{"actions": ["receive"], "resources": ["queue:audited*"]}]),
    )
    .await;
    let (status, _) = as_key(&server, &ops, Method::PUT, "/v1/queues/audited-q", None).await;
    assert_eq!(status, StatusCode::CREATED);
    let send = json!({"messages": [{"body": "x"}]});
    let path = "/v1/queues/audited-q/messages";
    let (status, _) = as_key(&server, &ops, Method::POST, path, Some(send.clone())).await;
    assert!(status.is_success());
    let receive = json!({"max": 1});
    let receive_path = "/v1/queues/audited-q/receive";
    let (status, _) = as_key(&server, &reader, Method::POST, receive_path, Some(receive)).await;
    assert!(status.is_success());
    let (status, _) = as_key(
        &server,
        &reader,
        Method::DELETE,
        "/v1/queues/audited-q",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = as_key(&server, &reader, Method::POST, path, Some(send)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let anonymous = server
        .http
        .get(format!("{}/v1/queues/audited-anonymous", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The operator's create is audited; its send is not (neither manage nor refused).
    let ops_lines = lines_of(Some("audit-ops"), "");
    assert_eq!(ops_lines.len(), 1, "{ops_lines:?}");
    let created = &ops_lines[0];
    assert_eq!(created["action"], "manage");
    assert_eq!(created["resource"], "queue:audited-q");
    assert_eq!(created["outcome"], "ok");
    assert_eq!(created["status"], 201);
    assert_eq!(created["client"], "127.0.0.1");
    assert_eq!(created["method"], "PUT");
    assert_eq!(created["path"], "/v1/queues/audited-q");
    // The reader's two refusals, not its receive.
    let reader_lines = lines_of(Some("audit-reader"), "");
    let refusals: Vec<(&str, &str)> = reader_lines
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap(),
                l["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [("manage", "forbidden"), ("send", "forbidden")],
        "{reader_lines:?}"
    );
    let anonymous = lines_of(None, "/v1/queues/audited-anonymous");
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");
    assert_eq!(anonymous[0]["outcome"], "unauthorized");
    assert_eq!(anonymous[0]["status"], 401);
    // No line holds a token.
    let all = String::from_utf8(audit_lines().lock().unwrap().clone()).unwrap();
    assert!(!all.contains(&ops) && !all.contains(&reader) && !all.contains(ADMIN));

    let (status, metrics) = as_key(&server, ADMIN, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = metrics.as_str().unwrap().to_string();
    for line in [
        "baton_audit_events_total{action=\"manage\",outcome=\"ok\"}",
        "baton_audit_events_total{action=\"manage\",outcome=\"forbidden\"} 1",
        "baton_audit_events_total{action=\"send\",outcome=\"forbidden\"} 1",
        "baton_audit_events_total{action=\"any\",outcome=\"unauthorized\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}
