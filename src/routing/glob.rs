//! Shell-style patterns for names: `*` is any run of characters (none
//! included), `?` one character, everything else itself. Case-sensitive,
//! as Kubernetes names are.

/// Whether `text` matches `pattern` as a whole. Linear in practice: the
/// classic backtrack-to-last-star walk, no recursion.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_question_marks_and_literals() {
        assert!(matches("shop", "shop"));
        assert!(!matches("shop", "shop-2"));
        assert!(matches("shop-*", "shop-"));
        assert!(matches("shop-*", "shop-eu-1"));
        assert!(matches("*-prod", "pay-prod"));
        assert!(!matches("*-prod", "pay-production"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYbc"));
        assert!(!matches("a*b*c", "aXXbYYb"));
        assert!(matches("web-?", "web-1"));
        assert!(!matches("web-?", "web-12"));
        assert!(!matches("", "x"));
        assert!(matches("é*", "école"));
        assert!(!matches("Shop", "shop"), "case-sensitive");
    }
}
