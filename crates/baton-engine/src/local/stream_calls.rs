//! [`StreamEngine`](crate::StreamEngine) for the local engine: each call checks readiness and
//! hands over to the stream registry (`streams/`).

use super::*;
use crate::{GroupRecord, GroupView, NewRecord, PendingView, StreamRead, StreamView};
use crate::{StreamEngine, StreamEngineError};
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::{StreamConfig, StreamError, StreamName};

#[async_trait]
impl StreamEngine for LocalEngine {
    async fn create_stream(
        &self,
        name: StreamName,
        config: StreamConfig,
    ) -> Result<(StreamView, bool), StreamEngineError> {
        self.stream_create(name, config).await
    }

    async fn get_stream(&self, name: &StreamName) -> Result<StreamView, StreamEngineError> {
        self.stream_get(name).await
    }

    async fn list_streams(&self) -> Result<Vec<StreamView>, StreamEngineError> {
        self.stream_list().await
    }

    async fn delete_stream(&self, name: &StreamName) -> Result<(), StreamEngineError> {
        self.stream_delete(name).await
    }

    async fn append(
        &self,
        name: &StreamName,
        producer: Option<ProducerSeq>,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, StreamEngineError> {
        self.stream_append(name, producer, records).await
    }

    async fn read_stream(
        &self,
        name: &StreamName,
        partition: u32,
        from: ReadFrom,
        max: u32,
        wait_ms: u64,
    ) -> Result<StreamRead, StreamEngineError> {
        self.stream_read(name, partition, from, max, wait_ms).await
    }

    async fn create_group(
        &self,
        name: &StreamName,
        group: GroupName,
        config: GroupConfig,
    ) -> Result<(GroupView, bool), StreamEngineError> {
        self.stream_create_group(name, group, config).await
    }

    async fn get_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<GroupView, StreamEngineError> {
        self.stream_get_group(name, group).await
    }

    async fn delete_group(
        &self,
        name: &StreamName,
        group: &GroupName,
    ) -> Result<(), StreamEngineError> {
        self.stream_delete_group(name, group).await
    }

    async fn group_read(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        max: u32,
        wait_ms: u64,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        self.stream_group_read(name, group, consumer, max, wait_ms)
            .await
    }

    async fn group_ack(
        &self,
        name: &StreamName,
        group: &GroupName,
        ids: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, StreamEngineError> {
        self.stream_group_ack(name, group, ids).await
    }

    async fn group_pending(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: Option<&ConsumerName>,
        max: usize,
    ) -> Result<PendingView, StreamEngineError> {
        self.stream_group_pending(name, group, consumer, max).await
    }

    async fn group_claim(
        &self,
        name: &StreamName,
        group: &GroupName,
        consumer: &ConsumerName,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<GroupRecord>, StreamEngineError> {
        self.stream_group_claim(name, group, consumer, min_idle_ms, max)
            .await
    }

    async fn group_seek(
        &self,
        name: &StreamName,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<GroupView, StreamEngineError> {
        self.stream_group_seek(name, group, partition, position)
            .await
    }
}
