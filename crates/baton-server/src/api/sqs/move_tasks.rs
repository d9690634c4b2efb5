//! Message move tasks: StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::QueueName;
use baton_engine::RedriveOptions;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::actions::{name_from_arn, queue_arn, view, Out};
use super::error::SqsError;
use super::params::{opt_int, opt_str, req_str};
use super::{Call, MOVE_TASKS_MAX};

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

pub(super) async fn start_message_move_task(call: Call<'_>) -> Out {
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

pub(super) async fn list_message_move_tasks(call: Call<'_>) -> Out {
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

/// The source queue of the task `handle`, if it exists (for the permission check).
pub(super) fn task_source(call: &Call<'_>, handle: &str) -> Option<QueueName> {
    call.state
        .sqs
        .tasks
        .lock()
        .iter()
        .find(|t| t.handle == handle)
        .map(|t| t.source.clone())
}

pub(super) async fn cancel_message_move_task(call: Call<'_>) -> Out {
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
