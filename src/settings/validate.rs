/*!
What a valid value looks like, for the text settings: pure checks on one
string each, used by `resolve`.
*/

use std::path::PathBuf;

/// RFC 1123 label, which is what a namespace name must be.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Characters a label selector can contain; the API server does the real
/// validation, this only catches obvious mistakes (quotes, spaces in keys…)
/// before any request is made.
pub fn plausible_label_selector(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-_/=!,()".contains(c))
        && !s.contains("===")
}

/// A URL we will POST to: http(s), with a host. Trailing slashes dropped.
pub fn http_url(v: &str) -> Option<String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let ok = !host.is_empty()
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !host.starts_with(':');
    ok.then(|| v.trim_end_matches('/').to_string())
}

/// Whether a URL's host is Slack's incoming-webhook host.
pub fn is_slack_webhook(url: &str) -> bool {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|r| r.split(['/', '?', '#', ':']).next())
        .is_some_and(|h| h.eq_ignore_ascii_case("hooks.slack.com"))
}

pub fn plausible_email(v: &str) -> bool {
    let Some((user, domain)) = v.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

pub fn token_like(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A Telegram chat: a numeric id (negative for groups, `-100…` for
/// supergroups and channels) or a public `@username`.
pub fn telegram_chat(v: &str) -> bool {
    let numeric = v.strip_prefix('-').unwrap_or(v);
    (!numeric.is_empty() && numeric.chars().all(|c| c.is_ascii_digit()))
        || v.strip_prefix('@').is_some_and(|n| {
            (4..=32).contains(&n.len()) && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

pub fn slack_channel(v: &str) -> bool {
    let name = v.strip_prefix('#').unwrap_or(v);
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `~` at the start of a path is the home directory, as in the original.
pub fn expand_home(path: &str, home: Option<String>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(path),
    }
}

/// `CLUSTER_NAME`: it goes into Slack messages, JSON records and the backend's cluster id.
pub fn cluster_name(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// A DNS subdomain (RFC 1123), which is what a Lease name must be.
pub fn is_dns_name(v: &str) -> bool {
    !v.is_empty() && v.len() <= 253 && v.split('.').all(is_dns_label)
}
