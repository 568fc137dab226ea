//! Delivery end to end: the real daemon, the fake API server, and fake
//! Slack / webhook receivers. One message per problem, updates in its
//! thread, one resolution; retries that lose nothing and duplicate nothing;
//! a shutdown that drains or says what it could not send.

use std::time::Duration;

use serde_json::Value;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi};
use crate::util::fake_receiver::{FakeReceiver, Reply};
use crate::util::fake_slack::{FakeSlack, TOKEN};
use crate::util::{TempDir, is_marker, pod, stage_marker};

const T: Duration = Duration::from_secs(30);

const WEB: [&str; 3] = [
    "web-7d4b9c6f8-aaaaa",
    "web-7d4b9c6f8-bbbbb",
    "web-7d4b9c6f8-ccccc",
];

fn start(api: &FakeApi, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut env = vec![
        ("OUTPUT", "json"),
        ("RESOLVE_AFTER_MS", "1000"),
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
fn a_crashing_deployment_is_one_slack_thread_with_its_updates_and_one_resolution() {
    let api = FakeApi::start();
    for p in WEB {
        api.upsert_pod(pod("shop", p).running().build());
    }
    let slack = FakeSlack::start();
    let api_url = slack.api_url();
    let home = TempDir::new("deliver-slack");
    let d = start(
        &api,
        &home,
        &[
            ("SLACK_BOT_TOKEN", TOKEN),
            ("SLACK_CHANNEL", "#alerts"),
            ("SLACK_API_URL", &api_url),
        ],
    );

    // One replica crashes: the incident opens.
    api.upsert_pod(pod("shop", WEB[0]).crash_loop(4, 1, "Error").build());
    assert!(
        crate::util::wait_until(T, || slack.top_level().len() == 1),
        "no Slack message: {}",
        d.logs()
    );
    // The other two follow: the same incident grows (an update, in the thread).
    for p in &WEB[1..] {
        api.upsert_pod(pod("shop", p).crash_loop(5, 1, "Error").build());
    }
    let parent = slack.top_level()[0].clone();
    assert!(
        crate::util::wait_until(T, || !slack.replies_to(&parent.ts).is_empty()),
        "no thread reply: {}",
        d.logs()
    );
    // All three recover: one resolution, in the thread, and the parent says so.
    for p in WEB {
        api.upsert_pod(pod("shop", p).running().build());
    }
    assert!(
        crate::util::wait_until(T, || slack
            .replies_to(&parent.ts)
            .iter()
            .any(|m| m.header().contains("Resolved") || m.text.contains("resolved"))),
        "no resolution: {}",
        d.logs()
    );
    // The positive signal before asserting that nothing else was posted.
    stage_marker(&api, "shop");
    let is_marker_msg = |m: &crate::util::fake_slack::Message| m.text.contains("marker");
    assert!(
        crate::util::wait_until(T, || slack.top_level().iter().any(is_marker_msg)),
        "no message for the marker: {}",
        d.logs()
    );
    let top: Vec<_> = slack
        .top_level()
        .into_iter()
        .filter(|m| !is_marker_msg(m))
        .collect();
    assert_eq!(top.len(), 1, "one top-level message only: {top:#?}");
    let replies = slack.replies_to(&parent.ts);
    let resolutions = replies
        .iter()
        .filter(|m| m.header().contains("Resolved") || m.text.contains("resolved"))
        .count();
    assert_eq!(resolutions, 1, "{replies:#?}");
    assert_eq!(
        slack.messages().len(),
        1 + replies.len() + 1,
        "every message is the parent, in its thread, or the marker's"
    );
    let now = slack.top_level()[0].clone();
    assert!(
        now.header().contains("Resolved") || now.text.contains("resolved"),
        "parent refreshed to the resolved state: {}",
        now.header()
    );
    assert!(now.text.contains("edge-1"), "cluster named: {}", now.text);
    d.terminate();
}

#[test]
fn a_flaky_webhook_gets_every_message_once_and_in_order() {
    let api = FakeApi::start();
    let hook = FakeReceiver::start();
    // 429 (Retry-After 1 s), then 500, then a hang past the client timeout,
    // then everything is fine.
    hook.script([
        Reply::retry_after(429, 1),
        Reply::status(500, "boom"),
        Reply::Hang(Duration::from_secs(15)),
    ]);
    let url = hook.url("/hook");
    let home = TempDir::new("deliver-flaky");
    let mut d = start(
        &api,
        &home,
        &[
            ("WEBHOOK_URL", &url),
            ("WEBHOOK_AUTH_HEADER", "Bearer hook-secret"),
            ("ALERT_MAX_ATTEMPTS", "6"),
            ("ALERT_BACKOFF_MS", "200"),
            ("ALERT_MAX_BACKOFF_MS", "1000"),
        ],
    );
    api.upsert_pod(pod("shop", WEB[0]).crash_loop(4, 1, "Error").build());
    // While the first is being retried, the incident changes (an update,
    // queued behind it) and then recovers.
    assert!(crate::util::wait_until(T, || !hook.received().is_empty()));
    api.upsert_pod(pod("shop", WEB[0]).oom_killed(5).build());
    d.wait("the update", T, |d| {
        d.records().iter().any(|r| r["state"] == "updated")
    });
    std::thread::sleep(Duration::from_millis(1500));
    api.upsert_pod(pod("shop", WEB[0]).running().build());

    let delivered = || -> Vec<Value> {
        hook.received()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.json())
            .collect()
    };
    assert!(
        crate::util::wait_until(Duration::from_secs(60), || delivered()
            .iter()
            .any(|b| b["notification"] == "resolved")),
        "no resolution delivered: {:?}\n{}",
        hook.received().iter().map(|r| r.status).collect::<Vec<_>>(),
        d.logs()
    );
    stage_marker(&api, "shop");
    assert!(
        crate::util::wait_until(T, || delivered().iter().any(is_marker)),
        "the marker was not delivered: {}",
        d.logs()
    );
    let kinds: Vec<String> = delivered()
        .iter()
        .filter(|b| !is_marker(b))
        .map(|b| b["notification"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["open", "updated", "resolved"],
        "{:?}\n{}",
        hook.received()
            .iter()
            .map(|r| (r.status, r.json()["notification"].clone()))
            .collect::<Vec<_>>(),
        d.logs()
    );
    assert!(
        hook.received()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer hook-secret"))
    );
    let logs = d.logs();
    assert!(
        !logs.contains("hook-secret"),
        "the auth header is never logged"
    );
    assert!(!logs.contains(&url), "the webhook URL is never logged");
    assert!(logs.contains("retrying in"), "{logs}");
    d.terminate();
}

#[test]
fn sigterm_drains_the_queue_and_names_what_it_could_not_send() {
    let api = FakeApi::start();
    let hook = FakeReceiver::start();
    // Every request hangs longer than the drain allows.
    hook.script((0..20).map(|_| Reply::Hang(Duration::from_secs(20))));
    let url = hook.url("/hook");
    let home = TempDir::new("deliver-drain");
    let mut d = start(
        &api,
        &home,
        &[
            ("WEBHOOK_URL", &url),
            ("SHUTDOWN_DRAIN_MS", "1500"),
            ("ALERT_WORKERS", "1"),
        ],
    );
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(pod("shop", "api-5f6d7c8b9-bbbbb").oom_killed(4).build());
    d.wait("both incidents handed over", T, |d| {
        d.logs().matches("notification:").count() >= 1 && hook.received().len() == 1
    });
    let (status, took, logs) = d.terminate();
    assert!(status.success(), "exit 0 on SIGTERM: {status:?}");
    assert!(
        took < Duration::from_secs(10),
        "the drain is bounded by SHUTDOWN_DRAIN_MS: {took:?}"
    );
    let lost = logs
        .matches("not delivered (shutdown drain ran out)")
        .count();
    assert_eq!(lost, 2, "{logs}");
}

#[test]
fn a_resolution_reaches_the_sinks_that_got_its_incident_below_the_severity_filter() {
    let api = FakeApi::start();
    let hook = FakeReceiver::start();
    let url = hook.url("/hook");
    let home = TempDir::new("deliver-filter");
    let mut d = start(
        &api,
        &home,
        &[
            ("WEBHOOK_URL", &url),
            ("ALERT_SEVERITY_FILTERS", "critical"),
        ],
    );
    let notifications = || -> Vec<String> {
        hook.received()
            .iter()
            .map(|r| r.json()["notification"].as_str().unwrap_or("").to_string())
            .collect()
    };
    // A crash loop (critical) is announced.
    api.upsert_pod(pod("shop", WEB[0]).crash_loop(4, 1, "Error").build());
    assert!(
        crate::util::wait_until(T, || notifications() == ["open"]),
        "{:?}\n{}",
        notifications(),
        d.logs()
    );
    // The same container now fails to start (ContainerStartError, high,
    // below the filter; the same problem, so the same incident): the update
    // is not sent, and the incident now has a high severity.
    api.modify_pod("shop", WEB[0], |v| {
        v["status"]["containerStatuses"][0]["state"] = serde_json::json!({"waiting": {
            "reason": "RunContainerError",
            "message": "failed to create containerd task: exec: \"/app\": permission denied"
        }});
    });
    d.wait("the update", T, |d| {
        d.records()
            .iter()
            .any(|r| r["state"] == "updated" && r["severity"] == "high")
    });
    api.upsert_pod(pod("shop", WEB[0]).running().build());
    d.wait("the resolution", T, |d| {
        d.records().iter().any(|r| r["state"] == "resolved")
    });
    assert!(
        crate::util::wait_until(T, || notifications().len() >= 2),
        "the resolution was not sent: {:?}\n{}",
        notifications(),
        d.logs()
    );
    assert_eq!(notifications(), ["open", "resolved"]);
    d.terminate();
}
