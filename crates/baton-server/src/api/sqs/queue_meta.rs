//! Tags, permissions (the queue policy AddPermission writes) and dead-letter sources.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::QueueName;
use baton_engine::{EngineError, MetaPatch, QueueView};
use serde_json::{json, Map, Value};

use super::actions::{queue_arn, queue_url, target_queue, view, Out};
use super::error::SqsError;
use super::params::{self, list, opt_int, opt_str, req_str};
use super::Call;

/// Longest tag key (as SQS).
const TAG_KEY_CHARS_MAX: usize = 128;

pub(super) async fn tag_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let added = params::string_map(&call.params, "Tags");
    if added.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter Tags.",
        ));
    }
    let patch = MetaPatch {
        put_tags: added.into_iter().collect(),
        ..MetaPatch::default()
    };
    call.state.engine.update_queue_meta(&name, patch).await?;
    Ok(json!({}))
}

pub(super) async fn untag_queue(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let keys = list(&call.params, "TagKeys");
    let valid = |key: &String| (1..=TAG_KEY_CHARS_MAX).contains(&key.chars().count());
    if keys.is_empty() || !keys.iter().all(valid) {
        return Err(SqsError::invalid_parameter_value(format!(
            "Tag keys must be between 1 and {TAG_KEY_CHARS_MAX} characters in length."
        )));
    }
    let patch = MetaPatch {
        remove_tags: keys,
        ..MetaPatch::default()
    };
    call.state.engine.update_queue_meta(&name, patch).await?;
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
        .filter(|n| call.sees(n))
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

/// Actions AddPermission can grant (`*` grants them all; granting one of the message actions
/// also grants its batch form).
const GRANTABLE: [&str; 9] = [
    "*",
    "ChangeMessageVisibility",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
];
/// Actions only the queue's owner may call: AddPermission refuses to grant them.
const OWNER_ONLY: [&str; 12] = [
    "AddPermission",
    "CancelMessageMoveTask",
    "CreateQueue",
    "DeleteQueue",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "RemovePermission",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];
/// Actions one AddPermission statement may name (as SQS).
const ACTIONS_MAX: usize = 7;

fn check_actions(actions: &[String]) -> Result<(), SqsError> {
    if actions.len() > ACTIONS_MAX {
        return Err(SqsError::over_limit(format!(
            "{} Actions were found, maximum allowed is {ACTIONS_MAX}.",
            actions.len()
        )));
    }
    for action in actions {
        let reason = if OWNER_ONLY.contains(&action.as_str()) {
            "Only the queue owner is allowed to invoke this action."
        } else if !GRANTABLE.contains(&action.as_str()) {
            "Please refer to the appropriate WSDL for a list of valid actions."
        } else {
            continue;
        };
        return Err(SqsError::invalid_parameter_value(format!(
            "Value SQS:{action} for parameter ActionName is invalid. Reason: {reason}"
        )));
    }
    Ok(())
}

/// The queue's policy with its statements as a list (a policy set by SetQueueAttributes may
/// hold one statement as an object, or none), or the policy SQS starts a queue's with.
fn policy_of(view: &QueueView) -> Value {
    let mut policy = view
        .meta
        .attributes
        .get("Policy")
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| {
            json!({
                "Version": "2008-10-17",
                "Id": format!("{}/SQSDefaultPolicy", queue_arn(&view.name)),
                "Statement": [],
            })
        });
    let statements = match policy.get_mut("Statement").map(Value::take) {
        Some(Value::Array(statements)) => statements,
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one],
    };
    policy["Statement"] = Value::Array(statements);
    policy
}

/// One value as itself, several as a list (as SQS writes a statement's principals and actions).
fn one_or_list(mut values: Vec<String>) -> Value {
    if values.len() == 1 {
        Value::String(values.remove(0))
    } else {
        Value::Array(values.into_iter().map(Value::String).collect())
    }
}

/// Changes the queue's policy by `change` as one compare-and-set of the `Policy` attribute,
/// read again and retried when another change came between (from any node).
async fn change_policy(
    call: &Call<'_>,
    name: &QueueName,
    mut change: impl FnMut(&mut Vec<Value>) -> Result<(), SqsError>,
) -> Result<(), SqsError> {
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let view = view(call, name).await?;
        let before = view.meta.attributes.get("Policy").cloned();
        let mut policy = policy_of(&view);
        let statements = policy["Statement"]
            .as_array_mut()
            .ok_or_else(|| SqsError::internal("policy without statements"))?;
        change(statements)?;
        let mut patch = MetaPatch {
            expect_attributes: [("Policy".to_string(), before)].into(),
            ..MetaPatch::default()
        };
        if statements.is_empty() {
            patch.remove_attributes.push("Policy".to_string());
        } else {
            patch
                .put_attributes
                .insert("Policy".to_string(), policy.to_string());
        }
        match call.state.engine.update_queue_meta(name, patch).await {
            Ok(_) => return Ok(()),
            Err(EngineError::MetaConflict { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(SqsError::internal(format!(
        "the policy of {name} kept changing during {ATTEMPTS} attempts"
    )))
}

pub(super) async fn add_permission(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let label = req_str(&call.params, "Label")?;
    if label.is_empty() {
        return Err(SqsError::missing_parameter(
            "The request must contain the parameter Label.",
        ));
    }
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
    check_actions(&actions)?;
    let principals: Vec<String> = accounts
        .iter()
        .map(|a| format!("arn:aws:iam::{a}:root"))
        .collect();
    let statement = json!({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": one_or_list(principals)},
        "Action": one_or_list(actions.iter().map(|a| format!("SQS:{a}")).collect()),
        "Resource": queue_arn(&name),
    });
    change_policy(&call, &name, |statements| {
        if statements.iter().any(|s| s["Sid"] == label) {
            return Err(SqsError::invalid_parameter_value(format!(
                "Value {label} for parameter Label is invalid. Reason: Already exists."
            )));
        }
        statements.push(statement.clone());
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub(super) async fn remove_permission(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let label = req_str(&call.params, "Label")?;
    change_policy(&call, &name, |statements| {
        let before = statements.len();
        statements.retain(|s| s["Sid"] != label);
        if statements.len() == before {
            return Err(SqsError::invalid_parameter_value(format!(
                "Value {label} for parameter Label is invalid. Reason: can't find label on existing policy."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn actions(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn grantable_owner_only_and_unknown_actions() {
        assert!(check_actions(&actions(&["*", "SendMessage", "PurgeQueue"])).is_ok());
        let error = check_actions(&actions(&["SendMessage", "TagQueue"])).unwrap_err();
        assert_eq!(
            (error.name, error.message.as_str()),
            ("InvalidParameterValue", "Value SQS:TagQueue for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action.")
        );
        let error = check_actions(&actions(&["DeleteMessageBatch"])).unwrap_err();
        assert!(error
            .message
            .ends_with("Please refer to the appropriate WSDL for a list of valid actions."));
        let error = check_actions(&actions(&["SendMessage"; 8])).unwrap_err();
        assert_eq!(
            (error.name, error.message.as_str()),
            ("OverLimit", "8 Actions were found, maximum allowed is 7.")
        );
    }

    #[test]
    fn one_value_is_itself_several_a_list() {
        assert_eq!(one_or_list(vec!["a".into()]), json!("a"));
        assert_eq!(one_or_list(vec!["a".into(), "b".into()]), json!(["a", "b"]));
    }
}
