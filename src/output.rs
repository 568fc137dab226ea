/*!
The record: every incident transition on stdout, as a readable line or as
one JSON object per line (`-o json`), and `scan`'s table or JSON array.

The JSON is the stable schema documented in the README; later features add
to `diagnosis` but never rename or drop a field.
*/

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::model::Diagnosis;
use crate::model::{Alert, Item};
use crate::model::{Incident, Transition};
use crate::util::text::cut_chars;
use crate::util::time::{format_age, format_rfc3339};

/// Between two table columns.
const GAP: &str = "  ";

/// The stable JSON of an incident in a given state, with its diagnosis.
pub fn incident_json(i: &Incident, diagnosis: Option<&Diagnosis>) -> Value {
    let f = &i.finding;
    let mut v = json!({
        "id": i.id,
        "cluster": i.cluster,
        // Nodes are cluster-scoped: a node incident has no namespace.
        "namespace": (!i.is_node()).then_some(i.namespace.as_str()),
        "workload": {"kind": i.workload.kind, "name": i.workload.name, "revision": i.revision},
        "pods": i.pods,
        "pod": f.pod,
        "container": f.container,
        "init_container": f.init_container,
        "type": f.kind.as_str(),
        "pattern": f.kind.pattern(),
        "severity": f.kind.severity().as_str(),
        "reason": f.reason,
        "message": f.message,
        "exit_code": f.exit_code,
        "signal": f.signal,
        "restart_count": f.restart_count,
        "node": f.node,
        "first_seen": format_rfc3339(i.first_seen_ms.div_euclid(1000)),
        "detected_at": format_rfc3339(i.detected_ms.div_euclid(1000)),
        "last_seen": format_rfc3339(i.last_seen_ms.div_euclid(1000)),
        "state": i.state.as_str(),
        "diagnosis": diagnosis.map_or_else(|| json!({}), |d| json!(d)),
    });
    if i.is_node() {
        v["affected"] = json!(
            i.affected
                .iter()
                .map(|a| json!({
                    "namespace": a.namespace,
                    "workload": {"kind": a.workload.kind, "name": a.workload.name},
                    "pods": a.pods,
                    "incident": a.incident,
                }))
                .collect::<Vec<_>>()
        );
        v["affected_summary"] = json!(i.affected_summary());
    }
    v
}

/// `shop/Deployment/web`, or `Node/pi-3` for a node.
pub fn subject(i: &Incident) -> String {
    if i.is_node() {
        format!("{}/{}", i.workload.kind, i.workload.name)
    } else {
        format!("{}/{}/{}", i.namespace, i.workload.kind, i.workload.name)
    }
}

/// "14 pods of 9 workloads affected: shop/Deployment/web (2), …" for a
/// node incident, `None` for a pod incident or a node with nothing affected.
pub fn affected_text(i: &Incident, max: usize) -> Option<String> {
    let summary = i.affected_summary()?;
    let mut list: Vec<String> = i
        .affected
        .iter()
        .take(max)
        .map(|a| {
            format!(
                "{}/{}/{} ({})",
                a.namespace,
                a.workload.kind,
                a.workload.name,
                a.pods.len()
            )
        })
        .collect();
    if i.affected.len() > max {
        list.push(format!("and {} more", i.affected.len() - max));
    }
    Some(format!("{summary}: {}", list.join(", ")))
}

/// Text from the cluster on one line with no control characters. A
/// container's termination message (and what the rules quote from it) is the
/// application's to write: it must not move the cursor, recolour the terminal
/// or forge a line of the record.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One line for an alert from the backend's `StackAnalysisResponse`
/// (`rootCauseAnalysis{primaryCause, confidence}`, `recommendations[]`,
/// `analysis`): `primary cause (85%): first recommendation`.
pub fn backend_summary(analysis: &Value) -> Option<String> {
    let cause = analysis
        .pointer("/rootCauseAnalysis/primaryCause")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let confidence = analysis
        .pointer("/rootCauseAnalysis/confidence")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite() && *c >= 0.0)
        // Either a fraction or a percentage.
        .map(|c| if c <= 1.0 { c * 100.0 } else { c.min(100.0) });
    let recommendation = analysis
        .get("recommendations")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|r| match r {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => ["action", "title", "description", "recommendation"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str)),
            _ => None,
        })
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let mut line = match (cause, analysis.get("analysis").and_then(Value::as_str)) {
        (Some(c), _) => c.to_string(),
        (None, Some(a)) if !a.trim().is_empty() => a.trim().to_string(),
        _ => return None,
    };
    if let (Some(c), Some(_)) = (confidence, cause) {
        line.push_str(&format!(" ({c:.0}%)"));
    }
    if let Some(r) = recommendation {
        line.push_str(": ");
        line.push_str(r);
    }
    Some(cut_chars(&line.replace(['\n', '\r'], " "), 500))
}

/// The cause and the fix, indented under an incident line.
pub fn diagnosis_text(d: &Diagnosis) -> String {
    let mut out = format!(
        "    cause: {} ({:.0}%): {}",
        d.cause,
        d.confidence * 100.0,
        one_line(&d.summary)
    );
    if !d.fix.text.is_empty() {
        let _ = write!(out, "\n    fix: {}", one_line(&d.fix.text));
    }
    for c in &d.fix.commands {
        let _ = write!(out, "\n      $ {}", one_line(c));
    }
    out
}

/// One readable line for a transition (plus its diagnosis, indented).
pub fn transition_text(t: &Transition, diagnosis: Option<&Diagnosis>) -> String {
    let i = &t.incident;
    let f = &i.finding;
    let mut line = format!(
        "{} {:<8} {:<8} {} {}",
        format_rfc3339(t.at_ms.div_euclid(1000)),
        i.state.as_str().to_uppercase(),
        f.kind.severity().as_str(),
        f.kind.as_str(),
        subject(i),
    );
    let _ = write!(line, " id={}", i.id);
    if !i.is_node() {
        let _ = write!(line, " pods={}", i.pods.join(","));
    }
    if let Some(c) = &f.container {
        let _ = write!(
            line,
            " container={c}{}",
            if f.init_container { "(init)" } else { "" }
        );
    }
    if !f.reason.is_empty() {
        let _ = write!(line, " reason={}", f.reason);
    }
    if let Some(code) = f.exit_code {
        let _ = write!(line, " exit_code={code}");
    }
    if let Some(sig) = f.signal {
        let _ = write!(line, " signal={sig}");
    }
    if let Some(n) = f.restart_count {
        let _ = write!(line, " restarts={n}");
    }
    if let Some(node) = f.node.as_ref().filter(|_| !i.is_node()) {
        let _ = write!(line, " node={node}");
    }
    if let Some(a) = affected_text(i, 10) {
        let _ = write!(line, " [{a}]");
    }
    if !f.message.is_empty() && i.state.as_str() != "resolved" {
        let msg: String = f.message.chars().take(300).collect();
        let _ = write!(line, ": {}", one_line(&msg));
    }
    if let Some(d) = diagnosis.filter(|_| i.state.as_str() != "resolved") {
        line.push('\n');
        line.push_str(&diagnosis_text(d));
    }
    line
}

fn short(i: &Incident) -> String {
    if i.is_node() {
        return format!(
            "{} {} {} ({})",
            i.finding.kind.severity(),
            i.finding.kind,
            subject(i),
            i.affected_summary()
                .unwrap_or_else(|| "no pods affected".into())
        );
    }
    format!(
        "{} {} {} ({} pod{})",
        i.finding.kind.severity(),
        i.finding.kind,
        subject(i),
        i.pods.len(),
        if i.pods.len() == 1 { "" } else { "s" }
    )
}

/// One line saying what an alert is about (logs, the shutdown report).
pub fn alert_text(a: &Alert) -> String {
    match a {
        Alert::Incident { item, reminder } => single_text(&item.incident, *reminder),
        Alert::StartupSummary { items } => group_text(None, items),
        Alert::Storm { shared, items } => group_text(Some(shared), items),
    }
}

/// `open: critical CrashLoopBackOff shop/Deployment/web (1 pod)`.
pub fn single_text(i: &Incident, reminder: bool) -> String {
    format!(
        "{}{}: {}",
        if reminder { "still " } else { "" },
        i.state.as_str(),
        short(i)
    )
}

/// A start-up summary (`shared` None) or a storm, in one line.
pub fn group_text(shared: Option<&str>, items: &[Item]) -> String {
    let list = items
        .iter()
        .map(|i| short(&i.incident))
        .collect::<Vec<_>>()
        .join("; ");
    let n = items.len();
    match shared {
        None => format!(
            "already failing at start-up: {n} incident{}: {list}",
            if n == 1 { "" } else { "s" },
        ),
        Some(shared) => format!(
            "storm: {n} new incidents{}: {list}",
            if shared.is_empty() {
                String::new()
            } else {
                format!(" sharing {shared}")
            },
        ),
    }
}

/// Prints transitions on stdout. A closed stdout (`| head`) is not an error
/// worth dying for: the daemon keeps running for its other outputs.
pub fn print_transitions(
    out: &mut impl Write,
    json: bool,
    ts: &[(Transition, Option<Diagnosis>)],
) -> io::Result<()> {
    for (t, d) in ts {
        if json {
            let mut v = incident_json(&t.incident, d.as_ref());
            v["at"] = json!(format_rfc3339(t.at_ms.div_euclid(1000)));
            // Tells these lines from LOG_FORMAT=json's log lines ("record":"log")
            // where stdout and stderr end in one container log.
            v["record"] = json!("incident");
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", transition_text(t, d.as_ref()))?;
        }
    }
    out.flush()
}

/// The widest `scan` table line: a terminal of 120 columns.
pub const TABLE_WIDTH: usize = 120;

/// Fewer columns than this left for MESSAGE: the table leaves it out.
const MIN_MESSAGE: usize = 24;
/// The message in an incident's details.
const MAX_MESSAGE: usize = 300;

/// Columns other than MESSAGE never grow past these (cut with `…`).
const MAX_CELL: [usize; 8] = [16, 32, 26, 8, 4, 8, 4, 24];

/// `scan`'s text output: a table of at most `TABLE_WIDTH` columns, in the
/// order given (`scan` sorts by severity then age), then each incident's
/// diagnosis. The REASON shows only when it says more than the TYPE (as
/// the start of MESSAGE); RESTARTS are the representative container's.
pub fn scan_table(incidents: &[(Incident, Diagnosis)], now_ms: i64) -> String {
    let head = [
        "NAMESPACE",
        "WORKLOAD",
        "TYPE",
        "SEVERITY",
        "PODS",
        "RESTARTS",
        "AGE",
        "CAUSE",
        "MESSAGE",
    ];
    let rows: Vec<[String; 9]> = incidents
        .iter()
        .map(|(i, d)| {
            let f = &i.finding;
            let reason = one_line(&f.reason);
            let message = one_line(&f.message);
            let message = if reason.is_empty() || reason == f.kind.as_str() {
                message
            } else if message.is_empty() {
                reason
            } else {
                format!("{reason}: {message}")
            };
            // A node has no namespace; its PODS are the pods it affects.
            let (ns, pods) = if i.is_node() {
                let n: usize = i.affected.iter().map(|a| a.pods.len()).sum();
                ("-".to_string(), n)
            } else {
                (i.namespace.clone(), i.pods.len())
            };
            [
                ns,
                format!("{}/{}", i.workload.kind, i.workload.name),
                f.kind.as_str().to_string(),
                f.kind.severity().as_str().to_string(),
                pods.to_string(),
                f.restart_count
                    .map_or_else(|| "-".into(), |n| n.to_string()),
                format_age(now_ms - i.first_seen_ms),
                d.cause.to_string(),
                message,
            ]
        })
        .collect();
    let mut width = [0usize; 9];
    for (k, w) in width.iter_mut().enumerate() {
        let longest = rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
        *w = longest.max(head[k].len());
        if let Some(cap) = MAX_CELL.get(k) {
            *w = (*w).min(*cap).max(head[k].len());
        }
    }
    // Too wide even without MESSAGE (long names): the widest of NAMESPACE,
    // WORKLOAD and CAUSE gives way, a column at a time.
    let gaps = 7 * GAP.len();
    while width[..8].iter().sum::<usize>() + gaps > TABLE_WIDTH {
        let Some(k) = [0, 1, 7]
            .into_iter()
            .filter(|&k| width[k] > head[k].len())
            .max_by_key(|&k| width[k])
        else {
            break;
        };
        width[k] -= 1;
    }
    let fixed: usize = width[..8].iter().map(|w| w + GAP.len()).sum();
    width[8] = TABLE_WIDTH.saturating_sub(fixed);
    // Too narrow to say anything: the message stays in the details below.
    let columns = if width[8] < MIN_MESSAGE { 8 } else { 9 };
    // Every column at its cap is wider than the terminal: the names give way.
    if columns == 8 {
        let total = |w: &[usize; 9]| w[..8].iter().sum::<usize>() + 7 * GAP.len();
        for k in [1, 0, 7, 2] {
            let over = total(&width).saturating_sub(TABLE_WIDTH);
            let floor = head[k].len().max(8);
            width[k] -= over.min(width[k].saturating_sub(floor));
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 9]| {
        let mut l = String::new();
        for (k, c) in cells.iter().enumerate().take(columns) {
            let w = width[k];
            let cell = if c.chars().count() > w {
                cut_chars(c, w.saturating_sub(1))
            } else {
                c.to_string()
            };
            let _ = write!(l, "{cell:<w$}{GAP}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head);
    for r in &rows {
        line(std::array::from_fn(|k| r[k].as_str()));
    }
    for ((i, d), r) in incidents.iter().zip(&rows) {
        let f = &i.finding;
        let _ = write!(
            out,
            "\n{} {}{}{}:\n    message: {}\n{}\n",
            subject(i),
            f.kind.as_str(),
            i.revision
                .as_deref()
                .map(|r| format!(", revision {r}"))
                .unwrap_or_default(),
            f.container
                .as_deref()
                .map(|c| format!(", container {c}"))
                .unwrap_or_default(),
            cut_chars(&r[8], MAX_MESSAGE),
            diagnosis_text(d)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, FailureType, Finding, Fix, State};

    #[test]
    fn a_table_whose_every_column_is_at_its_cap_still_fits_the_terminal() {
        let mut f = Finding::test(FailureType::CreateContainerConfigError, "p");
        f.restart_count = Some(12_345_678);
        let mut i = Incident::test(f, State::Open);
        i.namespace = "n".repeat(40);
        i.workload.name = "w".repeat(80);
        let d = Diagnosis {
            cause: Cause::MissingConfigKey,
            summary: String::new(),
            confidence: 0.5,
            evidence: Vec::new(),
            fix: Fix {
                text: String::new(),
                commands: Vec::new(),
            },
            rule: "r",
            ai: None,
            backend: None,
            node_incident: None,
        };
        let now = i.first_seen_ms + 21 * 86_400_000;
        let text = scan_table(&[(i, d)], now);
        for line in text.lines().take_while(|l| !l.is_empty()) {
            assert!(line.chars().count() <= TABLE_WIDTH, "{line:?}");
        }
    }

    #[test]
    fn summarises_the_backend_analysis() {
        let a = json!({
            "stackOverview": {"totalPods": 1},
            "rootCauseAnalysis": {"primaryCause": "Missing DATABASE_URL", "confidence": 0.85, "evidence": []},
            "recommendations": ["Set DATABASE_URL in the web Deployment"],
            "analysis": "long text"
        });
        assert_eq!(
            backend_summary(&a).as_deref(),
            Some("Missing DATABASE_URL (85%): Set DATABASE_URL in the web Deployment")
        );
        assert_eq!(
            backend_summary(&json!({"analysis": "Just text\nhere"})).as_deref(),
            Some("Just text here")
        );
        assert_eq!(
            backend_summary(
                &json!({"rootCauseAnalysis": {"primaryCause": "x", "confidence": 70},
                            "recommendations": [{"action": "do y"}]})
            )
            .as_deref(),
            Some("x (70%): do y")
        );
        assert_eq!(backend_summary(&json!({})), None);
    }
}
