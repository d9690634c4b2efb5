//! Queues themselves: create, update, delete, read, list, and their metadata.
//!
//! A queue's name is added to the registry (`{ns}:queues`) before its keys are created and
//! removed after they are deleted, so a crash in between leaves a name without a queue
//! (skipped by `list_queues`), never a queue without a name. The checks that span queues (a
//! dead-letter queue exists and is of the same kind; a queue is nobody's dead-letter queue
//! before it is deleted) read the other queues' slots without a lock across them: a create
//! racing a delete of its dead-letter queue can leave it pointing at a missing queue, in
//! which case its dead letters return to it (`moves.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use baton_core::{
    Acked, Delivery, MessageId, PeekedMessage, QueueConfig, QueueError, QueueName, ReceiptError,
    ReceiptHandle, SendEntry, SendOutcome, Seq, StatusRecord, VisibilityOutcome,
};
use baton_engine::{
    Created, EngineError, MetaPatch, QueueEngine, QueueView, ReceiveOptions, RedriveOptions,
};
use serde::Serialize;

use crate::client::{self, Access};
use crate::codec::{self, ViewDoc};
use crate::messages::Rule;
use crate::{keys, not_found, scripts, RedisEngine};

/// A metadata change as `meta.lua` reads it.
#[derive(Debug, Serialize, Default)]
struct PatchDoc {
    expect: Vec<(String, Option<String>)>,
    set_tags: Option<BTreeMap<String, String>>,
    set_attrs: Option<BTreeMap<String, String>>,
    remove_tags: Vec<String>,
    put_tags: BTreeMap<String, String>,
    remove_attrs: Vec<String>,
    put_attrs: BTreeMap<String, String>,
    push: Option<PushPatch>,
}

/// A change of the push subscription as `meta.lua` reads it: the new JSON (`None` removes
/// it), and with `check`, the JSON it must hold first (`None`: none).
#[derive(Debug, Serialize)]
struct PushPatch {
    value: Option<String>,
    check: bool,
    expect: Option<String>,
}

impl RedisEngine {
    async fn check_dead_letter(&self, config: &QueueConfig) -> Result<(), EngineError> {
        let Some(policy) = &config.dead_letter else {
            return Ok(());
        };
        let info = match self.info(&policy.queue).await {
            Err(EngineError::QueueNotFound { .. }) => {
                return Err(EngineError::DeadLetterQueueInvalid {
                    reason: format!("queue {} does not exist", policy.queue),
                })
            }
            other => other?,
        };
        if info.config.fifo != config.fifo {
            let kind = |fifo: bool| if fifo { "FIFO" } else { "standard" };
            return Err(EngineError::DeadLetterQueueInvalid {
                reason: format!(
                    "queue {} is {}, a {} queue needs a {} dead-letter queue",
                    policy.queue,
                    kind(info.config.fifo),
                    kind(config.fifo),
                    kind(config.fifo)
                ),
            });
        }
        Ok(())
    }

    /// Every name in the registry, sorted.
    pub(crate) async fn queue_names(&self) -> Result<Vec<QueueName>, EngineError> {
        let registry = keys::registry(&self.namespace);
        let mut smembers = redis::cmd("SMEMBERS");
        smembers.arg(&registry);
        let replies = self
            .call(
                self.redis
                    .run_commands(&registry, vec![smembers], Access::Read),
            )
            .await?;
        let mut names: Vec<QueueName> = replies
            .first()
            .map(client::texts)
            .unwrap_or_default()
            .iter()
            .filter_map(|name| QueueName::new(name).ok())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn registry_change(&self, command: &str, name: &QueueName) -> Result<(), EngineError> {
        let registry = keys::registry(&self.namespace);
        let mut cmd = redis::cmd(command);
        cmd.arg(&registry).arg(name.as_str());
        self.call(self.redis.run_commands(&registry, vec![cmd], Access::Write))
            .await
            .map(|_| ())
    }

    fn compare(
        name: &QueueName,
        view: QueueView,
        config: &QueueConfig,
    ) -> Result<Created, EngineError> {
        let found = baton_engine::config_differences(&view.config, config);
        if found.is_empty() {
            Ok(Created::Existing(view))
        } else {
            Err(EngineError::QueueExists {
                queue: name.to_string(),
                differences: found.join(", "),
            })
        }
    }

    async fn create(&self, name: QueueName, config: QueueConfig) -> Result<Created, EngineError> {
        match self.get_queue(&name).await {
            Ok(view) => return Self::compare(&name, view, &config),
            Err(EngineError::QueueNotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        config.validate(&name)?;
        self.check_dead_letter(&config).await?;
        self.registry_change("SADD", &name).await?;
        let keys = self.keys(&name);
        let mut args = self.common_args(None, &name);
        args.extend(codec::config_fields(&config));
        args.push(uuid::Uuid::new_v4().as_u64_pair().0.to_string());
        let text = self
            .call(
                self.redis
                    .run_script(&scripts::CREATE, &keys.all(), &args, Access::Write),
            )
            .await?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| codec::corrupt("script answer", &e))?;
        codec::normalize(&mut value);
        let doc: ViewDoc = codec::parse(value)?;
        let existing = doc.existing == Some(true);
        let view = doc.into_view(&name)?;
        if existing {
            return Self::compare(&name, view, &config);
        }
        Ok(Created::New(view))
    }

    async fn view_of(
        &self,
        name: &QueueName,
        value: serde_json::Value,
    ) -> Result<QueueView, EngineError> {
        codec::parse::<ViewDoc>(value)?.into_view(name)
    }

    async fn change_meta(
        &self,
        name: &QueueName,
        patch: PatchDoc,
    ) -> Result<QueueView, EngineError> {
        let patch = serde_json::to_string(&patch).map_err(|e| codec::corrupt("patch", &e))?;
        let (_, value) = self
            .on_queue(name, &scripts::META, Access::Write, |_| {
                Ok(vec![patch.clone()])
            })
            .await?;
        self.view_of(name, value).await
    }

    /// The queues whose dead-letter queue is `name`.
    async fn sources_of(&self, name: &QueueName) -> Result<Vec<String>, EngineError> {
        let mut sources = Vec::new();
        for other in self.queue_names().await? {
            if &other == name {
                continue;
            }
            self.forget(&other);
            match self.info(&other).await {
                Ok(info) => {
                    if info
                        .config
                        .dead_letter
                        .as_ref()
                        .is_some_and(|d| &d.queue == name)
                    {
                        sources.push(other.to_string());
                    }
                }
                Err(EngineError::QueueNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(sources)
    }
}

#[async_trait]
impl QueueEngine for RedisEngine {
    async fn create_queue(
        &self,
        name: QueueName,
        config: QueueConfig,
    ) -> Result<Created, EngineError> {
        self.create(name, config).await
    }

    async fn set_queue_meta(
        &self,
        name: &QueueName,
        tags: Option<BTreeMap<String, String>>,
        attributes: Option<BTreeMap<String, String>>,
    ) -> Result<QueueView, EngineError> {
        let patch = PatchDoc {
            set_tags: tags,
            set_attrs: attributes,
            ..PatchDoc::default()
        };
        self.change_meta(name, patch).await
    }

    async fn update_queue_meta(
        &self,
        name: &QueueName,
        patch: MetaPatch,
    ) -> Result<QueueView, EngineError> {
        let patch = PatchDoc {
            expect: patch.expect_attributes.into_iter().collect(),
            remove_tags: patch.remove_tags,
            put_tags: patch.put_tags,
            remove_attrs: patch.remove_attributes,
            put_attrs: patch.put_attributes,
            ..PatchDoc::default()
        };
        self.change_meta(name, patch).await
    }

    async fn set_push(
        &self,
        name: &QueueName,
        push: Option<baton_engine::PushSpec>,
        expect: Option<Option<baton_engine::PushSpec>>,
    ) -> Result<QueueView, EngineError> {
        let patch = PatchDoc {
            push: Some(PushPatch {
                value: push.as_ref().map(codec::push_to_json),
                check: expect.is_some(),
                expect: expect.flatten().as_ref().map(codec::push_to_json),
            }),
            ..PatchDoc::default()
        };
        self.change_meta(name, patch).await
    }

    async fn update_queue(
        &self,
        name: &QueueName,
        config: QueueConfig,
    ) -> Result<QueueView, EngineError> {
        self.info(name).await?;
        config.validate(name)?;
        self.check_dead_letter(&config).await?;
        let fields = codec::config_fields(&config);
        let (_, value) = self
            .on_queue(
                name,
                &scripts::UPDATE,
                Access::Write,
                |_| Ok(fields.clone()),
            )
            .await?;
        self.forget(name);
        self.waits.wake(&self.keys(name).wake_channel());
        self.view_of(name, value).await
    }

    async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError> {
        self.info(name).await?;
        let sources = self.sources_of(name).await?;
        if !sources.is_empty() {
            return Err(EngineError::QueueInUse {
                queue: name.to_string(),
                sources: sources.join(", "),
            });
        }
        let keys = self.keys(name);
        let args = self.common_args(None, name);
        let text = self
            .call(
                self.redis
                    .run_script(&scripts::DELETE, &keys.all(), &args, Access::Write),
            )
            .await?;
        self.forget(name);
        self.waits.wake(&keys.wake_channel());
        if text.contains("NOT_FOUND") {
            return Err(not_found(name));
        }
        self.registry_change("SREM", name).await
    }

    async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError> {
        let (_, value) = self
            .on_queue(name, &scripts::GET, Access::Read, |_| Ok(Vec::new()))
            .await?;
        self.view_of(name, value).await
    }

    async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError> {
        let mut views = Vec::new();
        for name in self.queue_names().await? {
            match self.get_queue(&name).await {
                Ok(view) => views.push(view),
                Err(EngineError::QueueNotFound { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(views)
    }

    async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError> {
        self.purge(name).await
    }

    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        let results = self.send_entries(name, entries, false).await?;
        results
            .into_iter()
            .map(|r| r.map_err(EngineError::Queue))
            .collect()
    }

    async fn send_each(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError> {
        self.send_entries(name, entries, true).await
    }

    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        self.receive_queue(name, options).await
    }

    async fn ack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError> {
        self.ack_with_reply(name, receipts, None).await
    }

    async fn ack_with_reply(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<std::sync::Arc<str>>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError> {
        let results = self
            .finish(name, receipts, reply, Rule::CurrentLease)
            .await?;
        Ok(results
            .into_iter()
            .map(|r| r.and_then(|acked| acked.ok_or(ReceiptError::Stale)))
            .collect())
    }

    async fn nack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError> {
        self.nack_receipts(name, receipts, delay_ms).await
    }

    async fn delete(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError> {
        self.finish(name, receipts, None, Rule::AnyIssued).await
    }

    async fn change_message_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, EngineError> {
        self.retime(name, receipt, timeout_ms, Rule::AnyIssued)
            .await
    }

    async fn change_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), EngineError> {
        self.retime(name, receipt, timeout_ms, Rule::CurrentLease)
            .await
            .map(|_| ())
    }

    async fn message_status(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError> {
        self.status_of(name, id).await
    }

    async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError> {
        self.redrive_queue(name, options).await
    }

    async fn record_callback(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError> {
        self.record_callback_outcome(name, id, succeeded, reason)
            .await
    }

    async fn callback_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError> {
        self.callbacks_failed(max).await
    }

    async fn peek(
        &self,
        name: &QueueName,
        after: Seq,
        max: u32,
    ) -> Result<Vec<PeekedMessage>, EngineError> {
        self.peek_queue(name, after, max).await
    }
}
