//! The lock settings of the configuration (`locks_max`, `lock_*`): their ranges and their
//! conversion into the engine's `LockSettings`.

use baton_core::lock::{LockLimits, LOCK_NAME_CHARS_LIMIT};
use baton_engine::LockSettings;

use super::{ConfigError, ServerConfig};

/// The engine's defaults, which are the configuration's.
pub(super) const DEFAULTS: LockSettings = LockSettings {
    limits: LockLimits {
        locks_max: 100_000,
        name_chars_max: 256,
        ttl_ms_min: 100,
        ttl_ms_max: 24 * 60 * 60 * 1000,
    },
    waiters_max: 10_000,
    wait_ms_max: 60_000,
};

/// Longest TTL any configuration may allow (7 days).
const LOCK_TTL_MS_LIMIT: u64 = 7 * 24 * 60 * 60 * 1000;

impl ServerConfig {
    pub(super) fn validate_locks(&self) -> Result<(), ConfigError> {
        let check = super::check_range;
        check("locks_max", u64::from(self.locks_max), 1, 10_000_000)?;
        check(
            "lock_name_chars_max",
            u64::from(self.lock_name_chars_max),
            1,
            u64::from(LOCK_NAME_CHARS_LIMIT),
        )?;
        check(
            "lock_ttl_ms_max",
            self.lock_ttl_ms_max,
            1,
            LOCK_TTL_MS_LIMIT,
        )?;
        check(
            "lock_ttl_ms_min",
            self.lock_ttl_ms_min,
            1,
            self.lock_ttl_ms_max,
        )?;
        check(
            "lock_waiters_max",
            u64::from(self.lock_waiters_max),
            1,
            1_000_000,
        )?;
        check("lock_wait_ms_max", self.lock_wait_ms_max, 0, 3_600_000)?;
        Ok(())
    }

    /// The engine's lock settings.
    pub fn lock_settings(&self) -> LockSettings {
        LockSettings {
            limits: LockLimits {
                locks_max: self.locks_max,
                name_chars_max: self.lock_name_chars_max,
                ttl_ms_min: self.lock_ttl_ms_min,
                ttl_ms_max: self.lock_ttl_ms_max,
            },
            waiters_max: self.lock_waiters_max,
            wait_ms_max: self.lock_wait_ms_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_engines_and_ranges_are_checked() {
        let config = ServerConfig::default();
        assert_eq!(config.lock_settings(), LockSettings::default());
        let bad = ServerConfig {
            lock_ttl_ms_min: 10_000,
            lock_ttl_ms_max: 1_000,
            ..ServerConfig::default()
        };
        assert!(matches!(
            bad.validate_locks(),
            Err(ConfigError::Invalid {
                key: "lock_ttl_ms_min",
                ..
            })
        ));
    }
}
