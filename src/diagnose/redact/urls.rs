//! Pass 2: passwords in URLs and the secret paths of webhook URLs.

use super::text::{Out, find};
use super::{MARK, REDACTED};

/// Ends a URL's authority or path segment (RFC 3986 delimiters, quotes, space).
fn ends_url_part(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'/' | b'?' | b'#' | b'"' | b'\'' | b'`' | b'<' | b'>' | b'\\'
        )
}

/// Passwords in `scheme://user:pass@host`, and the secret path of webhook
/// URLs (Slack's `/services/T…/B…/…`, Discord's `/api/webhooks/…`), which
/// are credentials in themselves.
pub(super) fn urls(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut at = 0;
    while let Some(p) = find(b, b"://", at) {
        let a = p + 3;
        at = a;
        if p == 0 || !b[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut e = a;
        let mut last_at = None;
        while e < b.len() && !ends_url_part(b[e]) {
            if b[e] == b'@' {
                last_at = Some(e);
            }
            e += 1;
        }
        let mut host_start = a;
        if let Some(q) = last_at {
            host_start = q + 1;
            if let Some(pw) = password_start(b, a, q) {
                if pw < q && !b[pw..].starts_with(MARK) {
                    out.replace(pw, q, REDACTED);
                }
            }
        }
        let host = &b[host_start..e];
        let secret_path: &[u8] = if host.eq_ignore_ascii_case(b"hooks.slack.com") {
            b"/services/"
        } else if host.eq_ignore_ascii_case(b"discord.com")
            || host.eq_ignore_ascii_case(b"discordapp.com")
        {
            b"/api/webhooks/"
        } else {
            b""
        };
        if !secret_path.is_empty() && b[e..].starts_with(secret_path) {
            let start = e + secret_path.len();
            let mut z = start;
            while z < b.len()
                && (b[z].is_ascii_alphanumeric() || matches!(b[z], b'/' | b'_' | b'-'))
            {
                z += 1;
            }
            if z > start {
                out.replace(start, z, REDACTED);
                e = z;
            }
        }
        at = e;
    }
    out.finish()
}

/// Where the password of userinfo `b[a..q]` starts: after its first `:`
/// outside a marker (`[REDACTED:jwt]@host` has a user and no password).
fn password_start(b: &[u8], a: usize, q: usize) -> Option<usize> {
    let mut k = a;
    while k < q {
        if b[k..q].starts_with(MARK) {
            k += b[k..q].iter().position(|&c| c == b']')? + 1;
            continue;
        }
        if b[k] == b':' {
            return Some(k + 1);
        }
        k += 1;
    }
    None
}
