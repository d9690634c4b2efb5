//! `/metrics` read by a Prometheus text-format parser (`openmetrics-parser`, strict: one label
//! set per family, no duplicate samples), as a scraper would: the exposition parses, and its
//! values move as messages flow.

use baton_storage::SimFs;
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use serde_json::json;

use crate::harness::TestServer;

pub(crate) type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

pub(crate) async fn scrape(server: &TestServer) -> Scrape {
    let text = server.metrics_text().await;
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The values of family `name`'s samples whose labels include every pair of `labels`:
/// counters and gauges as themselves, histograms as their count.
fn values(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let Some(family) = scrape.families.get(name) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .filter(|sample| {
            let set = sample.get_labelset().unwrap();
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => n.as_f64(),
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
        })
        .collect()
}

/// The one sample of `name` with `labels`.
pub(crate) fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found = values(scrape, name, labels);
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied()
}

/// The total count of the histogram samples of `name` with `labels`.
fn histogram_count(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    values(scrape, name, labels).iter().sum()
}

#[tokio::test]
async fn queue_counters_and_gauges_move_as_messages_flow() {
    let server = TestServer::start().await;
    server.create_queue("flow-dlq", json!({})).await;
    server
        .create_queue(
            "flow",
            json!({"dead_letter": {"queue": "flow-dlq", "max_receive_count": 1}}),
        )
        .await;
    let q = [("queue", "flow")];
    let before = scrape(&server).await;
    assert_eq!(value(&before, "baton_queue_sent_total", &q), Some(0.0));
    assert_eq!(
        value(
            &before,
            "baton_queue_messages",
            &[("queue", "flow"), ("state", "visible")]
        ),
        Some(0.0)
    );

    server.send_bodies("flow", &["a", "b", "c"]).await;
    let sent = scrape(&server).await;
    assert_eq!(value(&sent, "baton_queue_sent_total", &q), Some(3.0));
    assert_eq!(
        value(
            &sent,
            "baton_queue_messages",
            &[("queue", "flow"), ("state", "visible")]
        ),
        Some(3.0)
    );

    let received = server.receive("flow", json!({"max": 2})).await;
    let receipt = received[0]["receipt"].as_str().unwrap();
    server.ack("flow", &[receipt]).await;
    let nack_receipt = received[1]["receipt"].as_str().unwrap();
    let (status, _) = server
        .post("/v1/queues/flow/nack", json!({"receipts": [nack_receipt]}))
        .await;
    assert!(status.is_success());

    let after = scrape(&server).await;
    assert_eq!(value(&after, "baton_queue_received_total", &q), Some(2.0));
    assert_eq!(value(&after, "baton_queue_acked_total", &q), Some(1.0));
    assert_eq!(value(&after, "baton_queue_nacked_total", &q), Some(1.0));
    // max_receive_count 1: the nacked message went to the dead-letter queue.
    assert_eq!(
        value(&after, "baton_queue_dead_lettered_total", &q),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "baton_queue_messages",
            &[("queue", "flow-dlq"), ("state", "visible")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &after,
            "baton_queue_messages",
            &[("queue", "flow"), ("state", "visible")]
        ),
        Some(1.0)
    );
    assert!(value(&after, "baton_queue_oldest_message_age_seconds", &q).unwrap() >= 0.0);

    // Request latency histograms by API and action, native and SQS.
    let send_route = [
        ("api", "native"),
        ("action", "/v1/queues/{queue}/messages"),
        ("method", "POST"),
    ];
    assert_eq!(
        histogram_count(&after, "baton_http_request_duration_seconds", &send_route),
        1.0
    );
    let response = server
        .http
        .post(&server.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=ListQueues")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let sqs = scrape(&server).await;
    assert_eq!(
        histogram_count(
            &sqs,
            "baton_http_request_duration_seconds",
            &[("api", "sqs"), ("action", "ListQueues")]
        ),
        1.0
    );
}

#[tokio::test]
async fn unknown_sqs_actions_share_one_label_value() {
    let server = TestServer::start().await;
    for action in ["Bogus1", "Bogus2"] {
        server
            .http
            .post(&server.base)
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header("content-type", "application/x-amz-json-1.0")
            .body("{}")
            .send()
            .await
            .unwrap();
    }
    let scrape = scrape(&server).await;
    assert_eq!(
        histogram_count(
            &scrape,
            "baton_http_request_duration_seconds",
            &[("api", "sqs"), ("action", "unknown")]
        ),
        2.0
    );
    let family = &scrape.families["baton_http_request_duration_seconds"];
    assert!(!family.iter_samples().any(|s| s
        .get_labelset()
        .unwrap()
        .get_label_value("action")
        .is_some_and(|a| a.starts_with("Bogus"))));
}

#[tokio::test]
async fn wal_fsync_latency_and_batch_size_histograms_count_every_batch() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    server.create_queue("wal", json!({})).await;
    let before = scrape(&server).await;
    let batches_before = histogram_count(&before, "baton_wal_batch_records", &[]);
    let syncs_before = histogram_count(&before, "baton_wal_fsync_duration_seconds", &[]);

    for i in 0..5 {
        server.send_bodies("wal", &[&format!("m{i}")]).await;
    }
    let after = scrape(&server).await;
    let batches = histogram_count(&after, "baton_wal_batch_records", &[]);
    let syncs = histogram_count(&after, "baton_wal_fsync_duration_seconds", &[]);
    // Each acknowledged send waited for its own durable batch (the sends were sequential).
    assert!(
        batches >= batches_before + 5.0,
        "{batches_before} -> {batches}"
    );
    assert!(syncs >= syncs_before + 5.0, "{syncs_before} -> {syncs}");
    assert_eq!(
        value(&after, "baton_wal_fsyncs_total", &[]),
        Some(syncs),
        "the histogram's count is the fsync counter"
    );
    // Every batch had at least one record: the le="1" bucket and above hold them all.
    let records = value(&after, "baton_wal_records_total", &[]).unwrap();
    assert!(records >= batches);
}

/// Every `baton_...` metric name in `text`.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("baton_") {
        let preceded_by_word = rest[..at]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !preceded_by_word {
            names.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn grafana_dashboard_and_alert_rules_name_only_exported_metrics() {
    let fs = SimFs::new();
    let server = TestServer::options().durable(&fs).start().await;
    server.create_queue("named", json!({})).await;
    server.send_bodies("named", &["m"]).await;
    let scrape = scrape(&server).await;
    let exported: std::collections::BTreeSet<String> = scrape.families.keys().cloned().collect();

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");
    for file in ["grafana/baton.json", "prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let names = metric_names(&text);
        assert!(names.len() > 5, "{file} names {names:?}");
        for name in names {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| exported.contains(*base))
                .unwrap_or(&name);
            assert!(
                exported.contains(family),
                "{file} uses {name}, which /metrics does not export"
            );
        }
    }
}
