//! SendMessage, SendMessageBatch and ReceiveMessage: messages in and out, their attributes
//! and digests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::attributes::SYSTEM_TRACE_HEADER;
use baton_core::limits::{DEDUP_WINDOW_MS, MESSAGE_BYTES_MAX};
use baton_core::QueueError;
use baton_core::{
    AttributeData, AttributeValue, BaseType, Delivery, MessageAttributes, QueueName, SendEntry,
};
use baton_engine::{EngineError, ReceiveOptions};
use serde_json::{json, Map, Value};

use super::actions::{batch_entries, failed, queue_arn, target_queue, unless_missing, Out};
use super::error::SqsError;
use super::md5::{self, DigestAttribute, DigestValue};
use super::params::{self, list, object, opt_int, opt_str, req_str};
use super::{Call, ACCOUNT_ID, ATTEMPTS_MAX};

/// Messages one receive returns at most (as SQS).
const RECEIVE_MAX: i64 = 10;

/// The digests SQS answers for a message of SendMessage or one SendMessageBatch entry.
pub(super) struct Outgoing {
    md5_body: String,
    md5_attributes: Option<String>,
    md5_system: Option<String>,
}

fn message_attributes(
    params: &Map<String, Value>,
    field: &str,
) -> Result<(MessageAttributes, Option<String>), SqsError> {
    let mut map = BTreeMap::new();
    if let Some(attributes) = object(params, field) {
        for (name, value) in attributes {
            let invalid = |reason: &str| {
                SqsError::invalid_parameter_value(format!(
                    "Message attribute '{name}' is invalid: {reason}"
                ))
            };
            let Value::Object(value) = value else {
                return Err(invalid("not a structure"));
            };
            let data_type = value
                .get("DataType")
                .and_then(params::text)
                .ok_or_else(|| invalid("The message attribute must contain a DataType."))?;
            let data = if data_type.starts_with("Binary") {
                let raw = value.get("BinaryValue").and_then(params::text).ok_or_else(|| {
                    invalid("The message attribute must contain non-empty message attribute value for message attribute type Binary.")
                })?;
                AttributeData::Binary(
                    BASE64
                        .decode(raw.as_bytes())
                        .map_err(|_| invalid("BinaryValue is not base64."))?,
                )
            } else {
                let text = value.get("StringValue").and_then(params::text).filter(|t| !t.is_empty()).ok_or_else(|| {
                    invalid(&format!(
                        "The message attribute must contain non-empty message attribute value for message attribute type {data_type}."
                    ))
                })?;
                AttributeData::Text(text)
            };
            map.insert(
                name.clone(),
                AttributeValue::new(&data_type, data).map_err(|reason| invalid(&reason))?,
            );
        }
    }
    let digest = md5::of_attributes(
        map.iter()
            .map(|(name, value)| digest_of(name, value))
            .collect(),
    );
    let attributes = MessageAttributes::new(map)
        .map_err(|error| SqsError::invalid_parameter_value(error.to_string()))?;
    Ok((attributes, digest))
}

fn digest_of<'a>(name: &'a str, value: &'a AttributeValue) -> DigestAttribute<'a> {
    DigestAttribute {
        name,
        data_type: value.data_type(),
        value: match value.data() {
            AttributeData::Text(text) => DigestValue::Text(text),
            AttributeData::Binary(bytes) => DigestValue::Binary(bytes),
        },
    }
}

/// Parses a message to send: its digests and the entry.
pub(super) fn outgoing(
    params: &Map<String, Value>,
    fifo: bool,
) -> Result<(Outgoing, SendEntry), SqsError> {
    let body = req_str(params, "MessageBody")?;
    if body.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter MessageBody.",
        ));
    }
    if let Some(bad) = baton_core::attributes::first_non_xml_char(&body) {
        return Err(SqsError::invalid_message_contents(format!(
            "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            bad as u32
        )));
    }
    let delay = opt_int(params, "DelaySeconds", 0, 900)?;
    // A FIFO queue delays by its own DelaySeconds only; an explicit 0 is accepted.
    if let Some(delay) = delay.filter(|d| fifo && *d > 0) {
        return Err(SqsError::invalid_parameter_value(format!(
            "Value {delay} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
        )));
    }
    let (mut attributes, md5_attributes) = message_attributes(params, "MessageAttributes")?;
    let mut md5_system = None;
    if let Some(system) = object(params, "MessageSystemAttributes") {
        for (name, value) in system {
            if name != "AWSTraceHeader" {
                return Err(SqsError::invalid_parameter_value(format!(
                    "Message system attribute name '{name}' is invalid."
                )));
            }
            let text = value
                .get("StringValue")
                .and_then(params::text)
                .unwrap_or_default();
            let data_type = value
                .get("DataType")
                .and_then(params::text)
                .unwrap_or_default();
            if data_type != "String" || text.is_empty() {
                return Err(SqsError::invalid_parameter_value(
                    "Message system attribute AWSTraceHeader must be a non-empty String.",
                ));
            }
            md5_system = md5::of_attributes(vec![DigestAttribute {
                name: "AWSTraceHeader",
                data_type: "String",
                value: DigestValue::Text(&text),
            }]);
            attributes.insert_system(SYSTEM_TRACE_HEADER, AttributeValue::string(text));
        }
    }
    let group_id = opt_str(params, "MessageGroupId");
    let dedup_id = opt_str(params, "MessageDeduplicationId");
    if !fifo && dedup_id.is_some() {
        return Err(SqsError::invalid_parameter_value(
            "The request include parameter MessageDeduplicationId that is not valid for this queue type",
        ));
    }
    let digests = Outgoing {
        md5_body: md5::of_body(&body),
        md5_attributes,
        md5_system,
    };
    let entry = SendEntry {
        id: baton_engine::new_message_id(),
        body: body.into(),
        attributes,
        delay_ms: delay.map(|d| d as u64 * 1000),
        group_id,
        dedup_id,
        notify: None,
    };
    Ok((digests, entry))
}

fn sent(outgoing: &Outgoing, id: String, seq: u64, fifo: bool) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("MessageId".into(), Value::String(id));
    out.insert(
        "MD5OfMessageBody".into(),
        Value::String(outgoing.md5_body.clone()),
    );
    if let Some(md5) = &outgoing.md5_attributes {
        out.insert("MD5OfMessageAttributes".into(), Value::String(md5.clone()));
    }
    if let Some(md5) = &outgoing.md5_system {
        out.insert(
            "MD5OfMessageSystemAttributes".into(),
            Value::String(md5.clone()),
        );
    }
    if fifo {
        out.insert("SequenceNumber".into(), Value::String(format!("{seq:020}")));
    }
    out
}

/// One engine call: FIFO-ness is the name's (`.fifo` ⟺ FIFO, which every queue's config
/// keeps), and the queue's own limits are checked by the send itself.
pub(super) async fn send_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let fifo = name.has_fifo_suffix();
    let (outgoing, entry) = match outgoing(&call.params, fifo) {
        Ok(outgoing) => outgoing,
        Err(error) => return Err(unless_missing(&call, &name, error).await),
    };
    let outcomes = call.state.engine.send(&name, vec![entry]).await?;
    let outcome = outcomes
        .first()
        .ok_or_else(|| SqsError::internal("no send outcome"))?;
    Ok(Value::Object(sent(
        &outgoing,
        outcome.id.to_string(),
        outcome.seq,
        fifo,
    )))
}

/// The check SQS makes of a whole FIFO batch before any entry: each entry needs a group. A
/// failure fails the request. (The dedup-id rule depends on the queue's content-based dedup:
/// the engine's `send_each` checks it, failing the whole call too.)
fn check_fifo_batch(entries: &[Map<String, Value>]) -> Result<(), SqsError> {
    let given = |entry: &Map<String, Value>| {
        entry
            .get("MessageGroupId")
            .and_then(params::text)
            .is_some_and(|value| !value.is_empty())
    };
    if entries.iter().all(given) {
        Ok(())
    } else {
        Err(group_required())
    }
}

fn group_required() -> SqsError {
    SqsError::invalid_parameter_value("The request must contain the parameter MessageGroupId.")
}

/// The bytes an entry counts toward a batch's size, as SQS counts a message's: the body and
/// each attribute's name, type and value (binary values decoded), read from the request as it
/// is, before any entry is checked.
fn entry_bytes(entry: &Map<String, Value>) -> u64 {
    let body = entry
        .get("MessageBody")
        .and_then(params::text)
        .map_or(0, |body| body.len());
    let attributes = object(entry, "MessageAttributes").map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| {
                let field = |field: &str| value.get(field).and_then(params::text);
                let value_bytes = match (field("StringValue"), field("BinaryValue")) {
                    (Some(text), _) => text.len(),
                    (None, Some(binary)) => BASE64
                        .decode(binary.as_bytes())
                        .map_or(binary.len(), |bytes| bytes.len()),
                    (None, None) => 0,
                };
                name.len() + field("DataType").map_or(0, |t| t.len()) + value_bytes
            })
            .sum()
    });
    (body + attributes) as u64
}

/// One engine call (`send_each`): entries that fail their own checks fail alone, the rest is
/// enqueued atomically.
pub(super) async fn send_message_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params, "SendMessageBatchRequestEntry")?;
    let fifo = name.has_fifo_suffix();
    let total_bytes: u64 = entries.iter().map(entry_bytes).sum();
    let whole = if fifo { check_fifo_batch(&entries) } else { Ok(()) }.and_then(|()| {
        if total_bytes > u64::from(MESSAGE_BYTES_MAX) {
            Err(SqsError::batch_request_too_long(format!(
                "Batch requests cannot be longer than {MESSAGE_BYTES_MAX} bytes. You have sent {total_bytes} bytes."
            )))
        } else {
            Ok(())
        }
    });
    if let Err(error) = whole {
        return Err(unless_missing(&call, &name, error).await);
    }
    let mut prepared = Vec::new();
    let mut batch = Vec::new();
    let mut failures = Vec::new();
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        match outgoing(entry, fifo) {
            Ok((message, entry)) => {
                prepared.push((id, message));
                batch.push(entry);
            }
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    let mut successful = Vec::new();
    if batch.is_empty() {
        // Nothing to send: the one engine call left is the check SQS makes first.
        if let Err(missing @ EngineError::QueueNotFound { .. }) =
            call.state.engine.get_queue(&name).await
        {
            return Err(missing.into());
        }
        return Ok(json!({"Successful": successful, "Failed": failures}));
    }
    match call.state.engine.send_each(&name, batch).await {
        Ok(results) => {
            for ((id, message), result) in prepared.iter().zip(results) {
                match result {
                    Ok(outcome) => {
                        let mut entry = sent(message, outcome.id.to_string(), outcome.seq, fifo);
                        entry.insert("Id".into(), Value::String(id.clone()));
                        successful.push(Value::Object(entry));
                    }
                    Err(error) => {
                        failures.push(failed(id, &SqsError::from(EngineError::Queue(error))))
                    }
                }
            }
        }
        Err(EngineError::Queue(QueueError::GroupIdRequired { .. })) => return Err(group_required()),
        Err(
            error @ (EngineError::Queue(QueueError::DedupIdRequired { .. })
            | EngineError::QueueNotFound { .. }),
        ) => return Err(SqsError::from(error)),
        Err(error) => {
            let error = SqsError::from(error);
            failures.extend(prepared.iter().map(|(id, _)| failed(id, &error)));
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}

/// Whether a message attribute name is selected by `MessageAttributeNames`: `All`, `.*` and
/// `*` select every attribute, `<prefix>.*` those whose name starts with the prefix, any other
/// filter the attribute of that name.
fn selected(name: &str, filters: &[String]) -> bool {
    filters.iter().any(|filter| match filter.as_str() {
        "All" | ".*" | "*" => true,
        filter => match filter.strip_suffix(".*") {
            Some(prefix) => name.starts_with(prefix),
            None => filter == name,
        },
    })
}

const SYSTEM_NAMES: [&str; 9] = [
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

fn received(
    queue: &QueueName,
    delivery: &Delivery,
    system: &BTreeSet<String>,
    filters: &[String],
    fifo: bool,
) -> Value {
    let mut out = Map::new();
    out.insert("MessageId".into(), Value::String(delivery.id.to_string()));
    out.insert(
        "ReceiptHandle".into(),
        Value::String(delivery.receipt.to_string()),
    );
    out.insert(
        "MD5OfBody".into(),
        Value::String(md5::of_body(&delivery.body)),
    );
    out.insert("Body".into(), Value::String(delivery.body.to_string()));
    let all = system.contains("All");
    let wants = |name: &str| all || system.contains(name);
    let mut attributes = Map::new();
    let mut put = |name: &str, value: String| {
        if wants(name) {
            attributes.insert(name.to_string(), Value::String(value));
        }
    };
    put("SenderId", ACCOUNT_ID.to_string());
    put("SentTimestamp", delivery.sent_at.as_millis().to_string());
    put(
        "ApproximateReceiveCount",
        delivery.receive_count.to_string(),
    );
    put(
        "ApproximateFirstReceiveTimestamp",
        delivery.first_received_at.as_millis().to_string(),
    );
    if fifo {
        put("SequenceNumber", format!("{:020}", delivery.seq));
        if let Some(group) = &delivery.group_id {
            put("MessageGroupId", group.to_string());
        }
        if let Some(dedup) = &delivery.dedup_id {
            put("MessageDeduplicationId", dedup.to_string());
        }
    }
    // Only while the message sits in a dead-letter queue (a redriven one is back home).
    if let Some(source) = delivery.dead_letter_source.as_ref().filter(|s| *s != queue) {
        put("DeadLetterQueueSourceArn", queue_arn(source));
    }
    if let Some(AttributeData::Text(trace)) = delivery
        .attributes
        .get(SYSTEM_TRACE_HEADER)
        .map(AttributeValue::data)
    {
        put("AWSTraceHeader", trace.clone());
    }
    if !attributes.is_empty() {
        out.insert("Attributes".into(), Value::Object(attributes));
    }
    let chosen: Vec<(&String, &AttributeValue)> = delivery
        .attributes
        .user()
        .filter(|(name, _)| selected(name, filters))
        .collect();
    if !chosen.is_empty() {
        let digest = md5::of_attributes(chosen.iter().map(|(n, v)| digest_of(n, v)).collect());
        let mut map = Map::new();
        for (name, value) in chosen {
            let mut fields = Map::new();
            fields.insert(
                "DataType".into(),
                Value::String(value.data_type().to_string()),
            );
            match (value.base_type(), value.data()) {
                (BaseType::Binary, AttributeData::Binary(bytes)) => {
                    fields.insert("BinaryValue".into(), Value::String(BASE64.encode(bytes)));
                }
                (_, AttributeData::Text(text)) => {
                    fields.insert("StringValue".into(), Value::String(text.clone()));
                }
                (_, AttributeData::Binary(bytes)) => {
                    fields.insert("BinaryValue".into(), Value::String(BASE64.encode(bytes)));
                }
            }
            map.insert(name.clone(), Value::Object(fields));
        }
        out.insert("MessageAttributes".into(), Value::Object(map));
        if let Some(digest) = digest {
            out.insert("MD5OfMessageAttributes".into(), Value::String(digest));
        }
    }
    Value::Object(out)
}

pub(super) async fn receive_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let max = opt_int(&call.params, "MaxNumberOfMessages", 1, RECEIVE_MAX)?.unwrap_or(1);
    let wait = opt_int(&call.params, "WaitTimeSeconds", 0, 20)?;
    let visibility = opt_int(&call.params, "VisibilityTimeout", 0, 43_200)?;
    let mut system: BTreeSet<String> = list(&call.params, "AttributeNames").into_iter().collect();
    system.extend(list(&call.params, "MessageSystemAttributeNames"));
    for name in &system {
        if name != "All" && !SYSTEM_NAMES.contains(&name.as_str()) {
            return Err(SqsError::invalid_attribute_name(format!(
                "Unknown Attribute {name}."
            )));
        }
    }
    let filters = list(&call.params, "MessageAttributeNames");
    let fifo = name.has_fifo_suffix();
    let attempt = opt_str(&call.params, "ReceiveRequestAttemptId").filter(|_| fifo);
    if let Some(attempt) = &attempt {
        let cached = call
            .state
            .sqs
            .attempts
            .lock()
            .get(&(name.clone(), attempt.clone()))
            .cloned();
        if let Some((at, deliveries)) = cached {
            if at.elapsed() < Duration::from_millis(DEDUP_WINDOW_MS) {
                let messages: Vec<Value> = deliveries
                    .iter()
                    .map(|d| received(&name, d, &system, &filters, fifo))
                    .collect();
                return Ok(if messages.is_empty() {
                    json!({})
                } else {
                    json!({"Messages": messages})
                });
            }
        }
    }
    let options = ReceiveOptions {
        max: max as u32,
        wait_ms: wait.map(|w| w as u64 * 1000),
        visibility_timeout_ms: visibility.map(|v| v as u64 * 1000),
    };
    // A receive that waits holds one of the caller's long-poll slots while it does.
    let _slot = match options.wait_ms {
        Some(wait_ms) if wait_ms > 0 => Some(
            call.state
                .caller_limits
                .take_for(crate::caller_limits::SlotKind::LongPoll, &call.who())
                .map_err(|error| SqsError::over_limit(error.to_string()))?,
        ),
        _ => None,
    };
    let deliveries = call.state.engine.receive(&name, options).await?;
    if let Some(attempt) = attempt {
        let mut attempts = call.state.sqs.attempts.lock();
        attempts.retain(|_, (at, _)| at.elapsed() < Duration::from_millis(DEDUP_WINDOW_MS));
        if attempts.len() < ATTEMPTS_MAX {
            attempts.insert(
                (name.clone(), attempt),
                (Instant::now(), deliveries.clone()),
            );
        }
    }
    let messages: Vec<Value> = deliveries
        .iter()
        .map(|d| received(&name, d, &system, &filters, fifo))
        .collect();
    Ok(if messages.is_empty() {
        json!({})
    } else {
        json!({"Messages": messages})
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn filters(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn attribute_filters_select_all_by_prefix_or_by_name() {
        let names = ["foo.a", "foobar", "bar"];
        let chosen = |f: &[&str]| -> Vec<&str> {
            let f = filters(f);
            names.iter().copied().filter(|n| selected(n, &f)).collect()
        };
        for all in [["All"], [".*"], ["*"]] {
            assert_eq!(chosen(&all), names);
        }
        assert_eq!(chosen(&["foo.*"]), ["foo.a", "foobar"]);
        assert_eq!(chosen(&["foo..*"]), ["foo.a"]);
        assert_eq!(chosen(&["foo", "bar"]), ["bar"]);
        assert_eq!(chosen(&[]), Vec::<&str>::new());
    }

    #[test]
    fn an_entry_counts_its_body_and_attribute_names_types_and_values() {
        let entry = json!({
            "MessageBody": "héllo",
            "MessageAttributes": {
                "s": {"DataType": "String", "StringValue": "abc"},
                "b": {"DataType": "Binary", "BinaryValue": BASE64.encode([0u8; 10])},
            },
        });
        let entry = entry.as_object().unwrap();
        assert_eq!(entry_bytes(entry), 6 + (1 + 6 + 3) + (1 + 6 + 10));
    }

    #[test]
    fn a_fifo_batch_needs_a_group_in_every_entry() {
        let entries = |v: Value| -> Vec<Map<String, Value>> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_object().unwrap().clone())
                .collect()
        };
        let no_group = entries(json!([{"MessageGroupId": "g"}, {"MessageDeduplicationId": "d"}]));
        let error = check_fifo_batch(&no_group).unwrap_err();
        assert_eq!(
            error.message,
            "The request must contain the parameter MessageGroupId."
        );
        assert_eq!(error.name, "InvalidParameterValue");
        let empty_group = entries(json!([{"MessageGroupId": ""}]));
        assert!(check_fifo_batch(&empty_group).is_err());
        let grouped = entries(json!([{"MessageGroupId": "g"}, {"MessageGroupId": "h"}]));
        assert!(check_fifo_batch(&grouped).is_ok());
    }
}
