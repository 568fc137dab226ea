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
- the same with only blanks between key and value, as command lines and
  environment dumps write them (`spaced`): `--password x`,
  `MYSQL_ROOT_PASSWORD x`, MySQL's glued `-px`, and `secret`/`pass`/`token`
  followed by a credential-looking word;
- AWS secret access keys by shape (40 base64 characters, mixed case);
- email addresses, IPv4 addresses (four dotted octets 0–255, not part of a
  longer dotted version) and IPv6 addresses (validated by the standard parser);
- ANSI escape sequences and other control characters are removed first, so
  colour codes cannot split a secret away from its key.

Values that are plainly not secrets stay: booleans, `****`, placeholders
(`<value>`) and references (`${DB_PASSWORD}`, `{{ .Values.pw }}`).

This is a superset of the original daemon's log sanitising, which replaced
IPv4 addresses, emails and `eyJ…`/`AKIA…`/`ghp_…` tokens and stripped ANSI
codes in log lines only, except that `999.1.1.1`
and the `1.2.3.4` inside `1.2.3.4.5` are left alone (they are not addresses),
and a JWT also ends at a bracket (never part of a token).

Design:
- No regular expressions (regex-lite serves only user rule patterns): a fixed
  sequence of hand-written passes over bytes, one module each, run in the
  order of `round`. Each is a single left-to-right scan with bounded
  look-around, so the whole is linear in the input, and each knows the
  context a pattern cannot express (is this `key:` a key or prose?). Every delimiter is ASCII, so every cut falls on a UTF-8
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

mod controls;
mod emails;
mod ip;
mod pairs;
mod private_keys;
mod spaced;
mod text;
mod tokens;
mod urls;

use controls::strip_controls;
use emails::emails;
use ip::{ipv4, ipv6};
use pairs::key_values;
use private_keys::private_keys;
use spaced::{aws_secret_keys, spaced_values};
use tokens::tokens;
use urls::urls;

/// What a removed value is replaced with when its kind says nothing more.
pub const REDACTED: &str = "[REDACTED]";

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

/// `text` with credentials removed, but emails and IP addresses kept: for
/// the daemon's own log lines, which stay in the cluster and whose
/// addresses (`addr=[::]:8080`, the API server's) are operational facts.
pub fn redact_secrets(text: &str) -> String {
    let mut s = secrets_round(text);
    if s == text {
        return s;
    }
    for _ in 1..MAX_ROUNDS {
        let next = secrets_round(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn secrets_round(text: &str) -> String {
    let s = strip_controls(text);
    let s = private_keys(&s);
    let s = urls(&s);
    let s = tokens(&s);
    let s = key_values(&s);
    let s = spaced_values(&s);
    aws_secret_keys(&s)
}

fn round(text: &str) -> String {
    let s = strip_controls(text);
    let s = private_keys(&s);
    let s = urls(&s);
    let s = tokens(&s);
    let s = key_values(&s);
    let s = spaced_values(&s);
    let s = aws_secret_keys(&s);
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

#[cfg(test)]
mod tests;
