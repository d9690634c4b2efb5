//! `baton publish`, `baton tail` and `baton request`: topics, live subscriptions (of topics
//! and streams) and request/response from the command line.

use std::collections::BTreeMap;

use baton_sdk::proto::stream::StreamLiveFrame;
use baton_sdk::proto::{AttributeValue, ErrorCode, LiveFrame, PublishMessage, RequestMessage};
use baton_sdk::stream_live::StreamEvent;
use baton_sdk::{Client, LiveEvent};

use crate::args::{PublishArgs, RequestArgs, TailArgs};
use crate::output::{print_json, print_line};

fn attributes(pairs: Vec<(String, String)>) -> BTreeMap<String, AttributeValue> {
    pairs
        .into_iter()
        .map(|(key, value)| (key, AttributeValue::Plain(value)))
        .collect()
}

pub async fn publish(client: &Client, args: PublishArgs) -> anyhow::Result<()> {
    let message = PublishMessage {
        routing_key: args.routing_key,
        body: args.body,
        attributes: attributes(args.attributes),
        ..PublishMessage::default()
    };
    let response = client.publish(&args.topic, vec![message]).await?;
    print_json(&response)
}

/// Whether `tail` follows a stream: `--stream`, or no topic but a stream of that name.
async fn tail_is_stream(client: &Client, args: &TailArgs) -> anyhow::Result<bool> {
    if args.stream {
        return Ok(true);
    }
    let not_found = |error: &baton_sdk::Error, code: ErrorCode| matches!(error, baton_sdk::Error::Api { code: c, .. } if *c == code);
    match client.get_topic(&args.topic).await {
        Ok(_) => return Ok(false),
        Err(error) if not_found(&error, ErrorCode::TopicNotFound) => {}
        Err(error) => return Err(error.into()),
    }
    match client.get_stream(&args.topic).await {
        Ok(_) => Ok(true),
        Err(error) if not_found(&error, ErrorCode::StreamNotFound) => {
            anyhow::bail!("there is no topic or stream named {:?}", args.topic)
        }
        Err(error) => Err(error.into()),
    }
}

/// Where a stream follower starts and when it stops (`baton tail` on a stream, `baton stream
/// follow`).
pub struct Follow<'a> {
    pub stream: &'a str,
    pub partition: Option<u32>,
    pub from_offset: Option<u64>,
    pub count: Option<u64>,
}

/// Follows a stream: one JSON line per record (`{"type": "record", ...}`) or skip report
/// (`{"type": "dropped", ...}`).
pub async fn follow_stream(client: &Client, follow: Follow<'_>) -> anyhow::Result<()> {
    let mut follower = client
        .follow_stream(follow.stream, follow.partition, follow.from_offset)
        .await?;
    let mut printed = 0u64;
    while follow.count.is_none_or(|count| printed < count) {
        let Some(event) = follower.next().await? else {
            break;
        };
        let frame = match event {
            StreamEvent::Record(record) => {
                printed += 1;
                StreamLiveFrame::Record(record)
            }
            StreamEvent::Dropped(dropped) => StreamLiveFrame::Dropped(dropped),
            StreamEvent::Error(error) => {
                anyhow::bail!(
                    "the server ended the stream: {}: {}",
                    baton_sdk::code_name(error.code),
                    error.message
                )
            }
        };
        print_line(&frame)?;
    }
    Ok(())
}

pub async fn tail(client: &Client, args: TailArgs) -> anyhow::Result<()> {
    if tail_is_stream(client, &args).await? {
        if args.pattern.is_some() {
            anyhow::bail!("--pattern applies to topics; {:?} is a stream", args.topic);
        }
        let follow = Follow {
            stream: &args.topic,
            partition: args.partition,
            from_offset: args.from_offset,
            count: args.count,
        };
        return follow_stream(client, follow).await;
    }
    if args.partition.is_some() || args.from_offset.is_some() {
        anyhow::bail!(
            "--partition and --from-offset apply to streams; {:?} is a topic",
            args.topic
        );
    }
    let mut stream = client.live(&args.topic, args.pattern.as_deref()).await?;
    let mut printed = 0u64;
    while args.count.is_none_or(|count| printed < count) {
        let Some(event) = stream.next().await? else {
            break;
        };
        let frame = match event {
            LiveEvent::Message(message) => {
                printed += 1;
                LiveFrame::Message(message)
            }
            LiveEvent::Dropped(dropped) => LiveFrame::Dropped(dropped),
        };
        print_line(&frame)?;
    }
    Ok(())
}

pub async fn request(client: &Client, args: RequestArgs) -> anyhow::Result<()> {
    let request = RequestMessage {
        body: args.body,
        attributes: attributes(args.attributes),
        timeout_ms: args.timeout_ms,
        group_id: None,
        dedup_id: None,
    };
    let response = client.request(&args.queue, &request).await?;
    print_json(&response)
}
