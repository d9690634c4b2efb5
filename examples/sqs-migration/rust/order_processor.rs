//! An order processor written for Amazon SQS with the AWS SDK for Rust (`aws-sdk-sqs`) —
//! nothing in it knows about Baton; it is the Rust twin of `../order_processor.py`.
//!
//! It is configured by the standard AWS environment variables: `AWS_ENDPOINT_URL` (when set),
//! `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`. (An
//! application would let `aws_config::load_from_env()` read them; this one reads the same
//! variables itself so that it needs only `aws-sdk-sqs`, which Baton's tests already build.)
//! It creates a work queue with a dead-letter queue and a FIFO payments queue, sends orders in
//! a batch, processes them with long polling, gives a poison message back until it is
//! dead-lettered, handles a payment sequence in order with deduplication, and prints what it
//! saw as JSON.
//!
//! Run: `cargo run -p baton-cli --example sqs-order-processor` (built with baton-cli because
//! `aws-sdk-sqs` is one of its dev-dependencies).

use std::collections::HashMap;

use anyhow::{Context, Result};
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use serde_json::{json, Value};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The client as the AWS SDK's default configuration chain would build it from the environment.
fn client_from_env() -> Result<Client> {
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .context("set AWS_REGION or AWS_DEFAULT_REGION")?;
    let key = env("AWS_ACCESS_KEY_ID").context("set AWS_ACCESS_KEY_ID")?;
    let secret = env("AWS_SECRET_ACCESS_KEY").context("set AWS_SECRET_ACCESS_KEY")?;
    let mut config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new(key, secret, None, None, "environment"));
    if let Some(endpoint) = env("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    Ok(Client::from_conf(config.build()))
}

async fn create_queue(
    sqs: &Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<String> {
    let mut create = sqs.create_queue().queue_name(name);
    for (attribute, value) in attributes {
        create = create.attributes(attribute.clone(), value);
    }
    let created = create.send().await?;
    created
        .queue_url
        .context("CreateQueue answered no QueueUrl")
}

async fn visible_messages(sqs: &Client, url: &str) -> Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    Ok(attributes
        .get(&QueueAttributeName::ApproximateNumberOfMessages)
        .cloned()
        .unwrap_or_default())
}

async fn send_orders(sqs: &Client, url: &str) -> Result<usize> {
    let mut batch = sqs.send_message_batch().queue_url(url);
    for n in 1..=10 {
        let customer = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(format!("customer-{}", n % 3))
            .build()?;
        batch = batch.entries(
            SendMessageBatchRequestEntry::builder()
                .id(format!("order-{n}"))
                .message_body(json!({"order": n, "total": 10 * n}).to_string())
                .message_attributes("customer", customer)
                .build()?,
        );
    }
    let sent = batch.send().await?;
    sqs.send_message()
        .queue_url(url)
        .message_body(json!({"order": 666, "poison": true}).to_string())
        .send()
        .await?;
    Ok(sent.successful.len() + 1)
}

/// Processes the orders; the poison message is given back until SQS dead-letters it.
async fn process_orders(sqs: &Client, url: &str, dlq_url: &str) -> Result<(Vec<u64>, u64, u32)> {
    let (mut processed, mut total, mut poison_receives) = (Vec::new(), 0, 0);
    for _ in 0..50 {
        let answer = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await?;
        for message in answer.messages.unwrap_or_default() {
            let order: Value = serde_json::from_str(message.body().unwrap_or_default())?;
            let receipt = message.receipt_handle().unwrap_or_default();
            if order["poison"] == true {
                poison_receives += 1;
                sqs.change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await?;
                continue;
            }
            let number = order["order"].as_u64().context("order number")?;
            let customer = message
                .message_attributes()
                .and_then(|a| a.get("customer"))
                .and_then(|v| v.string_value());
            anyhow::ensure!(customer == Some(format!("customer-{}", number % 3).as_str()));
            processed.push(number);
            total += order["total"].as_u64().context("order total")?;
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await?;
        }
        if processed.len() == 10 && visible_messages(sqs, dlq_url).await? == "1" {
            break;
        }
    }
    processed.sort_unstable();
    Ok((processed, total, poison_receives))
}

async fn payments(sqs: &Client) -> Result<Vec<String>> {
    let url = create_queue(
        sqs,
        "payments.fifo",
        &[
            (QueueAttributeName::FifoQueue, "true".to_string()),
            (
                QueueAttributeName::ContentBasedDeduplication,
                "true".to_string(),
            ),
        ],
    )
    .await?;
    // A client retry sends "debit 30" twice: content-based deduplication keeps the first only.
    for step in [
        "open account-7",
        "debit 30",
        "debit 30",
        "credit 5",
        "close account-7",
    ] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(step)
            .message_group_id("account-7")
            .send()
            .await?;
    }
    let mut in_order = Vec::new();
    for _ in 0..20 {
        let answer = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        let messages = answer.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            in_order.push(message.body().unwrap_or_default().to_string());
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
    }
    Ok(in_order)
}

#[tokio::main]
async fn main() -> Result<()> {
    let sqs = client_from_env()?;
    let dlq_url = create_queue(&sqs, "orders-dlq", &[]).await?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .context("the dead-letter queue's ARN")?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string();
    let orders_url = create_queue(
        &sqs,
        "orders",
        &[
            (QueueAttributeName::VisibilityTimeout, "30".to_string()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    let sent = send_orders(&sqs, &orders_url).await?;
    let (processed, total, poison_receives) = process_orders(&sqs, &orders_url, &dlq_url).await?;
    let dead_letters: Vec<Value> = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await?
        .messages
        .unwrap_or_default()
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    let in_order = payments(&sqs).await?;
    let mut queues = sqs
        .list_queues()
        .send()
        .await?
        .queue_urls
        .unwrap_or_default();
    queues.sort();
    let seen: HashMap<&str, Value> = HashMap::from([
        ("queues", json!(queues)),
        ("sent", json!(sent)),
        ("processed", json!(processed)),
        ("total", json!(total)),
        ("poison_receives", json!(poison_receives)),
        ("dead_letters", json!(dead_letters)),
        ("payments_in_order", json!(in_order)),
    ]);
    println!("{}", serde_json::to_string(&seen)?);
    Ok(())
}
