/*!
A link template with `{placeholder}`s (`DASHBOARD_URL_TEMPLATE`): parsed and
checked once at start-up, filled with percent-encoded values for every
alert. Pure: no I/O.
*/

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["cluster", "namespace", "kind", "name"];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Slot(&'static str),
}

/// A checked template: an http(s) URL whose `{…}` are known placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTemplate {
    parts: Vec<Part>,
}

impl UrlTemplate {
    /// Every problem of `template` at once (unknown or unclosed placeholders,
    /// a scheme other than http/https, a missing host).
    pub fn parse(template: &str) -> Result<UrlTemplate, Vec<String>> {
        let mut problems = Vec::new();
        let rest = template
            .strip_prefix("https://")
            .or_else(|| template.strip_prefix("http://"));
        match rest {
            None => problems.push("is not an http or https URL".to_string()),
            Some(r) if r.split(['/', '?', '#']).next().unwrap_or("").is_empty() => {
                problems.push("has no host".to_string())
            }
            Some(_) => {}
        }
        if template
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            problems.push("contains whitespace".to_string());
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => {
                    let Some(end) = template[i..].find('}') else {
                        problems.push(format!("has an unclosed {{ at byte {i}"));
                        break;
                    };
                    let name = &template[i + 1..i + end];
                    match PLACEHOLDERS.iter().find(|p| **p == name) {
                        Some(p) => {
                            if !text.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut text)));
                            }
                            parts.push(Part::Slot(p));
                        }
                        None => problems.push(format!(
                            "has unknown placeholder {{{name}}} (known: {})",
                            PLACEHOLDERS
                                .iter()
                                .map(|p| format!("{{{p}}}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= i + end) {
                        chars.next();
                    }
                }
                '}' => problems.push(format!("has a }} without {{ at byte {i}")),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        if problems.is_empty() {
            Ok(UrlTemplate { parts })
        } else {
            Err(problems)
        }
    }

    /// The link for one workload; each value percent-encoded, so a name can
    /// neither break the URL nor change its path.
    pub fn fill(&self, cluster: &str, namespace: &str, kind: &str, name: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Slot(s) => out.push_str(&encode(match *s {
                    "cluster" => cluster,
                    "namespace" => namespace,
                    "kind" => kind,
                    _ => name,
                })),
            }
        }
        out
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_filled_with_encoded_values() {
        let t = UrlTemplate::parse(
            "https://headlamp.example/c/{cluster}/{kind}/{namespace}/{name}?x=1",
        )
        .unwrap();
        assert_eq!(
            t.fill("edge 1", "shop", "Deployment", "web/../a&b"),
            "https://headlamp.example/c/edge%201/Deployment/shop/web%2F..%2Fa%26b?x=1"
        );
        let t = UrlTemplate::parse("http://k9s.local/").unwrap();
        assert_eq!(t.fill("a", "b", "c", "d"), "http://k9s.local/");
    }

    #[test]
    fn bad_templates_name_every_problem() {
        let e = UrlTemplate::parse("ftp://x/{pod}/{name").unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("http or https"), "{e:?}");
        assert!(
            e[1].contains("{pod}") && e[1].contains("{namespace}"),
            "{e:?}"
        );
        assert!(e[2].contains("unclosed"), "{e:?}");
        assert!(UrlTemplate::parse("https:///x").is_err());
        assert!(UrlTemplate::parse("https://x/}").is_err());
        assert!(UrlTemplate::parse("https://x/a b").is_err());
    }
}
