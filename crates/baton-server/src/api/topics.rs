//! `/v1/topics` over HTTP: topics, subscriptions and publish (DESIGN.md's contract), thin
//! over `service::topics`; and the topic figures of `/metrics`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use baton_core::topic::Put;
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::json::{ApiJson, OptionalJson};
use crate::api::AppState;
use crate::auth::Caller;
use crate::service::topics;

/// Topic creation takes no attributes yet; an empty body or `{}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

pub async fn create(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    OptionalJson(CreateTopic {}): OptionalJson<CreateTopic>,
) -> Result<Response, ApiError> {
    let (info, created) = topics::create(&state, &topic).await?;
    Ok((created_or_ok(created), Json(info)).into_response())
}

/// Only the topics the caller's key may see (every topic without keys).
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<proto::TopicList>, ApiError> {
    let mut list = topics::list(&state).await?;
    if let Some(Extension(caller)) = caller {
        list.topics
            .retain(|t| caller.sees(&format!("topic:{}", t.name)));
    }
    Ok(Json(list))
}

pub async fn show(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<proto::TopicInfo>, ApiError> {
    Ok(Json(topics::show(&state, &topic).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    topics::delete(&state, &topic).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
    ApiJson(request): ApiJson<proto::PutSubscription>,
) -> Result<Response, ApiError> {
    let (info, put) = topics::put_subscription(&state, &topic, &subscription, request).await?;
    Ok((created_or_ok(put == Put::New), Json(info)).into_response())
}

pub async fn show_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
) -> Result<Json<proto::SubscriptionInfo>, ApiError> {
    Ok(Json(
        topics::show_subscription(&state, &topic, &subscription).await?,
    ))
}

pub async fn delete_subscription(
    State(state): State<AppState>,
    Path((topic, subscription)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    topics::delete_subscription(&state, &topic, &subscription).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    ApiJson(request): ApiJson<proto::PublishRequest>,
) -> Result<Json<proto::PublishResponse>, ApiError> {
    Ok(Json(topics::publish(&state, &topic, request).await?))
}

/// The topic figures for `/metrics`, labelled by topic.
pub async fn write_metrics(state: &AppState, out: &mut String) {
    use std::fmt::Write as _;
    let Ok(topics) = state.engine.list_topics().await else {
        return;
    };
    let topics: Vec<proto::TopicInfo> = topics
        .into_iter()
        .map(|view| topics::topic_to_wire(state, view))
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
