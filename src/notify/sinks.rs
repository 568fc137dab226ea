//! The notification sinks the settings ask for, built once: the daemon hands
//! them to its pool (with the log sink first), `test-alert` tries each.
//! `NAMES` is every name a sink can have, for whatever names sinks (routes).

use std::sync::Arc;
use std::time::Duration;

use crate::kube::client::Client;
use crate::net::http;
use crate::notify::Sink;
use crate::notify::alertmanager::{Alertmanager, Leading};
use crate::notify::discord::Discord;
use crate::notify::k8s_event::K8sEvents;
use crate::notify::ntfy::Ntfy;
use crate::notify::opsgenie::Opsgenie;
use crate::notify::pagerduty::PagerDuty;
use crate::notify::slack_bot::SlackBot;
use crate::notify::slack_webhook::SlackWebhook;
use crate::notify::teams::Teams;
use crate::notify::telegram::Telegram;
use crate::notify::webhook::Webhook;
use crate::routing::{ChannelRule, OverrideKind, SinkInfo};
use crate::settings::{self, Settings};

/// Deadline of one delivery attempt (connect included); a hung receiver
/// costs one attempt, not a worker.
pub const SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// The stable name of every sink (`Sink::name`), in the order `configured`
/// builds them; `log` is the daemon's own record.
pub const NAMES: &[&str] = &[
    "slack",
    "slack-bot",
    "webhook",
    "teams",
    "discord",
    "telegram",
    "ntfy",
    "pagerduty",
    "opsgenie",
    "alertmanager",
    "k8s-events",
    "log",
];

/// Every sink that is configured, in the order of `NAMES`; re-posting
/// sinks (Alertmanager) always lead.
pub fn configured(settings: &Settings, client: Option<&Client>) -> Vec<Box<dyn Sink>> {
    configured_with(settings, client, Arc::new(|| true))
}

/// As `configured`; `leading` says whether this replica leads (leader
/// election), for the sinks that send on their own timer.
pub fn configured_with(
    settings: &Settings,
    client: Option<&Client>,
    leading: Leading,
) -> Vec<Box<dyn Sink>> {
    let a = &settings.alerts;
    let agent = || http::agent(SINK_TIMEOUT);
    let link = || a.link_url.clone();
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
    if let Some(url) = &a.teams {
        out.push(Box::new(Teams::new(url.clone(), agent())));
    }
    if let Some(url) = &a.discord {
        out.push(Box::new(Discord::new(url.clone(), agent())));
    }
    if let Some(t) = &a.telegram {
        out.push(Box::new(Telegram::new(t.clone(), agent())));
    }
    if let Some(n) = &a.ntfy {
        out.push(Box::new(Ntfy::new(n.clone(), link(), agent())));
    }
    if let Some(p) = &a.pagerduty {
        out.push(Box::new(PagerDuty::new(p.clone(), link(), agent())));
    }
    if let Some(o) = &a.opsgenie {
        out.push(Box::new(Opsgenie::new(o.clone(), link(), agent())));
    }
    if let Some(am) = &a.alertmanager {
        match Alertmanager::new(am.clone(), link(), agent(), leading) {
            Ok(sink) => out.push(Box::new(sink)),
            // Without its thread its alerts would expire: said, not hidden.
            Err(e) => log::error!("alertmanager: cannot start its re-post thread, not used: {e}"),
        }
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

/// A Telegram chat named by a route is checked as `TELEGRAM_CHAT_ID` is.
const TELEGRAM_CHAT: ChannelRule = ChannelRule {
    valid: settings::telegram_chat,
    allowed: "a Telegram chat id (-1001234567890) or @channelusername",
};

/// The sinks `configured` builds, by name, with what a route may tell each
/// besides "send it": what `ROUTES_FILE` is checked against (no client
/// needed, so `routes test` can say it without a cluster). A sink that
/// accepts an override implements `Sink::deliver_to`.
pub fn routable(settings: &Settings) -> Vec<SinkInfo> {
    let a = &settings.alerts;
    let none: &'static [OverrideKind] = &[];
    let webhook: &'static [OverrideKind] = &[OverrideKind::WebhookFile];
    let channel: &'static [OverrideKind] = &[OverrideKind::Channel];
    let all = [
        ("slack", a.slack_webhook.is_some(), webhook, None),
        ("slack-bot", a.slack_bot.is_some(), channel, None),
        ("webhook", a.webhook.is_some(), none, None),
        ("teams", a.teams.is_some(), webhook, None),
        ("discord", a.discord.is_some(), webhook, None),
        (
            "telegram",
            a.telegram.is_some(),
            channel,
            Some(TELEGRAM_CHAT),
        ),
        ("ntfy", a.ntfy.is_some(), none, None),
        ("pagerduty", a.pagerduty.is_some(), none, None),
        ("opsgenie", a.opsgenie.is_some(), none, None),
        ("alertmanager", a.alertmanager.is_some(), none, None),
        ("k8s-events", a.emit_k8s_events, none, None),
    ];
    all.into_iter()
        .filter(|(_, on, _, _)| *on)
        .map(|(name, _, accepts, channel)| SinkInfo {
            name,
            accepts,
            channel,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Source;

    struct Env(&'static [(&'static str, &'static str)]);
    impl Source for Env {
        fn flag(&self, _: &str) -> Option<String> {
            None
        }
        fn env(&self, env: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == env)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn every_sink_is_built_in_the_order_of_names_under_its_name() {
        let settings = crate::settings::resolve(&Env(&[
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/x",
            ),
            ("SLACK_BOT_TOKEN", "xoxb-1-2"),
            ("SLACK_CHANNEL", "#alerts"),
            ("WEBHOOK_URL", "http://receiver:8080/hook"),
            (
                "TEAMS_WEBHOOK_URL",
                "https://example.logic.azure.com/workflows/x?sig=y",
            ),
            (
                "DISCORD_WEBHOOK_URL",
                "https://discord.com/api/webhooks/1/t",
            ),
            ("TELEGRAM_BOT_TOKEN", "1:abc"),
            ("TELEGRAM_CHAT_ID", "-100123"),
            ("NTFY_URL", "https://ntfy.sh/topic-x"),
            ("PAGERDUTY_ROUTING_KEY", "0123456789abcdef0123456789abcdef"),
            ("OPSGENIE_API_KEY", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
            ("ALERTMANAGER_URL", "http://alertmanager:9093"),
        ]))
        .expect("valid settings");
        let names: Vec<&str> = configured(&settings, None)
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(
            names,
            NAMES[..NAMES.len() - 2],
            "all but k8s-events (no client) and log"
        );
        // Routes name exactly the sinks that are built.
        let infos = routable(&settings);
        let routable: Vec<&str> = infos.iter().map(|x| x.name).collect();
        assert_eq!(routable, names);
        // What a route may tell each: the sinks with a destination of their own.
        let accepting: Vec<(&str, &[OverrideKind])> = infos
            .iter()
            .filter(|x| !x.accepts.is_empty())
            .map(|x| (x.name, x.accepts))
            .collect();
        let (w, c) = (OverrideKind::WebhookFile, OverrideKind::Channel);
        assert_eq!(
            accepting,
            [
                ("slack", &[w][..]),
                ("slack-bot", &[c][..]),
                ("teams", &[w][..]),
                ("discord", &[w][..]),
                ("telegram", &[c][..]),
            ]
        );
        let chat = infos
            .iter()
            .find_map(|x| x.channel)
            .expect("telegram's rule");
        assert!((chat.valid)("-1001234567890") && (chat.valid)("@ops_alerts"));
        assert!(!(chat.valid)("#alerts") && !(chat.valid)("-"));
        let mut with_events = settings.clone();
        with_events.alerts.emit_k8s_events = true;
        let routable: Vec<&str> = routable_names(&with_events);
        assert_eq!(routable, NAMES[..NAMES.len() - 1], "all but log");
        assert!(routable_names(&Settings::default()).is_empty());
    }

    fn routable_names(s: &Settings) -> Vec<&'static str> {
        routable(s).iter().map(|x| x.name).collect()
    }
}
