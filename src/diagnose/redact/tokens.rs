//! Pass 3: tokens recognised by their shape (JWT, Slack, GitHub, AWS, `Bearer`, `Basic`…).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

use super::REDACTED;
use super::text::{Out, is_blank, is_word, skip_blanks, starts_with_ci};

const JWT: &str = "[REDACTED:jwt]";

/// A token format: a literal prefix, then at least `min` characters of a class.
struct Shape {
    prefix: &'static [u8],
    class: fn(u8) -> bool,
    min: usize,
    marker: &'static str,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn alnum_under_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

const SLACK: &str = "[REDACTED:slack-token]";
const API_KEY: &str = "[REDACTED:api-key]";
const GITHUB: &str = "[REDACTED:github-token]";

/// Minimum lengths keep words like `sk-learn` and `xoxo-hugs` alone.
const SHAPES: &[Shape] = &[
    Shape {
        prefix: b"xoxb-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxp-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxa-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxr-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxs-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxe-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xoxe.",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"xapp-",
        class: alnum_dash,
        min: 10,
        marker: SLACK,
    },
    Shape {
        prefix: b"sk-",
        class: alnum_under_dash,
        min: 20,
        marker: API_KEY,
    },
    Shape {
        prefix: b"sk_live_",
        class: alnum,
        min: 10,
        marker: API_KEY,
    },
    Shape {
        prefix: b"sk_test_",
        class: alnum,
        min: 10,
        marker: API_KEY,
    },
    Shape {
        prefix: b"rk_live_",
        class: alnum,
        min: 10,
        marker: API_KEY,
    },
    Shape {
        prefix: b"rk_test_",
        class: alnum,
        min: 10,
        marker: API_KEY,
    },
    Shape {
        prefix: b"ghp_",
        class: alnum,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"gho_",
        class: alnum,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"ghu_",
        class: alnum,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"ghs_",
        class: alnum,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"ghr_",
        class: alnum,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"github_pat_",
        class: is_word,
        min: 20,
        marker: GITHUB,
    },
    Shape {
        prefix: b"glpat-",
        class: alnum_under_dash,
        min: 20,
        marker: "[REDACTED:gitlab-token]",
    },
    Shape {
        prefix: b"AKIA",
        class: upper_digit,
        min: 16,
        marker: "[REDACTED:aws-access-key]",
    },
    Shape {
        prefix: b"ASIA",
        class: upper_digit,
        min: 16,
        marker: "[REDACTED:aws-access-key]",
    },
    Shape {
        prefix: b"AIza",
        class: alnum_under_dash,
        min: 30,
        marker: "[REDACTED:google-api-key]",
    },
    Shape {
        prefix: b"npm_",
        class: alnum,
        min: 30,
        marker: "[REDACTED:npm-token]",
    },
    Shape {
        prefix: b"hf_",
        class: alnum,
        min: 30,
        marker: "[REDACTED:hf-token]",
    },
];

pub(super) fn tokens(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut i = 0;
    while i < b.len() {
        // Every shape starts with a letter at a word boundary.
        if !b[i].is_ascii_alphabetic() || (i > 0 && is_word(b[i - 1])) {
            i += 1;
            continue;
        }
        match token_at(b, i) {
            Some((start, end, marker)) => {
                out.replace(start, end, marker);
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out.finish()
}

/// The token starting at `i` (a word boundary): the range to replace and its marker.
fn token_at(b: &[u8], i: usize) -> Option<(usize, usize, &'static str)> {
    if b[i..].starts_with(b"eyJ") {
        // The original's `\beyJ[^\s"]+\b`: up to a space or a double quote
        // (or a marker's bracket, never part of a token), then back to the
        // last word character.
        let mut e = i + 3;
        while e < b.len() && !b[e].is_ascii_whitespace() && !matches!(b[e], b'"' | b'[' | b']') {
            e += 1;
        }
        while e > i + 3 && !is_word(b[e - 1]) {
            e -= 1;
        }
        return (e > i + 3).then_some((i, e, JWT));
    }
    for shape in SHAPES {
        if b[i..].starts_with(shape.prefix) {
            let start = i + shape.prefix.len();
            let mut e = start;
            while e < b.len() && (shape.class)(b[e]) {
                e += 1;
            }
            if e - start >= shape.min {
                // Whatever is glued on goes too: a marker followed by a word
                // character would make a new word start on the next pass.
                while e < b.len() && is_word(b[e]) {
                    e += 1;
                }
                return Some((i, e, shape.marker));
            }
        }
    }
    if starts_with_ci(b, i, b"bearer") && b.get(i + 6).copied().is_some_and(is_blank) {
        let t = skip_blanks(b, i + 6, b.len());
        let e = b64token_end(b, t);
        return (credentials_end(b, e) && bearer_secret(b, t, e)).then_some((t, e, REDACTED));
    }
    if starts_with_ci(b, i, b"basic") && b.get(i + 5).copied().is_some_and(is_blank) {
        let t = skip_blanks(b, i + 5, b.len());
        let mut e = t;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'+' | b'/' | b'=')) {
            e += 1;
        }
        return (credentials_end(b, e) && basic_credentials(&b[t..e])).then_some((t, e, REDACTED));
    }
    None
}

/// Credentials end where a header value, a quoted string or a list item
/// would: not glued to more token-ish text (`Basic abc-…` is something else).
fn credentials_end(b: &[u8], e: usize) -> bool {
    b.get(e).is_none_or(|&c| {
        c.is_ascii_whitespace()
            || matches!(
                c,
                b'"' | b'\'' | b'`' | b',' | b';' | b')' | b']' | b'}' | b'>' | b'\\'
            )
    })
}

/// The end of an RFC 6750 `b64token` starting at `t`.
fn b64token_end(b: &[u8], t: usize) -> usize {
    let mut e = t;
    while e < b.len()
        && (b[e].is_ascii_alphanumeric()
            || matches!(b[e], b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'='))
    {
        e += 1;
    }
    e
}

/// Whether `Bearer <b[t..e]>` carries a token rather than prose
/// ("missing Bearer token") or a challenge parameter (`Bearer realm="api"`).
fn bearer_secret(b: &[u8], t: usize, e: usize) -> bool {
    let tok = &b[t..e];
    if tok.len() < 4 {
        return false;
    }
    let letters = tok.iter().all(u8::is_ascii_alphabetic);
    if letters {
        let mixed =
            tok.iter().any(u8::is_ascii_uppercase) && tok.iter().any(u8::is_ascii_lowercase);
        return tok.len() >= 20 || (tok.len() >= 12 && mixed);
    }
    let param = tok.ends_with(b"=")
        && tok[..tok.len() - 1]
            .iter()
            .all(|c| c.is_ascii_alphabetic() || *c == b'_')
        && b.get(e) == Some(&b'"');
    !param
}

/// `Basic` is a common word; its credentials are base64 of `user:password`.
fn basic_credentials(tok: &[u8]) -> bool {
    if tok.len() < 4 {
        return false;
    }
    STANDARD
        .decode(tok)
        .or_else(|_| STANDARD_NO_PAD.decode(tok))
        .is_ok_and(|d| d.contains(&b':'))
}
