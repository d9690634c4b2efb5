//! Completion callbacks' outcomes on a finished message's status (`QueueOp::RecordCallback`),
//! and the messages whose callback failed.

use super::*;

impl LocalEngine {
    pub(super) async fn record_callback_outcome(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError> {
        let (record, lsn) = self.with_queue(name, Access::Write, |queue, now, journal| {
            let record = queue.record_callback(now, id, succeeded, reason.clone());
            if record.is_some() {
                journal.push(|| QueueOp::RecordCallback {
                    queue: name.to_string(),
                    now: now.as_millis(),
                    id: id.as_u128(),
                    succeeded,
                    reason,
                });
            }
            record
        })?;
        self.wait(lsn).await?;
        record.ok_or_else(|| EngineError::MessageNotFound {
            queue: name.to_string(),
            id: id.to_string(),
        })
    }

    pub(super) async fn callbacks_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError> {
        self.check_ready()?;
        let registry = self.queues.read();
        let mut out = Vec::new();
        for (name, slot) in registry.iter() {
            if out.len() >= max {
                break;
            }
            let records = slot.queue.lock().callback_failed(max - out.len());
            out.extend(records.into_iter().map(|record| (name.clone(), record)));
        }
        Ok(out)
    }
}
