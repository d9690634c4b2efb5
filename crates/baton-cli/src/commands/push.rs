//! `baton push ...` (a queue's push subscription) and `baton callbacks ...` (completion
//! callbacks that failed).

use anyhow::bail;
use baton_sdk::proto::{FailedCallbackList, PushInfo, PushSubscription};
use baton_sdk::Client;

use crate::args::{CallbacksCommand, PushCommand};
use crate::output::{or_dash, print_json, print_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: PushCommand) -> anyhow::Result<()> {
    match command {
        PushCommand::Set(args) => {
            let subscription = PushSubscription {
                url: args.target,
                headers: args.headers.into_iter().collect(),
                concurrency: args.concurrency,
                timeout_ms: args.timeout_ms,
                rate_per_s: args.rate_per_s,
            };
            print_json(&client.set_push(&args.queue, &subscription).await?)
        }
        PushCommand::Show(args) => {
            let push = client.get_push(&args.queue).await?;
            if args.table {
                print_push(&push)
            } else {
                print_json(&push)
            }
        }
        PushCommand::Delete(args) => client.delete_push(&args.queue).await.map_err(Into::into),
    }
}

fn print_push(push: &PushInfo) -> anyhow::Result<()> {
    let header = [
        "QUEUE",
        "URL",
        "HEADERS",
        "CONCURRENCY",
        "TIMEOUT_MS",
        "RATE_PER_S",
        "DELIVERED",
        "FAILED",
        "IN_FLIGHT",
        "BREAKER",
    ];
    // Header names only: their values may be credentials.
    let header_names = if push.headers.is_empty() {
        "-".to_string()
    } else {
        push.headers.keys().cloned().collect::<Vec<_>>().join(",")
    };
    let row = vec![
        push.queue.clone(),
        push.url.clone(),
        header_names,
        push.concurrency.to_string(),
        push.timeout_ms.to_string(),
        or_dash(push.rate_per_s),
        push.stats.delivered_total.to_string(),
        push.stats.failed_total.to_string(),
        push.stats.in_flight.to_string(),
        push.stats.breaker.clone(),
    ];
    print_table(&header, &[row])
}

pub async fn callbacks(client: &Client, command: CallbacksCommand) -> anyhow::Result<()> {
    match command {
        CallbacksCommand::List(args) => {
            let callbacks = client.failed_callbacks(args.max).await?;
            if !args.table {
                return print_json(&FailedCallbackList { callbacks });
            }
            let header = ["QUEUE", "ID", "STATUS", "ATTEMPTS", "FAILED_AT", "REASON"];
            let rows: Vec<Vec<String>> = callbacks
                .iter()
                .map(|callback| {
                    vec![
                        callback.queue.clone(),
                        callback.id.clone(),
                        callback.status.clone(),
                        callback.attempts.to_string(),
                        format_time(callback.failed_at),
                        or_dash(callback.reason.as_ref()),
                    ]
                })
                .collect();
            print_table(&header, &rows)
        }
        CallbacksCommand::Retry(args) => {
            let result = client.retry_callback(&args.queue, &args.id).await?;
            print_json(&result)?;
            if !result.ok {
                bail!(
                    "the callback failed again: {}",
                    result.error.as_deref().unwrap_or("no reason given")
                );
            }
            Ok(())
        }
    }
}
