//! Queues, whatever the transport: the checks and conversions of the native queue API
//! (DESIGN.md) done once, between the shapes of `baton-proto` (which the native HTTP API and
//! the framed protocol share) and the domain types of `baton-core`, with one engine call per
//! operation where the engine allows it. Knows no HTTP: errors are `ServiceError`s.

use crate::caller_limits::{SlotKind, Who};
use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::limits::{RECEIPT_BATCH_MAX, VISIBILITY_TIMEOUT_MS_MAX, WAIT_MS_MAX};
use baton_core::{
    AttributeData, BaseType, DeadLetterPolicy, Delivery, MessageAttributes, MessageId, Notify,
    QueueConfig, QueueName, ReceiptHandle, RetryPolicy, SendEntry, StatusRecord,
};
use baton_engine::{
    Created, FencedOutcome, FencedWrite, QueueView, ReceiveOptions, RedriveOptions,
};
use baton_proto as proto;
use baton_proto::{BatchResponse, ErrorCode, ItemResult};

use crate::service::error::receipt_code;
use crate::service::fences;
use crate::service::ServiceError;
use crate::state::AppState;

/// Longest notify URL and most notify headers a message may carry.
const NOTIFY_URL_CHARS_MAX: usize = 2048;
const NOTIFY_HEADERS_MAX: usize = 20;

pub(crate) fn queue_name(raw: &str) -> Result<QueueName, ServiceError> {
    Ok(QueueName::new(raw)?)
}

fn dead_letter_policy(dead_letter: proto::DeadLetter) -> Result<DeadLetterPolicy, ServiceError> {
    let queue = QueueName::new(&dead_letter.queue)
        .map_err(|e| ServiceError::invalid("dead_letter.queue", e.to_string()))?;
    Ok(DeadLetterPolicy {
        queue,
        max_receive_count: dead_letter.max_receive_count,
    })
}

fn retry_policy(retry: proto::Retry) -> RetryPolicy {
    RetryPolicy {
        base_delay_ms: retry.base_delay_ms,
        max_delay_ms: retry.max_delay_ms,
    }
}

fn create_config(
    name: &QueueName,
    request: proto::CreateQueue,
) -> Result<QueueConfig, ServiceError> {
    let defaults = QueueConfig::default();
    Ok(QueueConfig {
        fifo: request.fifo.unwrap_or_else(|| name.has_fifo_suffix()),
        visibility_timeout_ms: request
            .visibility_timeout_ms
            .unwrap_or(defaults.visibility_timeout_ms),
        delay_ms: request.delay_ms.unwrap_or(defaults.delay_ms),
        retention_ms: request.retention_ms.unwrap_or(defaults.retention_ms),
        max_message_bytes: request
            .max_message_bytes
            .unwrap_or(defaults.max_message_bytes),
        receive_wait_ms: request.receive_wait_ms.unwrap_or(defaults.receive_wait_ms),
        dead_letter: request.dead_letter.map(dead_letter_policy).transpose()?,
        content_based_dedup: request
            .content_based_dedup
            .unwrap_or(defaults.content_based_dedup),
        max_depth: request.max_depth,
        retry: request.retry.map(retry_policy),
    })
}

fn updated_config(
    mut config: QueueConfig,
    request: proto::UpdateQueue,
) -> Result<QueueConfig, ServiceError> {
    if let Some(fifo) = request.fifo {
        config.fifo = fifo;
    }
    if let Some(value) = request.visibility_timeout_ms {
        config.visibility_timeout_ms = value;
    }
    if let Some(value) = request.delay_ms {
        config.delay_ms = value;
    }
    if let Some(value) = request.retention_ms {
        config.retention_ms = value;
    }
    if let Some(value) = request.max_message_bytes {
        config.max_message_bytes = value;
    }
    if let Some(value) = request.receive_wait_ms {
        config.receive_wait_ms = value;
    }
    if let Some(value) = request.dead_letter {
        config.dead_letter = value.map(dead_letter_policy).transpose()?;
    }
    if let Some(value) = request.content_based_dedup {
        config.content_based_dedup = value;
    }
    if let Some(value) = request.max_depth {
        config.max_depth = value;
    }
    if let Some(value) = request.retry {
        config.retry = value.map(retry_policy);
    }
    Ok(config)
}

pub(crate) fn queue_info(view: QueueView) -> proto::QueueInfo {
    let config = view.config;
    let stats = view.stats;
    proto::QueueInfo {
        name: view.name.to_string(),
        attributes: proto::QueueAttributes {
            fifo: config.fifo,
            visibility_timeout_ms: config.visibility_timeout_ms,
            delay_ms: config.delay_ms,
            retention_ms: config.retention_ms,
            max_message_bytes: config.max_message_bytes,
            receive_wait_ms: config.receive_wait_ms,
            dead_letter: config.dead_letter.map(|d| proto::DeadLetter {
                queue: d.queue.to_string(),
                max_receive_count: d.max_receive_count,
            }),
            content_based_dedup: config.content_based_dedup,
            max_depth: config.max_depth,
            retry: config.retry.map(|r| proto::Retry {
                base_delay_ms: r.base_delay_ms,
                max_delay_ms: r.max_delay_ms,
            }),
        },
        stats: proto::QueueStats {
            visible: stats.visible,
            in_flight: stats.in_flight,
            delayed: stats.delayed,
            oldest_age_ms: stats.oldest_age_ms,
            sent_total: stats.sent_total,
            duplicates_total: stats.duplicates_total,
            received_total: stats.received_total,
            acked_total: stats.acked_total,
            nacked_total: stats.nacked_total,
            dead_lettered_total: stats.dead_lettered_total,
            expired_total: stats.expired_total,
            purged_total: stats.purged_total,
            moved_in_total: stats.moved_in_total,
            moved_out_total: stats.moved_out_total,
        },
    }
}

pub(crate) fn attributes_from_wire(
    index: usize,
    wire: BTreeMap<String, proto::AttributeValue>,
) -> Result<MessageAttributes, ServiceError> {
    let mut map = BTreeMap::new();
    for (name, value) in wire {
        let field = || format!("messages[{index}].attributes.{name}");
        let value = match value {
            proto::AttributeValue::Plain(text) => {
                baton_core::AttributeValue::new("String", AttributeData::Text(text))
            }
            proto::AttributeValue::Typed(typed) => {
                let data = if typed.data_type.starts_with("Binary") {
                    let bytes = BASE64.decode(typed.value.as_bytes()).map_err(|e| {
                        ServiceError::invalid(field(), format!("Binary values are base64: {e}"))
                    })?;
                    AttributeData::Binary(bytes)
                } else {
                    AttributeData::Text(typed.value)
                };
                baton_core::AttributeValue::new(&typed.data_type, data)
            }
        }
        .map_err(|reason| ServiceError::invalid(field(), reason))?;
        map.insert(name, value);
    }
    MessageAttributes::new(map).map_err(|e| match e {
        baton_core::QueueError::InvalidParameter { field, reason } => {
            ServiceError::invalid(format!("messages[{index}].{field}"), reason)
        }
        other => other.into(),
    })
}

pub(crate) fn attributes_to_wire(
    attributes: &MessageAttributes,
) -> BTreeMap<String, proto::AttributeValue> {
    attributes
        .user()
        .map(|(name, value)| {
            let wire = match (value.data_type(), value.data()) {
                ("String", AttributeData::Text(text)) => proto::AttributeValue::Plain(text.clone()),
                (data_type, data) => proto::AttributeValue::Typed(proto::TypedAttribute {
                    data_type: data_type.to_string(),
                    value: match (value.base_type(), data) {
                        (BaseType::Binary, AttributeData::Binary(bytes)) => BASE64.encode(bytes),
                        (_, AttributeData::Text(text)) => text.clone(),
                        (_, AttributeData::Binary(bytes)) => BASE64.encode(bytes),
                    },
                }),
            };
            (name.clone(), wire)
        })
        .collect()
}

fn notify_from_wire(index: usize, notify: proto::Notify) -> Result<Notify, ServiceError> {
    let field = format!("messages[{index}].notify");
    let url = notify.url;
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() > NOTIFY_URL_CHARS_MAX || url.chars().any(char::is_whitespace) {
        return Err(ServiceError::invalid(
            format!("{field}.url"),
            format!(
                "must be an http:// or https:// URL of at most {NOTIFY_URL_CHARS_MAX} characters"
            ),
        ));
    }
    if notify.headers.len() > NOTIFY_HEADERS_MAX {
        return Err(ServiceError::invalid(
            format!("{field}.headers"),
            format!("at most {NOTIFY_HEADERS_MAX} headers"),
        ));
    }
    for (name, value) in &notify.headers {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok || reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err(ServiceError::invalid(
                format!("{field}.headers.{name}"),
                "not a valid HTTP header",
            ));
        }
    }
    Ok(Notify {
        url,
        headers: notify.headers.into_iter().collect(),
    })
}

/// Refuses a notify URL whose host the server's outbound allow/deny list refuses.
fn check_notify_target(
    state: &AppState,
    index: usize,
    notify: Notify,
) -> Result<Notify, ServiceError> {
    match state.outbound.check_url(&notify.url) {
        Ok(_) => Ok(notify),
        Err(crate::outbound::TargetError::Invalid(reason)) => Err(ServiceError::invalid(
            format!("messages[{index}].notify.url"),
            reason,
        )),
        Err(crate::outbound::TargetError::NotAllowed(reason)) => {
            Err(ServiceError::TargetNotAllowed {
                field: format!("messages[{index}].notify.url"),
                reason,
            })
        }
    }
}

fn delivery_to_wire(delivery: Delivery) -> proto::ReceivedMessage {
    proto::ReceivedMessage {
        id: delivery.id.to_string(),
        seq: delivery.seq,
        body: delivery.body.to_string(),
        attributes: attributes_to_wire(&delivery.attributes),
        receipt: delivery.receipt.to_string(),
        receive_count: delivery.receive_count,
        sent_at: delivery.sent_at.as_millis(),
        first_received_at: delivery.first_received_at.as_millis(),
        group_id: delivery.group_id.map(|g| g.to_string()),
        dedup_id: delivery.dedup_id.map(|d| d.to_string()),
    }
}

pub(crate) fn status_to_wire(queue: &QueueName, record: StatusRecord) -> proto::MessageStatus {
    proto::MessageStatus {
        id: record.id.to_string(),
        queue: queue.to_string(),
        status: record.status.as_str().to_string(),
        history: record
            .history
            .into_iter()
            .map(|event| proto::HistoryEntry {
                event: event.kind.as_str().to_string(),
                at: event.at.as_millis(),
                receive_count: event.receive_count,
                detail: event.detail,
            })
            .collect(),
    }
}

/// Parses receipts; unparseable ones become per-item `receipt_invalid` results.
fn parse_receipts(receipts: &[String]) -> Result<Vec<Option<ReceiptHandle>>, ServiceError> {
    if receipts.is_empty() || receipts.len() > RECEIPT_BATCH_MAX {
        return Err(ServiceError::invalid(
            "receipts",
            format!(
                "{} receipts given, 1 to {RECEIPT_BATCH_MAX} are allowed",
                receipts.len()
            ),
        ));
    }
    Ok(receipts.iter().map(|r| ReceiptHandle::parse(r)).collect())
}

/// Merges the engine's results for the parsed receipts back into request order.
fn batch_results<T>(
    parsed: &[Option<ReceiptHandle>],
    engine_results: Vec<Result<T, baton_core::ReceiptError>>,
) -> BatchResponse {
    let mut engine_results = engine_results.into_iter();
    let results = parsed
        .iter()
        .map(|receipt| match receipt {
            None => ItemResult::error(
                ErrorCode::ReceiptInvalid,
                baton_core::ReceiptError::Invalid.to_string(),
            ),
            Some(_) => match engine_results.next() {
                Some(Ok(_)) => ItemResult::ok(),
                Some(Err(error)) => ItemResult::error(receipt_code(error), error.to_string()),
                None => ItemResult::error(ErrorCode::Internal, "missing result"),
            },
        })
        .collect();
    BatchResponse { results }
}

pub async fn list(state: &AppState) -> Result<proto::QueueList, ServiceError> {
    let views = state.engine.list_queues().await?;
    Ok(proto::QueueList {
        queues: views.into_iter().map(queue_info).collect(),
    })
}

/// Creates a queue; `true` with a new one, `false` when an equal one existed.
pub async fn create(
    state: &AppState,
    queue: &str,
    request: proto::CreateQueue,
) -> Result<(bool, proto::QueueInfo), ServiceError> {
    let name = queue_name(queue)?;
    if let Some(reason) = reserved_name(&name) {
        return Err(baton_core::QueueError::InvalidName {
            name: name.to_string(),
            reason,
        }
        .into());
    }
    let config = create_config(&name, request)?;
    Ok(match state.engine.create_queue(name, config).await? {
        Created::New(view) => (true, queue_info(view)),
        Created::Existing(view) => (false, queue_info(view)),
    })
}

pub async fn show(state: &AppState, queue: &str) -> Result<proto::QueueInfo, ServiceError> {
    let name = queue_name(queue)?;
    Ok(queue_info(state.engine.get_queue(&name).await?))
}

pub async fn update(
    state: &AppState,
    queue: &str,
    request: proto::UpdateQueue,
) -> Result<proto::QueueInfo, ServiceError> {
    let name = queue_name(queue)?;
    let current = state.engine.get_queue(&name).await?;
    let config = updated_config(current.config, request)?;
    Ok(queue_info(state.engine.update_queue(&name, config).await?))
}

pub async fn delete(state: &AppState, queue: &str) -> Result<(), ServiceError> {
    let name = queue_name(queue)?;
    state.engine.delete_queue(&name).await?;
    Ok(())
}

pub async fn purge(state: &AppState, queue: &str) -> Result<proto::PurgeResponse, ServiceError> {
    let name = queue_name(queue)?;
    let purged = state.engine.purge_queue(&name).await?;
    Ok(proto::PurgeResponse { purged })
}

pub async fn send(
    state: &AppState,
    queue: &str,
    request: proto::SendRequest,
) -> Result<proto::SendResponse, ServiceError> {
    let name = queue_name(queue)?;
    let fence = request.fence;
    let mut entries = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.into_iter().enumerate() {
        let options = SendOptions {
            attributes: message.attributes,
            group_id: message.group_id,
            dedup_id: message.dedup_id,
            delay_ms: message.delay_ms,
            deliver_at: message.deliver_at,
            notify: message.notify,
        };
        entries.push(send_entry(state, index, message.body.into(), options)?);
    }
    match fence {
        Some(fence) => send_fenced(state, name, entries, fence).await,
        None => send_to(state, &name, entries).await,
    }
}

/// Sends checked messages only while `fence`'s token is its lock's current one, in one step.
async fn send_fenced(
    state: &AppState,
    queue: QueueName,
    entries: Vec<SendEntry>,
    fence: proto::Fence,
) -> Result<proto::SendResponse, ServiceError> {
    match fences::write(state, fence, FencedWrite::Send { queue, entries }).await? {
        FencedOutcome::Sent(outcomes) => Ok(sent_response(outcomes)),
        _ => Err(fences::mismatch("send")),
    }
}

fn sent_response(outcomes: Vec<baton_core::SendOutcome>) -> proto::SendResponse {
    proto::SendResponse {
        messages: outcomes
            .into_iter()
            .map(|o| proto::SentMessage {
                id: o.id.to_string(),
                seq: o.seq,
                duplicate: o.duplicate,
            })
            .collect(),
    }
}

/// Everything of a message to send but its body, as the native API and the wire protocol
/// give it.
pub(crate) type SendOptions = proto::wire::SendMeta;

/// Checks one message to send (`index` in its batch, for error paths).
pub(crate) fn send_entry(
    state: &AppState,
    index: usize,
    body: std::sync::Arc<str>,
    options: SendOptions,
) -> Result<SendEntry, ServiceError> {
    let delay_ms = match (options.delay_ms, options.deliver_at) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                format!("messages[{index}].deliver_at"),
                "give either `delay_ms` or `deliver_at`, not both",
            ))
        }
        // A time already passed delivers at once.
        (None, Some(at)) => Some(at.saturating_sub(state.engine.now().as_millis())),
        (delay_ms, None) => delay_ms,
    };
    Ok(SendEntry {
        id: baton_engine::new_message_id(),
        body,
        attributes: attributes_from_wire(index, options.attributes)?,
        delay_ms,
        group_id: options.group_id,
        dedup_id: options.dedup_id,
        notify: options
            .notify
            .map(|n| notify_from_wire(index, n))
            .transpose()?
            .map(|n| check_notify_target(state, index, n))
            .transpose()?,
    })
}

/// Sends checked messages to `queue`, all or none.
pub(crate) async fn send_entries(
    state: &AppState,
    queue: &str,
    entries: Vec<SendEntry>,
) -> Result<proto::SendResponse, ServiceError> {
    send_to(state, &queue_name(queue)?, entries).await
}

async fn send_to(
    state: &AppState,
    name: &QueueName,
    entries: Vec<SendEntry>,
) -> Result<proto::SendResponse, ServiceError> {
    let outcomes = state.engine.send(name, entries).await?;
    Ok(sent_response(outcomes))
}

/// Leases messages of `queue` as `request` asks, for `who` (a receive that asks to wait
/// holds one of its long-poll slots while it does).
pub(crate) async fn receive_deliveries(
    state: &AppState,
    queue: &str,
    request: proto::ReceiveRequest,
    who: &Who,
) -> Result<Vec<Delivery>, ServiceError> {
    let name = queue_name(queue)?;
    if let Some(wait_ms) = request.wait_ms {
        if wait_ms > WAIT_MS_MAX {
            return Err(ServiceError::invalid(
                "wait_ms",
                format!("{wait_ms} is outside 0..={WAIT_MS_MAX}"),
            ));
        }
    }
    let _slot = match request.wait_ms {
        Some(wait_ms) if wait_ms > 0 => {
            Some(state.caller_limits.take_for(SlotKind::LongPoll, who)?)
        }
        _ => None,
    };
    let options = ReceiveOptions {
        max: request.max.unwrap_or(1),
        wait_ms: request.wait_ms,
        visibility_timeout_ms: request.visibility_timeout_ms,
    };
    Ok(state.engine.receive(&name, options).await?)
}

/// Acks the receipts of `request`, answering the requests they carried if it has a reply.
pub async fn ack(
    state: &AppState,
    queue: &str,
    request: proto::AckRequest,
) -> Result<proto::AckResponse, ServiceError> {
    let name = queue_name(queue)?;
    if let Some(reply) = &request.reply {
        crate::service::replies::check_reply(reply)?;
    }
    let parsed = parse_receipts(&request.receipts)?;
    let valid: Vec<ReceiptHandle> = parsed.iter().flatten().copied().collect();
    // The reply also goes to the completion callbacks of acked messages with `notify`.
    let reply_json = request
        .reply
        .as_ref()
        .and_then(|reply| serde_json::to_string(reply).ok())
        .map(std::sync::Arc::<str>::from);
    let results = match request.fence {
        Some(fence) => {
            let write = FencedWrite::Ack {
                queue: name,
                receipts: valid,
                reply: reply_json,
            };
            match fences::write(state, fence, write).await? {
                FencedOutcome::Acked(results) => results,
                _ => return Err(fences::mismatch("ack")),
            }
        }
        None => {
            state
                .engine
                .ack_with_reply(&name, valid, reply_json)
                .await?
        }
    };
    let replies = match &request.reply {
        Some(reply) => crate::service::replies::answer_acked(
            &state.replies,
            results.iter().flatten().map(|acked| acked.id.to_string()),
            reply,
        ),
        None => Vec::new(),
    };
    let BatchResponse { results } = batch_results(&parsed, results);
    Ok(proto::AckResponse { results, replies })
}

/// Returns the messages of `request`'s receipts to their queue, after its delay.
pub async fn nack(
    state: &AppState,
    queue: &str,
    request: proto::NackRequest,
) -> Result<BatchResponse, ServiceError> {
    let name = queue_name(queue)?;
    if let Some(delay_ms) = request.delay_ms {
        if delay_ms > VISIBILITY_TIMEOUT_MS_MAX {
            return Err(ServiceError::invalid(
                "delay_ms",
                format!("{delay_ms} is outside 0..={VISIBILITY_TIMEOUT_MS_MAX}"),
            ));
        }
    }
    let parsed = parse_receipts(&request.receipts)?;
    let valid: Vec<ReceiptHandle> = parsed.iter().flatten().copied().collect();
    let results = match request.fence {
        Some(fence) => {
            let write = FencedWrite::Nack {
                queue: name,
                receipts: valid,
                delay_ms: request.delay_ms,
            };
            match fences::write(state, fence, write).await? {
                FencedOutcome::Nacked(results) => results,
                _ => return Err(fences::mismatch("nack")),
            }
        }
        None => state.engine.nack(&name, valid, request.delay_ms).await?,
    };
    Ok(batch_results(&parsed, results))
}

pub async fn receive(
    state: &AppState,
    queue: &str,
    request: proto::ReceiveRequest,
    who: &Who,
) -> Result<proto::ReceiveResponse, ServiceError> {
    let deliveries = receive_deliveries(state, queue, request, who).await?;
    Ok(proto::ReceiveResponse {
        messages: deliveries.into_iter().map(delivery_to_wire).collect(),
    })
}

pub async fn visibility(
    state: &AppState,
    queue: &str,
    request: proto::VisibilityRequest,
) -> Result<ItemResult, ServiceError> {
    let name = queue_name(queue)?;
    if request.timeout_ms > VISIBILITY_TIMEOUT_MS_MAX {
        return Err(ServiceError::invalid(
            "timeout_ms",
            format!(
                "{} is outside 0..={VISIBILITY_TIMEOUT_MS_MAX}",
                request.timeout_ms
            ),
        ));
    }
    let receipt = ReceiptHandle::parse(&request.receipt).ok_or(ServiceError::Engine(
        baton_engine::EngineError::Receipt(baton_core::ReceiptError::Invalid),
    ))?;
    state
        .engine
        .change_visibility(&name, receipt, request.timeout_ms)
        .await?;
    Ok(ItemResult::ok())
}

pub async fn message_status(
    state: &AppState,
    queue: &str,
    id: &str,
) -> Result<proto::MessageStatus, ServiceError> {
    let name = queue_name(queue)?;
    let id = MessageId::parse(id).ok_or_else(|| {
        ServiceError::invalid("id", format!("{id:?} is not a message id (a UUID)"))
    })?;
    let record = state.engine.message_status(&name, id).await?;
    Ok(status_to_wire(&name, record))
}

pub async fn redrive(
    state: &AppState,
    queue: &str,
    request: proto::RedriveRequest,
) -> Result<proto::RedriveResponse, ServiceError> {
    let name = queue_name(queue)?;
    let to = request
        .to
        .map(|to| QueueName::new(&to).map_err(|e| ServiceError::invalid("to", e.to_string())))
        .transpose()?;
    if request.max == Some(0) {
        return Err(ServiceError::invalid("max", "must be at least 1"));
    }
    let moved = state
        .engine
        .redrive(
            &name,
            RedriveOptions {
                max: request.max,
                to,
            },
        )
        .await?;
    Ok(proto::RedriveResponse { moved })
}

/// Queue names with this prefix belong to Baton itself; the APIs refuse to create them.
pub const INTERNAL_QUEUE_PREFIX: &str = "_baton-";

/// Why a user may not create queue `name`, when it is internal.
pub fn reserved_name(name: &QueueName) -> Option<String> {
    name.as_str().starts_with(INTERNAL_QUEUE_PREFIX).then(|| {
        format!("names starting with `{INTERNAL_QUEUE_PREFIX}` are reserved for Baton's internal queues")
    })
}
