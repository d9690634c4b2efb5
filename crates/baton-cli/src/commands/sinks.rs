//! `baton sink ...`: put, list, show, pause, resume and delete sinks into PostgreSQL.

use baton_sdk::proto::{PostgresTarget, SinkColumn, SinkDefinition, SinkInfo, SinkSource};
use baton_sdk::Client;

use crate::args::{SinkCommand, SinkPutArgs};
use crate::output::{or_dash, print_json, print_table};

pub async fn run(client: &Client, command: SinkCommand) -> anyhow::Result<()> {
    match command {
        SinkCommand::Put(args) => {
            let name = args.name.clone();
            print_json(&client.put_sink(&name, &definition(*args)).await?)
        }
        SinkCommand::List(args) => {
            let sinks = client.list_sinks().await?;
            if args.table {
                print_sinks(&sinks)
            } else {
                print_json(&serde_json::json!({ "sinks": sinks }))
            }
        }
        SinkCommand::Show(args) => {
            let sink = client.get_sink(&args.name).await?;
            if args.table {
                print_sinks(&[sink])
            } else {
                print_json(&sink)
            }
        }
        SinkCommand::Pause(args) => print_json(&client.set_sink_paused(&args.name, true).await?),
        SinkCommand::Resume(args) => print_json(&client.set_sink_paused(&args.name, false).await?),
        SinkCommand::Delete(args) => client.delete_sink(&args.name).await.map_err(Into::into),
    }
}

fn definition(args: SinkPutArgs) -> SinkDefinition {
    let columns = (!args.columns.is_empty()).then(|| {
        args.columns
            .into_iter()
            .map(|(name, path, sql_type)| {
                let column = match sql_type {
                    Some(sql_type) => SinkColumn::Typed { path, sql_type },
                    None => SinkColumn::Path(path),
                };
                (name, column)
            })
            .collect()
    });
    SinkDefinition {
        source: SinkSource {
            stream: args.stream,
            group: args.group,
            topic: args.topic,
            pattern: args.pattern,
            queue: args.queue,
        },
        postgres: PostgresTarget {
            url: args.postgres_url,
            table: args.table,
            create_table: args.no_create_table.then_some(false),
            columns,
        },
        batch_max: args.batch_max,
        flush_ms: args.flush_ms,
    }
}

fn source(sink: &SinkInfo) -> String {
    let s = &sink.definition.source;
    match (&s.stream, &s.group, &s.queue, &s.topic, &s.pattern) {
        (Some(stream), Some(group), ..) => format!("stream {stream} (group {group})"),
        (Some(stream), None, ..) => format!("stream {stream}"),
        (_, _, Some(queue), ..) => format!("queue {queue}"),
        (_, _, _, Some(topic), Some(pattern)) => format!("topic {topic} ({pattern})"),
        (_, _, _, Some(topic), None) => format!("topic {topic}"),
        _ => "-".to_string(),
    }
}

fn print_sinks(sinks: &[SinkInfo]) -> anyhow::Result<()> {
    let header = [
        "NAME",
        "SOURCE",
        "TABLE",
        "STATE",
        "ROWS",
        "LAG",
        "ERRORS",
        "LAST_ERROR",
    ];
    let rows: Vec<Vec<String>> = sinks
        .iter()
        .map(|sink| {
            vec![
                sink.name.clone(),
                source(sink),
                sink.definition.postgres.table.clone(),
                sink.state.clone(),
                sink.stats.rows_written_total.to_string(),
                sink.stats.lag.to_string(),
                sink.stats.errors_total.to_string(),
                or_dash(sink.stats.last_error.clone()),
            ]
        })
        .collect();
    print_table(&header, &rows)
}
