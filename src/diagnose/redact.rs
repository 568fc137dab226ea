/*!
Secret redaction for text that leaves the cluster towards a third party: the
incident context sent to the LLM, and log tails carried by alerts.

`redact` replaces what looks like a credential or a personal detail with
`[REDACTED]` or a typed marker (`[REDACTED:email]`, `[REDACTED:jwt]`, …), so a
reader (human or model) still knows *what kind* of thing was there. It covers:

- PEM private key blocks (`-----BEGIN … PRIVATE KEY-----` to its END line);
- passwords in URLs (`scheme://user:pass@host` keeps the user and host), and
  the secret path of Slack and Discord webhook URLs;
- tokens recognised by shape: JWTs (`eyJ…`), Slack (`xoxb-`, `xoxp-`, `xapp-`…),
  OpenAI/Anthropic-style `sk-…`, Stripe `sk_live_…`, GitHub (`ghp_…`,
  `github_pat_…`), GitLab `glpat-…`, AWS access key ids (`AKIA…`, `ASIA…`),
  Google `AIza…`, npm and Hugging Face tokens, `Bearer <token>` and
  `Basic <base64 of user:pass>`;
- values of sensitive keys in `key=value`, `key: value`, `"key": "value"`,
  `key => value` and Go's `map[key:value]` forms, where the key mentions a
  password, passwd, pwd, secret, token, api key, access key, private key,
  credential, auth (not "author"), session or cookie; `Authorization:` and
  `Cookie:` values up to the end of the line (keeping the scheme word); long
  hex/base64 blobs after `key`, `sig`, `signature`, `hmac`, `salt`, `nonce`;
- email addresses, IPv4 addresses (four dotted octets 0–255, not part of a
  longer dotted version) and IPv6 addresses (validated by the standard parser);
- ANSI escape sequences and other control characters are removed first, so
  colour codes cannot split a secret away from its key.

Values that are plainly not secrets stay: booleans, `****`, placeholders
(`<value>`) and references (`${DB_PASSWORD}`, `{{ .Values.pw }}`).

This is a superset of the original daemon's `sanitizeLogs` (behaviour.md §4.2:
IPv4, emails, `eyJ…`, `AKIA…`, `ghp_…`, ANSI codes), except that `999.1.1.1`
and the `1.2.3.4` inside `1.2.3.4.5` are left alone (they are not addresses),
and a JWT also ends at a bracket (never part of a token).

Design:
- No regex crate: a fixed sequence of hand-written passes over bytes, each a
  single left-to-right scan with bounded look-around, so the whole is linear
  in the input. Every delimiter is ASCII, so every cut falls on a UTF-8
  boundary; nothing here indexes out of bounds or panics.
- Idempotent (`redact(redact(x)) == redact(x)`): markers contain nothing a
  pass matches, and `redact` repeats the passes until they change nothing
  (at most `MAX_ROUNDS`, so still linear).
- Keeps ordinary text: Postgres' `password authentication failed for user`,
  Go error chains like `failed to authorize: failed to fetch anonymous token:
  unexpected status`, `KeyError: 'DB_PASSWORD'` and stack traces stay as they
  are. A `key: word` pair inside prose (not at a line start, after `{`, `,`…,
  nor quoted) whose value is one lowercase word is read as prose, except for
  password-like keys, whose values are always removed.
*/

use std::net::Ipv6Addr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// What a removed value is replaced with when its kind says nothing more.
pub const REDACTED: &str = "[REDACTED]";
const EMAIL: &str = "[REDACTED:email]";
const IP: &str = "[REDACTED:ip]";
/// Loopback addresses are redacted too (the original did), but keep their
/// meaning: "connection refused to localhost" is half a diagnosis.
const LOOPBACK_IP: &str = "[REDACTED:loopback-ip]";
const PRIVATE_KEY: &str = "[REDACTED:private-key]";
const JWT: &str = "[REDACTED:jwt]";

/// Every marker starts with this; values already redacted are left alone.
const MARK: &[u8] = b"[REDACTED";

/// Rounds of passes at most. Clean text takes one round, text with secrets
/// two: the second finds nothing more and confirms the fixpoint.
const MAX_ROUNDS: usize = 5;

/// `text` with secrets and personal details replaced by markers.
///
/// The passes run again until nothing changes: a pass may only see its
/// match once a later pass has put a marker next to it (`x@example.com::1`:
/// the address is glued to the domain until the email is a marker). Every
/// change replaces unredacted bytes, so this ends; in practice after two rounds.
pub fn redact(text: &str) -> String {
    let mut s = round(text);
    if s == text {
        return s;
    }
    for _ in 1..MAX_ROUNDS {
        let next = round(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn round(text: &str) -> String {
    let s = strip_controls(text);
    let s = private_keys(&s);
    let s = urls(&s);
    let s = tokens(&s);
    let s = key_values(&s);
    let s = emails(&s);
    let s = ipv6(&s);
    ipv4(&s)
}

/// `redact` over lines taken as one text, so a private key spread over
/// several lines is removed whole (its lines become one marker line).
pub fn redact_lines(lines: &[String]) -> Vec<String> {
    if lines.is_empty() {
        return Vec::new();
    }
    redact(&lines.join("\n"))
        .split('\n')
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Output builder and byte classes
// ---------------------------------------------------------------------------------------------

/// Copies `src` to a new string, replacing ranges given in increasing order.
struct Out<'a> {
    src: &'a [u8],
    out: Vec<u8>,
    /// Everything before this is already in `out`.
    done: usize,
}

impl<'a> Out<'a> {
    fn new(src: &'a str) -> Out<'a> {
        Out {
            src: src.as_bytes(),
            out: Vec::with_capacity(src.len()),
            done: 0,
        }
    }

    /// Replaces `src[start..end]` with `with`. A range overlapping what is
    /// already written is clipped; an empty or backwards one only flushes.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        let end = end.min(self.src.len());
        if end < self.done {
            return;
        }
        let start = start.clamp(self.done, end);
        self.out.extend_from_slice(&self.src[self.done..start]);
        self.out.extend_from_slice(with.as_bytes());
        self.done = end;
    }

    fn finish(mut self) -> String {
        self.out.extend_from_slice(&self.src[self.done..]);
        // Cuts are only ever made next to ASCII bytes, so this is valid
        // UTF-8; the lossy path is a guard, not an expected branch.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// What a key in `key=value` is made of (`spring.datasource.password`, `x-api-key`).
fn is_key(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn skip_blanks(b: &[u8], mut i: usize, to: usize) -> usize {
    while i < to && is_blank(b[i]) {
        i += 1;
    }
    i
}

fn starts_with_ci(b: &[u8], at: usize, lit: &[u8]) -> bool {
    b.get(at..at + lit.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(lit))
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn find(b: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

// ---------------------------------------------------------------------------------------------
// Pass 0: control characters
// ---------------------------------------------------------------------------------------------

/// Drops ANSI escape sequences and control characters other than tab and
/// line breaks. Only ASCII bytes are removed, so UTF-8 stays valid.
fn strip_controls(s: &str) -> String {
    let b = s.as_bytes();
    if !b
        .iter()
        .any(|&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f)
    {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == 0x1b {
            i += 1;
            match b.get(i) {
                // CSI: parameters and intermediates, then one final byte.
                Some(b'[') => {
                    i += 1;
                    while i < b.len() && (0x20..=0x3f).contains(&b[i]) {
                        i += 1;
                    }
                    if i < b.len() && (0x40..=0x7e).contains(&b[i]) {
                        i += 1;
                    }
                }
                // OSC (window titles, hyperlinks): up to BEL or ESC \ or the line's end.
                Some(b']') => {
                    i += 1;
                    while i < b.len() && !matches!(b[i], 0x07 | 0x1b | b'\n') {
                        i += 1;
                    }
                    if b.get(i) == Some(&0x07) {
                        i += 1;
                    } else if b.get(i) == Some(&0x1b) && b.get(i + 1) == Some(&b'\\') {
                        i += 2;
                    }
                }
                // Two-byte sequences; never swallow the lead byte of a UTF-8 character.
                Some(&n) if (0x20..0x7f).contains(&n) => i += 1,
                _ => {}
            }
            continue;
        }
        if (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f {
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Pass 1: PEM private keys
// ---------------------------------------------------------------------------------------------

/// `-----BEGIN <…PRIVATE KEY…>-----` through its `-----END …-----` line.
/// With no END (a truncated log), everything after BEGIN goes: a partial key
/// is still a key. Certificates and public keys are left alone.
fn private_keys(s: &str) -> String {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const END: &[u8] = b"-----END ";
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut at = 0;
    while let Some(p) = find(b, BEGIN, at) {
        let label_start = p + BEGIN.len();
        // A label is short and upper case: `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`.
        let mut e = label_start;
        while e < b.len() && e - label_start < 64 && (b[e].is_ascii_uppercase() || b[e] == b' ') {
            e += 1;
        }
        let label = &b[label_start..e];
        if !b[e..].starts_with(b"-----") || find(label, b"PRIVATE KEY", 0).is_none() {
            at = label_start;
            continue;
        }
        let end = match find(b, END, e + 5) {
            Some(q) => {
                let mut z = q + END.len();
                while z < b.len() && (b[z].is_ascii_uppercase() || b[z] == b' ') {
                    z += 1;
                }
                if b[z..].starts_with(b"-----") {
                    z + 5
                } else {
                    z
                }
            }
            None => b.len(),
        };
        out.replace(p, end, PRIVATE_KEY);
        at = end;
    }
    out.finish()
}

// ---------------------------------------------------------------------------------------------
// Pass 2: URLs
// ---------------------------------------------------------------------------------------------

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
fn urls(s: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 3: tokens recognised by their shape
// ---------------------------------------------------------------------------------------------

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

fn tokens(s: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 4: values of sensitive keys
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strength {
    /// Passwords: always removed, even inside prose.
    Strong,
    /// Tokens, secrets, sessions, credentials: removed unless plainly prose.
    Normal,
    /// `key`, `sig`, `hmac`…: only long hex/base64-looking values are removed.
    Blob,
}

#[derive(Clone, Copy, Debug)]
struct KeyKind {
    strength: Strength,
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

fn classify_key(key: &[u8]) -> Option<KeyKind> {
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
fn harmless(v: &[u8]) -> bool {
    HARMLESS.iter().any(|h| v.eq_ignore_ascii_case(h))
        || v.iter().all(|&c| c == b'*')
        || (v.len() > 2 && v.starts_with(b"<") && v.ends_with(b">"))
        || v.starts_with(b"${")
        || v.starts_with(b"$(")
        || v.starts_with(b"{{")
}

fn blob_like(v: &[u8]) -> bool {
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

fn key_values(s: &str) -> String {
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

// ---------------------------------------------------------------------------------------------
// Pass 5: email addresses
// ---------------------------------------------------------------------------------------------

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// `local@domain.tld`, the top-level domain being letters. Image digests
/// (`app@sha256:…`), Java identities (`Foo@1a2b`) and versions
/// (`golang.org/x/net@v0.17.0`) have no such domain and stay.
fn emails(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Out::new(s);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'@' {
            i += 1;
            continue;
        }
        // The local part stops at the previous '@' (not a local character),
        // so each byte is looked at by one '@' at most.
        let mut a = i;
        while a > out.done && is_local(b[a - 1]) {
            a -= 1;
        }
        while a < i && b[a] == b'.' {
            a += 1;
        }
        let mut z = i + 1;
        while z < b.len() && is_domain(b[z]) {
            z += 1;
        }
        while z > i + 1 && matches!(b[z - 1], b'.' | b'-') {
            z -= 1;
        }
        if a < i && valid_domain(&b[i + 1..z]) {
            out.replace(a, z, EMAIL);
        }
        i = z.max(i + 1);
    }
    out.finish()
}

fn valid_domain(d: &[u8]) -> bool {
    let mut labels = d.split(|&c| c == b'.');
    let Some(tld) = d.rsplit(|&c| c == b'.').next() else {
        return false;
    };
    d.contains(&b'.')
        && labels.all(|l| !l.is_empty())
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
}

// ---------------------------------------------------------------------------------------------
// Passes 6 and 7: IP addresses
// ---------------------------------------------------------------------------------------------

fn in_v6_run(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b':' | b'.' | b'%' | b'_')
}

/// IPv6 addresses, with an optional `%zone`. A candidate is a run of
/// address-ish characters, cut after its last segment holding a non-hex
/// character (`addr:fe80::1`), that the standard parser accepts, with two
/// colons and a digit at least: timestamps (`09:00:00`), MACs, `Foo.java:12`
/// and `std::vector` are not addresses.
fn ipv6(s: &str) -> String {
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
fn ipv4(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn same(s: &str) {
        assert_eq!(redact(s), s, "should be left alone");
    }

    #[test]
    fn authorization_headers_and_bearer_tokens() {
        assert_eq!(
            redact("Authorization: Bearer abc.def-123"),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            redact("authorization: Basic dXNlcjpwYXNz"),
            "authorization: Basic [REDACTED]"
        );
        // Not base64 of user:pass, still the Authorization header's value.
        assert_eq!(
            redact("Authorization: Basic Zm9vYmFy"),
            "Authorization: Basic [REDACTED]"
        );
        assert_eq!(
            redact("Authorization: s3cr3t value"),
            "Authorization: [REDACTED]"
        );
        assert_eq!(
            redact(r#"{"Authorization": "Bearer tok-12345", "x": 1}"#),
            r#"{"Authorization": "Bearer [REDACTED]", "x": 1}"#
        );
        assert_eq!(
            redact("curl -H 'Authorization: token abcdef0123456789' https://x.io"),
            "curl -H 'Authorization: token [REDACTED]' https://x.io"
        );
        assert_eq!(
            redact("got header map[Authorization:[Bearer zz9x] Cookie:[sid=abc; theme=dark]]"),
            "got header map[Authorization:[Bearer [REDACTED]] Cookie:[[REDACTED]]]"
        );
        assert_eq!(redact("Cookie: a=1; b=2"), "Cookie: [REDACTED]");
        assert_eq!(
            redact("sending Bearer eyzAbc123 to api"),
            "sending Bearer [REDACTED] to api"
        );
        // Prose and challenges stay.
        same("missing Bearer token in request");
        same(r#"WWW-Authenticate: Bearer realm="api", error="invalid_token""#);
        same("Basic auth failed for user admin");
    }

    #[test]
    fn tokens_by_shape() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(
            redact(&format!("token {jwt}, ok")),
            "token [REDACTED:jwt], ok"
        );
        assert_eq!(
            redact("SLACK=xoxb-1234567890-abcdefghij and xapp-1-A0123-456-abcdef"),
            "SLACK=[REDACTED:slack-token] and [REDACTED:slack-token]"
        );
        assert_eq!(
            redact("key sk-proj-abcdefghijklmnopqrstuvwx1234 used"),
            "key [REDACTED:api-key] used"
        );
        assert_eq!(
            redact(
                "clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789 or github_pat_11AAAAAAA0abcdefghij_xyz"
            ),
            "clone with [REDACTED:github-token] or [REDACTED:github-token]"
        );
        assert_eq!(
            redact("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
            "AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key]"
        );
        assert_eq!(
            redact("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "aws_secret_access_key = [REDACTED]"
        );
        assert_eq!(
            redact("glpat-abcdefghij0123456789 AIzaSyA-abcdefghijklmnopqrstuvwxyz01234"),
            "[REDACTED:gitlab-token] [REDACTED:google-api-key]"
        );
        same("pip install scikit-learn; import sk-learn; xoxo-hugs; TASK-1234");
    }

    #[test]
    fn passwords_in_urls() {
        assert_eq!(
            redact("connecting to postgres://app:hunter2@db.shop.svc:5432/orders?sslmode=disable"),
            "connecting to postgres://app:[REDACTED]@db.shop.svc:5432/orders?sslmode=disable"
        );
        assert_eq!(
            redact("redis://:p@ss@cache:6379/0"),
            "redis://:[REDACTED]@cache:6379/0"
        );
        assert_eq!(
            redact("POST https://hooks.slack.com/services/T000/B000/XXXXXXXX failed"),
            "POST https://hooks.slack.com/services/[REDACTED] failed"
        );
        same("GET https://example.com:8443/api/v1/pods?watch=1");
    }

    #[test]
    fn sensitive_keys() {
        assert_eq!(redact("PASSWORD=hunter2"), "PASSWORD=[REDACTED]");
        assert_eq!(
            redact("export DB_PASS=hunter2 HOME=/root"),
            "export DB_PASS=[REDACTED] HOME=/root"
        );
        assert_eq!(
            redact(r#"{"user":"bob","password":"p\"w d","apiKey":'k1'}"#),
            r#"{"user":"bob","password":"[REDACTED]","apiKey":'[REDACTED]'}"#
        );
        assert_eq!(
            redact(r#"msg="{\"client_secret\":\"abc123\",\"n\":1}""#),
            r#"msg="{\"client_secret\":\"[REDACTED]\",\"n\":1}""#
        );
        assert_eq!(
            redact("  password: letmein\n  username: app"),
            "  password: [REDACTED]\n  username: app"
        );
        assert_eq!(
            redact("User{name=bob, password=s3cret, sessionId=42}"),
            "User{name=bob, password=[REDACTED], sessionId=[REDACTED]}"
        );
        assert_eq!(
            redact("&{Password:hunter2 User:bob}"),
            "&{Password:[REDACTED] User:bob}"
        );
        assert_eq!(
            redact("kubectl create secret generic db --from-literal=password=hunter2"),
            "kubectl create secret generic db --from-literal=password=[REDACTED]"
        );
        assert_eq!(
            redact("GET /cb?access_token=abc&state=xyz&X-Amz-Signature=0123456789abcdef0123"),
            "GET /cb?access_token=[REDACTED]&state=xyz&X-Amz-Signature=[REDACTED]"
        );
        assert_eq!(redact("api-key => 'v'"), "api-key => '[REDACTED]'");
        assert_eq!(redact("private_key: |"), "private_key: [REDACTED]");
        // Nested in a kept value: still found.
        assert_eq!(
            redact("cache_key=a:password=b"),
            "cache_key=a:password=[REDACTED]"
        );
        // Descriptive keys, placeholders, booleans, comparisons, C++ paths: kept.
        same("secretName: db-creds, tokenPath: /var/run/secrets/token");
        same("password=<value> auth_enabled=true session: none pwd=****");
        same(r#"kubectl patch secret db -n shop -p '{"stringData":{"DB_PASSWORD":"<value>"}}'"#);
        same(
            "password: ${DB_PASSWORD} token=$(cat /run/secrets/token) secret: \"{{ .Values.pw }}\"",
        );
        same("if token == nil { Token::Kind; }");
        same("author=jane authority: example.com");
        same("cache_key=user:123 key=value");
    }

    #[test]
    fn prose_keeps_its_words() {
        same(r#"FATAL:  password authentication failed for user "app""#);
        same(
            "Failed to pull image: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
        );
        same("KeyError: 'DB_PASSWORD'");
        same(r#"Error: couldn't find key password in Secret shop/db-creds"#);
        same("MountVolume.SetUp failed for volume \"creds\" : secret \"db-creds\" not found");
        // But not for passwords, and not for values that look like values.
        assert_eq!(
            redact("login failed, password: letmein"),
            "login failed, password: [REDACTED]"
        );
        assert_eq!(redact("using token: 8f3a9c"), "using token: [REDACTED]");
    }

    #[test]
    fn private_key_blocks() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83bsd==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            redact(&format!("key:\n{pem}\ndone")),
            "key:\n[REDACTED:private-key]\ndone"
        );
        assert_eq!(
            redact("k=\"-----BEGIN PRIVATE KEY-----\\nMIIEv\\n-----END PRIVATE KEY-----\" ok"),
            "k=\"[REDACTED:private-key]\" ok"
        );
        // Truncated: the rest goes.
        assert_eq!(
            redact("x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r"),
            "x\n[REDACTED:private-key]"
        );
        same("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
        let lines: Vec<String> = format!("a\n{pem}\nb").lines().map(String::from).collect();
        assert_eq!(redact_lines(&lines), ["a", "[REDACTED:private-key]", "b"]);
    }

    #[test]
    fn emails_and_addresses() {
        assert_eq!(
            redact("mail to jane.doe+ops@example.co.uk failed"),
            "mail to [REDACTED:email] failed"
        );
        assert_eq!(
            redact("dial tcp 10.0.3.7:5432: connect: connection refused"),
            "dial tcp [REDACTED:ip]:5432: connect: connection refused"
        );
        assert_eq!(
            redact("listen 127.0.0.1:8080 and [::1]:9090, peer 2001:db8::8a2e:370:7334"),
            "listen [REDACTED:loopback-ip]:8080 and [[REDACTED:loopback-ip]]:9090, peer [REDACTED:ip]"
        );
        assert_eq!(
            redact("via fe80::1%eth0: no route; mapped ::ffff:10.1.2.3."),
            "via [REDACTED:ip]: no route; mapped [REDACTED:ip]."
        );
        assert_eq!(redact("addr:2001:db8::1 up"), "addr:[REDACTED:ip] up");
        assert_eq!(redact("cidr 10.0.0.0/16"), "cidr [REDACTED:ip]/16");
        same(
            "version 1.2.3 and 1.2.3.4.5, v1.2.3.4, 999.1.1.1, at 09:00:00.123 on 2024-05-14T09:00:00Z",
        );
        same("image nginx@sha256:0123abcd, object com.foo.Bar@1a2b3c, golang.org/x/net@v0.17.0");
        same("aa:bb:cc:dd:ee:ff std::vector<int> u8::MAX Foo.java:42 main.rs:3:5 dead::beef");
    }

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(
            redact("\x1b[31mERROR\x1b[0m password\x1b[1m=hunter2\x07"),
            "ERROR password=[REDACTED]"
        );
        assert_eq!(
            redact("tab\tand\r\nnewline ünïcödé 日本"),
            "tab\tand\r\nnewline ünïcödé 日本"
        );
    }

    /// Real crash output keeps every non-secret word.
    #[test]
    fn realistic_crash_logs_are_kept() {
        let java = "Exception in thread \"main\" java.lang.IllegalStateException: Failed to load ApplicationContext\n\
            \tat org.springframework.boot.SpringApplication.run(SpringApplication.java:315)\n\
            \tat com.example.shop.Application.main(Application.java:12)\n\
            Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"shop\"\n\
            \tat org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)\n\
            \t... 42 more";
        same(java);
        let go = "panic: runtime error: invalid memory address or nil pointer dereference\n\
            [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6b8f2a]\n\n\
            goroutine 1 [running]:\n\
            main.(*Server).Start(0x0, {0x7ffd, 0x4})\n\
            \t/app/server.go:42 +0x2a\n\
            main.main()\n\
            \t/app/main.go:17 +0x1c5\n\
            exit status 2";
        same(go);
        let python = "Traceback (most recent call last):\n  File \"/app/app.py\", line 10, in <module>\n    \
            conn = psycopg2.connect(os.environ[\"DATABASE_URL\"])\n\
            psycopg2.OperationalError: connection to server at \"db\", port 5432 failed: Connection refused\n\
            \tIs the server running on that host and accepting TCP/IP connections?";
        same(python);
        let nginx = "2024/05/14 09:58:10 [emerg] 1#1: host not found in upstream \"backend:8080\" in /etc/nginx/conf.d/default.conf:12\n\
            nginx: [emerg] host not found in upstream \"backend:8080\"";
        same(nginx);
        let node = "Error: Cannot find module '/app/server.js'\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1039:15) {\n  code: 'MODULE_NOT_FOUND',\n  requireStack: []\n}";
        same(node);
        // With secrets, only the secrets change.
        let nginx_ip = "[error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.5, server: _, request: \"GET / HTTP/1.1\", upstream: \"http://10.0.0.9:8080/\", host: \"shop.example.com\"";
        assert_eq!(
            redact(nginx_ip),
            "[error] 29#29: *1 connect() failed (111: Connection refused) while connecting to upstream, client: [REDACTED:ip], server: _, request: \"GET / HTTP/1.1\", upstream: \"http://[REDACTED:ip]:8080/\", host: \"shop.example.com\""
        );
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const PIECES: &[&str] = &[
        "password",
        "token",
        "Authorization",
        "Cookie",
        "key",
        "sig",
        "auth",
        "author",
        "=",
        ":",
        "::",
        " ",
        "  ",
        "\t",
        "\n",
        "\"",
        "'",
        "\\\"",
        "\\",
        "[",
        "]",
        "{",
        "}",
        ",",
        ";",
        "&",
        "?",
        "-",
        "=>",
        "://",
        "@",
        ".",
        "example.com",
        "10",
        "255",
        "256",
        "0",
        "1",
        "fe80",
        "ffff",
        "db8",
        "%eth0",
        "Bearer ",
        "Basic ",
        "dXNlcjpwYXNz",
        "eyJ",
        "eyJhbGciOi",
        "xoxb-",
        "sk-",
        "ghp_",
        "AKIA",
        "IOSFODNN7EXAMPLE",
        "abcdefghij0123456789",
        "hunter2",
        "user",
        "[REDACTED]",
        "[REDACTED:ip]",
        "-----BEGIN PRIVATE KEY-----",
        "-----END PRIVATE KEY-----",
        "-----",
        "\x1b[31m",
        "\x1b",
        "é",
        "日本",
        "/",
        "%",
        "*",
        "<",
        ">",
        "true",
        "none",
        "http",
        "postgres",
        "hooks.slack.com",
        "/services/",
        "a",
        "Z",
        "_",
        "(",
        ")",
    ];

    #[test]
    fn never_panics_and_is_idempotent_on_random_input() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..20_000 {
            let mut s = String::new();
            for _ in 0..rng.below(40) {
                s.push_str(PIECES[rng.below(PIECES.len())]);
            }
            let once = redact(&s);
            let twice = redact(&once);
            assert_eq!(once, twice, "round {round}: not idempotent on {s:?}");
        }
        for _ in 0..5_000 {
            let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
            let s = String::from_utf8_lossy(&bytes);
            let once = redact(&s);
            assert_eq!(once, redact(&once));
            // Arbitrary chars, including multi-byte ones next to delimiters.
            let chars: String = (0..rng.below(100))
                .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('x'))
                .collect();
            let once = redact(&chars);
            assert_eq!(once, redact(&once));
        }
    }

    /// Inputs built to defeat a naive scanner (every position a candidate)
    /// still take linear time: 256 KiB each, well within a second even in a
    /// debug build, where a quadratic pass would take minutes.
    #[test]
    fn adversarial_inputs_stay_linear() {
        let n = 256 * 1024;
        for unit in [
            "a@",
            "a.",
            "1.",
            "::",
            "eyJ",
            "eyJ ",
            "password=",
            "key=\"\\\"",
            "key=a/",
            "key: [",
            "-----BEGIN ",
            "-----BEGIN PRIVATE KEY-----",
            "://",
            "a://b",
            "Bearer ",
            "bearer x ",
            "sk-",
            "xoxb-",
            "AKIA",
            "\x1b[",
            "1.1.1.1.",
            "a:b:",
            "token=\"",
            "Authorization: ",
            "[",
            "Basic ",
            "é@",
            "key=\"\\\"",
            "key='\\'",
            "key=\\\"\\\\",
            "Authorization: Bearer [REDACTED] ",
            "Cookie: [x] ",
            "cache_key=a:",
            "key=[",
        ] {
            let s = unit.repeat(n / unit.len());
            let t = std::time::Instant::now();
            let _ = redact(&s);
            assert!(
                t.elapsed() < std::time::Duration::from_secs(3),
                "{unit:?}: {:?}",
                t.elapsed()
            );
        }
    }
}
