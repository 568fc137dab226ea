//! A fake Discord webhook (`/api/webhooks/ID/TOKEN`): `POST` (with
//! `?wait=true`: answers the message with its id, else 204) and
//! `PATCH …/messages/{id}` (404 Unknown Message for an id it never gave).
//! It enforces Discord's limits (content 2000; 10 embeds; title 256,
//! description 4096, 25 fields of 256/1024, footer 2048; 6000 characters
//! over all embeds; colour 0..=0xFFFFFF) and the daemon's promise that
//! nobody is pinged (`allowed_mentions.parse` empty).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::{Answer, Refusal, Service, body_json, chars, text_within};
use crate::util::http::Request;

pub const ID: &str = "112233445566778899";
pub const TOKEN: &str = "discord-TOKEN-SECRET-abcdef";

/// Message ids are unique over every fake webhook, as Discord's snowflakes
/// are: a sink that edits in the wrong webhook gets a 404, never a match.
static NEXT: AtomicU64 = AtomicU64::new(0);

pub struct Discord {
    /// The webhook's token (`TOKEN`, or another webhook's).
    token: String,
    /// Message id → its bodies, first the post then every edit.
    pub messages: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl Default for Discord {
    fn default() -> Self {
        Discord::with_token(TOKEN)
    }
}

impl Discord {
    /// A webhook whose token is `token` (a second webhook beside `TOKEN`'s).
    pub fn with_token(token: &str) -> Discord {
        Discord {
            token: token.into(),
            messages: Mutex::new(BTreeMap::new()),
        }
    }
}

pub fn url(base: &str) -> String {
    url_with(base, TOKEN)
}

/// The URL of the webhook with `token`.
pub fn url_with(base: &str, token: &str) -> String {
    format!("{base}/api/webhooks/{ID}/{token}")
}

fn bad(why: String) -> Refusal {
    (
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": why}),
    )
}

impl Service for Discord {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        let base = format!("/api/webhooks/{ID}/{}", self.token);
        let Some(rest) = req.path.strip_prefix(&base) else {
            return Err((
                401,
                json!({"code": 50027, "message": "Invalid Webhook Token"}),
            ));
        };
        let v = body_json(req, bad)?;
        check_message(&v).map_err(bad)?;
        let mut messages = self.messages.lock().unwrap();
        match (req.method.as_str(), rest) {
            ("POST", "") => {
                let id = format!("90{:016}", NEXT.fetch_add(1, Ordering::SeqCst) + 1);
                messages.insert(id.clone(), vec![v.clone()]);
                if req.flag("wait") {
                    Ok((
                        200,
                        json!({"id": id, "webhook_id": ID, "embeds": v["embeds"]}),
                    ))
                } else {
                    Ok((204, Value::Null))
                }
            }
            ("PATCH", m) => {
                let id = m.strip_prefix("/messages/").unwrap_or("");
                match messages.get_mut(id) {
                    Some(history) => {
                        history.push(v.clone());
                        Ok((200, json!({"id": id, "embeds": v["embeds"]})))
                    }
                    None => Err((404, json!({"code": 10008, "message": "Unknown Message"}))),
                }
            }
            _ => Err((
                405,
                json!({"code": 0, "message": "405: Method Not Allowed"}),
            )),
        }
    }
}

/// Discord's limits on one message.
pub fn check_message(v: &Value) -> Result<(), String> {
    if v["allowed_mentions"]["parse"] != json!([]) {
        return Err("allowed_mentions.parse is not empty: a log could ping @everyone".into());
    }
    if !v["content"].is_null() {
        text_within(&v["content"], "content", 0, 2000)?;
    }
    let embeds = v["embeds"].as_array().ok_or("no embeds")?;
    if embeds.is_empty() || embeds.len() > 10 {
        return Err(format!("{} embeds", embeds.len()));
    }
    let mut total = 0;
    for e in embeds {
        text_within(&e["title"], "title", 1, 256)?;
        text_within(&e["description"], "description", 1, 4096)?;
        total += chars(&e["title"]) + chars(&e["description"]);
        let c = e["color"].as_u64().ok_or("color is not a number")?;
        if c > 0xFF_FF_FF {
            return Err(format!("color {c}"));
        }
        if let Some(f) = e["footer"].as_object() {
            text_within(&f["text"], "footer.text", 1, 2048)?;
            total += chars(&f["text"]);
        }
        let fields = e["fields"].as_array().map_or(&[][..], Vec::as_slice);
        if fields.len() > 25 {
            return Err(format!("{} fields", fields.len()));
        }
        for f in fields {
            text_within(&f["name"], "field name", 1, 256)?;
            text_within(&f["value"], "field value", 1, 1024)?;
            total += chars(&f["name"]) + chars(&f["value"]);
        }
        // A code block its content closed early shows the rest as text.
        let d = e["description"].as_str().unwrap_or("");
        if d.matches("```").count() % 2 == 1 {
            return Err("unbalanced code fences in the description".into());
        }
    }
    if total > 6000 {
        return Err(format!("embeds total {total} characters"));
    }
    Ok(())
}
