//! Circuit breakers per target host, as pure state machines over an injected time (ms).
//!
//! Closed: deliveries go out; failures are counted in a sliding window, and `failures` of them
//! within `window_ms` open the breaker. Open: nothing goes out until `cooldown_ms` have passed;
//! then one probe is allowed (half-open). The probe's success closes the breaker, its failure
//! opens it again for another cool-down. Outcomes of deliveries that started before the
//! breaker opened do not count while it is open.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub window_ms: u64,
    pub cooldown_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Closed { failures: VecDeque<u64> },
    Open { until: u64 },
    HalfOpen { probe_in_flight: bool },
}

/// What a delivery may do right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Go,
    /// Go ahead as the one probe of a half-open breaker.
    Probe,
    /// Wait: nothing may go out before `until` (ms).
    Wait { until: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breaker {
    state: State,
    opened_total: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            state: State::Closed {
                failures: VecDeque::new(),
            },
            opened_total: 0,
        }
    }
}

/// How long a delivery waits for a probe in flight before asking again.
const PROBE_POLL_MS: u64 = 50;

impl Breaker {
    pub fn admit(&mut self, now: u64) -> Admission {
        match &mut self.state {
            State::Closed { .. } => Admission::Go,
            State::Open { until } if now < *until => Admission::Wait { until: *until },
            State::Open { .. } => {
                self.state = State::HalfOpen {
                    probe_in_flight: true,
                };
                Admission::Probe
            }
            State::HalfOpen { probe_in_flight } => {
                if *probe_in_flight {
                    Admission::Wait {
                        until: now + PROBE_POLL_MS,
                    }
                } else {
                    *probe_in_flight = true;
                    Admission::Probe
                }
            }
        }
    }

    /// Records a delivery's outcome; `probe` says whether it was admitted as the probe.
    pub fn record(&mut self, config: &BreakerConfig, now: u64, success: bool, probe: bool) {
        match &mut self.state {
            State::Closed { failures } => {
                if success {
                    return;
                }
                failures.push_back(now);
                while failures
                    .front()
                    .is_some_and(|&at| at + config.window_ms <= now)
                {
                    failures.pop_front();
                }
                if failures.len() >= config.failures as usize {
                    self.open(config, now);
                }
            }
            State::Open { .. } => {}
            State::HalfOpen { probe_in_flight } => {
                if !probe {
                    return;
                }
                if success {
                    self.state = State::Closed {
                        failures: VecDeque::new(),
                    };
                } else {
                    *probe_in_flight = false;
                    self.open(config, now);
                }
            }
        }
    }

    /// A probe that never reported (its delivery was abandoned): let another one go.
    pub fn abandon_probe(&mut self) {
        if let State::HalfOpen { probe_in_flight } = &mut self.state {
            *probe_in_flight = false;
        }
    }

    fn open(&mut self, config: &BreakerConfig, now: u64) {
        self.state = State::Open {
            until: now + config.cooldown_ms,
        };
        self.opened_total += 1;
    }

    /// `closed`, `open` or `half_open`.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Closed { .. } => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }

    /// 0 closed, 1 open, 2 half-open (the metric's value).
    pub fn state_code(&self) -> u8 {
        match self.state {
            State::Closed { .. } => 0,
            State::Open { .. } => 1,
            State::HalfOpen { .. } => 2,
        }
    }

    pub fn opened_total(&self) -> u64 {
        self.opened_total
    }
}

/// Every target host's breaker (keyed by `host:port`).
#[derive(Debug, Default)]
pub struct Breakers {
    hosts: parking_lot::Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    pub fn admit(&self, host: &str, now: u64) -> Admission {
        self.hosts
            .lock()
            .entry(host.to_string())
            .or_default()
            .admit(now)
    }

    pub fn record(&self, host: &str, config: &BreakerConfig, now: u64, success: bool, probe: bool) {
        self.hosts
            .lock()
            .entry(host.to_string())
            .or_default()
            .record(config, now, success, probe);
    }

    pub fn abandon_probe(&self, host: &str) {
        if let Some(breaker) = self.hosts.lock().get_mut(host) {
            breaker.abandon_probe();
        }
    }

    /// `(state name, opened_total)` of `host`'s breaker.
    pub fn state(&self, host: &str) -> (&'static str, u64) {
        self.hosts
            .lock()
            .get(host)
            .map_or(("closed", 0), |b| (b.state_name(), b.opened_total()))
    }

    /// Every host's `(host, state code, opened_total)`, sorted by host.
    pub fn snapshot(&self) -> Vec<(String, u8, u64)> {
        let mut out: Vec<_> = self
            .hosts
            .lock()
            .iter()
            .map(|(host, b)| (host.clone(), b.state_code(), b.opened_total()))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: BreakerConfig = BreakerConfig {
        failures: 3,
        window_ms: 1_000,
        cooldown_ms: 500,
    };

    #[test]
    fn failures_within_the_window_open_it_and_old_ones_age_out() {
        let mut b = Breaker::default();
        b.record(&CONFIG, 0, false, false);
        b.record(&CONFIG, 100, false, false);
        // The first failure leaves the window before the third arrives.
        b.record(&CONFIG, 1_000, false, false);
        assert_eq!(b.state_name(), "closed");
        b.record(&CONFIG, 1_050, true, false);
        b.record(&CONFIG, 1_099, false, false);
        assert_eq!(b.state_name(), "open");
        assert_eq!(b.opened_total(), 1);
        assert_eq!(b.admit(1_100), Admission::Wait { until: 1_599 });
        assert_eq!(b.admit(1_598), Admission::Wait { until: 1_599 });
    }

    #[test]
    fn after_the_cooldown_one_probe_goes_and_its_success_closes() {
        let mut b = Breaker::default();
        for t in 0..3 {
            b.record(&CONFIG, t, false, false);
        }
        assert_eq!(b.admit(502), Admission::Probe);
        assert_eq!(b.state_name(), "half_open");
        assert_eq!(b.admit(503), Admission::Wait { until: 553 });
        // A late outcome of a delivery that was not the probe changes nothing.
        b.record(&CONFIG, 504, true, false);
        assert_eq!(b.state_name(), "half_open");
        b.record(&CONFIG, 510, true, true);
        assert_eq!(b.state_name(), "closed");
        assert_eq!(b.admit(511), Admission::Go);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cooldown() {
        let mut b = Breaker::default();
        for t in 0..3 {
            b.record(&CONFIG, t, false, false);
        }
        assert_eq!(b.admit(600), Admission::Probe);
        b.record(&CONFIG, 610, false, true);
        assert_eq!(b.state_name(), "open");
        assert_eq!(b.opened_total(), 2);
        assert_eq!(b.admit(700), Admission::Wait { until: 1_110 });
        assert_eq!(b.admit(1_110), Admission::Probe);
        b.abandon_probe();
        assert_eq!(b.admit(1_111), Admission::Probe);
    }

    #[test]
    fn outcomes_while_open_do_not_count() {
        let mut b = Breaker::default();
        for t in 0..3 {
            b.record(&CONFIG, t, false, false);
        }
        b.record(&CONFIG, 10, false, false);
        b.record(&CONFIG, 11, true, false);
        assert_eq!((b.state_name(), b.opened_total()), ("open", 1));
    }
}
