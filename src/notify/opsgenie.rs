/*!
The Opsgenie sink (`OPSGENIE_API_KEY`, `OPSGENIE_REGION`): Alerts API v2,
`Authorization: GenieKey …`. Each incident is one Opsgenie alert whose
`alias` is the incident's stable key (`digest::stable_key`):

- opening (and a reminder): `POST /v2/alerts` with message, alias,
  description, tags, details, entity, source and a priority from the
  severity (critical P1 … informational P5); Opsgenie folds a create with
  an open alias into that alert;
- an update: a note on it (`POST /v2/alerts/{alias}/notes?identifierType=alias`);
- the resolution: `POST /v2/alerts/{alias}/close?identifierType=alias`.

A start-up summary or storm creates one alert per incident. Texts stay
within Opsgenie's limits (message 130, alias 512, description 15000, 20
tags of 50, details 8000 in all, entity 512, source 100, note 25000
characters), cut visibly. Opsgenie answers 202; 429 and 5xx are retried.
The key never appears in a log line or a failure.
*/

use serde_json::{Map, Value, json};

use super::digest::{self, Digest, clip, digest, section_text, stable_key};
use super::{Alert, Failure, Item, Method, Sink, call};
use crate::model::{Severity, State};
use crate::output;
use crate::settings;

pub const MESSAGE_MAX: usize = 130;
pub const ALIAS_MAX: usize = 512;
pub const DESCRIPTION_MAX: usize = 15_000;
pub const TAGS_MAX: usize = 20;
pub const TAG_MAX: usize = 50;
/// All keys and values of `details` together.
pub const DETAILS_MAX: usize = 8000;
pub const ENTITY_MAX: usize = 512;
pub const SOURCE_MAX: usize = 100;
pub const NOTE_MAX: usize = 25_000;

pub struct Opsgenie {
    cfg: settings::Opsgenie,
    link_url: Option<String>,
    agent: ureq::Agent,
}

impl Opsgenie {
    /// `cfg` is `settings::Alerts::opsgenie`, `link_url` `ALERT_LINK_URL`.
    pub fn new(cfg: settings::Opsgenie, link_url: Option<String>, agent: ureq::Agent) -> Opsgenie {
        Opsgenie {
            cfg,
            link_url,
            agent,
        }
    }

    fn post(&self, path: &str, body: &Value) -> Result<(), Failure> {
        let key = self.cfg.api_key.expose();
        let auth = format!("GenieKey {key}");
        let url = format!("{}{path}", self.cfg.api_url);
        call(
            &self.agent,
            Method::Post,
            &url,
            &[("Authorization", &auth)],
            body,
            "Opsgenie",
            &[key],
        )
        .map(drop)
    }
}

impl Sink for Opsgenie {
    fn name(&self) -> &'static str {
        "opsgenie"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let reminder = matches!(alert, Alert::Incident { reminder: true, .. });
        for item in alert.items() {
            let (path, body) = request(item, reminder, self.link_url.as_deref());
            self.post(&path, &body)?;
        }
        Ok(())
    }
}

pub fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::High => "P2",
        Severity::Medium => "P3",
        Severity::Low => "P4",
        Severity::Informational => "P5",
    }
}

const SOURCE: &str = "opsctrl-daemon";

/// The call for one incident: its path under the API base and its body.
pub fn request(item: &Item, reminder: bool, link_url: Option<&str>) -> (String, Value) {
    let i = &item.incident;
    let alias = stable_key(i);
    let single = Alert::Incident {
        item: Box::new(item.clone()),
        reminder,
    };
    let d = digest(&single);
    match i.state {
        State::Resolved => (
            format!("/v2/alerts/{alias}/close?identifierType=alias"),
            json!({"source": SOURCE, "note": clip(&d.headline, NOTE_MAX)}),
        ),
        State::Updated if !reminder => (
            format!("/v2/alerts/{alias}/notes?identifierType=alias"),
            json!({"source": SOURCE, "note": description(&d, 3000, NOTE_MAX)}),
        ),
        _ => {
            let mut tags = vec![
                "opsctrl".to_string(),
                i.severity().as_str().to_string(),
                i.finding.kind.as_str().to_string(),
            ];
            if let Some(d) = &item.diagnosis {
                tags.push(d.cause.as_str().to_string());
            }
            tags.push(i.namespace.clone());
            let tags: Vec<String> = tags
                .iter()
                .take(TAGS_MAX)
                .map(|t| clip(&digest::one_line(t), TAG_MAX))
                .collect();
            let title = digest::title(i, reminder);
            // The emoji is noise in Opsgenie's lists; the words stay.
            let message = title.split_once(' ').map_or(title.as_str(), |(_, t)| t);
            let body = json!({
                "message": clip(message, MESSAGE_MAX),
                "alias": clip(&alias, ALIAS_MAX),
                "description": description(&d, 3000, DESCRIPTION_MAX),
                "tags": tags,
                "details": details(&d, link_url.map(|t| digest::link(t, i))),
                "entity": clip(&output::subject(i), ENTITY_MAX),
                "source": SOURCE,
                "priority": priority(i.severity()),
            });
            ("/v2/alerts".to_string(), body)
        }
    }
}

/// The headline and every section, within `max` characters.
fn description(d: &Digest, section_max: usize, max: usize) -> String {
    let mut out = d.headline.clone();
    for s in &d.sections {
        let part = format!(
            "\n\n{}:\n{}",
            s.title,
            section_text(s, section_max, 300, |o, c| o.push(c))
        );
        if out.chars().count() + part.chars().count() > max.saturating_sub(80) {
            out.push_str("\n\n");
            out.push_str(&digest::omitted_note(1));
            break;
        }
        out.push_str(&part);
    }
    clip(&out, max)
}

/// The facts as details, keys and values within `DETAILS_MAX` in all.
fn details(d: &Digest, link: Option<String>) -> Value {
    let mut out = Map::new();
    let mut used = 0;
    let mut pairs: Vec<(String, String)> = d
        .facts
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if let Some(l) = link {
        pairs.push(("Link".into(), l));
    }
    for (k, v) in pairs {
        let v = clip(&digest::one_line(&v), 500);
        let cost = k.chars().count() + v.chars().count();
        if used + cost > DETAILS_MAX {
            break;
        }
        used += cost;
        out.insert(k, json!(v));
    }
    Value::Object(out)
}
