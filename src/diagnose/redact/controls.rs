//! Pass 0: ANSI escapes and control characters.

/// Drops ANSI escape sequences and control characters other than tab and
/// line breaks. Only ASCII bytes are removed, so UTF-8 stays valid.
pub(super) fn strip_controls(s: &str) -> String {
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
