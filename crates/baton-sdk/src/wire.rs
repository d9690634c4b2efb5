//! A client of the framed TCP protocol (docs/wire-protocol.md): send, receive, ack and nack
//! over one persistent connection, with any number of calls in flight on it.
//!
//! Use it where HTTP's per-request cost matters: many small sends pipelined from one
//! producer. Queue management stays on [`crate::Client`] (HTTP). [`WireClient::connect`] takes
//! the server's HTTP address and upgrades a connection to it (`GET /v1/wire`, as WebSocket
//! does), so one port serves both; [`WireClient::connect_dedicated`] reaches a dedicated wire
//! port instead (`wire_listen`, shown in `GET /v1/server`). Against a server with TLS,
//! [`WireClient::connect_tls`] and [`WireClient::connect_dedicated_tls`] do the same over TLS,
//! trusting the CAs (and presenting the client certificate) of a [`WireTls`].
//!
//! How it works: calls write their frames to a writer task (which writes all that are ready in
//! one system call) and wait for the answer with their request id; a reader task hands each
//! answer to its caller. When the connection breaks, every waiting call fails with
//! [`Error::WireClosed`]; the client does not reconnect (open a new one).
//!
//! ```no_run
//! # async fn example() -> Result<(), baton_sdk::Error> {
//! use baton_sdk::proto::{ReceiveRequest, SendMessage};
//!
//! let wire = baton_sdk::wire::WireClient::connect("http://127.0.0.1:9324").await?;
//! let message = SendMessage { body: "hello".to_string(), ..SendMessage::default() };
//! wire.send("orders", vec![message]).await?;
//! let request = ReceiveRequest { max: Some(10), wait_ms: Some(1_000), ..ReceiveRequest::default() };
//! let messages = wire.receive("orders", &request).await?;
//! wire.ack("orders", messages.into_iter().map(|m| m.receipt).collect()).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proto::wire::{self, Op, SendMeta, Status, WireError};
use baton_proto::{
    AckRequest, AckResponse, BatchResponse, NackRequest, ReceiveRequest, ReceivedMessage,
    SendMessage, SendResponse,
};
use bytes::{Buf, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;

use crate::Error;

/// Requests gathered into one write at most.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Read buffer of the connection.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Longest answer frame the client accepts (a receive of many large messages fits).
const ANSWER_BYTES_MAX: u32 = 1 << 30;
/// Longest HTTP answer head, and error body, read while upgrading.
const UPGRADE_ANSWER_BYTES_MAX: usize = 64 * 1024;

type Waiters = Mutex<HashMap<u32, oneshot::Sender<BytesMut>>>;

struct Shared {
    waiters: Waiters,
    /// Set once the reader has stopped; no answer comes after that.
    closed: AtomicBool,
}

/// One wire-protocol connection. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct WireClient {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    next_id: Arc<AtomicU32>,
    request_timeout: Duration,
}

impl std::fmt::Debug for WireClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireClient")
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WireClient {
    /// Connects through a server's HTTP address (`http://127.0.0.1:9324` or `127.0.0.1:9324`,
    /// as given to [`crate::Client`]): upgrades an HTTP/1.1 connection at `GET /v1/wire`, then
    /// checks the handshake. A server that refuses the upgrade answers [`Error::Api`].
    pub async fn connect(http_addr: &str) -> Result<Self, Error> {
        if http_addr.starts_with("https://") {
            return Err(Error::WireUpgrade(format!(
                "{http_addr}: WireClient::connect upgrades plain HTTP, not HTTPS (WireClient::connect_tls does)"
            )));
        }
        let authority = http_authority(http_addr)?;
        let mut stream = TcpStream::connect(authority).await.map_err(Error::WireIo)?;
        stream.set_nodelay(true).map_err(Error::WireIo)?;
        let mut buf = upgrade(&mut stream, authority).await?;
        handshake(&mut stream, &mut buf).await?;
        let (read, write) = stream.into_split();
        Ok(Self::start(read, write, buf))
    }

    /// Connects to a server's dedicated wire port (`wire_listen`, e.g. `127.0.0.1:9325`) and
    /// checks the handshake.
    pub async fn connect_dedicated(addr: impl ToSocketAddrs) -> Result<Self, Error> {
        let mut stream = TcpStream::connect(addr).await.map_err(Error::WireIo)?;
        stream.set_nodelay(true).map_err(Error::WireIo)?;
        let mut buf = BytesMut::new();
        handshake(&mut stream, &mut buf).await?;
        let (read, write) = stream.into_split();
        Ok(Self::start(read, write, buf))
    }

    /// [`WireClient::connect`] over TLS: `https_addr` is the server's HTTPS address
    /// (`https://broker.example:9324` or `broker.example:9324`); its host name is the one the
    /// server's certificate must be for.
    pub async fn connect_tls(https_addr: &str, tls: &WireTls) -> Result<Self, Error> {
        let authority = http_authority(https_addr.strip_prefix("https://").unwrap_or(https_addr))?;
        let mut stream = tls_connect(authority, tls).await?;
        let mut buf = upgrade(&mut stream, authority).await?;
        handshake(&mut stream, &mut buf).await?;
        let (read, write) = tokio::io::split(stream);
        Ok(Self::start(read, write, buf))
    }

    /// [`WireClient::connect_dedicated`] over TLS: `addr` is `host:port` of the dedicated
    /// wire port; its host name is the one the server's certificate must be for.
    pub async fn connect_dedicated_tls(addr: &str, tls: &WireTls) -> Result<Self, Error> {
        let mut stream = tls_connect(addr, tls).await?;
        let mut buf = BytesMut::new();
        handshake(&mut stream, &mut buf).await?;
        let (read, write) = tokio::io::split(stream);
        Ok(Self::start(read, write, buf))
    }

    /// Starts the connection's reader and writer (the handshake done; `buf` read after it).
    fn start<R, W>(read: R, write: W, buf: BytesMut) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            waiters: Mutex::default(),
            closed: AtomicBool::new(false),
        });
        let (outgoing, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_requests(write, pending));
        tokio::spawn(read_answers(read, buf, shared.clone()));
        WireClient {
            outgoing,
            shared,
            next_id: Arc::new(AtomicU32::new(1)),
            request_timeout: crate::Client::REQUEST_TIMEOUT_DEFAULT,
        }
    }

    /// The same connection with another time budget per call (a receive adds its wait).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Authenticates the connection with an API key: every later call on it (and on its
    /// clones) acts as that key, with that key's permissions. Needed once per connection on a
    /// server with keys. A wrong key answers [`Error::Api`] `unauthorized` and leaves the
    /// connection unauthenticated.
    pub async fn authenticate(&self, key: &str) -> Result<wire::AuthAnswer, Error> {
        let id = self.id();
        let mut frame = Vec::with_capacity(16 + key.len());
        let start = wire::begin_frame(&mut frame);
        wire::request_head(&mut frame, Op::Auth, id, "");
        frame.extend_from_slice(key.as_bytes());
        wire::end_frame(&mut frame, start);
        let answer = self.call(id, frame, self.request_timeout).await?;
        json(&answer)
    }

    /// Sends `messages` to `queue`, all or none, as `POST /v1/queues/{q}/messages` does.
    pub async fn send(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
    ) -> Result<SendResponse, Error> {
        let id = self.id();
        let mut frame =
            Vec::with_capacity(64 + messages.iter().map(|m| m.body.len() + 8).sum::<usize>());
        let start = wire::begin_frame(&mut frame);
        wire::request_head(&mut frame, Op::Send, id, queue);
        wire::put_count(&mut frame, messages.len());
        for message in messages {
            let meta = SendMeta {
                attributes: message.attributes,
                group_id: message.group_id,
                dedup_id: message.dedup_id,
                delay_ms: message.delay_ms,
                deliver_at: message.deliver_at,
                notify: message.notify,
            };
            let meta = if meta.is_empty() {
                Vec::new()
            } else {
                serde_json::to_vec(&meta).map_err(Error::WireDecode)?
            };
            wire::put_send_message(&mut frame, &message.body, &meta);
        }
        wire::end_frame(&mut frame, start);
        let answer = self.call(id, frame, self.request_timeout).await?;
        json(&answer)
    }

    /// Leases messages of `queue`, waiting up to `request.wait_ms` for the first.
    pub async fn receive(
        &self,
        queue: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>, Error> {
        let timeout = self
            .request_timeout
            .saturating_add(Duration::from_millis(request.wait_ms.unwrap_or(0)));
        let answer = self.json_call(Op::Receive, queue, request, timeout).await?;
        let items = wire::decode_received(answer_payload(&answer)?)
            .map_err(|error| Error::WireProtocol(error.to_string()))?;
        items
            .into_iter()
            .map(|item| {
                let attributes = if item.attributes.is_empty() {
                    Default::default()
                } else {
                    serde_json::from_slice(item.attributes).map_err(Error::WireDecode)?
                };
                Ok(ReceivedMessage {
                    id: item.id.to_string(),
                    seq: item.seq,
                    body: item.body.to_string(),
                    attributes,
                    receipt: item.receipt.to_string(),
                    receive_count: item.receive_count,
                    sent_at: item.sent_at,
                    first_received_at: item.first_received_at,
                    group_id: item.group_id.map(str::to_string),
                    dedup_id: item.dedup_id.map(str::to_string),
                })
            })
            .collect()
    }

    /// Acks `receipts` of `queue`: one result per receipt, in order (as
    /// [`crate::Client::ack`]).
    pub async fn ack(&self, queue: &str, receipts: Vec<String>) -> Result<BatchResponse, Error> {
        let request = AckRequest {
            receipts,
            reply: None,
            fence: None,
        };
        let AckResponse { results, .. } = self.ack_with(queue, &request).await?;
        Ok(BatchResponse { results })
    }

    /// Acks with every option of the native API (e.g. a `reply`).
    pub async fn ack_with(&self, queue: &str, request: &AckRequest) -> Result<AckResponse, Error> {
        let answer = self
            .json_call(Op::Ack, queue, request, self.request_timeout)
            .await?;
        json(&answer)
    }

    /// Returns messages to `queue` (after `request.delay_ms`).
    pub async fn nack(&self, queue: &str, request: &NackRequest) -> Result<BatchResponse, Error> {
        let answer = self
            .json_call(Op::Nack, queue, request, self.request_timeout)
            .await?;
        json(&answer)
    }

    fn id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn json_call(
        &self,
        op: Op,
        queue: &str,
        request: &impl Serialize,
        timeout: Duration,
    ) -> Result<BytesMut, Error> {
        let id = self.id();
        let mut frame = Vec::new();
        let start = wire::begin_frame(&mut frame);
        wire::request_head(&mut frame, op, id, queue);
        serde_json::to_writer(&mut frame, request).map_err(Error::WireDecode)?;
        wire::end_frame(&mut frame, start);
        self.call(id, frame, timeout).await
    }

    /// Sends one request frame and waits for its answer frame (without the length prefix).
    async fn call(&self, id: u32, frame: Vec<u8>, timeout: Duration) -> Result<BytesMut, Error> {
        let (answer, answered) = oneshot::channel();
        lock(&self.shared.waiters).insert(id, answer);
        // The reader sets `closed` before it drops the waiters, so a call registered after
        // that drop sees it here.
        if self.shared.closed.load(Ordering::SeqCst) || self.outgoing.send(frame).is_err() {
            lock(&self.shared.waiters).remove(&id);
            return Err(Error::WireClosed);
        }
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(Error::WireClosed),
            Err(_) => {
                lock(&self.shared.waiters).remove(&id);
                Err(Error::WireTimeout {
                    millis: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
        }
    }
}

/// Sends the wire protocol's handshake on `stream` and checks the server's (`buf` holds
/// what was read already, and what was read after the handshake when it returns).
async fn handshake<S>(stream: &mut S, buf: &mut BytesMut) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream
        .write_all(&wire::MAGIC)
        .await
        .map_err(Error::WireIo)?;
    stream.flush().await.map_err(Error::WireIo)?;
    while buf.len() < wire::MAGIC.len() {
        if stream.read_buf(buf).await.map_err(Error::WireIo)? == 0 {
            return Err(Error::WireIo(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    if buf[..wire::MAGIC.len()] != wire::MAGIC {
        return Err(Error::WireHandshake);
    }
    buf.advance(wire::MAGIC.len());
    Ok(())
}

/// TLS for [`WireClient::connect_tls`] and [`WireClient::connect_dedicated_tls`]: the CAs
/// the server's certificate must chain to and, for a server that asks for one
/// (`tls_client_ca_file`), a client certificate.
#[derive(Clone)]
pub struct WireTls {
    roots: Arc<rustls::RootCertStore>,
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for WireTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireTls")
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl WireTls {
    /// Trusts the CA certificates in `ca_pem` (PEM), and only those.
    pub fn with_root_ca_pem(ca_pem: &[u8]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(ca_pem)? {
            roots
                .add(cert)
                .map_err(|error| Error::WireTls(format!("a root CA is not usable: {error}")))?;
        }
        let roots = Arc::new(roots);
        let config = tls_builder()?
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        Ok(WireTls {
            roots,
            config: Arc::new(config),
        })
    }

    /// Presents the client certificate chain `cert_pem` with its private key `key_pem` (both
    /// PEM) to a server that requires client certificates.
    pub fn with_client_cert_pem(self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|error| Error::WireTls(format!("the client key: {error}")))?;
        let config = tls_builder()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(certificates(cert_pem)?, key)
            .map_err(|error| Error::WireTls(format!("the client certificate: {error}")))?;
        Ok(WireTls {
            roots: self.roots,
            config: Arc::new(config),
        })
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| Error::WireTls(format!("bad PEM: {error}")))?;
    if certs.is_empty() {
        return Err(Error::WireTls("no PEM certificate given".to_string()));
    }
    Ok(certs)
}

/// A client configuration builder on ring, named rather than the process default (which is
/// ambiguous when a program links more than one provider).
fn tls_builder() -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, Error>
{
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::WireTls(error.to_string()))
}

/// A TLS connection to `authority` (`host:port`), its certificate checked for `host`.
async fn tls_connect(
    authority: &str,
    tls: &WireTls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let host = match authority.rsplit_once(':') {
        Some((host, _port)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|error| Error::WireTls(format!("{host:?} is not a host name: {error}")))?;
    let stream = TcpStream::connect(authority).await.map_err(Error::WireIo)?;
    stream.set_nodelay(true).map_err(Error::WireIo)?;
    TlsConnector::from(tls.config.clone())
        .connect(name, stream)
        .await
        .map_err(Error::WireIo)
}

/// `host:port` of an HTTP address given as a URL or bare.
fn http_authority(http_addr: &str) -> Result<&str, Error> {
    let rest = http_addr.strip_prefix("http://").unwrap_or(http_addr);
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(Error::WireUpgrade(format!(
            "{http_addr:?} is not an HTTP address like http://127.0.0.1:9324"
        )));
    }
    Ok(authority)
}

/// Asks for the upgrade to the wire protocol and reads the answer's head; returns what was
/// read after it. Anything but `101 Switching Protocols` is an error: the server's error body
/// as [`Error::Api`] when it has one.
async fn upgrade<S>(stream: &mut S, authority: &str) -> Result<BytesMut, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: {}\r\n\r\n",
        wire::UPGRADE_PATH,
        wire::UPGRADE_PROTOCOL
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Error::WireIo)?;
    stream.flush().await.map_err(Error::WireIo)?;
    let mut buf = BytesMut::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > UPGRADE_ANSWER_BYTES_MAX
            || stream.read_buf(&mut buf).await.map_err(Error::WireIo)? == 0
        {
            return Err(Error::WireUpgrade(
                "the server gave no HTTP answer".to_string(),
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let status_line = head.lines().next().unwrap_or_default().to_string();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    if status == 101 {
        buf.advance(head_len);
        return Ok(buf);
    }
    let body_len = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(UPGRADE_ANSWER_BYTES_MAX);
    while buf.len() < head_len + body_len {
        if stream.read_buf(&mut buf).await.map_err(Error::WireIo)? == 0 {
            break;
        }
    }
    match serde_json::from_slice::<baton_proto::ErrorBody>(&buf[head_len..]) {
        Ok(body) => Err(Error::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        }),
        Err(_) => Err(Error::WireUpgrade(format!(
            "the server answered {status_line:?}"
        ))),
    }
}

fn lock(waiters: &Waiters) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<BytesMut>>> {
    // A panic while holding this lock cannot leave the map inconsistent.
    waiters
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The payload of an ok answer; an error answer becomes [`Error::Api`].
fn answer_payload(answer: &[u8]) -> Result<&[u8], Error> {
    let response =
        wire::decode_response(answer).map_err(|error| Error::WireProtocol(error.to_string()))?;
    match response.status {
        Status::Ok => Ok(response.payload),
        Status::Error => {
            let error: WireError =
                serde_json::from_slice(response.payload).map_err(Error::WireDecode)?;
            Err(Error::Api {
                status: error.status,
                code: error.error.code,
                message: error.error.message,
            })
        }
    }
}

fn json<T: DeserializeOwned>(answer: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(answer_payload(answer)?).map_err(Error::WireDecode)
}

async fn write_requests<W: AsyncWrite + Unpin>(
    mut write: W,
    mut pending: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH_BYTES);
    while let Some(first) = pending.recv().await {
        let Ok(second) = pending.try_recv() else {
            // A lone request (a send of 100 KiB, say) goes out as it is, uncopied. (The flush
            // is TLS's: it keeps records the full socket did not take; on TCP a no-op.)
            if write.write_all(&first).await.is_err() || write.flush().await.is_err() {
                return;
            }
            continue;
        };
        batch.clear();
        batch.extend_from_slice(&first);
        batch.extend_from_slice(&second);
        while batch.len() < WRITE_BATCH_BYTES {
            match pending.try_recv() {
                Ok(next) => batch.extend_from_slice(&next),
                Err(_) => break,
            }
        }
        if write.write_all(&batch).await.is_err() || write.flush().await.is_err() {
            // The reader sees the broken connection too and fails every waiting call.
            return;
        }
    }
}

async fn read_answers<R: AsyncRead + Unpin>(read: R, mut buf: BytesMut, shared: Arc<Shared>) {
    // Answers are cut out of one growing buffer, so a large one is neither zeroed first nor
    // copied out of a reader's buffer.
    let mut read = read;
    buf.reserve(READ_BUFFER_BYTES);
    'connection: loop {
        while let Some(head) = buf.get(..wire::LENGTH_BYTES) {
            let len = u32::from_le_bytes(head.try_into().unwrap_or_default());
            if !(wire::RESPONSE_HEAD_BYTES as u32..=ANSWER_BYTES_MAX).contains(&len) {
                break 'connection;
            }
            let whole = wire::LENGTH_BYTES + len as usize;
            if buf.len() < whole {
                buf.reserve(whole - buf.len());
                break;
            }
            buf.advance(wire::LENGTH_BYTES);
            let frame = buf.split_to(len as usize);
            let Ok(response) = wire::decode_response(&frame) else {
                break 'connection;
            };
            let waiter = lock(&shared.waiters).remove(&response.id);
            if let Some(waiter) = waiter {
                // The caller may have timed out meanwhile; then nobody wants the answer.
                let _ = waiter.send(frame);
            }
        }
        if buf.capacity() - buf.len() < READ_BUFFER_BYTES / 4 {
            buf.reserve(READ_BUFFER_BYTES);
        }
        match read.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.closed.store(true, Ordering::SeqCst);
    lock(&shared.waiters).clear();
}
