//! A queue's attributes and their ranges. Cross-queue rules (a dead-letter queue exists and is
//! of the same kind) are checked by the engine, which sees every queue.

use crate::error::QueueError;
use crate::limits::*;
use crate::name::QueueName;

/// Where messages go after `max_receive_count` failed deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPolicy {
    pub queue: QueueName,
    pub max_receive_count: u32,
}

/// Backoff for nacks without an explicit delay:
/// `min(max_delay_ms, base_delay_ms × 2^(receive_count−1))`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub fifo: bool,
    pub visibility_timeout_ms: u64,
    pub delay_ms: u64,
    pub retention_ms: u64,
    pub max_message_bytes: u32,
    pub receive_wait_ms: u64,
    pub dead_letter: Option<DeadLetterPolicy>,
    pub content_based_dedup: bool,
    /// Messages the queue may hold (visible + delayed + in flight); sends beyond it are refused.
    pub max_depth: Option<u64>,
    pub retry: Option<RetryPolicy>,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            fifo: false,
            visibility_timeout_ms: VISIBILITY_TIMEOUT_MS_DEFAULT,
            delay_ms: 0,
            retention_ms: RETENTION_MS_DEFAULT,
            max_message_bytes: MESSAGE_BYTES_MAX,
            receive_wait_ms: 0,
            dead_letter: None,
            content_based_dedup: false,
            max_depth: None,
            retry: None,
        }
    }
}

fn out_of_range(field: &str, value: u64, lo: u64, hi: u64) -> QueueError {
    QueueError::InvalidParameter {
        field: field.to_string(),
        reason: format!("{value} is outside {lo}..={hi}"),
    }
}

fn check_range(field: &str, value: u64, lo: u64, hi: u64) -> Result<(), QueueError> {
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(out_of_range(field, value, lo, hi))
    }
}

impl QueueConfig {
    /// Checks every attribute's range and that FIFO-ness matches the name's `.fifo` suffix.
    pub fn validate(&self, name: &QueueName) -> Result<(), QueueError> {
        if self.fifo != name.has_fifo_suffix() {
            return Err(QueueError::InvalidParameter {
                field: "fifo".to_string(),
                reason: if self.fifo {
                    format!("a FIFO queue's name must end in `.fifo`, {name} does not")
                } else {
                    format!("{name} ends in `.fifo`, so the queue must be FIFO")
                },
            });
        }
        check_range(
            "visibility_timeout_ms",
            self.visibility_timeout_ms,
            0,
            VISIBILITY_TIMEOUT_MS_MAX,
        )?;
        check_range("delay_ms", self.delay_ms, 0, DELAY_MS_MAX)?;
        check_range(
            "retention_ms",
            self.retention_ms,
            RETENTION_MS_MIN,
            RETENTION_MS_MAX,
        )?;
        check_range(
            "max_message_bytes",
            u64::from(self.max_message_bytes),
            u64::from(MESSAGE_BYTES_MIN),
            u64::from(MESSAGE_BYTES_MAX),
        )?;
        check_range("receive_wait_ms", self.receive_wait_ms, 0, WAIT_MS_MAX)?;
        if let Some(dead_letter) = &self.dead_letter {
            check_range(
                "dead_letter.max_receive_count",
                u64::from(dead_letter.max_receive_count),
                1,
                u64::from(MAX_RECEIVE_COUNT_MAX),
            )?;
            if &dead_letter.queue == name {
                return Err(QueueError::InvalidParameter {
                    field: "dead_letter.queue".to_string(),
                    reason: "a queue cannot be its own dead-letter queue".to_string(),
                });
            }
        }
        if let Some(max_depth) = self.max_depth {
            check_range("max_depth", max_depth, 1, u64::MAX)?;
        }
        if let Some(retry) = self.retry {
            check_range(
                "retry.base_delay_ms",
                retry.base_delay_ms,
                1,
                VISIBILITY_TIMEOUT_MS_MAX,
            )?;
            check_range(
                "retry.max_delay_ms",
                retry.max_delay_ms,
                retry.base_delay_ms,
                VISIBILITY_TIMEOUT_MS_MAX,
            )?;
        }
        Ok(())
    }
}

impl RetryPolicy {
    /// The nack delay after the `receive_count`-th delivery failed. Jitter is derived from
    /// `jitter_seed` (the message's sequence) rather than a random source, so replaying the log
    /// yields the same schedule. The result lies in `[d/2, d]` for the exponential `d`.
    pub fn delay_ms(&self, receive_count: u32, jitter_seed: u64) -> u64 {
        let exponent = receive_count.saturating_sub(1).min(63);
        let exponential = self
            .base_delay_ms
            .saturating_mul(1u64.checked_shl(exponent).unwrap_or(u64::MAX))
            .min(self.max_delay_ms);
        let half = exponential / 2;
        let spread = exponential - half;
        let mixed = splitmix64(jitter_seed ^ u64::from(receive_count).rotate_left(32));
        half + if spread == 0 { 0 } else { mixed % (spread + 1) }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> QueueName {
        QueueName::new(s).expect("valid name")
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(QueueConfig::default().validate(&name("q")), Ok(()));
    }

    #[test]
    fn fifo_must_match_the_suffix() {
        let fifo = QueueConfig {
            fifo: true,
            ..QueueConfig::default()
        };
        assert!(fifo.validate(&name("q")).is_err());
        assert!(QueueConfig::default().validate(&name("q.fifo")).is_err());
        assert!(fifo.validate(&name("q.fifo")).is_ok());
    }

    #[test]
    fn out_of_range_attributes_name_the_field() {
        let cases: Vec<(QueueConfig, &str)> = vec![
            (
                QueueConfig {
                    visibility_timeout_ms: VISIBILITY_TIMEOUT_MS_MAX + 1,
                    ..Default::default()
                },
                "visibility_timeout_ms",
            ),
            (
                QueueConfig {
                    delay_ms: DELAY_MS_MAX + 1,
                    ..Default::default()
                },
                "delay_ms",
            ),
            (
                QueueConfig {
                    retention_ms: RETENTION_MS_MIN - 1,
                    ..Default::default()
                },
                "retention_ms",
            ),
            (
                QueueConfig {
                    retention_ms: RETENTION_MS_MAX + 1,
                    ..Default::default()
                },
                "retention_ms",
            ),
            (
                QueueConfig {
                    max_message_bytes: MESSAGE_BYTES_MIN - 1,
                    ..Default::default()
                },
                "max_message_bytes",
            ),
            (
                QueueConfig {
                    max_message_bytes: MESSAGE_BYTES_MAX + 1,
                    ..Default::default()
                },
                "max_message_bytes",
            ),
            (
                QueueConfig {
                    receive_wait_ms: WAIT_MS_MAX + 1,
                    ..Default::default()
                },
                "receive_wait_ms",
            ),
            (
                QueueConfig {
                    max_depth: Some(0),
                    ..Default::default()
                },
                "max_depth",
            ),
            (
                QueueConfig {
                    dead_letter: Some(DeadLetterPolicy {
                        queue: name("d"),
                        max_receive_count: 0,
                    }),
                    ..Default::default()
                },
                "dead_letter.max_receive_count",
            ),
            (
                QueueConfig {
                    dead_letter: Some(DeadLetterPolicy {
                        queue: name("q"),
                        max_receive_count: 3,
                    }),
                    ..Default::default()
                },
                "dead_letter.queue",
            ),
            (
                QueueConfig {
                    retry: Some(RetryPolicy {
                        base_delay_ms: 100,
                        max_delay_ms: 50,
                    }),
                    ..Default::default()
                },
                "retry.max_delay_ms",
            ),
        ];
        for (config, field) in cases {
            assert!(
                matches!(config.validate(&name("q")), Err(QueueError::InvalidParameter { field: f, .. }) if f == field),
                "{field}"
            );
        }
    }

    #[test]
    fn retry_delay_grows_exponentially_with_jitter_and_caps() {
        let retry = RetryPolicy {
            base_delay_ms: 100,
            max_delay_ms: 1000,
        };
        for seed in 0..50 {
            let first = retry.delay_ms(1, seed);
            assert!((50..=100).contains(&first), "{first}");
            let third = retry.delay_ms(3, seed);
            assert!((200..=400).contains(&third), "{third}");
            let capped = retry.delay_ms(30, seed);
            assert!((500..=1000).contains(&capped), "{capped}");
        }
        assert_eq!(
            retry.delay_ms(2, 7),
            retry.delay_ms(2, 7),
            "deterministic for replay"
        );
    }
}
