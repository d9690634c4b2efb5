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
    /// A publish that reaches at least one stream: the queue copies as in `Publish`, and the
    /// records for each target stream. The stream appends use the idempotent producer
    /// `StreamCopiesV1::producer` with this record's LSN as the sequence, so recovery can
    /// append them again when the stream's own log lost them, without duplicating them.
    PublishToStreams {
        topic: String,
        now: u64,
        deliveries: Vec<(String, Vec<EntryV1>)>,
        streams: Vec<StreamCopiesV1>,
    },
}

/// The records one publish appends to one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCopiesV1 {
    pub stream: String,
    pub producer: String,
    pub records: Vec<StreamCopyV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamCopyV1 {
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TopicCheckpointPart {
    /// Every topic, as of `covered_lsn`: topic records at or below it are in here.
    Topics {
        covered_lsn: u64,
        topics: Vec<(String, u64, Vec<SubscriptionV1>)>,
    },
    /// Publishes at or below the checkpoint's start whose stream appends were not yet known
    /// durable when it was written: `(publish LSN, now, copies)`. Recovery appends them again
    /// (idempotently), as it does for `TopicOp::PublishToStreams` records still in the log.
    StreamCopiesInFlight {
        copies: Vec<(u64, u64, Vec<StreamCopiesV1>)>,
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
    fn stream_copies_round_trip_in_records_and_checkpoints() {
        let copies = vec![StreamCopiesV1 {
            stream: "s".into(),
            producer: "topic-t-0".into(),
            records: vec![StreamCopyV1 {
                key: Some("a.b".into()),
                value: "v".into(),
                headers: vec![("h".into(), "x".into())],
            }],
        }];
        let op = TopicOp::PublishToStreams {
            topic: "t".into(),
            now: 3,
            deliveries: Vec::new(),
            streams: copies.clone(),
        };
        assert_eq!(decode::<TopicOp>(KIND_TOPIC_OP, &encode(&op)).unwrap(), op);
        let part = TopicCheckpointPart::StreamCopiesInFlight {
            copies: vec![(9, 3, copies)],
        };
        assert_eq!(
            decode::<TopicCheckpointPart>(KIND_TOPIC_CHECKPOINT, &encode(&part)).unwrap(),
            part
        );
        // Appended variants: the existing ones keep their tags.
        assert_eq!(encode(&op)[0], 5);
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
