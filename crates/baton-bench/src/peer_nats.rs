//! NATS JetStream as a queue: a stream with file storage and work-queue retention on one
//! subject, and one durable pull consumer with explicit acks that every consumer pulls from.
//! Send = async publish of the whole batch, then wait for every publish ack; receive = the
//! messages a pull subscription (one batch per pull) has ready; ack = one ack per message,
//! then a flush. Every producer and every consumer has its own connection.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::stream::{RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};

use crate::broker::{bounded, take_ready, Delivery, Receipt};
use crate::BenchError;

/// Name of the durable consumer.
const CONSUMER: &str = "bench";
/// Time budget of publishing one batch and getting all its acks, and of any request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh stream `name` whose one subject is also `name`.
pub(crate) struct Nats {
    url: String,
    name: String,
    jetstream: Context,
}

#[derive(Clone)]
pub(crate) struct NatsProducer {
    jetstream: Context,
    subject: String,
}

pub(crate) struct NatsConsumer {
    client: async_nats::Client,
    messages: pull::Stream,
}

async fn connect(url: &str) -> Result<async_nats::Client, BenchError> {
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(REQUEST_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT));
    bounded("nats connect", options.connect(url)).await
}

impl Nats {
    pub async fn open(url: &str, name: &str) -> Result<Self, BenchError> {
        let jetstream = jetstream::new(connect(url).await?);
        // A stream of that name left by an earlier run would spoil the counts.
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, jetstream.delete_stream(name)).await;
        let stream = bounded(
            "nats create stream",
            jetstream.create_stream(jetstream::stream::Config {
                name: name.to_string(),
                subjects: vec![name.to_string()],
                storage: StorageType::File,
                retention: RetentionPolicy::WorkQueue,
                ..Default::default()
            }),
        )
        .await?;
        bounded(
            "nats create consumer",
            stream.create_consumer(pull::Config {
                durable_name: Some(CONSUMER.to_string()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            }),
        )
        .await?;
        Ok(Nats {
            url: url.to_string(),
            name: name.to_string(),
            jetstream,
        })
    }

    pub async fn teardown(&self) {
        let _ = bounded(
            "nats delete stream",
            self.jetstream.delete_stream(&self.name),
        )
        .await;
    }

    pub async fn producer(&self) -> Result<NatsProducer, BenchError> {
        Ok(NatsProducer {
            jetstream: jetstream::new(connect(&self.url).await?),
            subject: self.name.clone(),
        })
    }

    pub async fn consumer(&self, batch: u32) -> Result<NatsConsumer, BenchError> {
        let client = connect(&self.url).await?;
        let jetstream = jetstream::new(client.clone());
        let consumer: jetstream::consumer::Consumer<pull::Config> = bounded(
            "nats get consumer",
            jetstream.get_consumer_from_stream(CONSUMER, &self.name),
        )
        .await?;
        let messages = bounded(
            "nats pull",
            consumer
                .stream()
                .max_messages_per_batch(usize::try_from(batch).unwrap_or(usize::MAX))
                .messages(),
        )
        .await?;
        Ok(NatsConsumer { client, messages })
    }
}

impl NatsProducer {
    pub async fn send(&self, bodies: Vec<String>) -> Result<u64, BenchError> {
        let publish = async {
            let mut acks = Vec::with_capacity(bodies.len());
            for body in bodies {
                let ack = self
                    .jetstream
                    .publish(self.subject.clone(), body.into())
                    .await
                    .map_err(|error| BenchError::Peer(format!("nats publish: {error}")))?;
                acks.push(ack);
            }
            let mut acked = 0;
            for ack in acks {
                if ack.await.is_ok() {
                    acked += 1;
                }
            }
            Ok(acked)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, publish).await {
            Ok(result) => result,
            Err(_) => Err(BenchError::Peer(
                "nats: no publish acks within 30 s".to_string(),
            )),
        }
    }
}

impl NatsConsumer {
    pub async fn receive(&mut self, max: u32, wait_ms: u64) -> Result<Vec<Delivery>, BenchError> {
        let messages = take_ready(
            &mut self.messages,
            max,
            Duration::from_millis(wait_ms),
            "nats pull",
        )
        .await?;
        Ok(messages
            .into_iter()
            .map(|message| Delivery {
                body: String::from_utf8_lossy(&message.payload).into_owned(),
                receipt: Receipt::Nats(Box::new(message)),
            })
            .collect())
    }

    pub async fn ack(&mut self, receipts: Vec<Receipt>) -> Result<u64, BenchError> {
        let client = &self.client;
        let ack = async move {
            let mut acked = 0;
            for receipt in receipts {
                if let Receipt::Nats(message) = receipt {
                    if message.ack().await.is_ok() {
                        acked += 1;
                    }
                }
            }
            client.flush().await.map(|()| acked)
        };
        bounded("nats ack", ack).await
    }
}
