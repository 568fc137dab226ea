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
        out.push(Box::new(
            SlackWebhook::new(url.clone(), agent()).with_dashboard(a.dashboard.clone()),
        ));
    }
    if let Some(bot) = &a.slack_bot {
        out.push(Box::new(
            SlackBot::new(bot.clone(), agent()).with_dashboard(a.dashboard.clone()),
        ));
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
