/*!
The Telegram sink (`TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_ID`): each incident's
first alert is one `sendMessage` to the chat; its updates, reminders and
resolution are sent as replies to that message (`reply_parameters`, allowed
without the original, so a deleted first message does not block them).

Messages use `parse_mode: HTML` with every pod-supplied text escaped (`&`,
`<`, `>`), and stay within Telegram's 4096 characters: sections are cut
visibly and whole parts left out (said so), so a tag is never cut open.

A route's `channel` names another chat (checked as `TELEGRAM_CHAT_ID` is);
the first message is remembered per (incident, chat), so each chat's
replies go to the first message in that chat.

The Bot API answers `{"ok": true, "result": {"message_id"}}`, or an error
with `error_code` and `description`; a 429 carries
`parameters.retry_after`, honoured like `Retry-After`. The token is part of
every URL: it never appears in a log line or a failure.
*/

use std::time::Duration;

use serde_json::{Value, json};

use super::digest::{self, Digest, clip_escaped, digest, section_text};
use super::memory::Memory;
use super::{Alert, Failure, Method, Override, Sink, call};
use crate::model::State;
use crate::settings;

/// One message's text, characters.
pub const TEXT_MAX: usize = 4096;
const LINE_MAX: usize = 300;

pub struct Telegram {
    cfg: settings::Telegram,
    agent: ureq::Agent,
    /// (incident id, chat) → the message id of its first message there.
    first: Memory<i64, (u64, String)>,
}

impl Telegram {
    /// `cfg` is `settings::Alerts::telegram`; `agent` from `net::http::agent`.
    pub fn new(cfg: settings::Telegram, agent: ureq::Agent) -> Telegram {
        Telegram {
            cfg,
            agent,
            first: Memory::default(),
        }
    }

    /// `sendMessage` to `chat`; the sent message's id.
    fn send(
        &self,
        chat: &str,
        text: String,
        reply_to: Option<i64>,
    ) -> Result<Option<i64>, Failure> {
        let token = self.cfg.token.expose();
        let url = format!("{}/bot{token}/sendMessage", self.cfg.api_url);
        let mut body = json!({
            "chat_id": chat,
            "text": text,
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
        });
        if let Some(id) = reply_to {
            body["reply_parameters"] =
                json!({"message_id": id, "allow_sending_without_reply": true});
        }
        let secrets = [token, url.as_str()];
        let reply = call(
            &self.agent,
            Method::Post,
            &url,
            &[],
            &body,
            "Telegram sendMessage",
            &secrets,
        )
        .map_err(with_retry_after)?;
        let answer = reply.json().unwrap_or(Value::Null);
        if answer.get("ok").and_then(Value::as_bool) == Some(false) {
            let why = answer
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("ok: false");
            return Err(Failure::Permanent(format!("Telegram sendMessage: {why}")));
        }
        Ok(answer.pointer("/result/message_id").and_then(Value::as_i64))
    }
}

/// A 429's `parameters.retry_after` (in the body, where Telegram puts it)
/// as the retry delay when no header said one.
fn with_retry_after(f: Failure) -> Failure {
    match f {
        Failure::Retry { why, after: None } => {
            let after = why
                .split("\"retry_after\":")
                .nth(1)
                .and_then(|rest| {
                    let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    n.parse::<u64>().ok()
                })
                .map(Duration::from_secs);
            Failure::Retry { why, after }
        }
        other => other,
    }
}

impl Telegram {
    /// One alert to `chat`, replying to the incident's first message there.
    fn deliver_in(&self, alert: &Alert, chat: &str) -> Result<(), Failure> {
        let text = render(alert);
        let Alert::Incident { item, .. } = alert else {
            return self.send(chat, text, None).map(drop);
        };
        let i = &item.incident;
        let key = (i.id, chat.to_string());
        match self.first.get(&key) {
            Some(first) => {
                self.send(chat, text, Some(first))?;
                if i.state == State::Resolved {
                    self.first.remove(&key);
                }
            }
            None => {
                let sent = self.send(chat, text, None)?;
                if let (Some(id), false) = (sent, i.state == State::Resolved) {
                    self.first.insert(key, id);
                }
            }
        }
        Ok(())
    }
}

impl Sink for Telegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        self.deliver_in(alert, &self.cfg.chat_id)
    }

    /// A route's `channel`: another chat (its id or @username).
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        match to {
            Override::Channel(chat) => self.deliver_in(alert, chat),
            Override::Webhook { .. } => self.deliver(alert),
        }
    }
}

/// HTML's three special characters as entities.
fn push_html(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

fn esc(s: &str, max: usize) -> String {
    clip_escaped(s, max, push_html)
}

/// The message text for an alert: HTML, at most `TEXT_MAX` characters.
pub fn render(alert: &Alert) -> String {
    let d = digest(alert);
    digest::fitted(|b| text(&d, b), |t| t.chars().count() <= TEXT_MAX)
}

fn text(d: &Digest, budget: usize) -> String {
    let mut out = format!("<b>{}</b>\n", esc(&digest::one_line(&d.title), 256));
    let facts: Vec<String> = d
        .facts
        .iter()
        .map(|(k, v)| format!("<b>{k}:</b> {}", esc(&digest::one_line(v), 150)))
        .collect();
    out.push_str(&facts.join("\n"));
    // Whole parts or none, so a tag is never cut open.
    let mut left_out = 0;
    for s in &d.sections {
        if budget == 0 {
            left_out += 1;
            continue;
        }
        let body = section_text(s, budget, LINE_MAX, push_html);
        let part = if s.code {
            format!("\n\n<b>{}</b>\n<pre>{body}</pre>", s.title)
        } else {
            format!("\n\n<b>{}</b>\n{body}", s.title)
        };
        if out.chars().count() + part.chars().count() <= TEXT_MAX - 80 {
            out.push_str(&part);
        } else {
            left_out += 1;
        }
    }
    if left_out > 0 {
        out.push_str("\n\n<i>");
        out.push_str(&digest::omitted_note(left_out));
        out.push_str("</i>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_body_gives_the_delay() {
        let f = Failure::Retry {
            why: r#"HTTP 429: {"ok":false,"error_code":429,"parameters":{"retry_after":17}}"#
                .into(),
            after: None,
        };
        assert!(matches!(
            with_retry_after(f),
            Failure::Retry { after: Some(d), .. } if d == Duration::from_secs(17)
        ));
    }
}
