//! Topics, subscriptions and publish as transport-free operations: names and targets checked
//! and converted once, URL subscriptions through their backing queues (`topic_urls`), and
//! publish followed by the push to live connections (`crate::live`).

use std::sync::Arc;

use baton_core::topic::{Pattern, Put, RoutingKey, Subscription, Target};
use baton_core::{QueueName, StreamName, SubscriptionName, TopicName};
use baton_engine::TopicEngineError;
use baton_engine::{FencedOutcome, FencedWrite, PublishEntry, TopicView};
use baton_proto as proto;

use crate::live::{LiveItem, LiveSource};
use crate::service::queues::{attributes_from_wire, attributes_to_wire};
use crate::service::{fences, topic_filters, topic_urls, ServiceError};
use crate::state::AppState;

/// A topic's name (the queue name rules).
pub fn topic_name(raw: &str) -> Result<TopicName, ServiceError> {
    Ok(TopicName::new(raw)?)
}

/// A subscription's name (the queue name rules).
pub fn subscription_name(raw: &str) -> Result<SubscriptionName, ServiceError> {
    Ok(SubscriptionName::new(raw)?)
}

fn target_from_wire(target: proto::SubscriptionTarget) -> Result<Target, ServiceError> {
    let proto::SubscriptionTarget {
        queue,
        stream,
        url,
        headers,
    } = target;
    match (queue, stream, url) {
        (Some(queue), None, None) if headers.is_none() => Ok(Target::Queue(
            QueueName::new(&queue).map_err(|e| ServiceError::invalid("target.queue", e.to_string()))?,
        )),
        (None, Some(stream), None) if headers.is_none() => Ok(Target::Stream(
            StreamName::new(&stream)
                .map_err(|e| ServiceError::invalid("target.stream", e.to_string()))?,
        )),
        (None, None, Some(url)) => Ok(Target::Url {
            url,
            headers: headers.unwrap_or_default(),
        }),
        _ => Err(ServiceError::invalid(
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
        filter: subscription
            .filter
            .as_ref()
            .map(topic_filters::filter_to_json),
    }
}

pub fn topic_to_wire(state: &AppState, view: TopicView) -> proto::TopicInfo {
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
        topic_urls::show_target(state, subscription).await;
    }
    info
}

/// Creates topic `topic` (`true`) or finds it (`false`).
pub async fn create(
    state: &AppState,
    topic: &str,
) -> Result<(proto::TopicInfo, bool), ServiceError> {
    let (view, created) = state.engine.create_topic(topic_name(topic)?).await?;
    Ok((topic_to_wire_urls(state, view).await, created))
}

pub async fn list(state: &AppState) -> Result<proto::TopicList, ServiceError> {
    let topics = state.engine.list_topics().await?;
    let mut list = Vec::with_capacity(topics.len());
    for view in topics {
        list.push(topic_to_wire_urls(state, view).await);
    }
    Ok(proto::TopicList { topics: list })
}

pub async fn show(state: &AppState, topic: &str) -> Result<proto::TopicInfo, ServiceError> {
    let view = state.engine.get_topic(&topic_name(topic)?).await?;
    Ok(topic_to_wire_urls(state, view).await)
}

pub async fn delete(state: &AppState, topic: &str) -> Result<(), ServiceError> {
    let topic = topic_name(topic)?;
    // The queues backing URL subscriptions go once the topic (and so every fan-out to them)
    // is gone.
    let backing = match state.engine.get_topic(&topic).await {
        Ok(view) => topic_urls::backing_queues(&view.subscriptions),
        Err(_) => Vec::new(),
    };
    state.engine.delete_topic(&topic).await?;
    topic_urls::remove_unused_backing(state, &topic, &backing).await;
    Ok(())
}

/// Puts subscription `subscription` of `topic`: new, or found identical.
pub async fn put_subscription(
    state: &AppState,
    topic: &str,
    subscription: &str,
    request: proto::PutSubscription,
) -> Result<(proto::SubscriptionInfo, Put), ServiceError> {
    let topic = topic_name(topic)?;
    let subscription = Subscription {
        name: subscription_name(subscription)?,
        target: target_from_wire(request.target)?,
        pattern: request.pattern.as_deref().map(Pattern::new).transpose()?,
        filter: request
            .filter
            .as_ref()
            .map(topic_filters::filter_from_json)
            .transpose()?,
    };
    topic_urls::check_user_target(&subscription.target)?;
    let (subscription, put) = if matches!(subscription.target, Target::Url { .. }) {
        topic_urls::put(state, &topic, subscription).await?
    } else {
        state.engine.put_subscription(&topic, subscription).await?
    };
    Ok((subscription_to_wire(&subscription), put))
}

pub async fn show_subscription(
    state: &AppState,
    topic: &str,
    subscription: &str,
) -> Result<proto::SubscriptionInfo, ServiceError> {
    let topic = topic_name(topic)?;
    let wanted = subscription_name(subscription)?;
    let view = state.engine.get_topic(&topic).await?;
    let mut info = view
        .subscriptions
        .iter()
        .find(|s| s.name == wanted)
        .map(subscription_to_wire)
        .ok_or_else(|| {
            ServiceError::Topic(TopicEngineError::SubscriptionNotFound {
                topic: topic.to_string(),
                subscription: wanted.to_string(),
            })
        })?;
    topic_urls::show_target(state, &mut info).await;
    Ok(info)
}

pub async fn delete_subscription(
    state: &AppState,
    topic: &str,
    subscription: &str,
) -> Result<(), ServiceError> {
    let (topic, subscription) = (topic_name(topic)?, subscription_name(subscription)?);
    let view = state.engine.get_topic(&topic).await?;
    let backing =
        topic_urls::backing_queues(view.subscriptions.iter().filter(|s| s.name == subscription));
    state
        .engine
        .delete_subscription(&topic, &subscription)
        .await?;
    // After the engine's subscription, so no publish fans out to a queue being removed.
    topic_urls::remove_unused_backing(state, &topic, &backing).await;
    Ok(())
}

/// Publishes `request`'s messages: one durable fan-out (checked with its fence when it has
/// one), then a push to the topic's live connections. Every publisher — the HTTP API, the
/// framed protocol, schedules — comes through here, so live subscribers see them all.
pub async fn publish(
    state: &AppState,
    topic: &str,
    request: proto::PublishRequest,
) -> Result<proto::PublishResponse, ServiceError> {
    let topic = topic_name(topic)?;
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
    let live = live_copies(state, &source, &topic, &entries);
    let outcomes = match request.fence {
        Some(fence) => {
            let write = FencedWrite::Publish {
                topic: topic.clone(),
                messages: entries,
            };
            match fences::write(state, fence, write).await? {
                FencedOutcome::Published(outcomes) => outcomes,
                _ => return Err(fences::mismatch("publish")),
            }
        }
        None => state.engine.publish(&topic, entries).await?,
    };
    state.live.publish(&source, &live);
    Ok(proto::PublishResponse {
        messages: outcomes
            .into_iter()
            .map(|o| proto::PublishedMessage {
                id: o.id.to_string(),
                delivered_to: o.delivered_to,
            })
            .collect(),
    })
}

/// What the live connections of `source` get of `entries` (nothing without connections).
fn live_copies(
    state: &AppState,
    source: &LiveSource,
    topic: &TopicName,
    entries: &[PublishEntry],
) -> Vec<LiveItem> {
    if !state.live.has_subscribers(source) {
        return Vec::new();
    }
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
}
