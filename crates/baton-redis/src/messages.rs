//! Message operations: sends (whole batches and SQS's per-entry batches), acks and deletes,
//! nacks, visibility changes, status records, peeks, purges and completion callbacks.
//!
//! Receipts are checked here before any script runs: a receipt names the queue incarnation
//! by a tag keyed with its epoch (`ReceiptHandle::from_parts`), which only the engine can
//! compute; the script then checks the lease (the receipt's lease number must be the
//! message's current one, so a stale receipt never acks).

use std::sync::Arc;

use baton_core::limits::PEEK_MAX;
use baton_core::schedule::ScheduleName;
use baton_core::{
    Acked, HistoryEventKind, MessageId, PeekState, PeekedMessage, QueueError, QueueName,
    ReceiptError, ReceiptHandle, SendEntry, SendOutcome, Seq, StatusRecord, Timestamp,
    VisibilityOutcome,
};
use baton_engine::{Completion, CompletionKind, EngineError};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::client::Access;
use crate::codec::{self, EventDoc};
use crate::locks::Fence;
use crate::{changing, scripts, Info, RedisEngine, RunError, WriteError, STALE_RETRIES};

/// Which receipts finish a message (as in the local engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Only the current lease's receipt (the native API).
    CurrentLease,
    /// Any receipt ever issued for the message (SQS's `DeleteMessage`).
    AnyIssued,
}

impl Rule {
    fn arg(self) -> String {
        match self {
            Rule::CurrentLease => "c",
            Rule::AnyIssued => "a",
        }
        .to_string()
    }
}

/// What makes a send idempotent beyond live message ids: a schedule's tick marker
/// (`fired.lua`) or a topic copy's token (`published.lua`).
#[derive(Debug, Clone, Copy)]
enum Guard<'a> {
    Fired(&'a ScheduleName, Timestamp),
    Published(&'a str),
}

#[derive(Debug, Deserialize)]
struct SentDoc {
    id: String,
    seq: u64,
    dup: bool,
}

#[derive(Debug, Deserialize)]
struct SendDoc {
    sent: Vec<SentDoc>,
}

#[derive(Debug, Deserialize)]
struct FinishedDoc {
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    sent: u64,
    #[serde(default)]
    rc: u32,
    #[serde(default)]
    n: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResultsDoc {
    r: Vec<FinishedDoc>,
    #[serde(default)]
    outbox: u64,
}

#[derive(Debug, Deserialize)]
struct StatusDoc {
    #[serde(default)]
    none: Option<bool>,
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    h: Vec<EventDoc>,
}

#[derive(Debug, Deserialize)]
struct IdStatusDoc {
    id: String,
    s: String,
    h: Vec<EventDoc>,
}

#[derive(Debug, Deserialize)]
struct FailedDoc {
    r: Vec<IdStatusDoc>,
}

#[derive(Debug, Deserialize)]
struct PurgeDoc {
    purged: u64,
    more: bool,
    upto: u64,
}

#[derive(Debug, Deserialize)]
struct PeekItem {
    seq: u64,
    id: String,
    s: String,
    at: u64,
    rc: u32,
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
struct PeekDoc {
    m: Vec<PeekItem>,
}

fn receipt_error(code: Option<&str>) -> ReceiptError {
    match code {
        Some("I") => ReceiptError::Invalid,
        _ => ReceiptError::Stale,
    }
}

fn content_dedup_id(body: &str) -> String {
    Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The script arguments of one entry (see `send.lua`).
fn entry_args(info: &Info, entry: &SendEntry, out: &mut Vec<String>) {
    let dedup = entry.dedup_id.clone().or_else(|| {
        info.config
            .content_based_dedup
            .then(|| content_dedup_id(&entry.body))
    });
    out.push(codec::id_to_text(entry.id));
    out.push(entry.group_id.clone().unwrap_or_default());
    out.push(dedup.unwrap_or_default());
    out.push(entry.delay_ms.unwrap_or(info.config.delay_ms).to_string());
    out.push(
        entry
            .notify
            .as_ref()
            .map(codec::notify_to_json)
            .unwrap_or_default(),
    );
    out.push(codec::payload_to_json(&entry.body, &entry.attributes));
}

type Kept = (Vec<usize>, Vec<(usize, QueueError)>);

/// Which entries to send: all (a whole batch, any failure fails it) or each that passes its
/// own checks (SQS's batch; a missing FIFO group or dedup id still fails the whole call).
fn keep(info: &Info, entries: &[SendEntry], each: bool) -> Result<Kept, QueueError> {
    if !each {
        info.checker.check_send(entries)?;
        return Ok(((0..entries.len()).collect(), Vec::new()));
    }
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for (index, entry) in entries.iter().enumerate() {
        match info.checker.check_message(entry) {
            Ok(()) => kept.push(index),
            Err(
                error @ (QueueError::GroupIdRequired { .. } | QueueError::DedupIdRequired { .. }),
            ) => return Err(error),
            Err(error) => refused.push((index, error)),
        }
    }
    if !kept.is_empty() {
        let batch: Vec<SendEntry> = kept.iter().map(|&i| entries[i].clone()).collect();
        info.checker.check_send(&batch)?;
    }
    Ok((kept, refused))
}

impl RedisEngine {
    /// Sends `entries` (see `keep`); one result per entry, in order.
    pub(crate) async fn send_entries(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        each: bool,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError> {
        self.send_entries_fenced(name, entries, each, None)
            .await
            .map_err(WriteError::unfenced)
    }

    /// `send_entries`, checked against the queue's fence floor of `fence` in the same script.
    pub(crate) async fn send_entries_fenced(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        each: bool,
        fence: Option<&Fence>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, WriteError> {
        self.send_guarded(name, entries, each, fence, None).await
    }

    /// One topic copy handed over (`topics.rs`): `entries` sent as one batch unless the queue
    /// recorded `token` already (then answered as duplicates, nothing sent), the token
    /// recorded in the same script (`lua/published.lua`).
    pub(crate) async fn send_published(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        token: &str,
    ) -> Result<(), EngineError> {
        self.send_guarded(name, entries, false, None, Some(Guard::Published(token)))
            .await
            .map(drop)
            .map_err(WriteError::unfenced)
    }

    /// One firing of schedule `schedule` for `tick`: `entry` sent unless the queue's marker
    /// for the schedule is at or past `tick` (then answered as a duplicate of the message
    /// sent for it), the marker raised in the same script (`lua/fired.lua`).
    pub(crate) async fn send_fired(
        &self,
        name: &QueueName,
        entry: SendEntry,
        schedule: &ScheduleName,
        tick: Timestamp,
    ) -> Result<SendOutcome, EngineError> {
        let fired = Guard::Fired(schedule, tick);
        let results = self
            .send_guarded(name, vec![entry], false, None, Some(fired))
            .await
            .map_err(WriteError::unfenced)?;
        match results.into_iter().next() {
            Some(result) => result.map_err(EngineError::from),
            None => Err(EngineError::StorageUnavailable {
                reason: "a send of one entry answered no outcome".to_string(),
            }),
        }
    }

    /// The send of `send_entries_fenced`, `send_fired` and `send_published`: at most one of
    /// `fence` and `fired` is given.
    async fn send_guarded(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
        each: bool,
        fence: Option<&Fence>,
        fired: Option<Guard<'_>>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, WriteError> {
        assert!(
            fence.is_none() || fired.is_none(),
            "a send is fenced or fired, not both"
        );
        let script = match (fence, fired) {
            (Some(_), _) => &*scripts::SEND_FENCED,
            (None, Some(Guard::Fired(..))) => &*scripts::SEND_FIRED,
            (None, Some(Guard::Published(_))) => &*scripts::SEND_PUBLISHED,
            (None, None) => &*scripts::SEND,
        };
        for _ in 0..STALE_RETRIES {
            let info = self.info(name).await?;
            let (kept, refused) = keep(&info, &entries, each).map_err(EngineError::from)?;
            let mut results: Vec<Option<Result<SendOutcome, QueueError>>> =
                (0..entries.len()).map(|_| None).collect();
            for (index, error) in refused {
                results[index] = Some(Err(error));
            }
            if !kept.is_empty() {
                let mut args = vec![kept.len().to_string()];
                for &index in &kept {
                    entry_args(&info, &entries[index], &mut args);
                }
                match fired {
                    Some(Guard::Fired(schedule, tick)) => {
                        args.push(schedule.to_string());
                        args.push(tick.as_millis().to_string());
                    }
                    Some(Guard::Published(token)) => args.push(token.to_string()),
                    None => {}
                }
                let value = match self
                    .run_fenced(name, &info, script, Access::Write, args, fence)
                    .await
                {
                    Ok(value) => value,
                    Err(RunError::Stale) => continue,
                    Err(RunError::Fenced { floor }) => return Err(WriteError::Fenced { floor }),
                    Err(RunError::Engine(error)) => return Err(error.into()),
                };
                let doc: SendDoc = codec::parse(value)?;
                for (&index, sent) in kept.iter().zip(doc.sent) {
                    results[index] = Some(Ok(SendOutcome {
                        id: codec::id_from_text(&sent.id)?,
                        seq: sent.seq,
                        duplicate: sent.dup,
                    }));
                }
                self.waits.wake(&info.keys.wake_channel());
            }
            return Ok(results.into_iter().flatten().collect());
        }
        Err(changing(name).into())
    }

    /// Splits receipts into those this incarnation minted (by tag) and the rest.
    fn receipt_args(info: &Info, receipts: &[ReceiptHandle]) -> (Vec<usize>, Vec<String>) {
        let mut valid = Vec::new();
        let mut args = Vec::new();
        for (index, receipt) in receipts.iter().enumerate() {
            let (seq, lease) = receipt.parts();
            if ReceiptHandle::from_parts(info.epoch, seq, lease) == *receipt {
                valid.push(index);
                args.push(seq.to_string());
                args.push(lease.to_string());
            }
        }
        (valid, args)
    }

    /// Runs a receipt script (`ack.lua`, `nack.lua`, or with `fence` their fenced twins) with
    /// `lead` arguments before the count; one answer per receipt, `Invalid` for receipts of
    /// another incarnation.
    async fn by_receipts(
        &self,
        name: &QueueName,
        script: &scripts::Script,
        lead: Vec<String>,
        receipts: &[ReceiptHandle],
        fence: Option<&Fence>,
    ) -> Result<Vec<Result<FinishedDoc, ReceiptError>>, WriteError> {
        for _ in 0..STALE_RETRIES {
            let info = self.info(name).await?;
            let (valid, pairs) = Self::receipt_args(&info, receipts);
            let mut out: Vec<Result<FinishedDoc, ReceiptError>> = (0..receipts.len())
                .map(|_| Err(ReceiptError::Invalid))
                .collect();
            if valid.is_empty() {
                return Ok(out);
            }
            let mut args = lead.clone();
            args.push(valid.len().to_string());
            args.extend(pairs);
            let value = match self
                .run_fenced(name, &info, script, Access::Write, args, fence)
                .await
            {
                Ok(value) => value,
                Err(RunError::Stale) => continue,
                Err(RunError::Fenced { floor }) => return Err(WriteError::Fenced { floor }),
                Err(RunError::Engine(error)) => return Err(error.into()),
            };
            let doc: ResultsDoc = codec::parse(value)?;
            for (&index, result) in valid.iter().zip(doc.r) {
                out[index] = match result.e.as_deref() {
                    None | Some("G") => Ok(result),
                    code => Err(receipt_error(code)),
                };
            }
            if doc.outbox > 0 {
                self.hand_over(name).await;
            }
            return Ok(out);
        }
        Err(changing(name).into())
    }

    /// Deletes the message of each receipt by `rule` and hands completions to the hook.
    pub(crate) async fn finish(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<Arc<str>>,
        rule: Rule,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError> {
        self.finish_fenced(name, receipts, reply, rule, None)
            .await
            .map_err(WriteError::unfenced)
    }

    /// `finish`, checked against the queue's fence floor of `fence` in the same script.
    pub(crate) async fn finish_fenced(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<Arc<str>>,
        rule: Rule,
        fence: Option<&Fence>,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, WriteError> {
        let script = match fence {
            Some(_) => &*scripts::ACK_FENCED,
            None => &*scripts::ACK,
        };
        let answers = self
            .by_receipts(name, script, vec![rule.arg()], &receipts, fence)
            .await?;
        let now = self.now_for_completions();
        let mut results = Vec::with_capacity(answers.len());
        let mut completions = Vec::new();
        for answer in answers {
            let doc = match answer {
                Ok(doc) => doc,
                Err(error) => {
                    results.push(Err(error));
                    continue;
                }
            };
            let Some(id) = doc.id.as_deref() else {
                results.push(Ok(None));
                continue;
            };
            let acked = Acked {
                id: codec::id_from_text(id)?,
                sent_at: Timestamp::from_millis(doc.sent),
                receive_count: doc.rc,
                notify: codec::notify_from_json(doc.n.as_deref()),
            };
            if let Some(notify) = acked.notify.clone() {
                completions.push(Completion {
                    queue: name.clone(),
                    id: acked.id,
                    kind: CompletionKind::Completed,
                    sent_at: acked.sent_at,
                    completed_at: now,
                    receive_count: acked.receive_count,
                    notify,
                    reply: reply.clone(),
                });
            }
            results.push(Ok(Some(acked)));
        }
        self.emit_completions(completions).await;
        Ok(results)
    }

    pub(crate) fn now_for_completions(&self) -> Timestamp {
        baton_engine::Engine::now(self)
    }

    pub(crate) async fn emit_completions(&self, completions: Vec<Completion>) {
        if completions.is_empty() {
            return;
        }
        let hook = self.completion_hook.read().clone();
        if let Some(hook) = hook {
            hook(completions).await;
        }
    }

    pub(crate) async fn nack_receipts(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError> {
        self.nack_fenced(name, receipts, delay_ms, None)
            .await
            .map_err(WriteError::unfenced)
    }

    /// `nack_receipts`, checked against the queue's fence floor of `fence` in the same script.
    pub(crate) async fn nack_fenced(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
        fence: Option<&Fence>,
    ) -> Result<Vec<Result<(), ReceiptError>>, WriteError> {
        let script = match fence {
            Some(_) => &*scripts::NACK_FENCED,
            None => &*scripts::NACK,
        };
        let lead = vec![delay_ms.map(|d| d.to_string()).unwrap_or_default()];
        let answers = self
            .by_receipts(name, script, lead, &receipts, fence)
            .await?;
        self.waits.wake(&self.keys(name).wake_channel());
        Ok(answers.into_iter().map(|a| a.map(|_| ())).collect())
    }

    pub(crate) async fn retime(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
        rule: Rule,
    ) -> Result<VisibilityOutcome, EngineError> {
        let (seq, lease) = receipt.parts();
        let (info, value) = self
            .on_queue(name, &scripts::VISIBILITY, Access::Write, |info| {
                if ReceiptHandle::from_parts(info.epoch, seq, lease) != receipt {
                    return Err(EngineError::Receipt(ReceiptError::Invalid));
                }
                Ok(vec![
                    rule.arg(),
                    seq.to_string(),
                    lease.to_string(),
                    timeout_ms.to_string(),
                ])
            })
            .await?;
        if let Some(code) = value.get("e").and_then(|e| e.as_str()) {
            return Err(EngineError::Receipt(receipt_error(Some(code))));
        }
        if value.get("outbox").and_then(|o| o.as_u64()).unwrap_or(0) > 0 {
            self.hand_over(name).await;
        }
        if timeout_ms == 0 {
            self.waits.wake(&info.keys.wake_channel());
        }
        Ok(match value.get("r").and_then(|r| r.as_str()) {
            Some("gone") => VisibilityOutcome::Gone,
            Some("not_in_flight") => VisibilityOutcome::NotInFlight,
            _ => VisibilityOutcome::Changed,
        })
    }

    pub(crate) async fn status_of(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError> {
        let id_text = codec::id_to_text(id);
        let (_, value) = self
            .on_queue(name, &scripts::STATUS, Access::Read, |_| {
                Ok(vec![id_text.clone()])
            })
            .await?;
        let doc: StatusDoc = codec::parse(value)?;
        match (doc.none, doc.s) {
            (None, Some(status)) => Ok(StatusRecord {
                id,
                status: codec::status(&status),
                history: codec::history(doc.h),
            }),
            _ => Err(EngineError::MessageNotFound {
                queue: name.to_string(),
                id: id.to_string(),
            }),
        }
    }

    pub(crate) async fn purge(&self, name: &QueueName) -> Result<u64, EngineError> {
        let mut upto = String::new();
        let mut purged = 0;
        // Each call purges up to the script's step; bounded by the messages that existed.
        loop {
            let bound = upto.clone();
            let (_, value) = self
                .on_queue(name, &scripts::PURGE, Access::Write, |_| {
                    Ok(vec![bound.clone()])
                })
                .await?;
            let doc: PurgeDoc = codec::parse(value)?;
            purged += doc.purged;
            upto = doc.upto.to_string();
            if !doc.more {
                return Ok(purged);
            }
        }
    }

    pub(crate) async fn peek_queue(
        &self,
        name: &QueueName,
        after: Seq,
        max: u32,
    ) -> Result<Vec<PeekedMessage>, EngineError> {
        let max = max.min(PEEK_MAX);
        if max == 0 {
            return Ok(Vec::new());
        }
        let (_, value) = self
            .on_queue(name, &scripts::PEEK, Access::Read, |_| {
                Ok(vec![after.to_string(), max.to_string()])
            })
            .await?;
        let doc: PeekDoc = codec::parse(value)?;
        let mut out = Vec::with_capacity(doc.m.len());
        for item in doc.m {
            let (body, attributes) = codec::payload_from_json(&item.p)?;
            let at = Timestamp::from_millis(item.at);
            out.push(PeekedMessage {
                id: codec::id_from_text(&item.id)?,
                seq: item.seq,
                body,
                attributes,
                state: match item.s.as_str() {
                    "d" => PeekState::Delayed { until: at },
                    "f" => PeekState::InFlight { deadline: at },
                    _ => PeekState::Visible,
                },
                receive_count: item.rc,
                sent_at: Timestamp::from_millis(item.sent),
                group_id: item.g.map(Arc::from),
                dedup_id: item.d.map(Arc::from),
                dead_letter_source: item.dls.and_then(|q| QueueName::new(&q).ok()),
            });
        }
        Ok(out)
    }

    pub(crate) async fn record_callback_outcome(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError> {
        let args = vec![
            codec::id_to_text(id),
            if succeeded { "1" } else { "0" }.to_string(),
            serde_json::to_string(&reason).unwrap_or_else(|_| "null".to_string()),
        ];
        let (_, value) = self
            .on_queue(
                name,
                &scripts::CALLBACK,
                Access::Write,
                |_| Ok(args.clone()),
            )
            .await?;
        let doc: StatusDoc = codec::parse(value)?;
        match (doc.none, doc.s) {
            (None, Some(status)) => Ok(StatusRecord {
                id,
                status: codec::status(&status),
                history: codec::history(doc.h),
            }),
            _ => Err(EngineError::MessageNotFound {
                queue: name.to_string(),
                id: id.to_string(),
            }),
        }
    }

    pub(crate) async fn callbacks_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError> {
        let mut out = Vec::new();
        for name in self.queue_names().await? {
            if out.len() >= max {
                break;
            }
            let left = (max - out.len()).to_string();
            let value = match self
                .on_queue(&name, &scripts::CALLBACKS_FAILED, Access::Read, |_| {
                    Ok(vec![left.clone()])
                })
                .await
            {
                Ok((_, value)) => value,
                Err(EngineError::QueueNotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let doc: FailedDoc = codec::parse(value)?;
            for record in doc.r {
                out.push((
                    name.clone(),
                    StatusRecord {
                        id: codec::id_from_text(&record.id)?,
                        status: codec::status(&record.s),
                        history: codec::history(record.h),
                    },
                ));
            }
        }
        Ok(out)
    }
}

/// The receive count a moved message's last event carries (for its completion).
pub(crate) fn last_receive_count(history: &[baton_core::HistoryEvent]) -> u32 {
    history
        .iter()
        .rev()
        .find(|e| e.kind != HistoryEventKind::Sent)
        .map_or(0, |e| e.receive_count)
}
