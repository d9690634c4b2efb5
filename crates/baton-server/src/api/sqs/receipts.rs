//! DeleteMessage, ChangeMessageVisibility and their batches: what a receipt handle does.

use baton_core::{QueueName, ReceiptError, ReceiptHandle};
use serde_json::json;

use super::actions::{batch_entries, failed, target_queue, view, Out};
use super::error::SqsError;
use super::params::{self, opt_int, req_str};
use super::Call;

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

pub(super) async fn delete_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    view(&call, &name).await?;
    delete_one(&call, &name, &handle).await?;
    Ok(json!({}))
}

pub(super) async fn delete_message_batch(call: Call<'_>) -> Out {
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

pub(super) async fn change_message_visibility(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    let timeout = opt_int(&call.params, "VisibilityTimeout", 0, 43_200)?.ok_or_else(|| {
        SqsError::missing_parameter("The request must contain the parameter VisibilityTimeout.")
    })?;
    view(&call, &name).await?;
    change_one(&call, &name, &handle, timeout).await?;
    Ok(json!({}))
}

pub(super) async fn change_message_visibility_batch(call: Call<'_>) -> Out {
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
