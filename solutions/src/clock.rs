//! Times as docker prints them: RFC 3339 in UTC (`2026-12-01T19:47:14Z`), and
//! "3 minutes ago" for tables.

use std::time::SystemTime;

/// A time as RFC 3339 in UTC (`2026-12-01T19:47:14Z`), as docker prints them.
pub fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// A time as RFC 3339 in UTC with nanoseconds (`2026-12-01T19:47:14.123456789Z`),
/// as docker writes container times and log lines.
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let nanos = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let seconds = rfc3339(time);
    format!("{}.{nanos:09}Z", seconds.trim_end_matches('Z'))
}

/// The nanoseconds since the epoch of an RFC 3339 time (fractions kept), for
/// ordering and `--since`.
pub fn parse_rfc3339_nanos(text: &str) -> Option<i128> {
    let seconds = parse_rfc3339(text)?;
    let fraction = text
        .get(19..)
        .and_then(|rest| rest.strip_prefix('.'))
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .unwrap_or_default();
    let nanos = format!("{fraction:0<9}").get(..9)?.parse::<i128>().ok()?;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// A duration as docker's tables say it (go-units' HumanDuration): "Less than a
/// second", "5 seconds", "About a minute", "3 hours", "2 weeks".
pub fn human_duration(seconds: u64) -> String {
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    match seconds {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", hours / 24 / 365),
    }
}

/// Seconds from the RFC 3339 time `then` to `now` (0 when `then` is later or
/// unreadable).
pub fn seconds_since(then: &str, now: SystemTime) -> u64 {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    parse_rfc3339(then).map_or(0, |then| (now - then).max(0) as u64)
}

/// How long ago `then` (RFC 3339) was, as docker's tables say it ("2 hours ago").
pub fn ago(then: &str, now: SystemTime) -> String {
    let Some(then) = parse_rfc3339(then) else {
        return "N/A".to_string();
    };
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let seconds = (now - then).max(0);
    let (value, unit) = match seconds {
        s if s < 60 => return "Less than a minute ago".to_string(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 14 => (s / 86_400, "day"),
        s if s < 86_400 * 60 => (s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let plural = if value == 1 { "" } else { "s" };
    let article = if value == 1 && unit == "hour" {
        "An"
    } else if value == 1 {
        "A"
    } else {
        ""
    };
    if value == 1 {
        format!("{article} {unit} ago")
    } else {
        format!("{value} {unit}{plural} ago")
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let rest = &text[19..];
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let offset = match &rest[zone_at..] {
        "" | "Z" => 0,
        zone => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_print_as_dockers() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_155_153);
        assert_eq!(rfc3339(at), "2026-12-01T19:59:13Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-12-01T19:59:13Z"), Some(1_796_155_153));
        assert_eq!(
            parse_rfc3339("2026-12-01T20:59:13.123+01:00"),
            Some(1_796_155_153)
        );
        let later = at + std::time::Duration::from_secs(7200);
        assert_eq!(ago("2026-12-01T19:59:13Z", later), "2 hours ago");
        assert_eq!(ago("2026-12-01T19:59:13Z", at), "Less than a minute ago");
        let precise = at + std::time::Duration::from_nanos(1_500);
        assert_eq!(rfc3339_nanos(precise), "2026-12-01T19:59:13.000001500Z");
        assert_eq!(
            parse_rfc3339_nanos("2026-12-01T19:59:13.0000015Z"),
            Some(1_796_155_153_000_001_500)
        );
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
    }
}
