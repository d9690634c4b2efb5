//! `baton publish`, `baton tail` and `baton request`: topics, live subscriptions and
//! request/response from the command line.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use baton_sdk::proto::{AttributeValue, LiveFrame, PublishMessage, RequestMessage};
use baton_sdk::{Client, LiveEvent};

use crate::args::{PublishArgs, RequestArgs, TailArgs};
use crate::client::print_json;

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

pub async fn tail(client: &Client, args: TailArgs) -> anyhow::Result<()> {
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
        let line = serde_json::to_string(&frame).context("cannot encode the output as JSON")?;
        // One line per event, flushed at once, so pipes see messages as they arrive.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").context("cannot write to stdout")?;
        stdout.flush().context("cannot write to stdout")?;
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
