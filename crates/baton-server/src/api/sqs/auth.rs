//! Who may call the SQS API: a request's AWS Signature Version 4 (`auth::sigv4`) checked with
//! the SQS secret of the key its access key id names, and each action's Baton permission on
//! `queue:<name>` — the same `Grants` as the native API, so internal `_baton-` queues need
//! `admin` here too.
//!
//! Invariants:
//! - While keys exist (and `sqs_without_auth` is off) no action runs before its request's
//!   signature and the key's permission are checked, so a refused request changes nothing.
//!   Without keys nothing is checked (one atomic load in `authenticate`).
//! - The signature is verified over the body `handle` already read: the body is hashed once,
//!   here, and not copied.
//! - A queue name an action needs is derived with the action's own helpers; when it cannot
//!   be derived the helper's error is answered, never a skipped check.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::request::Parts;
use baton_core::QueueName;
use baton_proto::KeyAction;

use super::actions::{name_from_arn, queue_arn, target_queue, valid_queue_name};
use super::error::SqsError;
use super::params::{opt_str, req_str};
use super::{Call, ACCOUNT_ID};
use crate::auth::audit::{Entry, Outcome};
use crate::auth::sigv4::{self, SigError};
use crate::auth::{KeyEntry, Mode};
use crate::state::AppState;

/// The key a request is made with: `None` when nothing is checked (no key exists, or
/// `sqs_without_auth`), else the verified key, or why not.
pub fn authenticate(
    state: &AppState,
    parts: &Parts,
    body: &Bytes,
) -> Result<Option<Arc<KeyEntry>>, SqsError> {
    match state.keys.mode() {
        Mode::Open => return Ok(None),
        Mode::Loading => {
            return Err(SqsError::service_unavailable(
                "the server is starting: storage and API keys are not loaded yet",
            ))
        }
        Mode::Enforced if state.config.sqs_without_auth => return Ok(None),
        Mode::Enforced => {}
    }
    let request = sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        authority: parts.uri.authority().map(|a| a.as_str()),
        headers: &parts.headers,
        body,
    };
    let verified = sigv4::parse(&request).and_then(|signature| {
        let key = state
            .keys
            .sqs_key(&signature.access_key_id)
            .ok_or(SigError::UnknownKey)?;
        let secret = key.sqs.as_ref().ok_or(SigError::UnknownKey)?.secret();
        sigv4::verify(&request, &signature, secret, state.engine.now().as_millis())?;
        // After the signature, so only the secret's holder learns that the key expired.
        if state.keys.is_expired(key.expires_at) {
            return Err(SigError::ExpiredKey);
        }
        Ok(key)
    });
    verified.map(Some).map_err(refusal)
}

/// The SQS error AWS answers for each way a signature fails.
fn refusal(error: SigError) -> SqsError {
    match error {
        SigError::Missing => SqsError::missing_authentication_token(
            "The request must contain either a valid (registered) AWS access key ID or X.509 certificate. (This Baton server has API keys: sign requests with the SQS credentials of a key created with `sqs: true`.)",
        ),
        SigError::Incomplete(message) => SqsError::incomplete_signature(message),
        SigError::UnknownKey => SqsError::invalid_client_token_id(
            "The security token included in the request is invalid.",
        ),
        SigError::ExpiredKey => {
            SqsError::expired_token("The security token included in the request is expired")
        }
        SigError::Expired(message) => SqsError::request_expired(message),
        SigError::Mismatch(message) => SqsError::signature_does_not_match(message),
    }
}

/// What an action needs: `(Some(action), queue)`, or `(None, queue)` for any permission on the
/// queue (the native API's rule for reads).
type Needs = Vec<(Option<KeyAction>, QueueName)>;

/// The Baton permissions `action` needs, from its parameters. `ListQueues` needs none (it
/// lists what the key sees); an unknown action none (it answers `InvalidAction`).
fn needs(action: &str, call: &Call<'_>) -> Result<Needs, SqsError> {
    let on = |needed: Option<KeyAction>| Ok(vec![(needed, target_queue(call)?)]);
    match action {
        "SendMessage" | "SendMessageBatch" => on(Some(KeyAction::Send)),
        "ReceiveMessage"
        | "DeleteMessage"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibility"
        | "ChangeMessageVisibilityBatch" => on(Some(KeyAction::Receive)),
        "DeleteQueue" | "PurgeQueue" | "SetQueueAttributes" | "TagQueue" | "UntagQueue"
        | "AddPermission" | "RemovePermission" => on(Some(KeyAction::Manage)),
        "GetQueueAttributes" | "ListQueueTags" | "ListDeadLetterSourceQueues" => on(None),
        "CreateQueue" => Ok(vec![(
            Some(KeyAction::Manage),
            valid_queue_name(&req_str(&call.params, "QueueName")?)?,
        )]),
        "GetQueueUrl" => {
            let name = req_str(&call.params, "QueueName")?;
            let name = QueueName::new(&name).map_err(|_| {
                SqsError::queue_does_not_exist("The specified queue does not exist.")
            })?;
            Ok(vec![(None, name)])
        }
        "StartMessageMoveTask" => {
            let mut needs = vec![(
                Some(KeyAction::Manage),
                name_from_arn(&req_str(&call.params, "SourceArn")?)?,
            )];
            // Moving messages into a queue is sending to it.
            if let Some(destination) = opt_str(&call.params, "DestinationArn") {
                needs.push((Some(KeyAction::Send), name_from_arn(&destination)?));
            }
            Ok(needs)
        }
        "ListMessageMoveTasks" => Ok(vec![(
            None,
            name_from_arn(&req_str(&call.params, "SourceArn")?)?,
        )]),
        "CancelMessageMoveTask" => {
            let handle = req_str(&call.params, "TaskHandle")?;
            // An unknown handle needs nothing: the action answers ResourceNotFound and
            // changes nothing.
            Ok(super::move_tasks::task_source(call, &handle)
                .map(|source| vec![(Some(KeyAction::Manage), source)])
                .unwrap_or_default())
        }
        _ => Ok(Vec::new()),
    }
}

/// Refuses `action` with `AccessDenied` unless `key` has the permissions it needs; the
/// `manage` resource it acts on, if any, for the audit trail.
pub fn authorize(
    key: &KeyEntry,
    action: &str,
    call: &Call<'_>,
) -> Result<Option<String>, SqsError> {
    let needs = needs(action, call)?;
    for &(needed, ref queue) in &needs {
        let resource = format!("queue:{queue}");
        let allowed = match needed {
            Some(needed) => key.grants.allows(needed, &resource),
            None => key.grants.sees(&resource),
        };
        if !allowed {
            let permission = needed.map_or("any", KeyAction::as_str);
            return Err(SqsError::access_denied(format!(
                "User: arn:aws:iam::{ACCOUNT_ID}:user/{key_name} is not authorized to perform: sqs:{action} on resource: {arn} because the Baton key `{key_name}` has no `{permission}` permission on {resource}",
                key_name = key.name,
                arn = queue_arn(queue),
            )));
        }
    }
    Ok(needs
        .iter()
        .find(|(needed, _)| *needed == Some(KeyAction::Manage))
        .map(|(_, queue)| format!("queue:{queue}")))
}

/// Audits an SQS request of `key` (if known) needing `action` on `resource`.
pub fn audit(
    state: &AppState,
    parts: &Parts,
    key: Option<&str>,
    (action, resource): (Option<KeyAction>, &str),
    outcome: Outcome,
    status: u16,
) {
    let client = crate::http_listener::ClientAddr::ip_of(&parts.extensions);
    state.audit.record(&Entry {
        key,
        action,
        resource,
        outcome,
        status,
        client,
        method: parts.method.as_str(),
        path: parts.uri.path(),
    });
}
