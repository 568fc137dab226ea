/*!
The notification sinks against fakes: the Slack webhook and bot against
`FakeSlack` (which enforces Slack's limits and answers like Slack), the
generic webhook against `FakeReceiver`. The sinks are built directly, with a
short client timeout, one `deliver` per attempt as the pool calls them.
*/

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use opsctrl_daemon::model::{Alert, Failure, Item};
use opsctrl_daemon::model::{Diagnosis, Fix};
use opsctrl_daemon::model::{FailureType, Workload};
use opsctrl_daemon::model::{Incident, State};
use opsctrl_daemon::net::http;
use opsctrl_daemon::notify::Sink;
use opsctrl_daemon::notify::slack_bot::SlackBot;
use opsctrl_daemon::notify::slack_webhook::SlackWebhook;
use opsctrl_daemon::notify::webhook::Webhook;
use opsctrl_daemon::secret::Secret;
use opsctrl_daemon::settings;

use crate::util::fake_receiver::{FakeReceiver, Reply};
use crate::util::fake_slack::{self, FakeSlack, Fault, TOKEN};
use crate::util::items;

/// Hangs in these tests last longer than this.
const TIMEOUT: Duration = Duration::from_secs(1);

fn agent() -> ureq::Agent {
    http::agent(TIMEOUT)
}

fn incident(id: u64, ns: &str, name: &str, kind: FailureType, state: State) -> Incident {
    let f = items::finding(kind, ns, &format!("{name}-7d4b9c6f8-aaaaa"));
    Incident {
        id,
        workload: Workload {
            kind: "Deployment".into(),
            name: name.into(),
        },
        last_seen_ms: 1_764_104_580_000,
        ..items::incident(f, state)
    }
}

fn diagnosis() -> Diagnosis {
    Diagnosis {
        cause: opsctrl_daemon::model::Cause::AppErrorExit,
        summary: "The application exited with an error.".into(),
        confidence: 0.6,
        evidence: vec!["exit code 1, reason Error".into()],
        fix: Fix {
            text: "Read the previous logs.".into(),
            commands: vec!["kubectl logs web-7d4b9c6f8-aaaaa -n shop -c app --previous".into()],
        },
        rule: "exit-error",
        ai: None,
        backend: None,
        node_incident: None,
    }
}

pub fn item(id: u64, ns: &str, name: &str, kind: FailureType, state: State) -> Item {
    Item {
        incident: incident(id, ns, name, kind, state),
        diagnosis: Some(diagnosis()),
        events: vec!["Warning BackOff (x12): Back-off restarting failed container".into()],
        logs: vec!["Error: connect ECONNREFUSED 10.0.0.7:5432".into()],
        facts: vec!["image: registry.example.com/web:1.4.2".into()],
    }
}

pub fn single(item: Item) -> Alert {
    Alert::Incident {
        item: Box::new(item),
        reminder: false,
    }
}

pub fn at(item: &Item, state: State) -> Alert {
    let mut it = item.clone();
    it.incident.state = state;
    single(it)
}

fn bot_settings(slack: &FakeSlack) -> settings::SlackBot {
    settings::SlackBot {
        token: Secret::new(TOKEN),
        api_url: slack.api_url(),
        channel: "#alerts".into(),
        routes: vec![("payments".into(), "#pay-alerts".into())],
    }
}

fn bot(slack: &FakeSlack) -> SlackBot {
    SlackBot::new(bot_settings(slack), agent())
}

/// An item with everything too big: 1 MB message, 300-character names,
/// emoji and right-to-left text, 500 log lines, a huge AI answer.
pub fn monster(id: u64) -> Item {
    let long = "n".repeat(300);
    let mut it = item(
        id,
        &format!("ns-{long}"),
        &format!("w-{long}"),
        FailureType::CrashLoopBackOff,
        State::Open,
    );
    it.incident.cluster = format!("קלאסטר-🚀-{long}");
    it.incident.pods = (0..200).map(|n| format!("p{n}-{long}")).collect();
    it.incident.finding.message = "<!here> & ``` 💥 ".repeat(60_000);
    it.incident.finding.reason = "ש".repeat(300);
    let d = it.diagnosis.as_mut().unwrap();
    d.summary = "مرحبا 👋 ".repeat(10_000);
    d.evidence = (0..50)
        .map(|n| format!("quote {n} {}", "é".repeat(500)))
        .collect();
    d.fix.commands = (0..40)
        .map(|n| format!("kubectl ``` {n} {}", "y".repeat(2000)))
        .collect();
    d.ai = Some(json!({"model": "m", "answer": "🧠".repeat(50_000)}));
    d.backend = Some(json!({"analysis": "b".repeat(100_000)}));
    it.events = (0..300)
        .map(|n| format!("Warning Event{n} {}", "\u{202E}".repeat(500)))
        .collect();
    it.logs = (0..500)
        .map(|n| format!("{n} <tag> & ``` {}", "日本".repeat(400)))
        .collect();
    it
}

fn why(f: &Failure) -> &str {
    match f {
        Failure::Retry { why, .. } | Failure::Permanent(why) => why,
    }
}

// ---------------------------------------------------------------------------------------------
// Slack webhook
// ---------------------------------------------------------------------------------------------

#[test]
fn slack_webhook_messages_of_every_type_are_accepted() {
    let slack = FakeSlack::start();
    let sink = SlackWebhook::new(Secret::new(slack.webhook_url()), agent());
    assert_eq!(sink.name(), "slack");
    let mut n = 0;
    for kind in FailureType::ALL {
        let it = item(1, "shop", "web", kind, State::Open);
        for (state, reminder) in [
            (State::Open, false),
            (State::Updated, false),
            (State::Open, true),
            (State::Resolved, false),
        ] {
            let mut it = it.clone();
            it.incident.state = state;
            let alert = Alert::Incident {
                item: Box::new(it),
                reminder,
            };
            assert_eq!(sink.deliver(&alert), Ok(()), "{kind} {state:?}");
            n += 1;
        }
    }
    let messages = slack.messages();
    assert_eq!(messages.len(), n);
    assert!(
        messages
            .iter()
            .all(|m| m.via_webhook && m.channel == fake_slack::WEBHOOK_CHANNEL)
    );
    assert!(messages[0].header().starts_with("🔴 OOMKilled"));
    assert!(messages[3].header().starts_with("✅ Resolved"));
}

#[test]
fn huge_unicode_and_long_inputs_are_accepted_by_slack() {
    let slack = FakeSlack::start();
    let hook = SlackWebhook::new(Secret::new(slack.webhook_url()), agent());
    let bot = bot(&slack);
    let big = monster(1);
    let mut small_long = item(
        2,
        "shop",
        &"x".repeat(300),
        FailureType::ImagePullBackOff,
        State::Open,
    );
    small_long.incident.cluster = "🌍".repeat(300);
    let mut group: Vec<Item> = (10..310)
        .map(|id| {
            let mut it = small_long.clone();
            it.incident.id = id;
            it
        })
        .collect();
    group.push(monster(400));
    let alerts = [
        single(big.clone()),
        at(&big, State::Updated),
        at(&big, State::Resolved),
        Alert::StartupSummary {
            items: group.clone(),
        },
        Alert::Storm {
            shared: "node ".to_string() + &"ß".repeat(5000),
            items: group,
        },
    ];
    for a in &alerts {
        assert_eq!(hook.deliver(a), Ok(()));
        assert_eq!(bot.deliver(a), Ok(()));
    }
    let messages = slack.messages();
    // 5 webhook posts; the bot: parent, reply, reply, two group posts.
    assert_eq!(messages.len(), 10);
    let parent = messages.iter().find(|m| !m.via_webhook).unwrap();
    assert_eq!(parent.updates.len(), 2);
    assert!(parent.header().starts_with("✅ Resolved"));
    for m in &messages {
        let body = json!({"text": m.text, "blocks": m.blocks}).to_string();
        assert!(
            body.contains('…') || body.contains("more"),
            "{}",
            m.header()
        );
        assert!(!body.contains("<!here>"), "a raw mention got through");
    }
}

#[test]
fn fake_slack_refuses_what_slack_refuses() {
    // The acceptance tests above mean something only if the fake is strict.
    let slack = FakeSlack::start();
    let post = |body: Value| http::post_json(&agent(), &slack.webhook_url(), &[], &body).unwrap();
    let header = |t: &str| json!({"type": "header", "text": {"type": "plain_text", "text": t}});
    let section = |t: &str| json!({"type": "section", "text": {"type": "mrkdwn", "text": t}});
    let ok = post(json!({"text": "hi", "blocks": [header(&"h".repeat(150))]}));
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok"));
    for (body, error) in [
        (
            json!({"text": "hi", "blocks": [header(&"h".repeat(151))]}),
            "invalid_blocks",
        ),
        (
            json!({"blocks": [section(&"s".repeat(3001))]}),
            "invalid_blocks",
        ),
        (json!({"blocks": [section("")]}), "invalid_blocks"),
        (
            json!({"blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]}),
            "invalid_blocks",
        ),
        (
            json!({"blocks": [{"type": "section", "fields": vec![json!({"type": "mrkdwn", "text": "f"}); 11]}]}),
            "invalid_blocks",
        ),
        (
            json!({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f".repeat(2001)}]}]}),
            "invalid_blocks",
        ),
        (json!({"blocks": vec![section("x"); 51]}), "invalid_blocks"),
        (
            json!({"blocks": [{"type": "context", "elements": vec![json!({"type": "mrkdwn", "text": "c"}); 11]}]}),
            "invalid_blocks",
        ),
        (json!({"blocks": [{"type": "banner"}]}), "invalid_blocks"),
        (
            json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x", "emoji": true}}]}),
            "invalid_blocks",
        ),
        (json!({"text": ""}), "no_text"),
        (json!({"text": "x".repeat(41_000)}), "msg_too_long"),
    ] {
        let r = post(body);
        assert_eq!((r.status, r.body.as_str()), (400, error));
    }
    assert!(slack.messages().len() == 1);
}

#[test]
fn slack_webhook_failures_map_to_retry_or_permanent() {
    let slack = FakeSlack::start();
    let sink = SlackWebhook::new(Secret::new(slack.webhook_url()), agent());
    let alert = single(item(1, "shop", "web", FailureType::OOMKilled, State::Open));

    slack.fail_next(Fault::RateLimited(3));
    assert_eq!(
        sink.deliver(&alert),
        Err(Failure::Retry {
            why: "Slack webhook: HTTP 429: rate_limited".into(),
            after: Some(Duration::from_secs(3))
        })
    );
    slack.fail_next(Fault::Status {
        code: 500,
        retry_after: None,
        body: "oops".into(),
    });
    assert!(matches!(
        sink.deliver(&alert),
        Err(Failure::Retry { after: None, .. })
    ));
    slack.fail_next(Fault::Error("invalid_blocks".into()));
    assert_eq!(
        sink.deliver(&alert),
        Err(Failure::Permanent(
            "Slack webhook: HTTP 400: invalid_blocks".into()
        ))
    );
    slack.fail_next(Fault::Status {
        code: 404,
        retry_after: None,
        body: "channel_not_found".into(),
    });
    assert!(
        matches!(sink.deliver(&alert), Err(Failure::Permanent(w)) if w.contains("channel_not_found"))
    );

    slack.fail_next(Fault::Hang(Duration::from_secs(3)));
    let t = Instant::now();
    let hung = sink.deliver(&alert);
    assert!(
        matches!(&hung, Err(Failure::Retry { why, .. }) if why.contains("timed out")),
        "{hung:?}"
    );
    assert!(t.elapsed() < Duration::from_millis(2500));

    // Recovered: the same alert goes through.
    assert_eq!(sink.deliver(&alert), Ok(()));
    assert_eq!(slack.messages().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Slack bot
// ---------------------------------------------------------------------------------------------

#[test]
fn bot_threads_an_incident_and_refreshes_its_parent() {
    let slack = FakeSlack::start();
    let bot = bot(&slack);
    assert_eq!(bot.name(), "slack-bot");
    let it = item(
        42,
        "shop",
        "web",
        FailureType::CrashLoopBackOff,
        State::Open,
    );
    assert_eq!(bot.deliver(&single(it.clone())), Ok(()));
    let mut more = it.clone();
    more.incident.state = State::Updated;
    more.incident.pods.push("web-7d4b9c6f8-bbbbb".into());
    assert_eq!(bot.deliver(&single(more.clone())), Ok(()));
    more.incident.finding.kind = FailureType::OOMKilled;
    assert_eq!(bot.deliver(&single(more.clone())), Ok(()));
    assert_eq!(bot.threads_tracked(), 1);
    assert_eq!(bot.deliver(&at(&more, State::Resolved)), Ok(()));
    assert_eq!(bot.threads_tracked(), 0);

    let parents = slack.top_level();
    assert_eq!(parents.len(), 1);
    let parent = &parents[0];
    assert_eq!(parent.channel, "C0ALERTS");
    let replies = slack.replies_to(&parent.ts);
    assert_eq!(replies.len(), 3);
    assert!(
        replies[0]
            .header()
            .starts_with("🔴 Updated: CrashLoopBackOff")
    );
    assert!(replies[1].header().starts_with("🔴 Updated: OOMKilled"));
    assert!(replies[2].header().starts_with("✅ Resolved"));
    assert_eq!(replies[2].blocks.as_array().unwrap().len(), 3);
    assert_eq!(parent.updates.len(), 3);
    assert!(
        parent.header().starts_with("✅ Resolved: OOMKilled"),
        "{}",
        parent.header()
    );
    assert!(parent.text.contains("resolved"));

    // A new alert for the same incident id after its resolution starts afresh.
    assert_eq!(bot.deliver(&single(it)), Ok(()));
    assert_eq!(slack.top_level().len(), 2);
}

#[test]
fn bot_routes_each_namespace_to_its_channel() {
    let slack = FakeSlack::start();
    let bot = bot(&slack);
    let pay = item(1, "payments", "api", FailureType::OOMKilled, State::Open);
    let shop = item(2, "shop", "web", FailureType::OOMKilled, State::Open);
    bot.deliver(&single(pay.clone())).unwrap();
    bot.deliver(&single(shop.clone())).unwrap();
    bot.deliver(&at(&pay, State::Resolved)).unwrap();
    let m = slack.messages();
    assert_eq!(m[0].channel, "C0PAY");
    assert_eq!(m[1].channel, "C0ALERTS");
    assert_eq!(
        (m[2].channel.as_str(), m[2].thread_ts.as_deref()),
        ("C0PAY", Some(m[0].ts.as_str()))
    );

    // A group goes to the namespace's channel only when all share it.
    let pay2 = item(3, "payments", "worker", FailureType::OOMKilled, State::Open);
    let all_pay = Alert::StartupSummary {
        items: vec![pay.clone(), pay2.clone()],
    };
    let mixed = Alert::Storm {
        shared: "node worker-1".into(),
        items: vec![pay2, shop],
    };
    bot.deliver(&all_pay).unwrap();
    bot.deliver(&mixed).unwrap();
    let m = slack.messages();
    assert_eq!(m[3].channel, "C0PAY");
    assert!(m[3].header().starts_with("📣 "));
    assert_eq!(m[4].channel, "C0ALERTS");
    assert!(
        m[4].header()
            .starts_with("🌩 Storm: 2 new incidents · node worker-1")
    );
}

#[test]
fn a_groups_incidents_continue_in_its_thread() {
    let slack = FakeSlack::start();
    let bot = bot(&slack);
    let items: Vec<Item> = (1..=3)
        .map(|id| {
            item(
                id,
                "shop",
                &format!("app-{id}"),
                FailureType::ImagePullBackOff,
                State::Open,
            )
        })
        .collect();
    bot.deliver(&Alert::Storm {
        shared: "registry ghcr.io".into(),
        items: items.clone(),
    })
    .unwrap();
    assert_eq!(bot.threads_tracked(), 3);
    bot.deliver(&at(&items[1], State::Updated)).unwrap();
    bot.deliver(&at(&items[1], State::Resolved)).unwrap();
    let storm = &slack.top_level()[0];
    let replies = slack.replies_to(&storm.ts);
    assert_eq!(replies.len(), 2);
    assert!(replies[1].header().contains("app-2"));
    // The shared parent is left as it was.
    assert!(storm.updates.is_empty());
    assert_eq!(bot.threads_tracked(), 2);
}

#[test]
fn bot_web_api_errors_map_to_retry_or_permanent() {
    let slack = FakeSlack::start();
    let alert = single(item(1, "shop", "web", FailureType::OOMKilled, State::Open));

    let mut wrong_channel = bot_settings(&slack);
    wrong_channel.channel = "#nowhere".into();
    let f = SlackBot::new(wrong_channel, agent()).deliver(&alert);
    assert_eq!(
        f,
        Err(Failure::Permanent(
            "Slack chat.postMessage to #nowhere: channel_not_found".into()
        ))
    );

    let mut wrong_token = bot_settings(&slack);
    wrong_token.token = Secret::new("xoxb-wrong-token-000000");
    let f = SlackBot::new(wrong_token, agent()).deliver(&alert);
    assert!(
        matches!(&f, Err(Failure::Permanent(w)) if w.ends_with("invalid_auth")),
        "{f:?}"
    );

    let bot = bot(&slack);
    for (fault, expect_retry) in [
        (Fault::Error("not_in_channel".into()), false),
        (Fault::Error("invalid_blocks".into()), false),
        (Fault::Error("internal_error".into()), true),
        (
            Fault::Status {
                code: 500,
                retry_after: None,
                body: "{}".into(),
            },
            true,
        ),
        (
            Fault::Status {
                code: 403,
                retry_after: None,
                body: "forbidden".into(),
            },
            false,
        ),
    ] {
        slack.fail_next(fault.clone());
        let f = bot.deliver(&alert);
        match f {
            Err(Failure::Retry { .. }) if expect_retry => {}
            Err(Failure::Permanent(_)) if !expect_retry => {}
            other => panic!("{fault:?} gave {other:?}"),
        }
    }
    slack.fail_next(Fault::RateLimited(2));
    match bot.deliver(&alert) {
        Err(Failure::Retry { why, after }) => {
            assert!(
                why.starts_with("Slack chat.postMessage to #alerts: HTTP 429: "),
                "{why}"
            );
            assert!(why.contains("ratelimited"), "{why}");
            assert_eq!(after, Some(Duration::from_secs(2)));
        }
        other => panic!("{other:?}"),
    }
    slack.fail_next(Fault::Hang(Duration::from_secs(3)));
    assert!(matches!(bot.deliver(&alert), Err(Failure::Retry { .. })));
    assert!(slack.messages().is_empty());
    assert_eq!(bot.deliver(&alert), Ok(()));
    assert_eq!(slack.messages().len(), 1);
}

#[test]
fn a_retry_after_a_failed_refresh_does_not_post_twice() {
    let slack = FakeSlack::start();
    let bot = bot(&slack);
    let it = item(9, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    bot.deliver(&single(it.clone())).unwrap();

    let updated = at(&it, State::Updated);
    slack.fail_next_on(
        "chat.update",
        Fault::Status {
            code: 503,
            retry_after: Some(1),
            body: "busy".into(),
        },
    );
    assert!(matches!(
        bot.deliver(&updated),
        Err(Failure::Retry { after: Some(_), .. })
    ));
    assert_eq!(bot.deliver(&updated), Ok(()));

    // The reply itself failing is retried as a whole.
    let resolved = at(&it, State::Resolved);
    slack.fail_next_on("chat.postMessage", Fault::RateLimited(1));
    assert!(matches!(bot.deliver(&resolved), Err(Failure::Retry { .. })));
    assert_eq!(bot.deliver(&resolved), Ok(()));

    let parent = &slack.top_level()[0];
    assert_eq!(slack.replies_to(&parent.ts).len(), 2);
    assert_eq!(parent.updates.len(), 2);
    assert!(parent.header().starts_with("✅"));
    assert_eq!(bot.threads_tracked(), 0);
}

#[test]
fn a_parent_that_cannot_be_edited_does_not_fail_the_alert() {
    let slack = FakeSlack::start();
    let bot = bot(&slack);
    let it = item(5, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
    bot.deliver(&single(it.clone())).unwrap();
    slack.fail_next_on("chat.update", Fault::Error("cant_update_message".into()));
    assert_eq!(bot.deliver(&at(&it, State::Updated)), Ok(()));
    let parent = &slack.top_level()[0];
    assert_eq!(slack.replies_to(&parent.ts).len(), 1);
    assert!(parent.updates.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Generic webhook
// ---------------------------------------------------------------------------------------------

#[test]
fn webhook_body_has_the_stable_and_compat_fields_and_the_auth_header() {
    let rx = FakeReceiver::start();
    let sink = Webhook::new(
        settings::Webhook {
            url: Secret::new(rx.url("/hook")),
            auth_header: Some(Secret::new("Bearer abc123456")),
        },
        agent(),
    );
    assert_eq!(sink.name(), "webhook");
    let mut it = item(3, "shop", "web", FailureType::Evicted, State::Open);
    it.incident.finding.exit_code = None;
    sink.deliver(&single(it.clone())).unwrap();
    sink.deliver(&Alert::Incident {
        item: Box::new(it.clone()),
        reminder: true,
    })
    .unwrap();
    sink.deliver(&at(&it, State::Resolved)).unwrap();

    let got = rx.received();
    assert_eq!(got.len(), 3);
    let r = &got[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/hook"));
    assert_eq!(r.header("Authorization"), Some("Bearer abc123456"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let b = r.json();
    // The stable schema, unchanged.
    for (k, v) in [
        ("cluster", json!("edge-1")),
        ("namespace", json!("shop")),
        (
            "workload",
            json!({"kind": "Deployment", "name": "web", "revision": null}),
        ),
        ("pods", json!(["web-7d4b9c6f8-aaaaa"])),
        ("pod", json!("web-7d4b9c6f8-aaaaa")),
        ("type", json!("Evicted")),
        ("pattern", json!("pod-phase-failed")),
        ("severity", json!("medium")),
        ("reason", json!("Error")),
        (
            "message",
            json!("back-off 1m20s restarting failed container"),
        ),
        ("restart_count", json!(5)),
        ("state", json!("open")),
        ("first_seen", json!("2025-11-25T21:00:00Z")),
    ] {
        assert_eq!(b[k], v, "{k}");
    }
    assert_eq!(b["diagnosis"]["cause"], "app_error_exit");
    assert_eq!(
        b["diagnosis"]["fix"]["commands"][0],
        "kubectl logs web-7d4b9c6f8-aaaaa -n shop -c app --previous"
    );
    // Added for notifications and for the original daemon's receivers.
    assert_eq!(b["notification"], "open");
    assert_eq!(b["podName"], "web-7d4b9c6f8-aaaaa");
    assert_eq!(
        b["podSnapshot"],
        json!({"name": "web-7d4b9c6f8-aaaaa", "namespace": "shop", "phase": "Failed",
               "container": "app", "restartCount": 5, "node": "worker-1"})
    );
    assert_eq!(b["watchdogVersion"], env!("CARGO_PKG_VERSION"));
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        b["events"],
        json!(["Warning BackOff (x12): Back-off restarting failed container"])
    );
    assert_eq!(
        b["logs"],
        json!(["Error: connect ECONNREFUSED 10.0.0.7:5432"])
    );
    assert_eq!(got[1].json()["notification"], "reminder");
    let resolved = got[2].json();
    assert_eq!(
        (
            resolved["notification"].as_str(),
            resolved["state"].as_str()
        ),
        (Some("resolved"), Some("resolved"))
    );
    assert!(resolved["podSnapshot"].get("phase").is_none());
}

#[test]
fn webhook_groups_carry_every_incident() {
    let rx = FakeReceiver::start();
    let sink = Webhook::new(
        settings::Webhook {
            url: Secret::new(rx.url("/hook")),
            auth_header: None,
        },
        agent(),
    );
    let items = vec![
        item(1, "shop", "web", FailureType::OOMKilled, State::Open),
        item(2, "shop", "api", FailureType::NotReady, State::Open),
    ];
    sink.deliver(&Alert::StartupSummary {
        items: items.clone(),
    })
    .unwrap();
    sink.deliver(&Alert::Storm {
        shared: "namespace shop".into(),
        items,
    })
    .unwrap();
    let got = rx.received();
    assert_eq!(got[0].header("authorization"), None);
    let summary = got[0].json();
    assert_eq!(summary["notification"], "startup_summary");
    assert_eq!(summary["shared"], Value::Null);
    assert_eq!(summary["cluster"], "edge-1");
    assert_eq!(summary["severity"], "critical");
    assert_eq!(summary["incidents"].as_array().unwrap().len(), 2);
    assert_eq!(summary["incidents"][1]["workload"]["name"], "api");
    assert_eq!(summary["incidents"][1]["notification"], "open");
    let storm = got[1].json();
    assert_eq!(
        (storm["notification"].as_str(), storm["shared"].as_str()),
        (Some("storm"), Some("namespace shop"))
    );
}

#[test]
fn webhook_follows_a_scripted_run_of_failures() {
    let rx = FakeReceiver::start();
    let sink = Webhook::new(
        settings::Webhook {
            url: Secret::new(rx.url("/hook")),
            auth_header: None,
        },
        agent(),
    );
    rx.script([
        Reply::retry_after(429, 1),
        Reply::status(500, "boom"),
        Reply::Hang(Duration::from_secs(3)),
        Reply::status(400, "field 'severity' is not allowed here"),
        Reply::status(200, "accepted"),
    ]);
    let alert = single(item(1, "shop", "web", FailureType::OOMKilled, State::Open));
    assert_eq!(
        sink.deliver(&alert),
        Err(Failure::Retry {
            why: "webhook: HTTP 429: slow down".into(),
            after: Some(Duration::from_secs(1)),
        })
    );
    assert_eq!(
        sink.deliver(&alert),
        Err(Failure::Retry {
            why: "webhook: HTTP 500: boom".into(),
            after: None,
        })
    );
    let t = Instant::now();
    let hung = sink.deliver(&alert);
    assert!(
        matches!(&hung, Err(Failure::Retry { why, after: None }) if why.contains("timed out")),
        "{hung:?}"
    );
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_millis(2500));
    assert_eq!(
        sink.deliver(&alert),
        Err(Failure::Permanent(
            "webhook: HTTP 400: field 'severity' is not allowed here".into()
        ))
    );
    assert_eq!(sink.deliver(&alert), Ok(()));
    let statuses: Vec<u16> = rx.received().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 500, 0, 400, 200]);
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn urls_and_tokens_never_appear_in_failures() {
    let alert = single(item(1, "shop", "web", FailureType::OOMKilled, State::Open));
    let mut failures: Vec<(Failure, Vec<String>)> = Vec::new();

    // Generic webhook: the receiver echoes the URL, its path and the header.
    let rx = FakeReceiver::start();
    let path = "/hooks/s3cr3t-PATH-T0KEN";
    let url = rx.url(path);
    let auth = "Bearer s3cr3t-AUTH-HEADER";
    let echo = format!("no such hook {url} ({path}) for {auth}");
    rx.script([
        Reply::status(404, &echo),
        Reply::status(500, &echo),
        Reply::Hang(Duration::from_secs(3)),
    ]);
    let sink = Webhook::new(
        settings::Webhook {
            url: Secret::new(url.clone()),
            auth_header: Some(Secret::new(auth)),
        },
        agent(),
    );
    let secrets = vec![
        url.clone(),
        path.to_string(),
        auth.to_string(),
        "s3cr3t".into(),
    ];
    for _ in 0..3 {
        failures.push((sink.deliver(&alert).unwrap_err(), secrets.clone()));
    }

    // Nothing listening: a connection error.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = format!("http://127.0.0.1:{closed}/hooks/s3cr3t-DEAD-T0KEN");
    let sink = Webhook::new(
        settings::Webhook {
            url: Secret::new(dead.clone()),
            auth_header: None,
        },
        agent(),
    );
    failures.push((
        sink.deliver(&alert).unwrap_err(),
        vec![dead.clone(), "s3cr3t".into()],
    ));
    let hook = SlackWebhook::new(Secret::new(dead.clone()), agent());
    failures.push((
        hook.deliver(&alert).unwrap_err(),
        vec![dead, "s3cr3t".into()],
    ));

    // Slack webhook and bot against a Slack that echoes what it was given.
    let slack = FakeSlack::start();
    slack.fail_next(Fault::Status {
        code: 403,
        retry_after: None,
        body: format!("invalid_token {}", fake_slack::WEBHOOK_PATH),
    });
    let hook = SlackWebhook::new(Secret::new(slack.webhook_url()), agent());
    failures.push((
        hook.deliver(&alert).unwrap_err(),
        vec![slack.webhook_url(), fake_slack::WEBHOOK_PATH.into()],
    ));
    let bot = bot(&slack);
    slack.fail_next(Fault::Status {
        code: 401,
        retry_after: None,
        body: format!("{{\"error\":\"bad token {TOKEN}\"}}"),
    });
    failures.push((bot.deliver(&alert).unwrap_err(), vec![TOKEN.into()]));
    slack.fail_next(Fault::Error(format!("invalid_auth:{TOKEN}")));
    failures.push((bot.deliver(&alert).unwrap_err(), vec![TOKEN.into()]));

    for (f, secrets) in &failures {
        let shown = format!("{f:?} {}", why(f));
        for s in secrets {
            assert!(!shown.contains(s.as_str()), "{s:?} leaked in {shown}");
        }
    }
    assert!(why(&failures[0].0).contains("<redacted>"));
}

#[test]
fn redirects_are_never_followed_and_fail_naming_the_status() {
    let rx = FakeReceiver::start();
    // Every outgoing client (sinks, the LLM, the backend) is a `net::http::agent`.
    let sink = SlackWebhook::new(Secret::new(rx.url("/hook")), agent());
    for code in [301, 302, 303, 307, 308] {
        rx.script([Reply::Redirect {
            code,
            location: rx.url("/elsewhere"),
        }]);
        let it = item(1, "shop", "web", FailureType::CrashLoopBackOff, State::Open);
        let f = sink.deliver(&single(it)).unwrap_err();
        assert!(matches!(f, Failure::Permanent(_)), "{code}: {f:?}");
        assert!(
            why(&f).contains(&format!("HTTP {code}")),
            "{code}: {}",
            why(&f)
        );
    }
    let paths: Vec<String> = rx.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/hook"; 5], "no redirect was followed");
    // A plain GET (as the LLM and backend clients make) is not followed either.
    rx.script([Reply::Redirect {
        code: 302,
        location: rx.url("/elsewhere"),
    }]);
    let resp = agent().get(rx.url("/answer")).call().unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    assert!(rx.received().iter().all(|r| r.path != "/elsewhere"));
}
