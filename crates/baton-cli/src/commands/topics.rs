//! `baton topic ...`: topics and their subscriptions (create, list, show, subscribe,
//! unsubscribe, delete). Publishing and following are `baton publish` and `baton tail`.

use baton_sdk::proto::{
    PutSubscription, SubscriptionInfo, SubscriptionTarget, TopicInfo, TopicList,
};
use baton_sdk::Client;

use crate::args::{SubscribeArgs, TopicCommand};
use crate::output::{or_dash, print_json, print_table, print_text, render_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: TopicCommand) -> anyhow::Result<()> {
    match command {
        TopicCommand::Create(args) => print_json(&client.create_topic(&args.name).await?),
        TopicCommand::List(args) => {
            let topics = client.list_topics().await?;
            if args.table {
                print_topic_list(&topics)
            } else {
                print_json(&TopicList { topics })
            }
        }
        TopicCommand::Show(args) => {
            let topic = client.get_topic(&args.name).await?;
            if args.table {
                print_topic(&topic)
            } else {
                print_json(&topic)
            }
        }
        TopicCommand::Delete(args) => client.delete_topic(&args.name).await.map_err(Into::into),
        TopicCommand::Subscribe(args) => subscribe(client, args).await,
        TopicCommand::Subscriptions(args) => {
            let subscriptions = client.get_topic(&args.name).await?.subscriptions;
            if args.table {
                print_table(&SUBSCRIPTION_HEADER, &subscription_rows(&subscriptions))
            } else {
                print_json(&serde_json::json!({ "subscriptions": subscriptions }))
            }
        }
        TopicCommand::Subscription(args) => print_json(
            &client
                .get_subscription(&args.topic, &args.subscription)
                .await?,
        ),
        TopicCommand::Unsubscribe(args) => client
            .unsubscribe(&args.topic, &args.subscription)
            .await
            .map_err(Into::into),
    }
}

async fn subscribe(client: &Client, args: SubscribeArgs) -> anyhow::Result<()> {
    // clap's required group "target" gives exactly one of queue, stream and endpoint.
    let headers = args
        .endpoint
        .is_some()
        .then(|| args.headers.into_iter().collect());
    let request = PutSubscription {
        target: SubscriptionTarget {
            queue: args.queue,
            stream: args.stream,
            url: args.endpoint,
            headers,
        },
        pattern: args.pattern,
        filter: args.filter,
    };
    print_json(
        &client
            .subscribe(&args.topic, &args.subscription, &request)
            .await?,
    )
}

fn print_topic_list(topics: &[TopicInfo]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = topics.iter().map(topic_row).collect();
    print_table(&TOPIC_HEADER, &rows)
}

/// Two tables: the topic's counters, then its subscriptions.
fn print_topic(topic: &TopicInfo) -> anyhow::Result<()> {
    let text = render_table(&TOPIC_HEADER, &[topic_row(topic)])
        + "\n"
        + &render_table(
            &SUBSCRIPTION_HEADER,
            &subscription_rows(&topic.subscriptions),
        );
    print_text(&text)
}

const TOPIC_HEADER: [&str; 7] = [
    "NAME",
    "SUBSCRIPTIONS",
    "PUBLISHED",
    "DELIVERED",
    "UNMATCHED",
    "LIVE_SUBSCRIBERS",
    "CREATED_AT",
];

fn topic_row(topic: &TopicInfo) -> Vec<String> {
    vec![
        topic.name.clone(),
        topic.subscriptions.len().to_string(),
        topic.stats.published_total.to_string(),
        topic.stats.delivered_total.to_string(),
        topic.stats.unmatched_total.to_string(),
        topic.stats.live_subscribers.to_string(),
        format_time(topic.created_at),
    ]
}

const SUBSCRIPTION_HEADER: [&str; 4] = ["SUBSCRIPTION", "TARGET", "PATTERN", "FILTER"];

/// A target as `kind:name`; a URL target's headers are left out (they may hold secrets,
/// and the JSON output has them).
fn subscription_rows(subscriptions: &[SubscriptionInfo]) -> Vec<Vec<String>> {
    subscriptions
        .iter()
        .map(|subscription| {
            let target = &subscription.target;
            let target = match (&target.queue, &target.stream, &target.url) {
                (Some(queue), _, _) => format!("queue:{queue}"),
                (_, Some(stream), _) => format!("stream:{stream}"),
                (_, _, Some(url)) => format!("url:{url}"),
                _ => "-".to_string(),
            };
            vec![
                subscription.name.clone(),
                target,
                or_dash(subscription.pattern.as_ref()),
                or_dash(subscription.filter.as_ref()),
            ]
        })
        .collect()
}
