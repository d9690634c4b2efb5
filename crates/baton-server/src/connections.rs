//! Connection-level limits of both ports (docs/security.md, "Connection limits"): how many
//! connections are open at once, in total and per client address, and the per-connection
//! settings the HTTP server applies (`http_listener`).
//!
//! A connection beyond `max_connections` or `max_connections_per_ip` is closed at once, before
//! a byte is read or written (no TLS handshake, no answer): answering 503 would mean doing
//! the work the limit is there to avoid. The counts are taken at accept and released when the
//! connection closes, so the only cost is at accept, never per request.
//!
//! Connections that hyper upgrades after a first request (a WebSocket, a wire upgrade on a
//! kept-alive connection) leave the count when they are upgraded; they have caps of their own
//! (`live_connections_max`, `live_streams_max`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// The per-connection settings of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// A request head (HTTP/1.1), a TLS handshake, the first bytes of a connection must
    /// arrive within this.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight (HTTP/2: an open stream) or traffic for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// The request line and headers (HTTP/1.1), the header list (HTTP/2), at most.
    pub max_header_bytes: u32,
    /// Headers of one request at most.
    pub max_header_count: u32,
    /// Connections open at once over both ports.
    pub max_connections: u32,
    /// Connections open at once from one client address.
    pub max_connections_per_ip: u32,
}

/// hyper's own limit of HTTP/1.1 headers; only another value is passed to hyper, which then
/// allocates the header array per request instead of keeping it on the stack.
pub const HYPER_MAX_HEADERS: u32 = 100;

/// Why a new connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Total,
    PerIp,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "max_connections",
            Refused::PerIp => "max_connections_per_ip",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
}

/// The open connections of both ports.
#[derive(Debug)]
pub struct ConnectionLimits {
    settings: ConnectionSettings,
    counts: Mutex<Counts>,
    refused_total: AtomicU64,
    refused_per_ip: AtomicU64,
}

/// One admitted connection; dropping it releases its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(settings: ConnectionSettings) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            settings,
            counts: Mutex::default(),
            refused_total: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &ConnectionSettings {
        &self.settings
    }

    /// A place for a new connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock();
        if counts.total >= self.settings.max_connections {
            self.refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Total);
        }
        let of_ip = counts.per_ip.entry(ip).or_insert(0);
        if *of_ip >= self.settings.max_connections_per_ip {
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerIp);
        }
        *of_ip += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.counts.lock().total
    }

    /// Connections closed at once so far, by the limit that closed them.
    pub fn refused(&self) -> [(Refused, u64); 2] {
        [
            (Refused::Total, self.refused_total.load(Ordering::Relaxed)),
            (Refused::PerIp, self.refused_per_ip.load(Ordering::Relaxed)),
        ]
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(of_ip) = counts.per_ip.get_mut(&self.ip) {
            *of_ip -= 1;
            if *of_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// The open streams of one HTTP/2 connection, for its idle timeout.
#[derive(Debug)]
pub struct Activity {
    open: AtomicUsize,
    /// When the last stream ended, in ms since `epoch`.
    idle_since_ms: AtomicU64,
    epoch: Instant,
}

/// One open stream; dropping it (when the response body is done or dropped) ends it.
#[derive(Debug)]
pub struct StreamGuard(Arc<Activity>);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            open: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    pub fn begin(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        StreamGuard(self.clone())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Completes once no stream has been open for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        loop {
            if self.open.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(timeout).await;
                continue;
            }
            let idle_ms = self
                .now_ms()
                .saturating_sub(self.idle_since_ms.load(Ordering::SeqCst));
            if idle_ms >= timeout_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(timeout_ms - idle_ms)).await;
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        // The time is stored before the count falls, so a watchdog that sees no stream open
        // never reads the end of an earlier idle period.
        self.0
            .idle_since_ms
            .store(self.0.now_ms(), Ordering::SeqCst);
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(total: u32, per_ip: u32) -> ConnectionSettings {
        ConnectionSettings {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_header_count: HYPER_MAX_HEADERS,
            max_connections: total,
            max_connections_per_ip: per_ip,
        }
    }

    #[test]
    fn permits_count_per_address_and_in_total_and_are_given_back() {
        let limits = ConnectionLimits::new(settings(3, 2));
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = limits.admit(a).expect("first");
        let _second = limits.admit(a).expect("second");
        assert_eq!(limits.admit(a).err(), Some(Refused::PerIp));
        // The same address written as IPv4-mapped IPv6 counts as the same client.
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(limits.admit(mapped).err(), Some(Refused::PerIp));
        let _third = limits.admit(b).expect("another address");
        assert_eq!(limits.admit(b).err(), Some(Refused::Total));
        drop(first);
        assert_eq!(limits.open(), 2);
        let _again = limits.admit(a).expect("a place was given back");
        assert_eq!(limits.refused(), [(Refused::Total, 1), (Refused::PerIp, 2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_is_idle_only_without_open_streams() {
        let activity = Activity::new();
        let guard = activity.begin();
        let timeout = Duration::from_secs(5);
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(timeout).await }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!idle.is_finished(), "a stream is open");
        drop(guard);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!idle.is_finished());
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert!(idle.is_finished());
    }
}
