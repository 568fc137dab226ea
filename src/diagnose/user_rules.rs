/*!
`RULES_FILE`: a user's own diagnosis rules, in JSON, tried before the
built-in ones. A user rule with a built-in rule's id replaces it; `disable`
drops built-in rules by id.

```json
{
  "disable": ["app-error-exit"],
  "rules": [{
    "id": "payments-db-refused",
    "cause": "connection_refused",
    "types": ["CrashLoopBackOff"],
    "reasons": ["Error"],
    "exit_codes": [1],
    "message": "(?i)connection refused.*:5432",
    "events": "BackOff",
    "logs": "(?i)could not connect to server",
    "confidence": 0.9,
    "summary": "{{container}} in {{ref}} cannot reach Postgres.",
    "fix": "Check the payments-db Service and its endpoints.",
    "commands": ["kubectl get endpoints payments-db -n {{ns}}"]
  }]
}
```

A bare array of rules is accepted too. Everything is checked at start-up
(unknown fields, causes outside the vocabulary, bad regexes, unknown
`{{variables}}`), and every problem is reported with the rule's position
and id, so a typo stops the daemon (exit 2) instead of silently never
matching. Loaded once, so the rules are leaked into `'static` and share the
built-in table's matcher.
*/

use serde::Deserialize;

use super::rules::{Cause, EVT, Exit, LOG, MSG, Regexes, Rule, RuleSet};
use super::vars::NAMES;
use crate::model::FailureType;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRule {
    id: String,
    cause: String,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    exit_codes: Vec<i32>,
    #[serde(default)]
    signals: Vec<i32>,
    init: Option<bool>,
    message: Option<String>,
    events: Option<String>,
    logs: Option<String>,
    confidence: Option<f64>,
    summary: String,
    #[serde(default)]
    fix: String,
    #[serde(default)]
    commands: Vec<String>,
}

/// Most bytes a rules file may have (a typo'd path to a huge file).
const MAX_FILE: u64 = 1024 * 1024;
/// Longest regex accepted (regex-lite is linear-time, but big patterns cost memory).
const MAX_REGEX: usize = 2000;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_slice<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

/// `{{name}}` placeholders that are not known variables.
fn unknown_vars(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        let after = rest[i + 2..].trim_start_matches('{');
        let Some(j) = after.find("}}") else { break };
        let key = &after[..j];
        if !NAMES.contains(&key) && !out.iter().any(|o| o == key) {
            out.push(key.to_string());
        }
        rest = &after[j + 2..];
    }
    out
}

fn check(i: usize, r: UserRule, problems: &mut Vec<String>) -> Option<&'static Rule> {
    let at = format!("rule {} ({:?})", i + 1, r.id);
    let before = problems.len();
    let mut bad = |msg: String| problems.push(format!("{at}: {msg}"));
    let id_ok = !r.id.is_empty()
        && r.id.len() <= 64
        && r.id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !id_ok {
        bad("id must be 1 to 64 letters, digits, '-', '_' or '.'".into());
    }
    let cause = r.cause.parse::<Cause>().ok();
    if cause.is_none() {
        bad(format!(
            "cause {:?} is not one of: {}",
            r.cause,
            Cause::ALL.map(|c| c.as_str()).join(", ")
        ));
    }
    let mut kinds = Vec::new();
    for t in &r.types {
        match FailureType::ALL.iter().find(|k| k.as_str() == t) {
            Some(k) => kinds.push(*k),
            None => bad(format!(
                "type {t:?} is not one of: {}",
                FailureType::ALL.map(|k| k.as_str()).join(", ")
            )),
        }
    }
    let mut compile = |what: &str, p: &Option<String>| -> Option<regex_lite::Regex> {
        let p = p.as_ref()?;
        if p.len() > MAX_REGEX {
            bad(format!("{what}: regex longer than {MAX_REGEX} characters"));
            return None;
        }
        match regex_lite::Regex::new(p) {
            Ok(re) => Some(re),
            Err(e) => {
                bad(format!("{what}: bad regex: {e}"));
                None
            }
        }
    };
    let regexes = Regexes {
        message: compile("message", &r.message),
        events: compile("events", &r.events),
        logs: compile("logs", &r.logs),
    };
    let mut bad = |msg: String| problems.push(format!("{at}: {msg}"));
    let criteria = !kinds.is_empty()
        || !r.reasons.is_empty()
        || !r.exit_codes.is_empty()
        || !r.signals.is_empty()
        || r.init.is_some()
        || r.message.is_some()
        || r.events.is_some()
        || r.logs.is_some();
    if !criteria {
        bad("has no criteria (types, reasons, exit_codes, signals, init or a regex): it would match every incident".into());
    }
    let confidence = r.confidence.unwrap_or(0.7);
    if !(0.0..=1.0).contains(&confidence) {
        bad(format!("confidence {confidence} is not between 0 and 1"));
    }
    if r.summary.trim().is_empty() {
        bad("summary is empty".into());
    }
    for t in std::iter::once(&r.summary)
        .chain(std::iter::once(&r.fix))
        .chain(&r.commands)
    {
        let unknown = unknown_vars(t);
        if !unknown.is_empty() {
            bad(format!(
                "unknown template variable(s) {}; known: {}",
                unknown
                    .iter()
                    .map(|u| format!("{{{{{u}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                NAMES.join(", ")
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    let exit = if r.exit_codes.is_empty() && r.signals.is_empty() {
        Exit::Any
    } else {
        Exit::Codes(leak_slice(r.exit_codes), leak_slice(r.signals))
    };
    let reasons: Vec<&'static str> = r.reasons.into_iter().map(leak).collect();
    let mut sources = 0;
    for (re, bit) in [
        (&regexes.message, MSG),
        (&regexes.events, EVT),
        (&regexes.logs, LOG),
    ] {
        if re.is_some() {
            sources |= bit;
        }
    }
    let rule = Rule {
        id: leak(r.id),
        cause: cause.unwrap_or(Cause::Unknown),
        kinds: leak_slice(kinds),
        reasons: leak_slice(reasons),
        exit,
        init: r.init,
        probe: None,
        needs_probe: false,
        patterns: &[],
        sources,
        confidence,
        mutates: false,
        facts: &[],
        summary: leak(r.summary),
        fix: leak(r.fix),
        commands: leak_slice(r.commands.into_iter().map(leak).collect()),
        regexes: Some(Box::leak(Box::new(regexes))),
    };
    Some(Box::leak(Box::new(rule)))
}

/// The field a rule failed to decode on: serde's errors from a `Value` name
/// the wrong type but not the field, so each field is tried alone (next to
/// placeholder required fields).
fn culprit(raw: &serde_json::Value) -> Option<String> {
    raw.as_object()?.iter().find_map(|(k, v)| {
        let mut alone = serde_json::json!({"id": "x", "cause": "x", "summary": "x"});
        alone[k] = v.clone();
        UserRule::deserialize(&alone).err().map(|_| k.clone())
    })
}

/// What a rules document looks like, for the "not a rules document" errors.
const SHAPE: &str = "expected {\"rules\": [...], \"disable\": [...]} or an array of rules with fields id, cause, types, reasons, exit_codes, signals, init, message, events, logs, confidence, summary, fix, commands";

/// Parses a rules document; `Err` lists every problem.
///
/// The document is read as JSON first and each rule decoded on its own, so a
/// misspelt field or a wrong type is reported with the rule it is in (decoding
/// the whole file into one type would only say it matched neither shape).
pub fn parse(text: &str) -> Result<RuleSet, Vec<String>> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| vec![format!("not a rules document ({e}); {SHAPE}")])?;
    let mut problems = Vec::new();
    let (raw_rules, disable) = match doc {
        Value::Array(rules) => (rules, Vec::new()),
        Value::Object(mut top) => {
            let rules = match top.remove("rules") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(rules)) => rules,
                Some(_) => {
                    problems.push(format!("rules is not an array; {SHAPE}"));
                    Vec::new()
                }
            };
            let disable = match top.remove("disable") {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => Vec::<String>::deserialize(v).unwrap_or_else(|_| {
                    problems.push("disable is not an array of rule ids".into());
                    Vec::new()
                }),
            };
            for key in top.keys() {
                problems.push(format!("unknown field {key:?}; {SHAPE}"));
            }
            (rules, disable)
        }
        _ => return Err(vec![format!("not a rules document; {SHAPE}")]),
    };
    let mut seen: Vec<String> = Vec::new();
    let mut rules = Vec::new();
    for (i, raw) in raw_rules.into_iter().enumerate() {
        let r = match UserRule::deserialize(&raw) {
            Ok(r) => r,
            Err(e) => {
                let id = raw.get("id").and_then(Value::as_str).unwrap_or_default();
                let field = culprit(&raw).map(|f| format!("{f}: ")).unwrap_or_default();
                problems.push(format!("rule {} ({id:?}): {field}{e}", i + 1));
                continue;
            }
        };
        if seen.contains(&r.id) {
            problems.push(format!("rule {} ({:?}): id used twice", i + 1, r.id));
        }
        seen.push(r.id.clone());
        if let Some(rule) = check(i, r, &mut problems) {
            rules.push(rule);
        }
    }
    let builtin = RuleSet::builtin_ids();
    for d in &disable {
        if !builtin.contains(&d.as_str()) {
            problems.push(format!(
                "disable: {d:?} is not a built-in rule id (see `opsctrl-daemon rules` ids in the README)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(RuleSet::with_user(rules, &disable))
    } else {
        Err(problems)
    }
}

/// Reads and parses `RULES_FILE`; errors name the file.
pub fn load(path: &std::path::Path) -> Result<RuleSet, Vec<String>> {
    use std::io::Read;
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text))
        .map_err(|e| vec![format!("RULES_FILE {shown}: cannot read it: {e}")])?;
    if text.len() as u64 > MAX_FILE {
        return Err(vec![format!(
            "RULES_FILE {shown}: larger than {MAX_FILE} bytes"
        )]);
    }
    parse(&text).map_err(|ps| {
        ps.into_iter()
            .map(|p| format!("RULES_FILE {shown}: {p}"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::classify::{NothingKnown, Thresholds, classify};
    use crate::detect::workload::workload_of;
    use crate::diagnose::rules::Context;
    use crate::kube::types::Pod;
    use crate::model::PodRecord;
    use crate::util::time::parse_rfc3339;

    fn crashloop() -> PodRecord {
        PodRecord::from(
            serde_json::from_str::<Pod>(include_str!(
                "../../tests/fixtures/pods/crashloop-error.json"
            ))
            .unwrap(),
        )
    }

    fn run(set: &RuleSet, pod: &PodRecord, logs: &[&str]) -> crate::diagnose::Diagnosis {
        let now = parse_rfc3339("2024-05-14T10:10:00Z").unwrap();
        let f = classify(pod, &NothingKnown, now, &Thresholds::default())
            .into_iter()
            .next()
            .unwrap();
        let logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
        set.diagnose(&Context {
            finding: &f,
            pod,
            workload: &workload_of(pod),
            events: &[],
            logs: &logs,
            rollout: &crate::model::Rollout::Steady,
        })
    }

    const DB_RULE: &str = r#"{"rules": [{
        "id": "payments-db", "cause": "connection_refused", "types": ["CrashLoopBackOff"],
        "logs": "(?i)could not connect to server: .*5432",
        "summary": "{{container}} of {{ref}} cannot reach Postgres",
        "commands": ["kubectl get endpoints payments-db -n {{ns}}"], "confidence": 0.95}]}"#;

    #[test]
    fn a_user_rule_is_tried_first_and_fills_real_names() {
        let set = parse(DB_RULE).unwrap();
        let pod = crashloop();
        let d = run(
            &set,
            &pod,
            &["FATAL: could not connect to server: 10.0.0.5:5432"],
        );
        assert_eq!(d.rule, "payments-db");
        assert_eq!(d.cause, "connection_refused");
        assert_eq!(d.confidence, 0.95);
        assert_eq!(
            d.fix.commands,
            [format!(
                "kubectl get endpoints payments-db -n {}",
                pod.namespace
            )]
        );
        assert!(
            d.summary.contains(&*pod.containers[0].name),
            "{}",
            d.summary
        );
        assert!(d.evidence.iter().any(|e| e.starts_with("log: FATAL")));
        // Without the log line, the built-in rules answer as before.
        let plain = run(&set, &pod, &[]);
        assert_ne!(plain.rule, "payments-db");
        assert_eq!(plain, run(&RuleSet::builtin(), &pod, &[]));
    }

    #[test]
    fn same_id_replaces_and_disable_drops_a_builtin() {
        let pod = crashloop();
        let builtin = run(&RuleSet::builtin(), &pod, &[]);
        let doc = format!(
            r#"{{"disable": [], "rules": [{{"id": "{}", "cause": "app_error_exit", "types": ["CrashLoopBackOff"], "summary": "ours"}}]}}"#,
            builtin.rule
        );
        let d = run(&parse(&doc).unwrap(), &pod, &[]);
        assert_eq!((d.rule, d.summary.as_str()), (builtin.rule, "ours"));
        let doc = format!(r#"{{"disable": ["{}"]}}"#, builtin.rule);
        let set = parse(&doc).unwrap();
        assert_eq!(set.len(), RuleSet::builtin().len() - 1);
        assert_ne!(run(&set, &pod, &[]).rule, builtin.rule);
    }

    #[test]
    fn every_problem_is_reported_with_the_rule_it_is_in() {
        let doc = r#"[
            {"id": "a", "cause": "bogus", "types": ["Crashy"], "message": "(", "summary": "{{nope}}"},
            {"id": "b", "cause": "oom_killed", "summary": "x"},
            {"id": "b", "cause": "oom_killed", "summary": "", "confidence": 2, "reasons": ["OOMKilled"]}
        ]"#;
        let p = parse(doc).unwrap_err();
        let text = p.join("\n");
        for want in [
            "rule 1 (\"a\"): cause \"bogus\" is not one of",
            "rule 1 (\"a\"): type \"Crashy\"",
            "rule 1 (\"a\"): message: bad regex",
            "rule 1 (\"a\"): unknown template variable(s) {{nope}}",
            "rule 2 (\"b\"): has no criteria",
            "rule 3 (\"b\"): id used twice",
            "rule 3 (\"b\"): confidence 2 is not between 0 and 1",
            "rule 3 (\"b\"): summary is empty",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(parse(r#"{"rules": [], "typo": 1}"#).is_err());
        assert!(parse(r#"{"disable": ["no-such-rule"]}"#).unwrap_err()[0].contains("no-such-rule"));
        assert!(parse("not json").unwrap_err()[0].contains("not a rules document"));
    }

    #[test]
    fn the_readme_example_is_a_valid_rules_file() {
        let readme = include_str!("../../README.md");
        let from = readme.find("### Your own rules").unwrap();
        let block = &readme[from..];
        let start = block.find("```json\n").unwrap() + 8;
        let end = start + block[start..].find("```").unwrap();
        let set = parse(&block[start..end]).unwrap();
        assert_eq!(set.len(), RuleSet::builtin().len());
    }

    #[test]
    fn typos_and_wrong_types_are_reported_with_their_rule() {
        // Regression: these used to give only "did not match any variant of
        // untagged enum Doc", naming neither the rule nor the field.
        let p = parse(
            r#"[{"id": "ok", "cause": "oom_killed", "reasons": ["OOMKilled"], "summary": "x"},
                {"id": "typo", "cause": "oom_killed", "mesage": "x", "summary": "x"},
                {"id": "text", "cause": "app_error_exit", "exit_codes": "1", "summary": "x"},
                7]"#,
        )
        .unwrap_err();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("rule 2 (\"typo\"): mesage: unknown field `mesage`"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("rule 3 (\"text\"): exit_codes: invalid type"),
            "{p:?}"
        );
        assert!(p[2].starts_with("rule 4 (\"\"): invalid type"), "{p:?}");
        let p = parse(r#"{"rules": {}, "disable": "x", "typo": 1}"#).unwrap_err();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[2].contains("unknown field \"typo\""), "{p:?}");
    }

    #[test]
    fn load_names_the_file() {
        let e = load(std::path::Path::new("/nonexistent/rules.json")).unwrap_err();
        assert!(e[0].starts_with("RULES_FILE /nonexistent/rules.json: cannot read it"));
    }
}
