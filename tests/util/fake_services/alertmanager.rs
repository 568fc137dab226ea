//! A fake Alertmanager API v2 (`POST /api/v2/alerts`): a list of alerts,
//! each with labels (valid names, string values, an `alertname`),
//! string annotations, RFC 3339 `startsAt`/`endsAt` (start not after end),
//! `generatorURL` a URL. Answers 200, or 400 with the reason as
//! Alertmanager does. Keeps every post per alert (by its labels).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use opsctrl_daemon::util::time::parse_rfc3339;

use super::{Answer, Refusal, Service, body_json};
use crate::util::http::Request;

pub const AUTH: &str = "Basic YWxlcnQ6U0VDUkVUcGFzcw==";

#[derive(Default)]
pub struct Alertmanager {
    /// The labels (as compact JSON) → each post of that alert, in order.
    pub alerts: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl Service for Alertmanager {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        if req.method != "POST" || req.path != "/api/v2/alerts" {
            return Err((404, json!("Not Found")));
        }
        if req.header("authorization") != Some(AUTH) {
            return Err((401, json!("Unauthorized")));
        }
        let v = body_json(req, |w| (400, json!(w)))?;
        check_alerts(&v).map_err(|w| (400, json!(w)))?;
        let mut alerts = self.alerts.lock().unwrap();
        for a in v.as_array().into_iter().flatten() {
            alerts
                .entry(a["labels"].to_string())
                .or_default()
                .push(a.clone());
        }
        Ok((200, Value::Null))
    }
}

fn label_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

pub fn check_alerts(v: &Value) -> Result<(), String> {
    let list = v.as_array().ok_or("body is not a list of alerts")?;
    for a in list {
        let labels = a["labels"].as_object().ok_or("labels is not an object")?;
        if labels
            .get("alertname")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err("an alert has no alertname".into());
        }
        for (k, x) in labels {
            if !label_name_ok(k) || !x.is_string() {
                return Err(format!("invalid label {k}={x}"));
            }
        }
        if let Some(ann) = a.get("annotations") {
            let ann = ann.as_object().ok_or("annotations is not an object")?;
            if ann.iter().any(|(k, x)| !label_name_ok(k) || !x.is_string()) {
                return Err("invalid annotation".into());
            }
        }
        let time = |k: &str| -> Result<Option<i64>, String> {
            match a.get(k) {
                None => Ok(None),
                Some(t) => t
                    .as_str()
                    .and_then(parse_rfc3339)
                    .map(Some)
                    .ok_or(format!("{k} is not RFC 3339: {t}")),
            }
        };
        if let (Some(s), Some(e)) = (time("startsAt")?, time("endsAt")?) {
            if s > e {
                return Err("start time must be before end time".into());
            }
        }
        if let Some(g) = a.get("generatorURL") {
            let g = g.as_str().unwrap_or("");
            if !g.starts_with("http://") && !g.starts_with("https://") {
                return Err(format!("generatorURL {g}"));
            }
        }
    }
    Ok(())
}
