//! Topic subscriptions with an HTTP endpoint target (`{"target": {"url", "headers"?}}`).
//!
//! A URL subscription is backed by an internal durable queue (see [`backing_queue`]): the
//! engine stores the subscription with that queue as its target, so a publish stays one
//! durable unit, and a push subscription (`crate::push`) on the queue delivers each copy to
//! the URL with the queue's retries, backoff and circuit breaker. The URL and headers live only
//! in the push subscription (kept by the engine); the API shows the subscription with its
//! `url` target again by reading them back.
//!
//! Invariants: a URL subscription's backing queue and push subscription exist before the
//! engine's subscription does (created in that order, rolled back if the last step fails);
//! deleting the subscription or its topic removes the push subscription and the queue after
//! the engine's subscription is gone. Users may not name a `_baton-` queue as a target.
//! No lock in the server orders these steps, so they hold with several servers on one
//! engine: the push subscription is stored only where the queue has none (two puts of one
//! name with different URLs: one wins, the other gets 409), and a backing queue is removed
//! only while no subscription of its topic names it.

use baton_core::topic::{Subscription, Target, TopicError};
use baton_core::{QueueConfig, QueueName, SubscriptionName, TopicName};
use baton_engine::TopicEngineError;
use baton_proto as proto;
use md5::{Digest, Md5};

use crate::push::PutIfAbsent;
use crate::service::ServiceError;
use crate::state::AppState;

/// Names of the queues backing URL subscriptions start with this (under Baton's reserved
/// `_baton-` prefix).
pub const URL_QUEUE_PREFIX: &str = "_baton-topic-";
/// Most characters of the topic name kept in a backing queue's name (readability only; the
/// hash makes the name unique).
const TOPIC_CHARS_MAX: usize = 40;
/// How old a backing queue without a subscription must be before the start-up sweep removes
/// it (a put creates the queue a few milliseconds before the subscription).
const SWEEP_AGE_MIN_MS: u64 = 10_000;

/// The internal queue backing subscription `subscription` of `topic`:
/// `_baton-topic-<topic, at most 40 chars>-<16 hex digits of md5(topic NUL subscription)>`,
/// at most 13 + 40 + 1 + 16 = 70 characters, within the 80-character name rule. The hash keeps
/// `a-b`/`c` and `a`/`b-c` apart and is stable across restarts.
pub fn backing_queue(topic: &TopicName, subscription: &SubscriptionName) -> QueueName {
    let mut hasher = Md5::new();
    hasher.update(topic.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(subscription.as_str().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let short: String = topic.as_str().chars().take(TOPIC_CHARS_MAX).collect();
    QueueName::new(&format!("{URL_QUEUE_PREFIX}{short}-{hex}"))
        .expect("built from valid names, within the length limit")
}

/// Whether `target` is a user-given queue target naming an internal queue (refused).
pub fn check_user_target(target: &Target) -> Result<(), ServiceError> {
    if let Target::Queue(queue) = target {
        if let Some(reason) = crate::service::queues::reserved_name(queue) {
            return Err(ServiceError::invalid("target.queue", reason));
        }
    }
    Ok(())
}

fn conflict(subscription: &SubscriptionName, differences: String) -> ServiceError {
    ServiceError::Topic(TopicEngineError::Topic(TopicError::SubscriptionExists {
        subscription: subscription.to_string(),
        differences,
    }))
}

/// Puts a URL subscription: validates the URL and headers like a push subscription (nothing
/// is created when they are wrong), then creates the backing queue, its push subscription and
/// the engine's subscription. Returns the subscription as the user gave it.
pub async fn put(
    state: &AppState,
    topic: &TopicName,
    subscription: Subscription,
) -> Result<(Subscription, baton_core::topic::Put), ServiceError> {
    let Target::Url { url, headers } = &subscription.target else {
        unreachable!("only called for url targets");
    };
    let push = state
        .push
        .validate(proto::PushSubscription {
            url: url.clone(),
            headers: headers.clone(),
            concurrency: None,
            timeout_ms: None,
            rate_per_s: None,
        })
        .map_err(|error| match error {
            // The fields sit under `target` in this request.
            ServiceError::InvalidParameter { field, reason } => ServiceError::InvalidParameter {
                field: format!("target.{field}"),
                reason,
            },
            ServiceError::TargetNotAllowed { field, reason } => ServiceError::TargetNotAllowed {
                field: format!("target.{field}"),
                reason,
            },
            other => other,
        })?;
    let queue = backing_queue(topic, &subscription.name);
    let backed = Subscription {
        target: Target::Queue(queue.clone()),
        ..subscription.clone()
    };
    // An existing subscription of that name: the same settings → 200 and nothing changes;
    // other settings → 409 (the engine compares pattern and filter, the URL is compared here).
    let view = state.engine.get_topic(topic).await?;
    if let Some(existing) = view
        .subscriptions
        .iter()
        .find(|s| s.name == subscription.name)
    {
        if existing.target != backed.target {
            return Err(conflict(
                &subscription.name,
                "target differs (an existing subscription is not a url target)".to_string(),
            ));
        }
        let current = state.push.get(&queue).await?;
        if current.url != *url || current.headers != *headers {
            return Err(conflict(
                &subscription.name,
                "target url or headers differ".to_string(),
            ));
        }
        let (_, put) = state.engine.put_subscription(topic, backed).await?;
        return Ok((subscription, put));
    }
    let created = state
        .engine
        .create_queue(queue.clone(), QueueConfig::default())
        .await?;
    let result = async {
        if state.push.put_if_absent(&queue, push).await? == PutIfAbsent::Other {
            return Err(conflict(
                &subscription.name,
                "target url or headers differ".to_string(),
            ));
        }
        Ok::<_, ServiceError>(state.engine.put_subscription(topic, backed).await?)
    }
    .await;
    match result {
        Ok((_, put)) => Ok((subscription, put)),
        Err(error) => {
            if matches!(created, baton_engine::Created::New(_)) {
                remove_backing(state, &queue).await;
            }
            Err(error)
        }
    }
}

/// Removes what backed the URL subscriptions `backing` of `topic` once they are gone from the
/// engine, except a queue a subscription of the topic names again (put meanwhile).
pub async fn remove_unused_backing(state: &AppState, topic: &TopicName, backing: &[QueueName]) {
    let still_used = match state.engine.get_topic(topic).await {
        Ok(view) => backing_queues(&view.subscriptions),
        Err(_) => Vec::new(),
    };
    for queue in backing.iter().filter(|q| !still_used.contains(q)) {
        remove_backing(state, queue).await;
    }
}

/// Removes the push subscription and the queue backing a URL subscription (best effort: a
/// part already gone is fine).
pub async fn remove_backing(state: &AppState, queue: &QueueName) {
    if let Err(error) = state.push.delete(queue).await {
        tracing::debug!(%queue, ?error, "no push subscription to remove");
    }
    if let Err(error) = state.engine.delete_queue(queue).await {
        tracing::debug!(%queue, ?error, "no backing queue to remove");
    }
}

/// The backing queues of `subscriptions` (those that are URL subscriptions).
pub fn backing_queues<'a>(
    subscriptions: impl IntoIterator<Item = &'a Subscription>,
) -> Vec<QueueName> {
    subscriptions
        .into_iter()
        .filter_map(|s| match &s.target {
            Target::Queue(queue) if queue.as_str().starts_with(URL_QUEUE_PREFIX) => {
                Some(queue.clone())
            }
            _ => None,
        })
        .collect()
}

/// Shows a subscription backed by an internal queue with its `url` target again.
pub async fn show_target(state: &AppState, info: &mut proto::SubscriptionInfo) {
    let Some(queue) = info
        .target
        .queue
        .as_deref()
        .filter(|q| q.starts_with(URL_QUEUE_PREFIX))
        .and_then(|q| QueueName::new(q).ok())
    else {
        return;
    };
    if let Ok(push) = state.push.get(&queue).await {
        info.target = proto::SubscriptionTarget {
            url: Some(push.url),
            headers: Some(push.headers),
            ..Default::default()
        };
    }
}

/// Removes backing queues no URL subscription refers to: left over when the server stopped
/// between the steps of a put or a delete. Runs once at start, after the engine has recovered
/// and push subscriptions have resumed. A queue younger than [`SWEEP_AGE_MIN_MS`] is left
/// alone: it may belong to a put still under way (on this server or another).
pub async fn sweep(state: &AppState) {
    let now = state.engine.now();
    let (Ok(topics), Ok(queues)) = (
        state.engine.list_topics().await,
        state.engine.list_queues().await,
    ) else {
        return;
    };
    let used: std::collections::HashSet<QueueName> = topics
        .iter()
        .flat_map(|t| backing_queues(&t.subscriptions))
        .collect();
    for view in queues {
        let young = now.as_millis() < view.meta.created_at.as_millis() + SWEEP_AGE_MIN_MS;
        if view.name.as_str().starts_with(URL_QUEUE_PREFIX) && !used.contains(&view.name) && !young
        {
            tracing::info!(queue = %view.name, "removing a url subscription's left-over queue");
            remove_backing(state, &view.name).await;
        }
    }
}
