/*!
The PagerDuty sink (`PAGERDUTY_ROUTING_KEY`): Events API v2. Each incident
is one PagerDuty alert whose `dedup_key` is the incident's stable key
(`digest::stable_key`: the same failure keeps its key across daemon
restarts): opening, updates and reminders are `trigger` events (PagerDuty
folds them into the one alert), the resolution is a `resolve` event. A
start-up summary or storm triggers each of its incidents.

The severity is mapped (critical → critical, high → error, medium →
warning, low and informational → info); the summary stays within PagerDuty's
1024 characters, and `custom_details` carries the diagnosis, the events and
the log tail, each cut visibly, well inside the 512 KB event limit.

PagerDuty answers 202; 400 (an invalid event) is permanent, 429 and 5xx are
retried. The routing key never appears in a log line or a failure.
*/

use serde_json::{Map, Value, json};

use super::digest::{self, clip, stable_key};
use super::{Alert, Failure, Item, Sink, post_attempt};
use crate::model::{Severity, State};
use crate::settings;
use crate::util::time::format_rfc3339;

pub const SUMMARY_MAX: usize = 1024;
/// One string in `custom_details`, characters.
const DETAIL_MAX: usize = 4000;
/// Lines of events or logs in `custom_details`.
const LINES_MAX: usize = 50;

pub struct PagerDuty {
    cfg: settings::PagerDuty,
    link_url: Option<String>,
    agent: ureq::Agent,
}

impl PagerDuty {
    /// `cfg` is `settings::Alerts::pagerduty`, `link_url` `ALERT_LINK_URL`.
    pub fn new(
        cfg: settings::PagerDuty,
        link_url: Option<String>,
        agent: ureq::Agent,
    ) -> PagerDuty {
        PagerDuty {
            cfg,
            link_url,
            agent,
        }
    }
}

impl Sink for PagerDuty {
    fn name(&self) -> &'static str {
        "pagerduty"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let key = self.cfg.routing_key.expose();
        let reminder = matches!(alert, Alert::Incident { reminder: true, .. });
        // Triggers and resolves are idempotent per dedup_key, so a retry of
        // a group that got half way repeats nothing harmful.
        for item in alert.items() {
            let body = event(item, reminder, key, self.link_url.as_deref());
            post_attempt(
                &self.agent,
                &self.cfg.events_url,
                &[],
                &body,
                "PagerDuty",
                &[key],
            )?;
        }
        Ok(())
    }
}

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Informational => "info",
    }
}

fn lines(v: &[String], tail: bool) -> Vec<String> {
    let pick: Vec<&String> = if tail {
        v.iter().skip(v.len().saturating_sub(LINES_MAX)).collect()
    } else {
        v.iter().take(LINES_MAX).collect()
    };
    pick.into_iter().map(|l| clip(l, 500)).collect()
}

/// The event for one incident: `trigger`, or `resolve` once resolved.
pub fn event(item: &Item, reminder: bool, routing_key: &str, link_url: Option<&str>) -> Value {
    let i = &item.incident;
    let dedup_key = stable_key(i);
    if i.state == State::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut details = Map::new();
    let mut put = |k: &str, v: Value| {
        details.insert(k.to_string(), v);
    };
    put("cluster", json!(clip(&i.cluster, 200)));
    put("namespace", json!(i.namespace));
    put(
        "workload",
        json!(format!("{}/{}", i.workload.kind, i.workload.name)),
    );
    put("pods", json!(lines(&i.pods, false)));
    put("type", json!(i.finding.kind.as_str()));
    put(
        "state",
        json!(if reminder {
            "still open"
        } else {
            i.state.as_str()
        }),
    );
    put("reason", json!(clip(&i.finding.reason, 200)));
    put("message", json!(clip(&i.finding.message, DETAIL_MAX)));
    put("incident", json!(i.id));
    if let Some(d) = &item.diagnosis {
        put("cause", json!(d.cause.as_str()));
        put("confidence", json!(d.confidence));
        put("diagnosis", json!(clip(&d.summary, DETAIL_MAX)));
        put("evidence", json!(lines(&d.evidence, false)));
        put("fix", json!(clip(&d.fix.text, DETAIL_MAX)));
        put("commands", json!(lines(&d.fix.commands, false)));
        if let Some(ai) = &d.ai {
            put("ai", json!(clip(&ai.to_string(), DETAIL_MAX)));
        }
        if let Some(b) = &d.backend {
            put("opsctrl", json!(clip(&b.to_string(), DETAIL_MAX)));
        }
    }
    put("events", json!(lines(&item.events, false)));
    put("logs", json!(lines(&item.logs, true)));
    put("facts", json!(lines(&item.facts, false)));

    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "client": "opsctrl-daemon",
        "payload": {
            "summary": clip(&digest::headline(item, reminder), SUMMARY_MAX),
            "source": clip(&format!("{}/{}/{}", super::slack::cluster(i), i.namespace, i.finding.pod), 255),
            "severity": severity(i.severity()),
            "timestamp": format_rfc3339(i.first_seen_ms.div_euclid(1000)),
            "component": clip(&format!("{}/{}", i.workload.kind, i.workload.name), 255),
            "group": clip(&i.namespace, 255),
            "class": i.finding.kind.as_str(),
            "custom_details": details,
        },
    });
    if let Some(t) = link_url {
        let href = digest::link(t, i);
        body["links"] = json!([{"href": href, "text": "Open in dashboard"}]);
        body["client_url"] = json!(href);
    }
    body
}
