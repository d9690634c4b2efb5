//! The memory alarm: a budget for the process's memory (`memory_high_watermark`) above which
//! producers' writes — sends, publishes, stream appends, schedule firings — are refused with
//! [`EngineError::MemoryPressure`] while consumers' receives, acks, nacks and reads go on, so a
//! backlog that outgrows the machine ends in refused sends instead of a killed process.
//!
//! The usage is sampled by [`MemoryAlarm::check`] (the engine's tick) from a probe — the
//! process's resident memory by default ([`resident_bytes`]), a value of the test's choosing in
//! tests — and kept in an atomic, so the check on every write is one load. The alarm turns on
//! at the watermark and off again below `high - hysteresis` (a twentieth of it), so a queue
//! draining near the line does not flap between refusing and accepting every tick.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::EngineError;

/// Reads the memory in use, in bytes; `None` when it cannot be read (the alarm then keeps its
/// last sample).
pub type MemoryProbe = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// What `/ready`, `/metrics` and the dashboard show of the memory alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStatus {
    /// Memory in use at the last sample.
    pub used_bytes: u64,
    /// The budget (`memory_high_watermark`); 0 when the alarm is off.
    pub high_watermark_bytes: u64,
    /// The alarm is on: producers are refused.
    pub alarm: bool,
    /// Producer writes refused by the alarm since start.
    pub refused_writes: u64,
}

pub struct MemoryAlarm {
    high_watermark: u64,
    probe: MemoryProbe,
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
    /// An alarm at `high_watermark` bytes (0: never on) over `probe`, sampled once now.
    pub fn new(high_watermark: u64, probe: MemoryProbe) -> Self {
        let alarm = MemoryAlarm {
            high_watermark,
            probe,
            used: AtomicU64::new(0),
            alarm: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        };
        alarm.check();
        alarm
    }

    /// An alarm over the process's resident memory.
    pub fn resident(high_watermark: u64) -> Self {
        Self::new(high_watermark, Arc::new(resident_bytes))
    }

    /// Samples the usage and turns the alarm on or off.
    pub fn check(&self) {
        let Some(used) = (self.probe)() else {
            return;
        };
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
                "memory alarm on: sends, publishes and stream appends are refused until memory falls"
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

    fn alarm_over(high: u64) -> (MemoryAlarm, Arc<AtomicU64>) {
        let usage = Arc::new(AtomicU64::new(0));
        let probe = usage.clone();
        let alarm = MemoryAlarm::new(high, Arc::new(move || Some(probe.load(Ordering::Relaxed))));
        (alarm, usage)
    }

    #[test]
    fn refuses_from_the_watermark_until_usage_falls_below_the_hysteresis() {
        let (alarm, usage) = alarm_over(1_000);
        usage.store(999, Ordering::Relaxed);
        alarm.check();
        assert!(alarm.admit().is_ok());

        usage.store(1_000, Ordering::Relaxed);
        alarm.check();
        assert_eq!(
            alarm.admit(),
            Err(EngineError::MemoryPressure {
                used_bytes: 1_000,
                high_watermark_bytes: 1_000
            })
        );

        // Below the watermark but within the hysteresis (a twentieth): still on.
        usage.store(960, Ordering::Relaxed);
        alarm.check();
        assert!(alarm.admit().is_err());

        usage.store(949, Ordering::Relaxed);
        alarm.check();
        assert!(alarm.admit().is_ok());
        let status = alarm.status();
        assert_eq!(
            status,
            MemoryStatus {
                used_bytes: 949,
                high_watermark_bytes: 1_000,
                alarm: false,
                refused_writes: 2
            }
        );
    }

    #[test]
    fn a_zero_watermark_never_refuses() {
        let (alarm, usage) = alarm_over(0);
        usage.store(u64::MAX, Ordering::Relaxed);
        alarm.check();
        assert!(alarm.admit().is_ok());
        assert_eq!(alarm.status().used_bytes, u64::MAX);
    }

    #[test]
    fn an_unreadable_probe_keeps_the_last_sample() {
        let flag = Arc::new(AtomicBool::new(true));
        let readable = flag.clone();
        let alarm = MemoryAlarm::new(
            10,
            Arc::new(move || readable.load(Ordering::Relaxed).then_some(20)),
        );
        assert!(alarm.admit().is_err());
        flag.store(false, Ordering::Relaxed);
        alarm.check();
        assert!(alarm.admit().is_err());
    }

    #[test]
    fn reads_this_process_and_this_machine() {
        let resident = resident_bytes().expect("procfs on Linux");
        let available = available_memory().expect("procfs on Linux");
        assert!(resident > 1 << 20, "{resident}");
        assert!(available > resident, "{available} vs {resident}");
    }
}
