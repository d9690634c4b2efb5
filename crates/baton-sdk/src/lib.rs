//! # baton-sdk
//!
//! An async Rust client for Baton's native HTTP API (`/v1/...`, `/health`, `/ready`), built on
//! `reqwest`. Requests and responses are the types of `baton-proto`, re-exported here as
//! [`proto`], so the client and the server cannot disagree about a shape.
//!
//! What it is not: it depends on no server crate, keeps no connection state beyond `reqwest`'s
//! pool, and does not retry. A failed call returns an [`Error`]; whether to try again is the
//! caller's decision (an [`Error::Api`] with `queue_full` or `too_many_waiters` is worth a
//! retry after a pause, `queue_not_found` is not). It speaks HTTP and HTTPS (rustls, verified
//! against the system's root certificates). Streams are covered by the methods in [`streams`]
//! and [`stream_live`]; topics, subscriptions, live topic subscriptions and request/response,
//! push subscriptions and failed callbacks by further methods of [`Client`], locks and the
//! self-renewing [`locks::LockGuard`] by [`locks`], schedules by [`schedules`]; the SQS facade is not. [`wire`] is a client of the framed TCP protocol for send, receive, ack and nack,
//! for many small calls on one connection.
//!
//! A server with API keys needs one on every request: [`Client::with_key`] sends it as
//! `Authorization: Bearer <key>`; [`Client::create_key`] and the other key methods manage them.
//! A [`wire`] connection authenticates once with [`wire::WireClient::authenticate`].
//!
//! Limits: every request has a time budget ([`Client::REQUEST_TIMEOUT_DEFAULT`], changeable
//! with [`Client::with_request_timeout`]). A long-poll receive gets that budget plus its
//! `wait_ms`, so the server can hold it open for the whole wait; there is deliberately no short
//! timeout on the underlying `reqwest::Client`.
//!
//! ```no_run
//! # async fn example() -> Result<(), baton_sdk::Error> {
//! use baton_sdk::proto::{CreateQueue, ReceiveRequest, SendMessage};
//!
//! let client = baton_sdk::Client::new("http://127.0.0.1:9324");
//! client.create_queue("orders", &CreateQueue::default()).await?;
//! let message = SendMessage { body: "hello".to_string(), ..SendMessage::default() };
//! client.send("orders", vec![message]).await?;
//! let request = ReceiveRequest { max: Some(10), wait_ms: Some(5_000), ..ReceiveRequest::default() };
//! let messages = client.receive("orders", &request).await?;
//! let receipts = messages.into_iter().map(|m| m.receipt).collect();
//! client.ack("orders", receipts).await?;
//! # Ok(())
//! # }
//! ```

mod keys;
mod push;
mod sinks;
mod topics;

pub use topics::{LiveEvent, LiveStream};

use std::time::Duration;

use baton_proto::{
    AckRequest, BatchResponse, CreateQueue, ErrorBody, ErrorCode, Health, MessageStatus,
    NackRequest, PurgeResponse, QueueInfo, QueueList, Readiness, ReceiveRequest, ReceiveResponse,
    ReceivedMessage, RedriveRequest, RedriveResponse, SendMessage, SendRequest, SendResponse,
    ServerInfo, UpdateQueue, VisibilityRequest,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire types, so users need not depend on `baton-proto` themselves.
pub use baton_proto as proto;

pub mod locks;
pub mod schedules;
pub mod stream_live;
pub mod streams;
pub mod wire;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error body `{"error": {"code", "message"}}`.
    #[error("{}: {message}", code_name(*code))]
    Api {
        /// The HTTP status, e.g. 404.
        status: u16,
        /// The stable error code, e.g. [`ErrorCode::QueueNotFound`].
        code: ErrorCode,
        /// A human-readable explanation; not stable, do not match on it.
        message: String,
    },
    /// The request did not complete: connection refused, timeout, bad URL, broken connection.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The server answered 2xx, but the body is not the JSON this client expects.
    #[error("cannot decode the response to {method} {url} (HTTP {status})")]
    Decode {
        method: Method,
        url: String,
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// The server answered with an error status but without Baton's error body, e.g. a proxy
    /// in between, or another program listening at that address.
    #[error("unexpected HTTP {status} from {method} {url}: {body}")]
    UnexpectedResponse {
        method: Method,
        url: String,
        status: u16,
        /// The start of the body, at most [`Client::ERROR_BODY_CHARS_MAX`] characters.
        body: String,
    },
    /// The wire protocol's connection could not be made or broke ([`wire`]).
    #[error("wire connection failed: {0}")]
    WireIo(#[source] std::io::Error),
    /// What answered at the wire address did not speak the wire protocol.
    #[error("the server did not answer the wire protocol's handshake")]
    WireHandshake,
    /// The wire connection closed before the call was answered.
    #[error("the wire connection is closed")]
    WireClosed,
    /// No answer on the wire connection within the call's time budget.
    #[error("no answer on the wire connection within {millis} ms")]
    WireTimeout { millis: u64 },
    /// An answer frame that is not what the protocol says.
    #[error("malformed wire answer: {0}")]
    WireProtocol(String),
    /// The HTTP address cannot be upgraded to the wire protocol (not plain HTTP, or no `101`).
    #[error("cannot upgrade to the wire protocol: {0}")]
    WireUpgrade(String),
    /// TLS settings for a wire connection that cannot be used (bad PEM, no certificate).
    #[error("unusable TLS settings: {0}")]
    WireTls(String),
    /// A wire answer (or request option) that is not the JSON this client expects.
    #[error("cannot encode or decode wire JSON")]
    WireDecode(#[source] serde_json::Error),
}

impl Error {
    /// The API error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when no connection to the server could be made at all.
    pub fn is_connect(&self) -> bool {
        match self {
            Error::Http(error) => error.is_connect(),
            Error::WireIo(error) => error.kind() == std::io::ErrorKind::ConnectionRefused,
            _ => false,
        }
    }
}

/// The wire name of an error code, e.g. `queue_not_found`.
pub fn code_name(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(name)) => name,
        // `ErrorCode` is a plain enum of unit variants, so serde always yields a string.
        _ => format!("{code:?}"),
    }
}

/// A handle to one Baton server. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Without a trailing `/`, e.g. `http://127.0.0.1:9324`.
    base_url: String,
    request_timeout: Duration,
    /// Sent as `Authorization: Bearer <key>` on every request ([`Client::with_key`]).
    key: Option<reqwest::header::HeaderValue>,
}

impl Client {
    /// Time budget of one request that does not long-poll.
    pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
    /// Time budget to establish a TCP connection.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The longest `wait_ms` the server accepts; the budget of a receive whose `wait_ms` is
    /// left to the queue's default.
    pub const RECEIVE_WAIT_MS_MAX: u64 = 20_000;
    /// How much of an unexpected error body [`Error::UnexpectedResponse`] keeps.
    pub const ERROR_BODY_CHARS_MAX: usize = 512;

    /// A client for the server at `base_url`, e.g. `http://127.0.0.1:9324`. A bad URL is
    /// reported by the first call, as [`Error::Http`].
    pub fn new(base_url: impl Into<String>) -> Self {
        // No overall timeout on the `reqwest::Client`: long polls need more than ordinary
        // calls, so every request sets its own.
        let http = reqwest::Client::builder()
            .connect_timeout(Self::CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self::with_http_client(base_url, http)
    }

    /// A client that sends through `http`, e.g. one with custom headers or a proxy. Do not
    /// give it an overall timeout shorter than the longest long poll.
    pub fn with_http_client(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        let base_url = base_url.into().trim_end_matches('/').to_string();
        Client {
            http,
            base_url,
            request_timeout: Self::REQUEST_TIMEOUT_DEFAULT,
            key: None,
        }
    }

    /// Sends `key` (an API key, `bk_...`) as `Authorization: Bearer <key>` on every request;
    /// a server with keys answers `unauthorized` (401) without one. A key that cannot be a
    /// header value (control characters) is not sent, and the server answers 401.
    pub fn with_key(mut self, key: impl AsRef<str>) -> Self {
        self.key = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.as_ref()))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        self
    }

    /// A request to `url` with this client's key, if it has one.
    fn http_request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.key {
            Some(key) => request.header(reqwest::header::AUTHORIZATION, key.clone()),
            None => request,
        }
    }

    /// Sets the time budget of each request; a receive gets this plus its `wait_ms`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The base URL without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `PUT /v1/queues/{name}`: creates a queue. Idempotent when the attributes match;
    /// `queue_exists` (409) when they conflict.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &CreateQueue,
    ) -> Result<QueueInfo, Error> {
        let url = self.queue_url(name, &[]);
        self.json(Method::PUT, url, Some(attributes), self.request_timeout)
            .await
    }

    /// `PATCH /v1/queues/{name}`: changes the given attributes only.
    pub async fn update_queue(
        &self,
        name: &str,
        changes: &UpdateQueue,
    ) -> Result<QueueInfo, Error> {
        let url = self.queue_url(name, &[]);
        self.json(Method::PATCH, url, Some(changes), self.request_timeout)
            .await
    }

    /// `GET /v1/queues/{name}`: attributes and statistics.
    pub async fn get_queue(&self, name: &str) -> Result<QueueInfo, Error> {
        let url = self.queue_url(name, &[]);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /v1/queues`: every queue with its statistics.
    pub async fn list_queues(&self) -> Result<Vec<QueueInfo>, Error> {
        let url = format!("{}/v1/queues", self.base_url);
        let list: QueueList = self
            .json(Method::GET, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(list.queues)
    }

    /// `DELETE /v1/queues/{name}`: deletes the queue and its messages.
    pub async fn delete_queue(&self, name: &str) -> Result<(), Error> {
        let url = self.queue_url(name, &[]);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `POST /v1/queues/{name}/purge`: deletes every message; returns how many.
    pub async fn purge_queue(&self, name: &str) -> Result<u64, Error> {
        let url = self.queue_url(name, &["purge"]);
        let response: PurgeResponse = self
            .json(Method::POST, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(response.purged)
    }

    /// `POST /v1/queues/{name}/messages`: sends a batch; answers once the batch is durable,
    /// with one entry per message in request order.
    pub async fn send(
        &self,
        name: &str,
        messages: Vec<SendMessage>,
    ) -> Result<SendResponse, Error> {
        let url = self.queue_url(name, &["messages"]);
        let request = SendRequest {
            messages,
            fence: None,
        };
        self.json(Method::POST, url, Some(&request), self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{name}/receive`: leases up to `max` messages, waiting up to `wait_ms`
    /// for the first one. An empty vector means none arrived in time.
    pub async fn receive(
        &self,
        name: &str,
        request: &ReceiveRequest,
    ) -> Result<Vec<ReceivedMessage>, Error> {
        let url = self.queue_url(name, &["receive"]);
        let wait_ms = request.wait_ms.unwrap_or(Self::RECEIVE_WAIT_MS_MAX);
        let timeout = self
            .request_timeout
            .saturating_add(Duration::from_millis(wait_ms));
        let response: ReceiveResponse =
            self.json(Method::POST, url, Some(request), timeout).await?;
        Ok(response.messages)
    }

    /// `POST /v1/queues/{name}/ack`: deletes the leased messages. One result per receipt, in
    /// order; an unknown or stale receipt is a per-item error, not an `Err`.
    pub async fn ack(&self, name: &str, receipts: Vec<String>) -> Result<BatchResponse, Error> {
        let url = self.queue_url(name, &["ack"]);
        let request = AckRequest {
            receipts,
            reply: None,
            fence: None,
        };
        self.json(Method::POST, url, Some(&request), self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{name}/nack`: makes the leased messages visible again, after
    /// `delay_ms` or the queue's retry backoff. One result per receipt, in order.
    pub async fn nack(
        &self,
        name: &str,
        receipts: Vec<String>,
        delay_ms: Option<u64>,
    ) -> Result<BatchResponse, Error> {
        let url = self.queue_url(name, &["nack"]);
        let request = NackRequest {
            receipts,
            delay_ms,
            fence: None,
        };
        self.json(Method::POST, url, Some(&request), self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{name}/visibility`: sets the lease of `receipt` to end `timeout_ms`
    /// from now; 0 releases it.
    pub async fn change_visibility(
        &self,
        name: &str,
        receipt: &str,
        timeout_ms: u64,
    ) -> Result<(), Error> {
        let url = self.queue_url(name, &["visibility"]);
        let request = VisibilityRequest {
            receipt: receipt.to_string(),
            timeout_ms,
        };
        self.execute(Method::POST, url, Some(&request), self.request_timeout)
            .await?;
        Ok(())
    }

    /// `GET /v1/queues/{name}/messages/{id}`: a message's status and history.
    pub async fn message_status(&self, name: &str, id: &str) -> Result<MessageStatus, Error> {
        let url = self.queue_url(name, &["messages", id]);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{name}/redrive`: moves dead-lettered messages of the dead-letter queue
    /// `name` back to their source queue (or `request.to`); returns how many moved.
    pub async fn redrive(&self, name: &str, request: &RedriveRequest) -> Result<u64, Error> {
        let url = self.queue_url(name, &["redrive"]);
        let response: RedriveResponse = self
            .json(Method::POST, url, Some(request), self.request_timeout)
            .await?;
        Ok(response.moved)
    }

    /// `GET /v1/server`: node id, version, uptime, engine, data directory.
    pub async fn server_info(&self) -> Result<ServerInfo, Error> {
        let url = format!("{}/v1/server", self.base_url);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /health`: liveness.
    pub async fn health(&self) -> Result<Health, Error> {
        let url = format!("{}/health", self.base_url);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /ready`: readiness. A server that is up but not ready (503) answers
    /// `Ok(Readiness { ready: false })` when it says so in the body.
    pub async fn ready(&self) -> Result<Readiness, Error> {
        let url = format!("{}/ready", self.base_url);
        let response = self
            .http_request(Method::GET, &url)
            .timeout(self.request_timeout)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            if let Ok(readiness) = serde_json::from_slice::<Readiness>(&bytes) {
                return Ok(readiness);
            }
        }
        let bytes = check_status(&Method::GET, &url, status, bytes)?;
        decode(&Method::GET, &url, status, &bytes)
    }

    /// `{base}/v1/queues/{name}/{suffix...}` with every segment percent-encoded.
    fn queue_url(&self, name: &str, suffix: &[&str]) -> String {
        let mut url = format!("{}/v1/queues/{}", self.base_url, encode_segment(name));
        for segment in suffix {
            url.push('/');
            url.push_str(&encode_segment(segment));
        }
        url
    }

    /// Sends a request and decodes a 2xx JSON answer as `T`.
    async fn json<B, T>(
        &self,
        method: Method,
        url: String,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, Error>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        let (status, bytes) = self
            .execute(method.clone(), url.clone(), body, timeout)
            .await?;
        decode(&method, &url, status, &bytes)
    }

    /// Sends a request; a non-2xx answer becomes an error, a 2xx answer's body is returned
    /// undecoded.
    async fn execute<B>(
        &self,
        method: Method,
        url: String,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<(StatusCode, Vec<u8>), Error>
    where
        B: Serialize + ?Sized,
    {
        let mut request = self.http_request(method.clone(), &url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let bytes = check_status(&method, &url, status, bytes)?;
        Ok((status, bytes))
    }
}

/// Turns a non-2xx answer into [`Error::Api`] or [`Error::UnexpectedResponse`].
fn check_status(
    method: &Method,
    url: &str,
    status: StatusCode,
    bytes: impl AsRef<[u8]>,
) -> Result<Vec<u8>, Error> {
    let bytes = bytes.as_ref();
    if status.is_success() {
        return Ok(bytes.to_vec());
    }
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
        return Err(Error::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
        });
    }
    let text = String::from_utf8_lossy(bytes);
    Err(Error::UnexpectedResponse {
        method: method.clone(),
        url: url.to_string(),
        status: status.as_u16(),
        body: text.chars().take(Client::ERROR_BODY_CHARS_MAX).collect(),
    })
}

fn decode<T: DeserializeOwned>(
    method: &Method,
    url: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Decode {
        method: method.clone(),
        url: url.to_string(),
        status: status.as_u16(),
        source,
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a name or id can never
/// change the path (`/`, `?`, `#`, `..`).
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    // `.` and `..` alone are dot-segments that URL normalisation would remove.
    match encoded.as_str() {
        "." => "%2E".to_string(),
        ".." => "%2E%2E".to_string(),
        _ => encoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("orders.fifo"), "orders.fifo");
        assert_eq!(encode_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn queue_urls_join_without_double_slashes() {
        let client = Client::new("http://127.0.0.1:9324/");
        assert_eq!(client.base_url(), "http://127.0.0.1:9324");
        assert_eq!(
            client.queue_url("q", &["messages", "m-1"]),
            "http://127.0.0.1:9324/v1/queues/q/messages/m-1"
        );
    }

    #[test]
    fn api_errors_display_code_and_message() {
        let error = Error::Api {
            status: 404,
            code: ErrorCode::QueueNotFound,
            message: "no queue x".to_string(),
        };
        assert_eq!(error.to_string(), "queue_not_found: no queue x");
        assert_eq!(error.code(), Some(ErrorCode::QueueNotFound));
    }

    #[test]
    fn error_bodies_become_api_errors() {
        let body = br#"{"error":{"code":"queue_full","message":"max_depth 10 reached"}}"#;
        let result = check_status(
            &Method::POST,
            "http://x/v1/queues/q/messages",
            StatusCode::TOO_MANY_REQUESTS,
            body,
        );
        assert!(matches!(
            result,
            Err(Error::Api {
                status: 429,
                code: ErrorCode::QueueFull,
                ..
            })
        ));
        let result = check_status(
            &Method::GET,
            "http://x/",
            StatusCode::BAD_GATEWAY,
            b"<html>",
        );
        assert!(matches!(
            result,
            Err(Error::UnexpectedResponse { status: 502, .. })
        ));
    }
}
