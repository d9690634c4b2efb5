//! The client commands' entry point (`run`: waits for a ready broker, then dispatches), and the
//! queue and message commands: each one SDK call, its answer printed as pretty JSON on stdout.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, Context};
use baton_sdk::proto::{
    AttributeValue, BatchResponse, CreateQueue, DeadLetter, ItemResult, QueueInfo, QueueList,
    ReceiveRequest, ReceiveResponse, RedriveRequest, Retry, SendMessage,
};
use baton_sdk::Client;

use crate::args::{Command, CreateArgs, QueueCommand, RecvArgs, SendArgs};
use crate::output::{or_dash, print_json, print_table};

/// Largest body `baton send -` reads from stdin; the server's own limits are usually lower.
const STDIN_BODY_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// How long a client command waits for a broker that is still recovering its storage.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits while the broker answers `/ready` with "not yet" (it is recovering), so a command run
/// right after `baton serve` starts does not fail with `not_ready`. A broker that cannot be
/// reached fails at once.
pub async fn wait_until_ready(client: &Client) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + READY_WAIT;
    loop {
        if client.ready().await?.ready {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!(
                "the broker is still recovering its storage after {} s",
                READY_WAIT.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The broker client commands talk to: `--url`, `--key` and the CAs of `--cacert`.
pub struct Remote {
    pub url: String,
    pub key: Option<String>,
    /// CA certificates (PEM) trusted for an https:// URL besides the system's.
    pub ca_pem: Option<Vec<u8>>,
}

impl Remote {
    /// The SDK client of this broker, not yet checked for readiness.
    pub fn client(&self) -> anyhow::Result<Client> {
        let url = &self.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url must start with http:// or https://, got {url:?}");
        }
        // No overall timeout: long polls need more than ordinary calls (the SDK sets each).
        let mut http = reqwest::Client::builder().connect_timeout(Client::CONNECT_TIMEOUT);
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .context("--cacert holds no usable PEM certificate")?;
            if certs.is_empty() {
                bail!("--cacert holds no PEM certificate");
            }
            for cert in certs {
                http = http.add_root_certificate(cert);
            }
        }
        let mut client = Client::with_http_client(url.as_str(), http.build()?);
        if let Some(key) = &self.key {
            client = client.with_key(key);
        }
        Ok(client)
    }
}

/// The client of the broker, once it is ready.
pub async fn connect(remote: &Remote) -> anyhow::Result<Client> {
    let client = remote.client()?;
    wait_until_ready(&client).await?;
    Ok(client)
}

/// Runs one client command against the broker. `Serve` is not a client command.
pub async fn run(remote: &Remote, command: Command) -> anyhow::Result<()> {
    let client = connect(remote).await?;
    match command {
        Command::Serve(_) | Command::Storage(_) | Command::Bench(_) | Command::Key(_) => {
            bail!("`serve`, `storage`, `key` and `bench` are not plain client commands")
        }
        Command::Queue(command) => queue(&client, command).await,
        Command::Send(args) => send(&client, args).await,
        Command::Recv(args) => recv(&client, args).await,
        Command::Ack(args) => {
            let response = client.ack(&args.queue, args.receipts).await?;
            print_json(&response)?;
            check_batch("ack", &response)
        }
        Command::Nack(args) => {
            let response = client
                .nack(&args.queue, args.receipts, args.delay_ms)
                .await?;
            print_json(&response)?;
            check_batch("nack", &response)
        }
        Command::Status(args) => print_json(&client.message_status(&args.queue, &args.id).await?),
        Command::Info => print_json(&client.server_info().await?),
        Command::Publish(args) => crate::live::publish(&client, args).await,
        Command::Tail(args) => crate::live::tail(&client, args).await,
        Command::Request(args) => crate::live::request(&client, args).await,
        Command::Stream(command) => crate::commands::streams::run(&client, command).await,
        Command::Topic(command) => crate::commands::topics::run(&client, command).await,
        Command::Push(command) => crate::commands::push::run(&client, command).await,
        Command::Callbacks(command) => crate::commands::push::callbacks(&client, command).await,
        Command::Lock(command) => crate::commands::locks::run(&client, command).await,
        Command::Sink(command) => crate::commands::sinks::run(&client, command).await,
        Command::Schedule(command) => crate::commands::schedules::run(&client, command).await,
    }
}

async fn queue(client: &Client, command: QueueCommand) -> anyhow::Result<()> {
    match command {
        QueueCommand::Create(args) => {
            let name = args.name.clone();
            print_json(&client.create_queue(&name, &create_attributes(args)).await?)
        }
        QueueCommand::List(args) => {
            let queues = client.list_queues().await?;
            if args.table {
                print_queue_table(&queues)
            } else {
                print_json(&QueueList { queues })
            }
        }
        QueueCommand::Show(args) => print_json(&client.get_queue(&args.name).await?),
        QueueCommand::Delete(args) => client.delete_queue(&args.name).await.map_err(Into::into),
        QueueCommand::Purge(args) => {
            let purged = client.purge_queue(&args.name).await?;
            print_json(&serde_json::json!({ "purged": purged }))
        }
        QueueCommand::Redrive(args) => {
            let request = RedriveRequest {
                max: args.max,
                to: args.to,
            };
            let moved = client.redrive(&args.name, &request).await?;
            print_json(&serde_json::json!({ "moved": moved }))
        }
    }
}

/// Flags left out stay `None`, so the server applies its defaults.
fn create_attributes(args: CreateArgs) -> CreateQueue {
    let dead_letter = match (args.dead_letter_queue, args.max_receive_count) {
        (Some(queue), Some(max_receive_count)) => Some(DeadLetter {
            queue,
            max_receive_count,
        }),
        // clap's `requires` makes the two flags come together.
        _ => None,
    };
    let retry = match (args.retry_base_delay_ms, args.retry_max_delay_ms) {
        (Some(base_delay_ms), Some(max_delay_ms)) => Some(Retry {
            base_delay_ms,
            max_delay_ms,
        }),
        _ => None,
    };
    CreateQueue {
        fifo: args.fifo.then_some(true),
        visibility_timeout_ms: args.visibility_timeout_ms,
        delay_ms: args.delay_ms,
        retention_ms: args.retention_ms,
        max_message_bytes: args.max_message_bytes,
        receive_wait_ms: args.receive_wait_ms,
        dead_letter,
        content_based_dedup: args.content_based_dedup.then_some(true),
        max_depth: args.max_depth,
        retry,
    }
}

async fn send(client: &Client, args: SendArgs) -> anyhow::Result<()> {
    let body = if args.body == "-" {
        read_stdin_body()?
    } else {
        args.body
    };
    let attributes: BTreeMap<String, AttributeValue> = args
        .attributes
        .into_iter()
        .map(|(key, value)| (key, AttributeValue::Plain(value)))
        .collect();
    let message = SendMessage {
        body,
        attributes,
        group_id: args.group_id,
        dedup_id: args.dedup_id,
        delay_ms: args.delay_ms,
        deliver_at: args.deliver_at,
        notify: None,
    };
    print_json(&client.send(&args.queue, vec![message]).await?)
}

pub(crate) fn read_stdin_body() -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(STDIN_BODY_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .context("cannot read the body from stdin")?;
    if STDIN_BODY_BYTES_MAX < bytes.len() as u64 {
        bail!("the body on stdin is larger than {STDIN_BODY_BYTES_MAX} bytes");
    }
    String::from_utf8(bytes).context("the body on stdin is not UTF-8")
}

/// Prints before acking: if printing fails (say, a closed pipe), the messages are not acked
/// and come back after their visibility timeout instead of being lost.
async fn recv(client: &Client, args: RecvArgs) -> anyhow::Result<()> {
    let request = ReceiveRequest {
        max: Some(args.max),
        wait_ms: args.wait_ms,
        visibility_timeout_ms: args.visibility_timeout_ms,
    };
    let messages = client.receive(&args.queue, &request).await?;
    let receipts: Vec<String> = messages
        .iter()
        .map(|message| message.receipt.clone())
        .collect();
    print_json(&ReceiveResponse { messages })?;
    if !args.ack || receipts.is_empty() {
        return Ok(());
    }
    let response = client.ack(&args.queue, receipts).await?;
    check_batch("ack", &response)
}

/// Reports each failed item on stderr; fails if any did.
pub(crate) fn check_batch(operation: &str, response: &BatchResponse) -> anyhow::Result<()> {
    let mut n_failed = 0_usize;
    for (item_idx, result) in response.results.iter().enumerate() {
        if let ItemResult::Error { error } = result {
            n_failed += 1;
            eprintln!(
                "error: {operation} of item {item_idx}: {}: {}",
                baton_sdk::code_name(error.code),
                error.message
            );
        }
        if let ItemResult::Ok { ok: false } = result {
            n_failed += 1;
            eprintln!("error: {operation} of item {item_idx}: not ok");
        }
    }
    if n_failed != 0 {
        bail!(
            "{n_failed} of {} {operation}s failed",
            response.results.len()
        );
    }
    Ok(())
}

fn print_queue_table(queues: &[QueueInfo]) -> anyhow::Result<()> {
    let header = [
        "NAME",
        "TYPE",
        "VISIBLE",
        "IN_FLIGHT",
        "DELAYED",
        "OLDEST_AGE_MS",
        "SENT",
        "ACKED",
        "DEAD_LETTER",
    ];
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|queue| {
            let stats = &queue.stats;
            vec![
                queue.name.clone(),
                if queue.attributes.fifo {
                    "fifo"
                } else {
                    "standard"
                }
                .to_string(),
                stats.visible.to_string(),
                stats.in_flight.to_string(),
                stats.delayed.to_string(),
                stats.oldest_age_ms.to_string(),
                stats.sent_total.to_string(),
                stats.acked_total.to_string(),
                or_dash(
                    queue
                        .attributes
                        .dead_letter
                        .as_ref()
                        .map(|dead_letter| &dead_letter.queue),
                ),
            ]
        })
        .collect();
    print_table(&header, &rows)
}
