//! Keys changed on a stopped broker's data directory (`baton key create --data-dir`), so the
//! first admin key exists before the broker ever listens: the embedded engine is opened (its
//! data-directory lock refuses a running broker), recovered, changed, and closed.

use std::sync::Arc;

use baton_engine::{Engine, EngineConfig, LocalEngine, SystemClock};
use baton_proto as proto;
use baton_storage::RealFs;

use super::KeyStore;
use crate::{ServerConfig, ServerError};

/// Creates a key in the data directory of `config` (the embedded engine's settings).
pub async fn create_key(
    config: &ServerConfig,
    request: proto::CreateKey,
) -> Result<proto::CreatedKey, ServerError> {
    let engine = open(config)?;
    engine.recover().await?;
    let keys = KeyStore::new(engine.clone(), config.keys_max);
    keys.load().await?;
    let created = keys.create(request).await?;
    engine.begin_shutdown();
    Ok(created)
}

/// The keys of the data directory of `config`, without secrets.
pub async fn list_keys(config: &ServerConfig) -> Result<proto::KeyList, ServerError> {
    let engine = open(config)?;
    engine.recover().await?;
    let keys = KeyStore::new(engine.clone(), config.keys_max);
    keys.load().await?;
    engine.begin_shutdown();
    Ok(keys.list())
}

fn open(config: &ServerConfig) -> Result<Arc<dyn Engine>, ServerError> {
    let engine_config = EngineConfig {
        limits: config.queue_limits(),
        max_waiting_receives: config.max_waiting_receives,
    };
    let engine = LocalEngine::durable(
        Arc::new(SystemClock),
        engine_config,
        Arc::new(RealFs),
        config.storage()?,
        true,
    )?;
    Ok(Arc::new(engine))
}
