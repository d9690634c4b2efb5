//! Conversions between domain types (`baton-core`) and on-disk record types
//! (`baton_storage::records`). Decoding validates: a record that does not describe a valid
//! domain value is a recovery error, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::{
    AttributeData, AttributeValue, DeadLetterPolicy, HistoryEvent, HistoryEventKind,
    MessageAttributes, MessageId, MessageSnapshot, MessageStateSnapshot, MessageStatus,
    MovedMessage, Notify, QueueConfig, QueueName, QueueStats, RetryPolicy, SendEntry, Timestamp,
};
use baton_storage::records::*;

pub type DecodeResult<T> = Result<T, String>;

pub fn name(text: &str) -> DecodeResult<QueueName> {
    QueueName::new(text).map_err(|e| e.to_string())
}

pub fn topic_name(text: &str) -> DecodeResult<baton_core::TopicName> {
    baton_core::TopicName::new(text).map_err(|e| e.to_string())
}

pub fn subscription_name(text: &str) -> DecodeResult<baton_core::SubscriptionName> {
    baton_core::SubscriptionName::new(text).map_err(|e| e.to_string())
}

pub fn stream_name(text: &str) -> DecodeResult<baton_core::StreamName> {
    baton_core::StreamName::new(text).map_err(|e| e.to_string())
}

pub fn config_to_disk(config: &QueueConfig) -> ConfigV1 {
    ConfigV1 {
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
    }
}

pub fn config_from_disk(config: ConfigV1) -> DecodeResult<QueueConfig> {
    Ok(QueueConfig {
        fifo: config.fifo,
        visibility_timeout_ms: config.visibility_timeout_ms,
        delay_ms: config.delay_ms,
        retention_ms: config.retention_ms,
        max_message_bytes: config.max_message_bytes,
        receive_wait_ms: config.receive_wait_ms,
        dead_letter: match config.dead_letter {
            Some((queue, max_receive_count)) => Some(DeadLetterPolicy {
                queue: name(&queue)?,
                max_receive_count,
            }),
            None => None,
        },
        content_based_dedup: config.content_based_dedup,
        max_depth: config.max_depth,
        retry: config
            .retry
            .map(|(base_delay_ms, max_delay_ms)| RetryPolicy {
                base_delay_ms,
                max_delay_ms,
            }),
    })
}

fn attributes_to_disk(attributes: &MessageAttributes) -> Vec<AttributeV1> {
    attributes
        .iter()
        .map(|(name, value)| AttributeV1 {
            name: name.clone(),
            data_type: value.data_type().to_string(),
            data: match value.data() {
                AttributeData::Text(text) => AttributeDataV1::Text(text.clone()),
                AttributeData::Binary(bytes) => AttributeDataV1::Binary(bytes.clone()),
            },
        })
        .collect()
}

fn attributes_from_disk(attributes: Vec<AttributeV1>) -> DecodeResult<MessageAttributes> {
    let mut map = BTreeMap::new();
    for attribute in attributes {
        let data = match attribute.data {
            AttributeDataV1::Text(text) => AttributeData::Text(text),
            AttributeDataV1::Binary(bytes) => AttributeData::Binary(bytes),
        };
        map.insert(
            attribute.name,
            AttributeValue::new(&attribute.data_type, data)?,
        );
    }
    MessageAttributes::new(map).map_err(|e| e.to_string())
}

fn notify_to_disk(notify: &Option<Notify>) -> Option<NotifyV1> {
    notify.as_ref().map(|n| NotifyV1 {
        url: n.url.clone(),
        headers: n.headers.clone(),
    })
}

fn notify_from_disk(notify: Option<NotifyV1>) -> Option<Notify> {
    notify.map(|n| Notify {
        url: n.url,
        headers: n.headers,
    })
}

pub fn entry_to_disk(entry: &SendEntry) -> EntryV1 {
    EntryV1 {
        id: entry.id.as_u128(),
        body: entry.body.clone(),
        attributes: attributes_to_disk(&entry.attributes),
        delay_ms: entry.delay_ms,
        group_id: entry.group_id.clone(),
        dedup_id: entry.dedup_id.clone(),
        notify: notify_to_disk(&entry.notify),
    }
}

pub fn entry_from_disk(entry: EntryV1) -> DecodeResult<SendEntry> {
    Ok(SendEntry {
        id: MessageId::from_u128(entry.id),
        body: entry.body,
        attributes: attributes_from_disk(entry.attributes)?,
        delay_ms: entry.delay_ms,
        group_id: entry.group_id,
        dedup_id: entry.dedup_id,
        notify: notify_from_disk(entry.notify),
    })
}

const HISTORY_KINDS: [HistoryEventKind; 10] = [
    HistoryEventKind::Sent,
    HistoryEventKind::Received,
    HistoryEventKind::Nacked,
    HistoryEventKind::Acked,
    HistoryEventKind::DeadLettered,
    HistoryEventKind::Expired,
    HistoryEventKind::Purged,
    HistoryEventKind::Redriven,
    HistoryEventKind::CallbackSucceeded,
    HistoryEventKind::CallbackFailed,
];

pub fn history_kind(text: &str) -> DecodeResult<HistoryEventKind> {
    HISTORY_KINDS
        .iter()
        .copied()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| format!("unknown history event {text:?}"))
}

const STATUSES: [MessageStatus; 9] = [
    MessageStatus::Pending,
    MessageStatus::Delayed,
    MessageStatus::Processing,
    MessageStatus::Completed,
    MessageStatus::Failed,
    MessageStatus::DeadLettered,
    MessageStatus::CallbackFailed,
    MessageStatus::Expired,
    MessageStatus::Purged,
];

pub fn status_from_disk(text: &str) -> DecodeResult<MessageStatus> {
    STATUSES
        .iter()
        .copied()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("unknown status {text:?}"))
}

/// A history serialized as the `Vec<HistoryV1>` that `history_to_disk` makes, without making it.
#[derive(Debug, Clone, Copy)]
pub struct HistoryOnDisk<'a>(pub &'a [HistoryEvent]);

impl serde::Serialize for HistoryOnDisk<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(event_on_disk))
    }
}

/// One history event as it is written, borrowed.
fn event_on_disk(event: &HistoryEvent) -> HistoryV1Ref<'_> {
    HistoryV1Ref {
        event: event.kind.as_str(),
        at: event.at.as_millis(),
        receive_count: event.receive_count,
        detail: event.detail.as_deref(),
    }
}

pub fn history_to_disk(history: &[HistoryEvent]) -> Vec<HistoryV1> {
    history
        .iter()
        .map(|event| {
            let on_disk = event_on_disk(event);
            HistoryV1 {
                event: on_disk.event.to_string(),
                at: on_disk.at,
                receive_count: on_disk.receive_count,
                detail: on_disk.detail.map(str::to_string),
            }
        })
        .collect()
}

pub fn history_from_disk(history: Vec<HistoryV1>) -> DecodeResult<Vec<HistoryEvent>> {
    history
        .into_iter()
        .map(|event| {
            Ok(HistoryEvent {
                kind: history_kind(&event.event)?,
                at: Timestamp::from_millis(event.at),
                receive_count: event.receive_count,
                detail: event.detail,
            })
        })
        .collect()
}

pub fn moved_to_disk(moved: &MovedMessage) -> MovedV1 {
    MovedV1 {
        id: moved.id.as_u128(),
        body: moved.body.to_string(),
        attributes: attributes_to_disk(&moved.attributes),
        group_id: moved.group_id.as_deref().map(str::to_string),
        dedup_id: moved.dedup_id.as_deref().map(str::to_string),
        notify: notify_to_disk(&moved.notify),
        sent_at: moved.sent_at.as_millis(),
        source: moved.source.to_string(),
        dead_letter_source: moved.dead_letter_source.as_ref().map(|q| q.to_string()),
        history: history_to_disk(&moved.history),
    }
}

pub fn moved_from_disk(moved: MovedV1) -> DecodeResult<MovedMessage> {
    Ok(MovedMessage {
        id: MessageId::from_u128(moved.id),
        body: Arc::from(moved.body),
        attributes: attributes_from_disk(moved.attributes)?,
        group_id: moved.group_id.map(Arc::from),
        dedup_id: moved.dedup_id.map(Arc::from),
        notify: notify_from_disk(moved.notify),
        sent_at: Timestamp::from_millis(moved.sent_at),
        source: name(&moved.source)?,
        dead_letter_source: moved.dead_letter_source.as_deref().map(name).transpose()?,
        history: history_from_disk(moved.history)?,
    })
}

pub fn totals_to_disk(stats: &QueueStats) -> TotalsV1 {
    TotalsV1 {
        sent_total: stats.sent_total,
        duplicates_total: stats.duplicates_total,
        received_total: stats.received_total,
        acked_total: stats.acked_total,
        nacked_total: stats.nacked_total,
        dead_lettered_total: stats.dead_lettered_total,
        expired_total: stats.expired_total,
        purged_total: stats.purged_total,
        moved_in_total: stats.moved_in_total,
        moved_out_total: stats.moved_out_total,
    }
}

pub fn totals_from_disk(totals: TotalsV1) -> QueueStats {
    QueueStats {
        sent_total: totals.sent_total,
        duplicates_total: totals.duplicates_total,
        received_total: totals.received_total,
        acked_total: totals.acked_total,
        nacked_total: totals.nacked_total,
        dead_lettered_total: totals.dead_lettered_total,
        expired_total: totals.expired_total,
        purged_total: totals.purged_total,
        moved_in_total: totals.moved_in_total,
        moved_out_total: totals.moved_out_total,
        ..QueueStats::default()
    }
}

pub fn message_to_disk(message: &MessageSnapshot) -> MessageV1 {
    MessageV1 {
        seq: message.seq,
        id: message.id.as_u128(),
        body: message.body.to_string(),
        attributes: attributes_to_disk(&message.attributes),
        group_id: message.group_id.as_deref().map(str::to_string),
        dedup_id: message.dedup_id.as_deref().map(str::to_string),
        notify: notify_to_disk(&message.notify),
        sent_at: message.sent_at.as_millis(),
        state: match message.state {
            MessageStateSnapshot::Delayed { until } => MessageStateV1::Delayed {
                until: until.as_millis(),
            },
            MessageStateSnapshot::Visible => MessageStateV1::Visible,
            MessageStateSnapshot::InFlight { deadline, lease } => MessageStateV1::InFlight {
                deadline: deadline.as_millis(),
                lease,
            },
        },
        receive_count: message.receive_count,
        first_received_at: message.first_received_at.map(Timestamp::as_millis),
        dead_letter_source: message.dead_letter_source.as_ref().map(|q| q.to_string()),
        history: history_to_disk(&message.history),
    }
}

pub fn message_from_disk(message: MessageV1) -> DecodeResult<MessageSnapshot> {
    Ok(MessageSnapshot {
        seq: message.seq,
        id: MessageId::from_u128(message.id),
        body: Arc::from(message.body),
        attributes: attributes_from_disk(message.attributes)?,
        group_id: message.group_id.map(Arc::from),
        dedup_id: message.dedup_id.map(Arc::from),
        notify: notify_from_disk(message.notify),
        sent_at: Timestamp::from_millis(message.sent_at),
        state: match message.state {
            MessageStateV1::Delayed { until } => MessageStateSnapshot::Delayed {
                until: Timestamp::from_millis(until),
            },
            MessageStateV1::Visible => MessageStateSnapshot::Visible,
            MessageStateV1::InFlight { deadline, lease } => MessageStateSnapshot::InFlight {
                deadline: Timestamp::from_millis(deadline),
                lease,
            },
        },
        receive_count: message.receive_count,
        first_received_at: message.first_received_at.map(Timestamp::from_millis),
        dead_letter_source: message
            .dead_letter_source
            .as_deref()
            .map(name)
            .transpose()?,
        history: history_from_disk(message.history)?,
    })
}

pub fn push_to_disk(push: &crate::PushSpec) -> PushV1 {
    PushV1 {
        url: push.url.clone(),
        headers: push
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        concurrency: push.concurrency,
        timeout_ms: push.timeout_ms,
        rate_per_s: push.rate_per_s,
    }
}

pub fn push_from_disk(push: PushV1) -> crate::PushSpec {
    crate::PushSpec {
        url: push.url,
        headers: push.headers.into_iter().collect(),
        concurrency: push.concurrency,
        timeout_ms: push.timeout_ms,
        rate_per_s: push.rate_per_s,
    }
}
