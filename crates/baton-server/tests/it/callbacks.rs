//! Completion callbacks end to end: on ack and on dead-letter, failures marking
//! `CALLBACK_FAILED` with the reason, the automatic retry schedule, parking, manual retry, and
//! bad input.

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{error_code, TestServer};
use crate::receiver::{eventually, Receiver};

fn notified(body: &str, url: &str) -> Value {
    json!({"body": body, "notify": {"url": url, "headers": {"x-token": "secret"}}})
}

async fn status(server: &TestServer, queue: &str, id: &str) -> Value {
    let (code, body) = server
        .get(&format!("/v1/queues/{queue}/messages/{id}"))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

fn events(status: &Value) -> Vec<String> {
    status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

async fn receive_and_ack(server: &TestServer, queue: &str) {
    let got = server.receive(queue, json!({"max": 10})).await;
    let receipts: Vec<&str> = got.iter().map(|m| m["receipt"].as_str().unwrap()).collect();
    server.ack(queue, &receipts).await;
}

#[tokio::test]
async fn an_acked_message_reports_completed_to_its_notify_url() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].header("x-token"), "secret");
    let payload = got[0].json();
    assert_eq!(payload["id"], ids[0]);
    assert_eq!(payload["queue"], "work");
    assert_eq!(payload["status"], "COMPLETED");
    assert_eq!(payload["receive_count"], 1);
    assert!(payload["completed_at"].as_u64() >= payload["sent_at"].as_u64());
    assert!(payload.get("reply").is_none());
    let record = eventually("callback_succeeded", || async {
        let record = status(&server, "work", &ids[0]).await;
        events(&record)
            .contains(&"callback_succeeded".to_string())
            .then_some(record)
    })
    .await;
    assert_eq!(record["status"], "COMPLETED");
    assert_eq!(
        events(&record),
        ["sent", "received", "acked", "callback_succeeded"]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_pushed_message_reports_completed_and_a_dead_lettered_one_failed() {
    let server = TestServer::start().await;
    let hooks = Receiver::start().await;
    let worker = Receiver::start().await;
    server.create_queue("dead", json!({})).await;
    server
        .create_queue(
            "work",
            json!({"dead_letter": {"queue": "dead", "max_receive_count": 1}}),
        )
        .await;
    let (status, body) = server
        .put("/v1/queues/work/push", json!({"url": worker.url}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ok = server
        .send("work", vec![notified("fine", &hooks.url)])
        .await;
    let first = hooks.wait_for(1).await;
    assert_eq!(
        (
            first[0].json()["id"].clone(),
            first[0].json()["status"].clone()
        ),
        (json!(ok[0]), json!("COMPLETED"))
    );

    worker.behaviour.failing.store(true, Ordering::SeqCst);
    let bad = server
        .send("work", vec![notified("doomed", &hooks.url)])
        .await;
    let got = hooks.wait_for(2).await;
    let payload = got[1].json();
    assert_eq!(
        (payload["id"].clone(), payload["status"].clone()),
        (json!(bad[0]), json!("FAILED"))
    );
    assert_eq!(payload["receive_count"], 1);
    server.shutdown().await;
}

#[tokio::test]
async fn failing_callbacks_mark_callback_failed_retry_park_and_retry_by_hand() {
    let server = TestServer::options()
        .config(|c| {
            c.callback_max_retries = 2;
            c.callback_retry_delay_ms = 30;
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    // One attempt plus two retries, then the job is parked.
    receiver.wait_for(3).await;
    eventually("the job parked", || async {
        (server.stats("_baton-callbacks-failed").await["visible"] == 1).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 3);
    let record = status(&server, "work", &ids[0]).await;
    assert_eq!(record["status"], "CALLBACK_FAILED");
    let last = record["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["event"], "callback_failed");
    assert_eq!(last["detail"], "HTTP 500 Internal Server Error");
    let (_, list) = server.get("/v1/callbacks/failed").await;
    let callbacks = list["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 1, "{list}");
    assert_eq!(callbacks[0]["id"], ids[0]);
    assert_eq!(callbacks[0]["queue"], "work");
    assert_eq!(callbacks[0]["attempts"], 3);
    assert_eq!(callbacks[0]["reason"], "HTTP 500 Internal Server Error");

    // A manual retry that fails again keeps the job parked and says why.
    let path = format!("/v1/queues/work/messages/{}/retry-callback", ids[0]);
    let (code, answer) = server.post(&path, json!(null)).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], false);
    assert_eq!(answer["error"], "HTTP 500 Internal Server Error");
    assert_eq!(answer["message"]["status"], "CALLBACK_FAILED");
    assert_eq!(server.stats("_baton-callbacks-failed").await["visible"], 1);

    // The target recovers: the manual retry goes through and the status is COMPLETED.
    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    let (code, answer) = server.post(&path, json!(null)).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["message"]["status"], "COMPLETED");
    assert_eq!(
        receiver.requests().last().unwrap().json()["status"],
        "COMPLETED"
    );
    let (_, list) = server.get("/v1/callbacks/failed").await;
    assert_eq!(list["callbacks"], json!([]));
    assert_eq!(server.stats("_baton-callbacks-failed").await["visible"], 0);
    let (code, answer) = server.post(&path, json!(null)).await;
    assert_eq!(
        (code, error_code(&answer)),
        (StatusCode::CONFLICT, "callback_not_failed")
    );
    let (_, metrics) = server.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("baton_callbacks_total{outcome=\"failed\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_callbacks_total{outcome=\"succeeded\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_callbacks_dropped_total 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_callback_failures_total{queue=\"work\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("baton_callbacks_waiting 0"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_callback_failing_twice_then_succeeding_ends_completed() {
    let server = TestServer::options()
        .config(|c| {
            c.callback_max_retries = 3;
            c.callback_retry_delay_ms = 20;
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail_first.store(2, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    receiver.wait_for(3).await;
    let record = eventually("callback_succeeded", || async {
        let record = status(&server, "work", &ids[0]).await;
        (record["status"] == "COMPLETED" && events(&record).len() == 6).then_some(record)
    })
    .await;
    assert_eq!(
        events(&record),
        [
            "sent",
            "received",
            "acked",
            "callback_failed",
            "callback_failed",
            "callback_succeeded"
        ]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_manual_retry_pulls_a_scheduled_attempt_forward_and_the_schedule_then_skips_it() {
    // The automatic retry comes 2 s after the failure: the manual one is "now".
    let server = TestServer::options()
        .config(|c| {
            c.callback_max_retries = 3;
            c.callback_retry_delay_ms = 2_000;
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.fail_first.store(1, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    eventually("CALLBACK_FAILED", || async {
        let record = status(&server, "work", &ids[0]).await;
        (record["status"] == "CALLBACK_FAILED").then_some(record)
    })
    .await;
    let path = format!("/v1/queues/work/messages/{}/retry-callback", ids[0]);
    let (code, answer) = server.post(&path, json!(null)).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["message"]["status"], "COMPLETED");
    assert_eq!(receiver.count(), 2);
    // Once due, the scheduled job is settled without a second delivery.
    eventually("the scheduled job settled", || async {
        let stats = server.stats("_baton-callbacks").await;
        (stats["acked_total"] == 1).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 2);
    let record = status(&server, "work", &ids[0]).await;
    assert_eq!(
        events(&record),
        [
            "sent",
            "received",
            "acked",
            "callback_failed",
            "callback_succeeded"
        ]
    );
    // Nothing left to retry: the answer names the status.
    let (code, answer) = server.post(&path, json!(null)).await;
    assert_eq!(
        (code, error_code(&answer)),
        (StatusCode::CONFLICT, "callback_not_failed")
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("COMPLETED"),
        "{answer}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn manual_and_automatic_attempts_of_one_callback_never_overlap() {
    // Every attempt takes 300 ms and fails; the automatic ones follow each other at once.
    let server = TestServer::options()
        .config(|c| {
            c.callback_max_retries = 4;
            c.callback_retry_delay_ms = 1;
        })
        .start()
        .await;
    let receiver = Receiver::start().await;
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    receiver.behaviour.delay_ms.store(300, Ordering::SeqCst);
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    eventually("CALLBACK_FAILED", || async {
        let record = status(&server, "work", &ids[0]).await;
        (record["status"] == "CALLBACK_FAILED").then_some(record)
    })
    .await;
    let path = format!("/v1/queues/work/messages/{}/retry-callback", ids[0]);
    let retries = (0..3).map(|_| server.post(&path, json!(null)));
    for (code, answer) in futures::future::join_all(retries).await {
        assert_eq!(code, StatusCode::OK, "{answer}");
        assert_eq!(answer["ok"], false, "{answer}");
        assert_eq!(answer["error"], "HTTP 500 Internal Server Error");
    }
    assert_eq!(receiver.behaviour.max_in_flight.load(Ordering::SeqCst), 1);
    // The target recovers: of two retries at once, one delivers and the other finds nothing
    // left to retry.
    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    let both = futures::future::join_all((0..2).map(|_| server.post(&path, json!(null)))).await;
    let delivered = both
        .iter()
        .filter(|(code, answer)| *code == StatusCode::OK && answer["ok"] == true)
        .count();
    let refused = both
        .iter()
        .filter(|(code, answer)| {
            *code == StatusCode::CONFLICT && error_code(answer) == "callback_not_failed"
        })
        .count();
    // The automatic schedule may deliver first; then both retries find nothing to retry.
    assert_eq!(delivered + refused, 2, "{both:?}");
    assert!(delivered <= 1, "{both:?}");
    let record = eventually("COMPLETED", || async {
        let record = status(&server, "work", &ids[0]).await;
        (record["status"] == "COMPLETED").then_some(record)
    })
    .await;
    let succeeded = events(&record)
        .iter()
        .filter(|e| *e == "callback_succeeded")
        .count();
    assert_eq!(succeeded, 1, "{record}");
    assert_eq!(receiver.behaviour.max_in_flight.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_manual_retry_without_a_job_is_refused_and_bad_input_too() {
    let server = TestServer::options()
        .config(|c| c.callback_max_retries = 0)
        .start()
        .await;
    let target = Receiver::closed_url().await;
    server.create_queue("work", json!({})).await;
    let ids = server.send("work", vec![notified("job", &target)]).await;
    receive_and_ack(&server, "work").await;
    let record = eventually("parked", || async {
        let parked = server.stats("_baton-callbacks-failed").await["visible"] == 1;
        let record = status(&server, "work", &ids[0]).await;
        (parked && record["status"] == "CALLBACK_FAILED").then_some(record)
    })
    .await;
    let reason = record["history"].as_array().unwrap().last().unwrap()["detail"].clone();
    assert!(
        reason.as_str().unwrap().starts_with("connection failed"),
        "{reason}"
    );
    // An operator purges the parked jobs: nothing is left to retry.
    let (code, body) = server
        .post("/v1/queues/_baton-callbacks-failed/purge", json!(null))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let (code, answer) = server
        .post(
            &format!("/v1/queues/work/messages/{}/retry-callback", ids[0]),
            json!(null),
        )
        .await;
    assert_eq!(
        (code, error_code(&answer)),
        (StatusCode::CONFLICT, "callback_job_missing"),
        "{answer}"
    );

    let (code, answer) = server
        .post("/v1/queues/work/messages/nope/retry-callback", json!(null))
        .await;
    assert_eq!(
        (code, error_code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    let unknown = "00000000-0000-0000-0000-000000000001";
    let (code, answer) = server
        .post(
            &format!("/v1/queues/work/messages/{unknown}/retry-callback"),
            json!(null),
        )
        .await;
    assert_eq!(
        (code, error_code(&answer)),
        (StatusCode::NOT_FOUND, "message_not_found")
    );
    for bad in ["0", "1001", "abc"] {
        let (code, answer) = server.get(&format!("/v1/callbacks/failed?max={bad}")).await;
        assert_eq!(
            (code, error_code(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{bad}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn notify_urls_are_checked_against_the_outbound_lists() {
    let server = TestServer::start().await;
    server.create_queue("work", json!({})).await;
    for (url, code) in [
        ("http://169.254.169.254/latest", "target_not_allowed"),
        ("gopher://127.0.0.1/", "invalid_parameter"),
        ("http://", "invalid_parameter"),
    ] {
        let (status, body) = server
            .post(
                "/v1/queues/work/messages",
                json!({"messages": [{"body": "ok"}, {"body": "x", "notify": {"url": url}}]}),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, code),
            "{url}: {body}"
        );
    }
    let (status, body) = server
        .post(
            "/v1/queues/work/messages",
            json!({"messages": [{"body": "x", "notify": {"url": "http://127.0.0.1:1/", "headers": {"bad name": "v"}}}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_parameter"),
        "{body}"
    );
    assert_eq!(server.stats("work").await["sent_total"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn callback_jobs_and_outcomes_survive_a_restart() {
    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    let settings = |c: &mut baton_server::ServerConfig| {
        c.callback_max_retries = 50;
        c.callback_retry_delay_ms = 100;
    };
    let server = TestServer::options()
        .durable(&fs)
        .config(settings)
        .start()
        .await;
    eventually("ready", || async {
        (server.get("/ready").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    eventually("CALLBACK_FAILED", || async {
        let record = status(&server, "work", &ids[0]).await;
        (record["status"] == "CALLBACK_FAILED").then_some(())
    })
    .await;
    server.shutdown().await;
    let attempts_before = receiver.count();

    // After the restart the job is still scheduled; the target has recovered.
    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    let server = TestServer::options()
        .durable(&fs)
        .config(settings)
        .start()
        .await;
    let record = eventually("COMPLETED after the restart", || async {
        let (code, record) = server
            .get(&format!("/v1/queues/work/messages/{}", ids[0]))
            .await;
        (code == StatusCode::OK && record["status"] == "COMPLETED").then_some(record)
    })
    .await;
    let got = receiver.requests();
    assert!(got.len() > attempts_before);
    assert_eq!(got.last().unwrap().answered, 200);
    let kinds = events(&record);
    assert_eq!(kinds.last().unwrap(), "callback_succeeded");
    assert!(kinds.contains(&"callback_failed".to_string()), "{kinds:?}");
    server.shutdown().await;
}

async fn receive_and_ack_with_reply(server: &TestServer, queue: &str, reply: Value) {
    let got = server.receive(queue, json!({"max": 10})).await;
    let receipts: Vec<&str> = got.iter().map(|m| m["receipt"].as_str().unwrap()).collect();
    assert!(!receipts.is_empty());
    let (code, body) = server
        .post(
            &format!("/v1/queues/{queue}/ack"),
            json!({"receipts": receipts, "reply": reply}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert!(
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ok"] == true),
        "{body}"
    );
}

#[tokio::test]
async fn the_reply_of_an_ack_reaches_the_completed_callback() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    let reply = json!({"body": "result 42", "attributes": {"kind": "answer"}});
    receive_and_ack_with_reply(&server, "work", reply.clone()).await;
    let got = receiver.wait_for(1).await;
    let payload = got[0].json();
    assert_eq!(payload["id"], ids[0]);
    assert_eq!(payload["status"], "COMPLETED");
    assert_eq!(payload["reply"], reply);
    server.shutdown().await;
}

#[tokio::test]
async fn a_crash_right_after_an_acknowledged_ack_still_delivers_its_callback() {
    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    // The target is down until the restart, so only the restarted server can succeed.
    receiver.behaviour.failing.store(true, Ordering::SeqCst);
    let settings = |c: &mut baton_server::ServerConfig| {
        c.callback_max_retries = 50;
        c.callback_retry_delay_ms = 100;
    };
    let server = TestServer::options()
        .durable(&fs)
        .config(settings)
        .start()
        .await;
    eventually("ready", || async {
        (server.get("/ready").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    server.create_queue("work", json!({})).await;
    let ids = server
        .send("work", vec![notified("job", &receiver.url)])
        .await;
    receive_and_ack_with_reply(&server, "work", json!({"body": "done"})).await;
    // Power loss the instant the ack is answered: whatever was not synced is gone.
    server.crash(&fs).await;

    receiver.behaviour.failing.store(false, Ordering::SeqCst);
    let server = TestServer::options()
        .durable(&fs)
        .config(settings)
        .start()
        .await;
    let record = eventually("COMPLETED after the restart", || async {
        let (code, record) = server
            .get(&format!("/v1/queues/work/messages/{}", ids[0]))
            .await;
        (code == StatusCode::OK && events(&record).contains(&"callback_succeeded".to_string()))
            .then_some(record)
    })
    .await;
    assert_eq!(record["status"], "COMPLETED");
    let delivered: Vec<Value> = receiver
        .requests()
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.json())
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["id"], ids[0]);
    assert_eq!(delivered[0]["status"], "COMPLETED");
    assert_eq!(delivered[0]["reply"], json!({"body": "done"}));
    server.shutdown().await;
}

#[tokio::test]
async fn a_callback_job_a_crash_cut_off_is_recreated_from_the_replayed_ack() {
    use baton_engine::{
        Engine, EngineConfig, LocalEngine, QueueEngine, ReceiveOptions, SystemClock,
    };
    use std::sync::Arc;

    let fs = baton_storage::SimFs::new();
    let receiver = Receiver::start().await;
    let work = baton_core::QueueName::new("work").unwrap();
    {
        // A process that dies after its ack is durable and before any callback job is
        // written: the engine runs without a completion hook.
        let engine = LocalEngine::durable(
            Arc::new(SystemClock),
            EngineConfig::default(),
            Arc::new(fs.clone()),
            baton_engine::StorageConfig::new("/data"),
            false,
        )
        .unwrap();
        engine.recover().await.unwrap();
        engine
            .create_queue(work.clone(), baton_core::QueueConfig::default())
            .await
            .unwrap();
        let entry = baton_core::SendEntry {
            notify: Some(baton_core::Notify {
                url: receiver.url.clone(),
                headers: vec![("x-token".to_string(), "secret".to_string())],
            }),
            ..baton_core::SendEntry::new(baton_engine::new_message_id(), "job")
        };
        engine.send(&work, vec![entry]).await.unwrap();
        let options = ReceiveOptions {
            max: 1,
            wait_ms: Some(0),
            visibility_timeout_ms: None,
        };
        let got = engine.receive(&work, options).await.unwrap();
        engine.ack(&work, vec![got[0].receipt]).await.unwrap();
    }
    let id = {
        let server = TestServer::options().durable(&fs).start().await;
        let got = receiver.wait_for(1).await;
        let payload = got[0].json();
        assert_eq!(payload["status"], "COMPLETED");
        assert_eq!(payload["queue"], "work");
        assert_eq!(payload["receive_count"], 1);
        assert_eq!(got[0].header("x-token"), "secret");
        let id = payload["id"].as_str().unwrap().to_string();
        eventually("callback_succeeded", || async {
            let record = status(&server, "work", &id).await;
            events(&record)
                .contains(&"callback_succeeded".to_string())
                .then_some(())
        })
        .await;
        let (_, metrics) = server.get("/metrics").await;
        let metrics = metrics.as_str().unwrap().to_string();
        assert!(
            metrics.contains("baton_callbacks_recreated_total 1"),
            "{metrics}"
        );
        server.shutdown().await;
        id
    };
    // The ack is replayed again at the next start, but its job exists now: no second callback.
    let server = TestServer::options().durable(&fs).start().await;
    eventually("ready", || async {
        (server.get("/ready").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    let (_, metrics) = server.get("/metrics").await;
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("baton_callbacks_recreated_total 0"));
    assert_eq!(status(&server, "work", &id).await["status"], "COMPLETED");
    server.shutdown().await;
}

#[tokio::test]
async fn a_deleted_callback_queue_is_created_again_for_the_next_callback() {
    let server = TestServer::start().await;
    let receiver = Receiver::start().await;
    server.create_queue("work", json!({})).await;
    server
        .send("work", vec![notified("first", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    receiver.wait_for(1).await;
    let (code, body) = server
        .call(reqwest::Method::DELETE, "/v1/queues/_baton-callbacks", None)
        .await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let ids = server
        .send("work", vec![notified("second", &receiver.url)])
        .await;
    receive_and_ack(&server, "work").await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].json()["id"], ids[0]);
    server.shutdown().await;
}
