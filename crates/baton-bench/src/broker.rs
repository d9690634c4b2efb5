//! "A broker the workloads drive": Baton (native or SQS API) or one of the peers (Redis
//! Streams, RabbitMQ, NATS JetStream). The workloads only ever set up a queue, open producer
//! and consumer sessions, send a batch, receive a batch, ack a batch, and tear the queue down.
//!
//! An enum rather than a trait object, so every session stays `Send` and the workload code has
//! one concrete type to spawn. Baton's own path is [`crate::api::Target`], unchanged.

use std::time::Duration;

use crate::api::Target;
use crate::peer_nats::{Nats, NatsConsumer, NatsProducer};
use crate::peer_rabbitmq::{RabbitMq, RabbitMqConsumer, RabbitMqProducer};
use crate::peer_redis::{Redis, RedisConsumer, RedisProducer};
use crate::{BenchError, Config, System};

/// Time budget of setting up or tearing down a peer's queue, and of opening a session.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// One received message: its body and what acks it.
pub(crate) struct Delivery {
    pub body: String,
    pub receipt: Receipt,
}

/// What acks one received message, per system.
pub(crate) enum Receipt {
    Baton(String),
    Redis(String),
    Amqp(lapin::Acker),
    Nats(Box<async_nats::jetstream::Message>),
}

/// The queue (or stream) of one run on one system.
pub(crate) enum Broker {
    Baton(Target),
    Redis(Redis),
    RabbitMq(RabbitMq),
    Nats(Nats),
}

/// One producer's connection; clones share it (the `--inflight` senders of one producer).
/// Every producer and consumer has its own connection, for Baton as for the peers.
#[derive(Clone)]
pub(crate) enum Producer {
    Baton(Target),
    Redis(RedisProducer),
    RabbitMq(RabbitMqProducer),
    Nats(NatsProducer),
}

/// One consumer's connection and subscription.
pub(crate) enum Consumer {
    Baton(Target),
    Redis(RedisConsumer),
    RabbitMq(Box<RabbitMqConsumer>),
    Nats(Box<NatsConsumer>),
}

/// Runs `future` for at most [`SETUP_TIMEOUT`]; a peer's error becomes [`BenchError::Peer`].
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BenchError> {
    match tokio::time::timeout(SETUP_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(BenchError::Peer(format!("{what}: {error}"))),
        Err(_) => Err(BenchError::Peer(format!(
            "{what}: no answer within {} s",
            SETUP_TIMEOUT.as_secs()
        ))),
    }
}

impl Broker {
    /// Connects to the peer of `config.system` and creates the fresh queue `queue` there.
    /// Baton is set up by the caller (it keeps its own path) and is not handled here.
    pub async fn open_peer(config: &Config, queue: &str) -> Result<Self, BenchError> {
        let url = config.broker_url();
        match config.system {
            System::Baton => Err(BenchError::InvalidConfig("baton is not a peer".to_string())),
            System::Redis => Ok(Broker::Redis(Redis::open(url, queue).await?)),
            System::RabbitMq => Ok(Broker::RabbitMq(
                RabbitMq::open(url, queue, config.rabbitmq_quorum).await?,
            )),
            System::Nats => Ok(Broker::Nats(Nats::open(url, queue).await?)),
        }
    }

    /// Deletes a peer's queue and closes its connection; failures are ignored (a queue may
    /// be left behind, the figures are not spoilt).
    pub async fn teardown(&self) {
        match self {
            Broker::Baton(_) => {}
            Broker::Redis(redis) => redis.teardown().await,
            Broker::RabbitMq(rabbitmq) => rabbitmq.teardown().await,
            Broker::Nats(nats) => nats.teardown().await,
        }
    }

    /// A new producer connection. For Baton, the native API when `native` (the prefill).
    pub async fn producer(&self, native: bool) -> Result<Producer, BenchError> {
        Ok(match self {
            Broker::Baton(target) if native => {
                Producer::Baton(target.session().await?.with_api(crate::Api::Native))
            }
            Broker::Baton(target) => Producer::Baton(target.session().await?),
            Broker::Redis(redis) => Producer::Redis(redis.producer().await?),
            Broker::RabbitMq(rabbitmq) => Producer::RabbitMq(rabbitmq.producer().await?),
            Broker::Nats(nats) => Producer::Nats(nats.producer().await?),
        })
    }

    /// A new consumer that receives up to `batch` messages at a time.
    pub async fn consumer(&self, batch: u32, wait_ms: u64) -> Result<Consumer, BenchError> {
        Ok(match self {
            Broker::Baton(target) => Consumer::Baton(target.session().await?),
            Broker::Redis(redis) => Consumer::Redis(redis.consumer(wait_ms).await?),
            Broker::RabbitMq(rabbitmq) => {
                Consumer::RabbitMq(Box::new(rabbitmq.consumer(batch).await?))
            }
            Broker::Nats(nats) => Consumer::Nats(Box::new(nats.consumer(batch).await?)),
        })
    }
}

impl Producer {
    /// Sends `bodies` as one batch and waits until the broker has taken them (for the peers:
    /// every confirm or ack of the batch); returns how many it took.
    pub async fn send(&self, bodies: Vec<String>) -> Result<u64, BenchError> {
        match self {
            Producer::Baton(target) => target.send(bodies).await,
            Producer::Redis(redis) => redis.send(bodies).await,
            Producer::RabbitMq(rabbitmq) => rabbitmq.send(bodies).await,
            Producer::Nats(nats) => nats.send(bodies).await,
        }
    }
}

impl Consumer {
    /// Up to `max` messages, waiting up to `wait_ms` for the first.
    pub async fn receive(&mut self, max: u32, wait_ms: u64) -> Result<Vec<Delivery>, BenchError> {
        match self {
            Consumer::Baton(target) => Ok(target
                .receive(max, wait_ms)
                .await?
                .into_iter()
                .map(|message| Delivery {
                    body: message.body,
                    receipt: Receipt::Baton(message.receipt),
                })
                .collect()),
            Consumer::Redis(redis) => redis.receive(max, wait_ms).await,
            Consumer::RabbitMq(rabbitmq) => rabbitmq.receive(max, wait_ms).await,
            Consumer::Nats(nats) => nats.receive(max, wait_ms).await,
        }
    }

    /// For Baton, an ack of `receipts` that runs on its own, so that the consumer can receive
    /// its next batch while the (synced) ack is under way, as a real consumer would. The peers'
    /// acks go through the consumer's session: they get the receipts back.
    #[allow(clippy::type_complexity)]
    pub fn detached_ack(
        &self,
        receipts: Vec<Receipt>,
    ) -> Result<
        impl std::future::Future<Output = Result<u64, BenchError>> + Send + 'static,
        Vec<Receipt>,
    > {
        match self {
            Consumer::Baton(target) => {
                let target = target.clone();
                let receipts = baton_receipts(receipts);
                Ok(async move { target.ack(receipts).await })
            }
            _ => Err(receipts),
        }
    }

    /// Acks the messages of `receipts`; returns how many were acked.
    pub async fn ack(&mut self, receipts: Vec<Receipt>) -> Result<u64, BenchError> {
        match self {
            Consumer::Baton(target) => target.ack(baton_receipts(receipts)).await,
            Consumer::Redis(redis) => redis.ack(receipts).await,
            Consumer::RabbitMq(rabbitmq) => rabbitmq.ack(receipts).await,
            Consumer::Nats(nats) => nats.ack(receipts).await,
        }
    }
}

fn baton_receipts(receipts: Vec<Receipt>) -> Vec<String> {
    receipts
        .into_iter()
        .filter_map(|receipt| match receipt {
            Receipt::Baton(receipt) => Some(receipt),
            _ => None,
        })
        .collect()
}

/// Waits up to `wait` for the first item of `stream`, then takes those already there, up to
/// `max` in all. `None` from the stream (it ended) is an error: the subscription is gone.
pub(crate) async fn take_ready<S, T, E>(
    stream: &mut S,
    max: u32,
    wait: Duration,
    what: &str,
) -> Result<Vec<T>, BenchError>
where
    S: futures::Stream<Item = Result<T, E>> + Unpin,
    E: std::fmt::Display,
{
    use futures::{FutureExt, StreamExt};
    let ended = || BenchError::Peer(format!("{what}: the subscription ended"));
    let failed = |error: E| BenchError::Peer(format!("{what}: {error}"));
    let first = match tokio::time::timeout(wait, stream.next()).await {
        Err(_) => return Ok(Vec::new()),
        Ok(None) => return Err(ended()),
        Ok(Some(item)) => item.map_err(failed)?,
    };
    let mut items = vec![first];
    while items.len() < usize::try_from(max).unwrap_or(usize::MAX) {
        match stream.next().now_or_never() {
            Some(Some(Ok(item))) => items.push(item),
            // What was taken is still handed back; the next call meets the error again.
            Some(Some(Err(_)) | None) | None => break,
        }
    }
    Ok(items)
}
