/*!
What an alert says, in plain text, before any service's format: a title, a
one-line headline, labelled facts and titled sections. The renderers of
Teams, Discord, Telegram, ntfy, PagerDuty, Opsgenie and Alertmanager all
start from this, so every destination tells the same story; each then
escapes and cuts it to its own limits. Pure (values in, values out).

Also the text helpers they share: cuts count characters, never split one,
and end in [`TRUNCATED`] so a reader knows there was more; control
characters become spaces.
*/

use std::fmt::Write as _;

use super::slack::{self, backend_text, cluster, lasted, severity_emoji, signal_name};
use super::{Alert, Item};
use crate::model::{Incident, Severity, State};
use crate::output;
use crate::util::time::format_rfc3339;

/// What a cut leaves behind in the other destinations' messages (Slack's own
/// cuts end at a word with a bare `…`).
pub const TRUNCATED: &str = "…[truncated]";

/// One titled part of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub title: String,
    /// At most `SECTION_LINES` of them, each at most `LINE_CHARS`: no
    /// renderer shows more, and a megabyte of log is not copied seven times.
    pub lines: Vec<String>,
    /// How many lines there were.
    pub total: usize,
    /// Shown as code (logs, commands, events): monospace, kept line by line.
    pub code: bool,
    /// When cut, keep the last lines (a log tail explains a crash).
    pub tail: bool,
}

/// Lines a section keeps, and characters of each (more than any renderer shows).
pub const SECTION_LINES: usize = 100;
pub const LINE_CHARS: usize = 1000;

impl Section {
    /// The head (or for `tail`, the end) of `lines`, each cut.
    pub fn new(title: &str, lines: &[String], code: bool, tail: bool) -> Section {
        let from = if tail {
            lines.len().saturating_sub(SECTION_LINES)
        } else {
            0
        };
        Section {
            title: title.to_string(),
            lines: lines[from..]
                .iter()
                .take(SECTION_LINES)
                .map(|l| clip(l, LINE_CHARS))
                .collect(),
            total: lines.len(),
            code,
            tail,
        }
    }
}

/// An alert in plain, unescaped text.
#[derive(Clone, Debug, PartialEq)]
pub struct Digest {
    /// `🔴 CrashLoopBackOff · shop/Deployment/web`, `✅ Resolved: …`.
    pub title: String,
    /// One line for notification previews and summaries.
    pub headline: String,
    pub severity: Severity,
    /// A resolution (for colours and wording).
    pub resolved: bool,
    pub facts: Vec<(&'static str, String)>,
    pub sections: Vec<Section>,
}

/// The digest of any alert.
pub fn digest(alert: &Alert) -> Digest {
    match alert {
        Alert::Incident { item, reminder } => single(item, *reminder),
        Alert::StartupSummary { items } => group(items, None),
        Alert::Storm { shared, items } => group(items, Some(shared)),
    }
}

fn rfc3339_ms(ms: i64) -> String {
    format_rfc3339(ms.div_euclid(1000))
}

/// `CrashLoopBackOff · shop/Deployment/web` with its status in front: the
/// severity's colour on every state but a resolution, as in Slack.
pub fn title(i: &Incident, reminder: bool) -> String {
    let (emoji, status) = match i.state {
        State::Resolved => ("✅", "Resolved: "),
        State::Updated if !reminder => (severity_emoji(i.severity()), "Updated: "),
        _ if reminder => (severity_emoji(i.severity()), "Still failing: "),
        _ => (severity_emoji(i.severity()), ""),
    };
    format!(
        "{emoji} {status}{} · {}",
        i.finding.kind,
        output::subject(i)
    )
}

/// `[edge-1] open: critical CrashLoopBackOff shop/Deployment/web (1 pod) — app_error_exit: …`
pub fn headline(item: &Item, reminder: bool) -> String {
    let i = &item.incident;
    let mut text = format!("[{}] {}", cluster(i), output::single_text(i, reminder));
    if let Some(d) = item
        .diagnosis
        .as_ref()
        .filter(|_| i.state != State::Resolved)
    {
        let summary = clip(&d.summary, 300);
        let _ = write!(text, " — {}: {}", d.cause, one_line(&summary));
    }
    one_line(&text)
}

fn single(item: &Item, reminder: bool) -> Digest {
    let i = &item.incident;
    let f = &i.finding;
    let resolved = i.state == State::Resolved;
    let mut facts = vec![
        ("Cluster", cluster(i).to_string()),
        ("Severity", i.severity().to_string()),
        (
            "State",
            if reminder {
                "still open"
            } else {
                i.state.as_str()
            }
            .to_string(),
        ),
        ("Namespace", i.namespace.clone()),
        (
            "Workload",
            format!("{}/{}", i.workload.kind, i.workload.name),
        ),
    ];
    let mut pods: Vec<String> = i.pods.iter().take(3).cloned().collect();
    if i.pods.len() > 3 {
        pods.push(format!("+{} more", i.pods.len() - 3));
    }
    if pods.is_empty() {
        pods.push(f.pod.clone());
    }
    facts.push(("Pods", format!("{} ({})", pods.join(", "), i.pods.len())));
    if let Some(c) = &f.container {
        let init = if f.init_container { " (init)" } else { "" };
        facts.push(("Container", format!("{c}{init}")));
    }
    // The reason when it says more than the type (`RunContainerError` for
    // ContainerStartError), not `CrashLoopBackOff` twice.
    if !f.reason.is_empty() && f.reason != f.kind.as_str() {
        facts.push(("Reason", f.reason.clone()));
    }
    match (f.exit_code, f.signal) {
        (Some(code), Some(sig)) => {
            facts.push(("Exit code", format!("{code} (signal {})", signal_name(sig))))
        }
        (Some(code), None) => facts.push(("Exit code", code.to_string())),
        (None, Some(sig)) => facts.push(("Signal", signal_name(sig))),
        (None, None) => {}
    }
    if let Some(n) = f.restart_count {
        facts.push(("Restarts", n.to_string()));
    }
    if let Some(n) = &f.node {
        facts.push(("Node", n.clone()));
    }
    facts.push(("First seen", rfc3339_ms(i.first_seen_ms)));
    if resolved {
        facts.push(("Lasted", lasted(i)));
    }
    facts.push(("Incident", format!("#{}", i.id)));

    let mut sections = Vec::new();
    let mut push = |title: &str, lines: &[String], code: bool, tail: bool| {
        if !lines.is_empty() {
            sections.push(Section::new(title, lines, code, tail));
        }
    };
    if resolved {
        push(
            "Resolved",
            &[format!(
                "{}/{} in {} recovered from {} after {} ({} → {}).",
                i.workload.kind,
                i.workload.name,
                i.namespace,
                f.kind,
                lasted(i),
                rfc3339_ms(i.first_seen_ms),
                rfc3339_ms(i.last_seen_ms)
            )],
            false,
            false,
        );
    } else if !f.message.is_empty() {
        // Only the lines that can show; a message can be a whole log tail.
        let lines: Vec<String> = f
            .message
            .lines()
            .take(21)
            .map(|l| clip(l, LINE_CHARS))
            .collect();
        push("Message", &lines, true, false);
    }
    if let Some(d) = item.diagnosis.as_ref().filter(|_| !resolved) {
        let mut cause = vec![format!(
            "{} ({:.0}% confidence): {}",
            d.cause,
            d.confidence * 100.0,
            clip(&d.summary, LINE_CHARS)
        )];
        cause.extend(d.evidence.iter().take(5).map(|e| format!("• {e}")));
        if d.evidence.len() > 5 {
            cause.push(format!("• …and {} more", d.evidence.len() - 5));
        }
        push("Root cause", &cause, false, false);
        if !d.fix.text.is_empty() {
            push("Fix", &[clip(&d.fix.text, LINE_CHARS)], false, false);
        }
        push("Commands", &d.fix.commands, true, false);
        if let Some(ai) = &d.ai {
            let answer = match ai.get("answer") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => ai.to_string(),
            };
            push("AI analysis", &[answer], false, false);
        }
        if let Some(b) = &d.backend {
            push("OpsCtrl analysis", &[backend_text(b)], false, false);
        }
    }
    if !resolved {
        // Not what the facts above already say (container, restarts, node).
        push(
            "Container facts",
            &slack::new_facts(&item.facts),
            true,
            false,
        );
    }
    push("Recent events", &item.events, true, false);
    push("Previous logs", &item.logs, true, true);
    Digest {
        title: title(i, reminder),
        headline: headline(item, reminder),
        severity: i.severity(),
        resolved,
        facts,
        sections,
    }
}

fn group(items: &[Item], shared: Option<&String>) -> Digest {
    let n = items.len();
    let plural = if n == 1 { "" } else { "s" };
    let title = match shared {
        None => format!("📣 Already failing at start-up: {n} incident{plural}"),
        Some(s) if s.is_empty() => format!("🌩 Storm: {n} new incident{plural}"),
        Some(s) => format!("🌩 Storm: {n} new incident{plural} · {s}"),
    };
    let severity = items
        .iter()
        .map(|i| i.incident.severity())
        .max()
        .unwrap_or(Severity::Informational);
    let cluster_name = items
        .first()
        .map_or("unnamed cluster", |i| cluster(&i.incident));
    let mut facts = vec![
        ("Cluster", cluster_name.to_string()),
        ("Worst severity", severity.to_string()),
    ];
    if let Some(s) = shared.filter(|s| !s.is_empty()) {
        facts.push(("Shared", s.clone()));
    }
    let lines: Vec<String> = items
        .iter()
        .map(|item| {
            let i = &item.incident;
            let mut line = format!(
                "{} {} {} {}/{} ({} pod{})",
                severity_emoji(i.severity()),
                i.finding.kind,
                i.namespace,
                i.workload.kind,
                i.workload.name,
                i.pods.len(),
                if i.pods.len() == 1 { "" } else { "s" },
            );
            if let Some(d) = &item.diagnosis {
                let _ = write!(line, " — {}: {}", d.cause, clip(&d.summary, 120));
            }
            one_line(&clip(&line, 500))
        })
        .collect();
    let headline = format!(
        "[{cluster_name}] {}",
        output::group_text(shared.map(String::as_str), items)
    );
    Digest {
        title,
        headline: one_line(&clip(&headline, 2000)),
        severity,
        resolved: false,
        facts,
        sections: vec![Section::new("Incidents", &lines, false, false)],
    }
}

/// Section budgets (characters per section) from generous to tiny, the
/// renderers try in turn until the whole message fits; the last, 0, leaves
/// the sections out (said so), so something always fits.
pub const LEVELS: [usize; 6] = [3000, 1500, 700, 300, 120, 0];

/// The first rendering, over `LEVELS`, that `fits`; the last one otherwise
/// (each renderer makes sure its last level always fits).
pub fn fitted<T>(render: impl Fn(usize) -> T, fits: impl Fn(&T) -> bool) -> T {
    for budget in &LEVELS[..LEVELS.len() - 1] {
        let v = render(*budget);
        if fits(&v) {
            return v;
        }
    }
    render(0)
}

/// A JSON value's encoded length in bytes.
pub fn json_len(v: &serde_json::Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

/// What a renderer says in place of sections it had no room for.
pub fn omitted_note(count: usize) -> String {
    format!("{TRUNCATED} {count} section(s) left out to fit the message size")
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// Control characters (other than newline and tab) as spaces.
pub fn clean(c: char) -> char {
    if c.is_control() && c != '\n' && c != '\t' {
        ' '
    } else {
        c
    }
}

/// Newlines and tabs as spaces.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { clean(c) })
        .collect()
}

/// `s`, cleaned, in at most `max` characters, ending with the marker when cut.
pub fn clip(s: &str, max: usize) -> String {
    clip_escaped(s, max, |out, c| out.push(c))
}

/// `s` escaped by `push` (which appends one character's escaped form), in
/// at most `max` characters of output, ending with the marker when cut. An
/// escape is never split. Reads no further than the cut, so a megabyte of
/// log costs nothing.
pub fn clip_escaped(s: &str, max: usize, push: fn(&mut String, char)) -> String {
    let room = max.saturating_sub(TRUNCATED.chars().count());
    let mut out = String::new();
    let mut used = 0;
    // Where `out` stood when it last fit in `room`: the cut, if one is needed.
    let mut cut_at = (0, 0);
    let mut piece = String::new();
    for c in s.chars().map(clean) {
        piece.clear();
        push(&mut piece, c);
        used += piece.chars().count();
        if used > max {
            out.truncate(cut_at.0);
            if cut_at.1 + TRUNCATED.chars().count() > max {
                // Not even the marker fits: as much of it as does.
                return TRUNCATED.chars().take(max).collect();
            }
            out.push_str(TRUNCATED);
            return out;
        }
        out.push_str(&piece);
        if used <= room {
            cut_at = (out.len(), used);
        }
    }
    out
}

/// A section's lines in at most `max` characters (newlines counted), each
/// line at most `line_max`; the head (or for `tail`, the end) is kept and
/// what is left out is said.
pub fn section_text(
    sec: &Section,
    max: usize,
    line_max: usize,
    push: fn(&mut String, char),
) -> String {
    // The note below is at most this long, its newline included, so the
    // lines kept plus the note never pass `max` (no cut after escaping).
    const NOTE_ROOM: usize = 50;
    let room = max.saturating_sub(NOTE_ROOM);
    let mut kept: Vec<String> = Vec::new();
    let mut used = 0;
    let order: Box<dyn Iterator<Item = &String>> = if sec.tail {
        Box::new(sec.lines.iter().rev())
    } else {
        Box::new(sec.lines.iter())
    };
    for line in order {
        let sep = usize::from(!kept.is_empty());
        let avail = room.saturating_sub(used + sep);
        // A sliver of a line says nothing; the note says what is left.
        if avail == 0 || (avail < 20 && !kept.is_empty()) {
            break;
        }
        let l = clip_escaped(line, line_max.min(avail), push);
        used += sep + l.chars().count();
        kept.push(l);
    }
    let left = sec.total.max(sec.lines.len()) - kept.len();
    if sec.tail {
        kept.reverse();
    }
    if left > 0 {
        let note = clip(&format!("{TRUNCATED} {left} more line(s)"), max);
        if sec.tail {
            kept.insert(0, note);
        } else {
            kept.push(note);
        }
    }
    kept.join("\n")
}

/// `s` with ```` ``` ```` broken by zero-width spaces, so content cannot
/// close a code block early.
pub fn defuse_fences(s: &str) -> String {
    s.replace("```", "`\u{200b}`\u{200b}`")
}

/// A stable key for an incident across daemon restarts: the cluster, the
/// workload and when the failure began by the cluster's evidence (the
/// incident id is a per-process counter). FNV-1a, so it never changes with
/// the Rust version.
pub fn stable_key(i: &Incident) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        i.cluster, i.namespace, i.workload.kind, i.workload.name, i.first_seen_ms
    );
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("opsctrl-{h:016x}")
}

/// `template` with `{namespace}`, `{workload}` (`Kind/name`), `{pod}` and
/// `{cluster}` replaced by the incident's values, percent-encoded.
pub fn link(template: &str, i: &Incident) -> String {
    template
        .replace("{namespace}", &encode(&i.namespace))
        .replace(
            "{workload}",
            &encode(&format!("{}/{}", i.workload.kind, i.workload.name)),
        )
        .replace("{pod}", &encode(&i.finding.pod))
        .replace("{cluster}", &encode(&i.cluster))
}

/// Percent-encoding of everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureType, Finding};

    #[test]
    fn clips_are_visible_and_never_split_an_escape() {
        assert_eq!(clip("héllo", 10), "héllo");
        let c = clip(&"x".repeat(100), 20);
        assert_eq!(c.chars().count(), 20);
        assert!(c.ends_with(TRUNCATED));
        let amp = |out: &mut String, c: char| {
            if c == '&' {
                out.push_str("&amp;")
            } else {
                out.push(c)
            }
        };
        let c = clip_escaped(&"&".repeat(100), 20, amp);
        assert!(c.chars().count() <= 20 && c.ends_with(TRUNCATED), "{c}");
        assert_eq!(c.trim_end_matches(TRUNCATED).replace("&amp;", ""), "");
        assert_eq!(clip("abc\u{7}d", 10), "abc d");
        assert!(clip("abcdef", 3).chars().count() <= 3);
    }

    #[test]
    fn sections_keep_the_head_or_the_tail_and_count_the_rest() {
        let lines: Vec<String> = (0..300).map(|n| format!("line {n}")).collect();
        let sec = Section::new("Logs", &lines, true, true);
        assert_eq!((sec.lines.len(), sec.total), (SECTION_LINES, 300));
        let t = section_text(&sec, 200, 50, |o, c| o.push(c));
        assert!(t.chars().count() <= 200);
        assert!(t.ends_with("line 299") && t.contains("more line(s)"), "{t}");
        let head = Section::new("Logs", &lines, true, false);
        let t = section_text(&head, 200, 50, |o, c| o.push(c));
        assert!(
            t.starts_with("line 0") && t.ends_with("more line(s)"),
            "{t}"
        );
    }

    #[test]
    fn the_stable_key_ignores_the_process_counter() {
        let a = Incident::test(Finding::test(FailureType::OOMKilled, "web-1"), State::Open);
        let b = Incident {
            id: 99,
            state: State::Resolved,
            ..a.clone()
        };
        assert_eq!(stable_key(&a), stable_key(&b));
        let c = Incident {
            first_seen_ms: a.first_seen_ms + 1,
            ..a.clone()
        };
        assert_ne!(stable_key(&a), stable_key(&c));
        assert!(stable_key(&a).len() <= 64);
    }

    #[test]
    fn links_encode_what_they_substitute() {
        let i = Incident::test(Finding::test(FailureType::OOMKilled, "web 1"), State::Open);
        let l = link("https://grafana/d?ns={namespace}&pod={pod}", &i);
        assert!(l.ends_with("&pod=web%201"), "{l}");
    }
}
