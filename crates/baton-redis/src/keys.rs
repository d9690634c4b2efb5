//! Where a queue lives in Redis: every key of queue `q` in namespace `ns` starts with the hash
//! tag `{ns:q:q}`, so the whole queue is in one slot and each operation is one script there.
//! The registry of queue names is one set, `{ns}:queues`, in its own slot. A lock `l` lives
//! under `{ns:l:l}`, and the index of lock names is `{ns}:locks`, next to the registry. A
//! schedule `s` lives under `{ns:s:s}`, and the index of schedule names is `{ns}:schedules`,
//! next to the registry too. A topic `t` lives under `{ns:t:t}` (its record and its outbox),
//! and the index of topic names is `{ns}:topics`, next to the registry.
//!
//! Invariant: the order of `QueueKeys::all` is the order of `KEYS` in `lua/lib.lua`.

use baton_core::lock::LockName;
use baton_core::schedule::ScheduleName;
use baton_core::{QueueName, TopicName};

/// Suffixes of a queue's keys, in the order the scripts read them as `KEYS`.
const SUFFIXES: [&str; 21] = [
    "h", "msg", "st", "ids", "vis", "delayed", "leases", "bysent", "gpend", "gflight", "avail",
    "arch", "archq", "dedup", "dedupx", "out", "movedin", "seqs", "cbfail", "fence", "fired",
];

/// The keys of one queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    base: String,
}

impl QueueKeys {
    pub(crate) fn new(namespace: &str, name: &QueueName) -> Self {
        QueueKeys {
            base: format!("{{{namespace}:q:{name}}}"),
        }
    }

    /// The scalars hash; also the key that routes the queue's scripts.
    pub(crate) fn head(&self) -> String {
        format!("{}:h", self.base)
    }

    pub(crate) fn outbox(&self) -> String {
        format!("{}:out", self.base)
    }

    /// The sharded pub/sub channel that send, nack and move scripts publish wake-ups on.
    pub(crate) fn wake_channel(&self) -> String {
        format!("{}:wake", self.base)
    }

    /// Every key, in the scripts' `KEYS` order.
    pub(crate) fn all(&self) -> Vec<String> {
        SUFFIXES
            .iter()
            .map(|suffix| format!("{}:{suffix}", self.base))
            .collect()
    }
}

/// The set of queue names of a namespace.
pub(crate) fn registry(namespace: &str) -> String {
    format!("{{{namespace}}}:queues")
}

/// The keys of one lock: every key of lock `l` starts with the hash tag `{ns:l:l}`, so a
/// lock lives in one slot and each of its operations is one script there.
#[derive(Debug, Clone)]
pub(crate) struct LockKeys {
    base: String,
}

impl LockKeys {
    pub(crate) fn new(namespace: &str, name: &LockName) -> Self {
        LockKeys {
            base: format!("{{{namespace}:l:{name}}}"),
        }
    }

    /// The lock's hash (`lua/lock_lib.lua`): its last token and its hold.
    pub(crate) fn hash(&self) -> String {
        format!("{}:h", self.base)
    }

    /// The sharded pub/sub channel the release script publishes wake-ups on.
    pub(crate) fn wake_channel(&self) -> String {
        format!("{}:wake", self.base)
    }
}

/// The index of lock names of a namespace (a sorted set by name, `locks.rs`), in the
/// registry's slot.
pub(crate) fn lock_index(namespace: &str) -> String {
    format!("{{{namespace}}}:locks")
}

/// The hash of one schedule `s`, `{ns:s:s}:h`, in the slot its name hashes to
/// (`schedules.rs`, `lua/schedule_write.lua`): its record, `rev` and `last`.
pub(crate) fn schedule_hash(namespace: &str, name: &ScheduleName) -> String {
    format!("{{{namespace}:s:{name}}}:h")
}

/// The index of schedule names of a namespace (a sorted set by name, `schedules.rs`), in the
/// registry's slot.
pub(crate) fn schedule_index(namespace: &str) -> String {
    format!("{{{namespace}}}:schedules")
}

/// The hash of one topic `t`, `{ns:t:t}:h` (`topics.rs`): its record `rec`, `rev`, and the
/// counters `pub`, `dlv`, `unm`.
pub(crate) fn topic_hash(namespace: &str, name: &TopicName) -> String {
    format!("{{{namespace}:t:{name}}}:h")
}

/// The outbox of one topic, `{ns:t:t}:out`, in the topic's slot: a hash of token → one
/// publish's copies for one queue, until handed over (`topics.rs`).
pub(crate) fn topic_outbox(namespace: &str, name: &TopicName) -> String {
    format!("{{{namespace}:t:{name}}}:out")
}

/// The index of topic names of a namespace (a sorted set by name), in the registry's slot.
pub(crate) fn topic_index(namespace: &str) -> String {
    format!("{{{namespace}}}:topics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_queue_shares_its_hash_tag() {
        let keys = QueueKeys::new(
            "ns",
            &QueueName::new("orders.fifo").unwrap_or_else(|e| panic!("{e}")),
        );
        assert_eq!(keys.head(), "{ns:q:orders.fifo}:h");
        assert!(keys
            .all()
            .iter()
            .all(|k| k.starts_with("{ns:q:orders.fifo}:")));
        assert_eq!(keys.all().len(), 21);
    }
}
