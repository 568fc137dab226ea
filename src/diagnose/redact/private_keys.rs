//! Pass 1: PEM private key blocks.

use super::text::{Out, find};

const PRIVATE_KEY: &str = "[REDACTED:private-key]";

/// `-----BEGIN <…PRIVATE KEY…>-----` through its `-----END …-----` line.
/// With no END (a truncated log), everything after BEGIN goes: a partial key
/// is still a key. Certificates and public keys are left alone.
pub(super) fn private_keys(s: &str) -> String {
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
