/*!
The record: every incident transition on stdout, as a readable line or as
one JSON object per line (`-o json`), and `scan`'s table or JSON array.

The JSON is the stable schema documented in the README; later features add
to `diagnosis` but never rename or drop a field.
*/

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::detect::incident::{Incident, Notification, Transition};
use crate::time::format_rfc3339;

/// The stable JSON of an incident in a given state.
pub fn incident_json(i: &Incident) -> Value {
    let f = &i.finding;
    json!({
        "cluster": i.cluster,
        "namespace": i.namespace,
        "workload": {"kind": i.workload.kind, "name": i.workload.name},
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
        "last_seen": format_rfc3339(i.last_seen_ms.div_euclid(1000)),
        "state": i.state.as_str(),
        "diagnosis": {},
    })
}

/// One readable line for a transition.
pub fn transition_text(t: &Transition) -> String {
    let i = &t.incident;
    let f = &i.finding;
    let mut line = format!(
        "{} {:<8} {:<8} {} {}/{}/{}",
        format_rfc3339(t.at_ms.div_euclid(1000)),
        i.state.as_str().to_uppercase(),
        f.kind.severity().as_str(),
        f.kind.as_str(),
        i.namespace,
        i.workload.kind,
        i.workload.name,
    );
    let _ = write!(line, " pods={}", i.pods.join(","));
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
    if let Some(node) = &f.node {
        let _ = write!(line, " node={node}");
    }
    if !f.message.is_empty() && i.state.as_str() != "resolved" {
        let msg: String = f.message.chars().take(300).collect();
        let _ = write!(line, ": {}", msg.replace('\n', " "));
    }
    line
}

fn short(i: &Incident) -> String {
    format!(
        "{} {} {}/{}/{} ({} pod{})",
        i.finding.kind.severity(),
        i.finding.kind,
        i.namespace,
        i.workload.kind,
        i.workload.name,
        i.pods.len(),
        if i.pods.len() == 1 { "" } else { "s" }
    )
}

/// One line saying what a notification would tell a human.
pub fn notification_text(n: &Notification) -> String {
    match n {
        Notification::Single { incident, reminder } => format!(
            "{}{}: {}",
            if *reminder { "still " } else { "" },
            incident.state.as_str(),
            short(incident)
        ),
        Notification::StartupSummary { incidents } => format!(
            "already failing at start-up: {} incident{}: {}",
            incidents.len(),
            if incidents.len() == 1 { "" } else { "s" },
            incidents.iter().map(short).collect::<Vec<_>>().join("; ")
        ),
        Notification::Storm { shared, incidents } => format!(
            "storm: {} new incidents{}: {}",
            incidents.len(),
            if shared.is_empty() {
                String::new()
            } else {
                format!(" sharing {shared}")
            },
            incidents.iter().map(short).collect::<Vec<_>>().join("; ")
        ),
    }
}

/// Prints transitions on stdout. A closed stdout (`| head`) is not an error
/// worth dying for: the daemon keeps running for its other outputs.
pub fn print_transitions(out: &mut impl Write, json: bool, ts: &[Transition]) -> io::Result<()> {
    for t in ts {
        if json {
            let mut v = incident_json(&t.incident);
            v["at"] = json!(format_rfc3339(t.at_ms.div_euclid(1000)));
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{}", transition_text(t))?;
        }
    }
    out.flush()
}

/// `scan`'s table.
pub fn scan_table(incidents: &[Incident]) -> String {
    let rows: Vec<[String; 7]> = incidents
        .iter()
        .map(|i| {
            let f = &i.finding;
            [
                i.namespace.clone(),
                format!("{}/{}", i.workload.kind, i.workload.name),
                f.kind.as_str().to_string(),
                f.kind.severity().as_str().to_string(),
                i.pods.len().to_string(),
                f.reason.clone(),
                f.message
                    .chars()
                    .take(80)
                    .collect::<String>()
                    .replace('\n', " "),
            ]
        })
        .collect();
    let head = [
        "NAMESPACE",
        "WORKLOAD",
        "TYPE",
        "SEVERITY",
        "PODS",
        "REASON",
        "MESSAGE",
    ];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}   ", w = width[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}
