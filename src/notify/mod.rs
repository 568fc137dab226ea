/*!
Notifications leave the daemon here: the classification thread hands each
one to the delivery pool, whose workers enrich it (events, logs, LLM,
backend) and deliver it to every configured sink, retrying per sink.

- `Item`, `Alert`: what a sink is given (plain values, no I/O).
- `Sink`: one destination, one attempt per call; the pool does the retries.
- `slack`: Block Kit rendering; `slack_webhook`, `slack_bot`, `webhook`: the sinks.
*/

pub mod log;
pub mod pool;
pub mod queue;
pub mod slack;
pub mod slack_bot;
pub mod slack_webhook;
pub mod webhook;

use std::time::Duration;

pub mod k8s_event;

use crate::detect::incident::{Incident, State};
use crate::detect::types::Severity;
use crate::diagnose::Diagnosis;

/// One incident as a notification carries it.
#[derive(Clone, Debug)]
pub struct Item {
    /// A snapshot; `incident.state` says open, updated or resolved.
    pub incident: Incident,
    /// Rules' verdict, with `ai` and `backend` filled in when those answered.
    pub diagnosis: Option<Diagnosis>,
    /// The pod's events, most relevant first (Warning first, newest first),
    /// one line each: `Warning BackOff (x12): Back-off restarting failed container`.
    pub events: Vec<String>,
    /// The failing container's previous-run log tail, redacted (INCLUDE_LOGS).
    pub logs: Vec<String>,
    /// The failing container's spec facts, one line each (`image: …`,
    /// `resources: …`, probes, env names only, node, owner).
    pub facts: Vec<String>,
}

impl Item {
    /// An item with nothing but its incident and diagnosis (not enriched yet).
    pub fn new(incident: Incident, diagnosis: Option<Diagnosis>) -> Item {
        Item {
            incident,
            diagnosis,
            events: Vec::new(),
            logs: Vec::new(),
            facts: Vec::new(),
        }
    }
}

/// A notification: one incident, or several grouped.
#[derive(Clone, Debug)]
pub enum Alert {
    /// An incident opened, updated or resolved; `reminder` when re-announced unchanged.
    Incident { item: Box<Item>, reminder: bool },
    /// Failures already present when the daemon started.
    StartupSummary { items: Vec<Item> },
    /// Many new incidents at once; `shared` names what they share (may be empty).
    Storm { shared: String, items: Vec<Item> },
}

impl Alert {
    pub fn items_mut(&mut self) -> &mut [Item] {
        match self {
            Alert::Incident { item, .. } => std::slice::from_mut(&mut **item),
            Alert::StartupSummary { items } | Alert::Storm { items, .. } => items,
        }
    }

    pub fn items(&self) -> &[Item] {
        match self {
            Alert::Incident { item, .. } => std::slice::from_ref(item),
            Alert::StartupSummary { items } | Alert::Storm { items, .. } => items,
        }
    }

    /// The highest severity among its incidents.
    pub fn severity(&self) -> Severity {
        self.items()
            .iter()
            .map(|i| i.incident.severity())
            .max()
            .unwrap_or(Severity::Informational)
    }

    /// A resolution. The pool sends it to the sinks whenever they got its
    /// incident, whatever its severity now (`pool::admit`).
    pub fn is_resolution(&self) -> bool {
        matches!(self, Alert::Incident { item, .. } if item.incident.state == State::Resolved)
    }
}

/// Why one attempt failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// Worth trying again (connection error, timeout, 5xx, 429), after
    /// `after` when the receiver said so (Retry-After).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Trying again cannot help (4xx other than 429, a Slack `ok: false`
    /// such as `invalid_blocks`): logged with the reason and given up.
    Permanent(String),
}

impl Failure {
    /// The usual reading of an HTTP status: 429 and 5xx are retried.
    pub fn from_status(status: u16, retry_after: Option<Duration>, body: &str) -> Failure {
        let why = format!(
            "HTTP {status}: {}",
            body.trim().chars().take(300).collect::<String>()
        );
        if status == 429 || status >= 500 || status == 408 {
            Failure::Retry {
                why,
                after: retry_after,
            }
        } else {
            Failure::Permanent(why)
        }
    }

    /// The reason with every secret (a webhook URL, its path, a token)
    /// replaced, in case a receiver echoed one back in its answer.
    pub fn redact(self, secrets: &[&str]) -> Failure {
        match self {
            Failure::Retry { why, after } => Failure::Retry {
                why: redact_text(&why, secrets),
                after,
            },
            Failure::Permanent(why) => Failure::Permanent(redact_text(&why, secrets)),
        }
    }

    /// The same failure, its reason prefixed with what was being done.
    pub fn context(self, what: &str) -> Failure {
        match self {
            Failure::Retry { why, after } => Failure::Retry {
                why: format!("{what}: {why}"),
                after,
            },
            Failure::Permanent(why) => Failure::Permanent(format!("{what}: {why}")),
        }
    }
}

/// `text` with every secret replaced by `<redacted>`. Run it on an answer
/// body before it is shortened, so a cut cannot leave half a token behind.
/// One JSON POST to a receiver, as a sink attempt: transport errors and
/// 408/429/5xx are `Retry`, other non-2xx `Permanent`; every reason names
/// `what` and has `secrets` (URL parts, tokens) blanked out.
pub fn post_attempt(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    what: &str,
    secrets: &[&str],
) -> Result<(), Failure> {
    let result = match crate::net::http::post_json(agent, url, headers, body) {
        Err(why) => Err(Failure::Retry { why, after: None }),
        Ok(reply) if reply.ok() => Ok(()),
        Ok(reply) => Err(Failure::from_status(
            reply.status,
            reply.retry_after,
            &redact_text(&reply.body, secrets),
        )),
    };
    result.map_err(|f| f.context(what).redact(secrets))
}

pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    // Very short values would blank out ordinary words.
    for secret in secrets.iter().filter(|x| x.len() >= 6) {
        out = out.replace(*secret, "<redacted>");
    }
    out
}

/// The parts of a URL that may carry a token, for `Failure::redact`: the
/// whole URL and everything after its host (a Slack webhook's secret is its path).
pub fn url_secrets(url: &str) -> [&str; 2] {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find(['/', '?'])
        .map_or("", |i| &after_scheme[i..]);
    [url, if path.len() > 1 { path } else { "" }]
}

/// One destination. `deliver` makes one attempt; the pool retries a
/// `Failure::Retry` with backoff. A sink that takes several calls per alert
/// (post, then update) must remember what already succeeded, so a retry
/// never posts twice. Alerts of one incident arrive in order, never two at
/// once.
pub trait Sink: Send + Sync {
    /// Short name for logs and metrics: `slack`, `slack-bot`, `webhook`, `k8s-events`.
    fn name(&self) -> &'static str;
    fn deliver(&self, alert: &Alert) -> Result<(), Failure>;
}
