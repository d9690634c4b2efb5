//! `baton schedule ...`: put, list, show, pause, resume, fire and delete schedules.

use baton_sdk::proto::{self, ScheduleInfo};
use baton_sdk::Client;

use crate::args::{MissedArg, ScheduleCommand, SchedulePutArgs};
use crate::output::{print_json, print_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: ScheduleCommand) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::Put(args) => {
            let name = args.name.clone();
            print_json(&client.put_schedule(&name, &put_request(*args)).await?)
        }
        ScheduleCommand::List(args) => {
            let list = client
                .list_schedules(args.after.as_deref(), args.max)
                .await?;
            if args.table {
                print_schedules(&list.schedules)
            } else {
                print_json(&list)
            }
        }
        ScheduleCommand::Show(args) => {
            let info = client.get_schedule(&args.name).await?;
            if args.table {
                print_schedules(std::slice::from_ref(&info))
            } else {
                print_json(&info)
            }
        }
        ScheduleCommand::Pause(args) => print_json(&client.pause_schedule(&args.name).await?),
        ScheduleCommand::Resume(args) => print_json(&client.resume_schedule(&args.name).await?),
        ScheduleCommand::Fire(args) => print_json(&client.fire_schedule(&args.name).await?),
        ScheduleCommand::Delete(args) => {
            client.delete_schedule(&args.name).await?;
            print_json(&serde_json::json!({ "deleted": args.name }))
        }
    }
}

fn put_request(args: SchedulePutArgs) -> proto::PutSchedule {
    proto::PutSchedule {
        cron: args.cron,
        timezone: args.timezone,
        at: args.at.map(proto::Instant::Millis),
        target: proto::ScheduleTarget {
            queue: args.queue,
            topic: args.topic,
            stream: args.stream,
        },
        message: proto::ScheduleMessage {
            body: args.body,
            attributes: args.attributes.into_iter().collect(),
            group_id: args.group_id,
            routing_key: args.routing_key,
            key: args.key,
        },
        missed: args.missed.map(|m| {
            match m {
                MissedArg::Skip => "skip",
                MissedArg::Once => "once",
                MissedArg::All => "all",
            }
            .to_string()
        }),
        start_at: args.start_at.map(proto::Instant::Millis),
        end_at: args.end_at.map(proto::Instant::Millis),
        paused: args.paused.then_some(true),
    }
}

fn print_schedules(schedules: &[ScheduleInfo]) -> anyhow::Result<()> {
    let header = [
        "NAME",
        "WHEN",
        "TARGET",
        "STATE",
        "NEXT_FIRE",
        "LAST_OUTCOME",
    ];
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            let when = match (&s.cron, &s.timezone, s.at) {
                (Some(cron), Some(zone), _) => format!("{cron} ({zone})"),
                (_, _, Some(at)) => format!("at {}", format_time(at)),
                _ => String::new(),
            };
            let target = match (&s.target.queue, &s.target.topic, &s.target.stream) {
                (Some(q), _, _) => format!("queue {q}"),
                (_, Some(t), _) => format!("topic {t}"),
                (_, _, Some(st)) => format!("stream {st}"),
                _ => String::new(),
            };
            let next = s
                .next_fires
                .first()
                .map_or("-".to_string(), |t| format_time(*t));
            let last = s.last_outcome.as_ref().map_or("-".to_string(), |o| {
                let result = if o.ok { "ok" } else { "failed" };
                format!("{result} at {}: {}", format_time(o.fired_at), o.detail)
            });
            vec![s.name.clone(), when, target, s.state.clone(), next, last]
        })
        .collect();
    print_table(&header, &rows)
}
