//! Pass 5: values that follow a sensitive key with only blanks between, as
//! command lines and environment dumps write them, and AWS secret access
//! keys on their own:
//!
//! - flags: `--password hunter2`, `--api-key abc` (`--password=x` is a pair,
//!   see `pairs`), and MySQL's glued `-pS3cret` on a line naming `mysql` or
//!   with a `-u` flag;
//! - environment names: `MYSQL_ROOT_PASSWORD hunter2`,
//!   `aws_secret_access_key wJalr…` (an UPPER or snake_case key);
//! - prose keywords with a credential-looking value: `secret s3cr3tV4lue`,
//!   `pass Hunter2024` (a value of six or more characters with letters and
//!   digits, so `secret "db-creds" not found` and `pass 1 of 3` stay);
//! - a 40-character base64-looking word with upper- and lowercase letters
//!   (the shape of an AWS secret access key) anywhere.

use super::pairs::{Strength, blob_like, classify_key, harmless};
use super::text::{Out, contains_ci, is_blank, is_key, skip_blanks};
use super::{MARK, REDACTED};

/// Words after a password-like key that make it prose: `DB_PASSWORD is not set`.
const PROSE: &[&[u8]] = &[
    b"is",
    b"was",
    b"not",
    b"must",
    b"should",
    b"missing",
    b"required",
    b"empty",
    b"unset",
    b"set",
    b"and",
    b"or",
    b"of",
    b"for",
    b"to",
    b"the",
    b"in",
    b"from",
    b"with",
    b"cannot",
    b"can",
    b"could",
    b"has",
    b"have",
    b"had",
    b"will",
    b"be",
    b"invalid",
    b"incorrect",
    b"wrong",
    b"expired",
    b"changed",
    b"rejected",
    b"failed",
    b"env",
    b"variable",
    b"value",
    b"too",
    b"mismatch",
    b"does",
    b"did",
    b"are",
    b"were",
    b"if",
    b"when",
    b"at",
    b"on",
];

/// Prose keywords whose credential-looking value is removed.
const KEYWORDS: &[&[u8]] = &[
    b"secret",
    b"pass",
    b"password",
    b"passwd",
    b"pwd",
    b"token",
    b"apikey",
];

fn value_end(b: &[u8], v: usize) -> usize {
    let mut e = v;
    while e < b.len()
        && !b[e].is_ascii_whitespace()
        && !matches!(
            b[e],
            b'"' | b'\'' | b'`' | b',' | b';' | b')' | b']' | b'}' | b'>'
        )
    {
        e += 1;
    }
    e
}

/// A value of six or more characters with both letters and digits.
fn credential_like(v: &[u8]) -> bool {
    v.len() >= 6
        && v.iter().any(u8::is_ascii_digit)
        && v.iter().any(u8::is_ascii_alphabetic)
        && !v.starts_with(b"/")
        && !contains_ci(v, b"://")
}

fn prose_word(v: &[u8]) -> bool {
    let mut w = v;
    while let [rest @ .., b'.' | b',' | b';' | b':' | b'!' | b'?'] = w {
        w = rest;
    }
    PROSE.iter().any(|p| w.eq_ignore_ascii_case(p))
}

fn all_lower(v: &[u8]) -> bool {
    !v.is_empty() && v.iter().all(u8::is_ascii_lowercase)
}

fn env_name(w: &[u8]) -> bool {
    let upper = w.len() >= 4
        && w.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        && w.iter().any(u8::is_ascii_uppercase);
    upper || (w.contains(&b'_') && !w.starts_with(b"_") && !w.contains(&b'.'))
}

/// The value to remove after the key word `b[i..j]`, if any.
fn spaced_value(b: &[u8], line_start: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let word = &b[i..j];
    // `-pS3cret`: MySQL's password glued to its flag.
    if word.len() > 2 && word.starts_with(b"-p") && word[2] != b'-' {
        let line = &b[line_start..i];
        if contains_ci(line, b"mysql") || contains_ci(line, b" -u") {
            let e = value_end(b, i + 2);
            return (e > i + 2).then_some((i + 2, e));
        }
        return None;
    }
    if j >= b.len() || !is_blank(b[j]) {
        return None;
    }
    let v = skip_blanks(b, j, b.len());
    let e = value_end(b, v);
    let value = &b[v..e];
    if value.is_empty() || value.starts_with(MARK) || value.starts_with(b"-") || harmless(value) {
        return None;
    }
    let found = Some((v, e));
    if let Some(name) = word.strip_prefix(b"--") {
        let kind = classify_key(name)?;
        return match kind.strength {
            Strength::Strong | Strength::Normal => found,
            Strength::Blob => blob_like(value).then_some((v, e)),
        };
    }
    if env_name(word) {
        let kind = classify_key(word)?;
        return match kind.strength {
            Strength::Strong => (!prose_word(value)).then_some((v, e)),
            Strength::Normal => {
                (value.len() >= 6 && !all_lower(value) && !prose_word(value)).then_some((v, e))
            }
            Strength::Blob => blob_like(value).then_some((v, e)),
        };
    }
    if KEYWORDS.iter().any(|k| word.eq_ignore_ascii_case(k)) && credential_like(value) {
        return found;
    }
    None
}

pub(super) fn spaced_values(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut line_start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line_start = i + 1;
            i += 1;
            continue;
        }
        if is_key(c) && (i == 0 || !is_key(b[i - 1])) {
            let mut j = i;
            while j < b.len() && is_key(b[j]) {
                j += 1;
            }
            if let Some((vs, ve)) = spaced_value(b, line_start, i, j) {
                out.replace(vs, ve, REDACTED);
                i = ve;
            } else {
                i = j;
            }
            continue;
        }
        i += 1;
    }
    out.finish()
}

/// What an AWS secret access key is made of.
fn b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'+'
}

/// Exactly 40 such characters, with at least four upper- and four
/// lowercase letters, a digit, `/` or `+`, at most three `/` (paths have
/// more), and not inside a longer word.
fn aws_secret(w: &[u8]) -> bool {
    let count = |f: fn(&u8) -> bool| w.iter().filter(|c| f(c)).count();
    w.len() == 40
        && count(u8::is_ascii_uppercase) >= 4
        && count(u8::is_ascii_lowercase) >= 4
        && w.iter()
            .any(|c| c.is_ascii_digit() || *c == b'/' || *c == b'+')
        && count(|c| *c == b'/') <= 3
        && !w.starts_with(b"/")
        && !w.ends_with(b"/")
}

pub(super) fn aws_secret_keys(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut i = 0;
    while i < b.len() {
        if !b64(b[i]) {
            i += 1;
            continue;
        }
        let mut e = i;
        while e < b.len() && b64(b[e]) {
            e += 1;
        }
        // Glued to `_`, `-`, `.`, `=` or `%` it is part of something longer
        // (an identifier, a file name, base64 padding, a URL encoding).
        let glued = |c: u8| matches!(c, b'_' | b'-' | b'.' | b'=' | b'%' | b'@');
        let alone = (i == 0 || !glued(b[i - 1])) && (e == b.len() || !glued(b[e]));
        if alone && aws_secret(&b[i..e]) {
            out.replace(i, e, "[REDACTED:aws-secret-key]");
        }
        i = e;
    }
    out.finish()
}
