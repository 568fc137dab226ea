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

/// At most `max` characters (the `…` included), cut at the last word
/// boundary when one is in the second half of what fits: a reader sees a
/// whole last word and the ellipsis, not `…more than its 256…`.
pub fn cut_words(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(1);
    let end = s.char_indices().nth(room).map_or(s.len(), |(i, _)| i);
    let head = &s[..end];
    let at = word_end(head, end);
    format!("{}…", head[..at].trim_end())
}

/// Where to cut `head` (the first `end` bytes that fit) so that no word is
/// split: at the last whitespace, if that keeps at least half; else at `end`.
/// A cut right before whitespace in the original already ends a word.
pub fn word_end(head: &str, end: usize) -> usize {
    match head.rfind(char::is_whitespace) {
        Some(i) if i >= end / 2 => i,
        _ => end,
    }
}

/// A kubelet message without its machine-readable tail: `back-off 2m40s
/// restarting failed container=web pod=web-7c9d8f6b5-x4k2p_shop(238c…)` →
/// `back-off 2m40s restarting failed container`, and an event's `… container
/// web in pod web-7c9d8f6b5-x4k2p_shop(238c…)` → `… container web`. The pod,
/// namespace and container are shown beside the message anyway; the uid
/// helps nobody.
pub fn strip_kubelet_noise(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = lower.find("restarting failed container=") {
        let end = i + "restarting failed container".len();
        return s[..end].to_string();
    }
    if let Some(i) = lower.rfind(" in pod ") {
        let tail = &s[i + " in pod ".len()..];
        // `name_namespace(uid)`, the kubelet's pod identifier, and nothing after.
        let looks = tail.contains('_')
            && tail.ends_with(')')
            && tail.contains('(')
            && !tail.contains(char::is_whitespace);
        if looks {
            return s[..i].to_string();
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_cuts_keep_whole_words_and_show_the_ellipsis() {
        let s = "the container used more than its 256Mi memory limit";
        assert_eq!(cut_words(s, 100), s);
        assert_eq!(cut_words(s, 34), "the container used more than its…");
        assert!(cut_words(s, 34).chars().count() <= 34);
        // One long word: cut inside it rather than lose everything.
        assert_eq!(cut_words("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn kubelet_noise_is_stripped_and_other_text_kept() {
        assert_eq!(
            strip_kubelet_noise(
                "back-off 2m40s restarting failed container=web pod=web-7c9d8f6b5-x4k2p_shop(238c9f1e-0000-4000-8000-000000000000)"
            ),
            "back-off 2m40s restarting failed container"
        );
        assert_eq!(
            strip_kubelet_noise(
                "Back-off restarting failed container web in pod web-7c9d8f6b5-x4k2p_shop(238c9f1e-0000)"
            ),
            "Back-off restarting failed container web"
        );
        for keep in [
            "Back-off pulling image \"web:1.4.4\"",
            "the app failed in pod startup (see logs)",
            "",
        ] {
            assert_eq!(strip_kubelet_noise(keep), keep);
        }
    }

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
