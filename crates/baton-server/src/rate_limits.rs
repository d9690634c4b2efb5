//! Request rate limits per API key and per client address: a token bucket of requests and
//! one of bytes for each key and each client IP that calls, on every transport (the native
//! HTTP API, the SQS API, the framed protocol).
//!
//! A bucket holds `rate_burst_ms` worth of its rate and refills continuously. A request is
//! admitted while its request bucket holds a whole token and its byte bucket is not in debt;
//! admitting takes one request token and the request's bytes, and the answer's bytes are
//! taken once known. So a byte bucket may go into debt by one request or answer (its size is
//! not known up front for every request), and the next requests wait until the debt is paid
//! off: the long-run rate is the configured one. A refused request takes nothing.
//!
//! Invariants: with every rate 0 nothing is kept and a check is one branch; the buckets of
//! callers that stopped calling are dropped once full again, so the tables stay bounded by
//! the callers of the last `rate_burst_ms` (and are cleared at `TABLE_MAX` entries, which
//! forgives debts rather than growing without bound). Time is passed in, so the bucket
//! arithmetic is tested with an injected clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::service::ServiceError;

/// Most buckets a table keeps; beyond, the full ones are dropped, and if none is, all.
const TABLE_MAX: usize = 100_000;

/// The rates of one kind of caller; 0 turns that rate off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub requests_per_s: u32,
    pub bytes_per_s: u64,
}

impl Rate {
    fn is_off(self) -> bool {
        self.requests_per_s == 0 && self.bytes_per_s == 0
    }
}

/// One caller's buckets: tokens as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    requests: f64,
    bytes: f64,
    at: Instant,
}

/// Why a request waits: which rate, and how long until it would be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub what: &'static str,
    pub retry_after: Duration,
}

impl Bucket {
    fn full(rate: Rate, burst: Duration, at: Instant) -> Bucket {
        let burst = burst.as_secs_f64();
        Bucket {
            requests: (f64::from(rate.requests_per_s) * burst).max(1.0),
            bytes: rate.bytes_per_s as f64 * burst,
            at,
        }
    }

    fn refill(&mut self, rate: Rate, burst: Duration, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        let cap = Bucket::full(rate, burst, now);
        self.requests =
            (self.requests + elapsed * f64::from(rate.requests_per_s)).min(cap.requests);
        self.bytes = (self.bytes + elapsed * rate.bytes_per_s as f64).min(cap.bytes);
        self.at = now;
    }

    fn is_full(&self, rate: Rate, burst: Duration) -> bool {
        let cap = Bucket::full(rate, burst, self.at);
        self.requests >= cap.requests && self.bytes >= cap.bytes
    }

    /// Admits a request of `bytes`, or says how long it must wait.
    fn admit(&mut self, rate: Rate, bytes: u64) -> Result<(), Refusal> {
        if rate.requests_per_s > 0 && self.requests < 1.0 {
            let wait = (1.0 - self.requests) / f64::from(rate.requests_per_s);
            return Err(Refusal {
                what: "requests",
                retry_after: Duration::from_secs_f64(wait),
            });
        }
        if rate.bytes_per_s > 0 && self.bytes < 0.0 {
            return Err(Refusal {
                what: "bytes",
                retry_after: Duration::from_secs_f64(-self.bytes / rate.bytes_per_s as f64),
            });
        }
        if rate.requests_per_s > 0 {
            self.requests -= 1.0;
        }
        if rate.bytes_per_s > 0 {
            self.bytes -= bytes as f64;
        }
        Ok(())
    }
}

/// The buckets of every caller of one kind.
struct Table<K> {
    rate: Rate,
    burst: Duration,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(rate: Rate, burst: Duration) -> Option<Self> {
        (!rate.is_off()).then(|| Table {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    fn admit(&self, caller: &K, bytes: u64, now: Instant) -> Result<(), Refusal> {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= TABLE_MAX && !buckets.contains_key(caller) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, bucket| {
                bucket.refill(rate, burst, now);
                !bucket.is_full(rate, burst)
            });
            if buckets.len() >= TABLE_MAX {
                buckets.clear();
            }
        }
        let bucket = buckets
            .entry(caller.clone())
            .or_insert_with(|| Bucket::full(self.rate, self.burst, now));
        bucket.refill(self.rate, self.burst, now);
        bucket.admit(self.rate, bytes)
    }

    /// Takes an answer's `bytes` from `caller`'s byte bucket.
    fn charge(&self, caller: &K, bytes: u64) {
        if self.rate.bytes_per_s == 0 || bytes == 0 {
            return;
        }
        if let Some(bucket) = self.buckets.lock().get_mut(caller) {
            bucket.bytes -= bytes as f64;
        }
    }

    /// Drops the buckets that are full again (their callers stopped for a while).
    fn sweep(&self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.lock().retain(|_, bucket| {
            bucket.refill(rate, burst, now);
            !bucket.is_full(rate, burst)
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().len()
    }
}

/// The server's rate limits (see the module doc).
pub struct RateLimits {
    per_key: Option<Table<Arc<str>>>,
    per_client: Option<Table<IpAddr>>,
}

/// Who a request is charged to: its client address and, once known, its key.
#[derive(Debug, Clone, Default)]
pub struct Charged {
    client: Option<IpAddr>,
    key: Option<Arc<str>>,
}

impl RateLimits {
    pub fn new(per_key: Rate, per_client: Rate, burst: Duration) -> Self {
        RateLimits {
            per_key: Table::new(per_key, burst),
            per_client: Table::new(per_client, burst),
        }
    }

    /// Whether no rate is configured (nothing is checked).
    pub fn is_off(&self) -> bool {
        self.per_key.is_none() && self.per_client.is_none()
    }

    /// Whether a per-key rate is configured.
    pub fn limits_keys(&self) -> bool {
        self.per_key.is_some()
    }

    /// Admits a request of `bytes` from `client`: `Err` with the refusal if it must wait.
    pub fn admit_client(
        &self,
        client: IpAddr,
        bytes: u64,
        charged: &mut Charged,
    ) -> Result<(), ServiceError> {
        let Some(table) = &self.per_client else {
            return Ok(());
        };
        table
            .admit(&client, bytes, Instant::now())
            .map_err(|refusal| refused(format!("client {client}"), table.rate, refusal))?;
        charged.client = Some(client);
        Ok(())
    }

    /// Admits a request of `bytes` made with the API key `key`.
    pub fn admit_key(
        &self,
        key: &str,
        bytes: u64,
        charged: &mut Charged,
    ) -> Result<(), ServiceError> {
        let Some(table) = &self.per_key else {
            return Ok(());
        };
        let key: Arc<str> = Arc::from(key);
        table
            .admit(&key, bytes, Instant::now())
            .map_err(|refusal| refused(format!("API key `{key}`"), table.rate, refusal))?;
        charged.key = Some(key);
        Ok(())
    }

    /// Takes an answer's `bytes` from the callers the request was admitted for.
    pub fn charge_answer(&self, charged: &Charged, bytes: u64) {
        if let (Some(table), Some(client)) = (&self.per_client, &charged.client) {
            table.charge(client, bytes);
        }
        if let (Some(table), Some(key)) = (&self.per_key, &charged.key) {
            table.charge(key, bytes);
        }
    }

    /// Drops the buckets of callers that stopped calling (every few seconds, on the tick).
    pub fn sweep(&self) {
        let now = Instant::now();
        if let Some(table) = &self.per_key {
            table.sweep(now);
        }
        if let Some(table) = &self.per_client {
            table.sweep(now);
        }
    }
}

fn refused(who: String, rate: Rate, refusal: Refusal) -> ServiceError {
    let limit = match refusal.what {
        "requests" => format!("{} requests/s", rate.requests_per_s),
        _ => format!("{} bytes/s", rate.bytes_per_s),
    };
    ServiceError::RateLimited {
        who,
        limit,
        retry_after_ms: u64::try_from(refusal.retry_after.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BURST: Duration = Duration::from_secs(1);

    fn rate(requests_per_s: u32, bytes_per_s: u64) -> Rate {
        Rate {
            requests_per_s,
            bytes_per_s,
        }
    }

    #[test]
    fn a_burst_is_admitted_then_requests_wait_for_the_refill() {
        let table = Table::new(rate(10, 0), BURST).unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            table.admit(&1, 0, t0).unwrap();
        }
        let refusal = table.admit(&1, 0, t0).unwrap_err();
        assert_eq!(refusal.what, "requests");
        assert_eq!(refusal.retry_after, Duration::from_millis(100));
        // Another caller has its own bucket.
        table.admit(&2, 0, t0).unwrap();
        // 100 ms later one more token is back, exactly one.
        let t1 = t0 + Duration::from_millis(100);
        table.admit(&1, 0, t1).unwrap();
        assert!(table.admit(&1, 0, t1).is_err());
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..10 {
            table.admit(&1, 0, t2).unwrap();
        }
        assert!(table.admit(&1, 0, t2).is_err());
    }

    #[test]
    fn bytes_go_into_debt_once_and_the_debt_is_waited_off() {
        let table = Table::new(rate(0, 1000), BURST).unwrap();
        let t0 = Instant::now();
        // A request larger than the whole bucket is admitted once...
        table.admit(&1, 3000, t0).unwrap();
        // ...and the next waits until the 2000-byte debt is paid at 1000 bytes/s.
        let refusal = table.admit(&1, 1, t0).unwrap_err();
        assert_eq!(refusal.what, "bytes");
        assert_eq!(refusal.retry_after, Duration::from_secs(2));
        assert!(table
            .admit(&1, 1, t0 + Duration::from_millis(1999))
            .is_err());
        table.admit(&1, 1, t0 + Duration::from_secs(2)).unwrap();
        // An answer's bytes count as well.
        table.charge(&1, 5000);
        assert!(table.admit(&1, 0, t0 + Duration::from_secs(3)).is_err());
    }

    #[test]
    fn a_refused_request_takes_nothing() {
        let table = Table::new(rate(1, 0), BURST).unwrap();
        let t0 = Instant::now();
        table.admit(&1, 0, t0).unwrap();
        for _ in 0..100 {
            assert!(table.admit(&1, 0, t0 + Duration::from_millis(500)).is_err());
        }
        table.admit(&1, 0, t0 + Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn idle_callers_are_swept_and_off_rates_keep_nothing() {
        let table = Table::new(rate(5, 0), BURST).unwrap();
        let t0 = Instant::now();
        table.admit(&1, 0, t0).unwrap();
        table.admit(&2, 0, t0).unwrap();
        table.sweep(t0);
        assert_eq!(table.len(), 2);
        table.sweep(t0 + Duration::from_secs(1));
        assert_eq!(table.len(), 0);
        assert!(Table::<u32>::new(rate(0, 0), BURST).is_none());
        let limits = RateLimits::new(rate(0, 0), rate(0, 0), BURST);
        assert!(limits.is_off());
    }

    #[test]
    fn refusals_name_the_caller_the_rate_and_the_wait() {
        let limits = RateLimits::new(rate(1, 0), rate(0, 0), BURST);
        let mut charged = Charged::default();
        limits.admit_key("ingest", 0, &mut charged).unwrap();
        let error = limits.admit_key("ingest", 0, &mut charged).unwrap_err();
        let ServiceError::RateLimited {
            who,
            limit,
            retry_after_ms,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(who, "API key `ingest`");
        assert_eq!(limit, "1 requests/s");
        assert!((900..=1000).contains(retry_after_ms), "{retry_after_ms}");
        // The client rate is off: any address is admitted.
        limits
            .admit_client(IpAddr::from([10, 0, 0, 1]), 0, &mut charged)
            .unwrap();
    }
}
