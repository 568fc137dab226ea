/*!
The Microsoft Teams sink (`TEAMS_WEBHOOK_URL`): each alert is one message
POSTed to a Workflows (Power Automate) webhook, with one Adaptive Card
attachment (`application/vnd.microsoft.card.adaptive`, version 1.4).

Teams refuses a message over about 28 KB, so the body is kept under
[`BODY_MAX`] bytes by rendering again with smaller section budgets (the
sections are cut visibly, then left out, said so): never rejected for size.

Pod-supplied text goes into `RichTextBlock` text runs, which Adaptive Cards
never read as Markdown, so a pod message cannot make a link; the few
TextBlock and FactSet texts have link and `{{DATE()}}` syntax broken.

A workflow answers 202 Accepted (200 on older flows); 429 and 5xx are
retried. The URL is the credential (its `sig` query parameter): it never
appears in a log line or a failure. A route's `webhook_file` names another
workflow (another channel), kept as secret.
*/

use serde_json::{Value, json};

use super::digest::{self, Digest, clip, digest, json_len, one_line, section_text};
use super::{Alert, Failure, Override, Sink, post_attempt, url_secrets};
use crate::model::Severity;
use crate::secret::Secret;

/// The whole JSON body, bytes: under Teams' ~28 KB, with room for its
/// own wrapping.
pub const BODY_MAX: usize = 26_000;
/// The title and the headline, characters.
pub const TITLE_MAX: usize = 250;
pub const HEADLINE_MAX: usize = 1000;
/// One fact's value, characters.
pub const FACT_MAX: usize = 300;
/// One line of a section, characters.
const LINE_MAX: usize = 400;

pub const CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";

pub struct Teams {
    url: Secret,
    agent: ureq::Agent,
}

impl Teams {
    /// `url` is `settings::Alerts::teams`; `agent` from `net::http::agent`.
    pub fn new(url: Secret, agent: ureq::Agent) -> Teams {
        Teams { url, agent }
    }
}

impl Teams {
    fn post(&self, alert: &Alert, url: &Secret) -> Result<(), Failure> {
        let url = url.expose();
        let [u, path] = url_secrets(url);
        // The signature is the credential; a receiver may echo it alone.
        let sig = url
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("sig="))
            .unwrap_or_default();
        let secrets = [u, path, sig];
        post_attempt(&self.agent, url, &[], &render(alert), "Teams", &secrets)
    }
}

impl Sink for Teams {
    fn name(&self) -> &'static str {
        "teams"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        self.post(alert, &self.url)
    }

    /// A route's `webhook_file`: another workflow (another channel).
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        match to {
            Override::Webhook { url, .. } => self.post(alert, url),
            Override::Channel(_) => self.deliver(alert),
        }
    }
}

/// The message for an alert, inside Teams' size limit.
pub fn render(alert: &Alert) -> Value {
    let d = digest(alert);
    digest::fitted(|b| message(&d, b), |v| json_len(v) <= BODY_MAX)
}

/// Link (`[t](u)`) and template (`{{DATE(…)}}`) syntax broken with a
/// zero-width space: Markdown that a pod could inject into a TextBlock.
fn defang(s: &str) -> String {
    s.replace("](", "]\u{200b}(").replace("{{", "{\u{200b}{")
}

fn color(d: &Digest) -> &'static str {
    if d.resolved {
        return "Good";
    }
    match d.severity {
        Severity::Critical | Severity::High => "Attention",
        Severity::Medium => "Warning",
        Severity::Low | Severity::Informational => "Accent",
    }
}

fn message(d: &Digest, budget: usize) -> Value {
    let mut body = vec![
        json!({
            "type": "TextBlock", "text": defang(&clip(&one_line(&d.title), TITLE_MAX)),
            "weight": "Bolder", "size": "Medium", "wrap": true, "color": color(d),
        }),
        json!({
            "type": "TextBlock", "text": defang(&clip(&d.headline, HEADLINE_MAX.min(budget.max(200)))),
            "wrap": true, "isSubtle": true,
        }),
    ];
    let facts: Vec<Value> = d
        .facts
        .iter()
        .map(|(k, v)| json!({"title": k, "value": defang(&clip(&one_line(v), FACT_MAX))}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    if budget == 0 {
        if !d.sections.is_empty() {
            body.push(rich(&digest::omitted_note(d.sections.len()), false, true));
        }
    } else {
        for s in &d.sections {
            body.push(json!({
                "type": "TextBlock", "text": defang(&s.title), "weight": "Bolder",
                "wrap": true, "spacing": "Medium",
            }));
            let text = section_text(s, budget, LINE_MAX, |o, c| o.push(c));
            body.push(rich(&text, s.code, false));
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": CONTENT_TYPE,
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// Text shown as is (no Markdown): a RichTextBlock of one run.
fn rich(text: &str, code: bool, subtle: bool) -> Value {
    let text = if text.is_empty() { "-" } else { text };
    let mut run = json!({"type": "TextRun", "text": text});
    if code {
        run["fontType"] = json!("Monospace");
    }
    if subtle {
        run["isSubtle"] = json!(true);
    }
    json!({"type": "RichTextBlock", "inlines": [run]})
}
