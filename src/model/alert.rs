/*!
What the delivery side is handed: an `Item` (one incident with its diagnosis
and what enrichment added), an `Alert` (one item, or several grouped), a
`Job` (an alert with the pods it is about), and why one delivery attempt
failed (`Failure`). Plain values, no I/O.
*/

use std::time::Duration;

use super::diagnosis::Diagnosis;
use super::finding::{Finding, Rollout, Severity};
use super::incident::{Incident, State};
use super::pod::PodRecord;

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

    /// A resolution. The delivery pool sends it to the sinks whenever they
    /// got its incident, whatever its severity now (`notify::pool::admit`).
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
        if (300..400).contains(&status) {
            return Failure::Permanent(format!(
                "HTTP {status}: a redirect, which is not followed (set the final URL)"
            ));
        }
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

/// A notification on its way out, with the pods it is about as they were
/// when it was raised (for enrichment; `None` when already gone).
#[derive(Clone)]
pub struct Job {
    pub alert: Alert,
    /// Aligned with `alert.items()`.
    pub pods: Vec<Option<Box<Subject>>>,
}

/// A better diagnosis than the record's, from enrichment (events, logs, the
/// LLM, the backend), for the classification thread to print as an
/// `updated` record so stdout says what the sinks said. `finding` is the
/// finding it was made for: a stale one (the incident moved on) is dropped.
#[derive(Clone, Debug)]
pub struct Rediagnosis {
    pub incident: u64,
    pub finding: Finding,
    pub diagnosis: Diagnosis,
}

/// What enrichment needs to diagnose an item again: its pod as it was, and
/// where the pod's revision stands in its workload's rollout.
#[derive(Clone, Debug)]
pub struct Subject {
    pub pod: PodRecord,
    pub rollout: Rollout,
}
