//! DeleteMessage, ChangeMessageVisibility and their batches: what a receipt handle does.
//!
//! As in SQS, any receipt handle ever issued for a message acts on it, not only the latest:
//! on a standard queue a delete by an expired or superseded handle deletes the message (were it
//! ignored, the message would be processed again), a visibility change applies to the lease
//! the message is under now and leaves a message that is not in flight as it is. Only handles
//! this queue never issued are `ReceiptHandleIsInvalid`. The native API keeps its own rule (the
//! current lease only, `receipt_stale` otherwise).

use baton_core::{Acked, QueueName, ReceiptError, ReceiptHandle, VisibilityOutcome};
use baton_engine::EngineError;
use serde_json::{json, Map, Value};

use super::actions::{batch_entries, failed, target_queue, unless_missing, view, Out};
use super::error::SqsError;
use super::params::{self, opt_int, req_str};
use super::Call;

fn invalid_handle(handle: &str) -> SqsError {
    SqsError::receipt_handle_is_invalid(format!(
        "The input receipt handle \"{handle}\" is not a valid receipt handle."
    ))
}

/// A batch entry's handle as given, and parsed.
type EntryReceipt = Result<(String, ReceiptHandle), SqsError>;

fn receipt(handle: &str) -> Result<ReceiptHandle, SqsError> {
    ReceiptHandle::parse(handle).ok_or_else(|| invalid_handle(handle))
}

/// The receipt handle of a batch entry.
fn entry_receipt(entry: &Map<String, Value>) -> EntryReceipt {
    let handle = entry
        .get("ReceiptHandle")
        .and_then(params::text)
        .ok_or_else(|| {
            SqsError::missing_parameter("The request must contain the parameter ReceiptHandle.")
        })?;
    let parsed = receipt(&handle)?;
    Ok((handle, parsed))
}

/// What SQS answers for one delete: success also when the message had already left; on a
/// FIFO queue, an error when the handle's lease ended and the message is not in flight.
fn delete_answer(
    handle: &str,
    result: Option<Result<Option<Acked>, ReceiptError>>,
) -> Result<(), SqsError> {
    match result {
        Some(Ok(_)) => Ok(()),
        Some(Err(ReceiptError::Stale)) => Err(SqsError::invalid_parameter_value(format!(
            "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
        ))),
        Some(Err(ReceiptError::Invalid)) | None => Err(invalid_handle(handle)),
    }
}

pub(super) async fn delete_message(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    let parsed = match receipt(&handle) {
        Ok(parsed) => parsed,
        Err(error) => return Err(unless_missing(&call, &name, error).await),
    };
    // One engine call, which answers a missing queue itself.
    let results = call.state.engine.delete(&name, vec![parsed]).await?;
    delete_answer(&handle, results.into_iter().next())?;
    Ok(json!({}))
}

pub(super) async fn delete_message_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params, "DeleteMessageBatchRequestEntry")?;
    // Parse every entry, then delete by all valid receipts in one engine call (one log record,
    // one wait for durability) rather than one call per entry.
    let parsed: Vec<(String, EntryReceipt)> = entries
        .iter()
        .map(|entry| {
            let id = entry.get("Id").and_then(params::text).unwrap_or_default();
            (id, entry_receipt(entry))
        })
        .collect();
    let valid: Vec<ReceiptHandle> = parsed
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|(_, receipt)| *receipt))
        .collect();
    let mut results = call.state.engine.delete(&name, valid).await?.into_iter();
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for (id, receipt) in parsed {
        let outcome = receipt.and_then(|(handle, _)| delete_answer(&handle, results.next()));
        match outcome {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}

/// Changes the visibility of the message `handle` was issued for (see the module docs).
async fn change_one(
    call: &Call<'_>,
    name: &QueueName,
    handle: &str,
    parsed: ReceiptHandle,
    timeout: i64,
) -> Result<(), SqsError> {
    let outcome = call
        .state
        .engine
        .change_message_visibility(name, parsed, timeout as u64 * 1000)
        .await
        .map_err(|error| match error {
            EngineError::Receipt(ReceiptError::Invalid) => invalid_handle(handle),
            other => SqsError::from(other),
        })?;
    match outcome {
        VisibilityOutcome::Changed | VisibilityOutcome::NotInFlight => Ok(()),
        VisibilityOutcome::Gone => Err(SqsError::invalid_parameter_value(format!(
            "Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
        ))),
    }
}

pub(super) async fn change_message_visibility(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let handle = req_str(&call.params, "ReceiptHandle")?;
    let timeout = opt_int(&call.params, "VisibilityTimeout", 0, 43_200)?.ok_or_else(|| {
        SqsError::missing_parameter("The request must contain the parameter VisibilityTimeout.")
    })?;
    let parsed = match receipt(&handle) {
        Ok(parsed) => parsed,
        Err(error) => return Err(unless_missing(&call, &name, error).await),
    };
    change_one(&call, &name, &handle, parsed, timeout).await?;
    Ok(json!({}))
}

pub(super) async fn change_message_visibility_batch(call: Call<'_>) -> Out {
    let name = target_queue(&call)?;
    let entries = batch_entries(&call.params, "ChangeMessageVisibilityBatchRequestEntry")?;
    view(&call, &name).await?;
    let mut successful = Vec::new();
    let mut failures = Vec::new();
    for entry in &entries {
        let id = entry.get("Id").and_then(params::text).unwrap_or_default();
        let result = async {
            let (handle, parsed) = entry_receipt(entry)?;
            let timeout = opt_int(entry, "VisibilityTimeout", 0, 43_200)?.unwrap_or(0);
            change_one(&call, &name, &handle, parsed, timeout).await
        }
        .await;
        match result {
            Ok(()) => successful.push(json!({"Id": id})),
            Err(error) => failures.push(failed(&id, &error)),
        }
    }
    Ok(json!({"Successful": successful, "Failed": failures}))
}
