//! The schedule settings of the configuration (`schedules_max`, `schedule_*`): their ranges
//! and their conversion into the engine's `ScheduleLimits`.

use baton_core::schedule::{ScheduleLimits, SCHEDULE_NAME_CHARS_LIMIT};

use super::{ConfigError, ServerConfig};

/// The engine's defaults, which are the configuration's.
pub(super) const DEFAULTS: ScheduleLimits = ScheduleLimits {
    schedules_max: 10_000,
    name_chars_max: SCHEDULE_NAME_CHARS_LIMIT,
    message_bytes_max: 256 * 1024,
    missed_grace_ms: 2_000,
    catch_up_max: 100,
};

impl ServerConfig {
    pub(super) fn validate_schedules(&self) -> Result<(), ConfigError> {
        let check = super::check_range;
        check("schedules_max", u64::from(self.schedules_max), 1, 1_000_000)?;
        check(
            "schedule_name_chars_max",
            u64::from(self.schedule_name_chars_max),
            1,
            u64::from(SCHEDULE_NAME_CHARS_LIMIT),
        )?;
        check(
            "schedule_message_bytes_max",
            u64::from(self.schedule_message_bytes_max),
            1,
            16 * 1024 * 1024,
        )?;
        check(
            "schedule_missed_grace_ms",
            self.schedule_missed_grace_ms,
            0,
            24 * 60 * 60 * 1000,
        )?;
        check(
            "schedule_catch_up_max",
            u64::from(self.schedule_catch_up_max),
            1,
            100_000,
        )?;
        Ok(())
    }

    /// The engine's schedule limits.
    pub fn schedule_limits(&self) -> ScheduleLimits {
        ScheduleLimits {
            schedules_max: self.schedules_max,
            name_chars_max: self.schedule_name_chars_max,
            message_bytes_max: self.schedule_message_bytes_max,
            missed_grace_ms: self.schedule_missed_grace_ms,
            catch_up_max: self.schedule_catch_up_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_defaults_are_the_engines_and_ranges_are_checked() {
        let config = ServerConfig::default();
        assert_eq!(config.schedule_limits(), ScheduleLimits::default());
        let bad = ServerConfig {
            schedule_name_chars_max: SCHEDULE_NAME_CHARS_LIMIT + 1,
            ..ServerConfig::default()
        };
        assert!(matches!(
            bad.validate_schedules(),
            Err(ConfigError::Invalid {
                key: "schedule_name_chars_max",
                ..
            })
        ));
    }
}
