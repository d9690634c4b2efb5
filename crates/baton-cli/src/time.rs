//! Points in time on the command line: milliseconds since the Unix epoch (what the API speaks)
//! or RFC 3339 (what people type and read), converted without a date library.

/// Milliseconds since the Unix epoch, from either digits (`1714564800000`) or an RFC 3339 time
/// with a UTC offset (`2024-05-01T12:00:00Z`, `2024-05-01T14:00:00.250+02:00`).
pub fn parse_time(raw: &str) -> Result<u64, String> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw
            .parse::<u64>()
            .map_err(|_| format!("{raw:?} is too large for milliseconds since the epoch"));
    }
    parse_rfc3339(raw).ok_or_else(|| {
        format!(
            "expected milliseconds since the Unix epoch or an RFC 3339 time such as \
             2024-05-01T12:00:00Z, got {raw:?}"
        )
    })?
}

/// `None` when the text is not RFC 3339 at all; `Some(Err)` for a well-formed time that
/// cannot be used (a 31st of April, before 1970).
fn parse_rfc3339(raw: &str) -> Option<Result<u64, String>> {
    let bytes = raw.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, c)| bytes.get(at) != Some(&c))
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let mut rest = &raw[19..];
    let mut millis = 0_i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 || len > 9 {
            return None;
        }
        // Whole milliseconds: the API has no finer unit.
        let padded = format!("{:0<3}", &fraction[..len.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[len..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            // `rest` is the end of `raw`: `±HH:MM` starts 6 bytes before the end.
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let hours = digits(raw.len() - 5, 2)?;
            let minutes = digits(raw.len() - 2, 2)?;
            if hours > 23 || minutes > 59 {
                return Some(Err(format!("{raw:?} has an out-of-range UTC offset")));
            }
            sign * (hours * 60 + minutes)
        }
    };
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Some(Err(format!("{raw:?} is not a valid date and time")));
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_minutes * 60;
    let total = seconds * 1_000 + millis;
    Some(u64::try_from(total).map_err(|_| format!("{raw:?} is before 1970-01-01T00:00:00Z")))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Milliseconds since the epoch as RFC 3339 in UTC with milliseconds, for tables.
pub fn format_time(millis: u64) -> String {
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    let (seconds, millis) = (millis.div_euclid(1_000), millis.rem_euclid(1_000));
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_milliseconds_since_the_epoch() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1714564800000"), Ok(1_714_564_800_000));
        assert!(parse_time("99999999999999999999999").is_err());
    }

    #[test]
    fn rfc3339_times_become_milliseconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_time("2024-05-01T14:00:00+02:00"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(
            parse_time("2024-05-01T11:30:00-00:30"),
            Ok(1_714_564_800_000)
        );
        assert_eq!(parse_time("2024-05-01t12:00:00.25z"), Ok(1_714_564_800_250));
        assert_eq!(
            parse_time("2024-05-01 12:00:00.123456789Z"),
            Ok(1_714_564_800_123)
        );
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn malformed_or_impossible_times_are_refused_with_the_reason() {
        for raw in [
            "",
            "yesterday",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00Z",
        ] {
            let error = parse_time(raw).err().unwrap_or_default();
            assert!(error.contains("RFC 3339"), "{raw:?}: {error}");
        }
        for raw in [
            "2023-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-01T24:00:00Z",
        ] {
            let error = parse_time(raw).err().unwrap_or_default();
            assert!(error.contains("not a valid date"), "{raw:?}: {error}");
        }
        let error = parse_time("1969-12-31T23:59:59Z").err().unwrap_or_default();
        assert!(error.contains("before 1970"), "{error}");
    }

    #[test]
    fn formatting_inverts_parsing() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
        for millis in [0, 951_782_400_000, 1_709_164_800_999, 4_102_444_800_000] {
            assert_eq!(parse_time(&format_time(millis)), Ok(millis));
        }
    }
}
