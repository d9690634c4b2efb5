//! The framed TCP protocol's connections (docs/wire-protocol.md; codec in `baton_proto::wire`):
//! those upgraded from HTTP at `GET /v1/wire` ([`upgrade`], the default) and those of a
//! dedicated port ([`serve`], `wire_listen`), both served by the same code.
//!
//! Owns the wire connections: one reader per connection that reads frames and starts each
//! request as its own task (so a long poll does not hold up the sends behind it), and one
//! writer that writes whatever answers are ready in one system call. The calls themselves are
//! the native API's (`service::queues`), so a request means and checks exactly what it does over
//! HTTP, with the same error codes.
//!
//! Invariants: at most `wire_max_inflight` requests of one connection are served or waiting to
//! be written at once (the reader waits for a free slot before it reads the next frame, and a
//! slot is freed only once its answer is written, so a client that never reads its answers is
//! slowed by TCP, not buffered without end); a frame longer than
//! `max_request_bytes` is skipped, answered with `request_too_large`, and the connection goes
//! on; a malformed frame is answered with `malformed_request` under its id. Only a wrong
//! handshake or a frame too short to carry an id closes the connection.

use std::io::IoSlice;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use baton_proto as proto;
use baton_proto::wire::{self, Op, Status};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::error::ApiError;
use crate::api::json::parse;
use crate::auth::audit::{Entry, Outcome};
use crate::auth::middleware::wire_access;
use crate::auth::store::{KeyEntry, Mode};
use crate::caller_limits::Who;
use crate::http_listener::ClientAddr;
use crate::rate_limits::Charged;
use crate::service::queues;
use crate::service::ServiceError;
use crate::state::AppState;

/// Read buffer of a connection: many small frames are read with one system call.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Answers gathered into one write at most: bytes, and answers (the kernel takes at most
/// 1024 slices per write).
const WRITE_BATCH_BYTES: usize = 256 * 1024;
const WRITE_BATCH_ANSWERS: usize = 256;
/// About the size of one received message's fields besides its body, for sizing answers.
const RECEIVED_META_BYTES: usize = 160;

/// Accepts wire connections until `stop` is cancelled, then waits for the open connections to
/// finish the requests they had started (the caller bounds that wait by the shutdown grace).
/// A connection beyond `gate`'s limits is closed at once; with TLS, its handshake must be
/// done within `header_read_timeout_ms`.
pub(crate) async fn serve(
    listener: TcpListener,
    state: AppState,
    stop: CancellationToken,
    gate: crate::http_listener::Gate,
) {
    let connections = TaskTracker::new();
    let handshake_timeout = gate.limits.settings().header_read_timeout;
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(permit) = gate.admit(peer, "wire") else {
                    continue;
                };
                let (state, stop, tls) = (state.clone(), stop.clone(), gate.tls.clone());
                connections.spawn(async move {
                    let _permit = permit;
                    let served = match tls {
                        None => tcp_connection(stream, BytesMut::new(), state, stop).await,
                        Some(tls) => {
                            // Answers are written whole; no Nagle delay under TLS either.
                            let _ = stream.set_nodelay(true);
                            let accept = tls.acceptor().accept(stream);
                            match tokio::time::timeout(handshake_timeout, accept).await {
                                Ok(Ok(stream)) => {
                                    let peer = Some(peer.ip());
                                    stream_connection(stream, BytesMut::new(), peer, state, stop)
                                        .await
                                }
                                Ok(Err(error)) => Err(ConnectionError::Io(error)),
                                Err(_) => Err(ConnectionError::HandshakeTimeout),
                            }
                        }
                    };
                    if let Err(error) = served {
                        tracing::debug!(%peer, %error, "wire connection ended");
                    }
                });
            }
            // Out of file descriptors and the like: the listener itself stays usable.
            Err(error) => {
                tracing::warn!(%error, "cannot accept a wire connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    connections.close();
    connections.wait().await;
}

/// Why a connection was closed by the server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the client did not start with the wire protocol's handshake")]
    Handshake,
    #[error("a frame of {0} bytes is too short to carry a request")]
    FrameTooShort(u32),
    #[error("the TLS handshake was not done within header_read_timeout_ms")]
    HandshakeTimeout,
}

/// `GET /v1/wire` with `Connection: Upgrade` and `Upgrade: baton-wire`: answers `101` and
/// serves the framed protocol on the connection from then on (tracked by
/// `AppState::wire_connections`, so shutdown waits for it as for a dedicated port's).
pub async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    if let Err(reason) = upgrade_asked(request.version(), request.headers()) {
        return upgrade_refused(&reason).into_response();
    }
    let Some(on_upgrade) = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    else {
        return ApiError::from(ServiceError::Internal(
            "this connection cannot be upgraded".to_string(),
        ))
        .into_response();
    };
    let stop = state.shutdown.clone();
    let peer = ClientAddr::ip_of(request.extensions());
    state.wire_connections.clone().spawn(async move {
        let io = match on_upgrade.await {
            Ok(io) => hyper_util::rt::TokioIo::new(io),
            Err(error) => {
                tracing::debug!(%error, "wire upgrade failed");
                return;
            }
        };
        let (read, write) = tokio::io::split(io);
        if let Err(error) = connection(read, write, BytesMut::new(), peer, state, stop).await {
            tracing::debug!(%error, "upgraded wire connection ended");
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, wire::UPGRADE_PROTOCOL),
        ],
    )
        .into_response()
}

/// The answer of the first request of a connection that upgrades (`http_listener`).
pub(crate) const SWITCHING_PROTOCOLS: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: baton-wire\r\n\r\n";

/// The error of an upgrade request that lacks what `reason` says.
pub(crate) fn upgrade_refused(reason: &str) -> ApiError {
    ApiError::Malformed(format!(
        "GET {} switches an HTTP/1.1 connection to the framed protocol: {reason}",
        wire::UPGRADE_PATH
    ))
}

/// Whether the request asks for the upgrade, or what it lacks.
pub(crate) fn upgrade_asked(version: Version, headers: &HeaderMap) -> Result<(), String> {
    if version != Version::HTTP_11 {
        return Err(format!("this request is {version:?}"));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("send `Connection: Upgrade`".to_string());
    }
    if !has_token(header::UPGRADE, wire::UPGRADE_PROTOCOL) {
        let given = headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .map_or_else(String::new, |v| format!(" (given: {v:?})"));
        return Err(format!("send `Upgrade: {}`{given}", wire::UPGRADE_PROTOCOL));
    }
    Ok(())
}

/// Serves a TCP connection of which `initial` was read already.
pub(crate) async fn tcp_connection(
    stream: TcpStream,
    initial: BytesMut,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr().ok().map(|addr| addr.ip());
    let (read, write) = stream.into_split();
    connection(read, write, initial, peer, state, stop).await
}

/// Serves a connection of any stream type (TLS) of which `initial` was read already; its
/// reader and writer share the stream through `tokio::io::split`.
pub(crate) async fn stream_connection<S>(
    stream: S,
    initial: BytesMut,
    peer: Option<IpAddr>,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), ConnectionError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read, write) = tokio::io::split(stream);
    connection(read, write, initial, peer, state, stop).await
}

/// Serves one connection, whichever way it came, from its handshake on.
async fn connection<R, W>(
    read: R,
    mut write: W,
    mut initial: BytesMut,
    peer: Option<IpAddr>,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), ConnectionError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    initial.reserve(READ_BUFFER_BYTES);
    let mut frames = FrameReader { read, buf: initial };
    if !frames.fill(wire::MAGIC.len()).await? || frames.buf[..wire::MAGIC.len()] != wire::MAGIC {
        return Err(ConnectionError::Handshake);
    }
    frames.buf.advance(wire::MAGIC.len());
    write.write_all(&wire::MAGIC).await?;
    // A TLS stream holds the record back until flushed.
    write.flush().await?;

    // Each answer travels with its slot, freed once the answer is written.
    let (answers, pending) = mpsc::unbounded_channel::<(Vec<u8>, OwnedSemaphorePermit)>();
    let writer = tokio::spawn(write_answers(write, pending));
    let slots = Arc::new(Semaphore::new(state.config.wire_max_inflight as usize));
    let limit = state.config.max_request_bytes;
    // The key the connection authenticated as (auth frame), checked again on every request.
    let mut key: Option<Arc<KeyEntry>> = None;
    let result = loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break Ok(());
        };
        let next = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            next = frames.next(limit) => next,
        };
        let frame = match next {
            Ok(Next::Frame(frame)) => frame,
            Ok(Next::TooLarge { id }) => {
                let error = ApiError::RequestTooLarge { limit_bytes: limit };
                let _ = answers.send((error_frame(id, &error), slot));
                continue;
            }
            Ok(Next::Closed) => break Ok(()),
            Err(error) => break Err(error),
        };
        let mut charged = Charged::default();
        if let Err(refused) = admit(&state, peer, key.as_deref(), frame.len(), &mut charged) {
            let id = wire::request_id(&frame).unwrap_or(0);
            audit_refused(
                &state,
                peer,
                key.as_ref().map(|k| k.name.as_str()),
                None,
                &refused,
            );
            let _ = answers.send((error_frame(id, &ApiError::from(refused)), slot));
            continue;
        }
        // An auth frame is served here, before the next frame is read: the requests behind
        // it act as its key.
        if frame.first() == Some(&(Op::Auth as u8)) {
            let id = wire::request_id(&frame).unwrap_or(0);
            let answer = match authenticate(&state, &frame) {
                Ok((entry, answer)) => {
                    key = entry;
                    answer
                }
                Err(error) => {
                    key = None;
                    if let ApiError::Service(refused) = &error {
                        audit_refused(&state, peer, None, None, refused);
                    }
                    error_frame(id, &error)
                }
            };
            let _ = answers.send((answer, slot));
            continue;
        }
        let (state, answers, key) = (state.clone(), answers.clone(), key.clone());
        tokio::spawn(async move {
            let answer = answer(&state, peer, key.as_ref(), &frame).await;
            state
                .rate_limits
                .charge_answer(&charged, answer.len() as u64);
            let _ = answers.send((answer, slot));
        });
    };
    // The writer ends once every started request has sent its answer.
    drop(answers);
    let written = writer.await;
    result?;
    match written {
        Ok(written) => Ok(written?),
        Err(join_error) => Err(std::io::Error::other(join_error).into()),
    }
}

/// Splits a connection's bytes into request frames. A frame is cut out of the read buffer
/// without a copy (and the buffer is grown to hold a large frame whole, so it is read into
/// place); every method leaves the state consistent if its future is dropped.
struct FrameReader<R> {
    read: R,
    buf: BytesMut,
}

/// What [`FrameReader::next`] found.
enum Next {
    /// A request frame, without its length prefix.
    Frame(Bytes),
    /// A frame over the limit, read past; `id` is its request id.
    TooLarge { id: u32 },
    /// The client closed the connection between frames.
    Closed,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Reads until the buffer holds `want` bytes; `false` if the connection ends first.
    async fn fill(&mut self, want: usize) -> std::io::Result<bool> {
        while self.buf.len() < want {
            if self.buf.capacity() - self.buf.len() < READ_BUFFER_BYTES / 4 {
                self.buf.reserve(READ_BUFFER_BYTES);
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn next(&mut self, limit: u64) -> Result<Next, ConnectionError> {
        let eof = || ConnectionError::Io(std::io::ErrorKind::UnexpectedEof.into());
        if !self.fill(wire::LENGTH_BYTES).await? {
            return if self.buf.is_empty() {
                Ok(Next::Closed)
            } else {
                Err(eof())
            };
        }
        let mut len = [0; wire::LENGTH_BYTES];
        len.copy_from_slice(&self.buf[..wire::LENGTH_BYTES]);
        let len = u32::from_le_bytes(len);
        if (len as usize) < wire::REQUEST_HEAD_BYTES {
            return Err(ConnectionError::FrameTooShort(len));
        }
        let total = wire::LENGTH_BYTES + len as usize;
        if u64::from(len) > limit {
            if !self.fill(wire::LENGTH_BYTES + 5).await? {
                return Err(eof());
            }
            let id = wire::request_id(&self.buf[wire::LENGTH_BYTES..]).unwrap_or(0);
            let mut left = total;
            loop {
                let here = left.min(self.buf.len());
                self.buf.advance(here);
                left -= here;
                if left == 0 {
                    return Ok(Next::TooLarge { id });
                }
                if !self.fill(1).await? {
                    return Err(eof());
                }
            }
        }
        self.buf.reserve(total.saturating_sub(self.buf.len()));
        if !self.fill(total).await? {
            return Err(eof());
        }
        let mut frame = self.buf.split_to(total);
        frame.advance(wire::LENGTH_BYTES);
        Ok(Next::Frame(frame.freeze()))
    }
}

/// Writes answers as they come: all that are ready (up to a bound) in one vectored write.
async fn write_answers<W: AsyncWrite + Unpin>(
    mut write: W,
    mut pending: mpsc::UnboundedReceiver<(Vec<u8>, OwnedSemaphorePermit)>,
) -> std::io::Result<()> {
    let mut ready = Vec::new();
    while let Some(first) = pending.recv().await {
        let mut bytes = first.0.len();
        ready.push(first);
        while bytes < WRITE_BATCH_BYTES && ready.len() < WRITE_BATCH_ANSWERS {
            match pending.try_recv() {
                Ok(next) => {
                    bytes += next.0.len();
                    ready.push(next);
                }
                Err(_) => break,
            }
        }
        {
            let mut slices: Vec<IoSlice<'_>> = ready.iter().map(|(a, _)| IoSlice::new(a)).collect();
            let mut slices = slices.as_mut_slice();
            while !slices.is_empty() {
                let written = write.write_vectored(slices).await?;
                if written == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                IoSlice::advance_slices(&mut slices, written);
            }
        }
        // TLS keeps records it could not write yet (the socket was full) until a flush; on
        // TCP this is a no-op.
        write.flush().await?;
        // Written: their slots are free for the next requests.
        ready.clear();
    }
    write.shutdown().await
}

/// Admits a request frame of `bytes` under the rate limits of the client and of the
/// connection's key.
fn admit(
    state: &AppState,
    peer: Option<IpAddr>,
    key: Option<&KeyEntry>,
    bytes: usize,
    charged: &mut Charged,
) -> Result<(), ServiceError> {
    let limits = &state.rate_limits;
    if limits.is_off() {
        return Ok(());
    }
    let bytes = bytes as u64;
    if let Some(peer) = peer {
        limits.admit_client(peer, bytes, charged)?;
    }
    if let Some(key) = key {
        limits.admit_key(&key.name, bytes, charged)?;
    }
    Ok(())
}

/// Audits a refused frame: `op` on its queue, if the frame was decoded.
fn audit_refused(
    state: &AppState,
    peer: Option<IpAddr>,
    key: Option<&str>,
    op: Option<(Op, &str)>,
    refused: &ServiceError,
) {
    let (outcome, status) = match refused.code() {
        proto::ErrorCode::Unauthorized => (Outcome::Unauthorized, 401),
        proto::ErrorCode::Forbidden => (Outcome::Forbidden, 403),
        proto::ErrorCode::RateLimited => (Outcome::RateLimited, 429),
        // Not a refusal of the caller (e.g. `not_ready` while starting).
        _ => return,
    };
    let action = op.and_then(|(op, _)| crate::auth::middleware::wire_action(op));
    let resource = op.map(|(_, queue)| format!("queue:{queue}"));
    state.audit.record(&Entry {
        key,
        action,
        resource: resource.as_deref().unwrap_or("-"),
        outcome,
        status,
        client: peer,
        method: "WIRE",
        path: op.map_or(wire::UPGRADE_PATH, |(op, _)| op.name()),
    });
}

/// Serves an auth frame: the key it names (`None` on a server without keys) and the answer.
fn authenticate(
    state: &AppState,
    frame: &[u8],
) -> Result<(Option<Arc<KeyEntry>>, Vec<u8>), ApiError> {
    let started = Instant::now();
    let request = wire::decode_request(frame).map_err(|e| ApiError::Malformed(e.to_string()))?;
    if !request.queue.is_empty() {
        return Err(ApiError::Malformed(
            "an auth frame has an empty queue name".to_string(),
        ));
    }
    let token = std::str::from_utf8(request.payload)
        .map_err(|_| ApiError::Malformed("the API key is not UTF-8".to_string()))?
        .trim();
    let outcome = match state.keys.mode() {
        Mode::Loading => Err(ServiceError::Engine(baton_engine::EngineError::NotReady)),
        Mode::Open => Ok(None),
        Mode::Enforced => state.keys.authenticate(token).map(Some),
    };
    let status = if outcome.is_ok() { 200 } else { 401 };
    state
        .http_metrics
        .record_wire(Op::Auth.name(), status, started.elapsed().as_secs_f64());
    let entry = outcome?;
    let mut out = Vec::new();
    let body = wire::AuthAnswer {
        key: entry.as_ref().map(|key| key.name.clone()),
        expires_at: entry.as_ref().and_then(|key| key.expires_at),
    };
    json_answer(request.id, &body, &mut out)?;
    Ok((entry, out))
}

/// Serves one request frame (without its length prefix) of a connection authenticated as
/// `key`; returns the whole answer frame.
async fn answer(
    state: &AppState,
    peer: Option<IpAddr>,
    key: Option<&Arc<KeyEntry>>,
    frame: &[u8],
) -> Vec<u8> {
    let started = Instant::now();
    let id = wire::request_id(frame).unwrap_or(0);
    let mut out = Vec::new();
    let (op, outcome) = match wire::decode_request(frame) {
        Ok(request) => (
            Some(request.op),
            match wire_access(state, key, request.op, request.queue) {
                Ok(()) => {
                    let who = Who {
                        key: key.cloned(),
                        client: peer,
                    };
                    serve_request(state, &request, &who, &mut out).await
                }
                Err(refused) => {
                    let op = Some((request.op, request.queue));
                    audit_refused(state, peer, key.map(|k| k.name.as_str()), op, &refused);
                    Err(refused.into())
                }
            },
        ),
        Err(error) => (None, Err(ApiError::Malformed(error.to_string()))),
    };
    let status = match outcome {
        Ok(()) => 200,
        Err(error) => {
            out = error_frame(id, &error);
            error.status_and_code().0.as_u16()
        }
    };
    state.http_metrics.record_wire(
        op.map_or("malformed", Op::name),
        status,
        started.elapsed().as_secs_f64(),
    );
    out
}

/// Runs `request` and writes its whole answer frame to `out` (left empty on an error).
async fn serve_request(
    state: &AppState,
    request: &wire::Request<'_>,
    who: &Who,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let queue = request.queue;
    match request.op {
        Op::Send => {
            let items = wire::decode_send(request.payload)
                .map_err(|error| ApiError::Malformed(error.to_string()))?;
            let mut entries = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                let options = if item.meta.is_empty() {
                    queues::SendOptions::default()
                } else {
                    parse(item.meta).map_err(|error| match error {
                        ApiError::Malformed(reason) => {
                            ApiError::Malformed(format!("messages[{index}] meta: {reason}"))
                        }
                        other => other,
                    })?
                };
                entries.push(queues::send_entry(state, index, item.body.into(), options)?);
            }
            let sent = queues::send_entries(state, queue, entries).await?;
            json_answer(request.id, &sent, out)
        }
        Op::Receive => {
            let options = if request.payload.iter().all(u8::is_ascii_whitespace) {
                proto::ReceiveRequest::default()
            } else {
                parse(request.payload)?
            };
            let deliveries = queues::receive_deliveries(state, queue, options, who).await?;
            // Sized up front: growing by doubling would copy the bodies again.
            out.reserve(
                64 + deliveries
                    .iter()
                    .map(|d| d.body.len() + RECEIVED_META_BYTES)
                    .sum::<usize>(),
            );
            let start = wire::begin_frame(out);
            wire::response_head(out, Status::Ok, request.id);
            wire::put_count(out, deliveries.len());
            for (index, delivery) in deliveries.iter().enumerate() {
                let user_attributes = queues::attributes_to_wire(&delivery.attributes);
                let attributes = if user_attributes.is_empty() {
                    Vec::new()
                } else {
                    serde_json::to_vec(&user_attributes)
                        .map_err(|error| ServiceError::Internal(error.to_string()))?
                };
                let item = wire::ReceivedItem {
                    id: &delivery.id.to_string(),
                    receipt: &delivery.receipt.to_string(),
                    seq: delivery.seq,
                    receive_count: delivery.receive_count,
                    sent_at: delivery.sent_at.as_millis(),
                    first_received_at: delivery.first_received_at.as_millis(),
                    group_id: delivery.group_id.as_deref(),
                    dedup_id: delivery.dedup_id.as_deref(),
                    attributes: &attributes,
                    body: &delivery.body,
                };
                wire::put_received(out, index, &item)
                    .map_err(|error| ServiceError::Internal(error.to_string()))?;
            }
            wire::end_frame(out, start);
            Ok(())
        }
        Op::Ack => {
            let acked = queues::ack(state, queue, parse(request.payload)?).await?;
            json_answer(request.id, &acked, out)
        }
        // Served by the connection's reader (`authenticate`), never here.
        Op::Auth => Err(ApiError::Malformed(
            "an auth frame is answered by the connection itself".to_string(),
        )),
        Op::Nack => {
            let nacked = queues::nack(state, queue, parse(request.payload)?).await?;
            json_answer(request.id, &nacked, out)
        }
    }
}

/// An ok answer whose payload is `value` as JSON.
fn json_answer(id: u32, value: &impl serde::Serialize, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let start = wire::begin_frame(out);
    wire::response_head(out, Status::Ok, id);
    serde_json::to_writer(&mut *out, value).map_err(|e| ServiceError::Internal(e.to_string()))?;
    wire::end_frame(out, start);
    Ok(())
}

/// An error answer: the status and error body the same call would get over HTTP.
fn error_frame(id: u32, error: &ApiError) -> Vec<u8> {
    let (status, code) = error.status_and_code();
    if status.is_server_error() && !matches!(error, ApiError::Service(e) if e.is_expected()) {
        tracing::error!(%error, "wire request failed");
    }
    let body = wire::WireError {
        status: status.as_u16(),
        error: proto::ErrorDetail {
            code,
            message: error.to_string(),
        },
    };
    let mut out = Vec::new();
    let start = wire::begin_frame(&mut out);
    wire::response_head(&mut out, Status::Error, id);
    // An error body of a code and a message always serializes.
    let _ = serde_json::to_writer(&mut out, &body);
    wire::end_frame(&mut out, start);
    out
}
