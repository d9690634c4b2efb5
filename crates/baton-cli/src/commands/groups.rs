//! `baton stream group ...`: consumer groups of a stream (create, show, read, ack, pending,
//! claim, seek, delete).

use baton_sdk::proto::stream::{
    CreateGroup, GroupClaim, GroupInfo, GroupRead, GroupRecord, GroupRecords, GroupSeek,
    PendingList,
};
use baton_sdk::Client;

use super::streams::{mode_text, start_text};
use crate::args::{GroupCommand, GroupReadArgs};
use crate::client::check_batch;
use crate::output::{or_dash, pairs, print_json, print_table, print_text, render_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Create(args) => {
            let request = CreateGroup {
                start: args.start,
                mode: args.mode.map(Into::into),
                session_timeout_ms: args.session_timeout_ms,
            };
            let (stream, group) = (&args.names.stream, &args.names.group);
            print_json(&client.create_group(stream, group, &request).await?)
        }
        GroupCommand::Show(args) => {
            let group = client
                .get_group(&args.names.stream, &args.names.group)
                .await?;
            if args.table {
                print_group(&group)
            } else {
                print_json(&group)
            }
        }
        GroupCommand::Read(args) => read(client, args).await,
        GroupCommand::Ack(args) => {
            let (stream, group) = (&args.names.stream, &args.names.group);
            let response = client.group_ack(stream, group, args.ids).await?;
            print_json(&response)?;
            check_batch("ack", &response)
        }
        GroupCommand::Pending(args) => {
            let (stream, group) = (&args.names.stream, &args.names.group);
            let pending = client
                .group_pending_at_most(stream, group, args.consumer.as_deref(), args.max)
                .await?;
            if args.table {
                print_pending(&pending)
            } else {
                print_json(&pending)
            }
        }
        GroupCommand::Claim(args) => {
            let request = GroupClaim {
                consumer: args.consumer,
                min_idle_ms: args.min_idle_ms,
                max: args.max,
            };
            let (stream, group) = (&args.names.stream, &args.names.group);
            let records = client.group_claim(stream, group, &request).await?;
            print_records(records, args.table)
        }
        GroupCommand::Seek(args) => {
            let request = GroupSeek {
                position: args.position,
                partition: args.partition,
            };
            let (stream, group) = (&args.names.stream, &args.names.group);
            print_json(&client.group_seek(stream, group, &request).await?)
        }
        GroupCommand::Delete(args) => client
            .delete_group(&args.stream, &args.group)
            .await
            .map_err(Into::into),
    }
}

/// Prints before acking, as `baton recv --ack` does: records whose printing failed stay
/// pending and can be claimed, instead of being lost.
async fn read(client: &Client, args: GroupReadArgs) -> anyhow::Result<()> {
    let request = GroupRead {
        consumer: args.consumer,
        max: Some(args.max),
        wait_ms: Some(args.wait_ms),
    };
    let (stream, group) = (&args.names.stream, &args.names.group);
    let records = client.group_read(stream, group, &request).await?;
    let ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
    print_records(records, args.table)?;
    if !args.ack || ids.is_empty() {
        return Ok(());
    }
    let response = client.group_ack(stream, group, ids).await?;
    check_batch("ack", &response)
}

fn print_records(records: Vec<GroupRecord>, table: bool) -> anyhow::Result<()> {
    if !table {
        return print_json(&GroupRecords { records });
    }
    let header = [
        "ID",
        "PARTITION",
        "OFFSET",
        "TIMESTAMP",
        "DELIVERIES",
        "KEY",
        "HEADERS",
        "VALUE",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            vec![
                record.id.clone(),
                record.partition.to_string(),
                record.offset.to_string(),
                format_time(record.timestamp),
                record.delivery_count.to_string(),
                or_dash(record.key.as_ref()),
                pairs(&record.headers),
                record.value.clone(),
            ]
        })
        .collect();
    print_table(&header, &rows)
}

fn print_pending(pending: &PendingList) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = pending
        .pending
        .iter()
        .map(|entry| {
            vec![
                entry.id.clone(),
                entry.consumer.clone(),
                entry.idle_ms.to_string(),
                entry.delivery_count.to_string(),
            ]
        })
        .collect();
    print_table(&["ID", "CONSUMER", "IDLE_MS", "DELIVERIES"], &rows)
}

/// Two tables: the group, then its partitions with their lag and owner.
fn print_group(group: &GroupInfo) -> anyhow::Result<()> {
    let stats = &group.stats;
    let summary = vec![vec![
        group.name.clone(),
        mode_text(group.mode).to_string(),
        start_text(group.start),
        group.session_timeout_ms.to_string(),
        stats.lag_total.to_string(),
        stats.pending.to_string(),
        stats.consumers.len().to_string(),
    ]];
    let partitions: Vec<Vec<String>> = stats
        .lag
        .iter()
        .enumerate()
        .map(|(partition, lag)| {
            let owner = stats.consumers.iter().find(|consumer| {
                u32::try_from(partition).is_ok_and(|p| consumer.partitions.contains(&p))
            });
            vec![
                partition.to_string(),
                lag.to_string(),
                or_dash(owner.map(|consumer| &consumer.name)),
            ]
        })
        .collect();
    let text = render_table(
        &[
            "GROUP",
            "MODE",
            "START",
            "SESSION_TIMEOUT_MS",
            "LAG",
            "PENDING",
            "CONSUMERS",
        ],
        &summary,
    ) + "\n"
        + &render_table(&["PARTITION", "LAG", "OWNER"], &partitions);
    print_text(&text)
}
