//! Live subscriptions (Redis Pub/Sub style): a topic's messages matching a pattern, pushed to
//! connected clients over Server-Sent Events or a WebSocket as they are published.
//!
//! # Guarantees and slow consumers
//! Live delivery is ephemeral: a connection sees what is published while it is open, nothing
//! before, and nothing is stored for it. A message is pushed only after its publish is durable
//! (`service::topics::publish` calls [`LiveHub::publish`] after the engine answered). Each connection has a
//! bounded buffer of `live_buffer_messages`; when it is full, further messages are dropped
//! *for that connection only* and counted. The connection reports the count to its client
//! (an SSE `dropped` event, a WebSocket `{"type": "dropped"}` frame) before the next message
//! it sends, and the topic's stats count every drop (`live_dropped_total`). Publishers never
//! wait for live connections, and durable storage (queues) never loses anything to them.
//!
//! # Sources
//! The hub is keyed by [`LiveSource`]: topics push through it; stream followers
//! (`api/stream_live.rs`) read from storage by themselves and only take a [`LivePermit`],
//! which counts them and their figures under `LiveSource::Stream`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use baton_core::topic::{Pattern, RoutingKey};
use baton_proto as proto;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::service::ServiceError;

/// What live connections can follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LiveSource {
    Topic(String),
    /// A stream's followers (`api/stream_live.rs`): they read from storage, so the hub only
    /// counts them (connections, records sent, records retention removed before they read).
    Stream(String),
}

/// One message ready to push: its routing key (for pattern matching) and its wire form.
pub type LiveItem = (RoutingKey, Arc<proto::LiveMessage>);

#[derive(Default)]
struct SourceCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
}

struct Subscriber {
    id: u64,
    pattern: Option<Pattern>,
    tx: mpsc::Sender<Arc<proto::LiveMessage>>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct Inner {
    subscribers: HashMap<LiveSource, Vec<Subscriber>>,
    /// Open connections per source that read by themselves (stream followers).
    followers: HashMap<LiveSource, u64>,
    counters: HashMap<LiveSource, Arc<SourceCounters>>,
    next_id: u64,
}

/// Every live connection, by source.
pub struct LiveHub {
    inner: Mutex<Inner>,
    n_connections: AtomicU32,
    buffer_messages: usize,
    connections_max: u32,
}

/// A source's live figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    pub subscribers: u64,
    pub sent_total: u64,
    pub dropped_total: u64,
}

/// One open connection's end of the hub; unsubscribes when dropped.
pub struct LiveSubscription {
    hub: Arc<LiveHub>,
    source: LiveSource,
    id: u64,
    rx: mpsc::Receiver<Arc<proto::LiveMessage>>,
    dropped: Arc<AtomicU64>,
    dropped_total: u64,
}

/// What a connection sends next.
pub enum LiveEvent {
    Message(Arc<proto::LiveMessage>),
    Dropped(proto::LiveDropped),
}

impl LiveHub {
    pub fn new(buffer_messages: u32, connections_max: u32) -> Self {
        LiveHub {
            inner: Mutex::default(),
            n_connections: AtomicU32::new(0),
            buffer_messages: buffer_messages.max(1) as usize,
            connections_max,
        }
    }

    pub fn subscribe(
        self: &Arc<Self>,
        source: LiveSource,
        pattern: Option<Pattern>,
    ) -> Result<LiveSubscription, ServiceError> {
        if self.n_connections.fetch_add(1, Ordering::SeqCst) >= self.connections_max {
            self.n_connections.fetch_sub(1, Ordering::SeqCst);
            return Err(ServiceError::TooManyLiveSubscribers {
                limit: self.connections_max,
            });
        }
        let (tx, rx) = mpsc::channel(self.buffer_messages);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.counters.entry(source.clone()).or_default();
        inner
            .subscribers
            .entry(source.clone())
            .or_default()
            .push(Subscriber {
                id,
                pattern,
                tx,
                dropped: dropped.clone(),
            });
        Ok(LiveSubscription {
            hub: self.clone(),
            source,
            id,
            rx,
            dropped,
            dropped_total: 0,
        })
    }

    pub fn has_subscribers(&self, source: &LiveSource) -> bool {
        self.inner
            .lock()
            .subscribers
            .get(source)
            .is_some_and(|s| !s.is_empty())
    }

    /// Offers each item to every matching connection without waiting: a full buffer drops
    /// the item for that connection and counts it.
    pub fn publish(&self, source: &LiveSource, items: &[LiveItem]) {
        if items.is_empty() {
            return;
        }
        let inner = self.inner.lock();
        let (Some(subscribers), Some(counters)) =
            (inner.subscribers.get(source), inner.counters.get(source))
        else {
            return;
        };
        for (key, message) in items {
            for subscriber in subscribers {
                if subscriber.pattern.as_ref().is_some_and(|p| !p.matches(key)) {
                    continue;
                }
                match subscriber.tx.try_send(message.clone()) {
                    Ok(()) => {
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        subscriber.dropped.fetch_add(1, Ordering::Relaxed);
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    // The connection is closing; its guard removes it.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
    }

    pub fn stats(&self, source: &LiveSource) -> LiveStats {
        let inner = self.inner.lock();
        let counters = inner.counters.get(source);
        LiveStats {
            subscribers: inner.subscribers.get(source).map_or(0, |s| s.len() as u64)
                + inner.followers.get(source).copied().unwrap_or(0),
            sent_total: counters.map_or(0, |c| c.sent.load(Ordering::Relaxed)),
            dropped_total: counters.map_or(0, |c| c.dropped.load(Ordering::Relaxed)),
        }
    }

    /// Opens a connection that reads by itself (a stream follower): it counts toward
    /// `live_connections_max` and the source's subscribers until the permit is dropped.
    pub fn follow(self: &Arc<Self>, source: LiveSource) -> Result<LivePermit, ServiceError> {
        if self.n_connections.fetch_add(1, Ordering::SeqCst) >= self.connections_max {
            self.n_connections.fetch_sub(1, Ordering::SeqCst);
            return Err(ServiceError::TooManyLiveSubscribers {
                limit: self.connections_max,
            });
        }
        let mut inner = self.inner.lock();
        *inner.followers.entry(source.clone()).or_default() += 1;
        let counters = inner.counters.entry(source.clone()).or_default().clone();
        Ok(LivePermit {
            hub: self.clone(),
            source,
            counters,
        })
    }

    /// Sources with figures, for metrics.
    pub fn sources(&self) -> Vec<LiveSource> {
        self.inner.lock().counters.keys().cloned().collect()
    }

    /// Lets go of every connection: each sends what it has buffered and ends. Part of
    /// graceful shutdown.
    pub fn close_all(&self) {
        self.inner.lock().subscribers.clear();
    }
}

impl LiveSubscription {
    /// The next thing to send: a drop report if messages were dropped since the last one,
    /// else the next message. `None` when the hub let go of the connection.
    pub async fn next(&mut self) -> Option<LiveEvent> {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            self.dropped_total += dropped;
            return Some(LiveEvent::Dropped(proto::LiveDropped {
                dropped,
                dropped_total: self.dropped_total,
            }));
        }
        self.rx.recv().await.map(LiveEvent::Message)
    }
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        let mut inner = self.hub.inner.lock();
        if let Some(subscribers) = inner.subscribers.get_mut(&self.source) {
            subscribers.retain(|s| s.id != self.id);
            if subscribers.is_empty() {
                inner.subscribers.remove(&self.source);
            }
        }
        drop(inner);
        self.hub.n_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A follower's place in the hub (see `LiveHub::follow`).
pub struct LivePermit {
    hub: Arc<LiveHub>,
    source: LiveSource,
    counters: Arc<SourceCounters>,
}

impl LivePermit {
    pub fn count_sent(&self, n: u64) {
        self.counters.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn count_dropped(&self, n: u64) {
        self.counters.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for LivePermit {
    fn drop(&mut self) {
        let mut inner = self.hub.inner.lock();
        if let Some(n) = inner.followers.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.followers.remove(&self.source);
            }
        }
        drop(inner);
        self.hub.n_connections.fetch_sub(1, Ordering::SeqCst);
    }
}
