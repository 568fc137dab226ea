//! Enrichment end to end: the real daemon reads a failing pod's events
//! (and, by default, its previous logs) on a delivery worker, and the
//! notification carries the better diagnosis.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi, SsarRule, rfc3339_now};
use crate::util::fake_slack::FakeSlack;
use crate::util::{TempDir, pod};

const T: Duration = Duration::from_secs(30);

fn start(api: &FakeApi, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut env = vec![
        ("OUTPUT", "json"),
        ("NOTIFY_BATCH_MS", "0"),
        ("CLUSTER_NAME", "edge-1"),
    ];
    env.extend_from_slice(extra);
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    d
}

fn event(ns: &str, pod: &str, uid: &str, kind: &str, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{pod}.{reason}.{}", &uid[..8]), "namespace": ns},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "uid": uid, "apiVersion": "v1"},
        "type": kind, "reason": reason, "message": message, "count": 5,
        "lastTimestamp": rfc3339_now(),
    })
}

/// The first `notification:` log line.
fn notification(d: &Daemon) -> Option<String> {
    d.logs()
        .lines()
        .find(|l| l.contains("notification:"))
        .map(String::from)
}

#[test]
fn events_turn_a_generic_crash_into_a_liveness_probe_diagnosis() {
    let api = FakeApi::start();
    let home = TempDir::new("enrich-events");
    let name = "web-7d4b9c6f8-aaaaa";
    let uid = "0b7c1d1e-0000-4000-8000-00000000abcd";
    let mut p = pod("shop", name)
        .uid(uid)
        .crash_loop(6, 137, "Error")
        .build();
    p["spec"]["containers"][0]["livenessProbe"] = json!({
        "httpGet": {"path": "/healthz", "port": 8080},
        "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3
    });
    api.add_event(event(
        "shop",
        name,
        uid,
        "Warning",
        "Unhealthy",
        "Liveness probe failed: Get \"http://10.1.2.3:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
    ));
    api.add_event(event(
        "shop",
        name,
        "some-other-uid",
        "Warning",
        "Unhealthy",
        "not ours",
    ));
    let mut d = start(&api, &home, &[("INCLUDE_LOGS", "false")]);
    api.upsert_pod(p);
    d.wait("a notification", T, |d| notification(d).is_some());
    let line = notification(&d).unwrap_or_default();
    assert!(line.contains("cause=liveness_probe_failed"), "{}", d.logs());

    // One events LIST for the pod, by uid; no logs with INCLUDE_LOGS=false.
    let reqs = api.requests();
    let events: Vec<_> = reqs
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/shop/events")
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        events[0].param("fieldSelector"),
        Some(format!("involvedObject.uid={uid}").as_str())
    );
    assert!(!reqs.iter().any(|r| r.path.ends_with("/log")));
    d.terminate();
}

#[test]
fn with_include_logs_the_previous_run_is_read_bounded_and_used() {
    let api = FakeApi::start();
    let home = TempDir::new("enrich-logs");
    let name = "api-5f6d7c8b9-bbbbb";
    api.set_pod_log(
        "shop",
        name,
        "app",
        true,
        "starting\npanic: dial tcp: lookup postgres.shop.svc on 10.96.0.10:53: no such host\n",
    );
    // INCLUDE_LOGS is on by default.
    let mut d = start(&api, &home, &[]);
    api.upsert_pod(pod("shop", name).crash_loop(4, 2, "Error").build());
    d.wait("a notification", T, |d| notification(d).is_some());
    let line = notification(&d).unwrap_or_default();
    assert!(line.contains("cause=dns_resolution_failed"), "{line}");
    let reqs = api.requests();
    let log = reqs
        .iter()
        .find(|r| r.path == format!("/api/v1/namespaces/shop/pods/{name}/log"))
        .expect("a log request");
    assert_eq!(log.param("previous"), Some("true"));
    assert_eq!(log.param("container"), Some("app"));
    assert_eq!(log.param("tailLines"), Some("50"));
    assert_eq!(log.param("limitBytes"), Some("16384"));
    d.terminate();
}

#[test]
fn diagnosis_disabled_makes_no_enrichment_calls() {
    let api = FakeApi::start();
    let home = TempDir::new("enrich-off");
    let mut d = start(
        &api,
        &home,
        &[("DIAGNOSIS_ENABLED", "false"), ("INCLUDE_LOGS", "true")],
    );
    api.upsert_pod(pod("shop", "db-6b7c8d9f0-ccccc").oom_killed(3).build());
    d.wait("a notification", T, |d| notification(d).is_some());
    let line = notification(&d).unwrap_or_default();
    // The rules still name the cause from the pod alone.
    assert!(line.contains("cause=oom_killed"), "{line}");
    let reqs = api.requests();
    assert!(
        !reqs
            .iter()
            .any(|r| r.path.ends_with("/events") || r.path.ends_with("/log")),
        "{reqs:?}"
    );
    d.terminate();
}

/// Slack's text of every message, blocks included, as one string.
fn slack_text(slack: &FakeSlack) -> String {
    slack
        .messages()
        .iter()
        .map(|m| format!("{} {}", m.text, m.blocks))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn by_default_the_log_tail_names_the_cause_in_the_notification_and_slack() {
    let api = FakeApi::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("enrich-log-cause");
    let name = "api-5f6d7c8b9-ddddd";
    api.set_pod_log(
        "shop",
        name,
        "app",
        true,
        "starting api 2.8.0\npanic: dial tcp postgres.shop.svc:5432: connect: connection refused\n\ngoroutine 1 [running]:\n",
    );
    let url = slack.webhook_url();
    let mut d = start(&api, &home, &[("SLACK_WEBHOOK_URL", url.as_str())]);
    api.upsert_pod(pod("shop", name).crash_loop(4, 2, "Error").build());
    d.wait("a Slack message", T, |_| !slack.messages().is_empty());
    let line = notification(&d).unwrap_or_default();
    assert!(line.contains("cause=connection_refused"), "{line}");
    let text = slack_text(&slack);
    assert!(
        text.contains("connection_refused") || text.contains("Connection refused"),
        "{text}"
    );
    // The matching log line is quoted, and the fix names the address.
    assert!(
        text.contains("log: panic: dial tcp postgres.shop.svc:5432: connect: connection refused"),
        "{text}"
    );
    assert!(
        text.contains("kubectl get endpointslices -n shop -l kubernetes.io/service-name=postgres"),
        "{text}"
    );
    // Read in five seconds: where in the header, no kubelet noise, how long.
    let m = &slack.messages()[0];
    assert_eq!(m.header(), "🔴 CrashLoopBackOff · shop/Deployment/api");
    assert!(
        !text.contains("pod=api-") && !text.contains("container=app"),
        "{text}"
    );
    assert!(text.contains("*Failing for*"), "{text}");
    d.terminate();
}

#[test]
fn without_pods_log_one_warning_and_the_diagnosis_of_the_pod_alone() {
    let api = FakeApi::start();
    let home = TempDir::new("enrich-log-403");
    // Everything but pods/log.
    api.set_rbac(vec![SsarRule::new("*", "*", "*")]);
    // Two workloads: two incidents, two log reads refused.
    let names = ["api-5f6d7c8b9-eeeee", "web-6c7d8e9f0-fffff"];
    for name in names {
        api.set_pod_log(
            "shop",
            name,
            "app",
            true,
            "panic: environment variable DATABASE_URL is not set\n",
        );
    }
    let mut d = start(&api, &home, &[]);
    for name in names {
        api.upsert_pod(pod("shop", name).crash_loop(4, 2, "Error").build());
    }
    d.wait("two notifications", T, |d| {
        d.logs()
            .lines()
            .filter(|l| l.contains("notification:"))
            .count()
            >= 2
    });
    let logs = d.logs();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("pods/log")).collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(
        warnings[0].contains("opsctrl-daemon check"),
        "{}",
        warnings[0]
    );
    // Today's diagnosis, from the pod alone; no note about the logs in it.
    for l in logs.lines().filter(|l| l.contains("notification:")) {
        assert!(l.contains("cause=app_error_exit"), "{l}");
    }
    let reqs = api.requests();
    assert!(
        reqs.iter().any(|r| r.path.ends_with("/log")),
        "logs were asked for"
    );
    d.terminate();
}

/// The cause a Slack message names (`*Root cause:* `cause` …`).
fn slack_cause(m: &crate::util::fake_slack::Message) -> Option<String> {
    let blocks = m.blocks.to_string();
    let at = blocks.find("Root cause:* `")? + "Root cause:* `".len();
    Some(blocks[at..].split('`').next()?.to_string())
}

#[test]
fn stdout_the_webhook_and_slack_name_the_same_cause_after_enrichment() {
    let api = FakeApi::start();
    let hook = crate::util::fake_receiver::FakeReceiver::start();
    let slack = crate::util::fake_slack::FakeSlack::start();
    let home = TempDir::new("enrich-agree");
    let name = "web-7d4b9c6f8-bbbbb";
    let uid = "0b7c1d1e-0000-4000-8000-00000000beef";
    let mut p = pod("shop", name)
        .uid(uid)
        .crash_loop(6, 137, "Error")
        .build();
    p["spec"]["containers"][0]["livenessProbe"] = json!({
        "httpGet": {"path": "/healthz", "port": 8080},
        "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3
    });
    api.add_event(event(
        "shop",
        name,
        uid,
        "Warning",
        "Unhealthy",
        "Liveness probe failed: Get \"http://10.1.2.3:8080/healthz\": context deadline exceeded",
    ));
    let (url, slack_url) = (hook.url("/hook"), slack.webhook_url());
    let mut d = start(
        &api,
        &home,
        &[("WEBHOOK_URL", &url), ("SLACK_WEBHOOK_URL", &slack_url)],
    );
    api.upsert_pod(p);
    // The record first says what the pod alone says; enrichment (events)
    // makes it a liveness probe, and stdout then says so too.
    d.wait("the enriched record", T, |d| {
        d.records()
            .iter()
            .any(|r| r["diagnosis"]["cause"] == "liveness_probe_failed")
    });
    let records = d.records();
    let open = records.iter().find(|r| r["state"] == "open").unwrap();
    assert_ne!(
        open["diagnosis"]["cause"], "liveness_probe_failed",
        "{open:#}"
    );
    let last = records.last().unwrap();
    assert_eq!(last["state"], "updated", "{records:#?}");
    assert!(crate::util::wait_until(T, || !hook.received().is_empty()
        && !slack.messages().is_empty()));
    let body = hook.received()[0].json();
    assert_eq!(
        body["diagnosis"]["cause"], last["diagnosis"]["cause"],
        "{body:#}"
    );
    assert_eq!(body["diagnosis"]["fix"], last["diagnosis"]["fix"]);
    let m = &slack.messages()[0];
    assert_eq!(
        slack_cause(m).as_deref(),
        last["diagnosis"]["cause"].as_str(),
        "{:#}",
        m.blocks
    );
    d.terminate();
}
