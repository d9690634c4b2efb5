//! The three calls a workload makes (send a batch, receive, ack), over the native API, the
//! Amazon SQS JSON 1.0 protocol or the framed TCP protocol (`--api wire`). Every producer and
//! consumer works through its own [`Target::session`]: its own HTTP client (so its own
//! connections) or its own wire connection, as each peer's session has its own connection.

use std::sync::Arc;
use std::time::Duration;

use baton_sdk::proto::{ReceiveRequest, SendMessage};
use serde_json::{json, Value};

use baton_sdk::wire::WireClient;

use crate::{Api, BenchError};

/// Time budget of one call that does not long-poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The SQS account id in Baton's queue URLs.
const SQS_ACCOUNT_ID: &str = "000000000000";

/// One received message: its body and the receipt that acks it.
pub struct Received {
    pub body: String,
    pub receipt: String,
}

/// A queue on a Baton server, reached through one of its APIs.
#[derive(Clone)]
pub struct Target {
    api: Api,
    sdk: baton_sdk::Client,
    http: reqwest::Client,
    http2: bool,
    key: Option<String>,
    base_url: String,
    queue: String,
    /// A dedicated wire port for `Api::Wire`; `None` upgrades connections to `base_url`.
    wire_addr: Option<String>,
    /// This session's wire connection (`Api::Wire`, after [`Target::session`]).
    wire: Option<WireClient>,
    /// `Api::Sqs`: the credentials every request is signed with, if any.
    sqs_credentials: Option<aws_credential_types::Credentials>,
    /// CA certificates (PEM) trusted besides the system's, for an `https://` base URL.
    ca_pem: Option<Arc<Vec<u8>>>,
}

/// An HTTP client with its own connection pool, sending `key` (if any) as the bearer token
/// of every call and trusting the CAs of `ca_pem` besides the system's. No overall timeout:
/// each call sets its own.
pub fn http_client(
    http2: bool,
    key: Option<&str>,
    ca_pem: Option<&[u8]>,
) -> Result<reqwest::Client, BenchError> {
    let mut http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(
            usize::try_from(crate::SENDERS_MAX + crate::WORKERS_MAX).unwrap_or(usize::MAX),
        );
    if http2 {
        http = http.http2_prior_knowledge();
    }
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            http = http.add_root_certificate(cert);
        }
    }
    if let Some(key) = key {
        let mut bearer =
            reqwest::header::HeaderValue::try_from(format!("Bearer {key}")).map_err(|_| {
                BenchError::InvalidConfig("the API key must be printable ASCII".to_string())
            })?;
        bearer.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        http = http.default_headers(headers);
    }
    Ok(http.build()?)
}

impl Target {
    /// The queue `queue` of the server at `base_url`; `Api::Wire` upgrades connections to it.
    pub async fn new(
        api: Api,
        http: reqwest::Client,
        http2: bool,
        key: Option<String>,
        base_url: &str,
        queue: &str,
    ) -> Result<Self, BenchError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let sdk = baton_sdk::Client::with_http_client(base_url.clone(), http.clone())
            .with_request_timeout(REQUEST_TIMEOUT);
        Ok(Target {
            api,
            sdk,
            http,
            http2,
            key,
            base_url,
            queue: queue.to_string(),
            wire_addr: None,
            wire: None,
            sqs_credentials: None,
            ca_pem: None,
        })
    }

    /// The same target, reaching the wire protocol at the dedicated port `wire_addr` (if
    /// given) instead of upgrading HTTP connections.
    pub fn with_wire_addr(self, wire_addr: Option<String>) -> Self {
        Target { wire_addr, ..self }
    }

    /// The same target, trusting the CAs of `ca_pem` (PEM) for an `https://` base URL.
    pub fn with_ca_pem(self, ca_pem: Option<Vec<u8>>) -> Self {
        Target {
            ca_pem: ca_pem.map(Arc::new),
            ..self
        }
    }

    /// The same target, signing every SQS request with these credentials.
    pub fn with_sqs_credentials(self, credentials: Option<crate::SqsCredentials>) -> Self {
        let sqs_credentials = credentials.map(|c| {
            aws_credential_types::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                None,
                None,
                "baton-bench",
            )
        });
        Target {
            sqs_credentials,
            ..self
        }
    }

    /// The SigV4 headers of an SQS request (`authorization`, `x-amz-date`), signed as an AWS
    /// SDK signs one.
    fn sign_sqs(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, BenchError> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let Some(credentials) = &self.sqs_credentials else {
            return Ok(Vec::new());
        };
        let identity = credentials.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("sqs")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| BenchError::InvalidConfig(format!("cannot sign SQS requests: {e}")))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| BenchError::InvalidConfig(format!("cannot sign an SQS request: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| BenchError::InvalidConfig(format!("cannot sign an SQS request: {e}")))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect())
    }

    /// A wire connection: to the dedicated port if given, else upgraded from the base URL;
    /// over TLS (trusting only `ca_pem`) when the base URL is `https://`.
    async fn connect_wire(&self) -> Result<WireClient, BenchError> {
        if !self.base_url.starts_with("https://") {
            return Ok(match &self.wire_addr {
                Some(addr) => WireClient::connect_dedicated(addr.as_str()).await?,
                None => WireClient::connect(&self.base_url).await?,
            });
        }
        let Some(ca_pem) = &self.ca_pem else {
            return Err(BenchError::InvalidConfig(
                "the wire protocol over TLS needs the CA that signed the server's certificate (--cacert)".to_string(),
            ));
        };
        let tls = baton_sdk::wire::WireTls::with_root_ca_pem(ca_pem)?;
        Ok(match &self.wire_addr {
            Some(addr) => WireClient::connect_dedicated_tls(addr, &tls).await?,
            None => WireClient::connect_tls(&self.base_url, &tls).await?,
        })
    }

    /// The same queue through connections of its own: one producer's or consumer's session.
    pub async fn session(&self) -> Result<Self, BenchError> {
        let http = http_client(
            self.http2,
            self.key.as_deref(),
            self.ca_pem.as_deref().map(Vec::as_slice),
        )?;
        let sdk = baton_sdk::Client::with_http_client(self.base_url.clone(), http.clone())
            .with_request_timeout(REQUEST_TIMEOUT);
        let wire = match self.api {
            Api::Wire => Some(self.connect_wire().await?),
            _ => None,
        }
        .map(|wire| wire.with_request_timeout(REQUEST_TIMEOUT));
        // On a server with keys, the wire connection acts as the bench's key.
        if let (Some(wire), Some(key)) = (&wire, &self.key) {
            wire.authenticate(key).await?;
        }
        Ok(Target {
            sdk,
            http,
            wire,
            ..self.clone()
        })
    }

    /// The same queue over another API.
    pub fn with_api(&self, api: Api) -> Self {
        Target {
            api,
            ..self.clone()
        }
    }

    /// The native client, for creating, filling and deleting the queue.
    pub fn sdk(&self) -> &baton_sdk::Client {
        &self.sdk
    }

    /// Sends `bodies` as one batch; returns how many the broker accepted.
    pub async fn send(&self, bodies: Vec<String>) -> Result<u64, BenchError> {
        match self.api {
            Api::Native | Api::Wire => {
                let messages = bodies
                    .into_iter()
                    .map(|body| SendMessage {
                        body,
                        ..SendMessage::default()
                    })
                    .collect();
                let response = match self.wire()? {
                    Some(wire) => wire.send(&self.queue, messages).await?,
                    None => self.sdk.send(&self.queue, messages).await?,
                };
                Ok(response.messages.len() as u64)
            }
            Api::Sqs => {
                let entries: Vec<Value> = bodies
                    .into_iter()
                    .enumerate()
                    .map(|(idx, body)| json!({"Id": idx.to_string(), "MessageBody": body}))
                    .collect();
                let answer = self
                    .sqs(
                        "SendMessageBatch",
                        json!({"QueueUrl": self.sqs_queue_url(), "Entries": entries}),
                        Duration::ZERO,
                    )
                    .await?;
                Ok(array_len(&answer, "Successful"))
            }
        }
    }

    /// Leases up to `max` messages, waiting up to `wait_ms` for the first.
    pub async fn receive(&self, max: u32, wait_ms: u64) -> Result<Vec<Received>, BenchError> {
        match self.api {
            Api::Native | Api::Wire => {
                let request = ReceiveRequest {
                    max: Some(max),
                    wait_ms: Some(wait_ms),
                    visibility_timeout_ms: None,
                };
                let messages = match self.wire()? {
                    Some(wire) => wire.receive(&self.queue, &request).await?,
                    None => self.sdk.receive(&self.queue, &request).await?,
                };
                Ok(messages
                    .into_iter()
                    .map(|message| Received {
                        body: message.body,
                        receipt: message.receipt,
                    })
                    .collect())
            }
            Api::Sqs => {
                // SQS waits in whole seconds; round a short wait up rather than to no wait.
                let wait_s = wait_ms.div_ceil(1000);
                let answer = self
                    .sqs(
                        "ReceiveMessage",
                        json!({"QueueUrl": self.sqs_queue_url(), "MaxNumberOfMessages": max,
                               "WaitTimeSeconds": wait_s}),
                        Duration::from_secs(wait_s),
                    )
                    .await?;
                let messages = answer
                    .get("Messages")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                Ok(messages
                    .iter()
                    .filter_map(|message| {
                        Some(Received {
                            body: message.get("Body")?.as_str()?.to_string(),
                            receipt: message.get("ReceiptHandle")?.as_str()?.to_string(),
                        })
                    })
                    .collect())
            }
        }
    }

    /// Acks `receipts`; returns how many were acked (the rest failed per item).
    pub async fn ack(&self, receipts: Vec<String>) -> Result<u64, BenchError> {
        match self.api {
            Api::Native | Api::Wire => {
                let response = match self.wire()? {
                    Some(wire) => wire.ack(&self.queue, receipts).await?,
                    None => self.sdk.ack(&self.queue, receipts).await?,
                };
                Ok(response.results.iter().filter(|item| item.is_ok()).count() as u64)
            }
            Api::Sqs => {
                let entries: Vec<Value> = receipts
                    .into_iter()
                    .enumerate()
                    .map(|(idx, receipt)| json!({"Id": idx.to_string(), "ReceiptHandle": receipt}))
                    .collect();
                let answer = self
                    .sqs(
                        "DeleteMessageBatch",
                        json!({"QueueUrl": self.sqs_queue_url(), "Entries": entries}),
                        Duration::ZERO,
                    )
                    .await?;
                Ok(array_len(&answer, "Successful"))
            }
        }
    }

    /// The wire connection for `Api::Wire`; `None` for the HTTP apis. An error for a target
    /// that was never made a session (a bug of the caller, not of the broker).
    fn wire(&self) -> Result<Option<&WireClient>, BenchError> {
        match (self.api, &self.wire) {
            (Api::Wire, Some(wire)) => Ok(Some(wire)),
            (Api::Wire, None) => Err(BenchError::InvalidConfig(
                "--api wire needs a session of its own".to_string(),
            )),
            _ => Ok(None),
        }
    }

    fn sqs_queue_url(&self) -> String {
        format!("{}/{SQS_ACCOUNT_ID}/{}", self.base_url, self.queue)
    }

    /// One SQS JSON 1.0 call: `POST /` with `X-Amz-Target: AmazonSQS.<action>`.
    async fn sqs(&self, action: &str, params: Value, wait: Duration) -> Result<Value, BenchError> {
        let url = format!("{}/", self.base_url);
        let target = format!("AmazonSQS.{action}");
        let body = params.to_string();
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default()
            .to_string();
        let content_type = "application/x-amz-json-1.0";
        let signed = self.sign_sqs(
            &url,
            &[
                ("host", &host),
                ("x-amz-target", &target),
                ("content-type", content_type),
            ],
            body.as_bytes(),
        )?;
        let mut request = self
            .http
            .post(&url)
            .header("X-Amz-Target", target)
            .header("Content-Type", content_type)
            .timeout(REQUEST_TIMEOUT.saturating_add(wait));
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let response = request.body(body).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(BenchError::Sqs {
                action: action.to_string(),
                status: status.as_u16(),
                body: text.chars().take(ERROR_BODY_CHARS_MAX).collect(),
            });
        }
        serde_json::from_slice(&body).map_err(|source| BenchError::SqsAnswer {
            action: action.to_string(),
            source,
        })
    }
}

/// How much of an SQS error body an error keeps.
const ERROR_BODY_CHARS_MAX: usize = 512;

fn array_len(answer: &Value, key: &str) -> u64 {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map_or(0, |list| list.len() as u64)
}
