//! The memory alarm: a budget (`memory_high_watermark`) for the memory the broker holds for
//! messages, above which producers' writes — sends, publishes, stream appends, schedule
//! firings — are refused with [`EngineError::MemoryPressure`] while consumers' receives, acks,
//! nacks and reads go on, so a backlog that outgrows the machine ends in refused sends instead
//! of a killed process.
//!
//! The usage is what the queues hold (`Queue::live_bytes`: bodies, attributes and the index
//! entry of every live message — what a backlog grows by), sampled by [`MemoryAlarm::check`]
//! on the engine's tick and kept in an atomic, so the check on every write is one load. Not the
//! process's resident memory: an allocator keeps freed pages for reuse, so after a drain the
//! resident figure stays near its peak and an alarm on it would never clear; it is sampled
//! when `/ready` or `/metrics` asks. The alarm turns on at the watermark and off again below
//! `high - hysteresis` (a twentieth of it), so a queue draining near the line does not flap.
//! Tests may replace the usage with a probe of their own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::EngineError;

/// Replaces the engine's figure of the memory in use (tests).
pub type MemoryProbe = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What `/ready`, `/metrics` and the dashboard show of the memory alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Memory held for messages at the last sample.
    pub used_bytes: u64,
    /// The process's resident memory, read when the status is (0 where it cannot be).
    pub resident_bytes: u64,
    /// The budget (`memory_high_watermark`); 0 when the alarm is off.
    pub high_watermark_bytes: u64,
    /// The alarm is on: producers are refused.
    pub alarm: bool,
    /// Producer writes refused by the alarm since start.
    pub refused_writes: u64,
}

pub struct MemoryAlarm {
    high_watermark: u64,
    probe: Option<MemoryProbe>,
    used: AtomicU64,
    alarm: AtomicBool,
    refused: AtomicU64,
}

impl std::fmt::Debug for MemoryAlarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAlarm")
            .field("status", &self.status())
            .finish()
    }
}

impl MemoryAlarm {
    /// An alarm at `high_watermark` bytes held for messages (0: never on).
    pub fn new(high_watermark: u64) -> Self {
        MemoryAlarm {
            high_watermark,
            probe: None,
            used: AtomicU64::new(0),
            alarm: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        }
    }

    /// An alarm whose usage comes from `probe` instead of the engine's figure.
    pub fn with_probe(high_watermark: u64, probe: MemoryProbe) -> Self {
        MemoryAlarm {
            probe: Some(probe),
            ..Self::new(high_watermark)
        }
    }

    /// Takes `held` (the bytes the engine holds for messages) as the usage, unless a probe
    /// replaces it, and turns the alarm on or off.
    pub fn check(&self, held: u64) {
        let used = self.probe.as_ref().map_or(held, |probe| probe());
        self.used.store(used, Ordering::Relaxed);
        if self.high_watermark == 0 {
            return;
        }
        let on = self.alarm.load(Ordering::Relaxed);
        let clear_below = self.high_watermark - self.high_watermark / 20;
        if !on && used >= self.high_watermark {
            tracing::warn!(
                used_bytes = used,
                high_watermark = self.high_watermark,
                "memory alarm on: sends, publishes and stream appends are refused until consumers drain"
            );
            self.alarm.store(true, Ordering::Relaxed);
        } else if on && used < clear_below {
            tracing::info!(used_bytes = used, "memory alarm off: writes accepted again");
            self.alarm.store(false, Ordering::Relaxed);
        }
    }

    /// Refuses a producer's write while the alarm is on.
    pub fn admit(&self) -> Result<(), EngineError> {
        if !self.alarm.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        Err(EngineError::MemoryPressure {
            used_bytes: self.used.load(Ordering::Relaxed),
            high_watermark_bytes: self.high_watermark,
        })
    }

    pub fn status(&self) -> MemoryStatus {
        MemoryStatus {
            used_bytes: self.used.load(Ordering::Relaxed),
            resident_bytes: resident_bytes().unwrap_or(0),
            high_watermark_bytes: self.high_watermark,
            alarm: self.alarm.load(Ordering::Relaxed),
            refused_writes: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// The process's resident memory (`VmRSS` of `/proc/self/status`); `None` without procfs.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, "VmRSS:")
}

/// A `Name:   123 kB` line's value in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The memory this process may use: the cgroup's limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) when there is one below the machine's, else the machine's
/// (`MemTotal`); `None` when neither can be read.
pub fn available_memory() -> Option<u64> {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| kib_field(&meminfo, "MemTotal:"));
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });
    match (machine, cgroup) {
        (Some(m), Some(c)) => Some(m.min(c)),
        (m, c) => m.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_from_the_watermark_until_usage_falls_below_the_hysteresis() {
        let alarm = MemoryAlarm::new(1_000);
        alarm.check(999);
        assert!(alarm.admit().is_ok());

        alarm.check(1_000);
        assert_eq!(
            alarm.admit(),
            Err(EngineError::MemoryPressure {
                used_bytes: 1_000,
                high_watermark_bytes: 1_000
            })
        );

        // Below the watermark but within the hysteresis (a twentieth): still on.
        alarm.check(960);
        assert!(alarm.admit().is_err());

        alarm.check(949);
        assert!(alarm.admit().is_ok());
        let status = alarm.status();
        assert_eq!(
            (status.used_bytes, status.high_watermark_bytes),
            (949, 1_000)
        );
        assert!(!status.alarm);
        assert_eq!(status.refused_writes, 2);
        assert!(status.resident_bytes > 1 << 20, "{status:?}");
    }

    #[test]
    fn a_zero_watermark_never_refuses() {
        let alarm = MemoryAlarm::new(0);
        alarm.check(u64::MAX);
        assert!(alarm.admit().is_ok());
        assert_eq!(alarm.status().used_bytes, u64::MAX);
    }

    #[test]
    fn a_probe_replaces_the_engines_figure() {
        let alarm = MemoryAlarm::with_probe(10, Arc::new(|| 20));
        alarm.check(0);
        assert!(alarm.admit().is_err());
        assert_eq!(alarm.status().used_bytes, 20);
    }

    #[test]
    fn reads_this_process_and_this_machine() {
        let resident = resident_bytes().expect("procfs on Linux");
        let available = available_memory().expect("procfs on Linux");
        assert!(resident > 1 << 20, "{resident}");
        assert!(available > resident, "{available} vs {resident}");
    }
}
