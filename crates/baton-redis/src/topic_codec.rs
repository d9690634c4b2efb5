//! A topic's record as JSON (the `rec` field of its hash, `topics.rs`): its creation time and
//! its subscriptions, each with its target, routing pattern and filter policy as given. The
//! record is decoded back through `baton_core::topic`'s constructors (`Pattern::new`,
//! `FilterPolicy::new`), so a stored subscription is always a valid one.

use std::collections::BTreeMap;

use baton_core::topic::{
    Condition, FilterPolicy, Literal, NumericOp, Pattern, Subscription, Target,
};
use baton_core::{QueueName, StreamName, SubscriptionName, Timestamp, TopicName};
use baton_engine::EngineError;
use serde::{Deserialize, Serialize};

use crate::codec;

#[derive(Debug, Serialize, Deserialize)]
struct RecordDoc {
    created: u64,
    subs: Vec<SubscriptionDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SubscriptionDoc {
    name: String,
    target: TargetDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filter: Option<Vec<(String, Vec<ConditionDoc>)>>,
}

#[derive(Debug, Serialize, Deserialize)]
enum TargetDoc {
    Queue(String),
    Stream(String),
    Url {
        url: String,
        headers: Vec<(String, String)>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
enum LiteralDoc {
    Text(String),
    Number(f64),
}

#[derive(Debug, Serialize, Deserialize)]
enum ConditionDoc {
    Exact(String),
    ExactNumber(f64),
    Prefix(String),
    AnythingBut(Vec<LiteralDoc>),
    AnythingButPrefix(String),
    Numeric(Vec<(String, f64)>),
    Exists(bool),
}

/// A topic as stored: its definition and when it was created.
pub(crate) struct StoredTopic {
    pub(crate) created_at: Timestamp,
    pub(crate) topic: baton_core::topic::Topic,
}

fn corrupt(error: &dyn std::fmt::Display) -> EngineError {
    codec::corrupt("topic record", error)
}

pub(crate) fn topic_to_json(stored: &StoredTopic) -> String {
    let doc = RecordDoc {
        created: stored.created_at.as_millis(),
        subs: stored.topic.subscriptions().map(subscription_doc).collect(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

pub(crate) fn topic_from_json(name: &TopicName, text: &str) -> Result<StoredTopic, EngineError> {
    let doc: RecordDoc = serde_json::from_str(text).map_err(|e| corrupt(&e))?;
    let mut topic = baton_core::topic::Topic::new(name.clone());
    for sub in doc.subs {
        topic
            .put_subscription(subscription_from_doc(sub)?)
            .map_err(|e| corrupt(&e))?;
    }
    Ok(StoredTopic {
        created_at: Timestamp::from_millis(doc.created),
        topic,
    })
}

fn subscription_doc(subscription: &Subscription) -> SubscriptionDoc {
    SubscriptionDoc {
        name: subscription.name.to_string(),
        target: match &subscription.target {
            Target::Queue(queue) => TargetDoc::Queue(queue.to_string()),
            Target::Stream(stream) => TargetDoc::Stream(stream.to_string()),
            Target::Url { url, headers } => TargetDoc::Url {
                url: url.clone(),
                headers: headers.clone().into_iter().collect(),
            },
        },
        pattern: subscription
            .pattern
            .as_ref()
            .map(|p| p.as_str().to_string()),
        filter: subscription.filter.as_ref().map(|filter| {
            filter
                .conditions()
                .iter()
                .map(|(name, list)| (name.clone(), list.iter().map(condition_doc).collect()))
                .collect()
        }),
    }
}

fn condition_doc(condition: &Condition) -> ConditionDoc {
    match condition {
        Condition::Exact(text) => ConditionDoc::Exact(text.clone()),
        Condition::ExactNumber(number) => ConditionDoc::ExactNumber(*number),
        Condition::Prefix(text) => ConditionDoc::Prefix(text.clone()),
        Condition::AnythingBut(values) => ConditionDoc::AnythingBut(
            values
                .iter()
                .map(|v| match v {
                    Literal::Text(text) => LiteralDoc::Text(text.clone()),
                    Literal::Number(number) => LiteralDoc::Number(*number),
                })
                .collect(),
        ),
        Condition::AnythingButPrefix(text) => ConditionDoc::AnythingButPrefix(text.clone()),
        Condition::Numeric(bounds) => ConditionDoc::Numeric(
            bounds
                .iter()
                .map(|(op, bound)| (op.as_str().to_string(), *bound))
                .collect(),
        ),
        Condition::Exists(present) => ConditionDoc::Exists(*present),
    }
}

fn condition_from_doc(condition: ConditionDoc) -> Result<Condition, EngineError> {
    Ok(match condition {
        ConditionDoc::Exact(text) => Condition::Exact(text),
        ConditionDoc::ExactNumber(number) => Condition::ExactNumber(number),
        ConditionDoc::Prefix(text) => Condition::Prefix(text),
        ConditionDoc::AnythingBut(values) => Condition::AnythingBut(
            values
                .into_iter()
                .map(|v| match v {
                    LiteralDoc::Text(text) => Literal::Text(text),
                    LiteralDoc::Number(number) => Literal::Number(number),
                })
                .collect(),
        ),
        ConditionDoc::AnythingButPrefix(text) => Condition::AnythingButPrefix(text),
        ConditionDoc::Numeric(bounds) => Condition::Numeric(
            bounds
                .into_iter()
                .map(|(op, bound)| {
                    NumericOp::parse(&op)
                        .map(|op| (op, bound))
                        .ok_or_else(|| corrupt(&format!("unknown numeric operator {op:?}")))
                })
                .collect::<Result<_, _>>()?,
        ),
        ConditionDoc::Exists(present) => Condition::Exists(present),
    })
}

fn subscription_from_doc(doc: SubscriptionDoc) -> Result<Subscription, EngineError> {
    let target = match doc.target {
        TargetDoc::Queue(queue) => Target::Queue(QueueName::new(&queue).map_err(|e| corrupt(&e))?),
        TargetDoc::Stream(stream) => {
            Target::Stream(StreamName::new(&stream).map_err(|e| corrupt(&e))?)
        }
        TargetDoc::Url { url, headers } => Target::Url {
            url,
            headers: headers.into_iter().collect(),
        },
    };
    let pattern = doc
        .pattern
        .map(|p| Pattern::new(&p))
        .transpose()
        .map_err(|e| corrupt(&e))?;
    let filter = match doc.filter {
        None => None,
        Some(pairs) => {
            let mut conditions = BTreeMap::new();
            for (name, list) in pairs {
                let list = list
                    .into_iter()
                    .map(condition_from_doc)
                    .collect::<Result<Vec<_>, _>>()?;
                conditions.insert(name, list);
            }
            Some(FilterPolicy::new(conditions).map_err(|e| corrupt(&e))?)
        }
    };
    Ok(Subscription {
        name: SubscriptionName::new(&doc.name).map_err(|e| corrupt(&e))?,
        target,
        pattern,
        filter,
    })
}
