//! The cluster-mode settings of the configuration (`engine = "redis"`, `redis_*`): their
//! checks and their conversion into the Redis engine's `RedisSettings`.
//!
//! The seed list is checked here, at load, so a typo names its key before anything connects:
//! each entry is `redis://host:port` (no user, password, database or path: the engine does
//! not send them, and a silently ignored part is worse than a refusal).

use baton_redis::RedisSettings;
use serde::Deserialize;

use super::{ConfigError, EngineKind, ServerConfig};

/// Defaults of the cluster settings, which are the engine's where it has one.
pub(super) const NAMESPACE_DEFAULT: &str = "baton";
pub(super) const WAIT_REPLICAS_DEFAULT: u32 = 1;
pub(super) const WAIT_TIMEOUT_MS_DEFAULT: u64 = 1_000;

/// Longest namespace, in bytes: it is part of every key.
const NAMESPACE_BYTES_MAX: usize = 64;
/// Most replicas a write may wait for (Redis has no limit; more than this is a typo).
const WAIT_REPLICAS_MAX: u64 = 16;
/// Seed nodes in `redis_url`.
const SEED_NODES_MAX: usize = 64;

/// What `baton serve` does when the Redis deployment cannot keep acknowledged writes as
/// docs/cluster.md promises (append-only file, fsync policy, eviction, replicas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisDurability {
    /// Refuse to start, naming the node and the setting.
    #[default]
    Strict,
    /// Start anyway, logging each shortfall as a warning.
    Relaxed,
}

impl std::str::FromStr for RedisDurability {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "strict" => Ok(RedisDurability::Strict),
            "relaxed" => Ok(RedisDurability::Relaxed),
            other => Err(format!("{other:?} is not `strict` or `relaxed`")),
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "embedded" => Ok(EngineKind::Embedded),
            "memory" => Ok(EngineKind::Memory),
            "redis" => Ok(EngineKind::Redis),
            other => Err(format!("{other:?} is not `embedded`, `memory` or `redis`")),
        }
    }
}

/// One seed node of `redis_url`, checked to be `redis://host:port`.
fn check_seed(url: &str) -> Result<(), String> {
    let shape = "is not like redis://host:port";
    let Some(rest) = url.strip_prefix("redis://") else {
        return Err(format!("{url:?} {shape} (only the redis:// scheme)"));
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!("{url:?} {shape} (no port)"));
    };
    let bad_host = host.is_empty()
        || host.contains(['/', '@', '?', '#', ' '])
        || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']')));
    if bad_host {
        return Err(format!("{url:?} {shape} (host {host:?})"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(()),
        _ => Err(format!("{url:?} {shape} (port {port:?})")),
    }
}

impl ServerConfig {
    /// The seed nodes of `redis_url`, in order.
    pub fn redis_seeds(&self) -> Vec<String> {
        self.redis_url
            .split(',')
            .map(str::trim)
            .filter(|seed| !seed.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(super) fn validate_cluster(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| ConfigError::Invalid { key, reason };
        let seeds = self.redis_seeds();
        if self.engine == EngineKind::Redis && seeds.is_empty() {
            return Err(invalid(
                "redis_url",
                "is required with engine = \"redis\": the cluster's seed nodes, \
                 e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379"
                    .to_string(),
            ));
        }
        if seeds.len() > SEED_NODES_MAX {
            return Err(invalid(
                "redis_url",
                format!("names {} nodes, more than {SEED_NODES_MAX}", seeds.len()),
            ));
        }
        for seed in &seeds {
            check_seed(seed).map_err(|reason| invalid("redis_url", reason))?;
        }
        let namespace = &self.redis_namespace;
        if namespace.is_empty()
            || namespace.len() > NAMESPACE_BYTES_MAX
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "redis_namespace",
                format!(
                    "{namespace:?} must be 1 to {NAMESPACE_BYTES_MAX} characters of \
                     [A-Za-z0-9_.-]"
                ),
            ));
        }
        super::check_range(
            "redis_wait_replicas",
            u64::from(self.redis_wait_replicas),
            0,
            WAIT_REPLICAS_MAX,
        )?;
        super::check_range(
            "redis_wait_timeout_ms",
            self.redis_wait_timeout_ms,
            1,
            60_000,
        )?;
        Ok(())
    }

    /// The Redis engine's connection settings.
    pub fn redis_settings(&self) -> RedisSettings {
        RedisSettings {
            wait_replicas: self.redis_wait_replicas,
            wait_timeout_ms: self.redis_wait_timeout_ms,
            ..RedisSettings::new(self.redis_seeds())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        ServerConfig::load(None, env)
    }

    fn refused_key(env: &[(&str, &str)]) -> &'static str {
        match load(env) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{env:?} was not refused with a key: {other:?}"),
        }
    }

    #[test]
    fn redis_settings_come_from_env_with_defaults() {
        let config = load(&[
            ("BATON_ENGINE", "redis"),
            (
                "BATON_REDIS_URL",
                "redis://10.0.0.1:7000, redis://[::1]:7001",
            ),
        ])
        .expect("valid");
        assert_eq!(config.engine, EngineKind::Redis);
        assert_eq!(config.redis_namespace, "baton");
        assert_eq!(config.redis_durability, RedisDurability::Strict);
        let settings = config.redis_settings();
        assert_eq!(
            settings.urls,
            vec!["redis://10.0.0.1:7000", "redis://[::1]:7001"]
        );
        assert_eq!(
            (settings.wait_replicas, settings.wait_timeout_ms),
            (1, 1_000)
        );
        let config = load(&[
            ("BATON_ENGINE", "redis"),
            ("BATON_REDIS_URL", "redis://h:1"),
            ("BATON_REDIS_NAMESPACE", "shop-eu"),
            ("BATON_REDIS_WAIT_REPLICAS", "2"),
            ("BATON_REDIS_WAIT_TIMEOUT_MS", "250"),
            ("BATON_REDIS_DURABILITY", "relaxed"),
        ])
        .expect("valid");
        assert_eq!(config.redis_namespace, "shop-eu");
        assert_eq!(config.redis_durability, RedisDurability::Relaxed);
        let settings = config.redis_settings();
        assert_eq!((settings.wait_replicas, settings.wait_timeout_ms), (2, 250));
    }

    #[test]
    fn redis_engine_without_url_names_the_key() {
        let error = load(&[("BATON_ENGINE", "redis")]).expect_err("refused");
        assert!(
            error.to_string().contains("`redis_url` is required"),
            "{error}"
        );
        assert_eq!(
            refused_key(&[("BATON_ENGINE", "redis"), ("BATON_REDIS_URL", " , ")]),
            "redis_url"
        );
        // Without the redis engine the key is not needed.
        assert!(load(&[("BATON_ENGINE", "memory")]).is_ok());
    }

    #[test]
    fn redis_urls_that_are_not_host_and_port_name_the_key_and_the_url() {
        for bad in [
            "http://h:6379",
            "redis://h",
            "redis://:6379",
            "redis://h:0",
            "redis://h:65536",
            "redis://h:port",
            "redis://user:pw@h:6379",
            "redis://h:6379/0",
            "redis://::1:6379",
            "redis://h:1,rediss://h:2",
        ] {
            let error =
                load(&[("BATON_ENGINE", "redis"), ("BATON_REDIS_URL", bad)]).expect_err(bad);
            let text = error.to_string();
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        key: "redis_url",
                        ..
                    }
                ),
                "{bad}: {text}"
            );
            assert!(text.contains("redis://host:port"), "{bad}: {text}");
        }
        // Checked even while another engine is selected, so a switch does not meet a typo.
        assert_eq!(
            refused_key(&[("BATON_REDIS_URL", "redis//h:1")]),
            "redis_url"
        );
    }

    #[test]
    fn cluster_ranges_and_names_are_checked() {
        let redis = [
            ("BATON_ENGINE", "redis"),
            ("BATON_REDIS_URL", "redis://h:1"),
        ];
        for (key, value, name) in [
            ("BATON_REDIS_WAIT_REPLICAS", "17", "redis_wait_replicas"),
            ("BATON_REDIS_WAIT_TIMEOUT_MS", "0", "redis_wait_timeout_ms"),
            (
                "BATON_REDIS_WAIT_TIMEOUT_MS",
                "60001",
                "redis_wait_timeout_ms",
            ),
            ("BATON_REDIS_NAMESPACE", "a{b}", "redis_namespace"),
            ("BATON_REDIS_NAMESPACE", "with space", "redis_namespace"),
        ] {
            let mut env = redis.to_vec();
            env.push((key, value));
            assert_eq!(refused_key(&env), name, "{key}={value}");
        }
        let mut env = redis.to_vec();
        env.push(("BATON_REDIS_DURABILITY", "sometimes"));
        assert!(matches!(load(&env), Err(ConfigError::Parse(_))));
        assert_eq!("relaxed".parse(), Ok(RedisDurability::Relaxed));
        assert!("lax".parse::<RedisDurability>().is_err());
        assert_eq!("redis".parse(), Ok(EngineKind::Redis));
        assert!("paper".parse::<EngineKind>().is_err());
    }
}
