//! The command line, as clap derive types. Only shapes and help texts live here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod keys;
mod locks;
mod push;
mod schedules;
mod sinks;
mod streams;
mod topics;

pub use keys::*;
pub use locks::*;
pub use push::*;
pub use schedules::*;
pub use sinks::*;
pub use streams::*;
pub use topics::*;

/// Default of `--url`: where `baton serve` listens by default.
pub const URL_DEFAULT: &str = "http://127.0.0.1:9324";

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Baton: a single-binary message broker, and a client for it",
    long_about = "Baton: a single-binary message broker, and a client for it.\n\n\
        `baton serve` runs the broker. Every other command talks to a running broker over its \
        native HTTP API (see --url) and prints JSON on stdout, so scripts can parse it; \
        commands that list or read also take --table, for a table for people. Errors go to \
        stderr as `error: <code>: <message>` with exit status 1; arguments the command can \
        check itself are refused with exit status 2 before any request.",
    after_help = "Examples:\n  \
        baton serve --data-dir ./data\n  \
        baton queue create orders --visibility-timeout-ms 60000\n  \
        baton send orders '{\"id\": 1}' --attr source=web\n  \
        baton recv orders --max 10 --wait-ms 5000 --ack\n  \
        baton stream create clicks --partitions 4\n  \
        baton topic subscribe orders eu --queue eu-orders --pattern 'order.eu.*'"
)]
pub struct Cli {
    /// Base URL of the Baton server that client commands talk to (not used by `serve`).
    #[arg(long, global = true, env = "BATON_URL", default_value = URL_DEFAULT, value_name = "URL", display_order = 100)]
    pub url: String,

    /// The API key client commands send (`Authorization: Bearer <key>`); needed once the
    /// server has keys (not used by `serve`).
    #[arg(
        long,
        global = true,
        env = "BATON_KEY",
        value_name = "KEY",
        hide_env_values = true,
        display_order = 101
    )]
    pub key: Option<String>,

    /// CA certificates (PEM) to trust for an https:// --url besides the system's, e.g. the
    /// CA of a self-signed broker certificate (not used by `serve`).
    #[arg(
        long,
        global = true,
        env = "BATON_CACERT",
        value_name = "FILE",
        display_order = 102
    )]
    pub cacert: Option<std::path::PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker in the foreground until Ctrl-C or SIGTERM.
    #[command(
        long_about = "Run the broker in the foreground until Ctrl-C or SIGTERM.\n\n\
        Configuration comes from built-in defaults, then the TOML file of --config, then \
        BATON_<KEY> environment variables (e.g. BATON_MAX_REQUEST_BYTES), then these flags. \
        Once listening, prints exactly one line to stdout: `baton listening on http://<addr>` (`https://` with TLS); \
        logs go to stderr (filter with RUST_LOG, default `info`)."
    )]
    Serve(ServeArgs),

    /// Create, inspect, list, purge and delete queues.
    #[command(subcommand)]
    Queue(QueueCommand),

    /// Send one message to a queue; prints its id and sequence number as JSON.
    Send(SendArgs),

    /// Receive (lease) messages from a queue; prints them as JSON.
    #[command(
        long_about = "Receive (lease) messages from a queue; prints them as JSON.\n\n\
        Prints `{\"messages\": [...]}`; each message carries a `receipt` for `baton ack` or \
        `baton nack`. Without --ack, the messages become visible again when their visibility \
        timeout ends. With --ack they are acknowledged (deleted) after they were printed."
    )]
    Recv(RecvArgs),

    /// Acknowledge (delete) received messages by their receipts.
    Ack(AckArgs),

    /// Give received messages back: visible again now, after --delay-ms, or after the queue's retry backoff.
    Nack(NackArgs),

    /// Show a message's status and history (sent, received, nacked, acked, dead-lettered...).
    Status(StatusArgs),

    /// Show the server's node id, version, uptime, engine and data directory.
    Info,

    /// Publish one message to a topic; prints its id and how many subscriptions it reached.
    Publish(PublishArgs),

    /// Print a topic's live messages as they are published, one JSON line each.
    #[command(
        long_about = "Print a topic's live messages as they are published, one JSON line each.\n\n\
        Each line is `{\"type\": \"message\", \"id\", \"topic\", \"routing_key\", \"body\", \
        \"attributes\", \"published_at\"}`, or `{\"type\": \"dropped\", \"dropped\", \
        \"dropped_total\"}` when the server dropped messages because this connection fell behind \
        (live delivery is ephemeral; queues subscribed to the topic keep everything). Runs until \
        Ctrl-C, the server closes the stream, or --count messages were printed."
    )]
    Tail(TailArgs),

    /// Send a request to a queue and wait for its reply; prints the reply as JSON.
    #[command(
        long_about = "Send a request to a queue and wait for its reply; prints the reply as JSON.\n\n\
        The consumer sees the request's correlation id as the message id and as the attribute \
        `baton.correlation_id`, and answers with `POST /v1/queues/{q}/ack` carrying a `reply`, \
        or `POST /v1/replies/{correlation_id}`. Without a reply in --timeout-ms the command \
        fails with `request_timeout`."
    )]
    Request(RequestArgs),

    /// Streams: create, list, show, append, read from an offset or a time, follow; consumer groups.
    #[command(subcommand)]
    Stream(StreamCommand),

    /// Topics and their subscriptions (to a queue, a stream or a URL, by pattern and filter).
    #[command(subcommand)]
    Topic(TopicCommand),

    /// Push subscriptions: the broker POSTs a queue's messages to a URL.
    #[command(subcommand)]
    Push(PushCommand),

    /// Completion callbacks that failed: list them, retry one.
    #[command(subcommand)]
    Callbacks(CallbacksCommand),

    /// Distributed locks with fencing tokens: acquire, renew, release, show, list.
    #[command(subcommand)]
    Lock(LockCommand),

    /// Sinks: archive a stream, a queue or a topic into PostgreSQL, exactly once.
    #[command(subcommand)]
    Sink(SinkCommand),
    /// Cron and one-shot schedules that send a message to a queue, a topic or a stream.
    #[command(subcommand)]
    Schedule(ScheduleCommand),

    /// API keys: create (also offline, on a stopped broker's data directory), list, show, revoke.
    #[command(subcommand)]
    Key(KeyCommand),

    /// Inspect a data directory offline.
    #[command(subcommand)]
    Storage(StorageCommand),

    /// Load-test a running broker end to end over HTTP; prints throughput and latency.
    #[command(
        long_about = "Load-test a running broker end to end over HTTP; prints throughput and latency.\n\n\
        `produce` only sends; `consume` first fills the queue with --messages messages (not \
        timed), then receives and acks them; `e2e` sends, receives and acks at once. A run \
        stops after --messages messages or --duration-s seconds, whichever comes first (`e2e` \
        consumers then drain what was sent, for at most 30 s more). Latency is measured from \
        the send time written into each body to its receipt; with --rate the load is open loop \
        and latency is also measured from each message's scheduled send time. Without --queue \
        a fresh queue `bench-<random>` is created and deleted afterwards. The broker is the \
        one of --url; broker and load generator share the machine's CPUs when both run \
        locally. With --target redis, rabbitmq or nats the same workloads and bodies drive \
        that broker instead (at --target-url, by default its standard port on 127.0.0.1), \
        always on a fresh queue or stream that is deleted afterwards.",
        after_help = "Examples:\n  \
        baton bench e2e --producers 4 --consumers 4 --batch 100 --duration-s 10\n  \
        baton bench e2e --batch 1 --inflight 16 --rate 5000 --json\n  \
        baton bench e2e --batch 1 --inflight 1000 --receive-batch 100 --http2\n  \
        baton bench produce --api sqs --batch 10 --messages 100000\n  \
        baton bench consume --consumers 8 --batch 100 --messages 200000\n  \
        baton bench e2e --target redis --producers 4 --consumers 4 --batch 100 --duration-s 5\n  \
        baton bench e2e --target rabbitmq --rabbitmq-quorum --batch 100"
    )]
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:9324; port 0 picks a free port [config: listen, default 127.0.0.1:9324].
    #[arg(long, env = "BATON_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// A dedicated port for the framed TCP protocol, besides `GET /v1/wire` on the HTTP port:
    /// an address, `auto` (HTTP's port + 1; port 0 when HTTP has port 0) or `off` [config:
    /// wire_listen, default off].
    #[arg(long, env = "BATON_WIRE_LISTEN", value_name = "ADDR:PORT|auto|off")]
    pub wire_listen: Option<String>,

    /// Directory for the broker's data; created if missing [config: data_dir, default ./baton-data].
    #[arg(long, env = "BATON_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// TOML configuration file; its keys are the ones of BATON_<KEY> in lower case.
    #[arg(long, env = "BATON_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Format of the logs written to stderr.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Storage engine: `embedded` (durable, in --data-dir), `memory` (nothing survives a restart) or `redis` (cluster mode: queues in the Redis Cluster of --redis-url, shared by every node started so) [config: engine, default embedded].
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<String>,

    /// Cluster mode: the Redis Cluster's seed nodes, comma-separated, e.g. redis://10.0.0.1:6379,redis://10.0.0.2:6379 [config: redis_url].
    #[arg(long, value_name = "redis://HOST:PORT,...")]
    pub redis_url: Option<String>,

    /// Cluster mode: the prefix of every key; nodes with the same namespace share their queues [config: redis_namespace, default baton].
    #[arg(long, value_name = "NAME")]
    pub redis_namespace: Option<String>,

    /// Cluster mode: replicas that must confirm each write before it is answered [config: redis_wait_replicas, default 1].
    #[arg(long, value_name = "N")]
    pub redis_wait_replicas: Option<u32>,

    /// Cluster mode: how long a write waits for those replicas [config: redis_wait_timeout_ms, default 1000].
    #[arg(long, value_name = "MS")]
    pub redis_wait_timeout_ms: Option<u64>,

    /// Cluster mode: `strict` refuses to start on a Redis deployment that can lose acknowledged writes (appendonly, appendfsync, maxmemory-policy, replicas); `relaxed` logs a warning and starts [config: redis_durability, default strict].
    #[arg(long, value_name = "strict|relaxed")]
    pub redis_durability: Option<String>,

    /// When the write-ahead log syncs to disk: `always` (before acknowledging), `interval=<ms>` or `never` [config: fsync, default always].
    #[arg(long, value_name = "POLICY")]
    pub fsync: Option<String>,

    /// Start even if the log is corrupt in the middle: cut it at the first bad record and lose what follows (see `baton storage verify`).
    #[arg(long)]
    pub repair: bool,

    /// Start even when listening beyond loopback without any API key, so anyone who can reach the port may do anything [config: insecure, default false].
    #[arg(long)]
    pub insecure: bool,

    /// TLS on the HTTP and wire ports: the certificate chain, PEM, the server's certificate first; needs --tls-key-file; reloaded when it changes and on SIGHUP [config: tls_cert_file, default none].
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The private key of --tls-cert-file, PEM (PKCS#8, PKCS#1 or SEC1) [config: tls_key_file, default none].
    #[arg(long, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Require client certificates signed by a CA of this PEM file (service identities, node to node) [config: tls_client_ca_file, default none].
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Encrypt the log, checkpoints and stream logs with AES-256-GCM under the last key of this file; every key in it decrypts (`baton storage keygen` writes one) [config: encryption_key_file, default none].
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Check a data dir the way start-up reads it, changing nothing.
    #[command(
        long_about = "Check a data dir the way start-up reads it, changing nothing.\n\n        Prints what it found as JSON (checkpoint, records, queues, messages, bytes of a torn         tail that a start would cut). Exits 1 naming the file and byte offset when the log is         corrupt in a place start-up cannot repair by itself; `baton serve --repair` then cuts         the log at that record and starts with what comes before it."
    )]
    Verify(VerifyArgs),
    /// Add a new encryption key to a key file (created with mode 600 if missing); it encrypts from the next start.
    #[command(
        long_about = "Add a new encryption key to a key file (created with mode 600 if missing).\n\n\
        The key gets the next id after the file's highest and becomes the key that encrypts \
        from the broker's next start; the keys before it keep decrypting what they wrote. A \
        key may be removed from the file once `baton storage verify` counts no frame under it."
    )]
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The data directory to check.
    #[arg(
        long,
        env = "BATON_DATA_DIR",
        value_name = "PATH",
        default_value = "baton-data"
    )]
    pub data_dir: PathBuf,

    /// The key file of an encrypted data directory.
    #[arg(long, env = "BATON_ENCRYPTION_KEY_FILE", value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The key file to add a key to.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Create a queue; succeeds unchanged if it exists with the same attributes. Prints the queue as JSON.
    #[command(long_about = "Create a queue; prints the queue as JSON.\n\n\
        Creating a queue that exists with the same attributes succeeds and changes nothing; \
        with other attributes it fails with `queue_exists`. Attributes not given take the \
        server's defaults. Names are 1-80 characters of [A-Za-z0-9_-]; FIFO queue names end \
        in `.fifo`.")]
    Create(CreateArgs),

    /// List every queue with its statistics (JSON, or a table with --table).
    List(ListArgs),

    /// Show one queue's attributes and statistics as JSON.
    Show(QueueName),

    /// Delete a queue and all of its messages.
    Delete(QueueName),

    /// Delete every message of a queue, keeping the queue; prints `{"purged": N}`.
    Purge(QueueName),

    /// Move dead-lettered messages from a dead-letter queue back to their source queue; prints `{"moved": N}`.
    Redrive(RedriveArgs),
}

#[derive(Debug, Args)]
pub struct QueueName {
    /// The queue's name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The queue's name; FIFO queue names end in `.fifo`.
    pub name: String,

    /// Make a FIFO queue: messages of one group are delivered in order, one batch at a time.
    #[arg(long)]
    pub fifo: bool,

    /// How long a received message stays invisible to other consumers (default 30000, max 12 h).
    #[arg(long, value_name = "MS")]
    pub visibility_timeout_ms: Option<u64>,

    /// Delay before a newly sent message becomes visible (max 15 min).
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,

    /// How long an unreceived message is kept (default 4 days, max 14 days).
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,

    /// Largest message: body plus attribute names, types and values (default 1048576).
    #[arg(long, value_name = "BYTES")]
    pub max_message_bytes: Option<u32>,

    /// Default long-poll wait of a receive that does not set one (max 20000).
    #[arg(long, value_name = "MS")]
    pub receive_wait_ms: Option<u64>,

    /// Queue that receives messages received more than --max-receive-count times.
    #[arg(long, value_name = "QUEUE", requires = "max_receive_count")]
    pub dead_letter_queue: Option<String>,

    /// Receives after which a message moves to --dead-letter-queue.
    #[arg(long, value_name = "N", requires = "dead_letter_queue")]
    pub max_receive_count: Option<u32>,

    /// FIFO only: deduplicate by a hash of the body when a send has no dedup id.
    #[arg(long)]
    pub content_based_dedup: bool,

    /// Most messages the queue holds; sends beyond it fail with `queue_full` (429).
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u64>,

    /// Nack backoff: first delay; the delay doubles per receive up to --retry-max-delay-ms.
    #[arg(long, value_name = "MS", requires = "retry_max_delay_ms")]
    pub retry_base_delay_ms: Option<u64>,

    /// Nack backoff: longest delay.
    #[arg(long, value_name = "MS", requires = "retry_base_delay_ms")]
    pub retry_max_delay_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// The dead-letter queue to move messages out of.
    pub name: String,

    /// Move at most this many messages (default: all).
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,

    /// Move them to this queue instead of the queue each came from.
    #[arg(long, value_name = "QUEUE")]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The queue to send to.
    pub queue: String,

    /// The message body; `-` reads it from stdin, verbatim (a trailing newline is kept).
    pub body: String,

    /// FIFO: the message group; messages of one group are delivered in order.
    #[arg(long, value_name = "GROUP")]
    pub group_id: Option<String>,

    /// FIFO: the deduplication id; a second send with it within the dedup window is dropped.
    #[arg(long, value_name = "ID")]
    pub dedup_id: Option<String>,

    /// Delay before the message becomes visible, overriding the queue's (less than the
    /// queue's retention).
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,

    /// Hidden until this time (milliseconds since the epoch, or RFC 3339) instead of a delay.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_time, conflicts_with = "delay_ms")]
    pub deliver_at: Option<u64>,

    /// A string attribute; repeat for several.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic to publish to.
    pub topic: String,

    /// The routing key: dot-separated words, e.g. `order.eu.created`.
    pub routing_key: String,

    /// The message body.
    pub body: String,

    /// A string attribute; repeat for several.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The topic or stream to follow. A name that is both is taken as the topic unless
    /// `--stream` is given.
    #[arg(value_name = "TOPIC|STREAM")]
    pub topic: String,

    /// Follow the stream of this name (without asking the server which one exists).
    #[arg(long)]
    pub stream: bool,

    /// Topics: only messages whose routing key matches this pattern (`*` one word, `#` zero
    /// or more).
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,

    /// Streams: follow only this partition (default: all).
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,

    /// Streams: start at this offset (default: only records appended from now on).
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<u64>,

    /// Stop after printing this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The queue the request goes to.
    pub queue: String,

    /// The request body.
    pub body: String,

    /// How long to wait for the reply.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub timeout_ms: u64,

    /// A string attribute; repeat for several.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attribute)]
    pub attributes: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct RecvArgs {
    /// The queue to receive from.
    pub queue: String,

    /// Most messages to receive, 1..=1000.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub max: u32,

    /// Wait up to this long for a first message (long poll, max 20000); default: the queue's receive_wait_ms.
    #[arg(long, value_name = "MS")]
    pub wait_ms: Option<u64>,

    /// Lease duration of the received messages, overriding the queue's.
    #[arg(long, value_name = "MS")]
    pub visibility_timeout_ms: Option<u64>,

    /// Acknowledge (delete) the messages once they are printed.
    #[arg(long)]
    pub ack: bool,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The queue the messages were received from.
    pub queue: String,

    /// Receipts from `baton recv`.
    #[arg(required = true, value_name = "RECEIPT")]
    pub receipts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NackArgs {
    /// The queue the messages were received from.
    pub queue: String,

    /// Receipts from `baton recv`.
    #[arg(required = true, value_name = "RECEIPT")]
    pub receipts: Vec<String>,

    /// Make the messages visible after this delay instead of the queue's retry backoff.
    #[arg(long, value_name = "MS")]
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The queue the message was sent to.
    pub queue: String,

    /// The message id, as printed by `baton send`.
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchWorkload {
    /// Send only.
    Produce,
    /// Receive and ack only, from a queue filled beforehand.
    Consume,
    /// Send, receive and ack at once; latency from send to receipt.
    E2e,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchApi {
    /// Baton's native JSON API (/v1/...).
    Native,
    /// The Amazon SQS API, JSON 1.0 protocol (SendMessageBatch, ReceiveMessage, DeleteMessageBatch).
    Sqs,
    /// The framed TCP protocol (docs/wire-protocol.md), on connections upgraded from HTTP at
    /// --url (or to --wire-addr).
    Wire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchTarget {
    /// This broker, at --url.
    Baton,
    /// Redis Streams (XADD pipelined, XREADGROUP with a consumer group, XACK); default --target-url redis://127.0.0.1:6379.
    Redis,
    /// RabbitMQ (durable queue, persistent messages, publisher confirms, manual acks, prefetch = --batch); default --target-url amqp://guest:guest@127.0.0.1:5672/%2f.
    #[value(name = "rabbitmq")]
    RabbitMq,
    /// NATS JetStream (file storage, work-queue stream, pull consumer, explicit acks); default --target-url nats://127.0.0.1:4222.
    Nats,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to run.
    #[arg(value_enum)]
    pub workload: BenchWorkload,

    /// Which broker to drive: Baton, or a peer on this machine with the same workloads and bodies (a fresh queue or stream, deleted afterwards).
    #[arg(long, value_enum, default_value_t = BenchTarget::Baton)]
    pub target: BenchTarget,

    /// URL of the peer of --target (not for baton, whose URL is --url).
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,

    /// With --target rabbitmq: a quorum queue instead of a durable classic one.
    #[arg(long)]
    pub rabbitmq_quorum: bool,

    /// Which of the broker's APIs to use.
    #[arg(long, value_enum, default_value_t = BenchApi::Native)]
    pub api: BenchApi,

    /// With --api wire: a dedicated wire port (the server's --wire-listen) instead of
    /// upgrading HTTP connections to --url.
    #[arg(long, value_name = "ADDR:PORT")]
    pub wire_addr: Option<String>,

    /// With --api sqs on a server with keys: the SQS access key id of a key created with
    /// `--sqs`; every SQS request is then signed with AWS Signature Version 4, as an AWS SDK
    /// signs it.
    #[arg(
        long,
        value_name = "ID",
        env = "AWS_ACCESS_KEY_ID",
        requires = "sqs_secret_access_key"
    )]
    pub sqs_access_key_id: Option<String>,

    /// The SQS secret access key that goes with --sqs-access-key-id.
    #[arg(
        long,
        value_name = "SECRET",
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub sqs_secret_access_key: Option<String>,

    /// Concurrent producers, 1..=1000.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub producers: u32,

    /// Concurrent consumers, 1..=1000.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub consumers: u32,

    /// Size of each message body (at least 32: the body starts with its send times).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    pub message_bytes: u32,

    /// Messages per send call and most messages per receive: 1..=1000 (native, peers), 1..=10 (sqs).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub batch: u32,

    /// Most messages per receive (and per ack) for consumers; default: --batch.
    #[arg(long, value_name = "N")]
    pub receive_batch: Option<u32>,

    /// Concurrent send calls per producer.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub inflight: u32,

    /// Baton only: acks a consumer keeps in flight while it receives on (1..=64). With 1 it
    /// waits for each ack before sending the next one.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub ack_inflight: u32,

    /// Talk to Baton over HTTP/2 without TLS (prior knowledge): all calls share one multiplexed
    /// connection, so `--inflight 1000` needs no thousand connections.
    #[arg(long)]
    pub http2: bool,

    /// Messages a second over all producers (open loop); 0 sends as fast as the broker answers.
    #[arg(long, value_name = "MSGS_PER_S", default_value_t = 0)]
    pub rate: u64,

    /// Stop sending after this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub duration_s: u64,

    /// Stop after this many messages (`consume`: fill the queue with this many first).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub messages: u64,

    /// Use this queue (created if missing, kept afterwards) instead of a fresh one.
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,

    /// Long-poll wait of each receive (max 20000; the sqs api rounds up to whole seconds).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub wait_ms: u64,

    /// Print one JSON object with the figures instead of the summary for humans.
    #[arg(long)]
    pub json: bool,

    /// No live progress line (it is also off when stdout is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

pub(crate) fn parse_attribute(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// A subcommand's own `--url` would share the global one's id and silently take its
    /// value (the Baton server's URL).
    #[test]
    fn no_subcommand_redefines_the_global_url_flag() {
        fn check(command: &clap::Command, path: &str) {
            for subcommand in command.get_subcommands() {
                let path = format!("{path} {}", subcommand.get_name());
                for arg in subcommand.get_arguments() {
                    assert!(
                        arg.get_long() != Some("url") && arg.get_id() != "url",
                        "`{path}` defines its own --url"
                    );
                }
                check(subcommand, &path);
            }
        }
        check(&Cli::command(), "baton");
    }

    #[test]
    fn attributes_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_attribute("k=a=b"),
            Ok(("k".to_string(), "a=b".to_string()))
        );
        assert_eq!(parse_attribute("k="), Ok(("k".to_string(), String::new())));
        assert!(parse_attribute("=v").is_err());
        assert!(parse_attribute("kv").is_err());
    }
}
