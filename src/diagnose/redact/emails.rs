//! Pass 5: email addresses.

use super::text::Out;

const EMAIL: &str = "[REDACTED:email]";

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// `local@domain.tld`, the top-level domain being letters. Image digests
/// (`app@sha256:…`), Java identities (`Foo@1a2b`) and versions
/// (`golang.org/x/net@v0.17.0`) have no such domain and stay.
pub(super) fn emails(s: &str) -> String {
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
