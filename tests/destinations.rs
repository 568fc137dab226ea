/*!
The destinations beyond Slack and the generic webhook, each against its fake
(`util::fake_services`), which checks what the real service checks: one
incident's lifecycle (open → updated → still open → resolved) gives the
requests that service expects, with ordinary and with hostile, huge texts,
and nothing is refused. The sinks are built directly, one `deliver` per
attempt as the pool calls them.
*/

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use opsctrl_daemon::model::{Alert, Cause, Failure, FailureType, Item, State};
use opsctrl_daemon::net::http;
use opsctrl_daemon::notify::alertmanager::Alertmanager;
use opsctrl_daemon::notify::digest::stable_key;
use opsctrl_daemon::notify::discord::Discord;
use opsctrl_daemon::notify::ntfy::Ntfy;
use opsctrl_daemon::notify::opsgenie::Opsgenie;
use opsctrl_daemon::notify::pagerduty::PagerDuty;
use opsctrl_daemon::notify::teams::Teams;
use opsctrl_daemon::notify::telegram::Telegram;
use opsctrl_daemon::notify::{Override, Sink};
use opsctrl_daemon::secret::Secret;
use opsctrl_daemon::settings;

use crate::notify_sinks::{at, item, monster, single};
use crate::util::fake_receiver::Reply;
use crate::util::fake_services::{self as fs, Fake};
use crate::util::wait_until;

const LINK: &str = "https://grafana.example.com/d/pods?ns={namespace}&pod={pod}";

fn agent() -> ureq::Agent {
    http::agent(Duration::from_secs(2))
}

/// An ordinary incident and a monstrous one (1 MB message, 300-character
/// names, emoji, right-to-left text, `<!here>`, ``` and 500 log lines).
fn cases() -> Vec<Item> {
    let mut hostile = monster(2);
    hostile.incident.finding.message =
        "@everyone <b>x</b> &amp; [click](https://evil) {{DATE(2017-02-14T06:00:00Z)}} ```"
            .repeat(20_000);
    let mut huge = monster(3);
    // Another failure of the same workload: it began at another time.
    huge.incident.first_seen_ms += 1000;
    vec![
        item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open),
        huge,
        hostile,
    ]
}

/// Open, updated, a reminder, resolved: the alerts of one incident.
fn lifecycle(it: &Item) -> Vec<Alert> {
    vec![
        at(it, State::Open),
        at(it, State::Updated),
        Alert::Incident {
            item: Box::new(it.clone()),
            reminder: true,
        },
        at(it, State::Resolved),
    ]
}

fn deliver_all(sink: &dyn Sink, alerts: &[Alert]) {
    for a in alerts {
        assert_eq!(sink.deliver(a), Ok(()), "{}", sink.name());
    }
}

fn no_refusals<S: fs::Service>(fake: &Fake<S>) {
    let r = fake.refusals();
    assert!(
        r.is_empty(),
        "refused: {}",
        r.join("\n").chars().take(2000).collect::<String>()
    );
}

fn why(f: &Failure) -> &str {
    match f {
        Failure::Retry { why, .. } | Failure::Permanent(why) => why,
    }
}

fn group(n: u64) -> Vec<Item> {
    (100..100 + n)
        .map(|id| {
            let mut it = monster(id);
            it.incident.first_seen_ms += id as i64;
            it
        })
        .collect()
}

#[test]
fn teams_gets_one_adaptive_card_per_alert_within_its_size() {
    let fake = Fake::start(fs::teams::Teams);
    let sink = Teams::new(Secret::new(fs::teams::url(&fake.url(""))), agent());
    assert_eq!(sink.name(), "teams");
    let mut n = 0;
    for it in cases() {
        let alerts = lifecycle(&it);
        deliver_all(&sink, &alerts);
        n += alerts.len();
    }
    deliver_all(
        &sink,
        &[Alert::Storm {
            shared: "node-1".into(),
            items: group(300),
        }],
    );
    no_refusals(&fake);
    let got = fake.accepted();
    assert_eq!(got.len(), n + 1);
    let first = got[0].json().to_string();
    assert!(
        first.contains("CrashLoopBackOff · shop/Deployment/web"),
        "{first}"
    );
    assert!(got[3].json().to_string().contains("Resolved"));
    // The huge ones say they were cut.
    assert!(got[4].json().to_string().contains("…[truncated]"));
}

/// A route's `webhook_file`, as `ROUTES_FILE` gives it to a sink.
fn webhook_file(url: String) -> Override {
    Override::Webhook {
        file: "/etc/opsctrl/routes/second".into(),
        url: Secret::new(url),
    }
}

#[test]
fn teams_posts_where_a_route_s_webhook_file_says_and_keeps_its_signature_secret() {
    let (main, other) = (Fake::start(fs::teams::Teams), Fake::start(fs::teams::Teams));
    let sink = Teams::new(Secret::new(fs::teams::url(&main.url(""))), agent());
    let to = webhook_file(fs::teams::url(&other.url("")));
    let it = item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    for a in lifecycle(&it) {
        assert_eq!(sink.deliver_to(&a, &to), Ok(()));
    }
    assert_eq!(sink.deliver(&at(&it, State::Open)), Ok(()));
    no_refusals(&other);
    assert_eq!((other.accepted().len(), main.accepted().len()), (4, 1));
    // Another workflow's signature is as secret as the configured one's.
    let sig = "other-workflow-SIG-5678";
    let to = webhook_file(fs::teams::url(&other.url("")).replace(fs::teams::SIG, sig));
    other.script([Reply::Status {
        code: 500,
        retry_after: None,
        body: format!("no flow for sig={sig}"),
    }]);
    let f = sink.deliver_to(&at(&it, State::Open), &to).unwrap_err();
    assert!(matches!(f, Failure::Retry { .. }), "{f:?}");
    assert!(!why(&f).contains(sig), "{f:?}");
}

#[test]
fn discord_posts_once_then_edits_that_message_and_posts_reminders_anew() {
    let fake = Fake::start(fs::discord::Discord::default());
    let sink = Discord::new(Secret::new(fs::discord::url(&fake.url(""))), agent());
    for it in cases() {
        deliver_all(&sink, &lifecycle(&it));
    }
    no_refusals(&fake);
    let got = fake.accepted();
    // Per incident: post (wait=true), edit, reminder post, edit of the reminder.
    let shape: Vec<(String, bool)> = got
        .iter()
        .take(4)
        .map(|g| (g.method.clone(), g.path.contains("/messages/")))
        .collect();
    assert_eq!(
        shape,
        [
            ("POST".to_string(), false),
            ("PATCH".to_string(), true),
            ("POST".to_string(), false),
            ("PATCH".to_string(), true),
        ]
    );
    assert_eq!(got[0].param("wait"), Some("true"));
    let messages = fake.service().messages.lock().unwrap().clone();
    // Three incidents, two messages each (first and reminder).
    assert_eq!(messages.len(), 6);
    let first = messages.values().next().unwrap();
    assert_eq!(first.len(), 2, "posted, then edited once");
    assert_eq!(first[0]["embeds"][0]["color"], 0xd0_02_1b, "critical red");
    let resolved = &messages.values().nth(1).unwrap()[1];
    assert!(
        resolved["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Resolved"),
        "{resolved}"
    );
    assert_eq!(resolved["embeds"][0]["color"], 0x2e_b8_86);
    // Every body is within Discord's limits (the fake checked) and the hostile one's
    // Markdown and mentions are escaped.
    let hostile = messages.values().nth(4).unwrap()[0]["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hostile.contains("@everyone"),
        "the hostile message is shown"
    );
    for (n, outside_code) in hostile.split("```").enumerate().step_by(2) {
        assert!(
            !outside_code.contains("[click](https"),
            "part {n}: {outside_code}"
        );
    }
}

#[test]
fn discord_reposts_when_its_message_was_deleted() {
    let fake = Fake::start(fs::discord::Discord::default());
    let sink = Discord::new(Secret::new(fs::discord::url(&fake.url(""))), agent());
    let it = item(1, "shop", "web", FailureType::OOMKilled, State::Open);
    assert_eq!(sink.deliver(&at(&it, State::Open)), Ok(()));
    fake.service().messages.lock().unwrap().clear();
    assert_eq!(sink.deliver(&at(&it, State::Updated)), Ok(()));
    let got = fake.received();
    assert_eq!(got.len(), 3);
    assert_eq!((got[1].method.as_str(), got[1].status), ("PATCH", 404));
    assert_eq!((got[2].method.as_str(), got[2].status), ("POST", 200));
    // Rate limited: retried after Discord's Retry-After, the token never in the reason.
    fake.script([Reply::Status {
        code: 429,
        retry_after: Some(3),
        body: format!("slow down {}", fs::discord::TOKEN),
    }]);
    let f = sink.deliver(&at(&it, State::Updated)).unwrap_err();
    assert!(
        matches!(&f, Failure::Retry { after: Some(d), .. } if *d == Duration::from_secs(3)),
        "{f:?}"
    );
    assert!(!why(&f).contains(fs::discord::TOKEN), "{f:?}");
}

/// (method, message id, title) of each request a fake webhook accepted.
fn discord_calls(fake: &Fake<fs::discord::Discord>) -> Vec<(String, String, String)> {
    fake.accepted()
        .iter()
        .map(|g| {
            let id = g.path.rsplit_once("/messages/").map(|(_, m)| m.to_string());
            let title = g.json()["embeds"][0]["title"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (g.method.clone(), id.unwrap_or_default(), title)
        })
        .collect()
}

#[test]
fn discord_keeps_each_incident_s_message_per_webhook_so_each_edit_hits_its_own() {
    const SECOND: &str = "second-webhook-TOKEN-987654";
    let main = Fake::start(fs::discord::Discord::default());
    let other = Fake::start(fs::discord::Discord::with_token(SECOND));
    let sink = Discord::new(Secret::new(fs::discord::url(&main.url(""))), agent());
    let to = webhook_file(fs::discord::url_with(&other.url(""), SECOND));
    // Incident 1 goes to both webhooks, incident 2 to the second only.
    let one = item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    let two = item(2, "pay", "ledger", FailureType::OOMKilled, State::Open);
    for state in [State::Open, State::Updated, State::Resolved] {
        assert_eq!(sink.deliver_to(&at(&one, state), &to), Ok(()));
        assert_eq!(sink.deliver_to(&at(&two, state), &to), Ok(()));
        assert_eq!(sink.deliver(&at(&one, state)), Ok(()));
    }
    no_refusals(&main);
    no_refusals(&other);
    let ids = |f: &Fake<fs::discord::Discord>| -> Vec<String> {
        f.service()
            .messages
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let (main_ids, other_ids) = (ids(&main), ids(&other));
    assert_eq!(
        (main_ids.len(), other_ids.len()),
        (1, 2),
        "one message per incident"
    );
    let main_calls = discord_calls(&main);
    assert_eq!(main_calls.len(), 3);
    assert!(
        main_calls[1..]
            .iter()
            .all(|c| c.0 == "PATCH" && c.1 == main_ids[0])
    );
    // In the second webhook each incident's edits go to its own message.
    let other_calls = discord_calls(&other);
    let edits: Vec<(&str, &str)> = other_calls
        .iter()
        .filter(|c| c.0 == "PATCH")
        .map(|c| {
            (
                c.1.as_str(),
                if c.2.contains("web") { "web" } else { "ledger" },
            )
        })
        .collect();
    let (web, ledger) = (other_ids[0].as_str(), other_ids[1].as_str());
    assert_eq!(
        edits,
        [
            (web, "web"),
            (ledger, "ledger"),
            (web, "web"),
            (ledger, "ledger")
        ]
    );
    assert!(other_calls.last().unwrap().2.contains("Resolved"));
    // Resolved: forgotten in both, so the next failure is a new message in each.
    assert_eq!(sink.deliver_to(&at(&one, State::Open), &to), Ok(()));
    assert_eq!(sink.deliver(&at(&one, State::Open)), Ok(()));
    assert_eq!((ids(&main).len(), ids(&other).len()), (2, 3));
    // The second webhook's token is as secret as the configured one's.
    other.script([Reply::Status {
        code: 429,
        retry_after: Some(1),
        body: format!("slow down {SECOND}"),
    }]);
    let f = sink.deliver_to(&at(&one, State::Updated), &to).unwrap_err();
    assert!(matches!(f, Failure::Retry { .. }), "{f:?}");
    assert!(!why(&f).contains(SECOND), "{f:?}");
}

fn telegram_cfg(fake: &Fake<fs::telegram::Telegram>) -> settings::Telegram {
    settings::Telegram {
        token: Secret::new(fs::telegram::TOKEN),
        chat_id: fs::telegram::CHAT.into(),
        api_url: fake.url(""),
    }
}

#[test]
fn telegram_sends_the_first_message_and_replies_to_it() {
    let fake = Fake::start(fs::telegram::Telegram::default());
    let sink = Telegram::new(telegram_cfg(&fake), agent());
    for it in cases() {
        deliver_all(&sink, &lifecycle(&it));
    }
    no_refusals(&fake);
    let all = fake.service().all();
    assert_eq!(all.len(), 12);
    for incident in all.chunks(4) {
        let first = incident[0].0;
        assert_eq!(incident[0].2, None, "the first is no reply");
        for later in &incident[1..] {
            assert_eq!(later.2, Some(first), "replies to the first message");
        }
        assert!(incident[3].1.contains("Resolved"), "{}", incident[3].1);
    }
    assert!(
        all[0]
            .1
            .starts_with("<b>🔴 CrashLoopBackOff · shop/Deployment/web</b>"),
        "{}",
        all[0].1
    );
    // The hostile message's tags arrive as text.
    assert!(
        all[8].1.contains("&lt;b&gt;x&lt;/b&gt;"),
        "{}",
        &all[8].1[..600]
    );
}

#[test]
fn telegram_sends_to_a_route_s_chat_and_replies_there_to_the_first_message_there() {
    const PAY: &str = "-1009876543210";
    let fake = Fake::start(fs::telegram::Telegram::in_chats(&[PAY]));
    let sink = Telegram::new(telegram_cfg(&fake), agent());
    let to = Override::Channel(PAY.into());
    let it = item(
        1,
        "pay",
        "ledger",
        FailureType::CrashLoopBackOff,
        State::Open,
    );
    // The chat's message ids are Telegram's per chat: both firsts are 100.
    for a in lifecycle(&it) {
        assert_eq!(sink.deliver_to(&a, &to), Ok(()));
        assert_eq!(sink.deliver(&a), Ok(()));
    }
    no_refusals(&fake);
    for chat in [PAY, fs::telegram::CHAT] {
        let got = fake.service().in_chat(chat);
        assert_eq!(got.len(), 4, "{chat}");
        assert_eq!(got[0].2, None, "{chat}: the first is no reply");
        assert!(
            got[1..].iter().all(|m| m.2 == Some(got[0].0)),
            "{chat}: replies to its own first message: {got:?}"
        );
        assert!(got[3].1.contains("Resolved"), "{chat}");
    }
    // Resolved: forgotten, so the next failure starts anew in that chat.
    assert_eq!(sink.deliver_to(&at(&it, State::Open), &to), Ok(()));
    assert_eq!(fake.service().in_chat(PAY).last().unwrap().2, None);
}

#[test]
fn telegram_honours_the_retry_after_in_its_answer_and_hides_the_token() {
    let fake = Fake::start(fs::telegram::Telegram::default());
    let sink = Telegram::new(telegram_cfg(&fake), agent());
    fake.script([Reply::status(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
    )]);
    let it = item(1, "shop", "web", FailureType::OOMKilled, State::Open);
    let f = sink.deliver(&single(it.clone())).unwrap_err();
    assert!(
        matches!(&f, Failure::Retry { after: Some(d), .. } if *d == Duration::from_secs(7)),
        "{f:?}"
    );
    let mut cfg = telegram_cfg(&fake);
    cfg.token = Secret::new("999:WRONG-telegram-token");
    let wrong = Telegram::new(cfg, agent());
    let f = wrong.deliver(&single(it)).unwrap_err();
    assert!(matches!(f, Failure::Permanent(_)), "{f:?}");
    assert!(
        why(&f).contains("401") && !why(&f).contains("WRONG"),
        "{f:?}"
    );
}

#[test]
fn ntfy_publishes_title_priority_tags_and_click() {
    let fake = Fake::start(fs::ntfy::Ntfy::default());
    let cfg = settings::Ntfy {
        url: Secret::new(fs::ntfy::url(&fake.url(""))),
        token: Some(Secret::new(fs::ntfy::TOKEN)),
    };
    let sink = Ntfy::new(cfg, Some(LINK.into()), agent());
    for it in cases() {
        deliver_all(&sink, &lifecycle(&it));
    }
    deliver_all(&sink, &[Alert::StartupSummary { items: group(200) }]);
    no_refusals(&fake);
    let p = fake.service().published.lock().unwrap().clone();
    assert_eq!(p.len(), 13);
    assert_eq!(p[0]["priority"], 5, "critical");
    assert_eq!(p[3]["priority"], 2, "a resolution is quiet");
    assert_eq!(p[0]["tags"][0], "rotating_light");
    assert_eq!(p[3]["tags"][0], "white_check_mark");
    assert_eq!(
        p[0]["click"],
        "https://grafana.example.com/d/pods?ns=shop&pod=web-7d4b9c6f8-aaaaa"
    );
    assert!(p[4]["message"].as_str().unwrap().contains("…[truncated]"));
}

#[test]
fn pagerduty_triggers_then_resolves_with_the_same_dedup_key() {
    let fake = Fake::start(fs::pagerduty::PagerDuty::default());
    let cfg = settings::PagerDuty {
        routing_key: Secret::new(fs::pagerduty::ROUTING_KEY),
        events_url: fake.url(fs::pagerduty::PATH),
    };
    let sink = PagerDuty::new(cfg, Some(LINK.into()), agent());
    let cases = cases();
    for it in &cases {
        deliver_all(&sink, &lifecycle(it));
    }
    no_refusals(&fake);
    let events = fake.service().events.lock().unwrap().clone();
    assert_eq!(events.len(), 12);
    for (incident, it) in events.chunks(4).zip(&cases) {
        let key = stable_key(&it.incident);
        let actions: Vec<&str> = incident.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(actions, ["trigger", "trigger", "trigger", "resolve"]);
        assert!(incident.iter().all(|(_, k)| *k == key), "{incident:?}");
    }
    assert!(
        fake.service().open.lock().unwrap().is_empty(),
        "all resolved"
    );
    let first = fake.accepted()[0].json();
    assert_eq!(first["payload"]["severity"], "critical");
    assert_eq!(
        first["payload"]["custom_details"]["cause"],
        "app_error_exit"
    );
    assert!(
        first["links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("ns=shop")
    );
    // A storm triggers each of its incidents.
    let storm = Alert::Storm {
        shared: String::new(),
        items: group(3),
    };
    deliver_all(&sink, &[storm]);
    assert_eq!(fake.service().open.lock().unwrap().len(), 3);
    // A bad key is PagerDuty's 400: permanent, the key never in the reason.
    let wrong = PagerDuty::new(
        settings::PagerDuty {
            routing_key: Secret::new("W".repeat(32)),
            events_url: fake.url(fs::pagerduty::PATH),
        },
        None,
        agent(),
    );
    let f = wrong.deliver(&single(cases[0].clone())).unwrap_err();
    assert!(
        matches!(f, Failure::Permanent(_)) && !why(&f).contains("WWWWWW"),
        "{f:?}"
    );
}

#[test]
fn opsgenie_creates_notes_and_closes_by_alias() {
    let fake = Fake::start(fs::opsgenie::Opsgenie::default());
    let cfg = settings::Opsgenie {
        api_key: Secret::new(fs::opsgenie::KEY),
        api_url: fake.url(""),
    };
    let sink = Opsgenie::new(cfg, Some(LINK.into()), agent());
    let cases = cases();
    for it in &cases {
        deliver_all(&sink, &lifecycle(it));
    }
    no_refusals(&fake);
    let alerts = fake.service().alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 3);
    for it in &cases {
        let story = &alerts[&stable_key(&it.incident)];
        assert_eq!(story, &["create", "note", "create", "close"]);
    }
    let got = fake.accepted();
    let create = got[0].json();
    assert_eq!(create["priority"], "P1");
    assert!(
        create["message"]
            .as_str()
            .unwrap()
            .starts_with("CrashLoopBackOff")
    );
    assert_eq!(got[3].param("identifierType"), Some("alias"));
    assert!(got[3].path.ends_with("/close"));
    // The key is a credential: a 401 does not echo it.
    let wrong = Opsgenie::new(
        settings::Opsgenie {
            api_key: Secret::new("ffffffff-SECRET-WRONG-KEY-0000000000"),
            api_url: fake.url(""),
        },
        None,
        agent(),
    );
    let f = wrong.deliver(&single(cases[0].clone())).unwrap_err();
    assert!(
        why(&f).contains("401") && !why(&f).contains("SECRET-WRONG"),
        "{f:?}"
    );
}

fn alertmanager(fake: &Fake<fs::alertmanager::Alertmanager>, every: Duration) -> Alertmanager {
    let cfg = settings::Alertmanager {
        url: Secret::new(fake.url("")),
        auth_header: Some(Secret::new(fs::alertmanager::AUTH)),
        repost: every,
    };
    Alertmanager::new(cfg, Some(LINK.into()), agent(), Arc::new(|| true)).unwrap()
}

fn posts(fake: &Fake<fs::alertmanager::Alertmanager>) -> Vec<Value> {
    fake.service()
        .alerts
        .lock()
        .unwrap()
        .values()
        .flatten()
        .cloned()
        .collect()
}

#[test]
fn alertmanager_keeps_an_open_incident_firing_then_ends_it() {
    let fake = Fake::start(fs::alertmanager::Alertmanager::default());
    let sink = alertmanager(&fake, Duration::from_millis(200));
    let it = item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    assert_eq!(sink.deliver(&at(&it, State::Open)), Ok(()));
    assert!(
        wait_until(Duration::from_secs(10), || posts(&fake).len() >= 3),
        "re-posted while open: {}",
        posts(&fake).len()
    );
    assert_eq!(sink.deliver(&at(&it, State::Resolved)), Ok(()));
    assert_eq!(sink.open_alerts(), 0);
    let settled = posts(&fake).len();
    std::thread::sleep(Duration::from_millis(700));
    let all = posts(&fake);
    assert_eq!(all.len(), settled, "nothing re-posted once resolved");
    no_refusals(&fake);
    let (last, firing) = all.split_last().unwrap();
    assert!(firing.iter().all(|a| a.get("endsAt").is_none()));
    assert!(last["endsAt"].is_string(), "{last}");
    let labels = &last["labels"];
    assert_eq!(labels["alertname"], "CrashLoopBackOff");
    assert_eq!(labels["namespace"], "shop");
    assert_eq!(labels["workload"], "Deployment/web");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["cluster"], "edge-1");
    assert_eq!(labels["cause"], "app_error_exit");
    assert!(
        firing[0]["annotations"]["commands"]
            .as_str()
            .unwrap()
            .contains("kubectl logs")
    );
    assert!(
        firing[0]["generatorURL"]
            .as_str()
            .unwrap()
            .contains("ns=shop")
    );
    // Every post carried the Authorization header (the fake refuses without it).
    assert!(fake.received().iter().all(|g| g.status == 200));
}

#[test]
fn alertmanager_ends_the_old_labels_when_the_cause_changes_and_takes_hostile_text() {
    let fake = Fake::start(fs::alertmanager::Alertmanager::default());
    let sink = alertmanager(&fake, Duration::from_secs(3600));
    let it = item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    assert_eq!(sink.deliver(&at(&it, State::Open)), Ok(()));
    let mut changed = it.clone();
    if let Some(d) = changed.diagnosis.as_mut() {
        d.cause = Cause::OomKilled;
    }
    assert_eq!(sink.deliver(&at(&changed, State::Updated)), Ok(()));
    let got = fake.accepted();
    let second = got[1].json();
    let batch = second.as_array().unwrap();
    assert_eq!(batch.len(), 2, "the old alert ended, the new one firing");
    assert_eq!(batch[0]["labels"]["cause"], "app_error_exit");
    assert!(batch[0]["endsAt"].is_string());
    assert_eq!(batch[1]["labels"]["cause"], "oom_killed");
    for it in cases() {
        deliver_all(&sink, &lifecycle(&it));
    }
    deliver_all(
        &sink,
        &[Alert::Storm {
            shared: "x".into(),
            items: group(50),
        }],
    );
    no_refusals(&fake);
    // The lifecycle of incident 1 resolved the first one: the storm's are left.
    assert_eq!(sink.open_alerts(), 50);
}

#[test]
fn the_fakes_refuse_what_the_services_refuse() {
    // The lifecycle tests above mean something only if the fakes are strict.
    use serde_json::json;
    let long = |n: usize| "x".repeat(n);
    let embed = |title: &str, desc: &str| json!({"allowed_mentions": {"parse": []}, "embeds": [{"title": title, "description": desc, "color": 1}]});
    assert!(fs::discord::check_message(&embed("t", "d")).is_ok());
    for bad in [
        embed(&long(257), "d"),
        embed("t", &long(4097)),
        embed("t", "```open"),
        json!({"embeds": [{"title": "t", "description": "d", "color": 1}]}),
        json!({"allowed_mentions": {"parse": []}, "embeds": [{"title": long(256), "description": long(4096), "color": 1,
            "fields": [{"name": long(256), "value": long(1024)}, {"name": "n", "value": long(1000)}]}]}),
    ] {
        assert!(
            fs::discord::check_message(&bad).is_err(),
            "{}",
            &bad.to_string()[..80]
        );
    }
    assert!(fs::telegram::check_text("<b>a</b> &amp; <pre>x</pre>").is_ok());
    for bad in [
        "<b>a",
        "<div>a</div>",
        "a & b",
        "a > b",
        "",
        &long(4097),
        "<b><i>x</b></i>",
    ] {
        assert!(fs::telegram::check_text(bad).is_err(), "{bad:.40}");
    }
    let event = json!({"routing_key": long(32), "event_action": "trigger", "dedup_key": "k",
        "payload": {"summary": "s", "source": "x", "severity": "critical", "custom_details": {}}});
    assert!(fs::pagerduty::check_event(&event).is_ok());
    for (path, v) in [
        ("/payload/summary", json!(long(1025))),
        ("/payload/severity", json!("high")),
        ("/dedup_key", json!(long(256))),
        ("/routing_key", json!("short")),
    ] {
        let mut e = event.clone();
        *e.pointer_mut(path).unwrap() = v;
        assert!(fs::pagerduty::check_event(&e).is_err(), "{path}");
    }
    let create = json!({"message": "m", "alias": "a", "description": "", "entity": "", "source": "s",
        "tags": ["t"], "details": {"k": "v"}, "priority": "P3"});
    assert!(fs::opsgenie::check_create(&create).is_ok());
    for (key, v) in [
        ("message", json!(long(131))),
        ("priority", json!("P6")),
        ("tags", json!(vec!["t"; 21])),
        ("details", json!({"k": long(8000)})),
    ] {
        let mut c = create.clone();
        c[key] = v;
        assert!(fs::opsgenie::check_create(&c).is_err(), "{key}");
    }
    let alert = json!([{"labels": {"alertname": "A"}, "startsAt": "2026-01-01T00:00:00Z"}]);
    assert!(fs::alertmanager::check_alerts(&alert).is_ok());
    for bad in [
        json!([{"labels": {"namespace": "x"}}]),
        json!([{"labels": {"alertname": "A", "bad-name": "x"}}]),
        json!([{"labels": {"alertname": "A"}, "startsAt": "2026-01-02T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z"}]),
        json!({"labels": {"alertname": "A"}}),
    ] {
        assert!(fs::alertmanager::check_alerts(&bad).is_err(), "{bad}");
    }
    let topic = fs::ntfy::TOPIC;
    let msg = json!({"topic": topic, "message": "m", "title": "t", "priority": 3, "tags": []});
    assert!(fs::ntfy::check_message(&msg).is_ok());
    for (key, v) in [
        ("message", json!(long(4097))),
        ("priority", json!(6)),
        ("click", json!("javascript:x")),
    ] {
        let mut m = msg.clone();
        m[key] = v;
        assert!(fs::ntfy::check_message(&m).is_err(), "{key}");
    }
    let card = |el: Value| {
        json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.4", "body": [el]}}]})
    };
    assert!(fs::teams::check_message(&card(json!({"type": "TextBlock", "text": "hi"}))).is_ok());
    for bad in [
        card(json!({"type": "TextBlock", "text": "[x](https://evil)"})),
        card(json!({"type": "Image", "url": "x"})),
        card(json!({"type": "TextBlock", "text": long(30_000)})),
    ] {
        assert!(fs::teams::check_message(&bad).is_err());
    }
    // And over HTTP: a wrong signature, a wrong content type.
    let fake = Fake::start(fs::teams::Teams);
    let url = fake.url(fs::teams::PATH);
    let r = http::post_json(&agent(), &format!("{url}?sig=nope"), &[], &json!({})).unwrap();
    assert_eq!(r.status, 401);
    let good = card(json!({"type": "TextBlock", "text": "hi"}));
    let ok = http::post_json(&agent(), &fs::teams::url(&fake.url("")), &[], &good).unwrap();
    assert_eq!(ok.status, 202);
    assert!(
        fake.received()[1]
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
}

#[test]
fn alertmanager_reposts_only_while_this_replica_leads() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let fake = Fake::start(fs::alertmanager::Alertmanager::default());
    let leads = Arc::new(AtomicBool::new(false));
    let l = leads.clone();
    let cfg = settings::Alertmanager {
        url: Secret::new(fake.url("")),
        auth_header: Some(Secret::new(fs::alertmanager::AUTH)),
        repost: Duration::from_millis(100),
    };
    let sink = Alertmanager::new(
        cfg,
        None,
        agent(),
        Arc::new(move || l.load(Ordering::SeqCst)),
    )
    .unwrap();
    let it = item(1, "shop", "web", FailureType::OOMKilled, State::Open);
    assert_eq!(sink.deliver(&at(&it, State::Open)), Ok(()));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(posts(&fake).len(), 1, "a standby does not re-post");
    leads.store(true, Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(10), || posts(&fake).len() >= 3));
    drop(sink);
}

#[test]
fn the_daemon_delivers_one_incident_to_every_destination_from_open_to_resolved() {
    use crate::util::daemon::Daemon;
    use crate::util::fake_api::{Auth, FakeApi};
    use crate::util::{TempDir, pod};
    let t = Duration::from_secs(30);
    let api = FakeApi::start();
    api.upsert_pod(pod("shop", "web-7d4b9c6f8-aaaaa").running().build());
    let discord = Fake::start(fs::discord::Discord::default());
    let telegram = Fake::start(fs::telegram::Telegram::default());
    let pd = Fake::start(fs::pagerduty::PagerDuty::default());
    let og = Fake::start(fs::opsgenie::Opsgenie::default());
    let am = Fake::start(fs::alertmanager::Alertmanager::default());
    let home = TempDir::new("destinations-e2e");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let (discord_url, telegram_url) = (fs::discord::url(&discord.url("")), telegram.url(""));
    let (pd_url, og_url, am_url) = (pd.url(fs::pagerduty::PATH), og.url(""), am.url(""));
    let env = [
        ("RESOLVE_AFTER_MS", "1000"),
        ("NOTIFY_BATCH_MS", "0"),
        ("ALERT_RATE_LIMIT_WINDOW_MINUTES", "0"),
        ("CLUSTER_NAME", "edge-1"),
        ("DISCORD_WEBHOOK_URL", discord_url.as_str()),
        ("TELEGRAM_BOT_TOKEN", fs::telegram::TOKEN),
        ("TELEGRAM_CHAT_ID", fs::telegram::CHAT),
        ("TELEGRAM_API_URL", telegram_url.as_str()),
        ("PAGERDUTY_ROUTING_KEY", fs::pagerduty::ROUTING_KEY),
        ("PAGERDUTY_EVENTS_URL", pd_url.as_str()),
        ("OPSGENIE_API_KEY", fs::opsgenie::KEY),
        ("OPSGENIE_API_URL", og_url.as_str()),
        ("ALERTMANAGER_URL", am_url.as_str()),
        ("ALERTMANAGER_AUTH_HEADER", fs::alertmanager::AUTH),
    ];
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    let opened = || {
        !pd.service().open.lock().unwrap().is_empty()
            && !og.service().alerts.lock().unwrap().is_empty()
            && !posts(&am).is_empty()
            && !discord.accepted().is_empty()
            && !telegram.service().all().is_empty()
    };
    assert!(
        wait_until(t, opened),
        "not every destination got the incident: {}",
        d.logs()
    );
    api.upsert_pod(pod("shop", "web-7d4b9c6f8-aaaaa").running().build());
    let resolved = || {
        let events = pd.service().events.lock().unwrap().clone();
        events.last().is_some_and(|e| e.0 == "resolve")
            && og
                .service()
                .alerts
                .lock()
                .unwrap()
                .values()
                .all(|s| s.last().is_some_and(|x| x == "close"))
            && posts(&am).last().is_some_and(|a| a["endsAt"].is_string())
            && discord
                .accepted()
                .last()
                .is_some_and(|g| g.method == "PATCH")
            && telegram
                .service()
                .all()
                .last()
                .is_some_and(|m| m.2.is_some() && m.1.contains("Resolved"))
    };
    assert!(
        wait_until(t, resolved),
        "not every destination got the resolution: {}",
        d.logs()
    );
    let logs = d.logs();
    d.terminate();
    for r in [
        discord.refusals(),
        telegram.refusals(),
        pd.refusals(),
        og.refusals(),
        am.refusals(),
    ] {
        assert!(r.is_empty(), "{r:?}");
    }
    let events = pd.service().events.lock().unwrap().clone();
    assert!(
        events.iter().all(|e| e.1 == events[0].1),
        "one dedup_key: {events:?}"
    );
    for secret in [
        fs::discord::TOKEN,
        fs::telegram::TOKEN,
        fs::pagerduty::ROUTING_KEY,
        fs::opsgenie::KEY,
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
    assert!(
        logs.contains("discord") && logs.contains("alertmanager"),
        "sinks named at start-up"
    );
}
