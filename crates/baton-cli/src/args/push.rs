//! `baton push ...` and `baton callbacks ...`: shapes and help texts.

use clap::{Args, Subcommand};

use super::parse_attribute;
use super::topics::parse_http_url;

#[derive(Debug, Subcommand)]
pub enum PushCommand {
    /// Make the broker POST every message of a queue to a URL; prints the subscription as JSON.
    #[command(
        long_about = "Make the broker POST every message of a queue to a URL; prints the \
        subscription as JSON.\n\n\
        Each message is POSTed with its body and `baton-*` headers (queue, message id, \
        receive count...). A 2xx answer acks it; anything else, a timeout or a connection \
        failure gives it back, so the queue's retry backoff and dead-letter queue apply. A \
        second `set` replaces the subscription. It is stored with the queue and resumes \
        after a restart.",
        after_help = "Examples:\n  \
        baton push set orders http://127.0.0.1:8080/work\n  \
        baton push set orders https://worker.example.com/jobs --header authorization='Bearer t' \\\n    \
        --concurrency 4 --timeout-ms 5000 --rate-per-s 50"
    )]
    Set(PushSetArgs),

    /// Show a queue's push subscription and how delivery goes (delivered, failed, circuit breaker).
    #[command(
        after_help = "Examples:\n  baton push show orders\n  baton push show orders --table"
    )]
    Show(PushShowArgs),

    /// Stop pushing a queue; its messages stay in the queue.
    #[command(after_help = "Example:\n  baton push delete orders")]
    Delete(PushQueueArg),
}

#[derive(Debug, Args)]
pub struct PushQueueArg {
    /// The queue.
    pub queue: String,
}

#[derive(Debug, Args)]
pub struct PushShowArgs {
    /// The queue.
    pub queue: String,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct PushSetArgs {
    /// The queue to push.
    pub queue: String,

    /// Where to POST each message: an http:// or https:// URL.
    #[arg(value_name = "URL", value_parser = parse_http_url)]
    pub target: String,

    /// A header of every POST; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    pub headers: Vec<(String, String)>,

    /// Deliveries in flight at once, 1..=1000 [default: 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: Option<u32>,

    /// How long the target may take to answer, 1..=300000 [default: 10000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=300_000))]
    pub timeout_ms: Option<u64>,

    /// Most deliveries started per second, 1..=100000 [default: no limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate_per_s: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCommand {
    /// List messages whose completion callback failed and is parked (status CALLBACK_FAILED).
    #[command(
        long_about = "List messages whose completion callback failed and is parked; prints \
        `{\"callbacks\": [{\"queue\", \"id\", \"status\", \"reason\", \"failed_at\", \
        \"attempts\"}]}`.\n\n\
        A message sent with `notify` reports its completion (or dead-lettering) to a URL. A \
        callback that keeps failing is retried automatically a few times, then parked until \
        `baton callbacks retry`.",
        after_help = "Examples:\n  baton callbacks list\n  baton callbacks list --max 10 --table"
    )]
    List(CallbacksListArgs),

    /// Attempt a parked callback now; prints the outcome and the message's status.
    #[command(
        long_about = "Attempt a parked callback now; prints `{\"ok\", \"error\"?, \"message\"}` \
        with the message's status afterwards.\n\n\
        Exits with status 1 when the callback failed again (the reason is on stderr), or \
        when the message's callback is not parked (`callback_not_failed`, or \
        `callback_retry_scheduled` while automatic retries remain).",
        after_help = "Example:\n  baton callbacks retry orders 0190f1c2-7d7e-7c3a-9a57-3c1e2b8d9f10"
    )]
    Retry(CallbackRetryArgs),
}

#[derive(Debug, Args)]
pub struct CallbacksListArgs {
    /// Most callbacks to list, 1..=1000 [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: Option<u32>,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct CallbackRetryArgs {
    /// The queue the message was sent to.
    pub queue: String,

    /// The message id, as `baton send` or `baton callbacks list` printed it.
    #[arg(value_parser = parse_message_id)]
    pub id: String,
}

fn parse_message_id(raw: &str) -> Result<String, String> {
    match baton_core::MessageId::parse(raw) {
        Some(_) => Ok(raw.to_string()),
        None => Err(format!(
            "expected a message id such as 0190f1c2-7d7e-7c3a-9a57-3c1e2b8d9f10, got {raw:?}"
        )),
    }
}
