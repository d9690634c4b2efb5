//! Receives and their long polls.
//!
//! A waiting receive registers for its queue's wake-up (a `Notify` per queue channel) before
//! it runs the receive script, so a send in between still wakes it. Wake-ups come from this
//! node's own sends and nacks at once, and from every other node through Redis 7 sharded
//! pub/sub: the scripts `SPUBLISH` on the queue's channel, in the queue's slot, and this node
//! subscribes (`SSUBSCRIBE`) to the channel of each queue it has waited on (up to
//! `CHANNELS_MAX`). Wake-ups are hints only: a subscription lost to a failover or a reconnect
//! costs latency, not messages, because every wait also re-polls after `REPOLL_MS` and no
//! later than the moment the script said a delayed or leased message becomes visible.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use baton_core::limits::{RECEIVE_MAX, VISIBILITY_TIMEOUT_MS_MAX};
use baton_core::{Delivery, QueueError, QueueName, ReceiptHandle, Timestamp};
use baton_engine::{EngineError, ReceiveOptions};
use redis::{PushInfo, PushKind};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::client::{self, Access, Redis};
use crate::{codec, scripts, RedisEngine};

/// Longest a waiting receive goes without looking at its queue again.
pub(crate) const REPOLL_MS: u64 = 1_000;
/// Most channels one node subscribes to; beyond, waits rely on re-polling.
const CHANNELS_MAX: usize = 10_000;

/// The wake-ups of the queues this node waits on.
#[derive(Default)]
pub(crate) struct Wakers {
    notifies: parking_lot::Mutex<HashMap<String, Arc<Notify>>>,
    subscribed: parking_lot::Mutex<HashSet<String>>,
}

/// Counts one waiting receive for as long as it lives.
pub(crate) struct WaitPermit<'a>(pub(crate) &'a AtomicU32);

impl Drop for WaitPermit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Wakers {
    pub(crate) fn notify_for(&self, channel: &str) -> Arc<Notify> {
        self.notifies
            .lock()
            .entry(channel.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn wake(&self, channel: &str) {
        let notify = self.notifies.lock().get(channel).cloned();
        if let Some(notify) = notify {
            notify.notify_waiters();
        }
    }

    /// Called by the client with each push message.
    pub(crate) fn on_push(&self, push: PushInfo) {
        if !matches!(push.kind, PushKind::SMessage | PushKind::Message) {
            return;
        }
        if let Some(channel) = push.data.first().and_then(client::text) {
            self.wake(&channel);
        }
    }

    pub(crate) async fn ensure_subscribed(&self, redis: &Redis, channel: &str) {
        {
            let subscribed = self.subscribed.lock();
            if subscribed.contains(channel) || subscribed.len() >= CHANNELS_MAX {
                return;
            }
        }
        let Ok(mut conn) = redis.connection().await else {
            return;
        };
        match conn.ssubscribe(channel).await {
            Ok(()) => {
                self.subscribed.lock().insert(channel.to_string());
            }
            Err(error) => tracing::debug!(%error, channel, "could not subscribe; re-polling"),
        }
    }
}

/// Subscribes each new connection to the channels the old one had.
pub(crate) fn resubscribe_on_connect(redis: &Arc<Redis>, waits: &Arc<Wakers>) {
    let waits = waits.clone();
    redis.set_on_connect(Arc::new(move |conn| {
        let channels: Vec<String> = waits.subscribed.lock().iter().cloned().collect();
        if channels.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for channel in channels {
                let mut conn = conn.clone();
                if let Err(error) = conn.ssubscribe(&channel).await {
                    tracing::debug!(%error, channel, "could not subscribe again");
                }
            }
        });
    }));
}

#[derive(Debug, Deserialize)]
struct DeliveryDoc {
    seq: u64,
    l: u64,
    id: String,
    rc: u32,
    fr: u64,
    sent: u64,
    #[serde(default)]
    g: Option<String>,
    #[serde(default)]
    d: Option<String>,
    #[serde(default)]
    dls: Option<String>,
    p: String,
}

#[derive(Debug, Deserialize)]
struct ReceiveDoc {
    d: Vec<DeliveryDoc>,
    next: i64,
    #[serde(default)]
    outbox: u64,
    #[serde(default)]
    now: u64,
}

fn check_options(options: &ReceiveOptions) -> Result<(), QueueError> {
    if !(1..=RECEIVE_MAX).contains(&options.max) {
        return Err(QueueError::InvalidParameter {
            field: "max".to_string(),
            reason: format!("{} is outside 1..={RECEIVE_MAX}", options.max),
        });
    }
    match options.visibility_timeout_ms {
        Some(ms) if ms > VISIBILITY_TIMEOUT_MS_MAX => Err(QueueError::InvalidParameter {
            field: "visibility_timeout_ms".to_string(),
            reason: format!("{ms} is outside 0..={VISIBILITY_TIMEOUT_MS_MAX}"),
        }),
        _ => Ok(()),
    }
}

impl RedisEngine {
    pub(crate) async fn receive_queue(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        check_options(&options)?;
        let started = tokio::time::Instant::now();
        let channel = self.keys(name).wake_channel();
        let notify = self.waits.notify_for(&channel);
        let mut permit = None;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (info, value) = self
                .on_queue(name, &scripts::RECEIVE, Access::Write, |info| {
                    let visibility = options
                        .visibility_timeout_ms
                        .unwrap_or(info.config.visibility_timeout_ms);
                    Ok(vec![options.max.to_string(), visibility.to_string()])
                })
                .await?;
            let doc: ReceiveDoc = codec::parse(value)?;
            if doc.outbox > 0 {
                self.hand_over(name).await;
            }
            let mut deliveries = Vec::with_capacity(doc.d.len());
            for d in doc.d {
                let (body, attributes) = codec::payload_from_json(&d.p)?;
                deliveries.push(Delivery {
                    id: codec::id_from_text(&d.id)?,
                    seq: d.seq,
                    body,
                    attributes,
                    receipt: ReceiptHandle::from_parts(info.epoch, d.seq, d.l),
                    receive_count: d.rc,
                    sent_at: Timestamp::from_millis(d.sent),
                    first_received_at: Timestamp::from_millis(d.fr),
                    group_id: d.g.map(Arc::from),
                    dedup_id: d.d.map(Arc::from),
                    dead_letter_source: d.dls.and_then(|q| QueueName::new(&q).ok()),
                });
            }
            if !deliveries.is_empty() {
                return Ok(deliveries);
            }
            let wait_ms = options.wait_ms.unwrap_or(info.config.receive_wait_ms);
            let deadline = started + Duration::from_millis(wait_ms);
            let now = tokio::time::Instant::now();
            if now >= deadline || self.is_shutting_down() {
                return Ok(deliveries);
            }
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
                self.waits.ensure_subscribed(&self.redis, &channel).await;
            }
            let mut wake_at = deadline.min(now + Duration::from_millis(REPOLL_MS));
            if doc.next >= 0 {
                let next_in = u64::try_from(doc.next).unwrap_or(0).saturating_sub(doc.now);
                wake_at = wake_at.min(now + Duration::from_millis(next_in));
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }
}
