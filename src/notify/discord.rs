/*!
The Discord sink (`DISCORD_WEBHOOK_URL`): each incident is one message with
one embed, coloured by severity; its updates and its resolution edit that
message, so the channel shows each incident once, in its current state.

- The first alert is `POST {webhook}?wait=true`, whose answer (the message)
  gives the id, remembered per incident. A reminder is a new message (an
  edit notifies nobody), which becomes the one later edits go to.
- Later alerts are `PATCH {webhook}/messages/{id}` with the whole message;
  a 404 (the message was deleted) posts a new one instead.
- A route's `webhook_file` names another webhook: the message ids are kept
  per (incident, webhook), so each webhook's message is the one edited.
- A start-up summary or storm is one message listing its incidents.

Discord refuses a message that breaks a limit (title 256, description 4096,
25 fields of 256/1024, footer 2048, 6000 characters over all embeds, 10
embeds), so each text is cut visibly and the whole is rendered again with
smaller sections until the total fits. Pod text is escaped (Markdown and
masked links), `allowed_mentions` is empty so `@everyone` in a log pings
nobody, and code blocks cannot be closed early by their content.

429 (with `Retry-After`) and 5xx are retried. The URL is the credential
(its token): it never appears in a log line or a failure.
*/

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Value, json};

use super::digest::{self, Digest, clip_escaped, defuse_fences, digest, section_text};
use super::memory::Memory;
use super::{Alert, Failure, Method, Override, Sink, call, url_secrets};
use crate::model::{Severity, State};
use crate::secret::Secret;

pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const FOOTER_MAX: usize = 2048;
/// Title, description, field names and values and footer of all embeds.
pub const TOTAL_MAX: usize = 6000;
pub const EMBEDS_MAX: usize = 10;
/// One fact's value here, characters (well under the field limit).
const FACT_MAX: usize = 200;
const LINE_MAX: usize = 300;

pub struct Discord {
    url: Secret,
    agent: ureq::Agent,
    /// (incident id, which webhook) → the id of its message there: an
    /// incident routed to two webhooks has a message in each.
    messages: Memory<String, (u64, u64)>,
}

/// Which webhook, as a key: a hash, so the memory holds no credential.
fn hook_key(url: &str) -> u64 {
    let mut h = DefaultHasher::new();
    url.hash(&mut h);
    h.finish()
}

/// `(path, query)` of a webhook URL; the query (`thread_id`) goes on every
/// call.
fn parts(url: &str) -> (&str, &str) {
    match url.split_once('?') {
        Some((p, q)) => (p, q),
        None => (url, ""),
    }
}

impl Discord {
    /// `url` is `settings::Alerts::discord`; `agent` from `net::http::agent`.
    pub fn new(url: Secret, agent: ureq::Agent) -> Discord {
        Discord {
            url,
            agent,
            messages: Memory::default(),
        }
    }

    /// One call to `url`, a URL of the webhook `hook`.
    fn send(&self, hook: &str, method: Method, url: &str, body: &Value) -> Result<Value, Failure> {
        let [u, path] = url_secrets(hook);
        // The token is the last segment of the webhook's path.
        let token = parts(hook).0.rsplit('/').next().unwrap_or_default();
        let secrets = [u, path, url, token];
        let what = if method == Method::Patch {
            "Discord edit"
        } else {
            "Discord"
        };
        let reply = call(&self.agent, method, url, &[], body, what, &secrets)?;
        Ok(reply.json().unwrap_or(Value::Null))
    }

    /// Posts a new message; its id, when Discord said it.
    fn post(&self, hook: &str, body: &Value) -> Result<Option<String>, Failure> {
        let (path, query) = parts(hook);
        let url = if query.is_empty() {
            format!("{path}?wait=true")
        } else {
            format!("{path}?{query}&wait=true")
        };
        let answer = self.send(hook, Method::Post, &url, body)?;
        Ok(answer.get("id").and_then(Value::as_str).map(str::to_string))
    }

    fn edit(&self, hook: &str, message: &str, body: &Value) -> Result<(), Failure> {
        let (path, query) = parts(hook);
        let mut url = format!("{path}/messages/{message}");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        self.send(hook, Method::Patch, &url, body).map(drop)
    }

    /// One alert to the webhook `hook`, editing the incident's message there.
    fn deliver_at(&self, alert: &Alert, hook: &Secret) -> Result<(), Failure> {
        let hook = hook.expose();
        let body = render(alert);
        let Alert::Incident { item, reminder } = alert else {
            return self.post(hook, &body).map(drop);
        };
        let i = &item.incident;
        let key = (i.id, hook_key(hook));
        let resolved = i.state == State::Resolved;
        if let Some(id) = self.messages.get(&key).filter(|_| !*reminder) {
            match self.edit(hook, &id, &body) {
                Ok(()) => {
                    if resolved {
                        self.messages.remove(&key);
                    }
                    return Ok(());
                }
                // Deleted by someone: say it anew below.
                Err(Failure::Permanent(why)) if why.contains("HTTP 404") => {
                    self.messages.remove(&key);
                }
                Err(other) => return Err(other),
            }
        }
        let posted = self.post(hook, &body)?;
        match posted {
            Some(id) if !resolved => self.messages.insert(key, id),
            _ => {
                self.messages.remove(&key);
            }
        }
        Ok(())
    }
}

impl Sink for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        self.deliver_at(alert, &self.url)
    }

    /// A route's `webhook_file`: another webhook (another channel), with
    /// its own message per incident.
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        match to {
            Override::Webhook { url, .. } => self.deliver_at(alert, url),
            Override::Channel(_) => self.deliver(alert),
        }
    }
}

/// Discord's Markdown characters, escaped with a backslash.
fn push_md(out: &mut String, c: char) {
    if matches!(
        c,
        '\\' | '*' | '_' | '~' | '|' | '`' | '>' | '#' | '[' | ']' | '(' | ')' | '@' | '<' | ':'
    ) {
        out.push('\\');
    }
    out.push(c);
}

fn esc(s: &str, max: usize) -> String {
    clip_escaped(&digest::one_line(s), max, push_md)
}

fn color(d: &Digest) -> u32 {
    if d.resolved {
        return 0x2e_b8_86;
    }
    match d.severity {
        Severity::Critical => 0xd0_02_1b,
        Severity::High => 0xe8_5d_04,
        Severity::Medium => 0xf2_a9_00,
        Severity::Low => 0xf5_d0_42,
        Severity::Informational => 0x3a_86_ff,
    }
}

/// The message for an alert, inside every Discord limit.
pub fn render(alert: &Alert) -> Value {
    let d = digest(alert);
    let footer = match alert {
        Alert::Incident { item, .. } => format!("opsctrl-daemon · incident #{}", item.incident.id),
        _ => "opsctrl-daemon".to_string(),
    };
    digest::fitted(|b| message(&d, &footer, b), |v| embed_chars(v) <= TOTAL_MAX)
}

/// What Discord counts toward its 6000-character total.
pub fn embed_chars(v: &Value) -> usize {
    let count = |p: &Value| p.as_str().map_or(0, |s| s.chars().count());
    v["embeds"].as_array().map_or(0, |embeds| {
        embeds
            .iter()
            .map(|e| {
                let fields: usize = e["fields"].as_array().map_or(0, |f| {
                    f.iter()
                        .map(|x| count(&x["name"]) + count(&x["value"]))
                        .sum()
                });
                count(&e["title"]) + count(&e["description"]) + count(&e["footer"]["text"]) + fields
            })
            .sum()
    })
}

fn message(d: &Digest, footer: &str, budget: usize) -> Value {
    let fields: Vec<Value> = d
        .facts
        .iter()
        .take(FIELDS_MAX)
        .map(|(k, v)| {
            let value = esc(v, FACT_MAX.min(budget.max(60)));
            json!({"name": k, "value": if value.is_empty() { "-".into() } else { value }, "inline": true})
        })
        .collect();
    // Parts are added whole or not at all, so no cut can break a code block.
    let mut description = esc(&d.headline, 600.min(budget.max(200)));
    let mut left_out = 0;
    for s in &d.sections {
        let part = if budget == 0 {
            None
        } else if s.code {
            let text = defuse_fences(&section_text(s, budget, LINE_MAX, |o, c| o.push(c)));
            Some(format!("\n\n**{}**\n```\n{text}\n```", s.title))
        } else {
            let text = section_text(s, budget, LINE_MAX, push_md);
            Some(format!("\n\n**{}**\n{text}", s.title))
        };
        match part {
            Some(p) if description.chars().count() + p.chars().count() <= DESCRIPTION_MAX - 80 => {
                description.push_str(&p);
            }
            _ => left_out += 1,
        }
    }
    if left_out > 0 {
        description.push_str("\n\n");
        description.push_str(&digest::omitted_note(left_out));
    }
    json!({
        "username": "opsctrl-daemon",
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": esc(&d.title, TITLE_MAX),
            "description": description,
            "color": color(d),
            "fields": fields,
            "footer": {"text": footer.chars().take(FOOTER_MAX).collect::<String>()},
        }],
    })
}
