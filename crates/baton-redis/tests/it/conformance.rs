//! Every queue, lock and schedule case of the engine conformance suite (fenced writes to
//! queues only: streams and topics are not on this engine), each on a fresh namespace of the shared
//! cluster, on an injected clock (the scripts take its time instead of Redis `TIME`).

use std::sync::Arc;

use async_trait::async_trait;
use baton_core::{ManualClock, Timestamp};
use baton_engine::conformance::Harness;
use baton_engine::{Engine, EngineConfig};
use baton_redis::{RedisEngine, RedisSettings};

use crate::cluster;

pub struct RedisHarness {
    clock: Arc<ManualClock>,
}

impl RedisHarness {
    pub fn new() -> Self {
        RedisHarness {
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000))),
        }
    }
}

#[async_trait]
impl Harness for RedisHarness {
    async fn engine(&self, config: EngineConfig) -> Arc<dyn Engine> {
        let settings = RedisSettings::new(cluster::shared().urls());
        let engine = RedisEngine::connect(
            settings,
            &cluster::fresh_namespace(),
            config,
            Some(self.clock.clone()),
        )
        .await
        .unwrap();
        Arc::new(engine)
    }

    async fn advance(&self, engine: &Arc<dyn Engine>, ms: u64) {
        self.clock.advance_ms(ms);
        engine.tick().await;
    }
}

baton_engine::engine_conformance!(queues: RedisHarness::new());
baton_engine::engine_conformance!(locks: RedisHarness::new());
baton_engine::engine_conformance!(schedules: RedisHarness::new());
baton_engine::engine_conformance!(topics: RedisHarness::new());
