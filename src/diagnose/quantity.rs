/*!
Kubernetes resource quantities (`128Mi`, `1.5Gi`, `500M`, `250m`, `2`),
parsed and scaled for fix commands: a fix that says "double the limit" must
print the doubled value in a form `kubectl set resources` accepts.

Exact integer arithmetic (milli-units in a `u128`), so `1.5Gi` doubles to
`3Gi`, not to a float with rounding noise.
*/

const BINARY: [(&str, u128); 6] = [
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
];

const DECIMAL: [(&str, u128); 6] = [
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Which family of suffixes a quantity was written in: the scaled value is
/// written in the same one, so `500M` doubles to `1G` and `512Mi` to `1Gi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Binary,
    Decimal,
    Plain,
}

/// A quantity in thousandths of its base unit (bytes or cores), and how it was written.
fn parse(q: &str) -> Option<(u128, Family)> {
    let q = q.trim();
    let end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 9 {
        return None;
    }
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
    // value = digits / scale * multiplier; kept in milli-units.
    let (mult_milli, family) = match suffix {
        "" => (1_000, Family::Plain),
        "m" => (1, Family::Plain),
        s if s.starts_with(['e', 'E']) && s.len() > 1 => {
            let exp: u32 = s[1..].parse().ok()?;
            (
                10u128.checked_pow(exp)?.checked_mul(1_000)?,
                Family::Decimal,
            )
        }
        s => {
            if let Some((_, m)) = BINARY.iter().find(|(n, _)| *n == s) {
                (m * 1_000, Family::Binary)
            } else {
                let (_, m) = DECIMAL.iter().find(|(n, _)| *n == s)?;
                (m * 1_000, Family::Decimal)
            }
        }
    };
    let milli = digits.checked_mul(mult_milli)? / scale;
    Some((milli, family))
}

/// Writes whole units in the largest suffix of `family` that divides them exactly.
fn format_units(units: u128, family: Family) -> String {
    let table: &[(&str, u128)] = match family {
        Family::Binary => &BINARY,
        Family::Decimal => &DECIMAL,
        Family::Plain => &[],
    };
    for (name, m) in table.iter().rev() {
        if units >= *m && units % m == 0 {
            return format!("{}{name}", units / m);
        }
    }
    // Not a whole number of any suffix: round up to the nearest Mi / M, which
    // is what a human would write, when the value is that large.
    let (name, m) = match family {
        Family::Binary => ("Mi", 1 << 20),
        Family::Decimal => ("M", 1_000_000),
        Family::Plain => ("", 1),
    };
    if m > 1 && units > m {
        return format!("{}{name}", units.div_ceil(m));
    }
    units.to_string()
}

/// A memory quantity multiplied by `num / den` (rounded up to whole bytes),
/// in the family it was written in. `None` if it does not parse.
pub fn scale_memory(q: &str, num: u128, den: u128) -> Option<String> {
    let (milli, family) = parse(q)?;
    if den == 0 {
        return None;
    }
    let bytes = milli.checked_mul(num)?.div_ceil(den.checked_mul(1_000)?);
    Some(format_units(bytes, family))
}

/// A memory quantity in bytes, rounded up.
pub fn bytes(q: &str) -> Option<u128> {
    parse(q).map(|(milli, _)| milli.div_ceil(1_000))
}

/// Twice a memory quantity: `256Mi` → `512Mi`, `1.5Gi` → `3Gi`, `500M` → `1G`.
pub fn double_memory(q: &str) -> Option<String> {
    scale_memory(q, 2, 1)
}

/// A CPU quantity in millicores: `250m` → 250, `2` → 2000, `0.5` → 500.
pub fn millicores(q: &str) -> Option<u128> {
    let (milli, family) = parse(q)?;
    (family == Family::Plain).then_some(milli)
}

/// Half a CPU quantity, never below 1m: `4` → `2`, `1` → `500m`, `250m` → `125m`.
pub fn halve_cpu(q: &str) -> Option<String> {
    let m = millicores(q)?.div_ceil(2).max(1);
    Some(if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_double_in_the_suffix_they_were_written_in() {
        for (q, doubled) in [
            ("128Mi", "256Mi"),
            ("256Mi", "512Mi"),
            ("512Mi", "1Gi"),
            ("1Gi", "2Gi"),
            ("1.5Gi", "3Gi"),
            ("500M", "1G"),
            ("750M", "1500M"),
            ("64Ki", "128Ki"),
            ("1e9", "2G"),
            ("1000", "2000"),
            ("0.3Gi", "615Mi"),
            (" 2Gi ", "4Gi"),
        ] {
            assert_eq!(double_memory(q).as_deref(), Some(doubled), "{q}");
        }
    }

    #[test]
    fn nonsense_quantities_do_not_parse() {
        for q in ["", "Mi", "12Xi", "1.2.3Gi", "-1Gi", "1e", "abc"] {
            assert_eq!(double_memory(q), None, "{q}");
        }
    }

    #[test]
    fn memory_quantities_halve_with_rounding_up() {
        assert_eq!(scale_memory("8Gi", 1, 2).as_deref(), Some("4Gi"));
        assert_eq!(scale_memory("1G", 1, 2).as_deref(), Some("500M"));
        assert_eq!(scale_memory("3", 1, 2).as_deref(), Some("2"));
    }

    #[test]
    fn cpu_quantities_are_read_in_millicores_and_halved() {
        assert_eq!(millicores("250m"), Some(250));
        assert_eq!(millicores("0.5"), Some(500));
        assert_eq!(millicores("2"), Some(2000));
        assert_eq!(millicores("1Gi"), None);
        assert_eq!(halve_cpu("4").as_deref(), Some("2"));
        assert_eq!(halve_cpu("1").as_deref(), Some("500m"));
        assert_eq!(halve_cpu("250m").as_deref(), Some("125m"));
        assert_eq!(halve_cpu("1m").as_deref(), Some("1m"));
    }
}
