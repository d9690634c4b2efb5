//! The framed TCP protocol's listener (docs/wire-protocol.md; codec in `baton_proto::wire`).
//!
//! Owns the wire connections: one reader per connection that reads frames and starts each
//! request as its own task (so a long poll does not hold up the sends behind it), and one
//! writer that writes whatever answers are ready in one system call. The calls themselves are
//! the native API's (`api::queues`), so a request means and checks exactly what it does over
//! HTTP, with the same error codes.
//!
//! Invariants: at most `wire_max_inflight` requests of one connection are served at once (the
//! reader waits for a free slot before it reads the next frame, so a client that never reads
//! its answers is slowed by TCP, not buffered without end); a frame longer than
//! `max_request_bytes` is skipped, answered with `request_too_large`, and the connection goes
//! on; a malformed frame is answered with `malformed_request` under its id. Only a wrong
//! handshake or a frame too short to carry an id closes the connection.

use std::sync::Arc;
use std::time::Instant;

use baton_proto as proto;
use baton_proto::wire::{self, Op, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::error::ApiError;
use crate::api::json::parse;
use crate::api::queues;
use crate::api::AppState;

/// Read buffer of a connection: many small frames are read with one system call.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Answers gathered into one write at most (a single larger answer is written alone).
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Accepts wire connections until `stop` is cancelled, then waits for the open connections to
/// finish the requests they had started (the caller bounds that wait by the shutdown grace).
pub async fn serve(listener: TcpListener, state: AppState, stop: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (state, stop) = (state.clone(), stop.clone());
                connections.spawn(async move {
                    if let Err(error) = connection(stream, state, stop).await {
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
enum ConnectionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the client did not start with the wire protocol's handshake")]
    Handshake,
    #[error("a frame of {0} bytes is too short to carry a request")]
    FrameTooShort(u32),
}

async fn connection(
    stream: TcpStream,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::with_capacity(READ_BUFFER_BYTES, read);
    let mut magic = [0; wire::MAGIC.len()];
    read.read_exact(&mut magic).await?;
    if magic != wire::MAGIC {
        return Err(ConnectionError::Handshake);
    }
    write.write_all(&wire::MAGIC).await?;

    let (answers, pending) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_answers(write, pending));
    let slots = Arc::new(Semaphore::new(state.config.wire_max_inflight as usize));
    let limit = state.config.max_request_bytes;
    let result = loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break Ok(());
        };
        let len = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            len = read_len(&mut read) => match len {
                Ok(Some(len)) => len,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error.into()),
            },
        };
        if (len as usize) < wire::REQUEST_HEAD_BYTES {
            break Err(ConnectionError::FrameTooShort(len));
        }
        if u64::from(len) > limit {
            let mut head = [0; 5];
            if let Err(error) = read.read_exact(&mut head).await {
                break Err(error.into());
            }
            let skip = u64::from(len) - head.len() as u64;
            let mut rest = (&mut read).take(skip);
            if let Err(error) = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await {
                break Err(error.into());
            }
            let id = wire::request_id(&head).unwrap_or(0);
            let error = ApiError::RequestTooLarge { limit_bytes: limit };
            let _ = answers.send(error_frame(id, &error));
            continue;
        }
        let mut frame = vec![0; len as usize];
        if let Err(error) = read.read_exact(&mut frame).await {
            break Err(error.into());
        }
        let (state, answers) = (state.clone(), answers.clone());
        tokio::spawn(async move {
            let answer = answer(&state, &frame).await;
            let _ = answers.send(answer);
            drop(slot);
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

/// The next frame's length, or `None` at a clean end of the connection between frames.
async fn read_len(read: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<u32>> {
    let mut len = [0; wire::LENGTH_BYTES];
    let first = read.read(&mut len).await?;
    if first == 0 {
        return Ok(None);
    }
    read.read_exact(&mut len[first..]).await?;
    Ok(Some(u32::from_le_bytes(len)))
}

/// Writes answers as they come, all that are ready in one write.
async fn write_answers(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut pending: mpsc::UnboundedReceiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
    while let Some(first) = pending.recv().await {
        if first.len() >= WRITE_BATCH_BYTES {
            write.write_all(&first).await?;
            continue;
        }
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH_BYTES {
            match pending.try_recv() {
                Ok(next) => batch.extend_from_slice(&next),
                Err(_) => break,
            }
        }
        write.write_all(&batch).await?;
    }
    write.shutdown().await
}

/// Serves one request frame (without its length prefix); returns the whole answer frame.
async fn answer(state: &AppState, frame: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let id = wire::request_id(frame).unwrap_or(0);
    let mut out = Vec::new();
    let (op, outcome) = match wire::decode_request(frame) {
        Ok(request) => (
            Some(request.op),
            serve_request(state, &request, &mut out).await,
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
            let deliveries = queues::receive_deliveries(state, queue, options).await?;
            let start = wire::begin_frame(out);
            wire::response_head(out, Status::Ok, request.id);
            wire::put_count(out, deliveries.len());
            for delivery in &deliveries {
                let meta_at = out.len();
                out.extend_from_slice(&[0; 4]);
                serde_json::to_writer(&mut *out, &queues::delivery_meta(delivery))
                    .map_err(|error| ApiError::Internal(error.to_string()))?;
                let meta_len = u32::try_from(out.len() - meta_at - 4)
                    .map_err(|_| ApiError::Internal("meta over 4 GiB".to_string()))?;
                out[meta_at..meta_at + 4].copy_from_slice(&meta_len.to_le_bytes());
                wire::put_sized(out, delivery.body.as_bytes());
            }
            wire::end_frame(out, start);
            Ok(())
        }
        Op::Ack => {
            let acked = queues::ack_receipts(state, queue, parse(request.payload)?).await?;
            json_answer(request.id, &acked, out)
        }
        Op::Nack => {
            let nacked = queues::nack_receipts(state, queue, parse(request.payload)?).await?;
            json_answer(request.id, &nacked, out)
        }
    }
}

/// An ok answer whose payload is `value` as JSON.
fn json_answer(id: u32, value: &impl serde::Serialize, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let start = wire::begin_frame(out);
    wire::response_head(out, Status::Ok, id);
    serde_json::to_writer(&mut *out, value).map_err(|e| ApiError::Internal(e.to_string()))?;
    wire::end_frame(out, start);
    Ok(())
}

/// An error answer: the status and error body the same call would get over HTTP.
fn error_frame(id: u32, error: &ApiError) -> Vec<u8> {
    let (status, code) = error.status_and_code();
    if status.is_server_error() && !matches!(error, ApiError::RequestTimeout { .. }) {
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
