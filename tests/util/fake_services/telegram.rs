//! A fake Telegram Bot API (`/bot{TOKEN}/sendMessage`): checks the token,
//! the chat, `parse_mode: HTML` with only the tags and entities Telegram
//! knows, properly nested, at most 4096 characters after the entities are
//! parsed, and that a reply names a message it sent (unless
//! `allow_sending_without_reply`). Answers `{"ok": true, "result": {…}}` or
//! `{"ok": false, "error_code", "description"}` as the Bot API does.
//! Message ids count per chat, as Telegram's do, and a reply must name a
//! message of its own chat.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::json;

use super::{Answer, Refusal, Service, body_json};
use crate::util::http::Request;

pub const TOKEN: &str = "123456789:AAH-telegram-SECRET-token";
pub const CHAT: &str = "-1001234567890";

/// A sent message: its text and the id it replied to.
type Sent = (String, Option<i64>);

pub struct Telegram {
    /// The chats the bot is in: `CHAT` and any others.
    chats: Vec<String>,
    /// (chat, message id) → what was sent.
    pub messages: Mutex<BTreeMap<(String, i64), Sent>>,
}

impl Default for Telegram {
    fn default() -> Self {
        Telegram::in_chats(&[])
    }
}

impl Telegram {
    /// A bot that is in `CHAT` and in `others` too.
    pub fn in_chats(others: &[&str]) -> Telegram {
        let mut chats = vec![CHAT.to_string()];
        chats.extend(others.iter().map(|c| c.to_string()));
        Telegram {
            chats,
            messages: Mutex::new(BTreeMap::new()),
        }
    }
}

fn error(code: u16, description: &str) -> Refusal {
    (
        code,
        json!({"ok": false, "error_code": code, "description": description}),
    )
}

impl Service for Telegram {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal> {
        let Some(method) = req.path.strip_prefix(&format!("/bot{TOKEN}/")) else {
            return Err(error(401, "Unauthorized"));
        };
        if method != "sendMessage" || req.method != "POST" {
            return Err(error(404, "Not Found"));
        }
        let v = body_json(req, |w| error(400, &format!("Bad Request: {w}")))?;
        let Some(chat) = v["chat_id"]
            .as_str()
            .filter(|c| self.chats.iter().any(|k| k == c))
        else {
            return Err(error(400, "Bad Request: chat not found"));
        };
        if v["parse_mode"] != "HTML" {
            return Err(error(400, "Bad Request: expected parse_mode HTML"));
        }
        let text = v["text"].as_str().unwrap_or("");
        check_text(text).map_err(|w| error(400, &format!("Bad Request: {w}")))?;
        let mut messages = self.messages.lock().unwrap();
        let reply_to = v["reply_parameters"]["message_id"].as_i64();
        if let Some(id) = reply_to {
            let lenient = v["reply_parameters"]["allow_sending_without_reply"] == true;
            if !messages.contains_key(&(chat.to_string(), id)) && !lenient {
                return Err(error(400, "Bad Request: message to be replied not found"));
            }
        }
        let id = messages.keys().filter(|(c, _)| c == chat).count() as i64 + 100;
        messages.insert((chat.to_string(), id), (text.to_string(), reply_to));
        Ok((
            200,
            json!({"ok": true, "result": {"message_id": id, "chat": {"id": chat}, "text": text}}),
        ))
    }
}

const TAGS: &[&str] = &["b", "i", "u", "s", "code", "pre", "a", "blockquote"];

/// Telegram's HTML: known tags, nested properly, known entities; at most
/// 4096 characters once parsed, and not empty.
pub fn check_text(text: &str) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    let mut visible = 0;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let end = rest.find('>').ok_or("can't parse entities: unclosed tag")?;
                let tag = &rest[1..end];
                let (closing, name) = match tag.strip_prefix('/') {
                    Some(n) => (true, n),
                    None => (false, tag.split(' ').next().unwrap_or("")),
                };
                if !TAGS.contains(&name) {
                    return Err(format!(
                        "can't parse entities: unsupported start tag {name:?}"
                    ));
                }
                if closing {
                    if open.pop().as_deref() != Some(name) {
                        return Err(format!(
                            "can't parse entities: can't find end tag for {name}"
                        ));
                    }
                } else {
                    open.push(name.to_string());
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let end = rest.find(';').ok_or("can't parse entities: bare &")?;
                if !["&amp;", "&lt;", "&gt;", "&quot;"].contains(&&rest[..=end]) {
                    return Err(format!("can't parse entities: unknown {}", &rest[..=end]));
                }
                visible += 1;
                rest = &rest[end + 1..];
            }
            '>' => return Err("can't parse entities: bare >".into()),
            c => {
                visible += 1;
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some(t) = open.pop() {
        return Err(format!("can't parse entities: {t} is not closed"));
    }
    if visible == 0 {
        return Err("message text is empty".into());
    }
    if visible > 4096 {
        return Err(format!("message is too long ({visible} characters)"));
    }
    Ok(())
}

impl Telegram {
    /// `CHAT`'s messages, in order: (id, text, the id it replied to).
    pub fn all(&self) -> Vec<(i64, String, Option<i64>)> {
        self.in_chat(CHAT)
    }

    /// `chat`'s messages, in order.
    pub fn in_chat(&self, chat: &str) -> Vec<(i64, String, Option<i64>)> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|((c, _), _)| c == chat)
            .map(|((_, k), (t, r))| (*k, t.clone(), *r))
            .collect()
    }
}
