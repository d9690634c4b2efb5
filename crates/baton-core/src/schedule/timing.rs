//! When a schedule fires: a cron pattern in a time zone, or one instant.
//!
//! Cron patterns are parsed by `croner` (five fields, or six with seconds first; `L`, `W`,
//! `#`, names and `@daily`-style aliases), time zones come from `chrono-tz` (the IANA
//! database, daylight-saving rules included). Ticks are instants (milliseconds since the
//! epoch, always on a whole second), so a wall-clock time that happens twice gives two
//! distinct instants and a search from an instant is never ambiguous.
//!
//! Daylight saving follows croner (the Open Cron Pattern Specification, as Vixie cron does):
//! a fixed-time tick in a gap (02:30 on a spring-forward night) fires at the first instant
//! after the gap, on the same day; a fixed-time tick in a repeated hour fires once, on its
//! first pass; wildcard and step fields (`*/15`) fire on both passes of a repeated hour and
//! skip the times a gap removes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

use super::ScheduleError;
use crate::time::Timestamp;

/// Longest cron pattern accepted.
pub const CRON_PATTERN_CHARS_MAX: usize = 256;
/// Longest time zone name accepted.
pub const TIMEZONE_CHARS_MAX: usize = 64;

/// A parsed cron pattern in its time zone.
#[derive(Clone)]
pub struct CronTiming {
    pattern: Arc<str>,
    zone: Tz,
    cron: Arc<Cron>,
}

impl CronTiming {
    /// Parses `pattern` (seconds optional) for `timezone` (an IANA name; `UTC` when `None`).
    ///
    /// # Errors
    /// `InvalidCron` with croner's reason, `UnknownTimezone`.
    pub fn new(pattern: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidCron {
            pattern: pattern.chars().take(80).collect(),
            reason,
        };
        if pattern.chars().count() > CRON_PATTERN_CHARS_MAX {
            return Err(invalid(format!(
                "a pattern is at most {CRON_PATTERN_CHARS_MAX} characters"
            )));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(pattern)
            .map_err(|e| invalid(e.to_string()))?;
        let zone_name = timezone.unwrap_or("UTC");
        let zone = if zone_name.chars().count() > TIMEZONE_CHARS_MAX {
            None
        } else {
            Tz::from_str(zone_name).ok()
        };
        let zone = zone.ok_or_else(|| ScheduleError::UnknownTimezone {
            timezone: zone_name.chars().take(80).collect(),
        })?;
        Ok(CronTiming {
            pattern: Arc::from(pattern),
            zone,
            cron: Arc::new(cron),
        })
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The IANA name of the time zone.
    pub fn timezone(&self) -> &str {
        self.zone.name()
    }

    fn zoned(&self, t: Timestamp) -> Option<DateTime<Tz>> {
        let ms = i64::try_from(t.as_millis()).ok()?;
        self.zone.timestamp_millis_opt(ms).single()
    }

    fn instant(dt: &DateTime<Tz>) -> Option<Timestamp> {
        u64::try_from(dt.timestamp_millis())
            .ok()
            .map(Timestamp::from_millis)
    }

    /// The first tick strictly after `t`.
    fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        // Ticks are whole seconds; croner searches from the second `t` falls in, exclusively,
        // so a `t` inside a tick's second must not find that tick again.
        let second = Timestamp::from_millis(t.as_millis() / 1000 * 1000);
        let next = self
            .cron
            .find_next_occurrence(&self.zoned(second)?, false)
            .ok()?;
        Self::instant(&next)
    }

    /// The last tick at or before `t`.
    fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let second = Timestamp::from_millis(t.as_millis() / 1000 * 1000);
        let previous = self
            .cron
            .find_previous_occurrence(&self.zoned(second)?, true)
            .ok()?;
        Self::instant(&previous)
    }
}

impl fmt::Debug for CronTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?} in {})", self.pattern, self.zone.name())
    }
}

impl PartialEq for CronTiming {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.zone == other.zone
    }
}

impl Eq for CronTiming {}

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// Every tick of a cron pattern.
    Cron(CronTiming),
    /// Once, at this instant.
    At(Timestamp),
}

impl Timing {
    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Timing::Cron(cron) => cron.next_after(t),
            Timing::At(at) => (t < *at).then_some(*at),
        }
    }

    /// The last tick at or before `t`.
    pub fn latest_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Timing::Cron(cron) => cron.latest_at_or_before(t),
            Timing::At(at) => (*at <= t).then_some(*at),
        }
    }
}
