//! `baton stream ...` and `baton stream group ...`: shapes and help texts.

use baton_sdk::proto::stream::{GroupMode, StartKeyword, StartPosition};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use super::parse_attribute;
use crate::time::parse_time;

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream; succeeds unchanged if it exists with the same attributes. Prints the stream as JSON.
    #[command(
        long_about = "Create a stream; prints the stream as JSON.\n\n\
        A stream keeps its records after they are read, split into --partitions partitions. \
        Creating a stream that exists with the same attributes succeeds and changes nothing; \
        with other attributes it fails with `stream_exists`. Retention bounds apply per \
        partition; without them records are kept forever.",
        after_help = "Examples:\n  \
        baton stream create clicks --partitions 4\n  \
        baton stream create audit --partitions 1 --retention-ms 86400000 --max-records 1000000"
    )]
    Create(StreamCreateArgs),

    /// List every stream with its statistics (JSON, or a table with --table).
    #[command(after_help = "Examples:\n  baton stream list\n  baton stream list --table")]
    List(StreamListArgs),

    /// Show one stream: attributes, partitions (offsets) and consumer groups (lag, pending).
    #[command(
        after_help = "Examples:\n  baton stream show clicks\n  baton stream show clicks --table"
    )]
    Show(StreamShowArgs),

    /// Delete a stream with its records and consumer groups.
    #[command(after_help = "Example:\n  baton stream delete clicks")]
    Delete(StreamNameArg),

    /// Append records; prints where each landed (`{"records": [{"partition", "offset", "timestamp"}]}`).
    #[command(
        long_about = "Append records; prints where each landed as JSON: \
        `{\"records\": [{\"partition\", \"offset\", \"timestamp\"}]}`, in the order given.\n\n\
        Each VALUE is one record; all of them get the same --key, --header and --partition. \
        A record with a key goes to the key's partition (so one key's records keep their \
        order); without key or --partition, records are spread round-robin. The batch is \
        appended whole or not at all. With --producer-id and --sequence, running the same \
        command again appends nothing and prints the original offsets.",
        after_help = "Examples:\n  \
        baton stream append clicks 'opened /pricing' 'clicked buy' --key user-7\n  \
        baton stream append clicks '{\"page\": \"/\"}' --header source=web --partition 2\n  \
        echo 'from a pipe' | baton stream append clicks -\n  \
        baton stream append clicks 'exactly once' --producer-id importer --sequence 17"
    )]
    Append(AppendArgs),

    /// Read records of one partition from an offset or a time; prints `{"records", "next_offset"}`.
    #[command(
        long_about = "Read records of one partition from an offset or a time; prints \
        `{\"records\": [{\"partition\", \"offset\", \"timestamp\", \"key\", \"value\", \
        \"headers\"}], \"next_offset\"}`.\n\n\
        Reading changes nothing: run it again with --from-offset set to `next_offset` to go \
        on. At the end of the partition it waits up to --wait-ms for a record. An offset that \
        retention removed fails with `offset_expired`, naming the first available one.",
        after_help = "Examples:\n  \
        baton stream read clicks --from-offset 0 --max 10\n  \
        baton stream read clicks --partition 2 --from-time 2024-05-01T12:00:00Z --table\n  \
        baton stream read clicks --from-offset 42 --wait-ms 5000"
    )]
    Read(ReadArgs),

    /// Print a stream's records as they are appended, one JSON line each (as `baton tail --stream`).
    #[command(
        long_about = "Print a stream's records as they are appended, one JSON line each.\n\n\
        Each line is `{\"type\": \"record\", \"partition\", \"offset\", \"timestamp\", \"key\", \
        \"value\", \"headers\"}`, or `{\"type\": \"dropped\", \"partition\", \"dropped\", \
        \"dropped_total\", \"next_offset\"}` when retention removed records before they were \
        read. Runs until Ctrl-C, the server ends the stream (it was deleted, say: exit status \
        1), or --count records were printed.",
        after_help = "Examples:\n  \
        baton stream follow clicks\n  \
        baton stream follow clicks --partition 0 --from-offset 0 --count 100"
    )]
    Follow(FollowArgs),

    /// Consumer groups of a stream: create, show, read, ack, pending, claim, seek, delete.
    #[command(subcommand)]
    Group(GroupCommand),
}

#[derive(Debug, Args)]
pub struct StreamNameArg {
    /// The stream's name.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct StreamListArgs {
    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct StreamShowArgs {
    /// The stream's name.
    pub name: String,

    /// Print tables of its partitions and groups for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct StreamCreateArgs {
    /// The stream's name: 1-80 characters of [A-Za-z0-9_-].
    pub name: String,

    /// Number of partitions, 1..=1024.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub partitions: u32,

    /// Remove records older than this (per partition).
    #[arg(long, value_name = "MS")]
    pub retention_ms: Option<u64>,

    /// Keep at most about this many bytes of key, value and headers per partition.
    #[arg(long, value_name = "BYTES")]
    pub retention_bytes: Option<u64>,

    /// Keep at most this many records per partition.
    #[arg(long, value_name = "N")]
    pub max_records: Option<u64>,
}

#[derive(Debug, Args)]
pub struct AppendArgs {
    /// The stream to append to.
    pub stream: String,

    /// The records' values; `-` reads one value from stdin, verbatim.
    #[arg(required = true, value_name = "VALUE")]
    pub values: Vec<String>,

    /// The records' key: it picks the partition, so one key's records stay in order.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Append to this partition instead of the key's or the next round-robin one.
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,

    /// A header of every record; repeat for several.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_attribute)]
    pub headers: Vec<(String, String)>,

    /// Idempotent producer: the producer's name (with --sequence).
    #[arg(long, value_name = "ID", requires = "sequence")]
    pub producer_id: Option<String>,

    /// Idempotent producer: the batch's number, increasing per producer (with --producer-id).
    #[arg(long, value_name = "N", requires = "producer_id")]
    pub sequence: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("from").required(true).args(["from_offset", "from_time"])))]
pub struct ReadArgs {
    /// The stream to read.
    pub stream: String,

    /// The partition to read.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub partition: u32,

    /// Start at this offset.
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<u64>,

    /// Start at the first record at or after this time: milliseconds since the Unix epoch or
    /// RFC 3339 (`2024-05-01T12:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from_time: Option<u64>,

    /// Most records to print, 1..=1000.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: u32,

    /// At the end of the partition, wait up to this long for a record (max 20000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=20_000))]
    pub wait_ms: u64,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct FollowArgs {
    /// The stream to follow.
    pub stream: String,

    /// Follow only this partition (default: all).
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,

    /// Start at this offset (default: only records appended from now on).
    #[arg(long, value_name = "OFFSET")]
    pub from_offset: Option<u64>,

    /// Stop after printing this many records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a consumer group; succeeds unchanged if it exists with the same settings. Prints the group as JSON.
    #[command(
        long_about = "Create a consumer group; prints the group as JSON.\n\n\
        A group has its own position in each partition and a list of records delivered to \
        its consumers and not yet acknowledged (pending). In `partitioned` mode (the default) \
        each partition is read by one live consumer at a time, so one key's records stay in \
        order; in `shared` mode any consumer gets any record. Creating a group that exists \
        with the same settings succeeds; with others it fails with `group_exists`.",
        after_help = "Examples:\n  \
        baton stream group create clicks billing --start earliest\n  \
        baton stream group create clicks audit --start time:2024-05-01T00:00:00Z --mode shared\n  \
        baton stream group create clicks live --start latest --session-timeout-ms 10000"
    )]
    Create(GroupCreateArgs),

    /// Show a group: its start, mode, lag per partition, pending count and live consumers.
    #[command(after_help = "Examples:\n  \
        baton stream group show clicks billing\n  \
        baton stream group show clicks billing --table")]
    Show(GroupShowArgs),

    /// Read new records as a consumer of the group; they stay pending for it until acked.
    #[command(
        long_about = "Read new records as a consumer of the group; prints `{\"records\": [{\"id\", \
        \"partition\", \"offset\", \"timestamp\", \"key\", \"value\", \"headers\", \
        \"delivery_count\"}]}`.\n\n\
        The records are pending for --consumer until `baton stream group ack` takes their \
        ids; records a consumer leaves pending can be taken over with `claim`. With --ack \
        they are acknowledged once printed.",
        after_help = "Examples:\n  \
        baton stream group read clicks billing --consumer w1 --max 10 --wait-ms 5000\n  \
        baton stream group read clicks billing --consumer w1 --ack --table"
    )]
    Read(GroupReadArgs),

    /// Acknowledge records by id (`partition-offset`); prints one result per id.
    #[command(after_help = "Example:\n  baton stream group ack clicks billing 0-17 0-18 3-4")]
    Ack(GroupAckArgs),

    /// List records delivered and not yet acknowledged, with their consumer and idle time.
    #[command(after_help = "Examples:\n  \
        baton stream group pending clicks billing\n  \
        baton stream group pending clicks billing --consumer w1 --max 50 --table")]
    Pending(GroupPendingArgs),

    /// Take over pending records idle for at least --min-idle-ms (a consumer that died, say).
    #[command(
        long_about = "Take over pending records idle for at least --min-idle-ms; prints them as \
        `read` does.\n\n\
        The records become pending for --consumer and their delivery count goes up by one \
        (like Redis XAUTOCLAIM).",
        after_help = "Example:\n  \
        baton stream group claim clicks billing --consumer w2 --min-idle-ms 60000 --max 10"
    )]
    Claim(GroupClaimArgs),

    /// Move the group's position, in every partition or one; prints the group.
    #[command(
        long_about = "Move the group's position, in every partition or only --partition; prints \
        the group as JSON.\n\n\
        POSITION is `earliest`, `latest`, `offset:N` or `time:T` (T in milliseconds since \
        the Unix epoch or RFC 3339). Records already pending stay pending.",
        after_help = "Examples:\n  \
        baton stream group seek clicks billing earliest\n  \
        baton stream group seek clicks billing offset:100 --partition 2\n  \
        baton stream group seek clicks billing time:2024-05-01T12:00:00Z"
    )]
    Seek(GroupSeekArgs),

    /// Delete a consumer group (its positions and pending records).
    #[command(after_help = "Example:\n  baton stream group delete clicks billing")]
    Delete(GroupNameArgs),
}

#[derive(Debug, Args)]
pub struct GroupNameArgs {
    /// The stream.
    pub stream: String,
    /// The consumer group.
    pub group: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupModeArg {
    /// Each partition is read by one live consumer at a time.
    Partitioned,
    /// Any consumer gets any record.
    Shared,
}

impl From<GroupModeArg> for GroupMode {
    fn from(mode: GroupModeArg) -> Self {
        match mode {
            GroupModeArg::Partitioned => GroupMode::Partitioned,
            GroupModeArg::Shared => GroupMode::Shared,
        }
    }
}

#[derive(Debug, Args)]
pub struct GroupCreateArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// Where the group starts: `earliest`, `latest`, `offset:N` or `time:T` (T in
    /// milliseconds since the Unix epoch or RFC 3339).
    #[arg(long, value_name = "POSITION", value_parser = parse_start)]
    pub start: StartPosition,

    /// How records are shared out among the group's consumers [default: partitioned].
    #[arg(long, value_enum)]
    pub mode: Option<GroupModeArg>,

    /// How long a consumer that stopped reading keeps its partitions, 100..=3600000 [default: 30000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub session_timeout_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GroupShowArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// Print a table of the partitions for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct GroupReadArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// The consumer reading (any name; the group learns it on its first read).
    #[arg(long, value_name = "NAME")]
    pub consumer: String,

    /// Most records to read, 1..=1000.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: u32,

    /// Wait up to this long for a first record (max 20000).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=20_000))]
    pub wait_ms: u64,

    /// Acknowledge the records once they are printed.
    #[arg(long)]
    pub ack: bool,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct GroupAckArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// Record ids (`partition-offset`) from `read` or `claim`.
    #[arg(required = true, value_name = "ID", value_parser = parse_record_id)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GroupPendingArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// Only the records pending for this consumer.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,

    /// Most entries to list, 1..=1000 (`count` still counts all) [default: 1000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: Option<u32>,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct GroupClaimArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// The consumer taking the records over.
    #[arg(long, value_name = "NAME")]
    pub consumer: String,

    /// Only records delivered at least this long ago and not acked since.
    #[arg(long, value_name = "MS")]
    pub min_idle_ms: u64,

    /// Most records to take over, 1..=1000 [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: Option<u32>,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct GroupSeekArgs {
    #[command(flatten)]
    pub names: GroupNameArgs,

    /// `earliest`, `latest`, `offset:N` or `time:T`.
    #[arg(value_name = "POSITION", value_parser = parse_start)]
    pub position: StartPosition,

    /// Move only this partition's position (default: every partition).
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,
}

/// `earliest`, `latest`, `offset:N` or `time:T`.
fn parse_start(raw: &str) -> Result<StartPosition, String> {
    match raw {
        "earliest" => return Ok(StartPosition::Keyword(StartKeyword::Earliest)),
        "latest" => return Ok(StartPosition::Keyword(StartKeyword::Latest)),
        _ => {}
    }
    if let Some(offset) = raw.strip_prefix("offset:") {
        return offset
            .parse()
            .map(|offset| StartPosition::Offset { offset })
            .map_err(|_| format!("{offset:?} is not an offset (a whole number)"));
    }
    if let Some(time) = raw.strip_prefix("time:") {
        return parse_time(time).map(|time| StartPosition::Time { time });
    }
    Err(format!(
        "expected `earliest`, `latest`, `offset:N` or `time:T`, got {raw:?}"
    ))
}

/// A record id as `read` prints it (`partition-offset`), checked by the broker's own rule.
fn parse_record_id(raw: &str) -> Result<String, String> {
    match raw.parse::<baton_core::stream::RecordId>() {
        Ok(_) => Ok(raw.to_string()),
        Err(_) => Err(format!(
            "expected a record id `partition-offset` such as 0-17, got {raw:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse_keywords_offsets_and_times() {
        assert_eq!(
            parse_start("earliest"),
            Ok(StartPosition::Keyword(StartKeyword::Earliest))
        );
        assert_eq!(
            parse_start("latest"),
            Ok(StartPosition::Keyword(StartKeyword::Latest))
        );
        assert_eq!(
            parse_start("offset:42"),
            Ok(StartPosition::Offset { offset: 42 })
        );
        assert_eq!(
            parse_start("time:1970-01-01T00:00:01Z"),
            Ok(StartPosition::Time { time: 1000 })
        );
        assert_eq!(parse_start("time:5"), Ok(StartPosition::Time { time: 5 }));
        assert!(parse_start("offset:-1")
            .err()
            .unwrap_or_default()
            .contains("not an offset"));
        assert!(parse_start("time:soon")
            .err()
            .unwrap_or_default()
            .contains("RFC 3339"));
        assert!(parse_start("first")
            .err()
            .unwrap_or_default()
            .contains("`earliest`"));
    }

    #[test]
    fn record_ids_are_partition_dash_offset() {
        assert_eq!(parse_record_id("0-17"), Ok("0-17".to_string()));
        for bad in ["0", "-1", "1-", "a-1", "1-2-3", "99999999999-0"] {
            assert!(parse_record_id(bad).is_err(), "{bad}");
        }
    }
}
