//! A fake ntfy server: JSON publishing (`POST /` with `topic`), a token
//! when the topic is protected, and ntfy's rules: a message of at most
//! 4096 bytes (ntfy would make a larger one an attachment), priority 1–5,
//! tags a list of strings, `click` a URL. Answers the message event as ntfy does.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::{Answer, Refusal, Service, body_json};
use crate::util::http::Request;

pub const TOPIC: &str = "opsctrl-SECRET-topic";
pub const TOKEN: &str = "tk_ntfySECRETtoken0123456789";

#[derive(Default)]
pub struct Ntfy {
    pub published: Mutex<Vec<Value>>,
}

pub fn url(base: &str) -> String {
    format!("{base}/{TOPIC}")
}

fn error(code: u16, why: &str) -> Refusal {
    (
        code,
        json!({"code": code * 100 + 1, "http": code, "error": why}),
    )
}

impl Service for Ntfy {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        if req.method != "POST" || req.path != "/" {
            return Err(error(404, "page not found"));
        }
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Err(error(401, "unauthorized"));
        }
        let v = body_json(req, |w| error(400, &w))?;
        check_message(&v).map_err(|w| error(400, &w))?;
        self.published.lock().unwrap().push(v.clone());
        Ok((
            200,
            json!({"id": "abc123", "event": "message", "topic": v["topic"], "title": v["title"]}),
        ))
    }
}

pub fn check_message(v: &Value) -> Result<(), String> {
    if v["topic"] != TOPIC {
        return Err(format!("topic {}", v["topic"]));
    }
    let m = v["message"].as_str().ok_or("no message")?;
    if m.is_empty() || m.len() > 4096 {
        return Err(format!("message of {} bytes", m.len()));
    }
    if !v["title"].is_string() {
        return Err("title is not a string".into());
    }
    let p = v["priority"].as_u64().ok_or("priority is not a number")?;
    if !(1..=5).contains(&p) {
        return Err(format!("invalid priority {p}"));
    }
    let tags = v["tags"].as_array().ok_or("tags is not a list")?;
    if tags.iter().any(|t| !t.is_string()) {
        return Err("a tag is not a string".into());
    }
    if let Some(c) = v.get("click") {
        let c = c.as_str().unwrap_or("");
        if !c.starts_with("http://") && !c.starts_with("https://") {
            return Err(format!("click is not a URL: {c}"));
        }
    }
    Ok(())
}
