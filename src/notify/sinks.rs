//! The notification sinks the settings ask for, built once: the daemon hands
//! them to its pool (with the log sink first), `test-alert` tries each.

use std::time::Duration;

use crate::kube::client::Client;
use crate::net::http;
use crate::notify::Sink;
use crate::notify::k8s_event::K8sEvents;
use crate::notify::slack_bot::SlackBot;
use crate::notify::slack_webhook::SlackWebhook;
use crate::notify::webhook::Webhook;
use crate::routing::{OverrideKind, SinkInfo};
use crate::settings::Settings;

/// Deadline of one delivery attempt (connect included); a hung receiver
/// costs one attempt, not a worker.
pub const SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack (webhook, bot), the webhook and, with a client, Kubernetes Events:
/// every sink that is configured, in that order.
pub fn configured(settings: &Settings, client: Option<&Client>) -> Vec<Box<dyn Sink>> {
    let a = &settings.alerts;
    let agent = || http::agent(SINK_TIMEOUT);
    let mut out: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(url) = &a.slack_webhook {
        out.push(Box::new(SlackWebhook::new(url.clone(), agent())));
    }
    if let Some(bot) = &a.slack_bot {
        out.push(Box::new(SlackBot::new(bot.clone(), agent())));
    }
    if let Some(w) = &a.webhook {
        out.push(Box::new(Webhook::new(w.clone(), agent())));
    }
    if let (true, Some(client)) = (a.emit_k8s_events, client) {
        let identity = settings
            .leader
            .as_ref()
            .map_or_else(|| "opsctrl-daemon".to_string(), |l| l.identity.clone());
        out.push(Box::new(K8sEvents::new(client.clone(), identity)));
    }
    out
}

/// The sinks `configured` builds, by name, with what a route may tell each
/// besides "send it": what `ROUTES_FILE` is checked against (no client
/// needed, so `routes test` can say it without a cluster).
pub fn routable(settings: &Settings) -> Vec<SinkInfo> {
    let a = &settings.alerts;
    let mut out = Vec::new();
    if a.slack_webhook.is_some() {
        out.push(SinkInfo {
            name: "slack",
            accepts: &[OverrideKind::WebhookFile],
        });
    }
    if a.slack_bot.is_some() {
        out.push(SinkInfo {
            name: "slack-bot",
            accepts: &[OverrideKind::Channel],
        });
    }
    if a.webhook.is_some() {
        out.push(SinkInfo {
            name: "webhook",
            accepts: &[],
        });
    }
    if a.emit_k8s_events {
        out.push(SinkInfo {
            name: "k8s-events",
            accepts: &[],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::settings::{SlackBot, Webhook};

    #[test]
    fn routable_names_are_the_configured_sinks_names() {
        let mut s = Settings::default();
        assert!(routable(&s).is_empty());
        s.alerts.slack_webhook = Some(Secret::new("https://hooks.slack.test/x"));
        s.alerts.slack_bot = Some(SlackBot {
            token: Secret::new("xoxb-1"),
            api_url: "https://slack.test/api".into(),
            channel: "#a".into(),
            routes: vec![],
        });
        s.alerts.webhook = Some(Webhook {
            url: Secret::new("https://hooks.test/x"),
            auth_header: None,
        });
        let built: Vec<&str> = configured(&s, None).iter().map(|x| x.name()).collect();
        let names: Vec<&str> = routable(&s).iter().map(|x| x.name).collect();
        assert_eq!(built, names);
        s.alerts.emit_k8s_events = true;
        assert_eq!(routable(&s).last().map(|x| x.name), Some("k8s-events"));
    }
}
