//! Every SQS action, over the engine: the dispatch, the queue actions and the helpers the
//! others share (`messages`, `receipts`, `queue_meta`, `move_tasks` hold the rest).
//! Parameters arrive in the JSON protocol's shape; results leave in it (the query protocol
//! renders them as XML).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::limits::MESSAGE_BYTES_MAX;
use baton_core::{DeadLetterPolicy, QueueConfig, QueueName};
use baton_engine::{EngineError, MetaPatch, QueueView};
use serde_json::{json, Map, Value};

use super::error::SqsError;
use super::params::{self, list, object, opt_int, opt_str, req_str};
use super::{Call, ACCOUNT_ID, REGION};

/// Entries in one batch call (as SQS).
const BATCH_ENTRIES_MAX: usize = 10;
/// How long a purge blocks the next one (as SQS).
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

pub(super) type Out = Result<Value, SqsError>;

pub async fn dispatch(action: &str, call: Call<'_>) -> Out {
    use super::messages::*;
    use super::move_tasks::*;
    use super::queue_meta::*;
    use super::receipts::*;
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

pub(super) fn queue_url(host: &str, name: &QueueName) -> String {
    format!("http://{host}/{ACCOUNT_ID}/{name}")
}

pub(super) fn queue_arn(name: &QueueName) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

pub(super) fn name_from_arn(arn: &str) -> Result<QueueName, SqsError> {
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

pub(super) fn valid_queue_name(name: &str) -> Result<QueueName, SqsError> {
    QueueName::new(name).map_err(|_| {
        SqsError::invalid_parameter_value(format!(
            "Value {name} for parameter QueueName is invalid. Reason: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length."
        ))
    })
}

/// The queue a request names: `QueueUrl` (its last path segment) or the request path.
pub(super) fn target_queue(call: &Call<'_>) -> Result<QueueName, SqsError> {
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

pub(super) async fn view(call: &Call<'_>, name: &QueueName) -> Result<QueueView, SqsError> {
    Ok(call.state.engine.get_queue(name).await?)
}

/// A request's own error, unless its queue does not exist: SQS names a missing queue before
/// anything else. Only error paths call it, so a good data request costs one engine call
/// (the operation's own, which reports a missing queue by itself).
pub(super) async fn unless_missing(call: &Call<'_>, name: &QueueName, error: SqsError) -> SqsError {
    match call.state.engine.get_queue(name).await {
        Err(missing @ baton_engine::EngineError::QueueNotFound { .. }) => SqsError::from(missing),
        _ => error,
    }
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
    if let Some(reason) = crate::service::queues::reserved_name(&name) {
        return Err(SqsError::invalid_parameter_value(format!(
            "Value {name} for parameter QueueName is invalid. Reason: {reason}."
        )));
    }
    let attributes = params::string_map(&call.params, "Attributes");
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
        // Created concurrently: the patch adds to its metadata rather than replacing it, so
        // keys set meanwhile stay.
        Ok(_) | Err(EngineError::QueueExists { .. }) => {}
        Err(error) => return Err(error.into()),
    }
    if !meta.is_empty() || !tags.is_empty() {
        let patch = MetaPatch {
            put_tags: tags.into_iter().collect(),
            put_attributes: meta,
            ..MetaPatch::default()
        };
        call.state.engine.update_queue_meta(&name, patch).await?;
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
        .filter(|n| call.sees(n))
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
    let view = view(&call, &name).await?;
    let mut config = view.config.clone();
    let mut meta = view.meta.attributes.clone();
    apply_attributes(&mut config, &mut meta, &attributes, false)?;
    if config != view.config {
        call.state.engine.update_queue(&name, config).await?;
    }
    // Only the keys this call changed, as one atomic patch, so concurrent changes of other
    // keys (a push subscription, a policy) stay.
    let patch = MetaPatch {
        remove_attributes: view
            .meta
            .attributes
            .keys()
            .filter(|key| !meta.contains_key(*key))
            .cloned()
            .collect(),
        put_attributes: meta
            .into_iter()
            .filter(|(key, value)| view.meta.attributes.get(key) != Some(value))
            .collect(),
        ..MetaPatch::default()
    };
    if patch != MetaPatch::default() {
        call.state.engine.update_queue_meta(&name, patch).await?;
    }
    Ok(json!({}))
}

// ---------------------------------------------------------------------------------------------
// Batches

/// Checks a batch's entries: 1 to 10, ids valid and distinct. `entry_type` names the entries
/// in the error for an empty batch (`SendMessageBatchRequestEntry`...).
pub(super) fn batch_entries(
    params: &Map<String, Value>,
    entry_type: &str,
) -> Result<Vec<Map<String, Value>>, SqsError> {
    let entries: Vec<Map<String, Value>> = match params.get("Entries") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_object().cloned())
            .collect(),
        _ => Vec::new(),
    };
    if entries.is_empty() {
        return Err(SqsError::empty_batch_request(format!(
            "There should be at least one {entry_type} in the request."
        )));
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

pub(super) fn failed(id: &str, error: &SqsError) -> Value {
    json!({"Id": id, "SenderFault": error.sender, "Code": error.name, "Message": error.message})
}
