//! What an install relies on: `test-alert` through every sink, the log
//! formats a cluster's log shipper reads, and the binary as the kubectl plugin.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::util::daemon::{BIN, Daemon, command};
use crate::util::fake_api::{Auth, FakeApi};
use crate::util::fake_receiver::{FakeReceiver, Reply};
use crate::util::fake_slack::{FakeSlack, Fault};
use crate::util::{TempDir, pod};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/scan-sample.json"
);

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn test_alert_reaches_every_sink_labelled_as_a_test() {
    let slack = FakeSlack::start();
    let hook = FakeReceiver::start();
    let home = TempDir::new("test-alert-ok");
    let out = command(home.path())
        .arg("test-alert")
        .env("SLACK_WEBHOOK_URL", slack.webhook_url())
        .env("WEBHOOK_URL", hook.url("/hook"))
        .env("CLUSTER_NAME", "edge-1")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("slack       accepted"), "{t}");
    assert!(t.contains("webhook     accepted"), "{t}");
    assert!(t.contains("every sink accepted"), "{t}");

    let msgs = slack.messages();
    assert_eq!(msgs.len(), 1, "one Slack message");
    assert!(
        msgs[0].header().contains("TEST/opsctrl-daemon-test-alert"),
        "{}",
        msgs[0].header()
    );
    assert!(
        msgs[0].blocks.to_string().contains("TEST ALERT"),
        "{}",
        msgs[0].blocks
    );
    let got = hook.received();
    assert_eq!(got.len(), 1, "one webhook POST");
    let body = got[0].json().to_string();
    assert!(
        body.contains("TestAlert") && body.contains("Nothing is failing"),
        "{body}"
    );
    assert!(body.contains("edge-1"), "{body}");
}

#[test]
fn test_alert_reaches_the_other_destinations_and_resolves_what_would_page() {
    use crate::util::fake_services::{self as fs, Fake};
    let teams = Fake::start(fs::teams::Teams);
    let discord = Fake::start(fs::discord::Discord::default());
    let telegram = Fake::start(fs::telegram::Telegram::default());
    let ntfy = Fake::start(fs::ntfy::Ntfy::default());
    let pd = Fake::start(fs::pagerduty::PagerDuty::default());
    let og = Fake::start(fs::opsgenie::Opsgenie::default());
    let am = Fake::start(fs::alertmanager::Alertmanager::default());
    let home = TempDir::new("test-alert-more");
    let out = command(home.path())
        .arg("test-alert")
        .env("TEAMS_WEBHOOK_URL", fs::teams::url(&teams.url("")))
        .env("DISCORD_WEBHOOK_URL", fs::discord::url(&discord.url("")))
        .env("TELEGRAM_BOT_TOKEN", fs::telegram::TOKEN)
        .env("TELEGRAM_CHAT_ID", fs::telegram::CHAT)
        .env("TELEGRAM_API_URL", telegram.url(""))
        .env("NTFY_URL", fs::ntfy::url(&ntfy.url("")))
        .env("NTFY_TOKEN", fs::ntfy::TOKEN)
        .env("PAGERDUTY_ROUTING_KEY", fs::pagerduty::ROUTING_KEY)
        .env("PAGERDUTY_EVENTS_URL", pd.url(fs::pagerduty::PATH))
        .env("OPSGENIE_API_KEY", fs::opsgenie::KEY)
        .env("OPSGENIE_API_URL", og.url(""))
        .env("ALERTMANAGER_URL", am.url(""))
        .env("ALERTMANAGER_AUTH_HEADER", fs::alertmanager::AUTH)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for name in [
        "teams",
        "discord",
        "telegram",
        "ntfy",
        "pagerduty",
        "opsgenie",
        "alertmanager",
    ] {
        assert!(
            t.lines()
                .any(|l| l.starts_with(name) && l.ends_with("accepted")),
            "{name}: {t}"
        );
    }
    // The credentials are never printed.
    for secret in [
        fs::teams::SIG,
        fs::discord::TOKEN,
        fs::telegram::TOKEN,
        fs::ntfy::TOPIC,
        fs::pagerduty::ROUTING_KEY,
        fs::opsgenie::KEY,
        "YWxlcnQ6U0VDUkVUcGFzcw",
    ] {
        assert!(!t.contains(secret), "{secret} printed: {t}");
    }
    for got in [
        teams.accepted().len(),
        discord.accepted().len(),
        telegram.accepted().len(),
        ntfy.accepted().len(),
    ] {
        assert_eq!(got, 1, "{t}");
    }
    assert!(
        teams.accepted()[0]
            .json()
            .to_string()
            .contains("TEST ALERT")
    );
    // What would page is resolved at once.
    let events = pd.service().events.lock().unwrap().clone();
    assert_eq!(
        events.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["trigger", "resolve"]
    );
    let alerts = og.service().alerts.lock().unwrap().clone();
    assert_eq!(alerts.values().next().unwrap(), &["create", "close"]);
    let posts: Vec<_> = am
        .service()
        .alerts
        .lock()
        .unwrap()
        .values()
        .flatten()
        .cloned()
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(posts[1]["endsAt"].is_string(), "{}", posts[1]);
}

#[test]
fn test_alert_names_the_sink_that_refused_and_exits_1() {
    let slack = FakeSlack::start();
    slack.fail_next(Fault::Error("invalid_token".into()));
    let hook = FakeReceiver::start();
    // A 503, then a 200: the retry is reported, and counts as accepted.
    hook.script([Reply::status(503, "busy"), Reply::ok()]);
    let home = TempDir::new("test-alert-bad");
    let out = command(home.path())
        .arg("test-alert")
        .env("SLACK_WEBHOOK_URL", slack.webhook_url())
        .env("WEBHOOK_URL", hook.url("/hook"))
        .env("ALERT_BACKOFF_MS", "100")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("slack       REFUSED"), "{t}");
    assert!(t.contains("invalid_token"), "{t}");
    assert!(t.contains("webhook     accepted (attempt 2)"), "{t}");
    // The webhook URL is a credential: never printed.
    assert!(!t.contains(&slack.webhook_url()), "{t}");
}

#[test]
fn test_alert_without_a_sink_says_which_settings_make_one() {
    let home = TempDir::new("test-alert-none");
    let out = command(home.path()).arg("test-alert").output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("no sink is configured") && t.contains("SLACK_WEBHOOK_URL"),
        "{t}"
    );
}

#[test]
fn test_alert_writes_a_kubernetes_event_on_the_daemons_pod() {
    let api = FakeApi::start();
    let home = TempDir::new("test-alert-event");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let out = command(home.path())
        .arg("test-alert")
        .arg("--kubeconfig")
        .arg(&kc)
        .env("EMIT_K8S_EVENTS", "true")
        .env("POD_NAME", "opsctrl-daemon-6d9f-x2x")
        .env("POD_NAMESPACE", "opsctrl")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("k8s-events  accepted"), "{t}");
    let events = api.events();
    let e = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "opsctrl-daemon-6d9f-x2x")
        .unwrap_or_else(|| panic!("no Event on the daemon's pod: {events:?}"));
    assert_eq!(e["metadata"]["namespace"], "opsctrl");
    assert!(
        e["message"].as_str().unwrap_or("").contains("TEST ALERT"),
        "{e}"
    );
}

/// 2026-12-01T10:00:00.123Z: a UTC timestamp with milliseconds.
fn is_rfc3339_utc_ms(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 17
}

fn crashing(api: &FakeApi) {
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
}

#[test]
fn json_logs_and_json_records_share_one_log_and_say_which_is_which() {
    let api = FakeApi::start();
    crashing(&api);
    let home = TempDir::new("logfmt-json");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("OUTPUT", "json"),
            ("LOG_FORMAT", "json"),
            ("NOTIFY_BATCH_MS", "0"),
        ],
    );
    d.wait_ready();
    d.wait("an incident record", Duration::from_secs(30), |d| {
        d.records().iter().any(|r| r["state"] == "open")
    });
    let records = d.records();
    let (_, _, logs) = d.terminate();
    for r in &records {
        assert_eq!(r["record"], "incident", "{r}");
    }
    let mut n = 0;
    for line in logs.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["record"], "log", "{line}");
        assert!(is_rfc3339_utc_ms(v["ts"].as_str().unwrap_or("")), "{line}");
        assert!(
            ["error", "warn", "info", "debug", "trace"]
                .contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(
            v["target"].as_str().is_some_and(|t| !t.is_empty()),
            "{line}"
        );
        assert!(v["msg"].is_string(), "{line}");
        n += 1;
    }
    assert!(n > 3, "some log lines: {logs}");
}

#[test]
fn text_logs_start_with_an_rfc3339_utc_timestamp_and_a_level() {
    let api = FakeApi::start();
    let home = TempDir::new("logfmt-text");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(home.path(), &kc, &[]);
    d.wait_ready();
    let (_, _, logs) = d.terminate();
    assert!(logs.lines().count() > 3, "{logs}");
    for line in logs.lines() {
        let (ts, rest) = line.split_at(24.min(line.len()));
        assert!(is_rfc3339_utc_ms(ts), "{line}");
        let level = rest.split_whitespace().next().unwrap_or("");
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{line}"
        );
    }
}

#[test]
fn a_bad_log_format_stops_start_up_naming_it() {
    let home = TempDir::new("logfmt-bad");
    let out = command(home.path())
        .args(["scan", "-f", SAMPLE])
        .env("LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("LOG_FORMAT=\"yaml\": allowed: text or json"),
        "{t}"
    );
}

/// The binary as `kubectl-opsctrl` in a directory of its own.
fn plugin(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("kubectl-opsctrl");
    std::os::unix::fs::symlink(BIN, &p).unwrap();
    p
}

#[test]
fn as_kubectl_opsctrl_it_scans_and_without_a_command_it_helps() {
    let home = TempDir::new("plugin");
    let bin = plugin(home.path());
    let direct = Command::new(BIN)
        .args(["scan", "-f", SAMPLE])
        .env_clear()
        .output()
        .unwrap();
    let out = Command::new(&bin)
        .args(["scan", "-f", SAMPLE])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(out.stdout, direct.stdout);

    // A plugin runs for one answer: no command is the help, not the daemon.
    let out = Command::new(&bin).env_clear().output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("kubectl opsctrl scan [-f FILE]"), "{t}");
    assert!(t.contains("Usage: kubectl opsctrl run [OPTIONS]"), "{t}");
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kubectl opsctrl {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn kubectl_finds_it_on_path_as_a_plugin() {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        panic!("kubectl is needed (.ci/run installs it)");
    }
    let home = TempDir::new("plugin-kubectl");
    plugin(home.path());
    let path = format!(
        "{}:{}",
        home.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("kubectl")
        .args(["opsctrl", "scan", "-f", SAMPLE])
        .env("PATH", &path)
        .env("HOME", home.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.lines()
            .any(|l| l.starts_with("shop ") && l.contains(" Deployment/web ")),
        "{t}"
    );
    let out = Command::new("kubectl")
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("kubectl-opsctrl"),
        "{}",
        text(&out)
    );
}
