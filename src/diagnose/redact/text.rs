//! The output builder and byte classes every pass shares.

/// Copies `src` to a new string, replacing ranges given in increasing order.
pub(super) struct Out<'a> {
    src: &'a [u8],
    out: Vec<u8>,
    /// Everything before this is already in `out`.
    pub(super) done: usize,
}

impl<'a> Out<'a> {
    pub(super) fn new(src: &'a str) -> Out<'a> {
        Out {
            src: src.as_bytes(),
            out: Vec::with_capacity(src.len()),
            done: 0,
        }
    }

    /// Replaces `src[start..end]` with `with`. A range overlapping what is
    /// already written is clipped; an empty or backwards one only flushes.
    pub(super) fn replace(&mut self, start: usize, end: usize, with: &str) {
        let end = end.min(self.src.len());
        if end < self.done {
            return;
        }
        let start = start.clamp(self.done, end);
        self.out.extend_from_slice(&self.src[self.done..start]);
        self.out.extend_from_slice(with.as_bytes());
        self.done = end;
    }

    pub(super) fn finish(mut self) -> String {
        self.out.extend_from_slice(&self.src[self.done..]);
        // Cuts are only ever made next to ASCII bytes, so this is valid
        // UTF-8; the lossy path is a guard, not an expected branch.
        String::from_utf8(self.out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

pub(super) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// What a key in `key=value` is made of (`spring.datasource.password`, `x-api-key`).
pub(super) fn is_key(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

pub(super) fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

pub(super) fn skip_blanks(b: &[u8], mut i: usize, to: usize) -> usize {
    while i < to && is_blank(b[i]) {
        i += 1;
    }
    i
}

pub(super) fn starts_with_ci(b: &[u8], at: usize, lit: &[u8]) -> bool {
    b.get(at..at + lit.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(lit))
}

pub(super) fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

pub(super) fn find(b: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}
