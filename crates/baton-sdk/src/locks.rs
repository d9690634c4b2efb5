//! Locks on [`Client`]: acquire, renew, release, show and list (`/v1/locks/...`), and
//! [`LockGuard`], a held lock that renews itself in the background and reports its loss.
//!
//! A guard renews at a third of the TTL. It reports [`LockState::Lost`] on its watch channel
//! as soon as the server refuses a renewal (someone else holds the lock, or the hold expired),
//! and also when renewals keep failing (server unreachable) until the TTL has passed on this
//! machine's clock, counted from when the last successful renewal was *sent* — so the loss is
//! reported no later than the server could have given the lock to someone else. Work done
//! under the lock should watch [`LockGuard::state`] and pass [`LockGuard::token`] on as a
//! fencing token. Dropping a guard stops the renewals and releases the lock in the background
//! (best effort; otherwise it expires after its TTL); [`LockGuard::release`] releases it and
//! says whether it was still held. [`Client::send_fenced`] is a send the broker refuses
//! unless the token is still the lock's current one.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::proto::{
    AckRequest, AcquireLock, BatchResponse, ErrorCode, Fence, LockHeld, LockHeldBody, LockInfo,
    LockList, ReleaseLock, ReleaseResponse, RenewLock, SendMessage, SendRequest, SendResponse,
};
use crate::{check_status, decode, encode_segment, Client, Error};

/// What an acquire got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is this holder's, with this token.
    Granted(LockInfo),
    /// Someone else holds it (after the wait, if any).
    Held(LockHeld),
}

/// A guard's view of its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Held; the server's `expires_at` of the last renewal.
    Held { expires_at: u64 },
    /// Lost: the server refused a renewal, or none succeeded within the TTL.
    Lost { reason: String },
    /// Released by [`LockGuard::release`].
    Released,
}

impl Client {
    fn lock_url(&self, name: &str, suffix: Option<&str>) -> String {
        let mut url = format!("{}/v1/locks/{}", self.base_url, encode_segment(name));
        if let Some(suffix) = suffix {
            url.push('/');
            url.push_str(suffix);
        }
        url
    }

    /// `PUT /v1/locks/{name}`: acquires the lock for `ttl_ms`, waiting up to `wait_ms` for it
    /// to come free. A lock held by someone else is `Ok(Acquired::Held)`, not an error.
    pub async fn acquire_lock(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<Acquired, Error> {
        let url = self.lock_url(name, None);
        let body = AcquireLock {
            holder: holder.to_string(),
            ttl_ms,
            wait_ms: (wait_ms > 0).then_some(wait_ms),
        };
        let response = self
            .http_request(Method::PUT, &url)
            .timeout(self.request_timeout + Duration::from_millis(wait_ms))
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status == StatusCode::CONFLICT {
            if let Ok(held) = serde_json::from_slice::<LockHeldBody>(&bytes) {
                if held.error.code == ErrorCode::LockHeld {
                    return Ok(Acquired::Held(held.lock));
                }
            }
        }
        let bytes = check_status(&Method::PUT, &url, status, bytes)?;
        decode(&Method::PUT, &url, status, &bytes).map(Acquired::Granted)
    }

    /// `POST /v1/locks/{name}/renew`: the hold of `token`, expiring `ttl_ms` from now.
    pub async fn renew_lock(
        &self,
        name: &str,
        holder: &str,
        token: u64,
        ttl_ms: u64,
    ) -> Result<LockInfo, Error> {
        let body = RenewLock {
            holder: holder.to_string(),
            token,
            ttl_ms,
        };
        let url = self.lock_url(name, Some("renew"));
        self.json(Method::POST, url, Some(&body), self.request_timeout)
            .await
    }

    /// `POST /v1/locks/{name}/release`: true when the hold ended now, false when it had
    /// already ended.
    pub async fn release_lock(&self, name: &str, holder: &str, token: u64) -> Result<bool, Error> {
        let body = ReleaseLock {
            holder: holder.to_string(),
            token,
        };
        let url = self.lock_url(name, Some("release"));
        let response: ReleaseResponse = self
            .json(Method::POST, url, Some(&body), self.request_timeout)
            .await?;
        Ok(response.released)
    }

    /// `GET /v1/locks/{name}`: the live hold, or `None` when nobody holds it.
    pub async fn get_lock(&self, name: &str) -> Result<Option<LockInfo>, Error> {
        let url = self.lock_url(name, None);
        match self
            .json::<(), LockInfo>(Method::GET, url, None, self.request_timeout)
            .await
        {
            Ok(info) => Ok(Some(info)),
            Err(error) if error.code() == Some(ErrorCode::LockNotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `GET /v1/locks?prefix=&after=&max=`: live holds in name order.
    pub async fn list_locks(
        &self,
        prefix: &str,
        after: Option<&str>,
        max: u32,
    ) -> Result<LockList, Error> {
        let mut query = form_query(&[("prefix", prefix), ("max", &max.to_string())]);
        if let Some(after) = after {
            query.push('&');
            query.push_str(&form_query(&[("after", after)]));
        }
        let url = format!("{}/v1/locks?{query}", self.base_url);
        self.json::<(), _>(Method::GET, url, None, self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{queue}/messages` with `"fence"`: refused with `fenced` (nothing
    /// written) unless `token` is the live hold of `lock` when the batch is enqueued.
    pub async fn send_fenced(
        &self,
        queue: &str,
        messages: Vec<SendMessage>,
        lock: &str,
        token: u64,
    ) -> Result<SendResponse, Error> {
        let url = self.queue_url(queue, &["messages"]);
        let request = SendRequest {
            messages,
            fence: Some(Fence {
                lock: lock.to_string(),
                token,
            }),
        };
        self.json(Method::POST, url, Some(&request), self.request_timeout)
            .await
    }

    /// `POST /v1/queues/{queue}/ack` with `"fence"`: refused with `fenced` (nothing acked)
    /// unless `token` is the live hold of `lock` when the messages are deleted.
    pub async fn ack_fenced(
        &self,
        queue: &str,
        receipts: Vec<String>,
        lock: &str,
        token: u64,
    ) -> Result<BatchResponse, Error> {
        let url = self.queue_url(queue, &["ack"]);
        let request = AckRequest {
            receipts,
            reply: None,
            fence: Some(Fence {
                lock: lock.to_string(),
                token,
            }),
        };
        self.json(Method::POST, url, Some(&request), self.request_timeout)
            .await
    }

    /// Acquires `name` and returns a guard that keeps renewing it. A lock that someone else
    /// still holds after `wait_ms` is `Error::Api` with `lock_held`.
    pub async fn lock(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Result<LockGuard, Error> {
        let sent = Instant::now();
        match self.acquire_lock(name, holder, ttl_ms, wait_ms).await? {
            Acquired::Granted(info) => Ok(LockGuard::start(self.clone(), info, ttl_ms, sent)),
            Acquired::Held(held) => Err(Error::Api {
                status: StatusCode::CONFLICT.as_u16(),
                code: ErrorCode::LockHeld,
                message: format!(
                    "lock {} is held by {} until {}",
                    held.name, held.holder, held.expires_at
                ),
            }),
        }
    }
}

fn form_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", encode_segment(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A held lock that renews itself until released or dropped (see the module doc).
pub struct LockGuard {
    client: Client,
    info: LockInfo,
    state: watch::Receiver<LockState>,
    renewer: Option<JoinHandle<()>>,
}

impl LockGuard {
    fn start(client: Client, info: LockInfo, ttl_ms: u64, sent: Instant) -> Self {
        let (tx, rx) = watch::channel(LockState::Held {
            expires_at: info.expires_at,
        });
        let renewer = tokio::spawn(renew_loop(client.clone(), info.clone(), ttl_ms, sent, tx));
        LockGuard {
            client,
            info,
            state: rx,
            renewer: Some(renewer),
        }
    }

    /// The fencing token of this hold.
    pub fn token(&self) -> u64 {
        self.info.token
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The lock's state as the guard knows it; `changed().await` on it wakes on a loss.
    pub fn state(&self) -> watch::Receiver<LockState> {
        self.state.clone()
    }

    /// True until the lock is known lost or released.
    pub fn is_held(&self) -> bool {
        matches!(*self.state.borrow(), LockState::Held { .. })
    }

    /// Stops renewing and releases the lock: true when it was still held.
    pub async fn release(mut self) -> Result<bool, Error> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
        self.client
            .release_lock(&self.info.name, &self.info.holder, self.info.token)
            .await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(renewer) = self.renewer.take() else {
            return; // released
        };
        renewer.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, info) = (self.client.clone(), self.info.clone());
            runtime.spawn(async move {
                let _ = client
                    .release_lock(&info.name, &info.holder, info.token)
                    .await;
            });
        }
    }
}

/// Renews at a third of the TTL until a renewal is refused or none succeeded within the TTL.
async fn renew_loop(
    client: Client,
    info: LockInfo,
    ttl_ms: u64,
    mut last_sent: Instant,
    state: watch::Sender<LockState>,
) {
    let ttl = Duration::from_millis(ttl_ms);
    let every = (ttl / 3).max(Duration::from_millis(1));
    let mut next = last_sent + every;
    loop {
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        if sent >= last_sent + ttl {
            let reason = format!("no renewal succeeded within the TTL of {ttl_ms} ms");
            state.send_replace(LockState::Lost { reason });
            return;
        }
        match client
            .renew_lock(&info.name, &info.holder, info.token, ttl_ms)
            .await
        {
            Ok(renewed) => {
                last_sent = sent;
                next = sent + every;
                state.send_replace(LockState::Held {
                    expires_at: renewed.expires_at,
                });
            }
            Err(error @ Error::Api { .. }) => {
                state.send_replace(LockState::Lost {
                    reason: error.to_string(),
                });
                return;
            }
            // The server may be briefly unreachable: try again soon, until the TTL is over.
            Err(_) => next = Instant::now() + (every / 4).max(Duration::from_millis(1)),
        }
    }
}
