//! Moves between queues (dead letters, redrive) and the tick.
//!
//! A queue's script that moves a message out (a lease ending on the last allowed receive, a
//! redrive) detaches it and writes it to the queue's outbox (`out`) in the same script, so the
//! move is in the source's slot as atomically as the source's change. The hand-over to the
//! destination then runs right after the operation and on every tick: the destination's
//! `accept.lua` takes the entry under its token (`<source>:<epoch>:<seq>`) unless it accepted
//! that token before or holds the message id already, and only then is the entry removed from
//! the outbox. A node that dies anywhere in between leaves the entry in the outbox, and the
//! next hand-over (by any node) completes it: nothing is lost, and a repeated hand-over is
//! recognised by its token, so nothing is delivered twice. Tokens are remembered for seven
//! days in the destination.

use baton_core::QueueName;
use baton_engine::{Completion, CompletionKind, EngineError, RedriveOptions};
use redis::Value;
use serde::Deserialize;

use crate::client::{self, Access};
use crate::codec::{self, EventDoc};
use crate::messages::last_receive_count;
use crate::{not_found, scripts, HandOverFault, RedisEngine};

/// Outbox entries read per round, and rounds per hand-over.
const HAND_OVER_BATCH: usize = 100;
const HAND_OVER_ROUNDS: usize = 10;
/// Messages one redrive script takes at most.
const REDRIVE_STEP: u64 = 1_000;

#[derive(Debug, Deserialize)]
struct MoveDoc {
    dest: String,
    kind: String,
    src: String,
    id: String,
    #[serde(default)]
    n: Option<String>,
    h: Vec<EventDoc>,
    sent: u64,
}

fn stopped() -> EngineError {
    EngineError::StorageUnavailable {
        reason: "the hand-over was stopped by an injected fault".to_string(),
    }
}

impl RedisEngine {
    /// Hands over what `source`'s outbox holds; failures leave it for the next tick.
    pub(crate) async fn hand_over(&self, source: &QueueName) {
        if let Err(error) = self.try_hand_over(source).await {
            tracing::debug!(queue = %source, %error, "hand-over left for the next tick");
        }
    }

    async fn try_hand_over(&self, source: &QueueName) -> Result<(), EngineError> {
        let out = self.keys(source).outbox();
        for _ in 0..HAND_OVER_ROUNDS {
            let mut hscan = redis::cmd("HSCAN");
            hscan.arg(&out).arg(0).arg("COUNT").arg(HAND_OVER_BATCH);
            let replies = self
                .call(self.redis.run_commands(&out, vec![hscan], Access::Read))
                .await?;
            let pairs = match replies.first() {
                Some(Value::Array(parts)) => parts.get(1).map(client::texts).unwrap_or_default(),
                _ => Vec::new(),
            };
            if pairs.is_empty() {
                return Ok(());
            }
            for pair in pairs.chunks(2) {
                if let [token, entry] = pair {
                    self.hand_over_one(source, &out, token, entry).await?;
                }
            }
        }
        Ok(())
    }

    async fn hand_over_one(
        &self,
        source: &QueueName,
        out: &str,
        token: &str,
        entry: &str,
    ) -> Result<(), EngineError> {
        if *self.fault.read() == Some(HandOverFault::BeforeAccept) {
            return Err(stopped());
        }
        let doc: MoveDoc =
            serde_json::from_str(entry).map_err(|e| codec::corrupt("outbox entry", &e))?;
        let dest = QueueName::new(&doc.dest).map_err(|e| codec::corrupt("outbox entry", &e))?;
        let accepted = match self.accept(&dest, token, entry).await {
            Err(EngineError::QueueNotFound { .. }) if &dest != source => {
                // The destination is gone (a dead-letter queue deleted meanwhile): the message
                // goes back to where it came from rather than being lost.
                let mut back: serde_json::Value =
                    serde_json::from_str(entry).map_err(|e| codec::corrupt("outbox entry", &e))?;
                back["kind"] = "redriven".into();
                tracing::error!(queue = %source, destination = %dest, "destination missing; message returns to its source");
                match self.accept(source, token, &back.to_string()).await {
                    Err(EngineError::QueueNotFound { .. }) => false,
                    other => other?,
                }
            }
            Err(EngineError::QueueNotFound { .. }) => false,
            other => other?,
        };
        if accepted && doc.kind == "dead_lettered" {
            self.spawn_dead_letter_completion(&doc)?;
        }
        if *self.fault.read() == Some(HandOverFault::AfterAccept) {
            return Err(stopped());
        }
        let mut hdel = redis::cmd("HDEL");
        hdel.arg(out).arg(token);
        self.call(self.redis.run_commands(out, vec![hdel], Access::Write))
            .await?;
        self.waits.wake(&self.keys(&dest).wake_channel());
        Ok(())
    }

    /// Runs `accept.lua` on `dest`; true when it took the message (false: seen before).
    async fn accept(
        &self,
        dest: &QueueName,
        token: &str,
        entry: &str,
    ) -> Result<bool, EngineError> {
        let args = vec![token.to_string(), entry.to_string()];
        let (_, value) = self
            .on_queue(dest, &scripts::ACCEPT, Access::Write, |_| Ok(args.clone()))
            .await?;
        Ok(value.get("accepted").and_then(|a| a.as_bool()) == Some(true))
    }

    fn spawn_dead_letter_completion(&self, doc: &MoveDoc) -> Result<(), EngineError> {
        let Some(notify) = codec::notify_from_json(doc.n.as_deref()) else {
            return Ok(());
        };
        let hook = self.completion_hook.read().clone();
        let (Some(hook), Ok(runtime)) = (hook, tokio::runtime::Handle::try_current()) else {
            return Ok(());
        };
        let history = codec::history(doc.h.iter().map(EventDoc::clone_doc).collect());
        let completion = Completion {
            queue: QueueName::new(&doc.src).map_err(|e| codec::corrupt("outbox entry", &e))?,
            id: codec::id_from_text(&doc.id)?,
            kind: CompletionKind::DeadLettered,
            sent_at: baton_core::Timestamp::from_millis(doc.sent),
            completed_at: self.now_for_completions(),
            receive_count: last_receive_count(&history),
            notify,
            reply: None,
        };
        runtime.spawn(hook(vec![completion]));
        Ok(())
    }

    pub(crate) async fn redrive_queue(
        &self,
        name: &QueueName,
        options: RedriveOptions,
    ) -> Result<u64, EngineError> {
        let info = self.info(name).await?;
        if let Some(to) = &options.to {
            if to == name {
                return Err(EngineError::DeadLetterQueueInvalid {
                    reason: "cannot redrive a queue into itself".to_string(),
                });
            }
            let to_info = match self.info(to).await {
                Err(EngineError::QueueNotFound { .. }) => return Err(not_found(to)),
                other => other?,
            };
            if to_info.config.fifo != info.config.fifo {
                return Err(EngineError::DeadLetterQueueInvalid {
                    reason: format!("queue {to} is of the other kind (FIFO vs standard)"),
                });
            }
        }
        let mut origins = Vec::new();
        for other in self.queue_names().await? {
            if &other == name {
                continue;
            }
            if let Ok(other_info) = self.info(&other).await {
                if other_info.config.fifo == info.config.fifo {
                    origins.push(other.to_string());
                }
            }
        }
        let to = options
            .to
            .as_ref()
            .map(|t| t.to_string())
            .unwrap_or_default();
        let mut left = options.max.unwrap_or(u64::MAX);
        let mut moved_total = 0;
        while left > 0 {
            let step = left.min(REDRIVE_STEP);
            let mut args = vec![step.to_string(), to.clone(), origins.len().to_string()];
            args.extend(origins.iter().cloned());
            let (_, value) = self
                .on_queue(name, &scripts::REDRIVE, Access::Write, |_| Ok(args.clone()))
                .await?;
            let moved = value.get("moved").and_then(|m| m.as_u64()).unwrap_or(0);
            moved_total += moved;
            left -= moved.min(left);
            if moved < step {
                break;
            }
        }
        self.hand_over(name).await;
        Ok(moved_total)
    }

    /// Applies what became due in every queue and hands over what their outboxes hold, then
    /// what every topic's outbox holds (`topics.rs`).
    pub(crate) async fn tick_all(&self) {
        let names = match self.queue_names().await {
            Ok(names) => names,
            Err(error) => {
                tracing::debug!(%error, "tick: cannot list queues");
                return;
            }
        };
        for name in names {
            match self
                .on_queue(&name, &scripts::ADVANCE, Access::Write, |_| Ok(Vec::new()))
                .await
            {
                Ok((_, value)) => {
                    if value.get("outbox").and_then(|o| o.as_u64()).unwrap_or(0) > 0 {
                        self.hand_over(&name).await;
                    }
                }
                Err(EngineError::QueueNotFound { .. }) => {}
                Err(error) => tracing::debug!(queue = %name, %error, "tick: advance failed"),
            }
        }
        self.tick_topics().await;
    }
}
