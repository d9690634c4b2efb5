//! RabbitMQ over AMQP 0-9-1: a durable classic queue (or a quorum queue), persistent messages
//! published to the default exchange with publisher confirms, and consumers with manual acks
//! and a prefetch of one batch. Every producer and every consumer has its own connection; the
//! `--inflight` senders of one producer share its channel, so up to that many batches await
//! their confirms at once. A batch counts as sent when all its confirms are acks.

use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::broker::{bounded, take_ready, Delivery, Receipt};
use crate::BenchError;

/// `delivery_mode` of a persistent message.
const PERSISTENT: u8 = 2;
/// Time budget of publishing one batch and getting all its confirms.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh queue on a RabbitMQ, and the admin connection that declared it.
pub(crate) struct RabbitMq {
    url: String,
    queue: String,
    admin: Connection,
    channel: Channel,
}

#[derive(Clone)]
pub(crate) struct RabbitMqProducer {
    /// Kept so the connection lives as long as its channel.
    _connection: std::sync::Arc<Connection>,
    channel: Channel,
    queue: ShortString,
}

pub(crate) struct RabbitMqConsumer {
    _connection: Connection,
    consumer: lapin::Consumer,
}

fn failed(what: &str, error: lapin::Error) -> BenchError {
    BenchError::Peer(format!("rabbitmq {what}: {error}"))
}

async fn connect(url: &str) -> Result<Connection, BenchError> {
    bounded(
        "rabbitmq connect",
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
}

impl RabbitMq {
    pub async fn open(url: &str, queue: &str, quorum: bool) -> Result<Self, BenchError> {
        let admin = connect(url).await?;
        let channel = bounded("rabbitmq channel", admin.create_channel()).await?;
        let mut arguments = FieldTable::default();
        if quorum {
            arguments.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        bounded(
            "rabbitmq queue.declare",
            channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            ),
        )
        .await?;
        Ok(RabbitMq {
            url: url.to_string(),
            queue: queue.to_string(),
            admin,
            channel,
        })
    }

    pub async fn teardown(&self) {
        let _ = bounded(
            "rabbitmq queue.delete",
            self.channel
                .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default()),
        )
        .await;
        let _ = bounded("rabbitmq close", self.admin.close(200, "bye".into())).await;
    }

    pub async fn producer(&self) -> Result<RabbitMqProducer, BenchError> {
        let connection = connect(&self.url).await?;
        let channel = bounded("rabbitmq channel", connection.create_channel()).await?;
        bounded(
            "rabbitmq confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        Ok(RabbitMqProducer {
            _connection: std::sync::Arc::new(connection),
            channel,
            queue: self.queue.as_str().into(),
        })
    }

    pub async fn consumer(&self, batch: u32) -> Result<RabbitMqConsumer, BenchError> {
        let connection = connect(&self.url).await?;
        let channel = bounded("rabbitmq channel", connection.create_channel()).await?;
        let prefetch = u16::try_from(batch).unwrap_or(u16::MAX);
        bounded(
            "rabbitmq basic.qos",
            channel.basic_qos(prefetch, BasicQosOptions::default()),
        )
        .await?;
        let consumer = bounded(
            "rabbitmq basic.consume",
            channel.basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(RabbitMqConsumer {
            _connection: connection,
            consumer,
        })
    }
}

impl RabbitMqProducer {
    pub async fn send(&self, bodies: Vec<String>) -> Result<u64, BenchError> {
        let publish = async {
            let mut confirms = Vec::with_capacity(bodies.len());
            for body in &bodies {
                let confirm = self
                    .channel
                    .basic_publish(
                        "".into(),
                        self.queue.clone(),
                        BasicPublishOptions::default(),
                        body.as_bytes(),
                        BasicProperties::default().with_delivery_mode(PERSISTENT),
                    )
                    .await
                    .map_err(|error| failed("basic.publish", error))?;
                confirms.push(confirm);
            }
            let mut acked = 0;
            for confirm in confirms {
                let confirmation = confirm
                    .await
                    .map_err(|error| failed("publisher confirm", error))?;
                if confirmation.is_ack() {
                    acked += 1;
                }
            }
            Ok(acked)
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, publish).await {
            Ok(result) => result,
            Err(_) => Err(BenchError::Peer(
                "rabbitmq: no confirms within 30 s".to_string(),
            )),
        }
    }
}

impl RabbitMqConsumer {
    pub async fn receive(&mut self, max: u32, wait_ms: u64) -> Result<Vec<Delivery>, BenchError> {
        let deliveries = take_ready(
            &mut self.consumer,
            max,
            Duration::from_millis(wait_ms),
            "rabbitmq consume",
        )
        .await?;
        Ok(deliveries
            .into_iter()
            .map(|delivery| Delivery {
                body: String::from_utf8_lossy(&delivery.data).into_owned(),
                receipt: Receipt::Amqp(delivery.acker),
            })
            .collect())
    }

    /// Acks the batch with one `basic.ack` of its last delivery tag with `multiple`: the
    /// deliveries of one channel arrive in tag order and this consumer acks all it received.
    pub async fn ack(&mut self, receipts: Vec<Receipt>) -> Result<u64, BenchError> {
        let n = receipts.len() as u64;
        let Some(Receipt::Amqp(last)) = receipts.into_iter().last() else {
            return Ok(0);
        };
        bounded(
            "rabbitmq basic.ack",
            last.ack(BasicAckOptions { multiple: true }),
        )
        .await?;
        Ok(n)
    }
}
