//! Resource names of queues, topics and topic subscriptions. They share one naming rule but
//! are distinct types, so that a topic's name can never be passed where a queue's is meant.
//! (Streams, groups and consumers have their own rule, without `.fifo`: `stream::StreamName`.)

use std::fmt;
use std::sync::Arc;

use crate::error::QueueError;

/// Longest queue name, including a `.fifo` suffix (as SQS).
pub const NAME_CHARS_MAX: usize = 80;
pub const FIFO_SUFFIX: &str = ".fifo";

/// A validated name: 1–80 characters of `[A-Za-z0-9_-]`, optionally ending in `.fifo`.
/// Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueName(Arc<str>);

impl QueueName {
    pub fn new(name: &str) -> Result<Self, QueueError> {
        check(name).map(|()| QueueName(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn has_fifo_suffix(&self) -> bool {
        self.0.ends_with(FIFO_SUFFIX)
    }
}

/// The naming rule: 1–80 characters of `[A-Za-z0-9_-]`, optionally ending in `.fifo`.
fn check(name: &str) -> Result<(), QueueError> {
    // Names are checked on every request; a valid one is ASCII, so its bytes are its
    // characters and a byte scan decides. Anything else takes the way that names the fault.
    let stem = name.strip_suffix(FIFO_SUFFIX).unwrap_or(name);
    let valid_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !stem.is_empty() && name.len() <= NAME_CHARS_MAX && stem.bytes().all(valid_byte) {
        return Ok(());
    }
    refusal(name)
}

/// Why `name` breaks the naming rule (or `Ok` after all, which `check` never asks).
fn refusal(name: &str) -> Result<(), QueueError> {
    let invalid = |reason: &str| QueueError::InvalidName {
        name: name.chars().take(NAME_CHARS_MAX + 20).collect(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(invalid("a name must not be empty"));
    }
    if name.chars().count() > NAME_CHARS_MAX {
        return Err(invalid("a name must be at most 80 characters"));
    }
    let stem = name.strip_suffix(FIFO_SUFFIX).unwrap_or(name);
    if stem.is_empty() {
        return Err(invalid(
            "a name needs at least one character before `.fifo`",
        ));
    }
    if let Some(bad) = stem
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(&format!(
                "character {bad:?} is not allowed: use A-Z, a-z, 0-9, '-' and '_' (and a `.fifo` suffix for FIFO queues)"
            )));
    }
    Ok(())
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a name type that follows the queue naming rule.
macro_rules! rule_name {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(name: &str) -> Result<Self, QueueError> {
                check(name).map(|()| $name(Arc::from(name)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

rule_name!(
    /// A topic's name (the queue naming rule). Cheap to clone.
    TopicName
);
rule_name!(
    /// A subscription's name within its topic (the queue naming rule). Cheap to clone.
    SubscriptionName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_naming_rule() {
        for ok in ["a", "orders", "Orders_2-x", "jobs.fifo", &"x".repeat(80)] {
            assert!(QueueName::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_outside_the_rule() {
        for bad in [
            "",
            ".fifo",
            "a.b",
            "a b",
            "é",
            "a.fifo.fifo",
            &"x".repeat(81),
            "a/b",
        ] {
            assert!(
                matches!(QueueName::new(bad), Err(QueueError::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
