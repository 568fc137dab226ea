/*!
RFC 3339 timestamps as Kubernetes writes them, to and from Unix time, and
the wall clock read in the units the rest of the daemon uses.

A tiny hand-written parser instead of a date crate: the API server only ever
writes `2006-01-02T15:04:05Z` (objects) or with fractional seconds
(`MicroTime`, events), occasionally with a numeric offset from other tools.
*/

use std::time::{SystemTime, UNIX_EPOCH};

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    // A leap second counts as the last second of its minute.
    let sec = sec.min(59);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok().filter(|h| *h <= 23)?;
            let m: i64 = rest.get(4..6)?.parse().ok().filter(|m| *m <= 59)?;
            let o = h * 3600 + m * 60;
            if rb[0] == b'-' { -o } else { o }
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration as kubectl prints an AGE: `45s`, `12m`, `5h`, `3d`, `2y`
/// (the largest unit only; negative durations, from clock skew, are `0s`).
pub fn format_age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        172_800..63_072_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (JavaScript's
/// `toISOString`, which the original daemon's payloads use).
pub fn format_millis(ms: i64) -> String {
    with_fraction(ms.div_euclid(1000), format!("{:03}", ms.rem_euclid(1000)))
}

/// Unix microseconds as `metav1.MicroTime`: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_micros(us: i64) -> String {
    with_fraction(
        us.div_euclid(1_000_000),
        format!("{:06}", us.rem_euclid(1_000_000)),
    )
}

fn with_fraction(secs: i64, fraction: String) -> String {
    let mut s = format_rfc3339(secs);
    s.pop(); // the `Z`
    s.push('.');
    s.push_str(&fraction);
    s.push('Z');
    s
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    since_epoch().as_secs() as i64
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    since_epoch().as_millis() as i64
}

/// Microseconds since the Unix epoch now.
pub fn now_micros() -> i64 {
    since_epoch().as_micros() as i64
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms (public domain).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_like_kubectl() {
        let m = |s: i64| format_age(s * 1000);
        assert_eq!(m(-5), "0s");
        assert_eq!(m(45), "45s");
        assert_eq!(m(119), "119s");
        assert_eq!(m(12 * 60 + 30), "12m");
        assert_eq!(m(5 * 3600), "5h");
        assert_eq!(m(3 * 86_400), "3d");
        assert_eq!(m(2 * 365 * 86_400 + 100), "2y");
    }

    use super::*;

    #[test]
    fn parses_the_forms_kubernetes_writes() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-03-01T12:30:05Z"), Some(1_709_296_205));
        assert_eq!(
            parse_rfc3339("2024-03-01T12:30:05.123456Z"),
            Some(1_709_296_205)
        );
        assert_eq!(
            parse_rfc3339("2024-03-01T14:30:05+02:00"),
            Some(1_709_296_205)
        );
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for s in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-03-01T12:30:05+24:00",
            "2024-03-01T12:30:05",
            "2024-03-01T12:30:05.Z",
            "2024-03-01T12:30:05+0200",
            "２０２４-03-01T12:30:05Z",
            "2024-03-01T12:3é:05Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for t in [0, 1_709_296_205, 951_782_400 /* 2000-02-29 */, -86_400] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
        }
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn fractions_are_zero_padded() {
        assert_eq!(format_millis(1_709_296_205_007), "2024-03-01T12:30:05.007Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_micros(1_709_296_205_000_042),
            "2024-03-01T12:30:05.000042Z"
        );
    }
}
