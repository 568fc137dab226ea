/*!
The generic webhook sink (`WEBHOOK_URL`): each alert POSTed as JSON, with
`Authorization: <WEBHOOK_AUTH_HEADER>` when set.

One incident's body is the stable schema (`output::incident_json`, the same
object `-o json` prints) plus `notification` (`open`, `updated`, `resolved`
or `reminder`), plus the original daemon's alert fields so existing receivers
keep working: `timestamp`, `podName`, `podSnapshot`, `watchdogVersion`
(`severity`, `namespace`, `reason`, `message`, `pattern` and `diagnosis` are
already in the stable schema, with the same meaning), and the `events` and
`logs` the worker gathered. A start-up summary or storm is
`{"notification": "startup_summary"|"storm", "shared", "cluster", "incidents": [...]}`
with each incident as above.

Any 2xx is success; 408, 429 and 5xx are retried (honouring `Retry-After`),
other statuses are permanent with the receiver's answer in the reason. The URL
and the header value never appear in a log line or a failure.
*/

use serde_json::{Map, Value, json};

use super::{Alert, Failure, Item, Sink, post_attempt, url_secrets};
use crate::model::FailureType;
use crate::model::State;
use crate::output;
use crate::settings;
use crate::util::time::{format_rfc3339, unix_now};

pub struct Webhook {
    cfg: settings::Webhook,
    agent: ureq::Agent,
}

impl Webhook {
    /// `cfg` is `settings::Alerts::webhook`; `agent` from `net::http::agent`.
    pub fn new(cfg: settings::Webhook, agent: ureq::Agent) -> Webhook {
        Webhook { cfg, agent }
    }
}

impl Sink for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let auth = self.cfg.auth_header.as_ref().map(|a| a.expose());
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let url = self.cfg.url.expose();
        let [u, path] = url_secrets(url);
        let secrets = [u, path, auth.unwrap_or_default()];
        post_attempt(
            &self.agent,
            url,
            &headers,
            &body(alert),
            "webhook",
            &secrets,
        )
    }
}

/// The JSON body for an alert.
pub fn body(alert: &Alert) -> Value {
    let now = format_rfc3339(unix_now());
    match alert {
        Alert::Incident { item, reminder } => {
            let notification = if *reminder {
                "reminder"
            } else {
                item.incident.state.as_str()
            };
            item_json(item, notification, &now)
        }
        Alert::StartupSummary { items } => {
            group(alert, "startup_summary", Value::Null, items, &now)
        }
        Alert::Storm { shared, items } => group(alert, "storm", json!(shared), items, &now),
    }
}

fn group(alert: &Alert, kind: &str, shared: Value, items: &[Item], now: &str) -> Value {
    json!({
        "notification": kind,
        "shared": shared,
        "cluster": items.first().map(|i| i.incident.cluster.as_str()),
        "severity": alert.severity().as_str(),
        "count": items.len(),
        "timestamp": now,
        "watchdogVersion": env!("CARGO_PKG_VERSION"),
        "incidents": items.iter().map(|i| item_json(i, i.incident.state.as_str(), now)).collect::<Vec<_>>(),
    })
}

/// One incident: the stable schema, `notification`, the original daemon's
/// fields, `events` and `logs`.
pub fn item_json(item: &Item, notification: &str, now: &str) -> Value {
    let i = &item.incident;
    let f = &i.finding;
    let mut v = output::incident_json(i, item.diagnosis.as_ref());
    if let Some(o) = v.as_object_mut() {
        o.insert("notification".into(), json!(notification));
        o.insert("timestamp".into(), json!(now));
        o.insert("podName".into(), json!(f.pod));
        o.insert("podSnapshot".into(), pod_snapshot(item));
        o.insert("watchdogVersion".into(), json!(env!("CARGO_PKG_VERSION")));
        o.insert("events".into(), json!(item.events));
        o.insert("logs".into(), json!(item.logs));
        o.insert("facts".into(), json!(item.facts));
    }
    v
}

/// What the incident knows of its representative pod, in the original's
/// names. `phase` only when the failure type implies it; unknown fields are left out.
fn pod_snapshot(item: &Item) -> Value {
    let i = &item.incident;
    let f = &i.finding;
    let mut s = Map::new();
    s.insert("name".into(), json!(f.pod));
    s.insert("namespace".into(), json!(i.namespace));
    let phase = match f.kind {
        FailureType::Evicted | FailureType::Failed => Some("Failed"),
        FailureType::Unschedulable | FailureType::PendingTooLong => Some("Pending"),
        FailureType::NotReady | FailureType::HighRestartCount => Some("Running"),
        _ => None,
    };
    if let Some(p) = phase.filter(|_| i.state != State::Resolved) {
        s.insert("phase".into(), json!(p));
    }
    if let Some(c) = &f.container {
        s.insert("container".into(), json!(c));
    }
    if let Some(n) = f.restart_count {
        s.insert("restartCount".into(), json!(n));
    }
    if let Some(c) = f.exit_code {
        s.insert("exitCode".into(), json!(c));
    }
    if let Some(sig) = f.signal {
        s.insert("signal".into(), json!(sig));
    }
    if let Some(n) = &f.node {
        s.insert("node".into(), json!(n));
    }
    Value::Object(s)
}
