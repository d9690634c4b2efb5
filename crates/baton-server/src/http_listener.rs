//! The HTTP port's server loop: accepts connections (within `connections`' limits), runs the
//! TLS handshake when TLS is configured, picks each connection's protocol and serves it with
//! hyper — HTTP/1.1 or HTTP/2 with the axum router, or the wire protocol (`wire`).
//!
//! The protocol is known per connection before hyper sees it, so each connection gets a
//! builder of its own protocol instead of hyper-util's auto builder (which would read and
//! replay the first bytes a second time): over TLS from ALPN (`h2`), otherwise from the
//! connection's first bytes — the HTTP/2 preface, the wire upgrade's request line
//! (`GET /v1/wire`), or anything else (HTTP/1.1). On plain TCP they are peeked, nothing is
//! consumed; over TLS they are read from the decrypted stream and replayed ([`Prefixed`]).
//!
//! Why wire upgrades are taken here and not only by hyper's upgrade (`wire::upgrade`, still
//! there for an upgrade that comes later on a kept-alive connection): an upgraded hyper
//! connection is a boxed stream shared by the reader and the writer through a lock, which
//! costs the framed protocol throughput. Taken here, an upgraded plain connection is served
//! exactly as one of the dedicated port.
//!
//! The plain HTTP/1.1 path is what `axum::serve` did — the router cloned per request into
//! hyper's connection — plus the few counters `http1_watch` keeps for the header and idle
//! timeouts (instead of hyper's `header_read_timeout`, a timer per request head). hyper's
//! `max_header_size` applies; `max_headers` only when it is not hyper's default, since
//! another value makes hyper allocate the header array per request. HTTP/2 connections wrap
//! the service to count open streams (the idle timeout) and headers.
//!
//! Shutdown (`stop`): no more accepts; connections still being classified or in their
//! handshake are closed; served ones shut down gracefully (HTTP/1.1 after the request in
//! flight, HTTP/2 with GOAWAY); [`serve`] returns once every one has closed.

use axum::extract::ConnectInfo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::{Buf, BytesMut};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::api::error::ApiError;
use crate::connections::{
    Activity, ConnectionLimits, ConnectionPermit, ConnectionSettings, StreamGuard,
    HYPER_MAX_HEADERS,
};
use crate::http1_watch::{watchdog, Expired, Http1Service, Watch, Watched};
use crate::state::AppState;
use crate::tls::Tls;

/// What an upgrade's request line starts with.
const UPGRADE_LINE: &[u8] = b"GET /v1/wire HTTP/1.1\r\n";
/// What every HTTP/2 connection without TLS starts with (prior knowledge, RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Longest request head of an upgrade.
const HEAD_BYTES_MAX: usize = 16 * 1024;

/// What both ports share: the connection limits and the TLS configuration, if any.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub limits: Arc<ConnectionLimits>,
    pub tls: Option<Arc<Tls>>,
}

impl Gate {
    /// A place for a connection from `peer`; `None` (logged) when a limit is reached.
    pub fn admit(&self, peer: SocketAddr, port: &'static str) -> Option<ConnectionPermit> {
        match self.limits.admit(peer.ip()) {
            Ok(permit) => Some(permit),
            Err(refused) => {
                tracing::debug!(%peer, port, limit = refused.as_str(), "connection closed at once: limit reached");
                None
            }
        }
    }
}

/// What a connection turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http1,
    Http2,
    Wire,
    /// Closed before saying.
    Closed,
}

struct Server {
    app: Router,
    state: AppState,
    gate: Gate,
    settings: ConnectionSettings,
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    stop: CancellationToken,
    /// Closed (its receiver dropped) when `stop` is: what served connections wait on, since
    /// it is polled at every wake-up of the connection and costs less than the token's
    /// check (a lock), as `axum::serve` does it.
    stopped: watch::Sender<()>,
}

/// Serves `app` on `listener` until `stop`, then waits for the open connections to close
/// (the caller bounds that by the shutdown grace). Wire upgrades are tracked by
/// `state.wire_connections` instead.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    gate: Gate,
    stop: CancellationToken,
) {
    let settings = *gate.limits.settings();
    // No timer and no `header_read_timeout` of hyper's: `http1_watch` times heads and idle
    // connections without a timer per request.
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.max_header_size(settings.max_header_bytes as usize);
    if settings.max_header_count != HYPER_MAX_HEADERS {
        http1.max_headers(settings.max_header_count as usize);
    }
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(settings.max_header_bytes)
        // WebSockets over HTTP/2 (RFC 8441), as axum::serve enables.
        .enable_connect_protocol();
    let (stopped, stopping) = watch::channel(());
    let server = Arc::new(Server {
        app,
        state,
        gate,
        settings,
        http1,
        http2,
        stop: stop.clone(),
        stopped,
    });
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(permit) = server.gate.admit(peer, "http") else {
                    continue;
                };
                // No Nagle delay: HTTP answers and wire answers are written whole.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                connections.spawn(server.clone().connection(stream, peer, permit));
            }
            Err(error) => {
                // Out of file descriptors and the like: the listener itself stays usable.
                tracing::warn!(%error, "cannot accept an HTTP connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    drop(stopping);
    connections.close();
    connections.wait().await;
}

impl Server {
    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        permit: ConnectionPermit,
    ) {
        let timeout = self.settings.header_read_timeout;
        let Some(tls) = self.gate.tls.clone() else {
            let kind = tokio::select! {
                _ = self.stop.cancelled() => return,
                kind = tokio::time::timeout(timeout, peek_kind(&stream)) => kind,
            };
            match kind {
                Ok(Ok(Kind::Http1)) => self.http1(stream, peer).await,
                Ok(Ok(Kind::Http2)) => self.http2(stream, peer).await,
                Ok(Ok(Kind::Wire)) => self.wire(stream, BytesMut::new(), permit, peer),
                Ok(Ok(Kind::Closed)) | Ok(Err(_)) => {}
                Err(_) => {
                    tracing::debug!(%peer, "no request within header_read_timeout_ms; closed")
                }
            }
            return;
        };
        let handshake = tokio::select! {
            _ = self.stop.cancelled() => return,
            handshake = tokio::time::timeout(timeout, tls.acceptor().accept(stream)) => handshake,
        };
        let mut stream = match handshake {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake not done within header_read_timeout_ms; closed");
                return;
            }
        };
        if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
            return self.http2(stream, peer).await;
        }
        let mut first = BytesMut::with_capacity(1024);
        let kind = tokio::select! {
            _ = self.stop.cancelled() => return,
            kind = tokio::time::timeout(timeout, read_kind(&mut stream, &mut first)) => kind,
        };
        match kind {
            Ok(Ok(Kind::Http1)) => self.http1(Prefixed::new(first, stream), peer).await,
            Ok(Ok(Kind::Http2)) => self.http2(Prefixed::new(first, stream), peer).await,
            Ok(Ok(Kind::Wire)) => self.wire(stream, first, permit, peer),
            Ok(Ok(Kind::Closed)) | Ok(Err(_)) => {}
            Err(_) => tracing::debug!(%peer, "no request within header_read_timeout_ms; closed"),
        }
    }

    async fn http1<I>(&self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let watch = Arc::new(Watch::default());
        let service = Http1Service::new(
            self.app.clone(),
            self.state.clone(),
            watch.clone(),
            ClientAddr(peer),
        );
        let io = TokioIo::new(Watched::new(io, watch.clone()));
        let mut conn = pin!(self.http1.serve_connection(io, service).with_upgrades());
        let (header, idle) = (
            self.settings.header_read_timeout,
            self.settings.idle_timeout,
        );
        let mut expired = pin!(watchdog(&watch, header, idle));
        let mut stopped = pin!(self.stopped.closed());
        let mut stopping = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "HTTP/1.1 connection ended");
                    }
                    return;
                }
                _ = stopped.as_mut(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                expired = expired.as_mut(), if !stopping => match expired {
                    Expired::Header => {
                        tracing::debug!("no whole request head within header_read_timeout_ms; closed");
                        return;
                    }
                    Expired::Idle => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                },
            }
        }
    }

    async fn http2<I>(&self, io: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let service = Http2Service {
            app: self.app.clone(),
            activity: activity.clone(),
            max_header_count: self.settings.max_header_count as usize,
            client: ConnectInfo(ClientAddr(peer)),
        };
        let mut conn = pin!(self.http2.serve_connection(TokioIo::new(io), service));
        let mut idle = pin!(activity.idle_for(self.settings.idle_timeout));
        // After an idle GOAWAY, hyper waits for the client to acknowledge a ping; a client
        // that never does is dropped after `header_read_timeout`.
        let mut dropped = pin!(tokio::time::sleep(Duration::MAX));
        let mut idle_closing = false;
        let mut stopped = pin!(self.stopped.closed());
        let mut stopping = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, "HTTP/2 connection ended");
                    }
                    return;
                }
                _ = stopped.as_mut(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = idle.as_mut(), if !stopping => {
                    tracing::trace!("HTTP/2 connection idle for idle_timeout_ms; closing");
                    stopping = true;
                    idle_closing = true;
                    conn.as_mut().graceful_shutdown();
                    dropped
                        .as_mut()
                        .reset(tokio::time::Instant::now() + self.settings.header_read_timeout);
                }
                _ = dropped.as_mut(), if idle_closing => return,
            }
        }
    }

    /// Answers the upgrade (whose request head begins with `first`, already read, or is
    /// still unread on plain TCP) and serves the wire protocol on its own task, which keeps
    /// the connection's place.
    fn wire<S>(&self, stream: S, first: BytesMut, permit: ConnectionPermit, peer: SocketAddr)
    where
        S: WireStream,
    {
        let (state, stop) = (self.state.clone(), self.stop.clone());
        let timeout = self.settings.header_read_timeout;
        self.state.wire_connections.spawn(async move {
            let _permit = permit;
            if let Err(error) = upgrade(stream, first, timeout, state, stop).await {
                tracing::debug!(%peer, %error, "upgraded wire connection ended");
            }
        });
    }
}

/// A stream the wire protocol can be served on after an upgrade.
pub(crate) trait WireStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Serves the wire protocol on `self`, of which `rest` was read already.
    fn serve_wire(
        self,
        rest: BytesMut,
        state: AppState,
        stop: CancellationToken,
    ) -> impl Future<Output = Result<(), crate::wire::ConnectionError>> + Send;
}

impl WireStream for TcpStream {
    async fn serve_wire(
        self,
        rest: BytesMut,
        state: AppState,
        stop: CancellationToken,
    ) -> Result<(), crate::wire::ConnectionError> {
        // Split into owned halves, without a lock between reader and writer.
        crate::wire::tcp_connection(self, rest, state, stop).await
    }
}

impl WireStream for tokio_rustls::server::TlsStream<TcpStream> {
    async fn serve_wire(
        self,
        rest: BytesMut,
        state: AppState,
        stop: CancellationToken,
    ) -> Result<(), crate::wire::ConnectionError> {
        let peer = self.get_ref().0.peer_addr().ok().map(|a| a.ip());
        crate::wire::stream_connection(self, rest, peer, state, stop).await
    }
}

/// The connection's kind from its first bytes, peeked (nothing is consumed).
async fn peek_kind(stream: &TcpStream) -> std::io::Result<Kind> {
    let mut buf = [0; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(Kind::Closed);
        }
        if let Some(kind) = kind_of(&buf[..n]) {
            return Ok(kind);
        }
        // A request line split across packets: wait for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The connection's kind from its first bytes, read into `first`.
async fn read_kind<S: AsyncRead + Unpin>(
    stream: &mut S,
    first: &mut BytesMut,
) -> std::io::Result<Kind> {
    loop {
        if stream.read_buf(first).await? == 0 {
            return Ok(Kind::Closed);
        }
        if let Some(kind) = kind_of(first) {
            return Ok(kind);
        }
    }
}

/// What bytes that begin a connection say it is; `None`: they begin both a kind and a longer
/// line, more must be read.
fn kind_of(bytes: &[u8]) -> Option<Kind> {
    for (line, kind) in [(UPGRADE_LINE, Kind::Wire), (H2_PREFACE, Kind::Http2)] {
        let n = bytes.len().min(line.len());
        if bytes[..n] == line[..n] {
            return (n == line.len()).then_some(kind);
        }
    }
    Some(Kind::Http1)
}

/// Reads the upgrade's head (after `buf`, read already); answers `101` and serves the wire
/// protocol on the stream, or answers the error `wire::upgrade` would and closes.
async fn upgrade<S: WireStream>(
    mut stream: S,
    mut buf: BytesMut,
    timeout: Duration,
    state: AppState,
    stop: CancellationToken,
) -> Result<(), crate::wire::ConnectionError> {
    let head_len = tokio::time::timeout(timeout, async {
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
    stream.flush().await?;
    stream.serve_wire(buf, state, stop).await
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

/// The address of the client a request came from, in every request's extensions as
/// `ConnectInfo<ClientAddr>` (for the rate limits, the per-caller limits and the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

impl ClientAddr {
    /// The client's IP address, from a request's extensions (absent for requests that did
    /// not come through the listener, e.g. a router served by a test directly).
    pub fn ip_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
        extensions
            .get::<ConnectInfo<ClientAddr>>()
            .map(|info| info.0 .0.ip())
    }
}

/// The router for an HTTP/2 connection: counts its open streams (a stream ends when its
/// response body is done or dropped) and answers 431 to a request with more than
/// `max_header_count` headers (hyper has no such limit for HTTP/2).
#[derive(Clone)]
struct Http2Service {
    app: Router,
    activity: Arc<Activity>,
    max_header_count: usize,
    client: ConnectInfo<ClientAddr>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Http2Service {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(self.client);
        if request.headers().len() > self.max_header_count {
            let response = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.into_response();
            return Box::pin(std::future::ready(Ok(response)));
        }
        let guard = self.activity.begin();
        let app = self.app.clone();
        Box::pin(async move {
            let response = app.oneshot(request.map(Body::new)).await?;
            Ok(response.map(|body| {
                Body::new(GuardedBody {
                    body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// A response body that keeps its stream counted as open until it is done or dropped.
struct GuardedBody {
    body: Body,
    _guard: StreamGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A stream of which `prefix` was read already: reads give `prefix` first, then the stream.
pub(crate) struct Prefixed<S> {
    prefix: BytesMut,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: BytesMut, inner: S) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_the_protocol() {
        assert_eq!(kind_of(b"POST /v1/queues HTTP/1.1\r\n"), Some(Kind::Http1));
        assert_eq!(kind_of(b"G"), None);
        assert_eq!(kind_of(b"GET /v1/wi"), None);
        assert_eq!(kind_of(b"GET /v1/queues"), Some(Kind::Http1));
        assert_eq!(kind_of(UPGRADE_LINE), Some(Kind::Wire));
        assert_eq!(kind_of(b"PRI * HTTP/2"), None);
        assert_eq!(kind_of(b"PUT /v1/queues/q HTTP/1.1"), Some(Kind::Http1));
        assert_eq!(kind_of(H2_PREFACE), Some(Kind::Http2));
    }

    #[tokio::test]
    async fn a_prefixed_stream_reads_its_prefix_first() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.expect("write");
        drop(client);
        let mut stream = Prefixed::new(BytesMut::from(&b"hello"[..]), server);
        let mut all = String::new();
        stream.read_to_string(&mut all).await.expect("read");
        assert_eq!(all, "hello world");
    }
}
