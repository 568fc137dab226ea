/*!
The settings of the destinations beyond Slack and the generic webhook:
Teams, Discord, Telegram, ntfy, PagerDuty, Opsgenie, Alertmanager, and the
per-incident link they share. Each credential is read from its variable or
its `_FILE` form (never both); a setting that only means something with
another one is reported when set alone.
*/

use std::time::Duration;

use super::defs::*;
use super::kinds::{Setting, Text};
use super::read::Reader;
use super::types::{Alertmanager, Ntfy, Opsgenie, OpsgenieRegion, PagerDuty, Telegram};
use super::validate::{http_url, telegram_chat, token_like};
use crate::secret::Secret;

/// What `destinations` read; `resolve::alerts` puts it into `Alerts`.
pub(super) struct Destinations {
    pub teams: Option<Secret>,
    pub discord: Option<Secret>,
    pub telegram: Option<Telegram>,
    pub ntfy: Option<Ntfy>,
    pub pagerduty: Option<PagerDuty>,
    pub opsgenie: Option<Opsgenie>,
    pub alertmanager: Option<Alertmanager>,
    pub link_url: Option<String>,
}

fn url_ok(v: &str) -> bool {
    http_url(v).is_some()
}

fn header_ok(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(char::is_control)
}

/// A URL that is a credential, from `ENV` or `ENV_FILE`, without a trailing `/`.
fn secret_url(
    r: &mut Reader,
    s: &'static Setting<Text>,
    file: &'static Setting<Text>,
) -> Option<Secret> {
    r.secret(s, file, url_ok)
        .and_then(|u| http_url(u.expose()).map(Secret::new))
}

pub(super) fn destinations(r: &mut Reader) -> Destinations {
    let teams = secret_url(r, &TEAMS_WEBHOOK_URL, &TEAMS_WEBHOOK_URL_FILE);
    let discord = secret_url(r, &DISCORD_WEBHOOK_URL, &DISCORD_WEBHOOK_URL_FILE);
    Destinations {
        teams,
        discord,
        telegram: telegram(r),
        ntfy: ntfy(r),
        pagerduty: pagerduty(r),
        opsgenie: opsgenie(r),
        alertmanager: alertmanager(r),
        link_url: r.url(&ALERT_LINK_URL, false),
    }
}

fn telegram(r: &mut Reader) -> Option<Telegram> {
    // `123456789:AA…`: the bot id, a colon, the secret.
    let token = r.secret(&TELEGRAM_BOT_TOKEN, &TELEGRAM_BOT_TOKEN_FILE, |v| {
        token_like(v) && v.split_once(':').is_some_and(|(id, _)| !id.is_empty())
    });
    let chat = r.checked(&TELEGRAM_CHAT_ID, telegram_chat);
    let api_url = r
        .url(&TELEGRAM_API_URL, false)
        .unwrap_or_else(|| TELEGRAM_API_URL.kind.default.into());
    match (token, chat) {
        (Some(token), Some(chat_id)) => Some(Telegram {
            token,
            chat_id,
            api_url,
        }),
        (Some(_), None) => {
            if !r.reported(&TELEGRAM_CHAT_ID) {
                r.bad(
                    TELEGRAM_CHAT_ID.env.into(),
                    String::new(),
                    "is required with a Telegram bot token".into(),
                );
            }
            None
        }
        (None, _) => {
            r.requires(&TELEGRAM_CHAT_ID, &TELEGRAM_BOT_TOKEN);
            r.requires(&TELEGRAM_API_URL, &TELEGRAM_BOT_TOKEN);
            None
        }
    }
}

fn ntfy(r: &mut Reader) -> Option<Ntfy> {
    let url = secret_url(r, &NTFY_URL, &NTFY_URL_FILE);
    let token = r.secret(&NTFY_TOKEN, &NTFY_TOKEN_FILE, token_like);
    // The topic is the last path segment: a bare server URL has none.
    let topic_ok = url.as_ref().is_none_or(|u| {
        let rest = u.expose().split_once("://").map_or("", |(_, r)| r);
        rest.split_once('/')
            .is_some_and(|(_, path)| !path.is_empty() && !path.contains(['?', '#']))
    });
    if !topic_ok {
        r.bad_secret(
            NTFY_URL.env.into(),
            format!("has no topic; allowed: {}", NTFY_URL.kind.allowed),
        );
        return None;
    }
    match url {
        Some(url) => Some(Ntfy { url, token }),
        None => {
            if token.is_some() && !r.reported(&NTFY_URL) {
                r.bad_secret(
                    NTFY_TOKEN.env.into(),
                    "has no effect without NTFY_URL".into(),
                );
            }
            None
        }
    }
}

fn pagerduty(r: &mut Reader) -> Option<PagerDuty> {
    // Integration keys are 32 letters and digits.
    let key = r.secret(&PAGERDUTY_ROUTING_KEY, &PAGERDUTY_ROUTING_KEY_FILE, |v| {
        v.len() == 32 && v.chars().all(|c| c.is_ascii_alphanumeric())
    });
    let events_url = r
        .url(&PAGERDUTY_EVENTS_URL, false)
        .unwrap_or_else(|| PAGERDUTY_EVENTS_URL.kind.default.into());
    match key {
        Some(routing_key) => Some(PagerDuty {
            routing_key,
            events_url,
        }),
        None => {
            r.requires(&PAGERDUTY_EVENTS_URL, &PAGERDUTY_ROUTING_KEY);
            None
        }
    }
}

fn opsgenie(r: &mut Reader) -> Option<Opsgenie> {
    // API keys are UUIDs; anything much shorter is a paste gone wrong.
    let key = r.secret(&OPSGENIE_API_KEY, &OPSGENIE_API_KEY_FILE, |v| {
        token_like(v) && v.len() >= 20
    });
    let region = r.choice(&OPSGENIE_REGION);
    let custom = r.url(&OPSGENIE_API_URL, false);
    match key {
        Some(api_key) => Some(Opsgenie {
            api_key,
            api_url: custom.unwrap_or_else(|| {
                match region {
                    OpsgenieRegion::Us => "https://api.opsgenie.com",
                    OpsgenieRegion::Eu => "https://api.eu.opsgenie.com",
                }
                .into()
            }),
        }),
        None => {
            r.requires(&OPSGENIE_API_URL, &OPSGENIE_API_KEY);
            r.requires(&OPSGENIE_REGION, &OPSGENIE_API_KEY);
            None
        }
    }
}

fn alertmanager(r: &mut Reader) -> Option<Alertmanager> {
    let url = r.url(&ALERTMANAGER_URL, true).map(Secret::new);
    let auth_header = r.secret(
        &ALERTMANAGER_AUTH_HEADER,
        &ALERTMANAGER_AUTH_HEADER_FILE,
        header_ok,
    );
    let repost = Duration::from_secs(r.int(&ALERTMANAGER_REPOST_SECONDS));
    match url {
        Some(url) => Some(Alertmanager {
            url,
            auth_header,
            repost,
        }),
        None => {
            if auth_header.is_some() && !r.reported(&ALERTMANAGER_URL) {
                r.bad_secret(
                    ALERTMANAGER_AUTH_HEADER.env.into(),
                    "has no effect without ALERTMANAGER_URL".into(),
                );
            }
            r.requires(&ALERTMANAGER_REPOST_SECONDS, &ALERTMANAGER_URL);
            None
        }
    }
}
