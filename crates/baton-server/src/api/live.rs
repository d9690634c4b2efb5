//! Live subscriptions over HTTP: `GET /v1/topics/{t}/live` (Server-Sent Events) and
//! `GET /v1/topics/{t}/ws` (a WebSocket), each one connection of the hub (`crate::live`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use baton_core::topic::Pattern;
use baton_core::TopicName;
use baton_proto as proto;
use futures::stream::Stream;

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::auth::middleware::caller_ended;
use crate::auth::Caller;
use crate::caller_limits::LiveSlot;
use crate::live::{LiveEvent, LiveSource, LiveSubscription};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveQuery {
    /// Routing-key pattern; absent means every message.
    pub pattern: Option<String>,
}

/// Checks the topic and pattern, then opens a subscription.
async fn open(
    state: &AppState,
    topic: &str,
    query: LiveQuery,
) -> Result<LiveSubscription, ApiError> {
    let topic = TopicName::new(topic)?;
    let pattern = query.pattern.as_deref().map(Pattern::new).transpose()?;
    state.engine.get_topic(&topic).await?;
    Ok(state
        .live
        .subscribe(LiveSource::Topic(topic.to_string()), pattern)?)
}

fn query(
    raw: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<LiveQuery, ApiError> {
    raw.map(|Query(q)| q)
        .map_err(|e| ApiError::Malformed(format!("invalid query string: {}", e.body_text())))
}

/// `GET /v1/topics/{t}/live?pattern=`: Server-Sent Events. Events: `message` (data: a
/// `LiveMessage`), `dropped` (data: a `LiveDropped`); comments keep the connection alive.
pub async fn sse(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    raw: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let subscription = open(&state, &topic, query(raw)?).await?;
    let stream = futures::stream::unfold(subscription, |mut subscription| async move {
        let event = match subscription.next().await? {
            LiveEvent::Message(message) => Event::default()
                .event("message")
                .id(message.id.clone())
                .json_data(&*message),
            LiveEvent::Dropped(dropped) => Event::default().event("dropped").json_data(dropped),
        };
        let event = event.unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
        Some((Ok(event), subscription))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /v1/topics/{t}/ws?pattern=`: a WebSocket of JSON text frames (`LiveFrame`). Messages
/// from the client are ignored except close.
pub async fn ws(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    raw: Result<Query<LiveQuery>, axum::extract::rejection::QueryRejection>,
    caller: Option<Extension<Caller>>,
    slot: Option<Extension<LiveSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let subscription = open(&state, &topic, query(raw)?).await?;
    let ended = caller_ended(caller.as_deref());
    Ok(upgrade
        .on_upgrade(move |socket| until(ended, slot, run_socket(socket, subscription)))
        .into_response())
}

/// Runs a WebSocket's task until `ended` (the key it was opened with is revoked or expires):
/// the socket is dropped, which closes the connection. The caller's live-stream `slot`, if
/// any, is held until then.
pub async fn until(
    ended: futures::future::BoxFuture<'static, ()>,
    slot: Option<Extension<LiveSlot>>,
    task: impl std::future::Future<Output = ()>,
) {
    tokio::select! {
        () = ended => {}
        () = task => {}
    }
    drop(slot);
}

async fn run_socket(mut socket: WebSocket, mut subscription: LiveSubscription) {
    loop {
        tokio::select! {
            event = subscription.next() => {
                let Some(event) = event else { break };
                let frame = match event {
                    LiveEvent::Message(message) => proto::LiveFrame::Message((*message).clone()),
                    LiveEvent::Dropped(dropped) => proto::LiveFrame::Dropped(dropped),
                };
                let Ok(text) = serde_json::to_string(&frame) else { break };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => {
                match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}
