//! The one kit every simulation test uses: where a run's base seed and schedule count come
//! from (`BATON_SIM_SEED`, `BATON_SIM_SCHEDULES`), how one schedule derives its own generator,
//! and the generator itself (splitmix64).
//!
//! Invariant: a schedule's random choices depend only on the base seed and the schedule's
//! index, so the label a failing test prints (`schedule 7 (seed 20497)`) is enough to replay
//! it: `BATON_SIM_SEED=20497` runs the same schedules again, in the same order.

use std::fmt;

/// The seeded generator every simulation uses (splitmix64), so that a printed seed replays the
/// same schedule: returns the next value and advances `seed`.
pub fn sim_random(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The schedules of one simulation test: a base seed and how many schedules to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimRun {
    base_seed: u64,
    n_schedules: u64,
}

impl SimRun {
    /// The test's own defaults, overridden by `BATON_SIM_SEED` and `BATON_SIM_SCHEDULES` (both
    /// decimal `u64`; a value that does not parse is ignored, so a typo runs the defaults).
    pub fn from_env(default_seed: u64, default_schedules: u64) -> Self {
        let parsed = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
        SimRun {
            base_seed: parsed("BATON_SIM_SEED").unwrap_or(default_seed),
            n_schedules: parsed("BATON_SIM_SCHEDULES").unwrap_or(default_schedules),
        }
    }

    /// The seed every schedule of the run derives from.
    pub fn base_seed(&self) -> u64 {
        self.base_seed
    }

    /// The schedules in order, `0..n_schedules`.
    pub fn schedules(&self) -> impl Iterator<Item = SimSchedule> {
        let base_seed = self.base_seed;
        (0..self.n_schedules).map(move |index| SimSchedule { index, base_seed })
    }
}

/// One schedule of a [`SimRun`]. Its `Display` is the label failure messages start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimSchedule {
    pub index: u64,
    pub base_seed: u64,
}

impl SimSchedule {
    /// A fresh generator for this schedule: the same one every time it is asked for.
    pub fn rng(&self) -> SimRng {
        SimRng::new(self.base_seed ^ self.index.wrapping_mul(0x1234_5678_9ABC_DEF1))
    }
}

impl fmt::Display for SimSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schedule {} (seed {})", self.index, self.base_seed)
    }
}

/// A seeded generator ([`sim_random`] over its own state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng { state: seed }
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        sim_random(&mut self.state)
    }

    /// A value in `0..n` (`n` at least 1).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(0 < n, "below(0) has no value to return");
        self.next_u64() % n
    }

    /// True once in `n` on average (`n` at least 1).
    pub fn one_in(&mut self, n: u64) -> bool {
        assert!(0 < n, "one_in(0) is not a probability");
        self.next_u64().is_multiple_of(n)
    }

    /// One of `choices` (not empty).
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        let n = u64::try_from(choices.len()).unwrap_or(u64::MAX);
        let idx = usize::try_from(self.below(n)).unwrap_or(usize::MAX);
        *choices.get(idx).expect("below(len) is an index")
    }

    /// A generator of its own for a concurrent task, drawn from this one.
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_gives_the_same_generator_every_time() {
        let run = SimRun {
            base_seed: 0x5EED,
            n_schedules: 3,
        };
        let schedules: Vec<SimSchedule> = run.schedules().collect();
        assert_eq!(schedules.len(), 3);
        let (mut a, mut b) = (schedules[1].rng(), schedules[1].rng());
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(schedules[0].rng().next_u64(), schedules[1].rng().next_u64());
        assert_eq!(schedules[2].to_string(), "schedule 2 (seed 24301)");
    }

    #[test]
    fn helpers_draw_from_the_same_stream_as_sim_random() {
        let mut state = 7;
        let mut rng = SimRng::new(7);
        assert_eq!(rng.below(10), sim_random(&mut state) % 10);
        assert_eq!(rng.one_in(3), sim_random(&mut state).is_multiple_of(3));
        let fork_seed = sim_random(&mut state);
        assert_eq!(rng.fork(), SimRng::new(fork_seed));
        assert_eq!(
            rng.pick(&[1, 2, 3]),
            [1, 2, 3][(sim_random(&mut state) % 3) as usize]
        );
    }
}
