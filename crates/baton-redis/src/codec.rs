//! What the engine writes into Redis and reads back from the scripts, and the conversions to
//! and from `baton-core` types.
//!
//! - A queue's configuration is stored twice in its `h` hash: whole as `cfg` (JSON, read only
//!   by the engine) and as the few fields the scripts act on (`fifo`, `ret`, `maxd`, `dlq`,
//!   `mrc`, `rbase`, `rmax`).
//! - A message's payload (body and attributes) is one JSON string the scripts never parse; its
//!   state (ids, times, lease, history) is cjson the scripts own.
//! - Every script answers one cjson string; an object with `err` is a refusal.
//!
//! cjson writes an empty table as `{}`, so answers are read through `normalize`, which turns
//! empty objects into empty arrays (no answer field is a map).

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::{
    AttributeData, AttributeValue, DeadLetterPolicy, HistoryEvent, HistoryEventKind,
    MessageAttributes, MessageId, MessageStatus, Notify, QueueConfig, QueueName, QueueStats,
    RetryPolicy, Timestamp,
};
use baton_engine::{EngineError, PushSpec, QueueMeta, QueueView};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ConfigDoc {
    fifo: bool,
    visibility_timeout_ms: u64,
    delay_ms: u64,
    retention_ms: u64,
    max_message_bytes: u32,
    receive_wait_ms: u64,
    dead_letter: Option<(String, u32)>,
    content_based_dedup: bool,
    max_depth: Option<u64>,
    retry: Option<(u64, u64)>,
}

pub(crate) fn config_to_json(config: &QueueConfig) -> String {
    let doc = ConfigDoc {
        fifo: config.fifo,
        visibility_timeout_ms: config.visibility_timeout_ms,
        delay_ms: config.delay_ms,
        retention_ms: config.retention_ms,
        max_message_bytes: config.max_message_bytes,
        receive_wait_ms: config.receive_wait_ms,
        dead_letter: config
            .dead_letter
            .as_ref()
            .map(|d| (d.queue.to_string(), d.max_receive_count)),
        content_based_dedup: config.content_based_dedup,
        max_depth: config.max_depth,
        retry: config.retry.map(|r| (r.base_delay_ms, r.max_delay_ms)),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

pub(crate) fn config_from_json(text: &str) -> Result<QueueConfig, EngineError> {
    let doc: ConfigDoc = serde_json::from_str(text).map_err(|e| corrupt("queue config", &e))?;
    let dead_letter = match doc.dead_letter {
        Some((queue, max_receive_count)) => Some(DeadLetterPolicy {
            queue: QueueName::new(&queue).map_err(|e| corrupt("dead-letter queue", &e))?,
            max_receive_count,
        }),
        None => None,
    };
    Ok(QueueConfig {
        fifo: doc.fifo,
        visibility_timeout_ms: doc.visibility_timeout_ms,
        delay_ms: doc.delay_ms,
        retention_ms: doc.retention_ms,
        max_message_bytes: doc.max_message_bytes,
        receive_wait_ms: doc.receive_wait_ms,
        dead_letter,
        content_based_dedup: doc.content_based_dedup,
        max_depth: doc.max_depth,
        retry: doc.retry.map(|(base_delay_ms, max_delay_ms)| RetryPolicy {
            base_delay_ms,
            max_delay_ms,
        }),
    })
}

/// The script fields of a config, in the order `create.lua` and `update.lua` take them after
/// `cfg`: fifo, retention, max depth, dead-letter queue, max receive count, retry base and max.
pub(crate) fn config_fields(config: &QueueConfig) -> Vec<String> {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    vec![
        config_to_json(config),
        if config.fifo { "1" } else { "0" }.to_string(),
        config.retention_ms.to_string(),
        opt(config.max_depth),
        config
            .dead_letter
            .as_ref()
            .map(|d| d.queue.to_string())
            .unwrap_or_default(),
        opt(config
            .dead_letter
            .as_ref()
            .map(|d| u64::from(d.max_receive_count))),
        opt(config.retry.map(|r| r.base_delay_ms)),
        opt(config.retry.map(|r| r.max_delay_ms)),
    ]
}

pub(crate) fn corrupt(what: &str, error: &dyn std::fmt::Display) -> EngineError {
    EngineError::StorageUnavailable {
        reason: format!("redis holds a {what} this engine cannot read: {error}"),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AttributeDoc {
    n: String,
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<Vec<u8>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PayloadDoc {
    b: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    a: Vec<AttributeDoc>,
}

pub(crate) fn payload_to_json(body: &str, attributes: &MessageAttributes) -> String {
    let a = attributes
        .iter()
        .map(|(name, value)| {
            let (s, b) = match value.data() {
                AttributeData::Text(text) => (Some(text.clone()), None),
                AttributeData::Binary(bytes) => (None, Some(bytes.clone())),
            };
            AttributeDoc {
                n: name.clone(),
                t: value.data_type().to_string(),
                s,
                b,
            }
        })
        .collect();
    serde_json::to_string(&PayloadDoc {
        b: body.to_string(),
        a,
    })
    .unwrap_or_default()
}

pub(crate) fn payload_from_json(text: &str) -> Result<(Arc<str>, MessageAttributes), EngineError> {
    let doc: PayloadDoc = serde_json::from_str(text).map_err(|e| corrupt("message", &e))?;
    let mut map = BTreeMap::new();
    for attribute in doc.a {
        let data = match (attribute.s, attribute.b) {
            (Some(text), _) => AttributeData::Text(text),
            (None, bytes) => AttributeData::Binary(bytes.unwrap_or_default()),
        };
        let value =
            AttributeValue::new(&attribute.t, data).map_err(|e| corrupt("attribute", &e))?;
        map.insert(attribute.n, value);
    }
    let attributes = MessageAttributes::new(map).map_err(|e| corrupt("attributes", &e))?;
    Ok((Arc::from(doc.b), attributes))
}

pub(crate) fn notify_to_json(notify: &Notify) -> String {
    serde_json::to_string(&(&notify.url, &notify.headers)).unwrap_or_default()
}

pub(crate) fn notify_from_json(text: Option<&str>) -> Option<Notify> {
    let (url, headers): (String, Vec<(String, String)>) = serde_json::from_str(text?).ok()?;
    Some(Notify { url, headers })
}

pub(crate) fn id_to_text(id: MessageId) -> String {
    format!("{:032x}", id.as_u128())
}

pub(crate) fn id_from_text(text: &str) -> Result<MessageId, EngineError> {
    u128::from_str_radix(text, 16)
        .map(MessageId::from_u128)
        .map_err(|e| corrupt("message id", &e))
}

/// Turns every empty object into an empty array (see the module doc).
pub(crate) fn normalize(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) if map.is_empty() => {
            *value = serde_json::Value::Array(Vec::new());
        }
        serde_json::Value::Object(map) => map.values_mut().for_each(normalize),
        serde_json::Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, EngineError> {
    serde_json::from_value(value).map_err(|e| corrupt("script answer", &e))
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EventDoc {
    k: String,
    at: u64,
    #[serde(default)]
    rc: u32,
    #[serde(default)]
    d: Option<String>,
}

impl EventDoc {
    pub(crate) fn clone_doc(&self) -> EventDoc {
        self.clone()
    }
}

pub(crate) fn history(events: Vec<EventDoc>) -> Vec<HistoryEvent> {
    events
        .into_iter()
        .map(|e| HistoryEvent {
            kind: event_kind(&e.k),
            at: Timestamp::from_millis(e.at),
            receive_count: e.rc,
            detail: e.d,
        })
        .collect()
}

fn event_kind(kind: &str) -> HistoryEventKind {
    match kind {
        "received" => HistoryEventKind::Received,
        "nacked" => HistoryEventKind::Nacked,
        "acked" => HistoryEventKind::Acked,
        "dead_lettered" => HistoryEventKind::DeadLettered,
        "expired" => HistoryEventKind::Expired,
        "purged" => HistoryEventKind::Purged,
        "redriven" => HistoryEventKind::Redriven,
        "callback_succeeded" => HistoryEventKind::CallbackSucceeded,
        "callback_failed" => HistoryEventKind::CallbackFailed,
        _ => HistoryEventKind::Sent,
    }
}

pub(crate) fn status(text: &str) -> MessageStatus {
    match text {
        "DELAYED" => MessageStatus::Delayed,
        "PROCESSING" => MessageStatus::Processing,
        "COMPLETED" => MessageStatus::Completed,
        "FAILED" => MessageStatus::Failed,
        "DEAD_LETTERED" => MessageStatus::DeadLettered,
        "CALLBACK_FAILED" => MessageStatus::CallbackFailed,
        "EXPIRED" => MessageStatus::Expired,
        "PURGED" => MessageStatus::Purged,
        _ => MessageStatus::Pending,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatsDoc {
    visible: u64,
    in_flight: u64,
    delayed: u64,
    oldest_age_ms: u64,
    sent_total: u64,
    duplicates_total: u64,
    received_total: u64,
    acked_total: u64,
    nacked_total: u64,
    dead_lettered_total: u64,
    expired_total: u64,
    purged_total: u64,
    moved_in_total: u64,
    moved_out_total: u64,
}

/// A push subscription as the queue's hash keeps it (field `push`, JSON).
#[derive(Debug, Serialize, Deserialize)]
struct PushDoc {
    url: String,
    headers: BTreeMap<String, String>,
    concurrency: Option<u32>,
    timeout_ms: Option<u64>,
    rate_per_s: Option<u32>,
}

/// The stored form of `push`; the same spec always encodes to the same text, so scripts
/// compare expectations as strings.
pub(crate) fn push_to_json(push: &PushSpec) -> String {
    let doc = PushDoc {
        url: push.url.clone(),
        headers: push.headers.clone(),
        concurrency: push.concurrency,
        timeout_ms: push.timeout_ms,
        rate_per_s: push.rate_per_s,
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

fn push_from_json(json: &str) -> Result<PushSpec, EngineError> {
    let doc: PushDoc = serde_json::from_str(json).map_err(|e| corrupt("push subscription", &e))?;
    Ok(PushSpec {
        url: doc.url,
        headers: doc.headers,
        concurrency: doc.concurrency,
        timeout_ms: doc.timeout_ms,
        rate_per_s: doc.rate_per_s,
    })
}

/// A queue as `view()` in `lib.lua` describes it.
#[derive(Debug, Deserialize)]
pub(crate) struct ViewDoc {
    pub(crate) cfg: String,
    created: u64,
    modified: u64,
    tags: String,
    attrs: String,
    /// The push subscription's JSON ([`PushDoc`]), `false` without one.
    #[serde(default)]
    push: serde_json::Value,
    stats: StatsDoc,
    #[serde(default)]
    pub(crate) existing: Option<bool>,
}

impl ViewDoc {
    pub(crate) fn into_view(self, name: &QueueName) -> Result<QueueView, EngineError> {
        let s = self.stats;
        let map = |text: &str| -> Result<BTreeMap<String, String>, EngineError> {
            serde_json::from_str(text).map_err(|e| corrupt("queue metadata", &e))
        };
        Ok(QueueView {
            name: name.clone(),
            config: config_from_json(&self.cfg)?,
            stats: QueueStats {
                visible: s.visible,
                in_flight: s.in_flight,
                delayed: s.delayed,
                oldest_age_ms: s.oldest_age_ms,
                sent_total: s.sent_total,
                duplicates_total: s.duplicates_total,
                received_total: s.received_total,
                acked_total: s.acked_total,
                nacked_total: s.nacked_total,
                dead_lettered_total: s.dead_lettered_total,
                expired_total: s.expired_total,
                purged_total: s.purged_total,
                moved_in_total: s.moved_in_total,
                moved_out_total: s.moved_out_total,
            },
            meta: QueueMeta {
                created_at: Timestamp::from_millis(self.created),
                modified_at: Timestamp::from_millis(self.modified),
                tags: map(&self.tags)?,
                attributes: map(&self.attrs)?,
                push: match &self.push {
                    serde_json::Value::String(json) => Some(push_from_json(json)?),
                    _ => None,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn configs_and_payloads_round_trip() {
        let config = QueueConfig {
            fifo: true,
            dead_letter: Some(DeadLetterPolicy {
                queue: QueueName::new("dlq.fifo").unwrap(),
                max_receive_count: 3,
            }),
            max_depth: Some(9),
            retry: Some(RetryPolicy {
                base_delay_ms: 10,
                max_delay_ms: 100,
            }),
            ..QueueConfig::default()
        };
        assert_eq!(config_from_json(&config_to_json(&config)).unwrap(), config);
        let mut map = BTreeMap::new();
        map.insert("a".to_string(), AttributeValue::string("x"));
        map.insert(
            "b".to_string(),
            AttributeValue::new("Binary", AttributeData::Binary(vec![0, 255])).unwrap(),
        );
        let attributes = MessageAttributes::new(map).unwrap();
        let (body, back) = payload_from_json(&payload_to_json("héllo", &attributes)).unwrap();
        assert_eq!((&*body, back), ("héllo", attributes));
    }

    #[test]
    fn empty_objects_read_as_empty_arrays() {
        let mut value: serde_json::Value = serde_json::from_str(r#"{"d":{},"x":[{}]}"#).unwrap();
        normalize(&mut value);
        assert_eq!(value.to_string(), r#"{"d":[],"x":[[]]}"#);
    }
}
