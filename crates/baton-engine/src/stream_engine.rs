//! The stream operations of an engine: streams, appends, replay reads, and consumer groups
//! with their pending lists, claims and seeks.

use super::*;

/// What a stream operation can fail with: the stream rules' errors, the stream table's
/// limit, and what any engine operation can meet (`Engine`: storage, readiness, waiters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamEngineError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("the engine already holds {limit} streams")]
    TooManyStreams { limit: usize },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

#[async_trait]
pub trait StreamEngine: Send + Sync {
    // ---- streams (semantics in `baton_core::stream`) ----

    /// Creates a stream, or returns the existing one (`false`) if its attributes are identical.
    async fn create_stream(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), StreamEngineError>;

    async fn get_stream(&self, name: &StreamName) -> Result<StreamView, StreamEngineError>;

    /// Every stream, ordered by name.
    async fn list_streams(&self) -> Result<Vec<StreamView>, StreamEngineError>;

    /// Deletes a stream, its records and its groups.
    async fn delete_stream(&self, name: &StreamName) -> Result<(), StreamEngineError>;

    /// Appends a batch atomically (all or nothing); answers once it is durable, in request
    /// order. With `producer`, a retried batch lands once and answers the original offsets.
    /// Other engine parts (topic fan-out) call this too.
    async fn append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, StreamEngineError>;

    /// Reads up to `max` records of one partition, waiting up to `wait_ms` at the head.
    async fn read_stream(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, StreamEngineError>;

    async fn create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), StreamEngineError>;

    async fn get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, StreamEngineError>;

    async fn delete_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<(), StreamEngineError>;

    /// Delivers up to `max` new records to `consumer` (pending for it until acked), waiting up
    /// to `wait_ms` for a first one.
    async fn group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, StreamEngineError>;

    /// Acks each id; one result per id, in order.
    async fn group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, StreamEngineError>;

    async fn group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, StreamEngineError>;

    /// Hands `consumer` up to `max` pending records idle for at least `min_idle_ms`.
    async fn group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, StreamEngineError>;

    /// Moves the group's position in every partition (or only `partition`).
    async fn group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, StreamEngineError>;
}
