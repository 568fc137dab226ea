/*!
Slack Block Kit rendering of an [`Alert`]: pure (values in, JSON out), shared
by the incoming-webhook and bot sinks. The body is `{"text", "blocks"}`;
`text` is the fallback Slack shows in notifications.

Made to be read in five seconds: the header says what fails where
(`🔴 CrashLoopBackOff · shop/Deployment/api`, the severity's colour on every
state but a resolution's ✅), the first fields say for how long ("12 min,
since 14:03 UTC"; the exact timestamp is in the context line) and link to
the workload in a dashboard (`DASHBOARD_URL_TEMPLATE`), and no fact is shown
twice (the namespace and workload are in the header, the container, restarts
and node in the fields, so the container facts leave them out). Times are
relative to a `now` passed in (`Style`), so rendering stays pure.

Slack refuses a whole message when one block breaks a limit
(`invalid_blocks`), so every text is cut to Slack's documented limits, at a
word boundary, with a visible `…`, and the whole body is kept under [`BODY_MAX`]
by rendering again with smaller budgets (logs and events shrink first, then
evidence and prose, then names and lists): an alert is never dropped for its
size.

- Text limits count characters (Unicode scalar values), never bytes; a cut
  never splits a character or an `&amp;` entity.
- Pod-supplied text is escaped (`&`, `<`, `>`) as Slack requires, which also
  keeps a pod message from mentioning `<!channel>`. Control characters
  become spaces.
- Code blocks are fenced with ```` ``` ```` on their own lines, and any
  ```` ``` ```` inside the content is broken with zero-width spaces, so a log
  line cannot close the block early.
*/

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Alert, Item};
use crate::model::Diagnosis;
use crate::model::Severity;
use crate::model::{Incident, State};
use crate::output;
use crate::util::text::word_end;
use crate::util::time::format_rfc3339;
use crate::util::url_template::UrlTemplate;

/// What a rendering needs besides the alert: the time relative times are
/// counted to, and the dashboard link template.
#[derive(Clone, Copy, Debug)]
pub struct Style<'a> {
    pub now_ms: i64,
    pub dashboard: Option<&'a UrlTemplate>,
}

impl Style<'_> {
    /// Now, with no dashboard link.
    pub fn now() -> Style<'static> {
        Style {
            now_ms: crate::util::time::now_ms(),
            dashboard: None,
        }
    }
}

/// Unix milliseconds as whole-second RFC 3339.
fn format_rfc3339_ms(ms: i64) -> String {
    format_rfc3339(ms.div_euclid(1000))
}

/// Header block text (plain_text), characters.
pub const HEADER_MAX: usize = 150;
/// Section block text, characters.
pub const SECTION_MAX: usize = 3000;
/// Fields in one section.
pub const FIELDS_MAX: usize = 10;
/// One field's text, characters.
pub const FIELD_MAX: usize = 2000;
/// Blocks in one message.
pub const BLOCKS_MAX: usize = 50;
/// Elements in one context block.
pub const CONTEXT_ELEMENTS_MAX: usize = 10;
/// The whole JSON body, bytes: Slack refuses messages around 40 KB, so this
/// leaves room for the bot's `channel`/`thread_ts` and for Slack's own
/// accounting.
pub const BODY_MAX: usize = 35_000;
/// The fallback `text`, characters (Slack advises ≤ 4000).
pub const TEXT_MAX: usize = 3000;
/// What a cut leaves behind, so readers know there was more.
pub const TRUNCATED: &str = "…";

/// One log or event line, characters (a few long lines must not hide the rest).
const LINE_MAX: usize = 300;
/// One evidence quote, characters.
const EVIDENCE_MAX: usize = 200;
/// Pod names listed in the pods field; the rest are counted.
const PODS_LISTED: usize = 3;
/// Workloads a node incident lists by name; the rest are counted.
const AFFECTED_LISTED: usize = 12;
/// One incident's line in a start-up summary or storm, characters.
const LIST_LINE_MAX: usize = 500;

/// How much of each part a rendering may use. The levels shrink what
/// matters least first: logs and events, then
/// evidence and prose, then names and list lengths.
#[derive(Clone, Copy, Debug)]
struct Budget {
    log_lines: usize,
    log_chars: usize,
    event_lines: usize,
    event_chars: usize,
    evidence: usize,
    prose: usize,
    commands: usize,
    backend: usize,
    name: usize,
    list: usize,
    text: usize,
}

const FULL: Budget = Budget {
    log_lines: 40,
    log_chars: 2500,
    event_lines: 8,
    event_chars: 1500,
    evidence: 5,
    prose: 1500,
    commands: 2000,
    backend: 800,
    name: 200,
    list: 30,
    text: TEXT_MAX,
};

const LEVELS: [Budget; 6] = [
    FULL,
    Budget {
        log_lines: 15,
        log_chars: 1000,
        event_lines: 5,
        event_chars: 700,
        text: 1500,
        ..FULL
    },
    Budget {
        log_lines: 5,
        log_chars: 300,
        event_lines: 3,
        event_chars: 300,
        text: 1000,
        ..FULL
    },
    Budget {
        log_lines: 0,
        log_chars: 0,
        event_lines: 0,
        event_chars: 0,
        prose: 1000,
        list: 20,
        text: 600,
        ..FULL
    },
    Budget {
        log_lines: 0,
        log_chars: 0,
        event_lines: 0,
        event_chars: 0,
        evidence: 2,
        prose: 400,
        commands: 800,
        backend: 200,
        name: 100,
        list: 15,
        text: 400,
    },
    // Small enough that even 4-byte characters everywhere stay under BODY_MAX.
    Budget {
        log_lines: 0,
        log_chars: 0,
        event_lines: 0,
        event_chars: 0,
        evidence: 0,
        prose: 150,
        commands: 300,
        backend: 0,
        name: 60,
        list: 10,
        text: 200,
    },
];

/// The message for an alert: `{"text", "blocks"}`, inside every Slack limit,
/// with times relative to now and no dashboard link.
pub fn render(alert: &Alert) -> Value {
    render_with(alert, &Style::now())
}

/// `render`, at `style.now_ms` and with `style.dashboard`'s link.
pub fn render_with(alert: &Alert, style: &Style) -> Value {
    match alert {
        Alert::Incident { item, reminder } => {
            if item.incident.state == State::Resolved {
                fitted(|b| resolved_message(&item.incident, style, b))
            } else {
                fitted(|b| incident_message(item, *reminder, style, b))
            }
        }
        Alert::StartupSummary { items } => fitted(|b| group_message(items, None, style, b)),
        Alert::Storm { shared, items } => fitted(|b| group_message(items, Some(shared), style, b)),
    }
}

/// A thread parent showing an incident's current state (the bot refreshes
/// its first message with this): full details, with a ✅ header once resolved.
pub fn render_parent(item: &Item) -> Value {
    render_parent_with(item, &Style::now())
}

/// `render_parent` at `style`.
pub fn render_parent_with(item: &Item, style: &Style) -> Value {
    fitted(|b| incident_message(item, false, style, b))
}

/// The first budget level whose rendering fits in `BODY_MAX` bytes.
fn fitted(render: impl Fn(&Budget) -> Value) -> Value {
    for b in &LEVELS {
        let v = render(b);
        if body_len(&v) <= BODY_MAX {
            return v;
        }
    }
    // Not reachable with the last level's budgets; kept so an oversized body
    // can never be sent whatever the budgets become.
    json!({
        "text": TRUNCATED,
        "blocks": [section(format!("Alert too large to show {TRUNCATED}"))],
    })
}

fn body_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(usize::MAX, |b| b.len())
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// `shop/Deployment/web`: where it fails, as the header names it.
fn place(i: &Incident) -> String {
    output::subject(i)
}

fn incident_message(item: &Item, reminder: bool, style: &Style, b: &Budget) -> Value {
    let i = &item.incident;
    let f = &i.finding;
    // The severity's colour on every state; only a resolution is green.
    let (emoji, status) = match i.state {
        State::Resolved => ("✅", Some("Resolved")),
        State::Updated if !reminder => (severity_emoji(i.severity()), Some("Updated")),
        _ => (
            severity_emoji(i.severity()),
            reminder.then_some("Still failing"),
        ),
    };
    let mut blocks = vec![header(&format!(
        "{emoji} {}{} · {}",
        status.map(|s| format!("{s}: ")).unwrap_or_default(),
        f.kind,
        place(i)
    ))];

    let mut context = vec![
        format!("*Cluster:* {}", esc_clip(cluster(i), b.name)),
        format!("*Severity:* {}", i.severity()),
        format!(
            "*State:* {}",
            if reminder {
                "still open"
            } else {
                i.state.as_str()
            }
        ),
        format!("first seen {}", format_rfc3339_ms(i.first_seen_ms)),
    ];
    if i.state == State::Resolved {
        context.push(format!("*Lasted:* {}", lasted(i)));
    }
    context.push(format!("incident #{}", i.id));
    blocks.push(context_block(context));

    blocks.push(fields_block(fields(i, style, b)));
    if let Some(list) = affected_block(i, b) {
        blocks.push(list);
    }

    if !f.message.is_empty() && i.state != State::Resolved {
        // Only the lines that can show; a message can be a whole log tail.
        let lines: Vec<String> = f.message.lines().take(21).map(str::to_string).collect();
        blocks.push(section(format!(
            "*Message*\n{}",
            code_block(&lines, 20, b.prose)
        )));
    }

    if let Some(d) = &item.diagnosis {
        diagnosis_blocks(d, b, &mut blocks);
    }

    let facts = new_facts(&item.facts);
    if !facts.is_empty() && i.state != State::Resolved {
        // Image, resources, probes, env names: what a fix is checked against.
        blocks.push(if b.event_lines > 0 {
            section(format!(
                "*Container facts*\n{}",
                code_block(&facts, b.event_lines + 4, b.event_chars)
            ))
        } else {
            omitted("Container facts", facts.len())
        });
    }
    if !item.events.is_empty() {
        blocks.push(if b.event_lines > 0 {
            section(format!(
                "*Recent events*\n{}",
                code_block(&item.events, b.event_lines, b.event_chars)
            ))
        } else {
            omitted("Events", item.events.len())
        });
    }
    if !item.logs.is_empty() {
        let title = match &f.container {
            Some(c) => format!("*Previous logs* ({})", inline_code(c, b.name)),
            None => "*Previous logs*".to_string(),
        };
        // The tail is what explains a crash: show the last lines.
        let tail = &item.logs[item.logs.len().saturating_sub(b.log_lines)..];
        blocks.push(if b.log_lines > 0 {
            section(format!(
                "{title}\n{}",
                code_block_tail(tail, item.logs.len(), b.log_chars)
            ))
        } else {
            omitted("Log excerpt", item.logs.len())
        });
    }

    message(fallback_single(item, reminder, b), blocks)
}

/// Fact labels the fields already show (`container: web`, `restarts: 4`, `node: …`).
pub const IN_FIELDS: &[&str] = &[
    "container",
    "restarts",
    "node",
    "namespace",
    "pod",
    "workload",
];

/// The container facts not shown elsewhere in the message.
pub fn new_facts(facts: &[String]) -> Vec<String> {
    facts
        .iter()
        .filter(|l| {
            let label = l.split_once(':').map_or("", |(k, _)| k.trim());
            !IN_FIELDS.contains(&label)
        })
        .cloned()
        .collect()
}

/// How long it has been failing, in words, and since when (UTC): `12 min,
/// since 14:03 UTC`; the date is added when it is not `now`'s day.
pub fn failing_for(first_seen_ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - first_seen_ms).max(0) / 1000;
    let span = duration_words(secs);
    let first = format_rfc3339_ms(first_seen_ms);
    let now = format_rfc3339_ms(now_ms);
    let (day, time) = (
        first.get(..10).unwrap_or(""),
        first.get(11..16).unwrap_or(""),
    );
    if now.get(..10) == Some(day) {
        format!("{span}, since {time} UTC")
    } else {
        format!("{span}, since {day} {time} UTC")
    }
}

/// `40 s`, `12 min`, `2 h 5 min`, `3 days 4 h`.
pub fn duration_words(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (1, 0, _) => "1 day".to_string(),
        (1, h, _) => format!("1 day {h} h"),
        (d, 0, _) => format!("{d} days"),
        (d, h, _) => format!("{d} days {h} h"),
    }
}

/// A Slack link (`<url|label>`) to the workload in the dashboard.
fn dashboard_link(i: &Incident, style: &Style, b: &Budget) -> Option<String> {
    let t = style.dashboard?;
    let url = t.fill(cluster(i), &i.namespace, &i.workload.kind, &i.workload.name);
    // `|` and `>` end a Slack link: the values are percent-encoded, so only
    // the template's own text could hold them.
    let url = url
        .replace('|', "%7C")
        .replace('>', "%3E")
        .replace('<', "%3C");
    let label =
        esc_clip(&format!("{}/{}", i.workload.kind, i.workload.name), b.name).replace('|', "¦");
    Some(format!("<{url}|{label}>"))
}

fn diagnosis_blocks(d: &Diagnosis, b: &Budget, blocks: &mut Vec<Value>) {
    let mut cause = format!(
        "*Root cause:* {} ({:.0}% confidence)\n{}",
        inline_code(d.cause.as_str(), 60),
        d.confidence * 100.0,
        esc_clip(&d.summary, b.prose)
    );
    for e in d.evidence.iter().take(b.evidence) {
        let _ = write!(cause, "\n• {}", one_line(&esc_clip(e, EVIDENCE_MAX)));
    }
    if d.evidence.len() > b.evidence && b.evidence > 0 {
        let _ = write!(cause, "\n• …and {} more", d.evidence.len() - b.evidence);
    }
    blocks.push(section(cause));

    if !d.fix.text.is_empty() {
        blocks.push(section(format!(
            "*Fix:* {}",
            esc_clip(&d.fix.text, b.prose)
        )));
    }
    if !d.fix.commands.is_empty() {
        blocks.push(section(format!(
            "*Commands*\n{}",
            code_block(&d.fix.commands, 20, b.commands)
        )));
    }
    if let Some(ai) = &d.ai {
        let model = ai.get("model").and_then(Value::as_str).unwrap_or("");
        let answer = match ai.get("answer") {
            Some(Value::String(s)) => esc_clip(s, b.prose),
            Some(other) => esc_clip(&other.to_string(), b.prose),
            None => esc_clip(&ai.to_string(), b.prose),
        };
        let title = if model.is_empty() {
            "*AI analysis*".to_string()
        } else {
            format!("*AI analysis* ({})", esc_clip(model, 60))
        };
        blocks.push(section(format!("{title}\n{answer}")));
    }
    if let Some(backend) = &d.backend {
        blocks.push(if b.backend > 0 {
            section(format!(
                "*OpsCtrl analysis*\n{}",
                esc_clip(&backend_text(backend), b.backend)
            ))
        } else {
            omitted("OpsCtrl analysis", 1)
        });
    }
}

/// A backend answer in words: the `StackAnalysisResponse` one-liner (cause,
/// confidence, first recommendation), else a summary-like string, else its
/// compact JSON.
pub fn backend_text(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if let Some(line) = crate::output::backend_summary(v) {
        return line;
    }
    ["summary", "analysis", "answer", "message"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map_or_else(|| v.to_string(), str::to_string)
}

/// A node incident's affected workloads, one line each (the first
/// `AFFECTED_LISTED`), under "14 pods of 9 workloads affected".
fn affected_block(i: &Incident, b: &Budget) -> Option<Value> {
    let summary = i.affected_summary()?;
    let mut lines: Vec<String> = i
        .affected
        .iter()
        .take(AFFECTED_LISTED)
        .map(|a| {
            let mut pods: Vec<String> = a.pods.iter().take(3).map(|p| esc_clip(p, 80)).collect();
            if a.pods.len() > 3 {
                pods.push(format!("+{} more", a.pods.len() - 3));
            }
            format!(
                "• {} {}: {}",
                inline_code(&a.namespace, b.name.min(80)),
                esc_clip(
                    &format!("{}/{}", a.workload.kind, a.workload.name),
                    b.name.min(120)
                ),
                pods.join(", ")
            )
        })
        .collect();
    if i.affected.len() > AFFECTED_LISTED {
        lines.push(format!(
            "… and {} more workloads",
            i.affected.len() - AFFECTED_LISTED
        ));
    }
    Some(section(clip_mrkdwn(
        format!("*{summary}*\n{}", lines.join("\n")),
        b.prose,
    )))
}

fn fields(i: &Incident, style: &Style, b: &Budget) -> Vec<String> {
    let f = &i.finding;
    // The namespace and workload are in the header; how long it has been
    // failing comes first here.
    let mut out = Vec::new();
    if i.state != State::Resolved {
        out.push(field(
            "Failing for",
            &failing_for(i.first_seen_ms, style.now_ms),
        ));
    }
    if let Some(link) = dashboard_link(i, style, b) {
        out.push(field("Dashboard", &link));
    }
    if i.is_node() {
        out.push(field("Node", &inline_code(&i.workload.name, b.name)));
        if !f.reason.is_empty() {
            out.push(field("Reason", &inline_code(&f.reason, b.name)));
        }
        if let Some(s) = i.affected_summary() {
            out.push(field("Affected", &s));
        }
        return out;
    }
    let mut pods: Vec<String> = i
        .pods
        .iter()
        .take(PODS_LISTED)
        .map(|p| inline_code(p, b.name.min(80)))
        .collect();
    if i.pods.len() > PODS_LISTED {
        pods.push(format!("+{} more", i.pods.len() - PODS_LISTED));
    }
    if pods.is_empty() {
        pods.push(inline_code(&f.pod, b.name.min(80)));
    }
    out.push(field(&format!("Pods ({})", i.pods.len()), &pods.join(", ")));
    if let Some(c) = &f.container {
        let init = if f.init_container { " (init)" } else { "" };
        out.push(field(
            "Container",
            &format!("{}{init}", inline_code(c, b.name)),
        ));
    }
    if !f.reason.is_empty() && f.reason != f.kind.as_str() {
        out.push(field("Reason", &inline_code(&f.reason, b.name)));
    }
    match (f.exit_code, f.signal) {
        (Some(code), Some(sig)) => out.push(field(
            "Exit code",
            &format!("`{code}` (signal {})", signal_name(sig)),
        )),
        (Some(code), None) => out.push(field("Exit code", &format!("`{code}`"))),
        (None, Some(sig)) => out.push(field("Signal", &signal_name(sig))),
        (None, None) => {}
    }
    if let Some(n) = f.restart_count {
        out.push(field("Restarts", &n.to_string()));
    }
    if let Some(node) = &f.node {
        out.push(field("Node", &inline_code(node, b.name)));
    }
    out
}

fn resolved_message(i: &Incident, style: &Style, b: &Budget) -> Value {
    let f = &i.finding;
    let clock = |ms: i64| {
        let t = format_rfc3339_ms(ms);
        t.get(11..16).unwrap_or("").to_string()
    };
    let mut line = format!(
        "Recovered from {} after {} ({} → {} UTC).",
        inline_code(f.kind.as_str(), 40),
        lasted(i),
        clock(i.first_seen_ms),
        clock(i.last_seen_ms),
    );
    if let Some(link) = dashboard_link(i, style, b) {
        let _ = write!(line, " {link}");
    }
    let blocks = vec![
        header(&format!("✅ Resolved: {} · {}", f.kind, place(i))),
        section(line),
        context_block(vec![
            format!("*Cluster:* {}", esc_clip(cluster(i), b.name)),
            format!(
                "{} → {}",
                format_rfc3339_ms(i.first_seen_ms),
                format_rfc3339_ms(i.last_seen_ms)
            ),
            format!("incident #{}", i.id),
        ]),
    ];
    let text = format!("[{}] {}", cluster(i), output::single_text(i, false));
    message(esc_clip(&text, b.text), blocks)
}

/// A start-up summary (`shared` = None) or a storm: one line per incident.
fn group_message(items: &[Item], shared: Option<&String>, style: &Style, b: &Budget) -> Value {
    let n = items.len();
    let plural = if n == 1 { "" } else { "s" };
    let head = match shared {
        None => format!("📣 Already failing at start-up: {n} incident{plural}"),
        Some(s) if s.is_empty() => format!("🌩 Storm: {n} new incident{plural}"),
        Some(s) => format!("🌩 Storm: {n} new incident{plural} · {s}"),
    };
    let mut blocks = vec![header(&head)];

    let worst = items
        .iter()
        .map(|i| i.incident.severity())
        .max()
        .unwrap_or(Severity::Informational);
    let mut context = vec![
        format!(
            "*Cluster:* {}",
            esc_clip(
                items
                    .first()
                    .map_or("unnamed cluster", |i| cluster(&i.incident)),
                b.name
            )
        ),
        format!("*Worst severity:* {worst}"),
    ];
    if let Some(s) = shared.filter(|s| !s.is_empty()) {
        context.push(format!("*Shared:* {}", esc_clip(s, b.name)));
    }
    blocks.push(context_block(context));

    let mut lines: Vec<String> = items
        .iter()
        .take(b.list)
        .map(|i| list_line(i, style, b))
        .collect();
    if n > b.list {
        lines.push(format!("…and {} more", n - b.list));
    }
    // Pack lines into as few sections as the section limit allows.
    let mut text = String::new();
    for line in lines {
        if !text.is_empty() && text.chars().count() + 1 + line.chars().count() > SECTION_MAX {
            blocks.push(section(std::mem::take(&mut text)));
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
    }
    if !text.is_empty() {
        blocks.push(section(text));
    }

    let cluster_name = items
        .first()
        .map_or("unnamed cluster", |i| cluster(&i.incident));
    let text = format!(
        "[{cluster_name}] {}",
        output::group_text(shared.map(String::as_str), items)
    );
    message(esc_clip(&text, b.text), blocks)
}

/// `🔴 *CrashLoopBackOff* `shop` Deployment/web (2 pods, 12 min) — `app_error_exit`: summary`
fn list_line(item: &Item, style: &Style, b: &Budget) -> String {
    let i = &item.incident;
    let workload = esc_clip(
        &format!("{}/{}", i.workload.kind, i.workload.name),
        b.name.min(120),
    );
    let workload = match style.dashboard {
        Some(_) => dashboard_link(i, style, b).unwrap_or(workload),
        None => workload,
    };
    let mut line = format!(
        "{} *{}* {} {} ({} pod{}, {})",
        severity_emoji(i.severity()),
        i.finding.kind,
        inline_code(&i.namespace, b.name.min(80)),
        workload,
        i.pods.len(),
        if i.pods.len() == 1 { "" } else { "s" },
        duration_words((style.now_ms - i.first_seen_ms).max(0) / 1000),
    );
    if let Some(d) = &item.diagnosis {
        let _ = write!(
            line,
            " — {}: {}",
            inline_code(d.cause.as_str(), 60),
            one_line(&esc_clip(&d.summary, 120))
        );
    }
    clip_mrkdwn(line, LIST_LINE_MAX)
}

fn fallback_single(item: &Item, reminder: bool, b: &Budget) -> String {
    let i = &item.incident;
    let mut text = format!("[{}] {}", cluster(i), output::single_text(i, reminder));
    if let Some(d) = &item.diagnosis {
        let summary = crate::util::text::cut_words(&d.summary, b.text);
        let _ = write!(text, " — {}: {}", d.cause, one_line(&summary));
    }
    esc_clip(&text, b.text)
}

// ---------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------

/// The body, with the block count kept within Slack's limit.
fn message(text: String, mut blocks: Vec<Value>) -> Value {
    if blocks.len() > BLOCKS_MAX {
        let dropped = blocks.len() - (BLOCKS_MAX - 1);
        blocks.truncate(BLOCKS_MAX - 1);
        blocks.push(context_block(vec![format!(
            "{TRUNCATED} {dropped} more block(s) not shown"
        )]));
    }
    let text = if text.is_empty() {
        TRUNCATED.to_string()
    } else {
        text
    };
    json!({"text": text, "blocks": blocks})
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": fit(&one_line(text), HEADER_MAX, false), "emoji": true},
    })
}

/// A mrkdwn section; `text` is already escaped.
fn section(text: String) -> Value {
    let text = if text.trim().is_empty() {
        "-".to_string()
    } else {
        text
    };
    json!({"type": "section", "text": {"type": "mrkdwn", "text": clip_mrkdwn(text, SECTION_MAX)}})
}

/// A section of fields (already escaped mrkdwn), at most `FIELDS_MAX`.
fn fields_block(fields: Vec<String>) -> Value {
    let fields: Vec<Value> = fields
        .into_iter()
        .take(FIELDS_MAX)
        .map(|f| json!({"type": "mrkdwn", "text": clip_mrkdwn(f, FIELD_MAX)}))
        .collect();
    json!({"type": "section", "fields": fields})
}

/// A context block of mrkdwn elements (already escaped), at most `CONTEXT_ELEMENTS_MAX`.
fn context_block(elements: Vec<String>) -> Value {
    let elements: Vec<Value> = elements
        .into_iter()
        .filter(|e| !e.is_empty())
        .take(CONTEXT_ELEMENTS_MAX)
        .map(|e| json!({"type": "mrkdwn", "text": clip_mrkdwn(e, SECTION_MAX)}))
        .collect();
    json!({"type": "context", "elements": elements})
}

/// A part left out for size, said so rather than silently dropped.
fn omitted(what: &str, count: usize) -> Value {
    context_block(vec![format!(
        "_{what} ({count}) omitted to fit Slack's message size_ {TRUNCATED}"
    )])
}

fn field(label: &str, value: &str) -> String {
    format!("*{label}*\n{value}")
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

/// Slack's mrkdwn entities for its three control characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn escaped_width(c: char) -> usize {
    match c {
        '&' => 5,
        '<' | '>' => 4,
        _ => 1,
    }
}

/// Control characters (other than newline and tab) shown as spaces: they
/// mean nothing in Slack and cost six JSON bytes each.
fn clean(c: char) -> char {
    if c.is_control() && c != '\n' && c != '\t' {
        ' '
    } else {
        c
    }
}

/// `s` (escaped for mrkdwn when `escape`) in at most `max` characters,
/// ending with the marker when cut. Never splits a character or an entity.
/// Reads no further than the cut, so a megabyte of log costs nothing.
fn fit(s: &str, max: usize, escape: bool) -> String {
    let width = |c: char| if escape { escaped_width(c) } else { 1 };
    let room = max.saturating_sub(TRUNCATED.chars().count());
    let mut out = String::new();
    // Where `out` stood when it last fit in `room`: the cut, if one is needed.
    let mut cut_at = 0;
    let mut used = 0;
    for c in s.chars().map(clean) {
        used += width(c);
        if used > max {
            // Back to the last word boundary, so no word is cut in half.
            let at = word_end(&out[..cut_at], cut_at);
            out.truncate(at);
            out.truncate(out.trim_end().len());
            if max >= TRUNCATED.chars().count() {
                out.push_str(TRUNCATED);
            }
            return out;
        }
        if escape {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
        if used <= room {
            cut_at = out.len();
        }
    }
    out
}

/// Pod-supplied text for mrkdwn: escaped, at most `max` characters.
fn esc_clip(s: &str, max: usize) -> String {
    fit(s, max, true)
}

/// A value as inline code; backticks inside would end it, so they become
/// primes. Empty shows as `-`.
fn inline_code(s: &str, max: usize) -> String {
    if s.is_empty() {
        return "-".into();
    }
    let s = one_line(&esc_clip(s, max.max(TRUNCATED.len() + 1))).replace('`', "ʹ");
    format!("`{s}`")
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Breaks every run of three backticks with zero-width spaces, so content
/// cannot close its code block.
fn defuse_fences(s: &str) -> String {
    s.replace("```", "`\u{200B}`\u{200B}`")
}

/// Lines in a ``` block, the first `max_lines`, in at most `max_chars`
/// characters fences included; what is left out is counted.
fn code_block(lines: &[String], max_lines: usize, max_chars: usize) -> String {
    let shown = fit_lines(lines.iter().take(max_lines), max_chars);
    let mut body = shown.join("\n");
    if shown.len() < lines.len() {
        let _ = write!(
            body,
            "\n{TRUNCATED} {} more line(s)",
            lines.len() - shown.len()
        );
    }
    format!("```\n{body}\n```")
}

/// The last lines of `total`, in at most `max_chars`: the lines kept are the
/// newest, and the marker says how many older ones were left out.
fn code_block_tail(tail: &[String], total: usize, max_chars: usize) -> String {
    let mut kept = fit_lines(tail.iter().rev(), max_chars);
    kept.reverse();
    let mut body = String::new();
    if kept.len() < total {
        let _ = writeln!(body, "{TRUNCATED} {} earlier line(s)", total - kept.len());
    }
    body.push_str(&kept.join("\n"));
    format!("```\n{body}\n```")
}

/// Escaped, defused lines, each cut at `LINE_MAX`, while they fit in
/// `max_chars` (leaving room for the fences and a marker line).
fn fit_lines<'a>(lines: impl Iterator<Item = &'a String>, max_chars: usize) -> Vec<String> {
    const RESERVED: usize = 48;
    let room = max_chars.saturating_sub(RESERVED);
    let mut out = Vec::new();
    let mut used = 0;
    for line in lines {
        // One character past the limit is enough for `fit` to see the cut.
        let head: String = line.chars().take(LINE_MAX + 1).collect();
        let l = fit(&defuse_fences(&head), LINE_MAX, true);
        let w = l.chars().count() + 1;
        if used + w > room {
            break;
        }
        used += w;
        out.push(l);
    }
    out
}

/// Already-escaped mrkdwn in at most `max` characters: the safety net for
/// composed texts. A cut backs off from a partial entity and closes an open
/// code block.
fn clip_mrkdwn(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let closing = "\n```";
    let room = max.saturating_sub(TRUNCATED.chars().count() + closing.len());
    let mut kept: String = text.chars().take(room).collect();
    if let Some(amp) = kept.rfind('&') {
        if !kept[amp..].contains(';') {
            kept.truncate(amp);
        }
    }
    let at = word_end(&kept, kept.len());
    kept.truncate(at);
    kept.truncate(kept.trim_end().len());
    kept.push_str(TRUNCATED);
    if kept.matches("```").count() % 2 == 1 {
        kept.push_str(closing);
    }
    kept
}

pub fn severity_emoji(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "🔴",
        Severity::Medium => "🟠",
        Severity::Low => "🟡",
        Severity::Informational => "🔵",
    }
}

pub fn cluster(i: &Incident) -> &str {
    if i.cluster.is_empty() {
        "unnamed cluster"
    } else {
        &i.cluster
    }
}

/// How long an incident lasted, `first_seen` to `last_seen`: `1h 5m`, `12m 30s`, `45s`.
pub fn lasted(i: &Incident) -> String {
    let secs = i.last_seen_ms.saturating_sub(i.first_seen_ms).max(0) / 1000;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return sig.to_string(),
    };
    format!("{sig}, {name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fix;
    use crate::model::{FailureType, Finding};

    fn incident(kind: FailureType, state: State) -> Incident {
        let finding = Finding {
            reason: "Error".into(),
            message: "back-off 1m20s restarting failed container".into(),
            exit_code: Some(137),
            signal: Some(9),
            restart_count: Some(5),
            node: Some("worker-1".into()),
            image: Some("ghcr.io/acme/web:1".into()),
            ..Finding::test(kind, "web-7d4b9c6f8-aaaaa")
        };
        Incident {
            pods: vec!["web-7d4b9c6f8-aaaaa".into(), "web-7d4b9c6f8-bbbbb".into()],
            first_seen_ms: 1_764_104_400_000,
            detected_ms: 1_764_104_400_000,
            last_seen_ms: 1_764_104_400_000 + 750_000,
            ..Incident::test(finding, state)
        }
    }

    fn diagnosis() -> Diagnosis {
        Diagnosis {
            cause: crate::model::Cause::OomKilled,
            summary: "The container used more memory than its limit.".into(),
            confidence: 0.95,
            evidence: vec!["reason OOMKilled".into(), "exit code 137".into()],
            fix: Fix {
                text: "Raise the memory limit.".into(),
                commands: vec![
                    "kubectl set resources deployment/web -n shop -c app --limits=memory=1Gi"
                        .into(),
                ],
            },
            rule: "oom",
            ai: None,
            backend: None,
            node_incident: None,
        }
    }

    fn item(kind: FailureType, state: State) -> Item {
        Item {
            incident: incident(kind, state),
            diagnosis: Some(diagnosis()),
            events: vec!["Warning BackOff (x12): Back-off restarting failed container".into()],
            logs: vec!["panic: out of memory".into()],
            facts: vec![
                "image: registry.example.com/web:1.4.2".into(),
                "resources: requests cpu=100m memory=64Mi; limits memory=128Mi".into(),
            ],
        }
    }

    fn single(item: Item, reminder: bool) -> Alert {
        Alert::Incident {
            item: Box::new(item),
            reminder,
        }
    }

    fn texts(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        collect_texts(v, &mut out);
        out
    }

    fn collect_texts(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "text" {
                        if let Some(s) = x.as_str() {
                            out.push(s.to_string());
                        }
                    }
                    collect_texts(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect_texts(x, out)),
            _ => {}
        }
    }

    /// Every limit the renderer promises, checked on the JSON itself.
    fn assert_within_limits(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap().len();
        assert!(bytes <= BODY_MAX, "body is {bytes} bytes");
        let text = v["text"].as_str().unwrap();
        assert!(!text.is_empty() && text.chars().count() <= TEXT_MAX);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(!blocks.is_empty() && blocks.len() <= BLOCKS_MAX);
        for b in blocks {
            match b["type"].as_str().unwrap() {
                "header" => {
                    assert_eq!(b["text"]["type"], "plain_text");
                    let t = b["text"]["text"].as_str().unwrap();
                    assert!(!t.is_empty() && t.chars().count() <= HEADER_MAX, "{t}");
                }
                "section" => {
                    if let Some(t) = b["text"]["text"].as_str() {
                        assert!(!t.is_empty() && t.chars().count() <= SECTION_MAX);
                        assert_eq!(t.matches("```").count() % 2, 0, "unbalanced fences: {t}");
                    }
                    if let Some(f) = b["fields"].as_array() {
                        assert!(!f.is_empty() && f.len() <= FIELDS_MAX);
                        for x in f {
                            let t = x["text"].as_str().unwrap();
                            assert!(!t.is_empty() && t.chars().count() <= FIELD_MAX);
                        }
                    }
                }
                "context" => {
                    let e = b["elements"].as_array().unwrap();
                    assert!(!e.is_empty() && e.len() <= CONTEXT_ELEMENTS_MAX);
                }
                other => panic!("unexpected block type {other}"),
            }
        }
        // Nothing pod-supplied may carry a raw `<` (mention/link syntax).
        for t in texts(v) {
            assert!(!t.contains('<') && !t.contains('>'), "unescaped: {t}");
        }
    }

    #[test]
    fn every_failure_type_and_state_renders_within_limits() {
        for kind in FailureType::ALL {
            for (state, reminder) in [
                (State::Open, false),
                (State::Updated, false),
                (State::Open, true),
                (State::Resolved, false),
            ] {
                let v = render(&single(item(kind, state), reminder));
                assert_within_limits(&v);
                let all = texts(&v).join("\n");
                assert!(all.contains(kind.as_str()), "{kind}: {all}");
                assert!(all.contains("Deployment/web"));
            }
        }
    }

    #[test]
    fn headers_carry_the_status_emoji() {
        let h = |a: &Alert| {
            render(a)["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let crit = h(&single(
            item(FailureType::CrashLoopBackOff, State::Open),
            false,
        ));
        assert_eq!(crit, "🔴 CrashLoopBackOff · shop/Deployment/web");
        assert!(h(&single(item(FailureType::NotReady, State::Open), false)).starts_with("🟠 "));
        // An update keeps the severity's colour.
        assert!(
            h(&single(item(FailureType::NotReady, State::Updated), false))
                .starts_with("🟠 Updated: NotReady · shop/Deployment/web")
        );
        assert!(
            h(&single(item(FailureType::NotReady, State::Resolved), false))
                .starts_with("✅ Resolved: ")
        );
        assert!(
            h(&single(item(FailureType::NotReady, State::Open), true)).contains("Still failing")
        );
        let items = vec![item(FailureType::OOMKilled, State::Open)];
        assert!(
            h(&Alert::StartupSummary {
                items: items.clone()
            })
            .starts_with("📣 ")
        );
        let storm = Alert::Storm {
            shared: "node worker-1".into(),
            items,
        };
        assert!(h(&storm).starts_with("🌩 "));
    }

    #[test]
    fn the_cluster_name_is_on_every_message() {
        let alerts = [
            single(item(FailureType::OOMKilled, State::Open), false),
            single(item(FailureType::OOMKilled, State::Updated), false),
            single(item(FailureType::OOMKilled, State::Open), true),
            single(item(FailureType::OOMKilled, State::Resolved), false),
            Alert::StartupSummary {
                items: vec![item(FailureType::OOMKilled, State::Open)],
            },
            Alert::Storm {
                shared: String::new(),
                items: vec![item(FailureType::OOMKilled, State::Open)],
            },
        ];
        for a in &alerts {
            let v = render(a);
            let context: Vec<String> = v["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|b| b["type"] == "context")
                .flat_map(texts)
                .collect();
            assert!(
                context.iter().any(|t| t.contains("*Cluster:* edge-1")),
                "{context:?}"
            );
            assert!(v["text"].as_str().unwrap().starts_with("[edge-1] "));
        }
    }

    #[test]
    fn commands_are_in_a_code_block() {
        let v = render(&single(item(FailureType::OOMKilled, State::Open), false));
        let all = texts(&v).join("\n");
        assert!(all.contains(
            "*Commands*\n```\nkubectl set resources deployment/web -n shop -c app --limits=memory=1Gi\n```"
        ));
        assert!(all.contains("*Root cause:* `oom_killed` (95% confidence)"));
        assert!(all.contains("```\npanic: out of memory\n```"));
    }

    #[test]
    fn resolved_is_short_and_says_how_long() {
        let v = render(&single(
            item(FailureType::CrashLoopBackOff, State::Resolved),
            false,
        ));
        assert_within_limits(&v);
        assert_eq!(v["blocks"].as_array().unwrap().len(), 3);
        let line = v["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(line.contains("after 12m 30s"), "{line}");
        assert!(serde_json::to_vec(&v).unwrap().len() < 1500);
    }

    #[test]
    fn the_parent_shows_the_current_state() {
        let open = render_parent(&item(FailureType::CrashLoopBackOff, State::Open));
        let done = render_parent(&item(FailureType::CrashLoopBackOff, State::Resolved));
        assert!(
            open["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("🔴")
        );
        let head = done["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(head.starts_with("✅ Resolved"), "{head}");
        assert!(texts(&done).join(" ").contains("*Lasted:* 12m 30s"));
        assert_within_limits(&done);
    }

    fn monster() -> Item {
        let long = "x".repeat(300);
        let mut it = item(FailureType::CrashLoopBackOff, State::Open);
        let i = &mut it.incident;
        i.cluster = format!("cluster-{long}");
        i.namespace = format!("ns-{long}");
        i.workload.name = format!("w-{long}");
        i.pods = (0..500).map(|n| format!("pod-{n}-{long}")).collect();
        i.finding.container = Some(format!("c-{long}"));
        i.finding.node = Some(format!("node-{long}"));
        i.finding.reason = "R".repeat(300);
        i.finding.message = "<!channel> & ``` boom ".repeat(50_000);
        let d = it.diagnosis.as_mut().unwrap();
        d.summary = "🔥 مرحبا بالعالم ".repeat(60_000);
        d.evidence = (0..200)
            .map(|n| format!("evidence {n} {}", "é".repeat(1000)))
            .collect();
        d.fix.text = "&".repeat(100_000);
        d.fix.commands = (0..100)
            .map(|n| format!("kubectl ``` {n} {}", "y".repeat(5000)))
            .collect();
        d.ai = Some(json!({"model": "m", "answer": "👩‍👩‍👧‍👦".repeat(200_000)}));
        d.backend = Some(json!({"blob": "z".repeat(1_000_000)}));
        it.events = (0..500)
            .map(|n| format!("Warning E{n} {}", "\u{0}".repeat(2000)))
            .collect();
        it.logs = (0..500)
            .map(|n| format!("line {n} <script> ``` {}", "ש".repeat(3000)))
            .collect();
        it
    }

    #[test]
    fn huge_unicode_inputs_stay_inside_every_limit() {
        let it = monster();
        // Many incidents with long, unicode names; two of them enormous.
        let mut named = item(FailureType::Unschedulable, State::Open);
        named.incident.workload.name = "שלום-🔥-".repeat(40);
        named.incident.namespace = "n".repeat(300);
        named.diagnosis.as_mut().unwrap().summary = "ü<&>".repeat(500);
        let mut many = vec![named; 298];
        many.extend([it.clone(), it.clone()]);
        for a in [
            single(it.clone(), false),
            single(it.clone(), true),
            Alert::StartupSummary {
                items: many.clone(),
            },
            Alert::Storm {
                shared: "namespace ".to_string() + &"q".repeat(10_000),
                items: many,
            },
        ] {
            let v = render(&a);
            assert_within_limits(&v);
            assert!(
                texts(&v)
                    .iter()
                    .any(|t| t.contains(TRUNCATED) || t.contains("more"))
            );
        }
        let mut resolved = it.clone();
        resolved.incident.state = State::Resolved;
        assert_within_limits(&render(&single(resolved.clone(), false)));
        assert_within_limits(&render_parent(&resolved));
        assert_within_limits(&render_parent(&it));
    }

    #[test]
    fn five_hundred_log_lines_keep_the_newest_and_say_so() {
        let mut it = item(FailureType::CrashLoopBackOff, State::Open);
        it.logs = (0..500).map(|n| format!("log line {n}")).collect();
        let v = render(&single(it, false));
        assert_within_limits(&v);
        let all = texts(&v).join("\n");
        assert!(all.contains("log line 499"));
        assert!(!all.contains("log line 0\n"));
        assert!(all.contains("earlier line(s)"));
    }

    #[test]
    fn a_group_lists_the_first_incidents_then_counts_the_rest() {
        let items: Vec<Item> = (0..100)
            .map(|n| {
                let mut it = item(FailureType::ImagePullBackOff, State::Open);
                it.incident.workload.name = format!("app-{n}");
                it
            })
            .collect();
        let v = render(&Alert::Storm {
            shared: "registry ghcr.io".into(),
            items,
        });
        assert_within_limits(&v);
        // The fallback text names them all; the blocks list the first 30.
        let all = texts(&v["blocks"]).join("\n");
        assert!(all.contains("Deployment/app-0 (2 pods, "), "{all}");
        assert!(all.contains(") — `oom_killed`"), "{all}");
        assert!(all.contains("…and 70 more"));
        assert!(!all.contains("Deployment/app-30 "));
    }

    #[test]
    fn text_helpers_cut_on_characters_and_entities() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        let cut = fit("é".repeat(20).as_str(), 15, true);
        assert_eq!(cut.chars().count(), 15);
        assert!(cut.ends_with(TRUNCATED));
        let amp = fit(&"&".repeat(100), 20, true);
        assert_eq!(amp, format!("&amp;&amp;&amp;{TRUNCATED}"));
        assert_eq!(fit("short", 10, true), "short");
        let clipped = clip_mrkdwn(format!("```\n{}", "a&amp;".repeat(1000)), 100);
        assert!(clipped.chars().count() <= 100);
        assert!(clipped.ends_with("\n```"));
        assert!(!clipped.contains("&am…"));
        assert_eq!(defuse_fences("``````").matches("```").count(), 0);
        assert_eq!(inline_code("a`b", 10), "`aʹb`");
        assert_eq!(signal_name(9), "9, SIGKILL");
    }

    /// 14:03:00 UTC on the fixtures' day, and twelve minutes later.
    const FIRST: i64 = 1_764_104_580_000;
    const NOW: i64 = FIRST + 12 * 60_000;

    fn at(item: Item, now_ms: i64, dashboard: Option<&UrlTemplate>) -> Value {
        let mut item = item;
        item.incident.first_seen_ms = FIRST;
        render_with(&single(item, false), &Style { now_ms, dashboard })
    }

    #[test]
    fn times_are_relative_with_the_exact_one_in_the_context() {
        assert_eq!(format_rfc3339_ms(FIRST), "2025-11-25T21:03:00Z");
        assert_eq!(failing_for(FIRST, NOW), "12 min, since 21:03 UTC");
        assert_eq!(failing_for(FIRST, FIRST + 40_000), "40 s, since 21:03 UTC");
        assert_eq!(
            failing_for(FIRST, FIRST + 26 * 3_600_000),
            "1 day 2 h, since 2025-11-25 21:03 UTC"
        );
        assert_eq!(duration_words(2 * 3600 + 5 * 60), "2 h 5 min");
        assert_eq!(duration_words(3 * 86_400), "3 days");
        let v = at(item(FailureType::CrashLoopBackOff, State::Open), NOW, None);
        let fields = texts(&v["blocks"][2]).join("\n");
        assert!(
            fields.starts_with("*Failing for*\n12 min, since 21:03 UTC"),
            "{fields}"
        );
        let context = texts(&v["blocks"][1]).join(" | ");
        assert!(
            context.contains("first seen 2025-11-25T21:03:00Z"),
            "{context}"
        );
        assert_within_limits(&v);
    }

    #[test]
    fn no_fact_is_shown_twice() {
        let mut it = item(FailureType::CrashLoopBackOff, State::Open);
        it.incident.finding.reason = "CrashLoopBackOff".into();
        it.facts = vec![
            "container: app".into(),
            "image: ghcr.io/acme/web:1".into(),
            "restarts: 5".into(),
            "node: worker-1".into(),
            "service account: default".into(),
        ];
        let v = at(it, NOW, None);
        let all = texts(&v["blocks"]).join("\n");
        // Namespace and workload are in the header only.
        assert!(
            !all.contains("*Namespace*") && !all.contains("*Workload*"),
            "{all}"
        );
        // The reason equals the type in the header.
        assert!(!all.contains("*Reason*"), "{all}");
        let facts = all.split("*Container facts*").nth(1).expect("facts shown");
        assert!(facts.contains("image: ghcr.io/acme/web:1"), "{facts}");
        for shown in ["container: app", "restarts: 5", "node: worker-1"] {
            assert!(!facts.contains(shown), "{shown} twice: {facts}");
        }
        assert_eq!(all.matches("worker-1").count(), 1, "{all}");
    }

    #[test]
    fn the_dashboard_link_is_shown_when_configured() {
        let t =
            UrlTemplate::parse("https://headlamp.example/c/{cluster}/{kind}/{namespace}/{name}")
                .unwrap();
        let mut it = item(FailureType::CrashLoopBackOff, State::Open);
        it.incident.cluster = "edge 1".into();
        let v = at(it.clone(), NOW, Some(&t));
        let all = texts(&v["blocks"]).join("\n");
        assert!(
            all.contains("*Dashboard*\n<https://headlamp.example/c/edge%201/Deployment/shop/web|Deployment/web>"),
            "{all}"
        );
        let v = at(it.clone(), NOW, None);
        assert!(!texts(&v["blocks"]).join("\n").contains("Dashboard"));
        // In a resolution and a summary too.
        it.incident.state = State::Resolved;
        let v = at(it, NOW, Some(&t));
        assert!(
            texts(&v["blocks"])
                .join("\n")
                .contains("<https://headlamp.example/")
        );
    }

    #[test]
    fn cuts_end_at_a_word_with_an_ellipsis_in_the_summary_too() {
        let mut it = item(FailureType::OOMKilled, State::Open);
        if let Some(d) = it.diagnosis.as_mut() {
            d.summary = "Container web of deployment/web (namespace shop) was killed because it used more than its 256Mi memory limit and the kernel stopped it.".into();
        }
        let v = render_with(
            &Alert::StartupSummary { items: vec![it] },
            &Style {
                now_ms: NOW,
                dashboard: None,
            },
        );
        let line = texts(&v["blocks"]).join("\n");
        let summary = line.split("`oom_killed`: ").nth(1).expect("a summary");
        assert!(summary.ends_with('…'), "{summary}");
        assert!(!summary.contains("[truncated]"), "{summary}");
        // The word before the ellipsis is whole.
        let last = summary
            .trim_end_matches('…')
            .rsplit(' ')
            .next()
            .unwrap_or("");
        assert!(
            "Container web of deployment/web (namespace shop) was killed because it used more than its 256Mi memory limit and the kernel stopped it."
                .split(' ')
                .any(|w| w == last),
            "{summary}"
        );
        assert_eq!(
            fit("more than its 256Mi memory", 17, false),
            "more than its…"
        );
    }
}
