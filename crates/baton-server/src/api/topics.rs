//! `/v1/topics`: topics, subscriptions and publish (DESIGN.md's contract), and the
//! conversions of routing patterns and SNS-style filter policies from JSON with precise errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_core::topic::{
    Condition, FilterPolicy, Literal, NumericOp, Pattern, RoutingKey, Subscription, Target,
    TopicError,
};
use baton_core::QueueName;
use baton_engine::{EngineError, PublishEntry, TopicView};
use baton_proto as proto;
use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::json::{ApiJson, OptionalJson};
use crate::api::live::LiveSource;
use crate::api::AppState;
use crate::service::queues::{attributes_from_wire, attributes_to_wire};
use crate::service::ServiceError;

fn name(raw: &str) -> Result<QueueName, ApiError> {
    Ok(QueueName::new(raw)?)
}

fn filter_error(reason: String) -> ApiError {
    ServiceError::Engine(EngineError::Topic(TopicError::InvalidFilter { reason })).into()
}

fn number(value: &Value, at: &str) -> Result<f64, ApiError> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| filter_error(format!("{at}: expected a number, found {value}")))
}

fn literal(value: &Value, at: &str) -> Result<Literal, ApiError> {
    match value {
        Value::String(text) => Ok(Literal::Text(text.clone())),
        Value::Number(_) => Ok(Literal::Number(number(value, at)?)),
        other => Err(filter_error(format!(
            "{at}: expected a string or a number, found {other}"
        ))),
    }
}

/// One element of a filter list: a string or number (exact match) or a one-key operator
/// object (`prefix`, `anything-but`, `numeric`, `exists`).
fn condition(value: &Value, at: &str) -> Result<Condition, ApiError> {
    let object = match value {
        Value::String(text) => return Ok(Condition::Exact(text.clone())),
        Value::Number(_) => return Ok(Condition::ExactNumber(number(value, at)?)),
        Value::Object(object) => object,
        other => {
            return Err(filter_error(format!(
                "{at}: expected a string, a number or an operator object, found {other}"
            )))
        }
    };
    let mut entries = object.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return Err(filter_error(format!(
            "{at}: an operator object has exactly one key (prefix, anything-but, numeric or exists)"
        )));
    };
    let at = format!("{at}.{operator}");
    match operator.as_str() {
        "prefix" => match operand {
            Value::String(prefix) => Ok(Condition::Prefix(prefix.clone())),
            other => Err(filter_error(format!(
                "{at}: expected a string, found {other}"
            ))),
        },
        "exists" => match operand {
            Value::Bool(present) => Ok(Condition::Exists(*present)),
            other => Err(filter_error(format!(
                "{at}: expected true or false, found {other}"
            ))),
        },
        "anything-but" => match operand {
            Value::Array(values) => Ok(Condition::AnythingBut(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| literal(v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(inner) => match (inner.len(), inner.get("prefix")) {
                (1, Some(Value::String(prefix))) => {
                    Ok(Condition::AnythingButPrefix(prefix.clone()))
                }
                _ => Err(filter_error(format!(
                    "{at}: an object here must be {{\"prefix\": \"...\"}}"
                ))),
            },
            other => Ok(Condition::AnythingBut(vec![literal(other, &at)?])),
        },
        "numeric" => {
            let Value::Array(items) = operand else {
                return Err(filter_error(format!(
                    "{at}: expected a list such as [\">\", 0, \"<=\", 5], found {operand}"
                )));
            };
            if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
                return Err(filter_error(format!(
                    "{at}: expected one or two operator-number pairs such as [\">\", 0, \"<=\", 5]"
                )));
            }
            let mut bounds = Vec::new();
            for (i, pair) in items.chunks(2).enumerate() {
                let [op, bound] = pair else { continue };
                let op = op.as_str().and_then(NumericOp::parse).ok_or_else(|| {
                    filter_error(format!(
                        "{at}[{}]: expected one of =, <, <=, >, >=, found {op}",
                        i * 2
                    ))
                })?;
                bounds.push((op, number(bound, &format!("{at}[{}]", i * 2 + 1))?));
            }
            Ok(Condition::Numeric(bounds))
        }
        other => Err(filter_error(format!(
            "{at}: unknown operator {other:?}; use prefix, anything-but, numeric or exists"
        ))),
    }
}

/// An SNS filter policy from JSON: `{"attribute": [conditions...], ...}`.
pub fn filter_from_json(value: &Value) -> Result<FilterPolicy, ApiError> {
    let Value::Object(object) = value else {
        return Err(filter_error(format!(
            "a filter is an object of attribute names to lists of conditions, found {value}"
        )));
    };
    let mut conditions = BTreeMap::new();
    for (attribute, list) in object {
        let Value::Array(list) = list else {
            return Err(filter_error(format!(
                "filter.{attribute}: expected a list of conditions, found {list}"
            )));
        };
        let list = list
            .iter()
            .enumerate()
            .map(|(i, v)| condition(v, &format!("filter.{attribute}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        conditions.insert(attribute.clone(), list);
    }
    Ok(FilterPolicy::new(conditions)?)
}

fn literal_to_json(literal: &Literal) -> Value {
    match literal {
        Literal::Text(text) => Value::from(text.clone()),
        Literal::Number(n) => Value::from(*n),
    }
}

pub fn filter_to_json(filter: &FilterPolicy) -> Value {
    let object = filter
        .conditions()
        .iter()
        .map(|(attribute, list)| {
            let list = list
                .iter()
                .map(|c| match c {
                    Condition::Exact(text) => Value::from(text.clone()),
                    Condition::ExactNumber(n) => Value::from(*n),
                    Condition::Prefix(p) => serde_json::json!({ "prefix": p }),
                    Condition::AnythingBut(values) => serde_json::json!({
                        "anything-but": values.iter().map(literal_to_json).collect::<Vec<_>>()
                    }),
                    Condition::AnythingButPrefix(p) => {
                        serde_json::json!({ "anything-but": { "prefix": p } })
                    }
                    Condition::Numeric(bounds) => serde_json::json!({
                        "numeric": bounds
                            .iter()
                            .flat_map(|(op, n)| [Value::from(op.as_str()), Value::from(*n)])
                            .collect::<Vec<_>>()
                    }),
                    Condition::Exists(present) => serde_json::json!({ "exists": present }),
                })
                .collect::<Vec<_>>();
            (attribute.clone(), Value::Array(list))
        })
        .collect();
    Value::Object(object)
}

fn target_from_wire(target: proto::SubscriptionTarget) -> Result<Target, ApiError> {
    let proto::SubscriptionTarget {
        queue,
        stream,
        url,
        headers,
    } = target;
    match (queue, stream, url) {
        (Some(queue), None, None) if headers.is_none() => Ok(Target::Queue(
            QueueName::new(&queue).map_err(|e| ApiError::invalid("target.queue", e.to_string()))?,
        )),
        (None, Some(stream), None) if headers.is_none() => Ok(Target::Stream(
            QueueName::new(&stream)
                .map_err(|e| ApiError::invalid("target.stream", e.to_string()))?,
        )),
        (None, None, Some(url)) => Ok(Target::Url {
            url,
            headers: headers.unwrap_or_default(),
        }),
        _ => Err(ApiError::invalid(
            "target",
            "give exactly one of {\"queue\": name}, {\"stream\": name} or {\"url\", \"headers\"?} (headers only with url)",
        )),
    }
}

fn target_to_wire(target: &Target) -> proto::SubscriptionTarget {
    match target {
        Target::Queue(queue) => proto::SubscriptionTarget {
            queue: Some(queue.to_string()),
            ..Default::default()
        },
        Target::Stream(stream) => proto::SubscriptionTarget {
            stream: Some(stream.to_string()),
            ..Default::default()
        },
        Target::Url { url, headers } => proto::SubscriptionTarget {
            url: Some(url.clone()),
            headers: Some(headers.clone()),
            ..Default::default()
        },
    }
}

fn subscription_to_wire(subscription: &Subscription) -> proto::SubscriptionInfo {
    proto::SubscriptionInfo {
        name: subscription.name.to_string(),
        target: target_to_wire(&subscription.target),
        pattern: subscription
            .pattern
            .as_ref()
            .map(|p| p.as_str().to_string()),
        filter: subscription.filter.as_ref().map(filter_to_json),
    }
}

fn topic_to_wire(state: &AppState, view: TopicView) -> proto::TopicInfo {
    let live = state.live.stats(&LiveSource::Topic(view.name.to_string()));
    proto::TopicInfo {
        name: view.name.to_string(),
        created_at: view.created_at.as_millis(),
        subscriptions: view
            .subscriptions
            .iter()
            .map(subscription_to_wire)
            .collect(),
        stats: proto::TopicStats {
            published_total: view.stats.published_total,
            delivered_total: view.stats.delivered_total,
            unmatched_total: view.stats.unmatched_total,
            live_subscribers: live.subscribers,
            live_sent_total: live.sent_total,
            live_dropped_total: live.dropped_total,
        },
    }
}

/// `topic_to_wire` with URL subscriptions shown with their `url` targets.
async fn topic_to_wire_urls(state: &AppState, view: TopicView) -> proto::TopicInfo {
    let mut info = topic_to_wire(state, view);
    for subscription in &mut info.subscriptions {
        super::topic_urls::show_target(state, subscription).await;
    }
    info
}

/// Topic creation takes no attributes yet; an empty body or `{}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {}

pub async fn create(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    OptionalJson(CreateTopic {}): OptionalJson<CreateTopic>,
) -> Result<Response, ApiError> {
    let name = name(&topic)?;
    let (view, created) = state.engine.create_topic(name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(topic_to_wire_urls(&state, view).await)).into_response())
}

pub async fn list(State(state): State<AppState>) -> Result<Json<proto::TopicList>, ApiError> {
    let topics = state.engine.list_topics().await?;
    let mut list = Vec::with_capacity(topics.len());
    for view in topics {
        list.push(topic_to_wire_urls(&state, view).await);
    }
    Ok(Json(proto::TopicList { topics: list }))
}

pub async fn show(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<proto::TopicInfo>, ApiError> {
    let view = state.engine.get_topic(&name(&topic)?).await?;
    Ok(Json(topic_to_wire_urls(&state, view).await))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    let topic = name(&topic)?;
    let _changes = super::topic_urls::lock().await;
    // The queues backing URL subscriptions go once the topic (and so every fan-out to them)
    // is gone.
    let backing = match state.engine.get_topic(&topic).await {
        Ok(view) => super::topic_urls::backing_queues(&view.subscriptions),
        Err(_) => Vec::new(),
    };
    state.engine.delete_topic(&topic).await?;
    for queue in &backing {
        super::topic_urls::remove_backing(&state, queue).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
    ApiJson(request): ApiJson<proto::PutSubscription>,
) -> Result<Response, ApiError> {
    let topic = name(&topic)?;
    let subscription = Subscription {
        name: name(&subscription)?,
        target: target_from_wire(request.target)?,
        pattern: request.pattern.as_deref().map(Pattern::new).transpose()?,
        filter: request.filter.as_ref().map(filter_from_json).transpose()?,
    };
    super::topic_urls::check_user_target(&subscription.target)?;
    let (subscription, put) = if matches!(subscription.target, Target::Url { .. }) {
        super::topic_urls::put(&state, &topic, subscription).await?
    } else {
        state.engine.put_subscription(&topic, subscription).await?
    };
    let status = match put {
        baton_core::topic::Put::New => StatusCode::CREATED,
        baton_core::topic::Put::Existing => StatusCode::OK,
    };
    Ok((status, Json(subscription_to_wire(&subscription))).into_response())
}

pub async fn show_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
) -> Result<Json<proto::SubscriptionInfo>, ApiError> {
    let topic_name = name(&topic)?;
    let subscription_name = name(&subscription)?;
    let view = state.engine.get_topic(&topic_name).await?;
    let mut info = view
        .subscriptions
        .iter()
        .find(|s| s.name == subscription_name)
        .map(subscription_to_wire)
        .ok_or_else(|| {
            ServiceError::Engine(EngineError::SubscriptionNotFound {
                topic: topic_name.to_string(),
                subscription: subscription_name.to_string(),
            })
        })?;
    super::topic_urls::show_target(&state, &mut info).await;
    Ok(Json(info))
}

pub async fn delete_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (topic, subscription) = (name(&topic)?, name(&subscription)?);
    let _changes = super::topic_urls::lock().await;
    let view = state.engine.get_topic(&topic).await?;
    let backing = super::topic_urls::backing_queues(
        view.subscriptions.iter().filter(|s| s.name == subscription),
    );
    state
        .engine
        .delete_subscription(&topic, &subscription)
        .await?;
    // After the engine's subscription, so no publish fans out to a queue being removed.
    for queue in &backing {
        super::topic_urls::remove_backing(&state, queue).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    ApiJson(request): ApiJson<proto::PublishRequest>,
) -> Result<Json<proto::PublishResponse>, ApiError> {
    let topic = name(&topic)?;
    let mut entries = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.into_iter().enumerate() {
        let routing_key = RoutingKey::new(&message.routing_key)?;
        let attributes = attributes_from_wire(index, message.attributes)?;
        entries.push(PublishEntry {
            id: baton_engine::new_message_id(),
            routing_key,
            body: Arc::from(message.body),
            attributes,
            group_id: message.group_id,
            dedup_id: message.dedup_id,
        });
    }
    let source = LiveSource::Topic(topic.to_string());
    // Built before the publish (which consumes `entries`), pushed only once it is durable.
    let live: Vec<_> = if state.live.has_subscribers(&source) {
        let published_at = state.engine.now().as_millis();
        entries
            .iter()
            .map(|e| {
                (
                    e.routing_key.clone(),
                    Arc::new(proto::LiveMessage {
                        id: e.id.to_string(),
                        topic: topic.to_string(),
                        routing_key: e.routing_key.as_str().to_string(),
                        body: e.body.to_string(),
                        attributes: attributes_to_wire(&e.attributes),
                        published_at,
                    }),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let outcomes = match request.fence {
        Some(fence) => {
            let write = baton_engine::FencedWrite::Publish {
                topic: topic.clone(),
                messages: entries,
            };
            match crate::service::fences::write(&state, fence, write).await? {
                baton_engine::FencedOutcome::Published(outcomes) => outcomes,
                _ => return Err(crate::service::fences::mismatch("publish").into()),
            }
        }
        None => state.engine.publish(&topic, entries).await?,
    };
    state.live.publish(&source, &live);
    Ok(Json(proto::PublishResponse {
        messages: outcomes
            .into_iter()
            .map(|o| proto::PublishedMessage {
                id: o.id.to_string(),
                delivered_to: o.delivered_to,
            })
            .collect(),
    }))
}

/// The topic figures for `/metrics`, labelled by topic.
pub async fn write_metrics(state: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    let Ok(topics) = state.engine.list_topics().await else {
        return;
    };
    let topics: Vec<proto::TopicInfo> = topics
        .into_iter()
        .map(|view| topic_to_wire(state, view))
        .collect();
    type Figure = fn(&proto::TopicStats) -> u64;
    let figures: [(&str, &str, &str, Figure); 6] = [
        (
            "baton_topic_published_total",
            "counter",
            "Messages published to a topic.",
            |s| s.published_total,
        ),
        (
            "baton_topic_delivered_total",
            "counter",
            "Copies a topic delivered to its subscriptions.",
            |s| s.delivered_total,
        ),
        (
            "baton_topic_unmatched_total",
            "counter",
            "Messages that matched no subscription.",
            |s| s.unmatched_total,
        ),
        (
            "baton_topic_live_subscribers",
            "gauge",
            "Open live (SSE/WebSocket) connections.",
            |s| s.live_subscribers,
        ),
        (
            "baton_topic_live_sent_total",
            "counter",
            "Messages pushed to live connections.",
            |s| s.live_sent_total,
        ),
        (
            "baton_topic_live_dropped_total",
            "counter",
            "Messages dropped for slow live connections.",
            |s| s.live_dropped_total,
        ),
    ];
    for (name, kind, help, figure) in figures {
        super::metrics::family(out, name, kind, help);
        for topic in &topics {
            let _ = writeln!(
                out,
                "{name}{{topic=\"{}\"}} {}",
                topic.name,
                figure(&topic.stats)
            );
        }
    }
}
