//! The options of one run ([`Config`]) and what they name ([`Workload`], [`Api`], [`System`]).
//!
//! Invariant: a `Config` that passed [`Config::validate`] has every knob inside its bound (the
//! limits are the constants at the crate root), so the workload code never re-checks them.

use std::time::Duration;

use crate::{
    body, BenchError, ACK_INFLIGHT_MAX, BATCH_BYTES_MAX_NATIVE, BATCH_BYTES_MAX_PEER,
    BATCH_BYTES_MAX_SQS, BATCH_MAX_NATIVE, BATCH_MAX_PEER, BATCH_MAX_SQS, DURATION_MAX,
    MESSAGE_BYTES_MAX, SENDERS_MAX, WAIT_MS_MAX, WORKERS_MAX,
};

/// What the run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Produce,
    Consume,
    E2e,
}

/// Which of the broker's APIs the workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Native,
    Sqs,
    /// The framed TCP protocol (docs/wire-protocol.md), on connections upgraded from HTTP at
    /// `Config::url` (or to `Config::wire_addr`, a dedicated wire port).
    Wire,
}

/// Which broker the workload drives: Baton (at `Config::url`, over `Config::api`), or a peer
/// at `Config::target_url` (or its default on 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Baton,
    /// Redis Streams: XADD (pipelined), XREADGROUP with a consumer group, XACK.
    Redis,
    /// RabbitMQ: a durable classic (or quorum) queue, persistent messages, publisher
    /// confirms, manual acks with a prefetch of one batch.
    RabbitMq,
    /// NATS JetStream: a file-stored work-queue stream, async publish with acks, a pull
    /// consumer with explicit acks.
    Nats,
}

impl System {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            System::Baton => "baton",
            System::Redis => "redis",
            System::RabbitMq => "rabbitmq",
            System::Nats => "nats",
        }
    }

    /// Where the peer is reached when no `--target-url` is given.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            System::Baton => None,
            System::Redis => Some("redis://127.0.0.1:6379"),
            System::RabbitMq => Some("amqp://guest:guest@127.0.0.1:5672/%2f"),
            System::Nats => Some("nats://127.0.0.1:4222"),
        }
    }

    fn url_schemes(self) -> &'static [&'static str] {
        match self {
            System::Baton => &["http://", "https://"],
            System::Redis => &["redis://"],
            System::RabbitMq => &["amqp://"],
            System::Nats => &["nats://"],
        }
    }
}

/// One run, as given on the command line. Checked by [`Config::validate`].
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker, e.g. `http://127.0.0.1:9324`.
    pub url: String,
    /// Baton or a peer.
    pub system: System,
    /// A peer's URL; `None` is [`System::default_url`]. Not for Baton (that is `url`).
    pub target_url: Option<String>,
    /// RabbitMQ: a quorum queue instead of a durable classic one.
    pub rabbitmq_quorum: bool,
    pub workload: Workload,
    pub api: Api,
    pub producers: u32,
    pub consumers: u32,
    pub message_bytes: u32,
    /// Messages per send call.
    pub batch: u32,
    /// Most messages per receive (and so per ack).
    pub receive_batch: u32,
    /// Baton only: HTTP/2 without TLS (prior knowledge), so every producer's and consumer's
    /// calls share one multiplexed connection instead of one connection per call in flight.
    pub http2: bool,
    /// Concurrent send calls per producer.
    pub inflight: u32,
    /// Baton only: acks a consumer keeps in flight while it receives on.
    pub ack_inflight: u32,
    /// Messages a second over all producers; 0 sends as fast as the broker answers.
    pub rate_per_s: u64,
    pub duration: Duration,
    /// Messages to send (`consume`: to prefill and receive).
    pub messages: u64,
    /// An existing queue to use (created if missing, never deleted); `None` makes a fresh
    /// `bench-<random>` queue and deletes it afterwards.
    pub queue: Option<String>,
    /// Long-poll wait of each receive.
    pub wait_ms: u64,
    /// Draw a live progress line on stderr (only when stdout is a terminal).
    pub progress: bool,
    /// `Api::Wire` only: a dedicated wire port (the server's `wire_listen`) to connect to
    /// instead of upgrading connections to `url`.
    pub wire_addr: Option<String>,
    /// Baton only: the API key every HTTP call carries (`Authorization: Bearer`), for a server
    /// that has keys.
    pub key: Option<String>,
    /// `Api::Sqs` only: the access key id and secret every SQS request is signed with (AWS
    /// Signature Version 4), for a server that has keys.
    pub sqs_credentials: Option<SqsCredentials>,
    /// Baton only: CA certificates (PEM) trusted for an `https://` url besides the system's
    /// (a self-signed or private CA's broker); the wire protocol over TLS trusts only these.
    pub ca_pem: Option<Vec<u8>>,
}

/// An access key id and its secret; `Debug` shows the id only.
#[derive(Clone)]
pub struct SqsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for SqsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The URL of the broker the run drives: `url` for Baton, else the peer's.
    pub fn broker_url(&self) -> &str {
        match (self.system, &self.target_url, self.system.default_url()) {
            (System::Baton, _, _) => &self.url,
            (_, Some(url), _) => url,
            (_, None, Some(default)) => default,
            (_, None, None) => &self.url,
        }
    }

    /// Checks every knob against its bound.
    ///
    /// # Errors
    /// `BenchError::InvalidConfig` naming the first option out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        self.validate_target()?;
        self.validate_workers()?;
        self.validate_options()?;
        self.validate_sizes()
    }

    /// Most messages and most body bytes of one batch, for this system and api.
    fn batch_limits(&self) -> (u32, u64) {
        match (self.system, self.api) {
            (System::Baton, Api::Native | Api::Wire) => (BATCH_MAX_NATIVE, BATCH_BYTES_MAX_NATIVE),
            (System::Baton, Api::Sqs) => (BATCH_MAX_SQS, BATCH_BYTES_MAX_SQS),
            _ => (BATCH_MAX_PEER, BATCH_BYTES_MAX_PEER),
        }
    }

    /// The URL and the options that belong to one system only.
    fn validate_target(&self) -> Result<(), BenchError> {
        let invalid = |message: String| Err(BenchError::InvalidConfig(message));
        let url = self.broker_url();
        let schemes = self.system.url_schemes();
        if !schemes.iter().any(|scheme| url.starts_with(scheme)) {
            let option = if self.system == System::Baton {
                "--url"
            } else {
                "--target-url"
            };
            return invalid(format!(
                "{option} must start with {} for --target {}, got {url:?}",
                schemes.join(" or "),
                self.system.name(),
            ));
        }
        if self.system == System::Baton && self.target_url.is_some() {
            return invalid("--target-url is for the peers; Baton's is --url".to_string());
        }
        if self.system != System::Baton && self.queue.is_some() {
            return invalid("--queue is only for --target baton".to_string());
        }
        if self.system != System::Baton && self.api != Api::Native {
            return invalid("--api is only for --target baton".to_string());
        }
        if self.rabbitmq_quorum && self.system != System::RabbitMq {
            return invalid("--rabbitmq-quorum is only for --target rabbitmq".to_string());
        }
        Ok(())
    }

    /// Producers, consumers, in-flight sends and batch sizes.
    fn validate_workers(&self) -> Result<(), BenchError> {
        let invalid = |message: String| Err(BenchError::InvalidConfig(message));
        let (batch_max, _) = self.batch_limits();
        let needs_producers = self.workload != Workload::Consume;
        let needs_consumers = self.workload != Workload::Produce;
        if needs_producers && !(1 <= self.producers && self.producers <= WORKERS_MAX) {
            return invalid(format!("--producers must be 1..={WORKERS_MAX}"));
        }
        if needs_consumers && !(1 <= self.consumers && self.consumers <= WORKERS_MAX) {
            return invalid(format!("--consumers must be 1..={WORKERS_MAX}"));
        }
        if !(1 <= self.inflight && self.inflight <= SENDERS_MAX) {
            return invalid(format!("--inflight must be 1..={SENDERS_MAX}"));
        }
        if needs_producers && SENDERS_MAX < self.producers.saturating_mul(self.inflight) {
            return invalid(format!(
                "--producers × --inflight must be at most {SENDERS_MAX}"
            ));
        }
        if !(1 <= self.batch && self.batch <= batch_max) {
            return invalid(format!("--batch must be 1..={batch_max} for this api"));
        }
        if !(1 <= self.receive_batch && self.receive_batch <= batch_max) {
            return invalid(format!(
                "--receive-batch must be 1..={batch_max} for this api"
            ));
        }
        Ok(())
    }

    /// The transport options: HTTP/2, acks in flight, the wire port.
    fn validate_options(&self) -> Result<(), BenchError> {
        let invalid = |message: String| Err(BenchError::InvalidConfig(message));
        if self.http2 && self.system != System::Baton {
            return invalid("--http2 is only for --target baton".to_string());
        }
        if !(1..=ACK_INFLIGHT_MAX).contains(&self.ack_inflight) {
            return invalid(format!("--ack-inflight must be 1..={ACK_INFLIGHT_MAX}"));
        }
        if self.ack_inflight != 1 && self.system != System::Baton {
            return invalid(
                "--ack-inflight is for Baton; each peer acks as its adapter does".to_string(),
            );
        }
        if self.wire_addr.is_some() && self.api != Api::Wire {
            return invalid("--wire-addr is for --api wire".to_string());
        }
        if self.http2 && self.api == Api::Wire {
            return invalid("--http2 is for the HTTP apis, not --api wire".to_string());
        }
        Ok(())
    }

    /// Message size, batch bytes, message count, duration and long-poll wait.
    fn validate_sizes(&self) -> Result<(), BenchError> {
        let invalid = |message: String| Err(BenchError::InvalidConfig(message));
        let (_, batch_bytes_max) = self.batch_limits();
        if !(body::HEADER_BYTES <= self.message_bytes && self.message_bytes <= MESSAGE_BYTES_MAX) {
            return invalid(format!(
                "--message-bytes must be {}..={MESSAGE_BYTES_MAX}",
                body::HEADER_BYTES
            ));
        }
        if batch_bytes_max < u64::from(self.batch) * u64::from(self.message_bytes) {
            return invalid(format!(
                "--batch × --message-bytes must be at most {batch_bytes_max} for this api"
            ));
        }
        if self.messages == 0 {
            return invalid("--messages must be at least 1".to_string());
        }
        if !(Duration::ZERO < self.duration && self.duration <= DURATION_MAX) {
            return invalid(format!(
                "--duration-s must be 1..={}",
                DURATION_MAX.as_secs()
            ));
        }
        if WAIT_MS_MAX < self.wait_ms {
            return invalid(format!("--wait-ms must be at most {WAIT_MS_MAX}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            url: "http://127.0.0.1:9324".to_string(),
            system: System::Baton,
            target_url: None,
            rabbitmq_quorum: false,
            workload: Workload::E2e,
            api: Api::Native,
            producers: 1,
            consumers: 1,
            message_bytes: 1024,
            batch: 1,
            receive_batch: 1,
            http2: false,
            inflight: 1,
            ack_inflight: 1,
            rate_per_s: 0,
            duration: Duration::from_secs(10),
            messages: 1_000_000,
            queue: None,
            wait_ms: 1000,
            progress: false,
            wire_addr: None,
            key: None,
            sqs_credentials: None,
            ca_pem: None,
        }
    }

    #[test]
    fn config_bounds_are_checked() {
        assert!(config().validate().is_ok());
        let cases = [
            Config {
                batch: 11,
                api: Api::Sqs,
                ..config()
            },
            Config {
                batch: 1001,
                ..config()
            },
            Config {
                receive_batch: 0,
                ..config()
            },
            Config {
                receive_batch: 11,
                api: Api::Sqs,
                ..config()
            },
            Config {
                message_bytes: 31,
                ..config()
            },
            Config {
                producers: 0,
                ..config()
            },
            Config {
                consumers: 0,
                ..config()
            },
            Config {
                messages: 0,
                ..config()
            },
            Config {
                wait_ms: 20_001,
                ..config()
            },
            Config {
                batch: 1000,
                message_bytes: MESSAGE_BYTES_MAX,
                ..config()
            },
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(BenchError::InvalidConfig(_))),
                "{case:?}"
            );
        }
        assert!(Config {
            consumers: 0,
            workload: Workload::Produce,
            ..config()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn peers_have_their_own_urls_and_options() {
        let redis = Config {
            system: System::Redis,
            ..config()
        };
        assert_eq!(redis.broker_url(), "redis://127.0.0.1:6379");
        assert!(redis.validate().is_ok());
        let elsewhere = Config {
            target_url: Some("redis://127.0.0.1:6380".to_string()),
            ..redis.clone()
        };
        assert_eq!(elsewhere.broker_url(), "redis://127.0.0.1:6380");
        assert_eq!(config().broker_url(), "http://127.0.0.1:9324");
        assert!(Config {
            system: System::RabbitMq,
            rabbitmq_quorum: true,
            batch: 1000,
            ..config()
        }
        .validate()
        .is_ok());
        let refused = [
            Config {
                target_url: Some("amqp://127.0.0.1:5672".to_string()),
                ..redis.clone()
            },
            Config {
                api: Api::Sqs,
                ..redis.clone()
            },
            Config {
                queue: Some("q".to_string()),
                ..redis.clone()
            },
            Config {
                batch: 1001,
                ..redis.clone()
            },
            Config {
                rabbitmq_quorum: true,
                ..redis.clone()
            },
            Config {
                http2: true,
                ..redis.clone()
            },
            Config {
                target_url: Some("redis://127.0.0.1:6379".to_string()),
                ..config()
            },
        ];
        for case in refused {
            assert!(
                matches!(case.validate(), Err(BenchError::InvalidConfig(_))),
                "{case:?}"
            );
        }
    }
}
