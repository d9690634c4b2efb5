//! `baton sink ...`: shapes and help texts.

use clap::{ArgGroup, Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Archive a stream, a queue or a topic into a PostgreSQL table, exactly once.
    #[command(
        long_about = "Archive a stream, a queue or a topic into a PostgreSQL table, exactly \
        once; prints the sink as JSON.\n\n\
        The server writes batches in transactions that also store where the sink is in its \
        source, so a crash of Baton or PostgreSQL neither loses nor duplicates a row. While \
        PostgreSQL is unreachable the sink is `retrying` and catches up by itself. The same \
        definition again changes nothing; another one under the name is refused \
        (`sink_exists`): delete the sink first. Without --column the table gets the default \
        columns: id, source, partition, offset, key, headers, value (JSON bodies), value_text \
        (other bodies), timestamp.",
        after_help = "Examples:\n  \
        baton sink put access-archive --stream access --postgres postgres://postgres@127.0.0.1/test --table access_events\n  \
        baton sink put orders-archive --queue orders --postgres postgres://app:pw@db/shop --table archive.orders --batch-max 500\n  \
        baton sink put chat-archive --topic chat --pattern 'room.*' --postgres postgres://postgres@127.0.0.1/test \\\n    \
        --table chat --column room='$.room' --column n='$.n:bigint' --column at='$timestamp'"
    )]
    Put(Box<SinkPutArgs>),

    /// List every sink with its state and figures.
    #[command(after_help = "Examples:\n  baton sink list\n  baton sink list --table")]
    List(SinkListArgs),

    /// Show a sink: definition (password hidden), state, rows written, lag, last error.
    #[command(
        after_help = "Examples:\n  baton sink show access-archive\n  baton sink show access-archive --table"
    )]
    Show(SinkShowArgs),

    /// Stop writing; the source keeps the messages until `resume`. Survives restarts.
    #[command(after_help = "Example:\n  baton sink pause access-archive")]
    Pause(SinkNameArg),

    /// Start writing again from where the sink stopped.
    #[command(after_help = "Example:\n  baton sink resume access-archive")]
    Resume(SinkNameArg),

    /// Remove a sink; the table and its rows stay.
    #[command(after_help = "Example:\n  baton sink delete access-archive")]
    Delete(SinkNameArg),
}

#[derive(Debug, Args)]
pub struct SinkNameArg {
    /// The sink.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SinkListArgs {
    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct SinkShowArgs {
    /// The sink.
    pub name: String,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["stream", "queue", "topic"])))]
pub struct SinkPutArgs {
    /// The sink's name: 1 to 68 characters of A-Z, a-z, 0-9, `_` and `-`.
    pub name: String,

    /// Read this stream by offset (or through --group).
    #[arg(long)]
    pub stream: Option<String>,

    /// Read the stream through this consumer group (created at the start if missing).
    #[arg(long)]
    pub group: Option<String>,

    /// Read this queue (each message is acked once its row is committed).
    #[arg(long)]
    pub queue: Option<String>,

    /// Read what is published to this topic (from now on).
    #[arg(long)]
    pub topic: Option<String>,

    /// Only the topic's routing keys matching this pattern (`*` one word, `#` any).
    #[arg(long)]
    pub pattern: Option<String>,

    /// The database: postgres://user[:password]@host[:port]/database.
    #[arg(long = "postgres", value_name = "URL")]
    pub postgres_url: String,

    /// The table: `table` or `schema.table`.
    #[arg(long)]
    pub table: String,

    /// Use an existing table instead of creating it when missing.
    #[arg(long)]
    pub no_create_table: bool,

    /// A column filled from each message: NAME='$.json.path', NAME='$.path:TYPE', or NAME
    /// = $id, $source, $partition, $offset, $key, $headers, $value, $value_text, $timestamp.
    /// Repeat for several; replaces the default columns.
    #[arg(long = "column", value_name = "NAME=PATH[:TYPE]", value_parser = parse_column)]
    pub columns: Vec<(String, String, Option<String>)>,

    /// Most rows per transaction, 1..=10000 [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: Option<u32>,

    /// How long a batch that is not full waits for more rows, 0..=60000 [default: 200].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub flush_ms: Option<u64>,
}

/// `name=$.path` or `name=$.path:type`.
fn parse_column(raw: &str) -> Result<(String, String, Option<String>), String> {
    let Some((name, rest)) = raw.split_once('=') else {
        return Err(format!("expected NAME=PATH[:TYPE], got {raw:?}"));
    };
    let (path, sql_type) = match rest.split_once(':') {
        Some((path, sql_type)) => (path, Some(sql_type.to_string())),
        None => (rest, None),
    };
    if name.is_empty() || path.is_empty() {
        return Err(format!("expected NAME=PATH[:TYPE], got {raw:?}"));
    }
    Ok((name.to_string(), path.to_string(), sql_type))
}
