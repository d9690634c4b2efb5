//! What the Redis deployment does with an acknowledged write: the facts start-up checks
//! (`RedisEngine::check_deployment`) and the rules they are held to. What to do about a
//! shortfall (refuse to start, or warn) is the caller's decision.
//!
//! Read from every master that serves slots (the cluster client's slot map), each with one
//! command routed to it:
//! - `CONFIG GET appendonly appendfsync maxmemory-policy`: without the append-only file a
//!   restarted master comes back empty; `appendfsync no` leaves the file to the OS (tens of
//!   seconds of writes); any eviction policy but `noeviction` deletes messages silently.
//!   Managed services often forbid `CONFIG`: its refusal is reported as unchecked, not as a
//!   shortfall, since nothing is known to be wrong.
//! - `INFO replication`: the replicas *connected and online* at this master, which is what
//!   `WAIT` counts (a replica the gossip of `CLUSTER NODES` lists may still be syncing).

use baton_engine::EngineError;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::Value;

use crate::client;
use crate::RedisEngine;

/// A setting of one master that breaks the promise of docs/cluster.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The master, `host:port` as the cluster announces it.
    pub node: String,
    /// The Redis setting (`appendonly`, `appendfsync`, `maxmemory-policy`) or `replicas`.
    pub setting: &'static str,
    pub found: String,
    /// What is needed, and why.
    pub required: String,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} has {} = {}, needs {}",
            self.node, self.setting, self.found, self.required
        )
    }
}

/// A check that could not be made on one master (`CONFIG` refused, as managed services do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchecked {
    pub node: String,
    /// Which settings were not checked.
    pub what: &'static str,
    /// Redis's answer.
    pub reason: String,
}

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {}: {} not checked: {}",
            self.node, self.what, self.reason
        )
    }
}

/// What start-up found, over every master.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentCheck {
    /// The masters asked, `host:port`, sorted.
    pub masters: Vec<String>,
    pub shortfalls: Vec<Shortfall>,
    pub unchecked: Vec<Unchecked>,
}

/// The settings `CONFIG GET` reads, with the values that keep an acknowledged write.
const CONFIG_RULES: &[(&str, &[&str], &str)] = &[
    (
        "appendonly",
        &["yes"],
        "yes (without the append-only file a restarted master comes back empty)",
    ),
    (
        "appendfsync",
        &["everysec", "always"],
        "everysec or always (with no, the OS decides when the file reaches the disk)",
    ),
    (
        "maxmemory-policy",
        &["noeviction"],
        "noeviction (any other policy deletes messages when memory is full)",
    ),
];

impl RedisEngine {
    /// Asks every master for the settings above and its online replicas; `wait_replicas` of
    /// the engine's settings is the replica count required. Fails only when Redis cannot be
    /// reached.
    pub async fn check_deployment(&self) -> Result<DeploymentCheck, EngineError> {
        let mut config = redis::cmd("CONFIG");
        config.arg("GET");
        for (setting, _, _) in CONFIG_RULES {
            config.arg(*setting);
        }
        let configs = self.on_every_master(config).await?;
        let replication = self.on_every_master(redis::cmd("INFO").arg("replication").clone());
        let replication = replication.await?;
        let wait_replicas = self.redis.settings().wait_replicas;
        let mut check = DeploymentCheck {
            masters: configs.iter().map(|(node, _)| node.clone()).collect(),
            ..DeploymentCheck::default()
        };
        for (node, answer) in configs {
            match answer {
                Value::ServerError(error) => check.unchecked.push(Unchecked {
                    node,
                    what: "appendonly, appendfsync and maxmemory-policy",
                    reason: format!("CONFIG GET refused: {}", client::server_error_text(&error)),
                }),
                answer => check.shortfalls.extend(config_shortfalls(&node, &answer)),
            }
        }
        for (node, answer) in replication {
            match &answer {
                Value::ServerError(error) => check.unchecked.push(Unchecked {
                    node,
                    what: "replicas",
                    reason: format!(
                        "INFO replication refused: {}",
                        client::server_error_text(error)
                    ),
                }),
                answer => {
                    let online = online_replicas(&client::text(answer).unwrap_or_default());
                    if online < wait_replicas {
                        check.shortfalls.push(Shortfall {
                            node,
                            setting: "replicas",
                            found: format!("{online} online"),
                            required: format!(
                                "at least redis_wait_replicas = {wait_replicas} (every write \
                                 waits for that many; with fewer every write fails)"
                            ),
                        });
                    }
                }
            }
        }
        Ok(check)
    }

    /// `command` on every master that serves slots: `(host:port, answer)` sorted by node; a
    /// node's refusal is its answer (`Value::ServerError`), a connection failure the error.
    async fn on_every_master(
        &self,
        command: redis::Cmd,
    ) -> Result<Vec<(String, Value)>, EngineError> {
        let mut conn = self.redis.connection().await?;
        let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let answer = conn.route_command(command, routing).await.map_err(|e| {
            EngineError::StorageUnavailable {
                reason: format!("cannot read the cluster's settings: {e}"),
            }
        })?;
        let Value::Map(pairs) = answer else {
            return Err(EngineError::StorageUnavailable {
                reason: format!("the masters' answers came as {answer:?}, not one per node"),
            });
        };
        let mut answers: Vec<(String, Value)> = pairs
            .into_iter()
            .map(|(node, value)| (client::text(&node).unwrap_or_default(), value))
            .collect();
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(answers)
    }
}

/// The settings of `CONFIG GET`'s answer (a map in RESP3, a flat list in RESP2) that break a
/// rule; a setting missing from the answer counts as found `(unset)`.
fn config_shortfalls(node: &str, answer: &Value) -> Vec<Shortfall> {
    let pairs: Vec<(String, String)> = match answer {
        Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(k, v)| Some((client::text(k)?, client::text(v)?)))
            .collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((client::text(k)?, client::text(v)?)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    CONFIG_RULES
        .iter()
        .filter_map(|(setting, allowed, required)| {
            let found = pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(setting))
                .map(|(_, v)| v.to_ascii_lowercase());
            match found {
                Some(value) if allowed.contains(&value.as_str()) => None,
                found => Some(Shortfall {
                    node: node.to_string(),
                    setting,
                    found: found.unwrap_or_else(|| "(unset)".to_string()),
                    required: (*required).to_string(),
                }),
            }
        })
        .collect()
}

/// Replicas `INFO replication` lists as `state=online`.
fn online_replicas(info: &str) -> u32 {
    let online = info
        .lines()
        .filter(|line| line.starts_with("slave") && line.contains("state=online"))
        .count();
    u32::try_from(online).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn config_rules_name_each_bad_setting() {
        let good = Value::Map(vec![
            (bulk("appendonly"), bulk("yes")),
            (bulk("appendfsync"), bulk("everysec")),
            (bulk("maxmemory-policy"), bulk("noeviction")),
        ]);
        assert!(config_shortfalls("n:1", &good).is_empty());
        let bad = Value::Array(vec![
            bulk("appendonly"),
            bulk("no"),
            bulk("appendfsync"),
            bulk("no"),
            bulk("maxmemory-policy"),
            bulk("allkeys-lru"),
        ]);
        let found: Vec<(&str, String)> = config_shortfalls("n:1", &bad)
            .into_iter()
            .map(|s| (s.setting, s.found))
            .collect();
        assert_eq!(
            found,
            vec![
                ("appendonly", "no".to_string()),
                ("appendfsync", "no".to_string()),
                ("maxmemory-policy", "allkeys-lru".to_string()),
            ]
        );
        let always = Value::Map(vec![
            (bulk("appendonly"), bulk("yes")),
            (bulk("appendfsync"), bulk("always")),
        ]);
        let missing = config_shortfalls("n:1", &always);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].to_string(), "node n:1 has maxmemory-policy = (unset), needs noeviction (any other policy deletes messages when memory is full)");
    }

    #[test]
    fn only_online_replicas_count() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                    slave0:ip=127.0.0.1,port=7004,state=online,offset=1,lag=0\r\n\
                    slave1:ip=127.0.0.1,port=7005,state=wait_bgsave,offset=0,lag=0\r\n";
        assert_eq!(online_replicas(info), 1);
        assert_eq!(online_replicas("role:master\r\nconnected_slaves:0\r\n"), 0);
    }
}
