/*!
The Alertmanager sink (`ALERTMANAGER_URL`): API v2, `POST /api/v2/alerts`,
so Alertmanager's own routing, grouping, inhibition and silences apply.

Each open incident is one alert: labels `alertname` (the failure type),
`namespace`, `workload`, `severity`, `cluster`, `cause`; annotations
`summary`, `description`, `fix`, `commands`; `startsAt` when the failure
began; `generatorURL` from `ALERT_LINK_URL` when set.

Alertmanager resolves an alert nobody re-posted within its
`resolve_timeout`, so open alerts are remembered and posted again, all in
one request, every `ALERTMANAGER_REPOST_SECONDS` by a thread of this sink
(never the classification thread, never the pool's lane; only while this
replica leads). The resolution posts the alert with `endsAt`. When an
update changes the labels (the cause became known), the alert under the
old labels is ended in the same request, so none lingers.

Alertmanager answers 200; 400 (a bad alert) is permanent, 429 and 5xx are
retried. The URL (which may carry user:password) and the Authorization
header never appear in a log line or a failure.
*/

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::digest::{self, clip};
use super::memory::Memory;
use super::{Alert, Failure, Item, Sink, post_attempt, url_secrets};
use crate::model::State;
use crate::settings;
use crate::util::time::{format_rfc3339, unix_now};

/// One label value, characters.
pub const LABEL_MAX: usize = 256;
/// One annotation, characters.
pub const ANNOTATION_MAX: usize = 4000;

/// Whether this replica may send now (leader election).
pub type Leading = Arc<dyn Fn() -> bool + Send + Sync>;

struct Inner {
    cfg: settings::Alertmanager,
    link_url: Option<String>,
    agent: ureq::Agent,
    /// Incident id → its alert as last posted (firing).
    open: Memory<Value>,
}

pub struct Alertmanager {
    inner: Arc<Inner>,
}

impl Alertmanager {
    /// `cfg` is `settings::Alerts::alertmanager`, `link_url` `ALERT_LINK_URL`;
    /// `leading` says whether to re-post now. Starts the re-post thread,
    /// which ends once the sink is dropped.
    pub fn new(
        cfg: settings::Alertmanager,
        link_url: Option<String>,
        agent: ureq::Agent,
        leading: Leading,
    ) -> std::io::Result<Alertmanager> {
        let every = cfg.repost;
        let inner = Arc::new(Inner {
            cfg,
            link_url,
            agent,
            open: Memory::default(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("alertmanager-repost".into())
            .spawn(move || repost_loop(&weak, every, &leading))?;
        Ok(Alertmanager { inner })
    }

    /// Incidents being kept firing (for tests and metrics).
    pub fn open_alerts(&self) -> usize {
        self.inner.open.len()
    }
}

fn repost_loop(inner: &Weak<Inner>, every: Duration, leading: &Leading) {
    // Short sleeps, so a dropped sink's thread ends soon after.
    let step = every.min(Duration::from_millis(500));
    let mut waited = Duration::ZERO;
    loop {
        std::thread::sleep(step);
        waited += step;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if waited < every {
            continue;
        }
        waited = Duration::ZERO;
        let alerts: Vec<Value> = inner.open.all().into_iter().map(|(_, v)| v).collect();
        if alerts.is_empty() || !leading() {
            continue;
        }
        if let Err(f) = inner.post(&Value::Array(alerts)) {
            log::warn!("alertmanager: re-posting the open incidents failed: {f:?}");
        }
    }
}

impl Inner {
    fn post(&self, alerts: &Value) -> Result<(), Failure> {
        let base = self.cfg.url.expose();
        let url = format!("{base}/api/v2/alerts");
        let auth = self.cfg.auth_header.as_ref().map(|a| a.expose());
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let [u, path] = url_secrets(base);
        // user:password@ sits between the scheme and the host.
        let userinfo = base
            .split_once("://")
            .and_then(|(_, r)| r.split_once('@'))
            .map_or("", |(ui, _)| ui);
        let secrets = [u, path, userinfo, auth.unwrap_or_default()];
        post_attempt(
            &self.agent,
            &url,
            &headers,
            alerts,
            "Alertmanager",
            &secrets,
        )
    }
}

impl Sink for Alertmanager {
    fn name(&self) -> &'static str {
        "alertmanager"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let inner = &self.inner;
        let now = unix_now();
        let mut batch = Vec::new();
        let mut after: Vec<(u64, Option<Value>)> = Vec::new();
        for item in alert.items() {
            let i = &item.incident;
            let a = render(item, inner.link_url.as_deref(), now);
            // Under other labels it is another alert: end the old one.
            if let Some(old) = inner.open.get(&i.id).filter(|o| o["labels"] != a["labels"]) {
                batch.push(ended(old, now));
            }
            let firing = i.state != State::Resolved;
            after.push((i.id, firing.then(|| a.clone())));
            batch.push(a);
        }
        inner.post(&Value::Array(batch))?;
        for (id, firing) in after {
            match firing {
                Some(a) => inner.open.insert(id, a),
                None => {
                    inner.open.remove(&id);
                }
            }
        }
        Ok(())
    }
}

fn ended(mut alert: Value, now: i64) -> Value {
    alert["endsAt"] = json!(format_rfc3339(now));
    alert
}

/// Label values: one line, at most `LABEL_MAX` characters.
fn label(s: &str) -> Value {
    json!(clip(&digest::one_line(s), LABEL_MAX))
}

/// One incident as an Alertmanager alert; with `endsAt` once resolved.
pub fn render(item: &Item, link_url: Option<&str>, now: i64) -> Value {
    let i = &item.incident;
    let mut labels = Map::new();
    labels.insert("alertname".into(), label(i.finding.kind.as_str()));
    labels.insert("namespace".into(), label(&i.namespace));
    labels.insert(
        "workload".into(),
        label(&format!("{}/{}", i.workload.kind, i.workload.name)),
    );
    labels.insert("severity".into(), label(i.severity().as_str()));
    labels.insert("cluster".into(), label(super::slack::cluster(i)));
    if let Some(d) = &item.diagnosis {
        labels.insert("cause".into(), label(d.cause.as_str()));
    }
    let mut annotations = Map::new();
    annotations.insert(
        "summary".into(),
        json!(clip(&digest::headline(item, false), ANNOTATION_MAX)),
    );
    if let Some(d) = &item.diagnosis {
        annotations.insert(
            "description".into(),
            json!(clip(&d.summary, ANNOTATION_MAX)),
        );
        if !d.fix.text.is_empty() {
            annotations.insert("fix".into(), json!(clip(&d.fix.text, ANNOTATION_MAX)));
        }
        if !d.fix.commands.is_empty() {
            annotations.insert(
                "commands".into(),
                json!(clip(&d.fix.commands.join("\n"), ANNOTATION_MAX)),
            );
        }
    }
    annotations.insert("incident".into(), json!(format!("#{}", i.id)));
    let mut alert = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": format_rfc3339(i.first_seen_ms.div_euclid(1000)),
    });
    if let Some(t) = link_url {
        alert["generatorURL"] = json!(digest::link(t, i));
    }
    if i.state == State::Resolved {
        // Its own last sighting, but never before it started nor in the future.
        let start = i.first_seen_ms.div_euclid(1000);
        let end = i.last_seen_ms.div_euclid(1000).min(now).max(start);
        alert["endsAt"] = json!(format_rfc3339(end));
    }
    alert
}
