//! Live stream subscriptions: a stream's records pushed to a connected client as they are
//! appended, from an offset (SSE or WebSocket), or through a consumer group with acks over a
//! WebSocket.
//!
//! # Slow consumers
//! Unlike a topic's live messages, a stream's records are stored, so a follower never needs
//! to drop anything to keep up: one task per followed partition long-polls the engine and
//! hands records to the connection through a bounded channel (`live_buffer_messages`); when
//! the client is slow the channel fills, the task waits, and the records wait in the stream.
//! The only loss is retention's: when it removes records before a slow follower read them,
//! the follower skips to the first available offset and reports the skipped count (SSE
//! `dropped` event, WebSocket `{"type": "dropped"}` frame, and the stream's live figures in
//! `/metrics`). Nothing is ever removed from storage for a follower.
//!
//! A group WebSocket delivers through the group (`group_read`), so records become pending for
//! the connection's consumer; at most `max_unacked` of them are outstanding on the connection
//! (reading pauses until the client acks), which bounds both the buffer and the pending list
//! it causes. Records delivered and not acked when the connection ends stay pending, as for
//! any consumer: claim them (`POST .../claim`) or ack them later. While reading is paused the
//! consumer does not read, so a partition it owns may be reassigned after
//! `session_timeout_ms`, exactly as for an HTTP consumer that stops reading.
//!
//! Every connection counts toward `live_connections_max` and ends at shutdown.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use baton_core::stream::{ConsumerName, GroupName, ReadFrom, READ_MAX};
use baton_core::{StreamError, StreamName};
use baton_engine::StreamEngineError;
use baton_engine::{Engine, EngineError, StreamRecord};
use baton_proto::stream as wire;
use baton_proto::ErrorDetail;
use futures::stream::Stream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::api::live::until;
use crate::api::streams::{number, query};
use crate::api::AppState;
use crate::auth::middleware::caller_ended;
use crate::auth::Caller;
use crate::caller_limits::LiveSlot;
use crate::live::{LivePermit, LiveSource};
use crate::service::streams::{
    ack_results, consumer_name, group_name, group_records, record_to_wire, stream_name,
};

/// How long one follower read waits at the head before it asks again.
const FOLLOW_WAIT_MS: u64 = 10_000;
/// Pause before retrying when the engine's waiting reads are at their limit.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// `max_unacked` of a group WebSocket when not given; at most `READ_MAX`.
pub const MAX_UNACKED_DEFAULT: u32 = 100;

/// What a partition follower hands its connection.
enum Item {
    Record(StreamRecord),
    /// Retention removed records before they were read.
    Skipped(wire::StreamDropped),
    /// The connection ends with this error.
    Failed(ApiError),
}

fn detail(error: &ApiError) -> ErrorDetail {
    ErrorDetail {
        code: error.status_and_code().1,
        message: error.to_string(),
    }
}

/// An open follower: its permit, its channel, and the token that stops its tasks when the
/// connection is dropped.
struct Follower {
    rx: mpsc::Receiver<Item>,
    permit: LivePermit,
    dropped_total: u64,
    _stop: tokio_util::sync::DropGuard,
}

impl Follower {
    async fn next(&mut self) -> Option<Item> {
        let item = self.rx.recv().await?;
        match &item {
            Item::Record(_) => self.permit.count_sent(1),
            Item::Skipped(skipped) => self.permit.count_dropped(skipped.dropped),
            Item::Failed(_) => {}
        }
        Some(item)
    }
}

/// Checks the query and the stream, then starts one follower task per partition.
async fn open_follower(
    state: &AppState,
    stream: &str,
    raw: Option<String>,
) -> Result<Follower, ApiError> {
    let name = stream_name(stream)?;
    let params = query(raw, &["partition", "from_offset"])?;
    let partition = number::<u32>(&params, "partition")?;
    let from_offset = number::<u64>(&params, "from_offset")?;
    let view = state.engine.get_stream(&name).await?;
    let partitions = view.config.partitions;
    let followed: Vec<u32> = match partition {
        Some(p) if p >= partitions => {
            return Err(StreamError::PartitionOutOfRange {
                partition: p,
                partitions,
            }
            .into())
        }
        Some(p) => vec![p],
        None => (0..partitions).collect(),
    };
    let mut starts = Vec::with_capacity(followed.len());
    for p in followed {
        let stats = view.stats.partitions.iter().find(|s| s.partition == p);
        let next_offset = stats.map_or(0, |s| s.next_offset);
        let start = match from_offset {
            // Without `from_offset`, only what is appended from now on.
            None => next_offset,
            Some(offset) if offset > next_offset => {
                return Err(StreamError::OffsetOutOfRange {
                    partition: p,
                    offset,
                    next_offset,
                }
                .into())
            }
            Some(offset) => offset,
        };
        starts.push((p, start));
    }
    let permit = state.live.follow(LiveSource::Stream(name.to_string()))?;
    let buffer = state.config.live_buffer_messages.max(1) as usize;
    let (tx, rx) = mpsc::channel(buffer);
    let stop = state.shutdown.child_token();
    let max = u32::try_from(buffer).unwrap_or(READ_MAX).min(READ_MAX);
    for (p, start) in starts {
        tokio::spawn(follow_partition(
            state.engine.clone(),
            name.clone(),
            p,
            start,
            max,
            tx.clone(),
            stop.clone(),
        ));
    }
    Ok(Follower {
        rx,
        permit,
        dropped_total: 0,
        _stop: stop.drop_guard(),
    })
}

/// Reads one partition from `next` on, forever, handing records to the connection; waits
/// (never drops) when the connection's buffer is full.
async fn follow_partition(
    engine: Arc<dyn Engine>,
    name: StreamName,
    partition: u32,
    mut next: u64,
    max: u32,
    tx: mpsc::Sender<Item>,
    stop: CancellationToken,
) {
    let mut wait_ms = FOLLOW_WAIT_MS;
    let mut dropped_total = 0;
    loop {
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = engine.read_stream(&name, partition, ReadFrom::Offset(next), max, wait_ms) => read,
        };
        let item = match read {
            Ok(read) => {
                wait_ms = FOLLOW_WAIT_MS;
                next = read.next_offset;
                for record in read.records {
                    if tx.send(Item::Record(record)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Err(StreamEngineError::Stream(StreamError::OffsetExpired { first_offset, .. })) => {
                let dropped = first_offset.saturating_sub(next);
                dropped_total += dropped;
                next = first_offset;
                Item::Skipped(wire::StreamDropped {
                    partition,
                    dropped,
                    dropped_total,
                    next_offset: first_offset,
                })
            }
            Err(StreamEngineError::Engine(EngineError::TooManyWaiters { .. })) => {
                // The engine bounds waiting reads; poll without waiting until one is free.
                wait_ms = 0;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                }
                continue;
            }
            Err(error) => {
                let _ = tx.send(Item::Failed(error.into())).await;
                return;
            }
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// `GET /v1/streams/{s}/live?partition=&from_offset=`: Server-Sent Events of a stream's
/// records. Without `partition`, every partition; without `from_offset`, only records
/// appended from now on. Events: `record` (data: a `Record`), `dropped` (data: a
/// `StreamDropped`), `error` (data: `{"code", "message"}`, then the stream ends).
pub async fn sse(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let follower = open_follower(&state, &stream, raw).await?;
    let events = futures::stream::unfold(Some(follower), |follower| async move {
        let mut follower = follower?;
        let (event, more) = match follower.next().await? {
            Item::Record(record) => (
                Event::default()
                    .event("record")
                    .id(format!("{}-{}", record.partition, record.offset))
                    .json_data(record_to_wire(record)),
                true,
            ),
            Item::Skipped(mut skipped) => {
                follower.dropped_total += skipped.dropped;
                skipped.dropped_total = follower.dropped_total;
                (Event::default().event("dropped").json_data(skipped), true)
            }
            Item::Failed(error) => (
                Event::default().event("error").json_data(detail(&error)),
                false,
            ),
        };
        let event = event.unwrap_or_else(|e| Event::default().event("error").data(e.to_string()));
        Some((Ok(event), more.then_some(follower)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /v1/streams/{s}/ws?partition=&from_offset=`: the same as `live`, as WebSocket text
/// frames (`StreamLiveFrame`). Client frames are ignored except close.
pub async fn ws(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(raw): RawQuery,
    caller: Option<Extension<Caller>>,
    slot: Option<Extension<LiveSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let follower = open_follower(&state, &stream, raw).await?;
    let ended = caller_ended(caller.as_deref());
    Ok(upgrade
        .on_upgrade(move |socket| until(ended, slot, run_follower_socket(socket, follower)))
        .into_response())
}

async fn send_json(socket: &mut WebSocket, frame: &impl serde::Serialize) -> bool {
    let Ok(text) = serde_json::to_string(frame) else {
        return false;
    };
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn run_follower_socket(mut socket: WebSocket, mut follower: Follower) {
    loop {
        tokio::select! {
            item = follower.next() => {
                let Some(item) = item else { break };
                let (frame, more) = match item {
                    Item::Record(record) => (wire::StreamLiveFrame::Record(record_to_wire(record)), true),
                    Item::Skipped(mut skipped) => {
                        follower.dropped_total += skipped.dropped;
                        skipped.dropped_total = follower.dropped_total;
                        (wire::StreamLiveFrame::Dropped(skipped), true)
                    }
                    Item::Failed(error) => (wire::StreamLiveFrame::Error(detail(&error)), false),
                };
                if !send_json(&mut socket, &frame).await || !more {
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

/// `GET /v1/streams/{s}/groups/{g}/ws?consumer=&max_unacked=`: a WebSocket that reads
/// through the group as `consumer` and pushes each record (`GroupLiveFrame::Record`, pending
/// until acked); the client acks with `{"ack": [ids]}` and gets `{"type": "acked",
/// "results"}`. At most `max_unacked` (1..=1000, default 100) delivered records are
/// outstanding on the connection; reading pauses until acks free room.
pub async fn group_ws(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    caller: Option<Extension<Caller>>,
    slot: Option<Extension<LiveSlot>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    let params = query(raw, &["consumer", "max_unacked"])?;
    let consumer =
        consumer_name(params.get("consumer").ok_or_else(|| {
            ApiError::invalid("consumer", "required: the group member to read as")
        })?)?;
    let max_unacked = number::<u32>(&params, "max_unacked")?.unwrap_or(MAX_UNACKED_DEFAULT);
    if !(1..=READ_MAX).contains(&max_unacked) {
        return Err(ApiError::invalid(
            "max_unacked",
            format!("{max_unacked} is out of range 1..={READ_MAX}"),
        ));
    }
    state.engine.get_group(&name, &group).await?;
    let permit = state.live.follow(LiveSource::Stream(name.to_string()))?;
    let ended = caller_ended(caller.as_deref());
    Ok(upgrade
        .on_upgrade(move |socket| {
            until(
                ended,
                slot,
                run_group_socket(socket, state, name, group, consumer, max_unacked, permit),
            )
        })
        .into_response())
}

/// What the group reader hands the socket.
enum GroupItem {
    Records(Vec<baton_engine::GroupRecord>),
    Failed(ApiError),
}

async fn group_reader(
    engine: Arc<dyn Engine>,
    name: StreamName,
    group: GroupName,
    consumer: ConsumerName,
    room: Arc<Semaphore>,
    tx: mpsc::Sender<GroupItem>,
    stop: CancellationToken,
) {
    let mut wait_ms = FOLLOW_WAIT_MS;
    loop {
        // At least one free slot, then as many more as are free.
        let first = tokio::select! {
            () = stop.cancelled() => return,
            permit = room.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        first.forget();
        let extra = room.available_permits().min(READ_MAX as usize - 1);
        if let Ok(permits) = room.clone().try_acquire_many_owned(extra as u32) {
            permits.forget();
        }
        let take = 1 + extra as u32;
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = engine.group_read(&name, &group, &consumer, take, wait_ms) => read,
        };
        match read {
            Ok(records) => {
                wait_ms = FOLLOW_WAIT_MS;
                room.add_permits((take as usize).saturating_sub(records.len()));
                if !records.is_empty() && tx.send(GroupItem::Records(records)).await.is_err() {
                    return;
                }
            }
            Err(StreamEngineError::Engine(EngineError::TooManyWaiters { .. })) => {
                room.add_permits(take as usize);
                wait_ms = 0;
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
            Err(error) => {
                let _ = tx.send(GroupItem::Failed(error.into())).await;
                return;
            }
        }
    }
}

async fn run_group_socket(
    mut socket: WebSocket,
    state: AppState,
    name: StreamName,
    group: GroupName,
    consumer: ConsumerName,
    max_unacked: u32,
    permit: LivePermit,
) {
    let room = Arc::new(Semaphore::new(max_unacked as usize));
    let (tx, mut rx) = mpsc::channel(1);
    let stop = state.shutdown.child_token();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(group_reader(
        state.engine.clone(),
        name.clone(),
        group.clone(),
        consumer,
        room.clone(),
        tx,
        stop,
    ));
    // Ids delivered on this connection and not acked yet: acking one frees room.
    let mut outstanding: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            item = rx.recv() => {
                let Some(item) = item else { break };
                match item {
                    GroupItem::Records(records) => {
                        permit.count_sent(records.len() as u64);
                        for record in group_records(records).records {
                            outstanding.insert(record.id.clone());
                            if !send_json(&mut socket, &wire::GroupLiveFrame::Record(record)).await {
                                return;
                            }
                        }
                    }
                    GroupItem::Failed(error) => {
                        let _ = send_json(&mut socket, &wire::GroupLiveFrame::Error(detail(&error))).await;
                        break;
                    }
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let frame = match serde_json::from_str::<wire::GroupLiveAck>(&text) {
                    Ok(ack) => match ack_results(&state, &name, &group, &ack.ack, None).await {
                        Ok(results) => {
                            // Acked, or no longer this consumer's (claimed by another): either
                            // way it stops counting against this connection.
                            let freed = ack.ack.iter().filter(|id| outstanding.remove(*id)).count();
                            room.add_permits(freed);
                            wire::GroupLiveFrame::Acked { results }
                        }
                        Err(error) => wire::GroupLiveFrame::Error(detail(&ApiError::from(error))),
                    },
                    Err(error) => wire::GroupLiveFrame::Error(detail(&ApiError::Malformed(format!(
                        "a client frame is {{\"ack\": [ids]}}: {error}"
                    )))),
                };
                if !send_json(&mut socket, &frame).await {
                    break;
                }
            }
        }
    }
}
