/*!
Notifications leave the daemon here: the classification thread hands each
one to the delivery pool, whose workers enrich it (events, logs, LLM,
backend) and deliver it to every configured sink, retrying per sink.

- `Item`, `Alert`: what a sink is given (plain values, no I/O).
- `Sink`: one destination, one attempt per call; the pool does the retries.
- `slack`: Block Kit rendering; `slack_webhook`, `slack_bot`, `webhook`: the sinks.
- `digest`: an alert in plain text, which the other renderers start from:
  `teams`, `discord`, `telegram`, `ntfy`, `pagerduty`, `opsgenie`,
  `alertmanager` (each its renderer and its sink).
- `sinks`: the configured sinks, built once, and every sink's name.
*/

pub mod alertmanager;
pub mod digest;
pub mod discord;
pub mod log;
pub mod memory;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod pool;
pub mod queue;
pub mod sinks;
pub mod slack;
pub mod slack_bot;
pub mod slack_webhook;
pub mod teams;
pub mod telegram;
pub mod webhook;

pub mod k8s_event;

pub use crate::model::alert::{Alert, Failure, Item, Job, redact_text, url_secrets};
pub use crate::net::http::{Method, Reply};
pub use crate::routing::Override;

/// One JSON POST to a receiver, as a sink attempt: transport errors and
/// 408/429/5xx are `Retry`, other non-2xx `Permanent`; every reason names
/// `what` and has `secrets` (URL parts, tokens) blanked out.
pub fn post_attempt(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    what: &str,
    secrets: &[&str],
) -> Result<(), Failure> {
    call(agent, Method::Post, url, headers, body, what, secrets).map(drop)
}

/// As `post_attempt`, with any method, giving the 2xx answer (its body
/// with `secrets` blanked out) to a sink that reads it.
pub fn call(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    what: &str,
    secrets: &[&str],
) -> Result<Reply, Failure> {
    let result = match crate::net::http::send_json(agent, method, url, headers, body) {
        Err(why) => Err(Failure::Retry { why, after: None }),
        Ok(mut reply) => {
            reply.body = redact_text(&reply.body, secrets);
            if reply.ok() {
                Ok(reply)
            } else {
                Err(Failure::from_status(
                    reply.status,
                    reply.retry_after,
                    &reply.body,
                ))
            }
        }
    };
    result.map_err(|f| f.context(what).redact(secrets))
}

/// One destination. `deliver` makes one attempt; the pool retries a
/// `Failure::Retry` with backoff. A sink that takes several calls per alert
/// (post, then update) must remember what already succeeded, so a retry
/// never posts twice. Alerts of one incident arrive in order, never two at
/// once.
pub trait Sink: Send + Sync {
    /// Short, stable name for logs, metrics and routes (`ROUTES_FILE`): one
    /// of `sinks::NAMES`.
    fn name(&self) -> &'static str;
    fn deliver(&self, alert: &Alert) -> Result<(), Failure>;
    /// Delivers where a route said within this sink (a channel, another
    /// webhook). The pool calls it only with an override of a kind the
    /// sink's `routing::SinkInfo` accepts (checked at start-up).
    fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
        let _ = to;
        self.deliver(alert)
    }
}
