//! Redis Streams as a queue: a stream with one consumer group. Send = `XADD` (a batch is one
//! pipeline), receive = `XREADGROUP ... COUNT n BLOCK ms STREAMS key >` (each consumer on its
//! own connection, since a blocked read holds up a multiplexed connection), ack = `XACK` of
//! the batch's ids. Acked entries stay in the stream until the stream is deleted at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::{AsyncConnectionConfig, Client};

use crate::broker::{bounded, Delivery, Receipt, SETUP_TIMEOUT};
use crate::BenchError;

/// The consumer group every consumer reads in.
const GROUP: &str = "bench";
/// The field of each entry that holds the body.
const FIELD: &str = "b";
/// Time budget of a command that does not block.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh stream `key` with the consumer group [`GROUP`].
pub(crate) struct Redis {
    client: Client,
    admin: MultiplexedConnection,
    key: Arc<str>,
    consumers: AtomicU64,
}

#[derive(Clone)]
pub(crate) struct RedisProducer {
    connection: MultiplexedConnection,
    key: Arc<str>,
}

pub(crate) struct RedisConsumer {
    connection: MultiplexedConnection,
    key: Arc<str>,
    name: String,
}

fn failed(what: &str, error: redis::RedisError) -> BenchError {
    BenchError::Peer(format!("redis {what}: {error}"))
}

async fn connect(
    client: &Client,
    response_timeout: Duration,
) -> Result<MultiplexedConnection, BenchError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(SETUP_TIMEOUT))
        .set_response_timeout(Some(response_timeout));
    bounded(
        "redis connect",
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
}

impl Redis {
    pub async fn open(url: &str, key: &str) -> Result<Self, BenchError> {
        let client = Client::open(url).map_err(|error| failed("url", error))?;
        let mut admin = connect(&client, RESPONSE_TIMEOUT).await?;
        // A stream of that name left by an earlier run would spoil the counts.
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut admin)
            .await
            .map_err(|error| failed("DEL", error))?;
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut admin)
            .await
            .map_err(|error| failed("XGROUP CREATE", error))?;
        Ok(Redis {
            client,
            admin,
            key: Arc::from(key),
            consumers: AtomicU64::new(0),
        })
    }

    pub async fn teardown(&self) {
        let mut admin = self.admin.clone();
        let _ = tokio::time::timeout(
            SETUP_TIMEOUT,
            redis::cmd("DEL")
                .arg(&*self.key)
                .query_async::<()>(&mut admin),
        )
        .await;
    }

    pub async fn producer(&self) -> Result<RedisProducer, BenchError> {
        Ok(RedisProducer {
            connection: connect(&self.client, RESPONSE_TIMEOUT).await?,
            key: Arc::clone(&self.key),
        })
    }

    pub async fn consumer(&self, wait_ms: u64) -> Result<RedisConsumer, BenchError> {
        let number = self.consumers.fetch_add(1, Ordering::SeqCst);
        Ok(RedisConsumer {
            connection: connect(
                &self.client,
                RESPONSE_TIMEOUT + Duration::from_millis(wait_ms),
            )
            .await?,
            key: Arc::clone(&self.key),
            name: format!("c{number}"),
        })
    }
}

impl RedisProducer {
    pub async fn send(&self, bodies: Vec<String>) -> Result<u64, BenchError> {
        let mut pipe = redis::pipe();
        for body in &bodies {
            pipe.cmd("XADD")
                .arg(&*self.key)
                .arg("*")
                .arg(FIELD)
                .arg(body);
        }
        let mut connection = self.connection.clone();
        let ids: Vec<String> = pipe
            .query_async(&mut connection)
            .await
            .map_err(|error| failed("XADD", error))?;
        Ok(ids.len() as u64)
    }
}

impl RedisConsumer {
    pub async fn receive(&mut self, max: u32, wait_ms: u64) -> Result<Vec<Delivery>, BenchError> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(max);
        // BLOCK 0 would block forever; no wait is no BLOCK.
        if wait_ms != 0 {
            command.arg("BLOCK").arg(wait_ms);
        }
        command.arg("STREAMS").arg(&*self.key).arg(">");
        let reply: Option<StreamReadReply> = command
            .query_async(&mut self.connection)
            .await
            .map_err(|error| failed("XREADGROUP", error))?;
        let mut deliveries = Vec::new();
        for key in reply.map(|reply| reply.keys).unwrap_or_default() {
            for entry in key.ids {
                let body = entry
                    .map
                    .get(FIELD)
                    .and_then(|value| redis::from_redis_value_ref::<String>(value).ok())
                    .unwrap_or_default();
                deliveries.push(Delivery {
                    body,
                    receipt: Receipt::Redis(entry.id),
                });
            }
        }
        Ok(deliveries)
    }

    pub async fn ack(&mut self, receipts: Vec<Receipt>) -> Result<u64, BenchError> {
        let ids: Vec<String> = receipts
            .into_iter()
            .filter_map(|receipt| match receipt {
                Receipt::Redis(id) => Some(id),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let acked: u64 = redis::cmd("XACK")
            .arg(&*self.key)
            .arg(GROUP)
            .arg(&ids)
            .query_async(&mut self.connection)
            .await
            .map_err(|error| failed("XACK", error))?;
        Ok(acked)
    }
}
