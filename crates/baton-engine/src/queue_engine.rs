//! The queue operations of an engine: queues and their metadata, sends, receives with
//! leases and long polls, acks, nacks, visibility, status records, redrive, completion
//! callbacks and browsing. Each call is one whole operation (see the crate doc).

use super::*;

#[async_trait]
pub trait QueueEngine: Send + Sync {
    /// Creates a queue, or returns the existing one if its attributes are identical
    /// (defaults included). A dead-letter queue must exist and be of the same kind.
    async fn create_queue(
        &self,
        name: QueueName,
        config: QueueConfig,
    ) -> Result<Created, EngineError>;

    /// Replaces the given parts of a queue's metadata (tags, API-specific attributes).
    async fn set_queue_meta(
        &self,
        name: &QueueName,
        tags: Option<BTreeMap<String, String>>,
        attributes: Option<BTreeMap<String, String>>,
    ) -> Result<QueueView, EngineError>;

    /// Changes a queue's metadata by `patch` in one atomic step, so that concurrent changes
    /// (from any node) keep each other's keys; `MetaConflict` when an expected value differs.
    async fn update_queue_meta(
        &self,
        name: &QueueName,
        patch: MetaPatch,
    ) -> Result<QueueView, EngineError>;

    /// Sets (`Some`) or removes (`None`) the queue's push subscription in one atomic step.
    /// With `expect`, only if the current one is that (`Some(None)`: only if there is none),
    /// else `MetaConflict` on attribute `push`, so concurrent puts from any node cannot
    /// overwrite each other unseen.
    async fn set_push(
        &self,
        name: &QueueName,
        push: Option<PushSpec>,
        expect: Option<Option<PushSpec>>,
    ) -> Result<QueueView, EngineError>;

    /// Replaces a queue's attributes; its kind cannot change.
    async fn update_queue(
        &self,
        name: &QueueName,
        config: QueueConfig,
    ) -> Result<QueueView, EngineError>;

    /// Deletes a queue and its messages. Refused while it is another queue's dead-letter queue.
    async fn delete_queue(&self, name: &QueueName) -> Result<(), EngineError>;

    async fn get_queue(&self, name: &QueueName) -> Result<QueueView, EngineError>;

    /// Every queue, ordered by name.
    async fn list_queues(&self) -> Result<Vec<QueueView>, EngineError>;

    /// Deletes every message of the queue; returns how many.
    async fn purge_queue(&self, name: &QueueName) -> Result<u64, EngineError>;

    /// Enqueues a batch atomically (all or nothing). Returns once the batch is durable.
    /// Refused with `DiskLow` while the disk-free alarm is on.
    async fn send(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError>;

    /// SQS's SendMessageBatch in one call: entries that fail their own checks (size, body,
    /// delay, ids) get their error in their place and the others are enqueued atomically; a
    /// FIFO entry without a group id, or without a dedup id on a queue without content-based
    /// dedup, fails the whole call, as does a limit of the queue (max depth). One result per
    /// entry, in order.
    async fn send_each(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<Result<SendOutcome, QueueError>>, EngineError>;

    /// A send the broker itself makes on behalf of a consumer's operation (the callback job
    /// of an ack): like `send`, but not refused by the disk-free alarm, so that consumers can
    /// always drain a full disk.
    async fn send_internal(
        &self,
        name: &QueueName,
        entries: Vec<SendEntry>,
    ) -> Result<Vec<SendOutcome>, EngineError> {
        self.send(name, entries).await
    }

    /// Receives up to `max` messages, waiting up to `wait_ms` for the first one. Returns as
    /// soon as at least one message is available, or empty when the wait ends or the engine
    /// shuts down.
    async fn receive(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError>;

    /// Acks each receipt; one result per receipt, in order.
    async fn ack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;

    /// Nacks each receipt (visible after `delay_ms`, or the queue's retry backoff).
    async fn nack(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        delay_ms: Option<u64>,
    ) -> Result<Vec<Result<(), ReceiptError>>, EngineError>;

    /// SQS's `DeleteMessage`: deletes the message each receipt was issued for, by any receipt
    /// ever issued for it, not only the current lease's (`Queue::delete`; on a FIFO queue the
    /// message must be in flight). `Ok(None)` when the message had already left. One result
    /// per receipt, in order.
    async fn delete(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
    ) -> Result<Vec<Result<Option<Acked>, ReceiptError>>, EngineError>;

    /// SQS's `ChangeMessageVisibility`: by any receipt issued for the message, sets the lease
    /// it is under now (`Queue::change_visibility_of_message`).
    async fn change_message_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, EngineError>;

    /// Sets the lease of one message to end `timeout_ms` from now (0 releases it).
    async fn change_visibility(
        &self,
        name: &QueueName,
        receipt: ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), EngineError>;

    async fn message_status(
        &self,
        name: &QueueName,
        id: MessageId,
    ) -> Result<StatusRecord, EngineError>;

    /// Moves messages out of dead-letter queue `name`; returns how many moved.
    async fn redrive(&self, name: &QueueName, options: RedriveOptions) -> Result<u64, EngineError>;

    /// Records the outcome of a completion callback on the status record of finished message
    /// `id` (see `Queue::record_callback`); durable before it returns.
    async fn record_callback(
        &self,
        name: &QueueName,
        id: MessageId,
        succeeded: bool,
        reason: Option<String>,
    ) -> Result<StatusRecord, EngineError>;

    /// Status records whose last callback failed, over all queues (by queue name, then finish
    /// time), at most `max`.
    async fn callback_failed(
        &self,
        max: usize,
    ) -> Result<Vec<(QueueName, StatusRecord)>, EngineError>;
    /// Up to `max` (at most `baton_core::limits::PEEK_MAX`) live messages of queue `name` with
    /// a sequence above `after`, in sequence order, without consuming them: no lease, no
    /// receive count, nothing logged beyond what became due by now (the dashboard's browser).
    async fn peek(
        &self,
        name: &QueueName,
        after: Seq,
        max: u32,
    ) -> Result<Vec<PeekedMessage>, EngineError>;

    /// `ack`, carrying the consumer's `reply` (JSON text, opaque to the engine) to the
    /// completions of the acked messages, so their callbacks report it.
    async fn ack_with_reply(
        &self,
        name: &QueueName,
        receipts: Vec<ReceiptHandle>,
        reply: Option<std::sync::Arc<str>>,
    ) -> Result<Vec<Result<Acked, ReceiptError>>, EngineError>;
}
