//! Pass 4: values of sensitive keys in `key=value`, `key: value`, JSON and `map[k:v]` forms.

use super::text::{Out, contains_ci, is_blank, is_key, skip_blanks, starts_with_ci};
use super::{MARK, REDACTED};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Strength {
    /// Passwords: always removed, even inside prose.
    Strong,
    /// Tokens, secrets, sessions, credentials: removed unless plainly prose.
    Normal,
    /// `key`, `sig`, `hmac`…: only long hex/base64-looking values are removed.
    Blob,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct KeyKind {
    pub(super) strength: Strength,
    /// `Authorization`, `Cookie`: the value runs to the end of the line.
    header: bool,
}

const NORMAL_WORDS: &[&[u8]] = &[
    b"secret",
    b"token",
    b"apikey",
    b"api_key",
    b"api-key",
    b"accesskey",
    b"access_key",
    b"access-key",
    b"privatekey",
    b"private_key",
    b"private-key",
    b"credential",
    b"session",
    b"cookie",
];
const BLOB_SEGMENTS: &[&[u8]] = &[
    b"key",
    b"sig",
    b"signature",
    b"hmac",
    b"salt",
    b"nonce",
    b"otp",
];
/// A key ending in one of these names or describes a secret, it is not one
/// (`secretName: db-creds` is what the missing-Secret diagnosis needs).
const DESCRIPTIVE_SEGMENTS: &[&[u8]] = &[
    b"name",
    b"ref",
    b"path",
    b"file",
    b"dir",
    b"type",
    b"ttl",
    b"timeout",
    b"expiry",
    b"expires",
    b"length",
    b"len",
    b"count",
    b"size",
    b"enabled",
    b"required",
    b"url",
    b"endpoint",
    b"mode",
];
/// Values that are plainly not secrets.
const HARMLESS: &[&[u8]] = &[
    b"true",
    b"false",
    b"yes",
    b"no",
    b"on",
    b"off",
    b"null",
    b"nil",
    b"none",
    b"undefined",
    b"empty",
];
const SCHEMES: &[&[u8]] = &[
    b"bearer",
    b"basic",
    b"digest",
    b"token",
    b"bot",
    b"negotiate",
    b"ntlm",
    b"apikey",
    b"hmac",
    b"aws4-hmac-sha256",
    b"sharedaccesssignature",
];

/// Splits a key into its words: on `_`, `.`, `-` and lower-to-upper case changes.
fn segments(key: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..key.len() {
        let c = key[i];
        if matches!(c, b'_' | b'.' | b'-') {
            if i > start {
                out.push(&key[start..i]);
            }
            start = i + 1;
        } else if i > start && c.is_ascii_uppercase() && key[i - 1].is_ascii_lowercase() {
            out.push(&key[start..i]);
            start = i;
        }
    }
    if key.len() > start {
        out.push(&key[start..]);
    }
    out
}

pub(super) fn classify_key(key: &[u8]) -> Option<KeyKind> {
    let segs = segments(key);
    let is_seg = |words: &[&[u8]]| {
        segs.iter()
            .any(|s| words.iter().any(|w| s.eq_ignore_ascii_case(w)))
    };
    if segs.last().is_some_and(|l| {
        DESCRIPTIVE_SEGMENTS
            .iter()
            .any(|w| l.eq_ignore_ascii_case(w))
    }) {
        return None;
    }
    // `Authorization` holds "author", so it is recognised here, not by `mentions_auth`.
    let header = contains_ci(key, b"authorization") || contains_ci(key, b"cookie");
    let strength = if contains_ci(key, b"password")
        || contains_ci(key, b"passwd")
        || contains_ci(key, b"passphrase")
        || contains_ci(key, b"pwd")
        || is_seg(&[b"pass", b"pw"])
    {
        Strength::Strong
    } else if header || NORMAL_WORDS.iter().any(|w| contains_ci(key, w)) || mentions_auth(key) {
        Strength::Normal
    } else if is_seg(BLOB_SEGMENTS)
        || key.len() > 3 && key[key.len() - 3..].eq_ignore_ascii_case(b"key")
    {
        Strength::Blob
    } else {
        return None;
    };
    Some(KeyKind { strength, header })
}

/// `auth`, `oauth`, `x-auth-token`; not `author`, `authority`, nor
/// `WWW-Authenticate` and `authentication`, which name a challenge or a step.
fn mentions_auth(key: &[u8]) -> bool {
    key.windows(4).enumerate().any(|(i, w)| {
        w.eq_ignore_ascii_case(b"auth")
            && !starts_with_ci(key, i + 4, b"or")
            && !starts_with_ci(key, i + 4, b"enticat")
    })
}

fn is_scheme(word: &[u8]) -> bool {
    SCHEMES.iter().any(|s| word.eq_ignore_ascii_case(s))
}

/// Booleans and nulls, values already masked (`****`), placeholders
/// (`<value>`, the rules' own fix commands use it) and references to a
/// value kept elsewhere (`${DB_PASSWORD}`, `$(cat /run/secrets/x)`, `{{ .Values.pw }}`).
pub(super) fn harmless(v: &[u8]) -> bool {
    HARMLESS.iter().any(|h| v.eq_ignore_ascii_case(h))
        || v.iter().all(|&c| c == b'*')
        || (v.len() > 2 && v.starts_with(b"<") && v.ends_with(b">"))
        || v.starts_with(b"${")
        || v.starts_with(b"$(")
        || v.starts_with(b"{{")
}

pub(super) fn blob_like(v: &[u8]) -> bool {
    v.len() >= 16
        && v.iter().all(|&c| {
            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-' | b'.')
        })
        && v.iter().any(u8::is_ascii_digit)
        && v.iter().any(u8::is_ascii_alphabetic)
}

/// One lowercase word, perhaps with closing punctuation: prose, not a value.
fn plain_word(v: &[u8]) -> bool {
    let mut w = v;
    while let [rest @ .., b'.' | b',' | b';' | b':' | b'!' | b'?'] = w {
        w = rest;
    }
    !w.is_empty() && w.iter().all(u8::is_ascii_lowercase)
}

fn ends_unquoted(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'"' | b'\'' | b'`' | b',' | b';' | b'&' | b'}' | b']' | b')' | b'<' | b'>' | b'\\'
        )
}

/// What `key_value_at` found.
enum Kv {
    /// Not a sensitive pair.
    NotPair,
    /// Replace `start..end`; scanning resumes at `resume`.
    Redact {
        start: usize,
        end: usize,
        resume: usize,
    },
    /// A value that is not removed; its text `start..end` is still scanned
    /// for nested pairs (once), then scanning resumes at `resume`.
    Keep {
        start: usize,
        end: usize,
        resume: usize,
    },
}

pub(super) fn key_values(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    scan_pairs(b, 0, b.len(), &mut out, true);
    out.finish()
}

/// Scans `b[from..to]` for sensitive pairs. Every byte is passed once by the
/// loop or by a value scan; a kept value's text is scanned once more, one
/// level deep only, which keeps the whole pass linear.
fn scan_pairs(b: &[u8], from: usize, to: usize, out: &mut Out, nest: bool) {
    let mut i = from;
    let mut brackets = Brackets { from: 1, end: 0 };
    // The last non-blank byte before `i` on this line; None at a line start.
    let mut last: Option<u8> = None;
    while i < to {
        let c = b[i];
        if is_key(c) && (i == from || !is_key(b[i - 1])) {
            let mut j = i;
            while j < to && is_key(b[j]) {
                j += 1;
            }
            match key_value_at(b, i, j, to, last, &mut brackets) {
                Kv::NotPair => {
                    last = Some(b[j - 1]);
                    i = j;
                }
                Kv::Redact { start, end, resume } => {
                    out.replace(start, end, REDACTED);
                    last = Some(b[resume - 1]);
                    i = resume;
                }
                Kv::Keep { start, end, resume } => {
                    if nest && end > start {
                        scan_pairs(b, start, end, out, false);
                    }
                    last = Some(b[resume - 1]);
                    i = resume;
                }
            }
            continue;
        }
        if c == b'\n' {
            last = None;
        } else if !c.is_ascii_whitespace() {
            last = Some(c);
        }
        i += 1;
    }
}

/// The last search for the `]` closing a list: from `from`, the first `]`,
/// `[` or line break is at `end` (`to` when none). A later search starting
/// in between has the same answer, so `key: [key: [key: [` is not quadratic.
/// A nested `[` ends the search too: nested lists are not values, and a
/// marker's brackets must never close a list on a later pass.
struct Brackets {
    from: usize,
    end: usize,
}

impl Brackets {
    fn close(&mut self, b: &[u8], start: usize, to: usize) -> usize {
        if self.from <= start && start <= self.end {
            return self.end;
        }
        let mut e = start;
        while e < to && !matches!(b[e], b']' | b'[' | b'\n') {
            e += 1;
        }
        *self = Brackets {
            from: start,
            end: e,
        };
        e
    }
}

/// Whether the key `b[i..j]` starts a sensitive pair, and where its value is.
fn key_value_at(
    b: &[u8],
    i: usize,
    j: usize,
    to: usize,
    last: Option<u8>,
    brackets: &mut Brackets,
) -> Kv {
    // The separator first: most words are not keys, and this is cheap.
    let open = if i > 0 { Some(b[i - 1]) } else { None };
    let mut k = j;
    let mut quoted_key = false;
    if let Some(q @ (b'"' | b'\'')) = open {
        if k < to && b[k] == q {
            k += 1;
            quoted_key = true;
        } else if k + 1 < to && b[k] == b'\\' && b[k + 1] == q {
            k += 2;
            quoted_key = true;
        }
    }
    k = skip_blanks(b, k, to);
    if k >= to {
        return Kv::NotPair;
    }
    let next = b.get(k + 1).copied().filter(|_| k + 1 < to);
    let colon = match (b[k], next) {
        (b'=', Some(b'=')) => return Kv::NotPair,
        (b'=', Some(b'>')) => {
            k += 2;
            false
        }
        (b'=', _) => {
            k += 1;
            false
        }
        // `Token::Kind`, `token://`: not pairs.
        (b':', Some(b':' | b'/')) => return Kv::NotPair,
        (b':', Some(b'=')) => {
            k += 2;
            false
        }
        (b':', _) => {
            k += 1;
            true
        }
        _ => return Kv::NotPair,
    };
    let Some(kind) = classify_key(&b[i..j]) else {
        return Kv::NotPair;
    };
    let after_sep = k;
    let v = skip_blanks(b, k, to);
    let spaced = v > after_sep;
    if v >= to {
        return Kv::NotPair;
    }
    let structural = quoted_key
        || matches!(
            last,
            None | Some(b'{' | b'[' | b'(' | b',' | b';' | b'&' | b'?' | b'-' | b'|')
        );
    let prose = colon && spaced && !structural && kind.strength != Strength::Strong;

    match b[v] {
        q @ (b'"' | b'\'' | b'`') => quoted_value(b, v + 1, to, q, false, kind),
        b'\\' if v + 1 < to && matches!(b[v + 1], b'"' | b'\'') => {
            quoted_value(b, v + 2, to, b[v + 1], true, kind)
        }
        b'[' => {
            // A list (`"tokens": ["a"]`, Go's `map[Cookie:[a=1]]`), or a marker.
            if b[v..to].starts_with(MARK) || b[v + 1..to].starts_with(MARK) {
                return Kv::NotPair;
            }
            let close = brackets.close(b, v + 1, to);
            if close < to && b[close] == b']' {
                judge(b, v + 1, close, close + 1, kind)
            } else {
                Kv::NotPair
            }
        }
        b'{' | b'<' | b'\n' | b'\r' => Kv::NotPair,
        _ => {
            let mut e = v;
            while e < to && !ends_unquoted(b[e]) {
                e += 1;
            }
            let word = &b[v..e];
            if word.is_empty() {
                return Kv::NotPair;
            }
            // `Bearer abc`, not `token<…` or `token[…`.
            let scheme = kind.header && is_scheme(word) && e < to && is_blank(b[e]);
            if harmless(word) || (prose && !scheme && plain_word(word)) {
                return Kv::Keep {
                    start: v,
                    end: e,
                    resume: e,
                };
            }
            if kind.header {
                // Keep the scheme; the credentials (and cookies) run to the end of the line.
                let start = if scheme { skip_blanks(b, e, to) } else { v };
                if b[start..to].starts_with(MARK) {
                    return Kv::Keep {
                        start: v,
                        end: e,
                        resume: e,
                    };
                }
                let mut z = start;
                while z < to && !matches!(b[z], b'\n' | b'\r' | b'"' | b'\'' | b'`' | b'\\') {
                    z += 1;
                }
                while z > start && is_blank(b[z - 1]) {
                    z -= 1;
                }
                if z == start {
                    return Kv::Keep {
                        start: v,
                        end: e,
                        resume: e,
                    };
                }
                return Kv::Redact {
                    start,
                    end: z,
                    resume: z,
                };
            }
            if kind.strength == Strength::Blob && !blob_like(word) {
                return Kv::Keep {
                    start: v,
                    end: e,
                    resume: e,
                };
            }
            Kv::Redact {
                start: v,
                end: e,
                resume: e,
            }
        }
    }
}

/// A value in quotes (`escaped`: `\"…\"` inside a JSON-encoded string),
/// its text starting at `cs`. An unterminated one ends with its line.
fn quoted_value(b: &[u8], cs: usize, to: usize, q: u8, escaped: bool, kind: KeyKind) -> Kv {
    let mut m = cs;
    let mut close = None;
    while m < to && b[m] != b'\n' {
        if b[m] == b'\\' {
            if escaped && b.get(m + 1) == Some(&q) && m + 1 < to {
                close = Some((m, m + 2));
                break;
            }
            m += 2;
            continue;
        }
        if !escaped && b[m] == q {
            close = Some((m, m + 1));
            break;
        }
        m += 1;
    }
    let (ce, resume) = close.unwrap_or((m.min(to), m.min(to)));
    judge(b, cs, ce, resume, kind)
}

/// The verdict on a delimited value `b[cs..ce]` (quoted, or in brackets).
fn judge(b: &[u8], cs: usize, ce: usize, resume: usize, kind: KeyKind) -> Kv {
    let content = &b[cs..ce];
    let keep = Kv::Keep {
        start: cs,
        end: ce,
        resume,
    };
    if content.is_empty() || content.starts_with(MARK) || harmless(content) {
        return keep;
    }
    let mut start = cs;
    if kind.header {
        if let Some(sp) = content.iter().position(|&c| is_blank(c)) {
            if is_scheme(&content[..sp]) {
                start = skip_blanks(b, cs + sp, ce);
            }
        }
        if start == ce || b[start..ce].starts_with(MARK) {
            return keep;
        }
    }
    if kind.strength == Strength::Blob && !blob_like(content) {
        return keep;
    }
    Kv::Redact {
        start,
        end: ce,
        resume,
    }
}
