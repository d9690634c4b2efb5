//! Finishing messages by receipt, by either rule: the native API's (the current lease only:
//! `Queue::ack`) and SQS's `DeleteMessage` and `ChangeMessageVisibility` (any receipt issued
//! for the message: `Queue::delete`, `Queue::change_visibility_of_message`).
//!
//! Both log the same records (`Ack`, `ChangeVisibility`, with the receipt as presented);
//! replay applies them by SQS's rule, which does what the native one did for every receipt the
//! native rule accepted (a current lease), so one record type serves both.

use std::sync::Arc;

use baton_core::{Acked, QueueName, ReceiptError, ReceiptHandle, VisibilityOutcome};
use baton_storage::records::{QueueOp, ReceiptV1};

use super::{receipt_to_disk, Access, LocalEngine};
use crate::{Completion, EngineError};

/// Which receipts finish a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReceiptRule {
    /// Only the current lease's receipt (the native API).
    CurrentLease,
    /// Any receipt ever issued for the message (SQS's `DeleteMessage`).
    AnyIssued,
}

impl LocalEngine {
    /// Deletes the message of each receipt by `rule`, logs what it deleted and hands the
    /// completions (carrying `reply`) to the hook. `Ok(None)`: the message had already left.
    pub(super) async fn finish(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<Arc<str>>,
        rule: ReceiptRule,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError> {
        let ((results, now), lsn) =
            self.with_queue(name, Access::Write, |queue, now, journal| {
                let results: Vec<_> = receipts
                    .iter()
                    .map(|receipt| match rule {
                        ReceiptRule::CurrentLease => queue.ack(now, receipt).map(Some),
                        ReceiptRule::AnyIssued => queue.delete(now, receipt),
                    })
                    .collect();
                let done: Vec<ReceiptV1> = receipts
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| matches!(r, Ok(Some(_))))
                    .map(|(h, _)| receipt_to_disk(h))
                    .collect();
                if !done.is_empty() {
                    journal.push(|| QueueOp::Ack {
                        queue: name.to_string(),
                        now: now.as_millis(),
                        receipts: done,
                    });
                }
                (results, now)
            })?;
        self.wait(lsn).await?;
        let completions = results
            .iter()
            .filter_map(|result| {
                let acked = result.as_ref().ok()?.as_ref()?;
                Completion::of_ack(name, acked, now, reply.clone())
            })
            .collect();
        // Awaited: the hook makes the callback jobs durable before the ack is answered.
        self.emit_completions(completions).await;
        Ok(results)
    }

    /// SQS's `ChangeMessageVisibility` (`Queue::change_visibility_of_message`).
    pub(super) async fn retime_message(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, EngineError> {
        self.check_ready()?;
        let (outcome, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| super::not_found(name))?;
            let (outcome, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let outcome = queue.change_visibility_of_message(now, &receipt, timeout_ms);
                    if outcome == Ok(VisibilityOutcome::Changed) {
                        journal.push(|| QueueOp::ChangeVisibility {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            receipt: receipt_to_disk(&receipt),
                            timeout_ms,
                        });
                    }
                    outcome
                })?;
            if timeout_ms == 0 && outcome == Ok(VisibilityOutcome::Changed) {
                slot.visible.notify_waiters();
            }
            (outcome?, lsn)
        };
        self.wait(lsn).await?;
        Ok(outcome)
    }
}
