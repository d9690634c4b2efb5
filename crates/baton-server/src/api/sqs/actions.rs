//! Every SQS action, over the engine. Parameters arrive in the JSON protocol's shape; results
//! leave in it (the query protocol renders them as XML).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::attributes::SYSTEM_TRACE_HEADER;
use baton_core::limits::{DEDUP_WINDOW_MS, MESSAGE_BYTES_MAX};
use baton_core::{
    AttributeData, AttributeValue, BaseType, DeadLetterPolicy, Delivery, MessageAttributes,
    QueueConfig, QueueName, ReceiptError, ReceiptHandle, SendEntry,
};
use baton_engine::{EngineError, QueueView, ReceiveOptions, RedriveOptions};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};

use super::error::SqsError;
use super::md5::{self, DigestAttribute, DigestValue};
use super::params::{self, list, object, opt_int, opt_str, req_str};
use super::{Call, ACCOUNT_ID, ATTEMPTS_MAX, MOVE_TASKS_MAX, REGION};

/// Entries in one batch call (as SQS).
const BATCH_ENTRIES_MAX: usize = 10;
/// Messages one receive returns at most (as SQS).
const RECEIVE_MAX: i64 = 10;
/// How long a purge blocks the next one (as SQS).
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

type Out = Result<Value, SqsError>;

pub async fn dispatch(action: &str, call: Call<'_>) -> Out {
    match action {
        "CreateQueue" => create_queue(call).await,
        "GetQueueUrl" => get_queue_url(call).await,
        "ListQueues" => list_queues(call).await,
        "DeleteQueue" => delete_queue(call).await,
        "PurgeQueue" => purge_queue(call).await,
        "GetQueueAttributes" => get_queue_attributes(call).await,
        "SetQueueAttributes" => set_queue_attributes(call).await,
        "SendMessage" => send_message(call).await,
        "SendMessageBatch" => send_message_batch(call).await,
        "ReceiveMessage" => receive_message(call).await,
        "DeleteMessage" => delete_message(call).await,
        "DeleteMessageBatch" => delete_message_batch(call).await,
        "ChangeMessageVisibility" => change_message_visibility(call).await,
        "ChangeMessageVisibilityBatch" => change_message_visibility_batch(call).await,
        "TagQueue" => tag_queue(call).await,
        "UntagQueue" => untag_queue(call).await,
        "ListQueueTags" => list_queue_tags(call).await,
        "ListDeadLetterSourceQueues" => list_dead_letter_source_queues(call).await,
        "AddPermission" => add_permission(call).await,
        "RemovePermission" => remove_permission(call).await,
        "StartMessageMoveTask" => start_message_move_task(call).await,
        "ListMessageMoveTasks" => list_message_move_tasks(call).await,
        "CancelMessageMoveTask" => cancel_message_move_task(call).await,
        other => Err(SqsError::invalid_action(format!(
            "The action {other} is not valid for this endpoint."
        ))),
    }
}

fn queue_url(host: &str, name: &QueueName) -> String {
    format!("http://{host}/{ACCOUNT_ID}/{name}")
}

fn queue_arn(name: &QueueName) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

fn name_from_arn(arn: &str) -> Result<QueueName, SqsError> {
    let name = arn
        .strip_prefix("arn:")
        .and_then(|_| arn.rsplit(':').next())
        .ok_or_else(|| {
            SqsError::invalid_parameter_value(format!("Value {arn} for parameter Arn is invalid."))
        })?;
    QueueName::new(name).map_err(|_| {
        SqsError::invalid_parameter_value(format!("Value {arn} for parameter Arn is invalid."))
    })
}

fn valid_queue_name(name: &str) -> Result<QueueName, SqsError> {
    QueueName::new(name).map_err(|_| {
        SqsError::invalid_parameter_value(format!(
            "Value {name} for parameter QueueName is invalid. Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
        ))
    })
}

/// The queue a request names: `QueueUrl` (its last path segment) or the request path.
fn target_queue(call: &Call<'_>) -> Result<QueueName, SqsError> {
    let raw = match opt_str(&call.params, "QueueUrl") {
        Some(url) => url
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        None => call.path_queue.clone().ok_or_else(|| {
            SqsError::missing_parameter("The request must contain the parameter QueueUrl.")
        })?,
    };
    QueueName::new(&raw)
        .map_err(|_| SqsError::queue_does_not_exist("The specified queue does not exist."))
}

async fn view(call: &Call<'_>, name: &QueueName) -> Result<QueueView, SqsError> {
    Ok(call.state.engine.get_queue(name).await?)
}

// ---------------------------------------------------------------------------------------------
// Queue attributes

/// Attributes GetQueueAttributes can name, in the order `All` lists them.
const READABLE: [&str; 21] = [
    "All",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
];

/// Attributes kept verbatim in the queue's metadata.
const META_ATTRIBUTES: [&str; 7] = [
    "Policy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

fn int_attribute(name: &str, value: &str, lo: i64, hi: i64) -> Result<i64, SqsError> {
    match value.trim().parse::<i64>() {
        Ok(n) if lo <= n && n <= hi => Ok(n),
        _ => Err(SqsError::invalid_attribute_value(format!(
            "Invalid value for the parameter {name}."
        ))),
    }
}

/// Applies SQS attributes to a queue's config and metadata attributes.
fn apply_attributes(
    config: &mut QueueConfig,
    meta: &mut BTreeMap<String, String>,
    attributes: &[(String, String)],
    creating: bool,
) -> Result<(), SqsError> {
    for (name, value) in attributes {
        match name.as_str() {
            "DelaySeconds" => config.delay_ms = int_attribute(name, value, 0, 900)? as u64 * 1000,
            "MaximumMessageSize" => {
                config.max_message_bytes =
                    int_attribute(name, value, 1024, i64::from(MESSAGE_BYTES_MAX))? as u32
            }
            "MessageRetentionPeriod" => {
                config.retention_ms = int_attribute(name, value, 60, 1_209_600)? as u64 * 1000
            }
            "ReceiveMessageWaitTimeSeconds" => {
                config.receive_wait_ms = int_attribute(name, value, 0, 20)? as u64 * 1000
            }
            "VisibilityTimeout" => {
                config.visibility_timeout_ms = int_attribute(name, value, 0, 43_200)? as u64 * 1000
            }
            "RedrivePolicy" => config.dead_letter = redrive_policy(value)?,
            "FifoQueue" => {
                let fifo = params::parse_bool(name, value)?;
                if !creating && fifo != config.fifo {
                    return Err(SqsError::invalid_attribute_name(
                        "Unknown Attribute FifoQueue.",
                    ));
                }
                config.fifo = fifo;
            }
            "ContentBasedDeduplication" => {
                config.content_based_dedup = params::parse_bool(name, value)?
            }
            "SqsManagedSseEnabled" => {
                params::parse_bool(name, value)?;
                meta.insert(name.clone(), value.to_ascii_lowercase());
            }
            "KmsDataKeyReusePeriodSeconds" => {
                int_attribute(name, value, 60, 86_400)?;
                meta.insert(name.clone(), value.trim().to_string());
            }
            "RedriveAllowPolicy" => {
                check_redrive_allow_policy(value)?;
                meta.insert(name.clone(), value.clone());
            }
            "Policy" if value.is_empty() => {
                meta.remove(name);
            }
            "Policy" => {
                serde_json::from_str::<Value>(value).map_err(|_| {
                    SqsError::invalid_attribute_value("Invalid value for the parameter Policy.")
                })?;
                meta.insert(name.clone(), value.clone());
            }
            other if META_ATTRIBUTES.contains(&other) => {
                meta.insert(name.clone(), value.clone());
            }
            other => {
                return Err(SqsError::invalid_attribute_name(format!(
                    "Unknown Attribute {other}."
                )))
            }
        }
    }
    if config.content_based_dedup && !config.fifo {
        return Err(SqsError::invalid_attribute_name(
            "Unknown Attribute ContentBasedDeduplication.",
        ));
    }
    Ok(())
}

fn redrive_policy(value: &str) -> Result<Option<DeadLetterPolicy>, SqsError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    let invalid = || {
        SqsError::invalid_attribute_value(format!(
            "Value {value} for parameter RedrivePolicy is invalid."
        ))
    };
    let policy: Value = serde_json::from_str(value).map_err(|_| invalid())?;
    let arn = policy
        .get("deadLetterTargetArn")
        .and_then(params::text)
        .ok_or_else(invalid)?;
    let max_receive_count = policy
        .get("maxReceiveCount")
        .and_then(params::text)
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(invalid)?;
    Ok(Some(DeadLetterPolicy {
        queue: name_from_arn(&arn).map_err(|_| invalid())?,
        max_receive_count,
    }))
}

fn check_redrive_allow_policy(value: &str) -> Result<(), SqsError> {
    let invalid = || {
        SqsError::invalid_attribute_value(format!(
            "Value {value} for parameter RedriveAllowPolicy is invalid."
        ))
    };
    let policy: Value = serde_json::from_str(value).map_err(|_| invalid())?;
    match policy.get("redrivePermission").and_then(Value::as_str) {
        Some("allowAll") | Some("denyAll") => Ok(()),
        Some("byQueue") => match policy.get("sourceQueueArns") {
            Some(Value::Array(arns)) if !arns.is_empty() && arns.len() <= 10 => Ok(()),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

fn attribute_value(view: &QueueView, name: &str) -> Option<String> {
    let config = &view.config;
    let stats = &view.stats;
    let meta = &view.meta.attributes;
    Some(match name {
        "ApproximateNumberOfMessages" => stats.visible.to_string(),
        "ApproximateNumberOfMessagesNotVisible" => stats.in_flight.to_string(),
        "ApproximateNumberOfMessagesDelayed" => stats.delayed.to_string(),
        "CreatedTimestamp" => (view.meta.created_at.as_millis() / 1000).to_string(),
        "LastModifiedTimestamp" => (view.meta.modified_at.as_millis() / 1000).to_string(),
        "QueueArn" => queue_arn(&view.name),
        "DelaySeconds" => (config.delay_ms / 1000).to_string(),
        "MaximumMessageSize" => config.max_message_bytes.to_string(),
        "MessageRetentionPeriod" => (config.retention_ms / 1000).to_string(),
        "ReceiveMessageWaitTimeSeconds" => (config.receive_wait_ms / 1000).to_string(),
        "VisibilityTimeout" => (config.visibility_timeout_ms / 1000).to_string(),
        "RedrivePolicy" => {
            let policy = config.dead_letter.as_ref()?;
            json!({"deadLetterTargetArn": queue_arn(&policy.queue), "maxReceiveCount": policy.max_receive_count})
                .to_string()
        }
        "FifoQueue" => {
            if !config.fifo {
                return None;
            }
            "true".to_string()
        }
        "ContentBasedDeduplication" => {
            if !config.fifo {
                return None;
            }
            config.content_based_dedup.to_string()
        }
        "SqsManagedSseEnabled" => meta
            .get(name)
            .cloned()
            .unwrap_or_else(|| "false".to_string()),
        "DeduplicationScope" | "FifoThroughputLimit" => {
            if !config.fifo {
                return None;
            }
            meta.get(name).cloned().unwrap_or_else(|| {
                if name == "DeduplicationScope" {
                    "queue"
                } else {
                    "perQueue"
                }
                .to_string()
            })
        }
        other => meta.get(other)?.clone(),
    })
}

fn attributes_of(view: &QueueView, names: &[String]) -> Result<Map<String, Value>, SqsError> {
    let mut out = Map::new();
    let all = names.iter().any(|n| n == "All");
    for name in names {
        if !READABLE.contains(&name.as_str()) && name != "FifoThroughputLimit" {
            return Err(SqsError::invalid_attribute_name(format!(
                "Unknown Attribute {name}."
            )));
        }
    }
    let wanted: Vec<&str> = if all {
        READABLE
            .iter()
            .skip(1)
            .copied()
            .chain(["FifoThroughputLimit"])
            .collect()
    } else {
        names.iter().map(String::as_str).collect()
    };
    for name in wanted {
        if let Some(value) = attribute_value(view, name) {
            out.insert(name.to_string(), Value::String(value));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Queues

async fn create_queue(call: Call<'_>) -> Out {
    let name = valid_queue_name(&req_str(&call.params, "QueueName")?)?;
    if let Some(reason) = crate::callbacks::reserved_name(&name) {
        return Err(SqsError::invalid_parameter_value(format!(
            "Value {name} for parameter QueueName is invalid. Reason: {reason}."
        )));
    }
    let attributes = params::string_map(&call.params, "Attributes");
    let _meta = crate::push::meta_attributes_lock().await;
    let mut tags = params::string_map(&call.params, "tags");
    tags.extend(params::string_map(&call.params, "Tags"));
    if let Ok(existing) = call.state.engine.get_queue(&name).await {
        // Idempotent when every given attribute matches the existing queue.
        for (attribute, value) in &attributes {
            let current = attribute_value(&existing, attribute).unwrap_or_default();
            let same = match attribute.as_str() {
                "FifoQueue" | "ContentBasedDeduplication" | "SqsManagedSseEnabled" => {
                    current.eq_ignore_ascii_case(value)
                        || (current.is_empty() && value.eq_ignore_ascii_case("false"))
                }
                "RedrivePolicy" => {
                    redrive_policy(value).ok().flatten() == existing.config.dead_letter
                }
                _ => &current == value,
            };
            if !same {
                return Err(SqsError::queue_name_exists(format!(
                    "A queue already exists with the same name and a different value for attribute {attribute}"
                )));
            }
        }
        return Ok(json!({"QueueUrl": queue_url(&call.host, &name)}));
    }
    let mut config = QueueConfig {
        fifo: false,
        ..QueueConfig::default()
    };
    let mut meta = BTreeMap::new();
    apply_attributes(&mut config, &mut meta, &attributes, true)?;
    if config.fifo != name.has_fifo_suffix() {
        return Err(SqsError::invalid_parameter_value(
            "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.",
        ));
    }
    match call.state.engine.create_queue(name.clone(), config).await {
        Ok(_) => {}
        Err(EngineError::QueueExists { .. }) => {
            // Created concurrently: add to its metadata rather than replace it, so Baton's own
            // keys (such as a push subscription's `baton.push`) stay.
            let existing = view(&call, &name).await?.meta.attributes;
            let ours = std::mem::take(&mut meta);
            meta = existing;
            meta.extend(ours);
        }
        Err(error) => return Err(error.into()),
    }
    if !meta.is_empty() || !tags.is_empty() {
        let tags = (!tags.is_empty()).then(|| tags.into_iter().collect());
        let meta = (!meta.is_empty()).then_some(meta);
        call.state.engine.set_queue_meta(&name, tags, meta).await?;
    }
    Ok(json!({"QueueUrl": queue_url(&call.host, &name)}))
}

async fn get_queue_url(call: Call<'_>) -> Out {
    let name = req_str(&call.params, "QueueName")?;
    let name = QueueName::new(&name)
        .map_err(|_| SqsError::queue_does_not_exist("The specified queue does not exist."))?;
    view(&call, &name).await?;
    Ok(json!({"QueueUrl": queue_url(&call.host, &name)}))
}

async fn list_queues(call: Call<'_>) -> Out {
    let prefix = opt_str(&call.params, "QueueNamePrefix").unwrap_or_default();
    let max = opt_int(&call.params, "MaxResults", 1, 1000)?;
    let after = match opt_str(&call.params, "NextToken") {
        Some(token) => Some(
            BASE64
                .decode(token.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| SqsError::invalid_parameter_value("Invalid NextToken."))?,
        ),
        None => None,
    };
    let mut names: Vec<QueueName> = call
        .state
        .engine
        .list_queues()
        .await?
        .into_iter()
        .map(|v| v.name)
        .filter(|n| n.as_str().starts_with(&prefix))
        .filter(|n| after.as_deref().is_none_or(|after| n.as_str() > after))
        .collect();
    let mut out = Map::new();
    if let Some(max) = max {
        let max = max as usize;
        if names.len() > max {
            names.truncate(max);
            if let Some(last) = names.last() {
                out.insert(
                    "NextToken".into(),
                    Value::String(BASE64.encode(last.as_str())),
                );
            }
        }
    } else {
        names.truncate(1000);
    }
    if !names.is_empty() {
        out.insert(
            "QueueUrls".into(),
            Value::Array(
                names
                    .iter()
                    .map(|n| Value::String(queue_url(&call.host, n)))
                    .collect(),
            ),
        );
    }
    Ok(Value::Object(out))
}

async fn delete_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    call.state.engine.delete_queue(&name).await?;
    call.state.sqs.last_purge.lock().remove(&name);
    Ok(json!({}))
}

async fn purge_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    view(&call, &name).await?;
    {
        let mut last = call.state.sqs.last_purge.lock();
        if let Some(at) = last.get(&name) {
            if at.elapsed() < PURGE_INTERVAL {
                return Err(SqsError::purge_queue_in_progress(format!(
                    "Only one PurgeQueue operation on {name} is allowed every 60 seconds."
                )));
            }
        }
        last.insert(name.clone(), Instant::now());
    }
    call.state.engine.purge_queue(&name).await?;
    Ok(json!({}))
}

async fn get_queue_attributes(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let names = list(&call.params, "AttributeNames");
    let view = view(&call, &name).await?;
    let attributes = attributes_of(&view, &names)?;
    if attributes.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Attributes": attributes}))
}

async fn set_queue_attributes(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let attributes = params::string_map(&call.params, "Attributes");
    if object(&call.params, "Attributes").is_none() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter Attributes.",
        ));
    }
    let _meta = crate::push::meta_attributes_lock().await;
    let view = view(&call, &name).await?;
    let mut config = view.config.clone();
    let mut meta = view.meta.attributes.clone();
    apply_attributes(&mut config, &mut meta, &attributes, false)?;
    if config != view.config {
        call.state.engine.update_queue(&name, config).await?;
    }
    if meta != view.meta.attributes {
        call.state
            .engine
            .set_queue_meta(&name, None, Some(meta))
            .await?;
    }
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Messages

/// A message parsed from SendMessage or one SendMessageBatch entry.
struct Outgoing {
    entry: SendEntry,
    md5_body: String,
    md5_attributes: Option<String>,
    md5_system: Option<String>,
    size_bytes: u64,
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

fn outgoing(params: &Map<String, Value>, fifo: bool) -> Result<Outgoing, SqsError> {
    let body = req_str(params, "MessageBody")?;
    if body.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter MessageBody.",
        ));
    }
    if let Some(bad) = body
        .chars()
        .find(|c| !baton_core::attributes::is_xml_char(*c))
    {
        return Err(SqsError::invalid_message_contents(format!(
            "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            bad as u32
        )));
    }
    let delay = opt_int(params, "DelaySeconds", 0, 900)?;
    if fifo && delay.is_some_and(|d| d > 0) {
        return Err(SqsError::invalid_parameter_value(
            "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
        ));
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
    let size_bytes = body.len() as u64 + attributes.size_bytes();
    Ok(Outgoing {
        md5_body: md5::of_body(&body),
        md5_attributes,
        md5_system,
        size_bytes,
        entry: SendEntry {
            id: baton_engine::new_message_id(),
            body: body.into(),
            attributes,
            delay_ms: delay.map(|d| d as u64 * 1000),
            group_id,
            dedup_id,
            notify: None,
        },
    })
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

async fn send_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let queue = view(&call, &name).await?;
    let fifo = queue.config.fifo;
    let outgoing = outgoing(&call.params, fifo)?;
    if outgoing.size_bytes > u64::from(queue.config.max_message_bytes) {
        return Err(SqsError::invalid_parameter_value(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            queue.config.max_message_bytes
        )));
    }
    let outcomes = call
        .state
        .engine
        .send(&name, vec![outgoing.entry.clone()])
        .await?;
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

/// Checks a batch's entries: 1 to 10, ids valid and distinct.
fn batch_entries(params: &Map<String, Value>) -> Result<Vec<Map<String, Value>>, SqsError> {
    let entries: Vec<Map<String, Value>> = match params.get("Entries") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_object().cloned())
            .collect(),
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return Err(SqsError::empty_batch_request(
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        ));
    }
    if entries.len() > BATCH_ENTRIES_MAX {
        return Err(SqsError::too_many_entries_in_batch_request(format!(
            "Maximum number of entries per request are {BATCH_ENTRIES_MAX}. You have sent {}.",
            entries.len()
        )));
    }
    let mut seen = HashSet::new();
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        let valid = !id.is_empty()
            && id.len() <= 80
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(SqsError::invalid_batch_entry_id(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(SqsError::batch_entry_ids_not_distinct(format!(
                "Id {id} repeated."
            )));
        }
    }
    Ok(entries)
}

fn failed(id: &str, error: &SqsError) -> Value {
    json!({"Id": id, "SenderFault": error.sender, "Code": error.name, "Message": error.message})
}

async fn send_message_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params)?;
    let queue = view(&call, &name).await?;
    let fifo = queue.config.fifo;
    let mut prepared = Vec::new();
    let mut failures = Vec::new();
    let mut total_bytes = 0u64;
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        match outgoing(entry, fifo) {
            Ok(message) if message.size_bytes > u64::from(queue.config.max_message_bytes) => failures.push(failed(
                &id,
                &SqsError::invalid_parameter_value(format!(
                    "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
                    queue.config.max_message_bytes
                )),
            )),
            Ok(message) => {
                total_bytes += message.size_bytes;
                prepared.push((id, message));
            }
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    if total_bytes > u64::from(MESSAGE_BYTES_MAX) {
        return Err(SqsError::batch_request_too_long(format!(
            "Batch requests cannot be longer than {MESSAGE_BYTES_MAX} bytes. You have sent {total_bytes} bytes."
        )));
    }
    let mut successful = Vec::new();
    if !prepared.is_empty() {
        let batch: Vec<SendEntry> = prepared.iter().map(|(_, m)| m.entry.clone()).collect();
        match call.state.engine.send(&name, batch).await {
            Ok(outcomes) => {
                for ((id, message), outcome) in prepared.iter().zip(outcomes) {
                    let mut entry = sent(message, outcome.id.to_string(), outcome.seq, fifo);
                    entry.insert("Id".into(), Value::String(id.clone()));
                    successful.push(Value::Object(entry));
                }
            }
            Err(error) => {
                let error = SqsError::from(error);
                failures.extend(prepared.iter().map(|(id, _)| failed(id, &error)));
            }
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}

/// Whether a message attribute name is selected by `MessageAttributeNames`.
fn selected(name: &str, filters: &[String]) -> bool {
    filters.iter().any(|filter| match filter.as_str() {
        "All" | ".*" => true,
        prefix if prefix.ends_with(".*") => name.starts_with(prefix.trim_end_matches('*')),
        exact => exact == name,
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

async fn receive_message(call: Call<'_>) -> Out {
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
    let queue = view(&call, &name).await?;
    let fifo = queue.config.fifo;
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

fn receipt(text: &str) -> Result<ReceiptHandle, SqsError> {
    ReceiptHandle::parse(text).ok_or_else(|| {
        SqsError::receipt_handle_is_invalid(format!(
            "The input receipt handle \"{text}\" is not a valid receipt handle."
        ))
    })
}

/// Deletes one message: a receipt whose lease ended still answers success (as SQS does when
/// the handle is not the latest one), one this queue never issued is invalid.
async fn delete_one(call: &Call<'_>, name: &QueueName, handle: &str) -> Result<(), SqsError> {
    let parsed = receipt(handle)?;
    let results = call.state.engine.ack(name, vec![parsed]).await?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err(ReceiptError::Stale)) => Ok(()),
        Some(Err(ReceiptError::Invalid)) | None => Err(SqsError::receipt_handle_is_invalid(
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )),
    }
}

async fn delete_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    view(&call, &name).await?;
    delete_one(&call, &name, &handle).await?;
    Ok(json!({}))
}

async fn delete_message_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params)?;
    view(&call, &name).await?;
    // Parse every entry, then ack all valid receipts in one engine call (one log record, one
    // wait for durability) rather than one call per entry.
    let mut parsed = Vec::with_capacity(entries.len());
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        let handle = entry
            .get("ReceiptHandle")
            .and_then(params::text)
            .unwrap_or_default();
        let receipt = match entry.get("ReceiptHandle").and_then(params::text) {
            Some(handle) => receipt(&handle),
            None => Err(SqsError::missing_parameter(
                "The request must contain the parameter ReceiptHandle.",
            )),
        };
        parsed.push((id, handle, receipt));
    }
    let valid: Vec<ReceiptHandle> = parsed
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().ok().copied())
        .collect();
    let mut results = call.state.engine.ack(&name, valid).await?.into_iter();
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for (id, handle, receipt) in parsed {
        let outcome = match receipt {
            Err(error) => Err(error),
            // As for DeleteMessage: a receipt whose lease ended still answers success.
            Ok(_) => match results.next() {
                Some(Ok(_)) | Some(Err(ReceiptError::Stale)) => Ok(()),
                Some(Err(ReceiptError::Invalid)) | None => {
                    Err(SqsError::receipt_handle_is_invalid(format!(
                        "The input receipt handle \"{handle}\" is not a valid receipt handle."
                    )))
                }
            },
        };
        match outcome {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}

async fn change_one(
    call: &Call<'_>,
    name: &QueueName,
    handle: &str,
    timeout: i64,
) -> Result<(), SqsError> {
    let parsed = receipt(handle)?;
    call.state
        .engine
        .change_visibility(name, parsed, timeout as u64 * 1000)
        .await?;
    Ok(())
}

async fn change_message_visibility(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    let timeout = opt_int(&call.params, "VisibilityTimeout", 0, 43_200)?.ok_or_else(|| {
        SqsError::missing_parameter("The request must contain the parameter VisibilityTimeout.")
    })?;
    view(&call, &name).await?;
    change_one(&call, &name, &handle, timeout).await?;
    Ok(json!({}))
}

async fn change_message_visibility_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params)?;
    view(&call, &name).await?;
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        let result = async {
            let handle = entry
                .get("ReceiptHandle")
                .and_then(params::text)
                .ok_or_else(|| {
                    SqsError::missing_parameter(
                        "The request must contain the parameter ReceiptHandle.",
                    )
                })?;
            let timeout = opt_int(entry, "VisibilityTimeout", 0, 43_200)?.unwrap_or(0);
            change_one(&call, &name, &handle, timeout).await
        }
        .await;
        match result {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}

// ---------------------------------------------------------------------------------------------
// Tags, permissions, dead-letter sources

async fn tag_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let view = view(&call, &name).await?;
    let mut tags = view.meta.tags.clone();
    tags.extend(params::string_map(&call.params, "Tags"));
    call.state
        .engine
        .set_queue_meta(&name, Some(tags), None)
        .await?;
    Ok(json!({}))
}

async fn untag_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let view = view(&call, &name).await?;
    let mut tags = view.meta.tags.clone();
    for key in list(&call.params, "TagKeys") {
        tags.remove(&key);
    }
    call.state
        .engine
        .set_queue_meta(&name, Some(tags), None)
        .await?;
    Ok(json!({}))
}

async fn list_queue_tags(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let view = view(&call, &name).await?;
    if view.meta.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": view.meta.tags}))
}

async fn list_dead_letter_source_queues(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    view(&call, &name).await?;
    let max = opt_int(&call.params, "MaxResults", 1, 1000)?;
    let after = opt_str(&call.params, "NextToken")
        .and_then(|t| BASE64.decode(t.as_bytes()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let mut sources: Vec<QueueName> = call
        .state
        .engine
        .list_queues()
        .await?
        .into_iter()
        .filter(|v| {
            v.config
                .dead_letter
                .as_ref()
                .is_some_and(|d| d.queue == name)
        })
        .map(|v| v.name)
        .filter(|n| after.as_deref().is_none_or(|a| n.as_str() > a))
        .collect();
    let mut out = Map::new();
    if let Some(max) = max {
        if sources.len() > max as usize {
            sources.truncate(max as usize);
            if let Some(last) = sources.last() {
                out.insert(
                    "NextToken".into(),
                    Value::String(BASE64.encode(last.as_str())),
                );
            }
        }
    }
    out.insert(
        "queueUrls".into(),
        Value::Array(
            sources
                .iter()
                .map(|n| Value::String(queue_url(&call.host, n)))
                .collect(),
        ),
    );
    Ok(Value::Object(out))
}

fn policy_of(view: &QueueView) -> Value {
    view.meta
        .attributes
        .get("Policy")
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Id": format!("{}/SQSDefaultPolicy", queue_arn(&view.name)), "Statement": []}))
}

async fn store_policy(
    call: &Call<'_>,
    name: &QueueName,
    view: &QueueView,
    policy: Value,
) -> Result<(), SqsError> {
    let mut attributes = view.meta.attributes.clone();
    let empty = policy
        .get("Statement")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if empty {
        attributes.remove("Policy");
    } else {
        attributes.insert("Policy".to_string(), policy.to_string());
    }
    call.state
        .engine
        .set_queue_meta(name, None, Some(attributes))
        .await?;
    Ok(())
}

async fn add_permission(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let label = req_str(&call.params, "Label")?;
    let accounts = list(&call.params, "AWSAccountIds");
    let actions = list(&call.params, "Actions");
    if accounts.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter AWSAccountIds.",
        ));
    }
    if actions.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter Actions.",
        ));
    }
    let _meta = crate::push::meta_attributes_lock().await;
    let view = view(&call, &name).await?;
    let mut policy = policy_of(&view);
    let statements = policy["Statement"]
        .as_array_mut()
        .ok_or_else(|| SqsError::internal("policy without statements"))?;
    if statements.iter().any(|s| s["Sid"] == label) {
        return Err(SqsError::invalid_parameter_value(format!(
            "Value {label} for parameter Label is invalid. Reason: Already exists."
        )));
    }
    statements.push(json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect::<Vec<_>>()},
        "Action": actions.iter().map(|a| format!("SQS:{a}")).collect::<Vec<_>>(),
        "Resource": queue_arn(&name),
    }));
    store_policy(&call, &name, &view, policy).await?;
    Ok(json!({}))
}

async fn remove_permission(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let label = req_str(&call.params, "Label")?;
    let _meta = crate::push::meta_attributes_lock().await;
    let view = view(&call, &name).await?;
    let mut policy = policy_of(&view);
    let statements = policy["Statement"]
        .as_array_mut()
        .ok_or_else(|| SqsError::internal("policy without statements"))?;
    let before = statements.len();
    statements.retain(|s| s["Sid"] != label);
    if statements.len() == before {
        return Err(SqsError::invalid_parameter_value(format!(
            "Value {label} for parameter Label is invalid. Reason: can't find label on existing policy."
        )));
    }
    store_policy(&call, &name, &view, policy).await?;
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Message move tasks

/// A redrive running in the background, as `StartMessageMoveTask` describes it.
pub struct MoveTask {
    handle: String,
    source: QueueName,
    destination: Option<QueueName>,
    rate_per_s: Option<u64>,
    started_at_ms: u64,
    to_move: u64,
    moved: AtomicU64,
    cancel: AtomicBool,
    status: Mutex<&'static str>,
    failure: Mutex<Option<String>>,
}

impl MoveTask {
    fn describe(&self) -> Value {
        let status = *self.status.lock();
        let mut out = json!({
            "Status": status,
            "SourceArn": queue_arn(&self.source),
            "ApproximateNumberOfMessagesMoved": self.moved.load(Ordering::Relaxed),
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_at_ms,
        });
        if status == "RUNNING" {
            out["TaskHandle"] = Value::String(self.handle.clone());
        }
        if let Some(destination) = &self.destination {
            out["DestinationArn"] = Value::String(queue_arn(destination));
        }
        if let Some(rate) = self.rate_per_s {
            out["MaxNumberOfMessagesPerSecond"] = json!(rate);
        }
        if let Some(failure) = self.failure.lock().clone() {
            out["FailureReason"] = Value::String(failure);
        }
        out
    }
}

async fn start_message_move_task(call: Call<'_>) -> Out {
    let source = name_from_arn(&req_str(&call.params, "SourceArn")?)?;
    let destination = opt_str(&call.params, "DestinationArn")
        .map(|arn| name_from_arn(&arn))
        .transpose()?;
    let rate = opt_int(&call.params, "MaxNumberOfMessagesPerSecond", 1, 500)?.map(|r| r as u64);
    let source_view = call.state.engine.get_queue(&source).await.map_err(|_| {
        SqsError::resource_not_found(
            "The resource that you specified for the SourceArn parameter doesn't exist.",
        )
    })?;
    let is_dead_letter_queue = call.state.engine.list_queues().await?.iter().any(|v| {
        v.config
            .dead_letter
            .as_ref()
            .is_some_and(|d| d.queue == source)
    });
    if !is_dead_letter_queue {
        return Err(SqsError::invalid_parameter_value(
            "Source queue must be configured as a Dead Letter Queue.",
        ));
    }
    if let Some(destination) = &destination {
        view(&call, destination).await?;
    }
    let mut tasks = call.state.sqs.tasks.lock();
    if tasks
        .iter()
        .any(|t| t.source == source && *t.status.lock() == "RUNNING")
    {
        return Err(SqsError::unsupported_operation("There is already a task running. Only one active task is allowed for a source queue arn at a given time."));
    }
    let task = Arc::new(MoveTask {
        handle: BASE64.encode(format!("{}:{}", uuid::Uuid::new_v4(), source)),
        source: source.clone(),
        destination,
        rate_per_s: rate,
        started_at_ms: call.state.engine.now().as_millis(),
        to_move: source_view.stats.visible + source_view.stats.delayed,
        moved: AtomicU64::new(0),
        cancel: AtomicBool::new(false),
        status: Mutex::new("RUNNING"),
        failure: Mutex::new(None),
    });
    if tasks.len() >= MOVE_TASKS_MAX {
        if let Some(done) = tasks.iter().position(|t| *t.status.lock() != "RUNNING") {
            tasks.remove(done);
        }
    }
    tasks.push(task.clone());
    drop(tasks);
    let engine = call.state.engine.clone();
    let handle = task.handle.clone();
    tokio::spawn(async move {
        let chunk = task.rate_per_s.unwrap_or(1000);
        loop {
            if task.cancel.load(Ordering::Relaxed) {
                *task.status.lock() = "CANCELLED";
                return;
            }
            let options = RedriveOptions {
                max: Some(chunk),
                to: task.destination.clone(),
            };
            match engine.redrive(&task.source, options).await {
                Ok(0) => {
                    *task.status.lock() = "COMPLETED";
                    return;
                }
                Ok(n) => {
                    task.moved.fetch_add(n, Ordering::Relaxed);
                }
                Err(error) => {
                    *task.failure.lock() = Some(error.to_string());
                    *task.status.lock() = "FAILED";
                    return;
                }
            }
            if task.rate_per_s.is_some() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    });
    Ok(json!({"TaskHandle": handle}))
}

async fn list_message_move_tasks(call: Call<'_>) -> Out {
    let source = name_from_arn(&req_str(&call.params, "SourceArn")?)?;
    let max = opt_int(&call.params, "MaxResults", 1, 10)?.unwrap_or(1) as usize;
    view(&call, &source).await.map_err(|_| {
        SqsError::resource_not_found(
            "The resource that you specified for the SourceArn parameter doesn't exist.",
        )
    })?;
    let tasks = call.state.sqs.tasks.lock();
    let results: Vec<Value> = tasks
        .iter()
        .rev()
        .filter(|t| t.source == source)
        .take(max)
        .map(|t| t.describe())
        .collect();
    Ok(json!({"Results": results}))
}

async fn cancel_message_move_task(call: Call<'_>) -> Out {
    let handle = req_str(&call.params, "TaskHandle")?;
    let task = call
        .state
        .sqs
        .tasks
        .lock()
        .iter()
        .find(|t| t.handle == handle)
        .cloned()
        .ok_or_else(|| SqsError::resource_not_found("The task handle does not exist."))?;
    if *task.status.lock() != "RUNNING" {
        return Err(SqsError::unsupported_operation(
            "Only a running task can be cancelled.",
        ));
    }
    task.cancel.store(true, Ordering::Relaxed);
    *task.status.lock() = "CANCELLING";
    Ok(json!({"ApproximateNumberOfMessagesMoved": task.moved.load(Ordering::Relaxed)}))
}
