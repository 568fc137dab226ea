/*!
Cutting text to a budget, visibly: every cut ends in `…`, so a reader knows
something is missing.
*/

/// At most `max` characters (not counting the `…` added when cut).
pub fn cut_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// At most `max` bytes, the `…` included, cut on a character boundary.
pub fn cut_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_string();
    out.push(ellipsis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_visible_and_on_character_boundaries() {
        assert_eq!(cut_chars("héllo", 10), "héllo");
        assert_eq!(cut_chars("héllo", 2), "hé…");
        assert_eq!(cut_bytes("héllo", 10), "héllo");
        let c = cut_bytes("ééééé", 7);
        assert!(c.len() <= 7 && c.ends_with('…'), "{c}");
        assert_eq!(cut_bytes("abc", 0), "…");
    }
}
