//! Streams on Redis: the next slice of this engine. Until it exists every call answers
//! `EngineError::NotOnEngine` (as do fenced writes to streams and topics, `locks.rs`, topic
//! subscriptions to streams, `topics.rs`, and so the firings of schedules that target them, whose failure the server's firing task
//! records; 503 `not_on_engine`), not `StorageUnavailable`, which would read as an outage to
//! retry, so `RedisEngine` is a whole `Engine` whose missing parts refuse plainly rather than
//! pretending.

use async_trait::async_trait;
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::{StreamConfig, StreamError, StreamName};
use baton_engine::{
    EngineError, GroupRecord, GroupView, NewRecord, PendingView, StreamEngine, StreamEngineError,
    StreamRead, StreamView,
};

use crate::RedisEngine;

pub(crate) fn not_yet(feature: &'static str) -> EngineError {
    EngineError::NotOnEngine {
        feature,
        engine: "redis",
    }
}

fn streams<T>() -> Result<T, StreamEngineError> {
    Err(not_yet("streams").into())
}

#[async_trait]
impl StreamEngine for RedisEngine {
    async fn create_stream(
        &self,
        _: StreamName,
        _: StreamConfig,
    ) -> Result<(StreamView, bool), StreamEngineError> {
        streams()
    }

    async fn get_stream(&self, _: &StreamName) -> Result<StreamView, StreamEngineError> {
        streams()
    }

    async fn list_streams(&self) -> Result<Vec<StreamView>, StreamEngineError> {
        streams()
    }

    async fn delete_stream(&self, _: &StreamName) -> Result<(), StreamEngineError> {
        streams()
    }

    async fn append(
        &self,
        _: &StreamName,
        _: Option<ProducerSeq>,
        _: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, StreamEngineError> {
        streams()
    }

    async fn read_stream(
        &self,
        _: &StreamName,
        _: u32,
        _: ReadFrom,
        _: u32,
        _: u64,
    ) -> Result<StreamRead, StreamEngineError> {
        streams()
    }

    async fn create_group(
        &self,
        _: &StreamName,
        _: GroupName,
        _: GroupConfig,
    ) -> Result<(GroupView, bool), StreamEngineError> {
        streams()
    }

    async fn get_group(
        &self,
        _: &StreamName,
        _: &GroupName,
    ) -> Result<GroupView, StreamEngineError> {
        streams()
    }

    async fn delete_group(&self, _: &StreamName, _: &GroupName) -> Result<(), StreamEngineError> {
        streams()
    }

    async fn group_read(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: &ConsumerName,
        _: u32,
        _: u64,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        streams()
    }

    async fn group_ack(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, StreamEngineError> {
        streams()
    }

    async fn group_pending(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Option<&ConsumerName>,
        _: usize,
    ) -> Result<PendingView, StreamEngineError> {
        streams()
    }

    async fn group_claim(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: &ConsumerName,
        _: u64,
        _: u32,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        streams()
    }

    async fn group_seek(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Option<u32>,
        _: StartPosition,
    ) -> Result<GroupView, StreamEngineError> {
        streams()
    }
}
