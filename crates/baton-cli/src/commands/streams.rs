//! `baton stream ...`: create, list, show, delete, append, read and follow streams. The
//! consumer groups (`baton stream group ...`) are in `groups.rs`.

use anyhow::bail;
use baton_sdk::proto::stream::{
    AppendResponse, CreateStream, GroupMode, NewRecord, Record, StartKeyword, StartPosition,
    StreamInfo, StreamList,
};
// The SDK calls it `From`; renamed so it does not hide the prelude's trait.
use baton_sdk::streams::From as ReadFrom;
use baton_sdk::Client;

use crate::args::{AppendArgs, ReadArgs, StreamCommand};
use crate::client::read_stdin_body;
use crate::live::{follow_stream, Follow};
use crate::output::{or_dash, pairs, print_json, print_table, print_text, render_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: StreamCommand) -> anyhow::Result<()> {
    match command {
        StreamCommand::Create(args) => {
            let attributes = CreateStream {
                partitions: args.partitions,
                retention_ms: args.retention_ms,
                retention_bytes: args.retention_bytes,
                max_records: args.max_records,
            };
            print_json(&client.create_stream(&args.name, &attributes).await?)
        }
        StreamCommand::List(args) => {
            let streams = client.list_streams().await?;
            if args.table {
                print_stream_list(&streams)
            } else {
                print_json(&StreamList { streams })
            }
        }
        StreamCommand::Show(args) => {
            let stream = client.get_stream(&args.name).await?;
            if args.table {
                print_stream(&stream)
            } else {
                print_json(&stream)
            }
        }
        StreamCommand::Delete(args) => client.delete_stream(&args.name).await.map_err(Into::into),
        StreamCommand::Append(args) => append(client, args).await,
        StreamCommand::Read(args) => read(client, args).await,
        StreamCommand::Follow(args) => {
            let follow = Follow {
                stream: &args.stream,
                partition: args.partition,
                from_offset: args.from_offset,
                count: args.count,
            };
            follow_stream(client, follow).await
        }
        StreamCommand::Group(command) => super::groups::run(client, command).await,
    }
}

async fn append(client: &Client, args: AppendArgs) -> anyhow::Result<()> {
    if args.values.iter().filter(|value| *value == "-").count() > 1 {
        bail!("only one VALUE can be `-` (stdin)");
    }
    let headers: std::collections::BTreeMap<String, String> = args.headers.into_iter().collect();
    let mut records = Vec::with_capacity(args.values.len());
    for value in args.values {
        let value = if value == "-" {
            read_stdin_body()?
        } else {
            value
        };
        records.push(NewRecord {
            key: args.key.clone(),
            value,
            headers: headers.clone(),
            partition: args.partition,
        });
    }
    let producer = args.producer_id.zip(args.sequence);
    let records = client.append(&args.stream, records, producer).await?;
    print_json(&AppendResponse { records })
}

async fn read(client: &Client, args: ReadArgs) -> anyhow::Result<()> {
    let from = match (args.from_offset, args.from_time) {
        (Some(offset), _) => ReadFrom::Offset(offset),
        (None, Some(time)) => ReadFrom::Time(time),
        // clap's required group "from" gives one of the two, and only one.
        (None, None) => bail!("give --from-offset or --from-time"),
    };
    let response = client
        .read_stream(&args.stream, args.partition, from, args.max, args.wait_ms)
        .await?;
    if args.table {
        print_records(&response.records)
    } else {
        print_json(&response)
    }
}

fn print_records(records: &[Record]) -> anyhow::Result<()> {
    let header = [
        "PARTITION",
        "OFFSET",
        "TIMESTAMP",
        "KEY",
        "HEADERS",
        "VALUE",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            vec![
                record.partition.to_string(),
                record.offset.to_string(),
                format_time(record.timestamp),
                or_dash(record.key.as_ref()),
                pairs(&record.headers),
                record.value.clone(),
            ]
        })
        .collect();
    print_table(&header, &rows)
}

fn print_stream_list(streams: &[StreamInfo]) -> anyhow::Result<()> {
    let header = [
        "NAME",
        "PARTITIONS",
        "RECORDS",
        "BYTES",
        "GROUPS",
        "RETENTION_MS",
        "RETENTION_BYTES",
        "MAX_RECORDS",
    ];
    let rows: Vec<Vec<String>> = streams
        .iter()
        .map(|stream| {
            let attributes = &stream.attributes;
            vec![
                stream.name.clone(),
                attributes.partitions.to_string(),
                stream.stats.records.to_string(),
                stream.stats.bytes.to_string(),
                stream.stats.groups.len().to_string(),
                or_dash(attributes.retention_ms),
                or_dash(attributes.retention_bytes),
                or_dash(attributes.max_records),
            ]
        })
        .collect();
    print_table(&header, &rows)
}

/// Two tables: the partitions, then the consumer groups.
fn print_stream(stream: &StreamInfo) -> anyhow::Result<()> {
    let partitions: Vec<Vec<String>> = stream
        .stats
        .partitions
        .iter()
        .map(|partition| {
            vec![
                partition.partition.to_string(),
                partition.first_offset.to_string(),
                partition.next_offset.to_string(),
                or_dash(partition.last_offset),
                partition.records.to_string(),
                partition.bytes.to_string(),
            ]
        })
        .collect();
    let groups: Vec<Vec<String>> = stream
        .stats
        .groups
        .iter()
        .map(|group| {
            vec![
                group.name.clone(),
                mode_text(group.mode).to_string(),
                start_text(group.start),
                group.stats.lag_total.to_string(),
                group.stats.pending.to_string(),
                group.stats.consumers.len().to_string(),
            ]
        })
        .collect();
    let text = render_table(
        &[
            "PARTITION",
            "FIRST_OFFSET",
            "NEXT_OFFSET",
            "LAST_OFFSET",
            "RECORDS",
            "BYTES",
        ],
        &partitions,
    ) + "\n"
        + &render_table(
            &["GROUP", "MODE", "START", "LAG", "PENDING", "CONSUMERS"],
            &groups,
        );
    print_text(&text)
}

pub(crate) fn mode_text(mode: GroupMode) -> &'static str {
    match mode {
        GroupMode::Partitioned => "partitioned",
        GroupMode::Shared => "shared",
    }
}

/// A start position as `--start` takes it, the time in RFC 3339.
pub(crate) fn start_text(start: StartPosition) -> String {
    match start {
        StartPosition::Keyword(StartKeyword::Earliest) => "earliest".to_string(),
        StartPosition::Keyword(StartKeyword::Latest) => "latest".to_string(),
        StartPosition::Offset { offset } => format!("offset:{offset}"),
        StartPosition::Time { time } => format!("time:{}", format_time(time)),
    }
}
