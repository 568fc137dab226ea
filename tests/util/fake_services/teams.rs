//! A fake Teams Workflows webhook (`PATH?…&sig=SIG`): a `message` with
//! Adaptive Card attachments, under Teams' 28 KB message limit, each card
//! of known elements with non-empty texts. Answers 202 Accepted, as a
//! workflow does; a bad signature is 401, a bad message 400.

use serde_json::{Value, json};

use super::{Answer, Refusal, Service, body_json};
use crate::util::http::Request;

pub const PATH: &str = "/workflows/0a1b2c/triggers/manual/paths/invoke";
pub const SIG: &str = "teams-signature-SECRET-1234";
/// Teams refuses messages above about 28 KB.
pub const MAX_BODY: usize = 28 * 1024;

pub struct Teams;

/// The URL the sink is given (the signature is the credential).
pub fn url(base: &str) -> String {
    format!("{base}{PATH}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}")
}

fn bad(why: String) -> Refusal {
    (
        400,
        json!({"error": {"code": "InvalidRequestContent", "message": why}}),
    )
}

impl Service for Teams {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        if req.method != "POST" || req.path != PATH {
            return Err((404, json!({"error": {"code": "NotFound"}})));
        }
        if req.param("sig") != Some(SIG) {
            return Err((
                401,
                json!({"error": {"code": "DirectApiAuthorizationRequired"}}),
            ));
        }
        if req.body.len() > MAX_BODY {
            return Err((
                413,
                json!({"error": {"code": "MessageTooLarge", "message": format!("{} bytes", req.body.len())}}),
            ));
        }
        let v = body_json(req, bad)?;
        check_message(&v).map_err(bad)?;
        Ok((202, Value::Null))
    }
}

/// What Teams requires of the message, and what the daemon promises:
/// no link or template syntax from pod text in Markdown texts.
pub fn check_message(v: &Value) -> Result<(), String> {
    let len = serde_json::to_vec(v).map_err(|e| e.to_string())?.len();
    if len > MAX_BODY {
        return Err(format!("message is {len} bytes"));
    }
    if v["type"] != "message" {
        return Err("type is not message".into());
    }
    let attachments = v["attachments"].as_array().ok_or("no attachments")?;
    if attachments.is_empty() {
        return Err("no attachments".into());
    }
    for a in attachments {
        if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
            return Err(format!("contentType {}", a["contentType"]));
        }
        let card = &a["content"];
        if card["type"] != "AdaptiveCard" || !card["version"].is_string() {
            return Err("content is not an AdaptiveCard with a version".into());
        }
        let body = card["body"].as_array().ok_or("card has no body")?;
        if body.is_empty() {
            return Err("card body is empty".into());
        }
        for e in body {
            check_element(e)?;
        }
    }
    Ok(())
}

fn check_element(e: &Value) -> Result<(), String> {
    match e["type"].as_str() {
        Some("TextBlock") => {
            let t = e["text"].as_str().ok_or("TextBlock without text")?;
            if t.is_empty() {
                return Err("empty TextBlock".into());
            }
            if t.contains("](") || t.contains("{{") {
                return Err(format!("Markdown link or template in a TextBlock: {t}"));
            }
        }
        Some("RichTextBlock") => {
            let inlines = e["inlines"]
                .as_array()
                .ok_or("RichTextBlock without inlines")?;
            for r in inlines {
                if r["type"] != "TextRun" || r["text"].as_str().is_none_or(str::is_empty) {
                    return Err(format!("bad inline {r}"));
                }
            }
        }
        Some("FactSet") => {
            let facts = e["facts"].as_array().ok_or("FactSet without facts")?;
            for f in facts {
                let (Some(t), Some(v)) = (f["title"].as_str(), f["value"].as_str()) else {
                    return Err(format!("bad fact {f}"));
                };
                if t.is_empty() || v.contains("](") || v.contains("{{") {
                    return Err(format!("bad fact {f}"));
                }
            }
        }
        other => return Err(format!("unknown element type {other:?}")),
    }
    Ok(())
}
