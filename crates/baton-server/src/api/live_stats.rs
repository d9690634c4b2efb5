//! `GET /v1/live/stats`: server-sent events, one `LiveSnapshot` of the whole node per
//! `LIVE_INTERVAL` (the first at once), for the dashboard.
//!
//! Bounded: at most `live_streams_max` streams are open at once (a permit is held by each
//! stream and released when the client goes away, because axum drops the stream then); each
//! snapshot lists at most `LIVE_QUEUES_MAX` queues. A stream ends by itself at shutdown, so
//! open dashboards never hold up the graceful shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use baton_engine::{EngineError, StreamEngineError, TopicEngineError};
use baton_proto as proto;
use futures::StreamExt as _;
use tokio::sync::OwnedSemaphorePermit;

use crate::api::error::ApiError;
use crate::api::system::info;
use crate::api::AppState;
use crate::auth::rules::SERVER_RESOURCE;
use crate::auth::{Caller, Mode};
use crate::live::LiveSource;
use crate::service::queues::queue_info;
use crate::service::ServiceError;
use baton_proto::KeyAction;

/// Time between two snapshots.
pub const LIVE_INTERVAL: Duration = Duration::from_secs(1);
/// Queues listed per snapshot (ordered by name); `queues_truncated` says when more exist.
pub const LIVE_QUEUES_MAX: usize = 500;

/// The node as of now, as `caller` may see it: only its queues, streams and topics (in the
/// lists and in the totals); the node's own figures (storage, HTTP) only for `admin`.
pub async fn snapshot(state: &AppState, caller: &Caller) -> Result<proto::LiveSnapshot, ApiError> {
    let admin = caller
        .0
        .as_ref()
        .is_none_or(|key| key.grants.allows(KeyAction::Admin, SERVER_RESOURCE));
    let mut views = state.engine.list_queues().await?;
    views.retain(|view| caller.sees(&format!("queue:{}", view.name)));
    let mut totals = proto::QueueStats::default();
    for view in &views {
        let s = &view.stats;
        totals.visible += s.visible;
        totals.in_flight += s.in_flight;
        totals.delayed += s.delayed;
        totals.oldest_age_ms = totals.oldest_age_ms.max(s.oldest_age_ms);
        totals.sent_total += s.sent_total;
        totals.duplicates_total += s.duplicates_total;
        totals.received_total += s.received_total;
        totals.acked_total += s.acked_total;
        totals.nacked_total += s.nacked_total;
        totals.dead_lettered_total += s.dead_lettered_total;
        totals.expired_total += s.expired_total;
        totals.purged_total += s.purged_total;
        totals.moved_in_total += s.moved_in_total;
        totals.moved_out_total += s.moved_out_total;
    }
    let queues_truncated = views.len() > LIVE_QUEUES_MAX;
    let queues = views
        .into_iter()
        .take(LIVE_QUEUES_MAX)
        .map(queue_info)
        .collect();
    let wal = state
        .engine
        .storage_stats()
        .filter(|_| admin)
        .map(|s| proto::WalCounters {
            batches: s.batches,
            records: s.records,
            bytes: s.bytes,
            syncs: s.syncs,
            sync_micros: s.sync_micros,
        });
    let mut streams = proto::StreamsSummary::default();
    // An engine without streams or topics (Redis, so far) has none to sum up.
    let stream_views = match state.engine.list_streams().await {
        Err(StreamEngineError::Engine(EngineError::NotOnEngine { .. })) => Vec::new(),
        listed => listed?,
    };
    for view in stream_views {
        if !caller.sees(&format!("stream:{}", view.name)) {
            continue;
        }
        streams.count += 1;
        streams.records += view.stats.records;
        streams.bytes += view.stats.bytes;
        for group in &view.stats.groups {
            streams.groups += 1;
            streams.lag_total += group.lag_total;
            streams.pending += group.pending;
        }
    }
    let mut topics = proto::TopicsSummary::default();
    let topic_views = match state.engine.list_topics().await {
        Err(TopicEngineError::Engine(EngineError::NotOnEngine { .. })) => Vec::new(),
        listed => listed?,
    };
    for view in topic_views {
        if !caller.sees(&format!("topic:{}", view.name)) {
            continue;
        }
        let live = state.live.stats(&LiveSource::Topic(view.name.to_string()));
        topics.count += 1;
        topics.subscriptions += view.subscriptions.len() as u64;
        topics.published_total += view.stats.published_total;
        topics.delivered_total += view.stats.delivered_total;
        topics.live_subscribers += live.subscribers;
    }
    Ok(proto::LiveSnapshot {
        at: state.engine.now().as_millis(),
        server: info(state),
        ready: state.engine.is_ready(),
        storage_failure: state.engine.storage_failure(),
        readiness: Some(super::system::readiness(state.engine.as_ref())),
        totals,
        queues,
        queues_truncated,
        wal,
        http: if admin {
            state.http_metrics.counters()
        } else {
            Default::default()
        },
        streams,
        topics,
    })
}

/// One event: `stats` with the snapshot as JSON, or `unavailable` with the reason while the
/// engine cannot list queues (storage still recovering). Not `error`: EventSource clients
/// reserve that name for connection failures.
async fn event(state: &AppState, caller: &Caller) -> Event {
    let unavailable = |reason: String| Event::default().event("unavailable").data(reason);
    match snapshot(state, caller).await {
        Ok(snapshot) => Event::default()
            .event("stats")
            .json_data(&snapshot)
            .unwrap_or_else(|error| unavailable(error.to_string())),
        Err(error) => unavailable(error.to_string()),
    }
}

/// Opened while the keys load (the dashboard's stream reconnects only after a 200), it says
/// `unavailable` until they are loaded, and ends if keys turn out to be required and it was
/// opened without one.
pub async fn stats(State(state): State<AppState>, caller: Option<Extension<Caller>>) -> Response {
    let caller = caller.map_or(Caller(None), |Extension(caller)| caller);
    let keyed = caller.0.is_some();
    let permit: OwnedSemaphorePermit = match state.live_streams.clone().try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => {
            return ApiError::from(ServiceError::TooManyLiveStreams {
                limit: state.config.live_streams_max,
            })
            .into_response()
        }
    };
    let stop = state.shutdown.clone();
    let mut ticker = tokio::time::interval(LIVE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The permit lives in the stream's state, so it is released when axum drops the stream
    // (the client went away) or the stream ends (shutdown).
    let events = futures::stream::unfold(
        (ticker, state, permit, caller),
        move |(mut ticker, state, permit, caller)| async move {
            ticker.tick().await;
            let event = match state.keys.mode() {
                Mode::Enforced if !keyed => return None,
                Mode::Loading if state.engine.is_ready() => Event::default()
                    .event("unavailable")
                    .data("not ready: the API keys are loading"),
                _ => event(&state, &caller).await,
            };
            Some((
                Ok::<Event, Infallible>(event),
                (ticker, state, permit, caller),
            ))
        },
    )
    .take_until(stop.cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use baton_engine::{EngineConfig, LocalEngine, StorageConfig, SystemClock};
    use baton_storage::SimFs;
    use futures::StreamExt as _;

    use crate::config::ServerConfig;

    /// A durable engine whose recovery has not run is not ready: the stream says so with an
    /// `unavailable` event instead of a snapshot, and keeps going.
    #[tokio::test]
    async fn a_stream_says_unavailable_until_storage_is_recovered() {
        let engine = LocalEngine::durable(
            Arc::new(SystemClock),
            EngineConfig::default(),
            Arc::new(SimFs::new()),
            StorageConfig::new("/data"),
            false,
        )
        .unwrap();
        let state = crate::app_state(
            Arc::new(ServerConfig::default()),
            Arc::new(engine),
            "127.0.0.1:0".to_string(),
            None,
            tokio_util::sync::CancellationToken::new(),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = crate::api::router(state);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{address}/v1/live/stats"))
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let mut body = response.bytes_stream();
        let first = body.next().await.unwrap().unwrap();
        let text = std::str::from_utf8(&first).unwrap();
        assert!(text.starts_with("event: unavailable\n"), "{text}");
        assert!(text.contains("not ready"), "{text}");
        drop(body);
        server.abort();
    }
}
