//! Tags, permissions (the queue policy AddPermission writes) and dead-letter sources.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::QueueName;
use baton_engine::QueueView;
use serde_json::{json, Map, Value};

use super::actions::{queue_arn, queue_url, target_queue, view, Out};
use super::error::SqsError;
use super::params::{self, list, opt_int, opt_str, req_str};
use super::Call;

pub(super) async fn tag_queue(call: Call<'_>) -> Out {
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

pub(super) async fn untag_queue(call: Call<'_>) -> Out {
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

pub(super) async fn list_queue_tags(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let view = view(&call, &name).await?;
    if view.meta.tags.is_empty() {
        return Ok(json!({}));
    }
    Ok(json!({"Tags": view.meta.tags}))
}

pub(super) async fn list_dead_letter_source_queues(call: Call<'_>) -> Out {
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

pub(super) async fn add_permission(call: Call<'_>) -> Out {
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

pub(super) async fn remove_permission(call: Call<'_>) -> Out {
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
