//! Request/response over a queue: `POST /v1/queues/{q}/request` sends a message and waits for
//! its reply; a consumer answers with the ack's `reply` or `POST /v1/replies/{correlation_id}`.
//!
//! The correlation id is the request message's id. The consumer sees it on receive as the
//! message's `id` and, explicitly, as the reserved attribute `baton.correlation_id`
//! ([`proto::CORRELATION_ID_ATTRIBUTE`]). The request message itself is an ordinary durable
//! message; the wait for its reply is not durable: the waiting requests live in this process
//! (bounded by `max_pending_requests`). A reply nobody waits for (after the timeout, a second
//! reply, or an unknown id) is discarded, counted in `late_total` (`/metrics`:
//! `baton_replies_discarded_total`), and answered with `reply_not_expected` to the replier.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::limits::MESSAGE_BYTES_MAX;
use baton_core::{AttributeData, AttributeValue, MessageAttributes, QueueName, SendEntry};
use baton_proto as proto;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::service::queues::attributes_from_wire;
use crate::service::ServiceError;
use crate::state::AppState;

/// Requests waiting for replies, by correlation id.
pub struct Replies {
    pending: Mutex<HashMap<String, oneshot::Sender<proto::Reply>>>,
    max_pending: u32,
    /// Replies handed to a waiting requester.
    pub delivered_total: AtomicU64,
    /// Replies discarded: late, repeated or for an unknown correlation id.
    pub discarded_total: AtomicU64,
    /// Requests that got no reply in time.
    pub timed_out_total: AtomicU64,
}

/// Removes a pending request when its handler ends, however it ends.
struct PendingGuard<'a> {
    replies: &'a Replies,
    correlation_id: String,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.replies.pending.lock().remove(&self.correlation_id);
    }
}

impl Replies {
    pub fn new(max_pending: u32) -> Self {
        Replies {
            pending: Mutex::default(),
            max_pending,
            delivered_total: AtomicU64::new(0),
            discarded_total: AtomicU64::new(0),
            timed_out_total: AtomicU64::new(0),
        }
    }

    fn register(
        &self,
        correlation_id: String,
    ) -> Result<(oneshot::Receiver<proto::Reply>, PendingGuard<'_>), ServiceError> {
        let mut pending = self.pending.lock();
        if pending.len() >= self.max_pending as usize {
            return Err(ServiceError::TooManyPendingRequests {
                limit: self.max_pending,
            });
        }
        let (tx, rx) = oneshot::channel();
        pending.insert(correlation_id.clone(), tx);
        Ok((
            rx,
            PendingGuard {
                replies: self,
                correlation_id,
            },
        ))
    }

    /// Hands `reply` to the request waiting for `correlation_id`. Returns false (and counts
    /// the reply as discarded) when none is waiting.
    pub fn answer(&self, correlation_id: &str, reply: proto::Reply) -> bool {
        let waiting = self.pending.lock().remove(correlation_id);
        let delivered = waiting.is_some_and(|tx| tx.send(reply).is_ok());
        let counter = if delivered {
            &self.delivered_total
        } else {
            &self.discarded_total
        };
        counter.fetch_add(1, Ordering::Relaxed);
        delivered
    }

    pub fn n_pending(&self) -> usize {
        self.pending.lock().len()
    }
}

/// Checks a reply's attributes and size like a message's.
pub fn check_reply(reply: &proto::Reply) -> Result<(), ServiceError> {
    let attributes = attributes_from_wire(0, reply.attributes.clone()).map_err(|e| match e {
        ServiceError::InvalidParameter { field, reason } => ServiceError::InvalidParameter {
            field: field.replacen("messages[0].", "reply.", 1),
            reason,
        },
        other => other,
    })?;
    let size_bytes = reply.body.len() as u64 + attributes.size_bytes();
    if size_bytes > u64::from(MESSAGE_BYTES_MAX) {
        return Err(ServiceError::invalid(
            "reply",
            format!("the reply is {size_bytes} bytes, at most {MESSAGE_BYTES_MAX}"),
        ));
    }
    Ok(())
}

/// Sends a request message to `queue` and waits for its reply.
pub async fn request(
    state: &AppState,
    queue: &str,
    request: proto::RequestMessage,
) -> Result<proto::RequestResponse, ServiceError> {
    let name = QueueName::new(queue)?;
    let timeout_max = state.config.request_timeout_ms_max;
    if request.timeout_ms == 0 || request.timeout_ms > timeout_max {
        return Err(ServiceError::invalid(
            "timeout_ms",
            format!(
                "{} is outside 1..={timeout_max} (the server's request_timeout_ms_max)",
                request.timeout_ms
            ),
        ));
    }
    if request
        .attributes
        .contains_key(proto::CORRELATION_ID_ATTRIBUTE)
    {
        return Err(ServiceError::invalid(
            format!("attributes.{}", proto::CORRELATION_ID_ATTRIBUTE),
            "this attribute is reserved: the server sets it to the correlation id",
        ));
    }
    let id = baton_engine::new_message_id();
    let correlation_id = id.to_string();
    let user = attributes_from_wire(0, request.attributes)?;
    let mut map: std::collections::BTreeMap<String, AttributeValue> = user
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    map.insert(
        proto::CORRELATION_ID_ATTRIBUTE.to_string(),
        AttributeValue::new("String", AttributeData::Text(correlation_id.clone()))
            .map_err(|reason| ServiceError::invalid("attributes", reason))?,
    );
    let attributes = MessageAttributes::new(map)?;
    let entry = SendEntry {
        id,
        body: request.body.into(),
        attributes,
        delay_ms: None,
        group_id: request.group_id,
        dedup_id: request.dedup_id,
        notify: None,
    };
    // Registered before the send, so that a reply racing the send's answer is not missed.
    let (rx, _guard) = state.replies.register(correlation_id.clone())?;
    let started = Instant::now();
    state.engine.send(&name, vec![entry]).await?;
    match tokio::time::timeout(Duration::from_millis(request.timeout_ms), rx).await {
        Ok(Ok(reply)) => Ok(proto::RequestResponse {
            id: correlation_id.clone(),
            correlation_id,
            reply,
            elapsed_ms: started.elapsed().as_millis() as u64,
        }),
        Ok(Err(_)) | Err(_) => {
            state
                .replies
                .timed_out_total
                .fetch_add(1, Ordering::Relaxed);
            Err(ServiceError::RequestTimeout {
                correlation_id,
                timeout_ms: request.timeout_ms,
            })
        }
    }
}

/// Hands `reply` to the request waiting for `correlation_id`.
pub fn reply(
    state: &AppState,
    correlation_id: String,
    reply: proto::Reply,
) -> Result<proto::ReplyOutcome, ServiceError> {
    check_reply(&reply)?;
    if state.replies.answer(&correlation_id, reply) {
        Ok(proto::ReplyOutcome {
            correlation_id,
            delivered: true,
        })
    } else {
        Err(ServiceError::ReplyNotExpected {
            correlation_id: correlation_id.chars().take(100).collect(),
        })
    }
}

/// Hands an ack's `reply` to the requests behind the acked messages.
pub fn answer_acked(
    replies: &Arc<Replies>,
    acked_ids: impl Iterator<Item = String>,
    reply: &proto::Reply,
) -> Vec<proto::ReplyOutcome> {
    acked_ids
        .map(|correlation_id| {
            let delivered = replies.answer(&correlation_id, reply.clone());
            proto::ReplyOutcome {
                correlation_id,
                delivered,
            }
        })
        .collect()
}
