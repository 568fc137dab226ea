/*!
The ntfy sink (`NTFY_URL`, optional `NTFY_TOKEN`): each alert is one
notification published as JSON to the topic's server (`POST {server}/` with
`topic`), which carries Unicode titles that headers cannot: title, message,
priority from the severity (critical 5 … informational 1, a resolution 2),
tags (shown as emoji) and `ALERT_LINK_URL` as the click action.

ntfy turns a message over 4096 bytes into an attachment, so the message is
kept under [`MESSAGE_MAX`] bytes, cut visibly. 429 and 5xx are retried. The
topic URL (whose topic name is what lets anyone subscribe) and the token
never appear in a log line or a failure.
*/

use serde_json::{Value, json};

use super::digest::{self, Digest, clip, digest, link, section_text};
use super::{Alert, Failure, Sink, post_attempt, url_secrets};
use crate::model::Severity;
use crate::settings;

/// The message, bytes (ntfy's default message-size-limit is 4096).
pub const MESSAGE_MAX: usize = 4000;
/// The title, characters.
pub const TITLE_MAX: usize = 250;
const LINE_MAX: usize = 200;

pub struct Ntfy {
    cfg: settings::Ntfy,
    link_url: Option<String>,
    agent: ureq::Agent,
}

impl Ntfy {
    /// `cfg` is `settings::Alerts::ntfy`, `link_url` `ALERT_LINK_URL`.
    pub fn new(cfg: settings::Ntfy, link_url: Option<String>, agent: ureq::Agent) -> Ntfy {
        Ntfy {
            cfg,
            link_url,
            agent,
        }
    }
}

/// `https://ntfy.sh/alerts` → (`https://ntfy.sh`, `alerts`).
pub fn split_topic(url: &str) -> (&str, &str) {
    url.rsplit_once('/').unwrap_or((url, ""))
}

impl Sink for Ntfy {
    fn name(&self) -> &'static str {
        "ntfy"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let url = self.cfg.url.expose();
        let (server, topic) = split_topic(url);
        let token = self.cfg.token.as_ref().map(|t| t.expose());
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        let [u, path] = url_secrets(url);
        let secrets = [u, path, topic, token.unwrap_or_default()];
        let body = render(alert, topic, self.link_url.as_deref());
        post_attempt(
            &self.agent,
            &format!("{server}/"),
            &headers,
            &body,
            "ntfy",
            &secrets,
        )
    }
}

fn priority(d: &Digest) -> u8 {
    if d.resolved {
        return 2;
    }
    match d.severity {
        Severity::Critical => 5,
        Severity::High => 4,
        Severity::Medium => 3,
        Severity::Low => 2,
        Severity::Informational => 1,
    }
}

/// The publish request for an alert on `topic`.
pub fn render(alert: &Alert, topic: &str, link_url: Option<&str>) -> Value {
    let d = digest(alert);
    let (emoji, kind) = match alert {
        Alert::Incident { item, .. } => (
            if d.resolved {
                "white_check_mark"
            } else {
                "rotating_light"
            },
            Some(&item.incident),
        ),
        _ => ("warning", None),
    };
    let mut tags = vec![emoji.to_string(), d.severity.as_str().to_string()];
    if let Some(i) = kind {
        tags.push(clip(i.finding.kind.as_str(), 40));
    }
    let mut body = json!({
        "topic": topic,
        "title": clip(&digest::one_line(&d.title), TITLE_MAX),
        "message": digest::fitted(|b| message(&d, b), |m| m.len() <= MESSAGE_MAX),
        "priority": priority(&d),
        "tags": tags,
    });
    if let (Some(t), Some(i)) = (link_url, kind) {
        body["click"] = json!(link(t, i));
    }
    body
}

fn message(d: &Digest, budget: usize) -> String {
    let mut out = clip(&d.headline, 300.min(budget.max(150)));
    let facts: Vec<String> = d
        .facts
        .iter()
        .filter(|(k, _)| !matches!(*k, "Cluster" | "Severity" | "State" | "Incident"))
        .map(|(k, v)| {
            format!(
                "{k}: {}",
                clip(&digest::one_line(v), 80.min(budget.max(40)))
            )
        })
        .collect();
    out.push('\n');
    out.push_str(&facts.join("\n"));
    for s in d.sections.iter().filter(|_| budget > 0) {
        out.push_str(&format!("\n\n{}:\n", s.title));
        out.push_str(&section_text(s, budget, LINE_MAX, |o, c| o.push(c)));
    }
    if budget == 0 && !d.sections.is_empty() {
        out.push_str("\n\n");
        out.push_str(&digest::omitted_note(d.sections.len()));
    }
    out
}
