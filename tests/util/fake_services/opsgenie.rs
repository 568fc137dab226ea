//! A fake Opsgenie Alerts API: `Authorization: GenieKey KEY`; create
//! (`POST /v2/alerts`: message 1–130, alias ≤ 512, description ≤ 15000, ≤ 20
//! tags of ≤ 50, details ≤ 8000 characters in all, entity ≤ 512, source ≤
//! 100, priority P1–P5), close and notes by alias
//! (`/v2/alerts/{alias}/close|notes?identifierType=alias`, note ≤ 25000).
//! Answers 202 `Request will be processed`, or 422/401 as Opsgenie does.
//! Keeps each alias's story.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Answer, Refusal, Service, body_json, text_within};
use crate::util::http::Request;

pub const KEY: &str = "0b1c2d3e-4f50-6172-8394-SECRETKEY000";

#[derive(Default)]
pub struct Opsgenie {
    /// Alias → what happened to it: `create`, `note`, `close`.
    pub alerts: Mutex<BTreeMap<String, Vec<String>>>,
}

fn unprocessable(why: String) -> Refusal {
    (
        422,
        json!({"message": why, "took": 0.001, "requestId": "r-1"}),
    )
}

impl Service for Opsgenie {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        if req.header("authorization") != Some(&format!("GenieKey {KEY}")) {
            return Err((
                401,
                json!({"message": "Could not authenticate", "took": 0.0}),
            ));
        }
        if req.method != "POST" {
            return Err((405, json!({"message": "Method not allowed"})));
        }
        let v = body_json(req, unprocessable)?;
        let mut alerts = self.alerts.lock().unwrap();
        if req.path == "/v2/alerts" {
            check_create(&v).map_err(unprocessable)?;
            let alias = v["alias"].as_str().unwrap_or("").to_string();
            alerts.entry(alias).or_default().push("create".into());
        } else {
            let rest = req.path.strip_prefix("/v2/alerts/").unwrap_or("");
            let (alias, action) = rest.rsplit_once('/').unwrap_or(("", ""));
            if !["close", "notes"].contains(&action) {
                return Err((404, json!({"message": "not found"})));
            }
            if req.param("identifierType") != Some("alias") {
                return Err(unprocessable("identifierType must be alias here".into()));
            }
            check_action(&v).map_err(unprocessable)?;
            let what = if action == "close" { "close" } else { "note" };
            alerts
                .entry(alias.to_string())
                .or_default()
                .push(what.into());
        }
        Ok((
            202,
            json!({"result": "Request will be processed", "took": 0.002, "requestId": "r-1"}),
        ))
    }
}

pub fn check_create(v: &Value) -> Result<(), String> {
    text_within(&v["message"], "message", 1, 130)?;
    text_within(&v["alias"], "alias", 1, 512)?;
    text_within(&v["description"], "description", 0, 15_000)?;
    text_within(&v["entity"], "entity", 0, 512)?;
    text_within(&v["source"], "source", 0, 100)?;
    let tags = v["tags"].as_array().ok_or("tags is not a list")?;
    if tags.len() > 20 {
        return Err(format!("{} tags", tags.len()));
    }
    for t in tags {
        text_within(t, "tag", 1, 50)?;
    }
    let details = v["details"].as_object().ok_or("details is not an object")?;
    let mut total = 0;
    for (k, x) in details {
        let s = x.as_str().ok_or("a detail is not a string")?;
        total += k.chars().count() + s.chars().count();
    }
    if total > 8000 {
        return Err(format!("details have {total} characters"));
    }
    let p = v["priority"].as_str().unwrap_or("");
    if !["P1", "P2", "P3", "P4", "P5"].contains(&p) {
        return Err(format!("priority {p:?}"));
    }
    Ok(())
}

pub fn check_action(v: &Value) -> Result<(), String> {
    if !v["note"].is_null() {
        text_within(&v["note"], "note", 0, 25_000)?;
    }
    if !v["source"].is_null() {
        text_within(&v["source"], "source", 0, 100)?;
    }
    Ok(())
}
