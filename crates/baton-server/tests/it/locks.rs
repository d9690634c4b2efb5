//! `/v1/locks` end to end: two clients contend (one waits and gets the lock on release or on
//! expiry, with a larger token), renew and release rules, listing, bad input, and tokens that
//! keep increasing across a crash of the durable engine.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::TestServer;

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

fn token(body: &Value) -> u64 {
    body["token"].as_u64().unwrap()
}

#[tokio::test]
async fn a_waiting_client_gets_the_lock_on_release_with_a_larger_token() {
    let server = TestServer::start().await;
    let (status, first) = server
        .put(
            "/v1/locks/jobs.cleanup",
            json!({"holder": "node-a", "ttl_ms": 30_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["holder"], "node-a");
    assert_eq!(first["name"], "jobs.cleanup");

    let (status, held) = server
        .put(
            "/v1/locks/jobs.cleanup",
            json!({"holder": "node-b", "ttl_ms": 30_000}),
        )
        .await;
    assert_eq!((status, code(&held)), (StatusCode::CONFLICT, "lock_held"));
    assert_eq!(held["lock"]["holder"], "node-a");
    assert_eq!(held["lock"]["expires_at"], first["expires_at"]);

    let waiter = {
        let base = server.base.clone();
        let http = server.http.clone();
        tokio::spawn(async move {
            let response = http
                .put(format!("{base}/v1/locks/jobs.cleanup"))
                .json(&json!({"holder": "node-b", "ttl_ms": 30_000, "wait_ms": 20_000}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    };
    // The waiter is parked until the release: the lock is still node-a's meanwhile.
    let (status, shown) = server.get("/v1/locks/jobs.cleanup").await;
    assert_eq!(
        (status, shown["holder"].as_str()),
        (StatusCode::OK, Some("node-a"))
    );
    let (status, released) = server
        .post(
            "/v1/locks/jobs.cleanup/release",
            json!({"holder": "node-a", "token": token(&first)}),
        )
        .await;
    assert_eq!(
        (status, released),
        (StatusCode::OK, json!({"released": true}))
    );

    let (status, second) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["holder"], "node-b");
    assert!(token(&second) > token(&first), "{second} after {first}");

    // The old holder's token is stale now, for renew and release alike.
    for (path, body) in [
        (
            "/v1/locks/jobs.cleanup/renew",
            json!({"holder": "node-a", "token": token(&first), "ttl_ms": 1000}),
        ),
        (
            "/v1/locks/jobs.cleanup/release",
            json!({"holder": "node-a", "token": token(&first)}),
        ),
    ] {
        let (status, body) = server.post(path, body).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::CONFLICT, "lock_token_stale"),
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_waiting_client_gets_the_lock_when_the_holder_lets_it_expire() {
    let server = TestServer::start().await;
    let (_, first) = server
        .put(
            "/v1/locks/order:42",
            json!({"holder": "worker-1", "ttl_ms": 300}),
        )
        .await;
    // worker-1 pauses past its lease and never renews.
    let (status, second) = server
        .put(
            "/v1/locks/order:42",
            json!({"holder": "worker-2", "ttl_ms": 10_000, "wait_ms": 20_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["holder"], "worker-2");
    assert!(token(&second) > token(&first));
    assert!(second["acquired_at"].as_u64() >= first["expires_at"].as_u64());
    // worker-1 comes back: its renewal is refused, the lock is not its own any more.
    let (status, body) = server
        .post(
            "/v1/locks/order:42/renew",
            json!({"holder": "worker-1", "token": token(&first), "ttl_ms": 300}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "lock_token_stale")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn renew_extends_release_is_idempotent_and_list_filters_by_prefix() {
    let server = TestServer::start().await;
    let mut tokens = Vec::new();
    for name in ["job:a", "job:b", "other"] {
        let (status, body) = server
            .put(
                &format!("/v1/locks/{name}"),
                json!({"holder": "h", "ttl_ms": 60_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        tokens.push(token(&body));
    }
    let (status, renewed) = server
        .post(
            "/v1/locks/job:a/renew",
            json!({"holder": "h", "token": tokens[0], "ttl_ms": 120_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert_eq!(token(&renewed), tokens[0]);
    assert!(
        renewed["expires_at"].as_u64().unwrap()
            >= renewed["acquired_at"].as_u64().unwrap() + 120_000
    );

    let (status, list) = server.get("/v1/locks?prefix=job:").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["job:a", "job:b"]);
    let (_, page) = server.get("/v1/locks?max=1").await;
    assert_eq!(page["locks"][0]["name"], "job:a");
    assert_eq!(page["next_after"], "job:a");
    let (_, rest) = server.get("/v1/locks?after=job:a").await;
    assert_eq!(rest["locks"].as_array().unwrap().len(), 2);

    let release = json!({"holder": "h", "token": tokens[1]});
    let (_, first) = server
        .post("/v1/locks/job:b/release", release.clone())
        .await;
    let (_, again) = server.post("/v1/locks/job:b/release", release).await;
    assert_eq!(
        (first, again),
        (json!({"released": true}), json!({"released": false}))
    );
    let (status, body) = server.get("/v1/locks/job:b").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "lock_not_found")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_lock_requests_are_precise_errors() {
    let server = TestServer::options()
        .config(|config| {
            config.lock_ttl_ms_max = 60_000;
            config.lock_name_chars_max = 10;
            config.locks_max = 1;
        })
        .start()
        .await;
    let cases = [
        (
            "/v1/locks/a%2Fb",
            json!({"holder": "h", "ttl_ms": 1000}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            "/v1/locks/elevenchars",
            json!({"holder": "h", "ttl_ms": 1000}),
            StatusCode::BAD_REQUEST,
            "invalid_name",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "h", "ttl_ms": 60_001}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "h", "ttl_ms": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "", "ttl_ms": 1000}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "h", "ttl_ms": 1000, "wait_ms": 3_600_001}),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "h", "ttl_ms": 1000, "fence": 1}),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
        (
            "/v1/locks/a",
            json!({"holder": "h"}),
            StatusCode::BAD_REQUEST,
            "malformed_request",
        ),
    ];
    for (path, body, status, expected) in cases {
        let (got, answer) = server.put(path, body.clone()).await;
        assert_eq!(
            (got, code(&answer)),
            (status, expected),
            "{path} {body}: {answer}"
        );
    }
    let (status, _) = server
        .put("/v1/locks/a", json!({"holder": "h", "ttl_ms": 1000}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = server
        .put("/v1/locks/b", json!({"holder": "h", "ttl_ms": 1000}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_locks")
    );
    let (status, body) = server
        .post(
            "/v1/locks/zz/renew",
            json!({"holder": "h", "token": 1, "ttl_ms": 1000}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "lock_not_found")
    );
    let (status, body) = server.get("/v1/locks?max=0").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn tokens_keep_increasing_across_a_crash() {
    let fs = baton_storage::SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let (_, first) = server
        .put("/v1/locks/daily", json!({"holder": "a", "ttl_ms": 60_000}))
        .await;
    server
        .post(
            "/v1/locks/daily/release",
            json!({"holder": "a", "token": token(&first)}),
        )
        .await;
    let (_, held) = server
        .put("/v1/locks/daily", json!({"holder": "b", "ttl_ms": 60_000}))
        .await;
    assert!(token(&held) > token(&first));
    server.crash(&fs).await;

    let server = TestServer::options().durable(&fs).start().await;
    crate::storage_wait_ready(&server).await;
    let (status, shown) = server.get("/v1/locks/daily").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the acknowledged hold survived: {shown}"
    );
    assert_eq!(shown, held);
    server
        .post(
            "/v1/locks/daily/release",
            json!({"holder": "b", "token": token(&held)}),
        )
        .await;
    let (_, after) = server
        .put("/v1/locks/daily", json!({"holder": "c", "ttl_ms": 60_000}))
        .await;
    assert!(token(&after) > token(&held), "{after} after {held}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_lock_guard_renews_itself_and_reports_the_loss() {
    use baton_sdk::locks::{Acquired, LockState};
    let server = TestServer::start().await;
    let client = baton_sdk::Client::new(server.base.clone());
    // A TTL long enough that a loaded machine still renews in time (renewals every second).
    let guard = client.lock("report", "worker-1", 3_000, 0).await.unwrap();
    let first_expiry = client.get_lock("report").await.unwrap().unwrap().expires_at;
    let mut state = guard.state();
    state.changed().await.unwrap();
    let renewed = match &*state.borrow() {
        LockState::Held { expires_at } => *expires_at,
        other => panic!("{other:?}"),
    };
    assert!(renewed > first_expiry, "the renewal moved the expiry");
    let other = client
        .acquire_lock("report", "worker-2", 3_000, 0)
        .await
        .unwrap();
    assert!(
        matches!(&other, Acquired::Held(held) if held.holder == "worker-1"),
        "{other:?}"
    );
    assert!(guard.is_held());

    // Someone ends the hold behind the guard's back: its next renewal is refused.
    assert!(client
        .release_lock("report", "worker-1", guard.token())
        .await
        .unwrap());
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while matches!(*state.borrow(), LockState::Held { .. }) {
            state.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    assert!(
        matches!(&*state.borrow(), LockState::Lost { reason } if reason.contains("lock_token_stale"))
    );
    assert!(!guard.is_held());
    assert!(!guard.release().await.unwrap(), "nothing left to release");

    let guard = client.lock("report", "worker-2", 10_000, 0).await.unwrap();
    let token = guard.token();
    drop(guard);
    // Dropping releases in the background.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while client.get_lock("report").await.unwrap().is_some() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let list = client.list_locks("rep", None, 10).await.unwrap();
    assert!(list.locks.is_empty());
    let again = client.lock("report", "worker-3", 10_000, 0).await.unwrap();
    assert!(again.token() > token);
    server.shutdown().await;
}

#[tokio::test]
async fn a_fenced_send_with_a_stale_token_is_refused_and_writes_nothing() {
    let server = TestServer::start().await;
    server.create_queue("invoices", json!({})).await;
    let (_, first) = server
        .put(
            "/v1/locks/billing",
            json!({"holder": "worker-1", "ttl_ms": 300}),
        )
        .await;
    // worker-1 checks that it holds the lock...
    let (status, _) = server.get("/v1/locks/billing").await;
    assert_eq!(status, StatusCode::OK);
    // ...then pauses past its lease; worker-2 takes the lock meanwhile.
    let (status, second) = server
        .put(
            "/v1/locks/billing",
            json!({"holder": "worker-2", "ttl_ms": 60_000, "wait_ms": 20_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let send = |token: u64| json!({"messages": [{"body": format!("from token {token}")}], "fence": {"lock": "billing", "token": token}});
    let (status, body) = server
        .post("/v1/queues/invoices/messages", send(token(&first)))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "fenced"),
        "{body}"
    );
    assert_eq!(
        server.stats("invoices").await["visible"],
        0,
        "nothing was written"
    );

    let (status, body) = server
        .post("/v1/queues/invoices/messages", send(token(&second)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.stats("invoices").await["visible"], 1);
    // The same through the SDK.
    let client = baton_sdk::Client::new(server.base.clone());
    let message = || baton_sdk::proto::SendMessage {
        body: "sdk".into(),
        ..Default::default()
    };
    let stale = client
        .send_fenced("invoices", vec![message()], "billing", token(&first))
        .await;
    assert_eq!(
        stale.unwrap_err().code(),
        Some(baton_sdk::proto::ErrorCode::Fenced)
    );
    client
        .send_fenced("invoices", vec![message()], "billing", token(&second))
        .await
        .unwrap();
    assert_eq!(server.stats("invoices").await["visible"], 2);

    // A lock nobody holds fences everything.
    server
        .post(
            "/v1/locks/billing/release",
            json!({"holder": "worker-2", "token": token(&second)}),
        )
        .await;
    let (status, body) = server
        .post("/v1/queues/invoices/messages", send(token(&second)))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "fenced"),
        "{body}"
    );
    server.shutdown().await;
}
