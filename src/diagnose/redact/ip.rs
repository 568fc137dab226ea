//! Passes 6 and 7: IPv6 and IPv4 addresses.

use std::net::Ipv6Addr;

use super::text::{Out, is_word};

const IP: &str = "[REDACTED:ip]";
/// Loopback addresses are redacted too (the original did), but keep their
/// meaning: "connection refused to localhost" is half a diagnosis.
const LOOPBACK_IP: &str = "[REDACTED:loopback-ip]";

fn in_v6_run(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b':' | b'.' | b'%' | b'_')
}

/// IPv6 addresses, with an optional `%zone`. A candidate is a run of
/// address-ish characters, cut after its last segment holding a non-hex
/// character (`addr:fe80::1`), that the standard parser accepts, with two
/// colons and a digit at least: timestamps (`09:00:00`), MACs, `Foo.java:12`
/// and `std::vector` are not addresses.
pub(super) fn ipv6(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut i = 0;
    while i < b.len() {
        if !in_v6_run(b[i]) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && in_v6_run(b[e]) {
            e += 1;
        }
        match v6_in(b, i, e) {
            Some((a, z, loopback)) => {
                out.replace(a, z, if loopback { LOOPBACK_IP } else { IP });
                // The rest of the run is looked at on its own, as it will be
                // next to the marker on a later round.
                i = z.max(i + 1);
            }
            None => i = e,
        }
    }
    out.finish()
}

/// The address in the run `b[s..e]`: its range, and whether it is loopback.
fn v6_in(b: &[u8], s: usize, e: usize) -> Option<(usize, usize, bool)> {
    let run = &b[s..e];
    if run.iter().filter(|&&c| c == b':').count() < 2 {
        return None;
    }
    let addr_end = run.iter().position(|&c| c == b'%').map_or(e, |p| s + p);
    let mut start = s;
    let mut bad = false;
    for (k, &c) in b[s..addr_end].iter().enumerate() {
        if c == b':' {
            if bad {
                start = s + k + 1;
                bad = false;
            }
        } else if !(c.is_ascii_hexdigit() || c == b'.') {
            bad = true;
        }
    }
    if bad {
        return None;
    }
    let mut end = addr_end;
    while end > start && b[end - 1] == b'.' {
        end -= 1;
    }
    let parse = |z: usize| {
        let t = &b[start..z];
        if t.len() > 45
            || t.iter().filter(|&&c| c == b':').count() < 2
            || !t.iter().any(u8::is_ascii_digit)
        {
            return None;
        }
        std::str::from_utf8(t).ok()?.parse::<Ipv6Addr>().ok()
    };
    let (end, addr) = match parse(end) {
        Some(a) => (end, a),
        // `fe80::1: connection refused`
        None if end > start && b[end - 1] == b':' => (end - 1, parse(end - 1)?),
        None => return None,
    };
    // A zone (`%eth0`) goes with its address; a bare `%` stays.
    let mut z = end;
    if end == addr_end && addr_end < e {
        let mut k = addr_end + 1;
        while k < e && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
            k += 1;
        }
        if k > addr_end + 1 {
            z = k;
        }
    }
    Some((start, z, addr.is_loopback()))
}

/// IPv4 addresses: four dotted numbers 0–255, not glued to a word and not
/// part of a longer dotted run (`1.2.3.4.5` is a version).
pub(super) fn ipv4(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (is_word(b[i - 1]) || b[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        if let Some((end, first)) = v4_at(b, i) {
            let glued = b.get(end).is_some_and(|&c| {
                is_word(c) || (c == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit))
            });
            if !glued {
                out.replace(i, end, if first == 127 { LOOPBACK_IP } else { IP });
                i = end;
                continue;
            }
        }
        // No address starts inside this run of digits and dots.
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
    }
    out.finish()
}

/// Four octets from `i`: the end and the first octet.
fn v4_at(b: &[u8], i: usize) -> Option<(usize, u32)> {
    let mut k = i;
    let mut first = 0;
    for n in 0..4 {
        if n > 0 {
            if b.get(k) != Some(&b'.') {
                return None;
            }
            k += 1;
        }
        let start = k;
        let mut v: u32 = 0;
        while k < b.len() && k - start < 3 && b[k].is_ascii_digit() {
            v = v * 10 + u32::from(b[k] - b'0');
            k += 1;
        }
        if k == start || v > 255 || b.get(k).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        if n == 0 {
            first = v;
        }
    }
    Some((k, first))
}
