/*!
The Slack bot sink (`SLACK_BOT_TOKEN`): one message per incident, its
story in a thread.

- An incident's first alert is posted with `chat.postMessage` to the channel
  a `ROUTES_FILE` route names, else the one SLACK_CHANNEL_ROUTES gives its
  namespace; the answer's `(channel, ts)` is remembered per
  incident id.
- Its later alerts (updates, reminders, the resolution) are replies in that
  thread, and the parent is refreshed with `chat.update` to show the current
  state (a ✅ header once resolved). The entry is dropped once the
  resolution is delivered.
- A start-up summary or storm is one top-level message, in the namespace's
  channel when all its incidents share one, else the default channel; the
  incidents it lists use it as their thread parent. Such a shared parent is
  not rewritten for one incident's change.

One alert can take two calls (reply, then refresh). The reply's fingerprint
is remembered until the alert is done, so when the refresh fails and the pool
retries, the reply is not posted twice.

The Web API answers HTTP 200 with `{"ok": false, "error": "…"}` on failure:
`ratelimited` and Slack's internal errors are retried, everything else
(`channel_not_found`, `not_in_channel`, `invalid_auth`, `invalid_blocks`…) is
permanent. The token never appears in a log line or a failure.
*/

use std::collections::BTreeMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use super::{Alert, Failure, Item, Override, Sink, redact_text, slack};
use crate::model::State;
use crate::net::http::{self, Reply};
use crate::settings;
use crate::util::sync::lock;
use crate::util::time::now_ms;
use crate::util::url_template::UrlTemplate;

/// Threads remembered at most; past this the oldest incidents (lowest ids)
/// are forgotten, and their later alerts start a new message.
const MAX_THREADS: usize = 10_000;

/// Web API errors worth retrying: rate limits and Slack's own trouble.
const RETRYABLE: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// Where an incident's messages go.
#[derive(Clone, Debug)]
struct Thread {
    /// The channel id Slack answered with (`chat.update` wants the id).
    channel: String,
    ts: String,
    /// The parent is a start-up summary or storm shared with other incidents.
    grouped: bool,
    /// The reply of the alert being delivered already went out (its fingerprint).
    replied: Option<u64>,
}

pub struct SlackBot {
    cfg: settings::SlackBot,
    agent: ureq::Agent,
    /// By incident id and the channel a route named ("" for none): one
    /// incident routed to two channels has a thread in each.
    threads: Mutex<BTreeMap<(u64, String), Thread>>,
    /// `DASHBOARD_URL_TEMPLATE`.
    dashboard: Option<UrlTemplate>,
}

impl SlackBot {
    /// `cfg` is `settings::Alerts::slack_bot`; `agent` from `net::http::agent`.
    pub fn new(cfg: settings::SlackBot, agent: ureq::Agent) -> SlackBot {
        SlackBot {
            cfg,
            agent,
            threads: Mutex::new(BTreeMap::new()),
            dashboard: None,
        }
    }

    /// Links each workload to `DASHBOARD_URL_TEMPLATE`.
    pub fn with_dashboard(mut self, dashboard: Option<UrlTemplate>) -> SlackBot {
        self.dashboard = dashboard;
        self
    }

    /// The rendering style: now, with the dashboard link.
    fn style(&self, now_ms: i64) -> slack::Style<'_> {
        slack::Style {
            now_ms,
            dashboard: self.dashboard.as_ref(),
        }
    }

    /// Incidents whose thread is remembered (for metrics and tests).
    pub fn threads_tracked(&self) -> usize {
        self.threads().len()
    }

    fn threads(&self) -> MutexGuard<'_, BTreeMap<(u64, String), Thread>> {
        lock(&self.threads)
    }

    fn remember(&self, id: (u64, String), thread: Thread) {
        let mut threads = self.threads();
        threads.insert(id, thread);
        while threads.len() > MAX_THREADS {
            threads.pop_first();
        }
    }

    fn deliver_incident(
        &self,
        item: &Item,
        alert: &Alert,
        to: Option<&str>,
    ) -> Result<(), Failure> {
        let i = &item.incident;
        let key = (i.id, to.unwrap_or_default().to_string());
        let known = self.threads().get(&key).cloned();
        let Some(thread) = known else {
            // First alert of this incident (or its thread was forgotten): a new message.
            let channel = to
                .unwrap_or_else(|| self.cfg.channel_for(&i.namespace))
                .to_string();
            let posted = self.post(
                &channel,
                None,
                slack::render_with(alert, &self.style(now_ms())),
            )?;
            if i.state != State::Resolved {
                if let Some((channel, ts)) = posted {
                    let thread = Thread {
                        channel,
                        ts,
                        grouped: false,
                        replied: None,
                    };
                    self.remember(key, thread);
                }
            }
            return Ok(());
        };

        let reply = slack::render_with(alert, &self.style(now_ms()));
        // Of a rendering at a fixed time: a retry later says "failing for"
        // a minute more, and is still the same reply.
        let print = fingerprint(&slack::render_with(alert, &self.style(0)));
        if thread.replied != Some(print) {
            self.post(&thread.channel, Some(&thread.ts), reply)?;
            if let Some(t) = self.threads().get_mut(&key) {
                t.replied = Some(print);
            }
        }
        if !thread.grouped {
            let parent = slack::render_parent_with(item, &self.style(now_ms()));
            match self.update(&thread.channel, &thread.ts, parent) {
                Ok(()) => {}
                // The news is in the thread already; a parent that cannot be
                // edited (deleted, too old) is not worth failing the alert.
                Err(Failure::Permanent(why)) => {
                    log::warn!("slack-bot: incident #{} parent not refreshed: {why}", i.id)
                }
                Err(retry) => return Err(retry),
            }
        }
        let mut threads = self.threads();
        if i.state == State::Resolved {
            threads.remove(&key);
        } else if let Some(t) = threads.get_mut(&key) {
            t.replied = None;
        }
        Ok(())
    }

    fn deliver_group(
        &self,
        items: &[Item],
        alert: &Alert,
        to: Option<&str>,
    ) -> Result<(), Failure> {
        let first_ns = items.first().map(|i| i.incident.namespace.as_str());
        let channel = match (to, first_ns) {
            (Some(to), _) => to,
            (None, Some(ns)) if items.iter().all(|i| i.incident.namespace == ns) => {
                self.cfg.channel_for(ns)
            }
            _ => self.cfg.channel.as_str(),
        }
        .to_string();
        let body = slack::render_with(alert, &self.style(now_ms()));
        if let Some((channel, ts)) = self.post(&channel, None, body)? {
            for item in items.iter().filter(|i| i.incident.state != State::Resolved) {
                let thread = Thread {
                    channel: channel.clone(),
                    ts: ts.clone(),
                    grouped: true,
                    replied: None,
                };
                let key = (item.incident.id, to.unwrap_or_default().to_string());
                self.remember(key, thread);
            }
        }
        Ok(())
    }

    /// `chat.postMessage`; the posted message's `(channel id, ts)`, or None
    /// when Slack's answer lacked them (posted, but nothing to thread on).
    fn post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        mut message: Value,
    ) -> Result<Option<(String, String)>, Failure> {
        message["channel"] = json!(channel);
        if let Some(ts) = thread_ts {
            message["thread_ts"] = json!(ts);
        }
        // Alerts link to nothing worth a preview.
        message["unfurl_links"] = json!(false);
        message["unfurl_media"] = json!(false);
        let answer = self.call("chat.postMessage", channel, &message)?;
        let ts = answer.get("ts").and_then(Value::as_str);
        let id = answer
            .get("channel")
            .and_then(Value::as_str)
            .unwrap_or(channel);
        match ts {
            Some(ts) => Ok(Some((id.to_string(), ts.to_string()))),
            None => {
                log::warn!("slack-bot: chat.postMessage to {channel} answered without a ts");
                Ok(None)
            }
        }
    }

    /// `chat.update` of a parent with its current state.
    fn update(&self, channel: &str, ts: &str, mut message: Value) -> Result<(), Failure> {
        message["channel"] = json!(channel);
        message["ts"] = json!(ts);
        self.call("chat.update", channel, &message).map(drop)
    }

    /// One Web API call; its JSON answer when `ok` is true.
    fn call(&self, method: &str, channel: &str, body: &Value) -> Result<Value, Failure> {
        let token = self.cfg.token.expose();
        let url = format!("{}/{method}", self.cfg.api_url.trim_end_matches('/'));
        let auth = format!("Bearer {token}");
        let what = format!("Slack {method} to {channel}");
        let result = match http::post_json(&self.agent, &url, &[("Authorization", &auth)], body) {
            Err(why) => Err(Failure::Retry { why, after: None }),
            Ok(mut reply) => {
                // Before any excerpt is cut, so no half token survives.
                reply.body = redact_text(&reply.body, &[token]);
                if reply.ok() {
                    answer(&reply)
                } else {
                    Err(Failure::from_status(
                        reply.status,
                        reply.retry_after,
                        &reply.body,
                    ))
                }
            }
        };
        result.map_err(|f| f.context(&what).redact(&[token]))
    }
}

/// A 2xx answer read: `ok: true` gives its JSON, `ok: false` its error.
fn answer(reply: &Reply) -> Result<Value, Failure> {
    let Some(json) = reply.json() else {
        return Err(Failure::Permanent(format!(
            "answer is not Web API JSON: {}",
            reply.body_excerpt()
        )));
    };
    if json.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(json);
    }
    let error = json
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    // invalid_blocks and friends say which block in response_metadata.messages.
    let details: Vec<&str> = json
        .pointer("/response_metadata/messages")
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).take(3).collect())
        .unwrap_or_default();
    let mut why = error.to_string();
    if !details.is_empty() {
        why = format!("{why} ({})", details.join("; "));
    }
    let why: String = why.chars().take(500).collect();
    if RETRYABLE.contains(&error) {
        Err(Failure::Retry {
            why,
            after: reply.retry_after,
        })
    } else {
        Err(Failure::Permanent(why))
    }
}

/// Identifies one rendered reply: the same alert renders the same bytes.
fn fingerprint(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

impl Sink for SlackBot {
    fn name(&self) -> &'static str {
        "slack-bot"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        self.deliver_in(alert, None)
    }

    /// A route's `channel` instead of SLACK_CHANNEL_ROUTES / SLACK_CHANNEL.
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        match to {
            Override::Channel(c) => self.deliver_in(alert, Some(c)),
            Override::Webhook { .. } => self.deliver_in(alert, None),
        }
    }
}

impl SlackBot {
    fn deliver_in(&self, alert: &Alert, to: Option<&str>) -> Result<(), Failure> {
        match alert {
            Alert::Incident { item, .. } => self.deliver_incident(item, alert, to),
            Alert::StartupSummary { items } | Alert::Storm { items, .. } => {
                self.deliver_group(items, alert, to)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            retry_after: Some(Duration::from_secs(3)),
            body: body.into(),
        }
    }

    #[test]
    fn ok_false_errors_are_permanent_unless_retryable() {
        let ok = answer(&reply(200, r#"{"ok":true,"ts":"1.2"}"#)).unwrap();
        assert_eq!(ok["ts"], "1.2");
        for e in [
            "channel_not_found",
            "not_in_channel",
            "invalid_auth",
            "invalid_blocks",
        ] {
            let body = format!(r#"{{"ok":false,"error":"{e}"}}"#);
            assert_eq!(
                answer(&reply(200, &body)),
                Err(Failure::Permanent(e.into()))
            );
        }
        assert_eq!(
            answer(&reply(200, r#"{"ok":false,"error":"ratelimited"}"#)),
            Err(Failure::Retry {
                why: "ratelimited".into(),
                after: Some(Duration::from_secs(3))
            })
        );
        let blocks = r#"{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text]"]}}"#;
        let Err(Failure::Permanent(why)) = answer(&reply(200, blocks)) else {
            panic!("not permanent");
        };
        assert!(
            why.starts_with("invalid_blocks ([ERROR] must be less"),
            "{why}"
        );
        assert!(matches!(
            answer(&reply(200, "<html>proxy</html>")),
            Err(Failure::Permanent(_))
        ));
    }

    #[test]
    fn the_same_reply_has_the_same_fingerprint() {
        let a = json!({"text": "x", "blocks": []});
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"text": "y"})));
    }
}
