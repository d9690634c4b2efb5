//! Cluster mode's start: the Redis engine connected with the configuration's settings, and
//! the start-up check of what the deployment does with an acknowledged write
//! (`RedisEngine::check_deployment`: append-only file, fsync policy, eviction policy and
//! online replicas of every master).
//!
//! With `redis_durability = "strict"` (the default) a shortfall refuses the start, naming the
//! node, the setting and the way out (`--redis-durability relaxed`); with `relaxed` each is a
//! warning. A check Redis refused (managed services forbid `CONFIG`) is a warning either way:
//! nothing is known to be wrong, and refusing would make those services unusable.

use std::sync::Arc;

use baton_engine::{Engine, EngineConfig};
use baton_redis::{DeploymentCheck, RedisEngine};

use crate::config::{RedisDurability, ServerConfig};
use crate::ServerError;

/// The Redis engine for `config`, once its deployment passed the start-up check.
pub(crate) async fn connect(
    config: &ServerConfig,
    engine_config: EngineConfig,
) -> Result<Arc<dyn Engine>, ServerError> {
    let engine = RedisEngine::connect(
        config.redis_settings(),
        &config.redis_namespace,
        engine_config,
        None,
    )
    .await?
    .with_lock_settings(config.lock_settings())
    .with_schedule_limits(config.schedule_limits());
    let check = engine.check_deployment().await?;
    judge(&check, config.redis_durability)?;
    tracing::info!(
        masters = %check.masters.join(","),
        namespace = %config.redis_namespace,
        wait_replicas = config.redis_wait_replicas,
        "connected to the redis cluster"
    );
    Ok(Arc::new(engine))
}

/// Logs what could not be checked; refuses (strict) or logs (relaxed) each shortfall.
fn judge(check: &DeploymentCheck, durability: RedisDurability) -> Result<(), ServerError> {
    for unchecked in &check.unchecked {
        tracing::warn!(
            "{unchecked}; cannot tell whether acknowledged writes survive a restart there \
             (managed services may forbid CONFIG: check their persistence settings yourself)"
        );
    }
    if check.shortfalls.is_empty() {
        return Ok(());
    }
    match durability {
        RedisDurability::Strict => {
            let all: Vec<String> = check.shortfalls.iter().map(|s| s.to_string()).collect();
            Err(ServerError::Deployment(format!(
                "the redis cluster cannot keep acknowledged writes: {}. Fix the settings, or \
                 start with --redis-durability relaxed (redis_durability = \"relaxed\") to \
                 run with weaker durability",
                all.join("; ")
            )))
        }
        RedisDurability::Relaxed => {
            for shortfall in &check.shortfalls {
                tracing::warn!(
                    "{shortfall}; starting anyway (redis_durability = relaxed): acknowledged \
                     writes may be lost"
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_redis::{Shortfall, Unchecked};

    #[test]
    fn strict_refuses_naming_node_setting_and_the_way_out_relaxed_starts() {
        let check = DeploymentCheck {
            masters: vec!["10.0.0.1:7000".to_string()],
            shortfalls: vec![Shortfall {
                node: "10.0.0.1:7000".to_string(),
                setting: "appendonly",
                found: "no".to_string(),
                required: "yes".to_string(),
            }],
            unchecked: vec![],
        };
        let refused = judge(&check, RedisDurability::Strict)
            .expect_err("strict refuses")
            .to_string();
        for needle in [
            "10.0.0.1:7000",
            "appendonly = no",
            "--redis-durability relaxed",
        ] {
            assert!(refused.contains(needle), "{needle:?} not in {refused}");
        }
        assert!(judge(&check, RedisDurability::Relaxed).is_ok());
    }

    #[test]
    fn a_refused_config_get_is_not_a_refusal() {
        let check = DeploymentCheck {
            masters: vec!["10.0.0.1:7000".to_string()],
            shortfalls: vec![],
            unchecked: vec![Unchecked {
                node: "10.0.0.1:7000".to_string(),
                what: "appendonly, appendfsync and maxmemory-policy",
                reason: "ERR unknown command 'CONFIG'".to_string(),
            }],
        };
        assert!(judge(&check, RedisDurability::Strict).is_ok());
    }
}
