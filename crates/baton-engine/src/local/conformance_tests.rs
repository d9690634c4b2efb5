//! The engine conformance suite (`crate::conformance`) against the memory engine and the
//! embedded engine (on a simulated disk), both on an injected clock.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use baton_core::ManualClock;
use baton_storage::{SimFs, SyncPolicy};

use super::*;
use crate::conformance::Harness;

/// A fresh engine per call; `advance` moves the manual clock and runs the tick.
pub(crate) struct LocalHarness {
    durable: bool,
    clock: Arc<ManualClock>,
}

impl LocalHarness {
    pub(crate) fn memory() -> Self {
        LocalHarness {
            durable: false,
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000))),
        }
    }

    pub(crate) fn embedded() -> Self {
        LocalHarness {
            durable: true,
            ..Self::memory()
        }
    }
}

#[async_trait]
impl Harness for LocalHarness {
    async fn engine(&self, config: EngineConfig) -> Arc<dyn Engine> {
        if !self.durable {
            return Arc::new(LocalEngine::in_memory(self.clock.clone(), config));
        }
        let storage = StorageConfig {
            sync: SyncPolicy::Always,
            segment_bytes_max: 64 * 1024,
            checkpoint_bytes_min: 32 * 1024,
            disk_free_min_bytes: 0,
            disk_reserve_bytes: 0,
            ..StorageConfig::new("/data")
        };
        let engine = LocalEngine::durable(
            self.clock.clone(),
            config,
            Arc::new(SimFs::new()),
            storage,
            false,
        )
        .unwrap();
        engine.recover().await.unwrap();
        Arc::new(engine)
    }

    async fn advance(&self, engine: &Arc<dyn Engine>, ms: u64) {
        self.clock.advance_ms(ms);
        engine.tick().await;
    }
}

mod memory {
    crate::engine_conformance!(super::LocalHarness::memory());
}

mod embedded {
    crate::engine_conformance!(super::LocalHarness::embedded());
}
