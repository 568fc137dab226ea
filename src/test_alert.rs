/*!
`opsctrl-daemon test-alert`: one clearly labelled test notification through
every configured sink (Slack, the webhook, Teams, Discord, Telegram, ntfy,
PagerDuty, Opsgenie, Alertmanager, Kubernetes Events),
with the daemon's own retries, and one line per sink saying whether it was
accepted. The first thing to run after an install: it proves the credentials,
the URLs and the egress without waiting for a pod to fail.

The test is an incident of workload `TEST/opsctrl-daemon-test-alert` whose
reason is `TestAlert` and whose message says that nothing is failing, so every
renderer shows it as what it is. In-cluster (`POD_NAME`, `POD_NAMESPACE`) it
names the daemon's own pod, so the Kubernetes Event lands on that pod. Where
an alert stays open until resolved (PagerDuty, Opsgenie, Alertmanager), the
test is resolved right after it is accepted, so nobody is left paged.
*/

use std::io::Write;
use std::thread;

use crate::kube::client::Client;
use crate::model::{Alert, Failure, FailureType, Finding, Incident, Item, State, Workload};
use crate::notify::Sink;
use crate::notify::pool;
use crate::notify::sinks;
use crate::settings::Settings;
use crate::util::time::now_ms;

pub const REASON: &str = "TestAlert";
pub const MESSAGE: &str = "TEST ALERT sent by `opsctrl-daemon test-alert` to check that this sink works. Nothing is failing; no action is needed.";

/// The test notification (plain values; `pod`/`namespace`: where it points).
pub fn alert(cluster: &str, namespace: &str, pod: &str, now_ms: i64) -> Alert {
    let finding = Finding {
        kind: FailureType::NotReady,
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: None,
        init_container: false,
        reason: REASON.into(),
        message: MESSAGE.into(),
        exit_code: None,
        signal: None,
        restart_count: None,
        node: None,
        image: None,
        since: None,
        termination: None,
    };
    let incident = Incident {
        id: 0,
        cluster: cluster.to_string(),
        namespace: namespace.to_string(),
        workload: Workload {
            kind: "TEST".into(),
            name: "opsctrl-daemon-test-alert".into(),
        },
        revision: None,
        pods: vec![pod.to_string()],
        finding,
        first_seen_ms: now_ms,
        detected_ms: now_ms,
        last_seen_ms: now_ms,
        state: State::Open,
        affected: Vec::new(),
    };
    Alert::Incident {
        item: Box::new(Item::new(incident, None)),
        reminder: false,
    }
}

/// Sinks where an alert stays open until resolved (pages, firing alerts):
/// the test is resolved right after it is accepted.
pub const HOLDS_OPEN: &[&str] = &["pagerduty", "opsgenie", "alertmanager"];

/// The test alert, resolved.
pub fn resolution(alert: &Alert) -> Alert {
    let mut a = alert.clone();
    for item in a.items_mut() {
        item.incident.state = State::Resolved;
    }
    a
}

/// One sink, with the pool's retries: `Ok` once accepted, else the last reason.
pub fn try_sink(sink: &dyn Sink, alert: &Alert, cfg: &pool::Config) -> Result<u32, String> {
    let mut backoff = cfg.backoff();
    let attempts = cfg.max_attempts.max(1);
    for attempt in 1..=attempts {
        match sink.deliver(alert) {
            Ok(()) => return Ok(attempt),
            Err(Failure::Permanent(why)) => return Err(why),
            Err(Failure::Retry { why, after }) => {
                if attempt == attempts {
                    return Err(format!("{why} (after {attempts} attempts)"));
                }
                thread::sleep(backoff.next_delay(after));
            }
        }
    }
    Err("no attempt made".into())
}

/// Sends the test through every configured sink and prints one line each.
/// `Ok(true)` when every sink accepted it; `Err` when none is configured.
pub fn run(
    settings: &Settings,
    client: Option<&Client>,
    cluster: &str,
    out: &mut impl Write,
) -> Result<bool, String> {
    let sinks = sinks::configured(settings, client);
    if sinks.is_empty() {
        return Err("no sink is configured: set SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN (with SLACK_CHANNEL), WEBHOOK_URL, TEAMS_WEBHOOK_URL, DISCORD_WEBHOOK_URL, TELEGRAM_BOT_TOKEN (with TELEGRAM_CHAT_ID), NTFY_URL, PAGERDUTY_ROUTING_KEY, OPSGENIE_API_KEY, ALERTMANAGER_URL or EMIT_K8S_EVENTS=true".into());
    }
    let namespace = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "opsctrl-daemon-test-alert".into());
    let alert = alert(cluster, &namespace, &pod, now_ms());
    let cfg = pool::Config::from_settings(&settings.alerts);
    let mut all = true;
    let resolved = resolution(&alert);
    for sink in &sinks {
        let tried = try_sink(sink.as_ref(), &alert, &cfg).and_then(|n| {
            // A test page must not stay open: resolved at once where it pages.
            if HOLDS_OPEN.contains(&sink.name()) {
                try_sink(sink.as_ref(), &resolved, &cfg)
                    .map(|_| n)
                    .map_err(|why| format!("accepted, but its resolution was not: {why}"))
            } else {
                Ok(n)
            }
        });
        let line = match tried {
            Ok(1) => format!("{:<11} accepted", sink.name()),
            Ok(n) => format!("{:<11} accepted (attempt {n})", sink.name()),
            Err(why) => {
                all = false;
                format!("{:<11} REFUSED: {why}", sink.name())
            }
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{}",
        if all {
            "every sink accepted the test notification"
        } else {
            "some sinks refused the test notification (see above)"
        }
    );
    Ok(all)
}
