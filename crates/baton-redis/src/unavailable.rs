//! Streams, topics, locks and schedules on Redis: the next slices of this engine. Until they
//! exist every call answers `StorageUnavailable` with a reason that says so (the lock and
//! schedule errors wrap the same), so `RedisEngine` is a whole `Engine` whose queue half is
//! complete and whose other half refuses plainly rather than pretending.

use async_trait::async_trait;
use baton_core::lock::{FencingToken, Holder, LockHold, LockName, Released};
use baton_core::schedule::{
    FireOutcome, Put as SchedulePut, Schedule, ScheduleLimits, ScheduleName, ScheduleSpec,
};
use baton_core::stream::{
    Appended, ConsumerName, GroupConfig, GroupName, ProducerSeq, ReadFrom, RecordId, StartPosition,
};
use baton_core::topic::{Put, Subscription};
use baton_core::{QueueName, StreamConfig, StreamError, StreamName, Timestamp};
use baton_engine::{
    EngineError, FencedOutcome, FencedWrite, GroupRecord, GroupView, LockEngine, LockEngineError,
    LockSettings, NewRecord, PendingView, PublishEntry, PublishOutcome, ScheduleEngine,
    ScheduleEngineError, SchedulePlans, StreamEngine, StreamRead, StreamView, TopicEngine,
    TopicView,
};

use crate::RedisEngine;

fn not_yet(what: &str) -> EngineError {
    EngineError::StorageUnavailable {
        reason: format!("{what} are not available on the redis engine yet"),
    }
}

fn streams<T>() -> Result<T, EngineError> {
    Err(not_yet("streams"))
}

fn topics<T>() -> Result<T, EngineError> {
    Err(not_yet("topics"))
}

fn locks<T>() -> Result<T, LockEngineError> {
    Err(LockEngineError::Engine(not_yet("locks")))
}

fn schedules<T>() -> Result<T, ScheduleEngineError> {
    Err(ScheduleEngineError::Engine(not_yet("schedules")))
}

#[async_trait]
impl StreamEngine for RedisEngine {
    async fn create_stream(
        &self,
        _: StreamName,
        _: StreamConfig,
    ) -> Result<(StreamView, bool), EngineError> {
        streams()
    }

    async fn get_stream(&self, _: &StreamName) -> Result<StreamView, EngineError> {
        streams()
    }

    async fn list_streams(&self) -> Result<Vec<StreamView>, EngineError> {
        streams()
    }

    async fn delete_stream(&self, _: &StreamName) -> Result<(), EngineError> {
        streams()
    }

    async fn append(
        &self,
        _: &StreamName,
        _: Option<ProducerSeq>,
        _: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, EngineError> {
        streams()
    }

    async fn read_stream(
        &self,
        _: &StreamName,
        _: u32,
        _: ReadFrom,
        _: u32,
        _: u64,
    ) -> Result<StreamRead, EngineError> {
        streams()
    }

    async fn create_group(
        &self,
        _: &StreamName,
        _: GroupName,
        _: GroupConfig,
    ) -> Result<(GroupView, bool), EngineError> {
        streams()
    }

    async fn get_group(&self, _: &StreamName, _: &GroupName) -> Result<GroupView, EngineError> {
        streams()
    }

    async fn delete_group(&self, _: &StreamName, _: &GroupName) -> Result<(), EngineError> {
        streams()
    }

    async fn group_read(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: &ConsumerName,
        _: u32,
        _: u64,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        streams()
    }

    async fn group_ack(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Vec<RecordId>,
    ) -> Result<Vec<Result<(), StreamError>>, EngineError> {
        streams()
    }

    async fn group_pending(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Option<&ConsumerName>,
        _: usize,
    ) -> Result<PendingView, EngineError> {
        streams()
    }

    async fn group_claim(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: &ConsumerName,
        _: u64,
        _: u32,
    ) -> Result<Vec<GroupRecord>, EngineError> {
        streams()
    }

    async fn group_seek(
        &self,
        _: &StreamName,
        _: &GroupName,
        _: Option<u32>,
        _: StartPosition,
    ) -> Result<GroupView, EngineError> {
        streams()
    }
}

#[async_trait]
impl TopicEngine for RedisEngine {
    async fn create_topic(&self, _: QueueName) -> Result<(TopicView, bool), EngineError> {
        topics()
    }

    async fn delete_topic(&self, _: &QueueName) -> Result<(), EngineError> {
        topics()
    }

    async fn get_topic(&self, _: &QueueName) -> Result<TopicView, EngineError> {
        topics()
    }

    async fn list_topics(&self) -> Result<Vec<TopicView>, EngineError> {
        topics()
    }

    async fn put_subscription(
        &self,
        _: &QueueName,
        _: Subscription,
    ) -> Result<(Subscription, Put), EngineError> {
        topics()
    }

    async fn delete_subscription(&self, _: &QueueName, _: &QueueName) -> Result<(), EngineError> {
        topics()
    }

    async fn publish(
        &self,
        _: &QueueName,
        _: Vec<PublishEntry>,
    ) -> Result<Vec<PublishOutcome>, EngineError> {
        topics()
    }
}

#[async_trait]
impl LockEngine for RedisEngine {
    fn lock_settings(&self) -> LockSettings {
        LockSettings::default()
    }

    async fn acquire_lock(
        &self,
        _: &LockName,
        _: &Holder,
        _: u64,
        _: u64,
    ) -> Result<LockHold, LockEngineError> {
        locks()
    }

    async fn renew_lock(
        &self,
        _: &LockName,
        _: &Holder,
        _: FencingToken,
        _: u64,
    ) -> Result<LockHold, LockEngineError> {
        locks()
    }

    async fn release_lock(
        &self,
        _: &LockName,
        _: &Holder,
        _: FencingToken,
    ) -> Result<Released, LockEngineError> {
        locks()
    }

    async fn get_lock(&self, _: &LockName) -> Result<Option<LockHold>, LockEngineError> {
        locks()
    }

    async fn fenced(
        &self,
        _: &LockName,
        _: FencingToken,
        _: FencedWrite,
    ) -> Result<FencedOutcome, LockEngineError> {
        locks()
    }

    async fn list_locks(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<LockHold>, LockEngineError> {
        locks()
    }
}

#[async_trait]
impl ScheduleEngine for RedisEngine {
    fn schedule_limits(&self) -> ScheduleLimits {
        ScheduleLimits::default()
    }

    async fn put_schedule(
        &self,
        _: &ScheduleName,
        _: ScheduleSpec,
        _: bool,
    ) -> Result<(SchedulePut, Schedule), ScheduleEngineError> {
        schedules()
    }

    async fn delete_schedule(&self, _: &ScheduleName) -> Result<(), ScheduleEngineError> {
        schedules()
    }

    async fn set_schedule_paused(
        &self,
        _: &ScheduleName,
        _: bool,
    ) -> Result<Schedule, ScheduleEngineError> {
        schedules()
    }

    async fn get_schedule(
        &self,
        _: &ScheduleName,
    ) -> Result<Option<Schedule>, ScheduleEngineError> {
        schedules()
    }

    async fn list_schedules(
        &self,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<Schedule>, ScheduleEngineError> {
        schedules()
    }

    async fn plan_schedules(&self) -> Result<SchedulePlans, ScheduleEngineError> {
        schedules()
    }

    async fn advance_schedule(
        &self,
        _: &ScheduleName,
        _: u64,
        _: Timestamp,
        _: u64,
        _: Option<FireOutcome>,
    ) -> Result<Schedule, ScheduleEngineError> {
        schedules()
    }
}
