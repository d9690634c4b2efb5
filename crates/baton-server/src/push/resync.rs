//! Push subscriptions set or removed by other nodes sharing the engine (cluster mode): every
//! [`RESYNC_INTERVAL`] the node reads the stored subscriptions and starts, restarts or stops
//! its own workers to match, so a subscription works whichever node it was set on and a
//! delete on one node stops the deliveries of all.
//!
//! Only on an engine shared by several nodes (`Engine::shared_by_nodes`): on one node's own
//! engine every change goes through this node's `PushManager`, so there is nothing to learn.
//! Every node then runs a worker per subscription (no ownership by one node yet); they share
//! the queue's messages through leases as any consumers do, each message delivered once per
//! receive, as with one node.

use std::collections::HashMap;
use std::time::Duration;

use baton_core::QueueName;
use baton_proto as proto;

use super::{from_spec, PushManager};

/// How often the stored subscriptions are read again.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(2);

impl PushManager {
    /// Re-syncs every [`RESYNC_INTERVAL`] until shutdown; returns at once on an engine that
    /// is not shared.
    pub async fn run_resync(&self) {
        if !self.shared.engine.shared_by_nodes() {
            return;
        }
        let mut ticker = tokio::time::interval(RESYNC_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is now: `resume` has just read them
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            self.resync().await;
        }
    }

    /// One pass: what the engine stores wins over this node's workers, except for workers
    /// started after the queues were read.
    async fn resync(&self) {
        let read_at = tokio::time::Instant::now();
        let queues = match self.shared.engine.list_queues().await {
            Ok(queues) => queues,
            // The next pass tries again; the workers go on meanwhile.
            Err(error) => {
                tracing::debug!(%error, "cannot re-read the push subscriptions");
                return;
            }
        };
        let stored: HashMap<QueueName, Option<proto::PushSubscription>> = queues
            .into_iter()
            .map(|view| (view.name, view.meta.push.map(from_spec)))
            .collect();
        let mut to_start = Vec::new();
        {
            let mut workers = self.workers.lock();
            workers.retain(|queue, worker| {
                let same = |stored: &proto::PushSubscription| {
                    self.validate(stored.clone()).ok().as_ref() == Some(&worker.subscription)
                };
                let keep = worker.started_at > read_at
                    || matches!(stored.get(queue), Some(Some(subscription)) if same(subscription));
                if !keep {
                    worker.cancel.cancel();
                }
                keep
            });
            for (queue, subscription) in &stored {
                if let Some(subscription) = subscription {
                    if !workers.contains_key(queue) {
                        to_start.push((queue.clone(), subscription.clone()));
                    }
                }
            }
        }
        // Refusals are logged once per subscription, not on every pass.
        let mut refused = self.resync_refused.lock();
        refused.retain(
            |queue, subscription| matches!(stored.get(queue), Some(Some(s)) if s == subscription),
        );
        for (queue, subscription) in to_start {
            if refused.get(&queue) == Some(&subscription) {
                continue;
            }
            match self
                .validate(subscription.clone())
                .and_then(|s| self.start(queue.clone(), s))
            {
                Ok(()) => {
                    tracing::info!(%queue, "push subscription set on another node started here")
                }
                Err(error) => {
                    tracing::warn!(%queue, %error, "push subscription set on another node is invalid here (outbound lists differ?); not started");
                    refused.insert(queue, subscription);
                }
            }
        }
    }
}
