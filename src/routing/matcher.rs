//! What a route or a silence matches an incident on. Every field given must
//! match (and); a field's list matches when any of its values does (or);
//! an empty matcher matches every incident.
//!
//! ```yaml
//! match:
//!   namespace: [shop, "pay-*"]     # globs
//!   severity: [high, critical]      # or min_severity: high
//!   type: CrashLoopBackOff          # failure types
//!   cause: [oom_killed]             # the diagnosis' cause
//!   kind: Deployment                # workload kind, glob
//!   name: "web-*"                   # workload name, glob
//!   labels: {team: payments}        # pod labels, each value a glob
//! ```

use serde_json::Value;

use super::glob;
use crate::model::{Cause, FailureType, Severity};

/// The facts about one incident that matchers look at.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub namespace: &'a str,
    pub severity: Severity,
    pub kind: FailureType,
    /// The diagnosis' cause, when there is one.
    pub cause: Option<Cause>,
    pub workload_kind: &'a str,
    pub workload_name: &'a str,
    /// The pod's labels (empty when the pod is gone).
    pub labels: &'a [(Box<str>, Box<str>)],
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    namespace: Vec<String>,
    severity: Vec<Severity>,
    min_severity: Option<Severity>,
    types: Vec<FailureType>,
    causes: Vec<Cause>,
    kind: Vec<String>,
    name: Vec<String>,
    labels: Vec<(String, String)>,
}

/// The fields a matcher accepts, for "unknown field" problems.
pub const FIELDS: &str = "namespace, severity, min_severity, type, cause, kind, name, labels";

fn severities() -> String {
    Severity::ALL.map(|s| s.as_str()).join(", ")
}

impl Matcher {
    /// Reads a `match` object; every problem is pushed, prefixed with `at`
    /// (`ROUTES_FILE route 2 ("shop"): match`).
    pub fn parse(v: &Value, at: &str, problems: &mut Vec<String>) -> Matcher {
        let mut m = Matcher::default();
        let obj = match v {
            Value::Null => return m,
            Value::Object(o) => o,
            _ => {
                problems.push(format!("{at}: must be a mapping of {FIELDS}"));
                return m;
            }
        };
        for (field, value) in obj {
            let at = format!("{at}.{field}");
            let mut bad = |msg: String| problems.push(format!("{at}: {msg}"));
            match field.as_str() {
                "namespace" => m.namespace = strings(value, &mut bad),
                "kind" => m.kind = strings(value, &mut bad),
                "name" => m.name = strings(value, &mut bad),
                "severity" => {
                    m.severity = strings(value, &mut bad)
                        .iter()
                        .filter_map(|s| one_of(s, &Severity::ALL, Severity::as_str, &mut bad))
                        .collect()
                }
                "min_severity" => match value.as_str() {
                    Some(s) => {
                        m.min_severity = one_of(s, &Severity::ALL, Severity::as_str, &mut bad)
                    }
                    None => bad(format!("must be one of: {}", severities())),
                },
                "type" => {
                    m.types = strings(value, &mut bad)
                        .iter()
                        .filter_map(|s| one_of(s, &FailureType::ALL, FailureType::as_str, &mut bad))
                        .collect()
                }
                "cause" => {
                    m.causes = strings(value, &mut bad)
                        .iter()
                        .filter_map(|s| one_of(s, &Cause::ALL, Cause::as_str, &mut bad))
                        .collect()
                }
                "labels" => match value {
                    Value::Object(l) => {
                        for (k, v) in l {
                            match v.as_str() {
                                Some(g) => m.labels.push((k.clone(), g.to_string())),
                                None => bad(format!("{k}: the value must be a string (a glob)")),
                            }
                        }
                    }
                    _ => bad("must be a mapping of label name to value (a glob)".into()),
                },
                _ => bad(format!("unknown field (allowed: {FIELDS})")),
            }
        }
        m
    }

    /// Whether it looks at pods' labels (which are then kept per pod).
    pub fn uses_labels(&self) -> bool {
        !self.labels.is_empty()
    }

    pub fn matches(&self, s: &Facts) -> bool {
        let globs = |pats: &[String], text: &str| {
            pats.is_empty() || pats.iter().any(|p| glob::matches(p, text))
        };
        globs(&self.namespace, s.namespace)
            && globs(&self.kind, s.workload_kind)
            && globs(&self.name, s.workload_name)
            && (self.severity.is_empty() || self.severity.contains(&s.severity))
            && self.min_severity.is_none_or(|min| s.severity >= min)
            && (self.types.is_empty() || self.types.contains(&s.kind))
            && (self.causes.is_empty() || s.cause.is_some_and(|c| self.causes.contains(&c)))
            && self.labels.iter().all(|(k, pat)| {
                s.labels
                    .iter()
                    .any(|(lk, lv)| **lk == **k && glob::matches(pat, lv))
            })
    }
}

/// A string, or a list of strings.
fn strings(v: &Value, bad: &mut impl FnMut(String)) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => {
            bad("must be a string or a list of strings".into());
            Vec::new()
        }
    }
}

/// The value of `all` named `s`, or a problem listing what is allowed.
fn one_of<T: Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    bad: &mut impl FnMut(String),
) -> Option<T> {
    let found = all.iter().copied().find(|x| name(*x) == s);
    if found.is_none() {
        let allowed: Vec<&str> = all.iter().map(|x| name(*x)).collect();
        bad(format!("{s:?} is not one of: {}", allowed.join(", ")));
    }
    found
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) const LABELS: &[(&str, &str)] = &[("app", "web"), ("team", "payments")];

    pub(crate) fn labels() -> Vec<(Box<str>, Box<str>)> {
        LABELS
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    pub(crate) fn subject(labels: &[(Box<str>, Box<str>)]) -> Facts<'_> {
        Facts {
            namespace: "shop",
            severity: Severity::Critical,
            kind: FailureType::CrashLoopBackOff,
            cause: Some(Cause::AppErrorExit),
            workload_kind: "Deployment",
            workload_name: "web",
            labels,
        }
    }

    fn parse(v: Value) -> Result<Matcher, Vec<String>> {
        let mut problems = Vec::new();
        let m = Matcher::parse(&v, "m", &mut problems);
        if problems.is_empty() {
            Ok(m)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn each_field_must_match() {
        let l = labels();
        let s = subject(&l);
        let yes = [
            json!({}),
            json!(null),
            json!({"namespace": "sh*"}),
            json!({"namespace": ["pay", "shop"]}),
            json!({"severity": ["high", "critical"]}),
            json!({"min_severity": "high"}),
            json!({"type": "CrashLoopBackOff"}),
            json!({"cause": ["oom_killed", "app_error_exit"]}),
            json!({"kind": "Deploy*", "name": "web"}),
            json!({"labels": {"team": "pay*", "app": "web"}}),
        ];
        for v in yes {
            assert!(parse(v.clone()).unwrap().matches(&s), "{v}");
        }
        let no = [
            json!({"namespace": "shop-*"}),
            json!({"severity": "high"}),
            json!({"type": ["OOMKilled"]}),
            json!({"cause": "oom_killed"}),
            json!({"kind": "StatefulSet"}),
            json!({"name": "web-*"}),
            json!({"labels": {"team": "search"}}),
            json!({"labels": {"tier": "*"}}),
            json!({"namespace": "shop", "type": "OOMKilled"}),
        ];
        for v in no {
            assert!(!parse(v.clone()).unwrap().matches(&s), "{v}");
        }
        let mut low = s;
        low.severity = Severity::Medium;
        assert!(
            !parse(json!({"min_severity": "high"}))
                .unwrap()
                .matches(&low)
        );
        low.cause = None;
        assert!(
            !parse(json!({"cause": "app_error_exit"}))
                .unwrap()
                .matches(&low)
        );
    }

    #[test]
    fn problems_name_the_field_and_what_is_allowed() {
        let p = parse(json!({"severity": ["hgh"], "typ": "x", "labels": [1], "namespace": 3}))
            .unwrap_err();
        let all = p.join("\n");
        assert!(
            all.contains(
                "m.severity: \"hgh\" is not one of: informational, low, medium, high, critical"
            ),
            "{all}"
        );
        assert!(
            all.contains("m.typ: unknown field (allowed: namespace,"),
            "{all}"
        );
        assert!(all.contains("m.labels: must be a mapping"), "{all}");
        assert!(
            all.contains("m.namespace: must be a string or a list of strings"),
            "{all}"
        );
        let p = parse(json!({"type": "Crash", "cause": "oom"}))
            .unwrap_err()
            .join("\n");
        assert!(
            p.contains("CrashLoopBackOff") && p.contains("oom_killed"),
            "{p}"
        );
        assert!(parse(json!("shop")).unwrap_err()[0].contains("must be a mapping"));
    }
}
