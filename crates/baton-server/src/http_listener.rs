//! The HTTP port's listener: every accepted connection whose first request is the wire
//! protocol's upgrade (`GET /v1/wire`) is taken straight to `wire` as the TCP stream it is;
//! every other connection goes to the HTTP server (axum) untouched.
//!
//! Why not only hyper's upgrade (`wire::upgrade`, still there for an upgrade that comes later on
//! a kept-alive connection): an upgraded hyper connection is a boxed stream shared by the
//! reader and the writer through a lock, which costs the framed protocol throughput. Taken
//! here, an upgraded connection is served exactly as one of the dedicated port.
//!
//! A connection is classified by peeking at its first bytes (nothing is consumed unless they
//! start the upgrade's request line), each on its own task, so a silent client holds up no
//! other connection.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::state::AppState;

/// What an upgrade's request line starts with.
const UPGRADE_LINE: &[u8] = b"GET /v1/wire HTTP/1.1\r\n";
/// Longest request head of an upgrade.
const HEAD_BYTES_MAX: usize = 16 * 1024;
/// How long a new connection may take to send its first bytes and an upgrade its head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections classified but not yet taken by the HTTP server.
const BACKLOG: usize = 1024;

/// The listener given to `axum::serve`: the connections that are HTTP.
pub struct HttpListener {
    incoming: mpsc::Receiver<(TcpStream, SocketAddr)>,
    local_addr: SocketAddr,
}

impl HttpListener {
    /// Accepts on `listener` until `stop`, sending wire upgrades to `wire` (tracked by
    /// `state.wire_connections`) and the rest to the returned listener.
    pub fn new(listener: TcpListener, state: AppState, stop: CancellationToken) -> Self {
        let local_addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let (http, incoming) = mpsc::channel(BACKLOG);
        tokio::spawn(accept_loop(listener, http, state, stop));
        HttpListener {
            incoming,
            local_addr,
        }
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (shutdown): no more connections; the server stops
            // accepting at the same moment.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    http: mpsc::Sender<(TcpStream, SocketAddr)>,
    state: AppState,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                // No Nagle delay: HTTP answers and wire answers are written whole.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let (http, state, stop) = (http.clone(), state.clone(), stop.clone());
                tokio::spawn(async move {
                    let first = tokio::time::timeout(HEAD_TIMEOUT, starts_upgrade(&stream)).await;
                    if matches!(first, Ok(Ok(true))) {
                        state.wire_connections.clone().spawn(async move {
                            if let Err(error) = upgrade(stream, state, stop).await {
                                tracing::debug!(%peer, %error, "upgraded wire connection ended");
                            }
                        });
                    } else {
                        // Anything else is HTTP's to answer, errors and timeouts included.
                        let _ = http.send((stream, peer)).await;
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Whether the connection's first bytes are the upgrade's request line (peeked, not read).
async fn starts_upgrade(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0; UPGRADE_LINE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != UPGRADE_LINE[..n] {
            return Ok(false);
        }
        if n == UPGRADE_LINE.len() {
            return Ok(true);
        }
        // A request line split across packets: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Reads the upgrade's head; answers `101` and serves the wire protocol on the stream, or
/// answers the error `wire::upgrade` would and closes.
async fn upgrade(
    mut stream: TcpStream,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), crate::wire::ConnectionError> {
    let mut buf = BytesMut::with_capacity(1024);
    let head_len = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok::<_, std::io::Error>(Some(end + 4));
            }
            if buf.len() > HEAD_BYTES_MAX || stream.read_buf(&mut buf).await? == 0 {
                return Ok(None);
            }
        }
    })
    .await
    .unwrap_or(Ok(None))?;
    let Some(head_len) = head_len else {
        return Ok(());
    };
    let head = buf.split_to(head_len);
    let headers = parse_headers(&head);
    if let Err(reason) = crate::wire::upgrade_asked(Version::HTTP_11, &headers) {
        let error = crate::wire::upgrade_refused(&reason);
        stream.write_all(&error_answer(&error)).await?;
        stream.shutdown().await?;
        return Ok(());
    }
    stream.write_all(crate::wire::SWITCHING_PROTOCOLS).await?;
    crate::wire::tcp_connection(stream, buf, state, stop).await
}

/// The header lines of a request head (after its request line); lines that are no header
/// are left out, as they cannot make a valid upgrade.
fn parse_headers(head: &[u8]) -> HeaderMap {
    let text = String::from_utf8_lossy(head);
    let mut headers = HeaderMap::new();
    for line in text.split("\r\n").skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// A whole HTTP/1.1 answer carrying `error`'s status and body; the connection closes after it.
fn error_answer(error: &ApiError) -> Vec<u8> {
    let (status, code) = error.status_and_code();
    let body = serde_json::to_vec(&baton_proto::ErrorBody {
        error: baton_proto::ErrorDetail {
            code,
            message: error.to_string(),
        },
    })
    .unwrap_or_default();
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The address of the client a request came from, as the request's `ConnectInfo` (for the rate
/// limits and the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, HttpListener>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, HttpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}
