//! Fault injection, judged where users judge it: the notifications that
//! arrive. Whatever the API server or the receivers do, every real problem
//! is delivered, and delivered once.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi, Fault};
use crate::util::fake_receiver::{FakeReceiver, Reply};
use crate::util::fake_slack::{FakeSlack, Fault as SlackFault};
use crate::util::{TempDir, pod, stage_marker, wait_until};

const T: Duration = Duration::from_secs(60);

fn start(api: &FakeApi, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut env = vec![
        ("OUTPUT", "json"),
        ("NOTIFY_BATCH_MS", "0"),
        ("RESOLVE_AFTER_MS", "1000"),
        ("ALERT_RATE_LIMIT_WINDOW_MINUTES", "0"),
        ("CLUSTER_NAME", "edge-1"),
        ("RECONNECTION_INITIAL_BACKOFF_MS", "200"),
        ("RECONNECTION_MAX_BACKOFF_MS", "2000"),
    ];
    env.extend_from_slice(extra);
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    d
}

/// Stage the marker in `shop` and wait until it is delivered: the positive signal before
/// asserting that nothing else was. Returns what was delivered, the marker left out.
fn delivered_before_marker(
    api: &FakeApi,
    hook: &FakeReceiver,
    d: &Daemon,
) -> Vec<(String, String)> {
    stage_marker(api, "shop");
    assert!(
        wait_until(T, || delivered(hook).iter().any(|(w, _)| w == "marker")),
        "the marker was not delivered: {:?}\n{}",
        delivered(hook),
        d.logs()
    );
    delivered(hook)
        .into_iter()
        .filter(|(w, _)| w != "marker")
        .collect()
}

/// Delivered webhook bodies: (workload name, notification kind).
fn delivered(hook: &FakeReceiver) -> Vec<(String, String)> {
    hook.received()
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.json())
        .flat_map(|b: Value| {
            let one = |b: &Value| {
                (
                    b["workload"]["name"].as_str().unwrap_or("").to_string(),
                    b["notification"].as_str().unwrap_or("").to_string(),
                )
            };
            match b["incidents"].as_array() {
                Some(list) => list
                    .iter()
                    .map(|i| {
                        (
                            one(i).0,
                            b["notification"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect::<Vec<_>>(),
                None => vec![one(&b)],
            }
        })
        .collect()
}

fn count(got: &[(String, String)]) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for g in got {
        *m.entry(g.clone()).or_insert(0) += 1;
    }
    m
}

fn outage(compact: bool) {
    let api = FakeApi::start();
    for n in ["a", "b", "c"] {
        api.upsert_pod(pod("shop", &format!("svc-{n}")).running().build());
    }
    let hook = FakeReceiver::start();
    let url = hook.url("/hook");
    let home = TempDir::new("fault-outage");
    let mut d = start(&api, &home, &[("WEBHOOK_URL", &url)]);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 3.0);

    // The API server goes away for 30 s; meanwhile all three start failing.
    api.go_down();
    api.upsert_pod(pod("shop", "svc-a").crash_loop(4, 1, "Error").build());
    api.upsert_pod(pod("shop", "svc-b").oom_killed(3).build());
    api.upsert_pod(pod("shop", "svc-c").image_pull_backoff().build());
    if compact {
        api.compact();
    }
    std::thread::sleep(Duration::from_secs(30));
    api.come_up();

    assert!(
        wait_until(T, || delivered(&hook).len() >= 3),
        "all three delivered after the outage: {:?}\n{}",
        delivered(&hook),
        d.logs()
    );
    let got = count(&delivered_before_marker(&api, &hook, &d));
    for n in ["a", "b", "c"] {
        let key = (format!("svc-{n}"), "open".to_string());
        assert_eq!(got.get(&key), Some(&1), "svc-{n} once: {got:?}");
    }
    assert_eq!(got.values().sum::<usize>(), 3, "nothing else: {got:?}");
    if compact {
        assert!(d.metric("opsctrl_watch_relists_total").unwrap_or(0.0) >= 1.0);
    }
}

#[test]
fn failures_during_a_30s_outage_are_each_reported_once() {
    outage(false);
}

#[test]
fn failures_during_a_30s_outage_with_compaction_are_each_reported_once() {
    outage(true);
}

#[test]
fn watch_faults_while_pods_fail_and_recover_lose_nothing_and_repeat_nothing() {
    let api = FakeApi::start();
    let names = ["w1", "w2", "w3", "w4"];
    for n in names {
        api.upsert_pod(pod("shop", n).running().build());
    }
    let hook = FakeReceiver::start();
    let url = hook.url("/hook");
    let home = TempDir::new("fault-watch");
    let mut d = start(&api, &home, &[("WEBHOOK_URL", &url)]);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);

    let faults = [
        Fault::CloseWatchesMidChunk,
        Fault::GarbageLine,
        Fault::WatchErrorGone,
        Fault::WatchStatus(500, None),
    ];
    for (n, fault) in names.iter().zip(faults) {
        api.inject(fault);
        api.upsert_pod(pod("shop", n).crash_loop(4, 1, "Error").build());
        std::thread::sleep(Duration::from_millis(700));
    }
    api.inject(Fault::WatchStatus(429, Some(1)));
    api.inject(Fault::EndWatches);
    assert!(
        wait_until(T, || delivered(&hook).len() >= 4),
        "{:?}\n{}",
        delivered(&hook),
        d.logs()
    );
    for n in names {
        api.upsert_pod(pod("shop", n).running().build());
    }
    assert!(
        wait_until(T, || delivered(&hook)
            .iter()
            .filter(|(_, k)| k == "resolved")
            .count()
            >= 4),
        "{:?}",
        delivered(&hook)
    );
    let got = count(&delivered_before_marker(&api, &hook, &d));
    for n in names {
        assert_eq!(
            got.get(&(n.to_string(), "open".into())),
            Some(&1),
            "{got:?}"
        );
        assert_eq!(
            got.get(&(n.to_string(), "resolved".into())),
            Some(&1),
            "{got:?}"
        );
    }
    assert_eq!(got.values().sum::<usize>(), 8, "nothing else: {got:?}");
    assert!(
        d.metric("opsctrl_watch_malformed_lines_total")
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn slack_down_for_several_attempts_still_gets_the_message_once() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    slack.fail_next(SlackFault::RateLimited(1));
    for _ in 0..3 {
        slack.fail_next(SlackFault::Status {
            code: 503,
            retry_after: None,
            body: "service unavailable".into(),
        });
    }
    let url = slack.webhook_url();
    let home = TempDir::new("fault-slack");
    let mut d = start(
        &api,
        &home,
        &[
            ("SLACK_WEBHOOK_URL", &url),
            ("ALERT_MAX_ATTEMPTS", "6"),
            ("ALERT_BACKOFF_MS", "100"),
            ("ALERT_MAX_BACKOFF_MS", "1000"),
        ],
    );
    api.upsert_pod(pod("shop", "web-7d4b9c6f8-aaaaa").oom_killed(3).build());
    assert!(
        wait_until(T, || !slack.messages().is_empty()),
        "{}",
        d.logs()
    );
    // The positive signal before asserting that nothing was sent twice.
    stage_marker(&api, "shop");
    let marker_sent = || slack.messages().iter().any(|m| m.text.contains("marker"));
    assert!(wait_until(T, marker_sent), "{}", d.logs());
    assert_eq!(
        slack.messages().len(),
        2,
        "the message once, and the marker's"
    );
    assert_eq!(
        slack.requests(),
        6,
        "4 failed attempts, then the one that worked, then the marker's"
    );
    assert_eq!(
        d.metric("opsctrl_alerts_retried_total{sink=\"slack\"}"),
        Some(4.0)
    );
    // Counted once the answer is in, a moment after the fake recorded the message.
    d.wait_metric("opsctrl_alerts_sent_total{sink=\"slack\"}", T, |v| v >= 2.0);
    assert_eq!(
        d.metric("opsctrl_alerts_sent_total{sink=\"slack\"}"),
        Some(2.0)
    );
}

#[test]
fn sigterm_with_alerts_queued_delivers_them_before_exiting() {
    let api = FakeApi::start();
    let hook = FakeReceiver::start();
    hook.script([
        Reply::status(500, "warming up"),
        Reply::status(502, "proxy"),
    ]);
    let url = hook.url("/hook");
    let home = TempDir::new("fault-drain");
    let mut d = start(
        &api,
        &home,
        &[
            ("WEBHOOK_URL", &url),
            // A long batch holds the notification back until shutdown.
            ("NOTIFY_BATCH_MS", "60000"),
            ("ALERT_BACKOFF_MS", "200"),
            ("SHUTDOWN_DRAIN_MS", "8000"),
        ],
    );
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    d.wait("the incident", T, |d| !d.records().is_empty());
    assert!(hook.received().is_empty(), "still held by the batch");
    let (status, _, logs) = d.terminate();
    assert!(status.success());
    let got = delivered(&hook);
    assert_eq!(
        got,
        [("web".to_string(), "open".to_string())],
        "{:?}\n{logs}",
        hook.received().iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(!logs.contains("not delivered"), "{logs}");
}
