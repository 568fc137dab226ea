//! A fake PagerDuty Events API v2 (`POST /v2/enqueue`): the routing key,
//! `event_action`, `dedup_key` (≤ 255), and for a trigger a payload with
//! summary (1–1024), source, severity (critical, error, warning, info), an
//! RFC 3339 timestamp and object `custom_details`; at most 512 KB. Answers
//! 202 `{"status": "success", "dedup_key"}`, or 400 `invalid event` with
//! the errors, as PagerDuty does. Keeps which dedup keys are open.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};

use opsctrl_daemon::util::time::parse_rfc3339;

use super::{Answer, Refusal, Service, body_json, text_within};
use crate::util::http::Request;

pub const ROUTING_KEY: &str = "R0SECRETKEY0123456789abcdefABCDE";
pub const PATH: &str = "/v2/enqueue";

#[derive(Default)]
pub struct PagerDuty {
    pub open: Mutex<BTreeSet<String>>,
    /// (action, dedup_key) in order.
    pub events: Mutex<Vec<(String, String)>>,
}

fn invalid(why: String) -> Refusal {
    (
        400,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": [why]}),
    )
}

impl Service for PagerDuty {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        if req.method != "POST" || req.path != PATH {
            return Err((404, json!({"status": "not found"})));
        }
        if req.body.len() > 512 * 1024 {
            return Err(invalid("event is larger than 512 KB".into()));
        }
        let v = body_json(req, invalid)?;
        check_event(&v).map_err(invalid)?;
        if v["routing_key"] != ROUTING_KEY {
            return Err(invalid("Invalid routing key".into()));
        }
        let action = v["event_action"].as_str().unwrap_or("").to_string();
        let key = v["dedup_key"].as_str().unwrap_or("").to_string();
        let mut open = self.open.lock().unwrap();
        if action == "trigger" {
            open.insert(key.clone());
        } else {
            open.remove(&key);
        }
        self.events.lock().unwrap().push((action, key.clone()));
        Ok((
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": key}),
        ))
    }
}

pub fn check_event(v: &Value) -> Result<(), String> {
    text_within(&v["routing_key"], "routing_key", 32, 32)?;
    let action = v["event_action"]
        .as_str()
        .ok_or("event_action is missing")?;
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Err(format!("event_action {action}"));
    }
    if action != "trigger" || !v["dedup_key"].is_null() {
        text_within(&v["dedup_key"], "dedup_key", 1, 255)?;
    }
    if action != "trigger" {
        return Ok(());
    }
    let p = &v["payload"];
    text_within(&p["summary"], "payload.summary", 1, 1024)?;
    text_within(&p["source"], "payload.source", 1, 255)?;
    let sev = p["severity"].as_str().unwrap_or("");
    if !["critical", "error", "warning", "info"].contains(&sev) {
        return Err(format!("payload.severity {sev:?}"));
    }
    if let Some(t) = p.get("timestamp") {
        if t.as_str().and_then(parse_rfc3339).is_none() {
            return Err(format!("payload.timestamp {t}"));
        }
    }
    if !p["custom_details"].is_object() {
        return Err("payload.custom_details is not an object".into());
    }
    Ok(())
}
