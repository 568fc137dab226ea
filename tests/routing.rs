//! Routing and silences end to end: the real daemon, the fake API server,
//! fake Slack, webhook and Discord receivers; `routes test`; bad files exit 2.

use std::time::Duration;

use opsctrl_daemon::util::time::{format_rfc3339, unix_now};
use serde_json::{Value, json};

use crate::util::daemon::{Daemon, command};
use crate::util::fake_api::{Auth, FakeApi};
use crate::util::fake_receiver::FakeReceiver;
use crate::util::fake_services::{self as fs, Fake};
use crate::util::fake_slack::{FakeSlack, TOKEN};
use crate::util::{MARKER, TempDir, is_marker, pod, stage_marker, wait_until};

const T: Duration = Duration::from_secs(30);

fn start(api: &FakeApi, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut env = vec![
        ("OUTPUT", "json"),
        ("NOTIFY_BATCH_MS", "0"),
        ("ALERT_RATE_LIMIT_WINDOW_MINUTES", "0"),
        ("CLUSTER_NAME", "edge-1"),
    ];
    env.extend_from_slice(extra);
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    d
}

#[test]
fn a_route_sends_a_teams_incidents_to_the_webhook_only_and_the_rest_to_slack() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    let hook = FakeReceiver::start();
    let home = TempDir::new("route-ns");
    let routes = home.join("routes.yaml");
    std::fs::write(
        &routes,
        "routes:\n  - name: checkout\n    match: {namespace: shop, labels: {team: \"check*\"}}\n    sinks: [webhook]\ndefault: [slack]\n",
    )
    .unwrap();
    let (webhook_url, slack_url) = (hook.url("/hook"), slack.webhook_url());
    let d = start(
        &api,
        &home,
        &[
            ("WEBHOOK_URL", &webhook_url),
            ("SLACK_WEBHOOK_URL", &slack_url),
            ("ROUTES_FILE", routes.to_str().unwrap()),
        ],
    );
    let checkout = |name: &str| pod("shop", name).label("team", "checkout");
    api.upsert_pod(
        checkout("cart-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(pod("shop", "search-6c5d4f7b9-ccccc").oom_killed(4).build());
    api.upsert_pod(pod("blog", "posts-5f6d7c8b9-bbbbb").oom_killed(4).build());
    let hooked = || -> Vec<Value> { hook.received().iter().map(|r| r.json()).collect() };
    assert!(
        wait_until(T, || !hooked().is_empty() && !slack.messages().is_empty()),
        "webhook {} / slack {}: {}",
        hooked().len(),
        slack.messages().len(),
        d.logs()
    );
    // The markers, one each way: once they are out, anything wrongly routed
    // before them is out too.
    api.upsert_pod(checkout(MARKER).crash_loop(3, 1, "Error").build());
    stage_marker(&api, "blog");
    assert!(
        wait_until(T, || hooked().iter().any(is_marker)
            && slack.messages().iter().any(|m| m.text.contains("marker"))),
        "markers: {}",
        d.logs()
    );
    let hooked = hooked();
    let names: Vec<&Value> = hooked.iter().map(|b| &b["workload"]["name"]).collect();
    assert!(
        names.iter().all(|n| *n == "cart" || *n == "marker"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| *n == "cart"), "{names:?}");
    let slacked = slack.messages();
    assert!(
        slacked.iter().all(|m| !m.text.contains("cart")),
        "{slacked:#?}"
    );
    for w in ["posts", "search"] {
        assert!(
            slacked.iter().any(|m| m.text.contains(w)),
            "{w}: {slacked:#?}"
        );
    }
    // All are on the record, whoever was told.
    let records = d.records();
    for w in ["cart", "posts", "search"] {
        assert!(records.iter().any(|r| r["workload"]["name"] == w), "{w}");
    }
    d.terminate();
}

#[test]
fn a_silenced_pod_is_on_stdout_and_in_metrics_but_reaches_slack_only_when_its_silence_ends() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("silence-pod");
    let slack_url = slack.webhook_url();
    let mut d = start(&api, &home, &[("SLACK_WEBHOOK_URL", &slack_url)]);
    let until = unix_now() + 8;
    let mut p = pod("shop", "cart-7d4b9c6f8-aaaaa")
        .crash_loop(4, 1, "Error")
        .build();
    p["metadata"]["annotations"] = json!({"opsctrl.dev/silence-until": format_rfc3339(until)});
    api.upsert_pod(p);
    d.wait("the incident on stdout", T, |d| {
        d.records().iter().any(|r| r["workload"]["name"] == "cart")
    });
    d.wait_metric("opsctrl_notifications_silenced_total", T, |v| v >= 1.0);
    assert_eq!(d.metric("opsctrl_incidents_open"), Some(1.0), "still open");
    assert_eq!(d.metric("opsctrl_incidents_silenced"), Some(1.0));
    let (_, health) = d.get("/health").unwrap();
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        (
            health["incidentsOpen"].as_u64(),
            health["incidentsSilenced"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // A marker, not silenced, goes out: the silenced one was held back, not late.
    stage_marker(&api, "shop");
    assert!(
        wait_until(T, || slack
            .messages()
            .iter()
            .any(|m| m.text.contains("marker"))),
        "{}",
        d.logs()
    );
    if unix_now() < until {
        let early: Vec<_> = slack
            .messages()
            .into_iter()
            .filter(|m| m.text.contains("cart"))
            .collect();
        assert!(early.is_empty(), "sent while silenced: {early:#?}");
    }
    assert!(
        d.logs()
            .contains("notification silenced (pod cart-7d4b9c6f8-aaaaa")
    );
    // The silence ends: the incident, still open, is notified then.
    assert!(
        wait_until(T, || slack
            .messages()
            .iter()
            .any(|m| m.text.contains("cart"))),
        "not notified after the silence: {}",
        d.logs()
    );
    assert!(unix_now() >= until, "not before the silence ended");
    d.wait_metric("opsctrl_incidents_silenced", T, |v| v == 0.0);
    assert!(d.logs().contains("silence over: notifying incident"));
    d.terminate();
}

#[test]
fn a_route_names_the_bots_channel_and_the_incident_s_thread_stays_there() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("route-channel");
    let routes = home.join("routes.json");
    std::fs::write(
        &routes,
        r##"{"routes": [{"match": {"namespace": "pay"}, "sinks": [{"sink": "slack-bot", "channel": "#pay-alerts"}]}]}"##,
    )
    .unwrap();
    let api_url = slack.api_url();
    let d = start(
        &api,
        &home,
        &[
            ("SLACK_BOT_TOKEN", TOKEN),
            ("SLACK_CHANNEL", "#alerts"),
            ("SLACK_API_URL", &api_url),
            ("RESOLVE_AFTER_MS", "1000"),
            ("ROUTES_FILE", routes.to_str().unwrap()),
        ],
    );
    api.upsert_pod(
        pod("pay", "ledger-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("shop", "cart-7d4b9c6f8-bbbbb")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    assert!(
        wait_until(T, || slack.top_level().len() == 2),
        "{:#?}\n{}",
        slack.messages(),
        d.logs()
    );
    let top = slack.top_level();
    let channel_of = |w: &str| {
        top.iter()
            .find(|m| m.text.contains(w))
            .map(|m| m.channel.clone())
    };
    assert_eq!(
        channel_of("ledger").as_deref(),
        Some("C0PAY"),
        "the route's channel"
    );
    assert_eq!(
        channel_of("cart").as_deref(),
        Some("C0ALERTS"),
        "SLACK_CHANNEL"
    );
    let parent = top
        .iter()
        .find(|m| m.text.contains("ledger"))
        .unwrap()
        .ts
        .clone();
    api.upsert_pod(pod("pay", "ledger-7d4b9c6f8-aaaaa").running().build());
    assert!(
        wait_until(T, || slack
            .replies_to(&parent)
            .iter()
            .any(
                |m| m.text.contains("resolved") || m.header().contains("Resolved")
            )),
        "no resolution in the thread: {:#?}\n{}",
        slack.messages(),
        d.logs()
    );
    assert!(
        slack
            .replies_to(&parent)
            .iter()
            .all(|m| m.channel == "C0PAY")
    );
    d.terminate();
}

/// Each message a fake Discord webhook holds: its first title and its last.
fn discord_messages(fake: &Fake<fs::discord::Discord>) -> Vec<(String, String)> {
    let title = |v: &Value| v["embeds"][0]["title"].as_str().unwrap_or("").to_string();
    let messages = fake.service().messages.lock().unwrap().clone();
    messages
        .values()
        .filter_map(|bodies| Some((title(bodies.first()?), title(bodies.last()?))))
        .collect()
}

#[test]
fn a_route_sends_one_namespace_to_a_second_discord_webhook_and_edits_the_message_there() {
    const SECOND: &str = "pay-webhook-TOKEN-4242";
    let api = FakeApi::start();
    let main = Fake::start(fs::discord::Discord::default());
    let pay = Fake::start(fs::discord::Discord::with_token(SECOND));
    let home = TempDir::new("route-discord");
    let hook_file = home.join("pay-discord");
    std::fs::write(
        &hook_file,
        fs::discord::url_with(&pay.url(""), SECOND) + "\n",
    )
    .unwrap();
    let routes = home.join("routes.yaml");
    std::fs::write(
        &routes,
        format!(
            "routes:\n  - match: {{namespace: pay}}\n    sinks: [{{sink: discord, webhook_file: {}}}]\ndefault: [discord]\n",
            hook_file.display()
        ),
    )
    .unwrap();
    let main_url = fs::discord::url(&main.url(""));
    let d = start(
        &api,
        &home,
        &[
            ("DISCORD_WEBHOOK_URL", &main_url),
            ("RESOLVE_AFTER_MS", "1000"),
            ("ROUTES_FILE", routes.to_str().unwrap()),
        ],
    );
    api.upsert_pod(
        pod("pay", "ledger-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("shop", "cart-7d4b9c6f8-bbbbb")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    assert!(
        wait_until(T, || !discord_messages(&main).is_empty()
            && !discord_messages(&pay).is_empty()),
        "main {:?} / pay {:?}: {}",
        discord_messages(&main),
        discord_messages(&pay),
        d.logs()
    );
    api.upsert_pod(pod("pay", "ledger-7d4b9c6f8-aaaaa").running().build());
    api.upsert_pod(pod("shop", "cart-7d4b9c6f8-bbbbb").running().build());
    // Each resolution is an edit of the incident's message in its own webhook.
    let resolved_in = |f: &Fake<fs::discord::Discord>, w: &str| {
        discord_messages(f)
            .iter()
            .any(|(first, last)| first.contains(w) && last.contains("Resolved"))
    };
    assert!(
        wait_until(T, || resolved_in(&pay, "ledger")
            && resolved_in(&main, "cart")),
        "main {:?} / pay {:?}: {}",
        discord_messages(&main),
        discord_messages(&pay),
        d.logs()
    );
    for (fake, own, other) in [(&main, "cart", "ledger"), (&pay, "ledger", "cart")] {
        let messages = discord_messages(fake);
        assert_eq!(messages.len(), 1, "one message, edited: {messages:?}");
        assert!(messages[0].0.contains(own), "{messages:?}");
        let calls = fake.received();
        assert!(
            calls
                .iter()
                .all(|g| !String::from_utf8_lossy(&g.body).contains(other)),
            "{other} reached the {own} webhook"
        );
        assert!(fake.refusals().is_empty(), "{:?}", fake.refusals());
        assert_eq!(calls.first().map(|g| g.method.as_str()), Some("POST"));
        assert!(calls[1..].iter().all(|g| g.method == "PATCH"), "edits only");
    }
    let logs = d.logs();
    d.terminate();
    for secret in [fs::discord::TOKEN, SECOND] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[test]
fn a_silenced_namespace_is_notified_once_its_annotation_is_removed() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("silence-ns");
    let far = format_rfc3339(unix_now() + 3600);
    api.set_namespace_annotation("shop", "opsctrl.dev/silence-until", Some(&far));
    let slack_url = slack.webhook_url();
    let mut d = start(&api, &home, &[("SLACK_WEBHOOK_URL", &slack_url)]);
    api.upsert_pod(
        pod("shop", "cart-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    d.wait_metric("opsctrl_notifications_silenced_total", T, |v| v >= 1.0);
    assert!(d.records().iter().any(|r| r["workload"]["name"] == "cart"));
    stage_marker(&api, "blog");
    assert!(
        wait_until(T, || slack
            .messages()
            .iter()
            .any(|m| m.text.contains("marker"))),
        "{}",
        d.logs()
    );
    assert!(!slack.messages().iter().any(|m| m.text.contains("cart")));
    api.set_namespace_annotation("shop", "opsctrl.dev/silence-until", None);
    assert!(
        wait_until(T, || slack
            .messages()
            .iter()
            .any(|m| m.text.contains("cart"))),
        "not notified once the namespace's silence was removed: {}",
        d.logs()
    );
    assert!(
        d.logs()
            .contains("namespace shop opsctrl.dev/silence-until until")
    );
    d.terminate();
}

fn routes_test(home: &TempDir, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = command(home.path());
    cmd.args(["routes", "test"]).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn routes_test_prints_the_matching_routes_and_the_sinks_and_channels() {
    let home = TempDir::new("routes-test");
    let routes = home.join("routes.json");
    std::fs::write(
        &routes,
        json!({
            "routes": [
                {"name": "critical-audit", "match": {"min_severity": "high"}, "sinks": ["webhook"], "continue": true},
                {"name": "shop", "match": {"namespace": "shop", "labels": {"team": "pay*"}},
                 "sinks": [{"sink": "slack-bot", "channel": "#pay-alerts"}]},
                {"name": "web", "match": {"kind": "Deployment", "name": "web"}, "sinks": ["slack-bot"]}
            ],
            "default": []
        })
        .to_string(),
    )
    .unwrap();
    let silences = home.join("silences.yaml");
    std::fs::write(
        &silences,
        "- match: {namespace: shop, type: CrashLoopBackOff}\n  ends_at: \"2999-01-01T00:00:00Z\"\n  comment: migration CHG-1\n",
    )
    .unwrap();
    let env = [
        ("WEBHOOK_URL", "https://hooks.example.com/x"),
        ("SLACK_BOT_TOKEN", "xoxb-fake-0000-token-abcdef"),
        ("SLACK_CHANNEL", "#alerts"),
        ("ROUTES_FILE", routes.to_str().unwrap()),
        ("SILENCES_FILE", silences.to_str().unwrap()),
        ("ALERT_SEVERITY_FILTERS", "high,critical"),
    ];
    let (code, out, err) = routes_test(
        &home,
        &env,
        &[
            "--namespace",
            "shop",
            "--severity",
            "high",
            "--type",
            "CrashLoopBackOff",
            "--label",
            "team=payments",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "incident: namespace=shop severity=high type=CrashLoopBackOff cause=- workload=-/- labels=team=payments\n\
         routes: route 1 (\"critical-audit\"), then route 2 (\"shop\") matches\n\
         sinks:\n  webhook\n  slack-bot channel #pay-alerts\n\
         silenced now: SILENCES_FILE silence 1 (\"migration CHG-1\") until 2999-01-01T00:00:00.000Z\n"
    );
    let (_, out, _) = routes_test(
        &home,
        &env,
        &[
            "--namespace",
            "blog",
            "--type",
            "NotReady",
            "--kind",
            "Deployment",
            "--name",
            "web",
        ],
    );
    assert!(out.contains("routes: route 3 (\"web\") matches"), "{out}");
    assert!(
        out.contains("  slack-bot channel #alerts (SLACK_CHANNEL)"),
        "{out}"
    );
    assert!(
        out.contains("held back: severity medium is not in ALERT_SEVERITY_FILTERS"),
        "{out}"
    );
    let (_, out, _) = routes_test(&home, &env, &["--namespace", "blog", "--severity", "low"]);
    assert!(
        out.contains("none of 3 matches: the default route\nsinks: none"),
        "{out}"
    );
    let (code, _, err) = routes_test(&home, &env, &["--namespace", "blog", "--type", "Crash"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--type \"Crash\" is not one of: OOMKilled, CrashLoopBackOff"),
        "{err}"
    );
    let (code, _, err) = routes_test(&home, &env, &["--type", "OOMKilled"]);
    assert_eq!(code, 2);
    assert!(err.contains("--namespace NS is required"), "{err}");
}

#[test]
fn a_bad_routes_or_silences_file_exits_2_naming_the_route_and_field() {
    let home = TempDir::new("routes-bad");
    let routes = home.join("routes.yaml");
    std::fs::write(
        &routes,
        "routes:\n  - name: shop\n    match: {namespace: shop, severity: [hgh]}\n    sinks: [teams]\n  - match: {}\n    sinks: [{sink: webhook, channel: \"#x\"}]\n",
    )
    .unwrap();
    let silences = home.join("silences.json");
    std::fs::write(&silences, r#"[{"ends_at": "tomorrow", "comment": "x"}]"#).unwrap();
    let out = command(home.path())
        .arg("run")
        .env("WEBHOOK_URL", "https://hooks.example.com/secret-path")
        .env("ROUTES_FILE", &routes)
        .env("SILENCES_FILE", &silences)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let at = format!("opsctrl-daemon: ROUTES_FILE {}: ", routes.display());
    for want in [
        format!(
            "{at}route 1 (\"shop\"): match.severity: \"hgh\" is not one of: informational, low, medium, high, critical"
        ),
        format!(
            "{at}route 1 (\"shop\"): sinks[0]: sink \"teams\" is not configured (configured: webhook)"
        ),
        format!(
            "{at}route 2: sinks[0]: channel: not accepted (webhook takes nothing but its name)"
        ),
        format!(
            "opsctrl-daemon: SILENCES_FILE {}: silence 1: ends_at: must be an RFC 3339 time",
            silences.display()
        ),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&want)),
            "want {want:?} in\n{err}"
        );
    }
    assert_eq!(err.lines().count(), 4, "{err}");
    assert!(!err.contains("secret-path"));
}
