//! On-disk record types of topics, format version 1 (see `records` for the rules: dedicated
//! plain types, postcard, never change a variant, append new ones at the end).
//!
//! Frame kinds: [`KIND_TOPIC_OP`] for [`TopicOp`] in log segments, [`KIND_TOPIC_CHECKPOINT`]
//! for [`TopicCheckpointPart`] in checkpoints. The numbers leave room below them for other
//! record families.
//!
//! A [`TopicOp::Publish`] record is the whole fan-out of one publish call: every copy for every
//! target queue, in one frame, so replay applies all of it or (for a torn tail) none of it.

use serde::{Deserialize, Serialize};

use crate::records::EntryV1;

/// A log record: one whole engine operation on topics.
pub const KIND_TOPIC_OP: u8 = 16;
/// One part of a checkpoint holding topics and their subscriptions.
pub const KIND_TOPIC_CHECKPOINT: u8 = 17;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TargetV1 {
    Queue(String),
    Stream(String),
    Url {
        url: String,
        headers: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiteralV1 {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConditionV1 {
    Exact(String),
    ExactNumber(f64),
    Prefix(String),
    AnythingBut(Vec<LiteralV1>),
    AnythingButPrefix(String),
    /// `(operator: "=", "<", "<=", ">", ">=", bound)`.
    Numeric(Vec<(String, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionV1 {
    pub name: String,
    pub target: TargetV1,
    pub pattern: Option<String>,
    pub filter: Option<Vec<(String, Vec<ConditionV1>)>>,
}

/// One engine operation on topics, logged after it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicOp {
    CreateTopic {
        name: String,
        now: u64,
    },
    DeleteTopic {
        name: String,
        now: u64,
    },
    PutSubscription {
        topic: String,
        now: u64,
        subscription: SubscriptionV1,
    },
    DeleteSubscription {
        topic: String,
        now: u64,
        name: String,
    },
    /// The fan-out of one publish call: for each target queue, its copies in publish order.
    Publish {
        topic: String,
        now: u64,
        deliveries: Vec<(String, Vec<EntryV1>)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicCheckpointPart {
    /// Every topic, as of `covered_lsn`: topic records at or below it are in here.
    Topics {
        covered_lsn: u64,
        topics: Vec<(String, u64, Vec<SubscriptionV1>)>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::records::{decode, encode};

    #[test]
    fn topic_records_round_trip() {
        let op = TopicOp::PutSubscription {
            topic: "t".into(),
            now: 7,
            subscription: SubscriptionV1 {
                name: "s".into(),
                target: TargetV1::Queue("q".into()),
                pattern: Some("a.#".into()),
                filter: Some(vec![(
                    "price".into(),
                    vec![
                        ConditionV1::Numeric(vec![(">".into(), 1.5)]),
                        ConditionV1::AnythingBut(vec![LiteralV1::Text("x".into())]),
                    ],
                )]),
            },
        };
        let bytes = encode(&op);
        assert_eq!(decode::<TopicOp>(KIND_TOPIC_OP, &bytes).unwrap(), op);
        assert!(decode::<TopicOp>(KIND_TOPIC_OP, &bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn the_v1_topic_encoding_is_stable() {
        let op = TopicOp::CreateTopic {
            name: "t".into(),
            now: 1,
        };
        assert_eq!(encode(&op), [0, 1, b't', 1]);
    }
}
