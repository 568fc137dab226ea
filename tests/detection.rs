//! Detection and incidents end to end: the real daemon, the fake API server,
//! the JSON record on stdout and the notifications in the log.

use std::time::Duration;

use serde_json::Value;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi};
use crate::util::{MARKER, TempDir, is_marker, pod, stage_marker};

const T: Duration = Duration::from_secs(30);

fn start(api: &FakeApi, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut env = vec![
        ("OUTPUT", "json"),
        ("RESOLVE_AFTER_MS", "1000"),
        ("NOTIFY_BATCH_MS", "0"),
        ("CLUSTER_NAME", "edge-1"),
    ];
    env.extend_from_slice(extra);
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    d
}

fn of<'a>(records: &'a [Value], state: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["state"] == state).collect()
}

/// Stage the marker in `ns`, wait for its incident, and return the records without it.
fn records_after_marker(api: &FakeApi, d: &mut Daemon, ns: &str) -> Vec<Value> {
    stage_marker(api, ns);
    d.wait("the marker's incident", T, |d| {
        d.records().iter().any(|r| r["pod"] == MARKER)
    });
    d.records().into_iter().filter(|r| !is_marker(r)).collect()
}

const WEB: [&str; 3] = [
    "web-7d4b9c6f8-aaaaa",
    "web-7d4b9c6f8-bbbbb",
    "web-7d4b9c6f8-ccccc",
];

#[test]
fn three_crashing_replicas_are_one_incident_that_resolves_once() {
    let api = FakeApi::start();
    for p in WEB {
        api.upsert_pod(pod("shop", p).running().build());
    }
    let home = TempDir::new("det-crash");
    let mut d = start(&api, &home, &[]);

    api.upsert_pod(pod("shop", WEB[0]).crash_loop(4, 1, "Error").build());
    d.wait("an open incident", T, |d| {
        !of(&d.records(), "open").is_empty()
    });
    for p in &WEB[1..] {
        api.upsert_pod(pod("shop", p).crash_loop(5, 1, "Error").build());
    }
    d.wait("the incident to list three pods", T, |d| {
        d.records()
            .last()
            .is_some_and(|r| r["pods"].as_array().is_some_and(|p| p.len() == 3))
    });
    // Restart counters climbing are not news.
    api.upsert_pod(pod("shop", WEB[0]).crash_loop(9, 1, "Error").build());
    std::thread::sleep(Duration::from_millis(500));

    for p in WEB {
        api.upsert_pod(pod("shop", p).running().build());
    }
    d.wait("a resolution", T, |d| {
        !of(&d.records(), "resolved").is_empty()
    });
    let records = records_after_marker(&api, &mut d, "shop");
    assert_eq!(of(&records, "open").len(), 1, "{records:#?}");
    assert_eq!(of(&records, "resolved").len(), 1, "{records:#?}");
    let open = of(&records, "open")[0];
    assert_eq!(open["type"], "CrashLoopBackOff");
    assert_eq!(open["severity"], "critical");
    assert_eq!(open["pattern"], "container-waiting-error");
    assert_eq!(open["cluster"], "edge-1");
    assert_eq!(
        open["workload"],
        serde_json::json!({"kind": "Deployment", "name": "web", "revision": "web-7d4b9c6f8"})
    );
    assert_eq!(open["exit_code"], 1);
    let updates = of(&records, "updated");
    assert!(
        updates
            .iter()
            .all(|u| u["pods"].as_array().map_or(0, Vec::len) > 1),
        "updates only for more pods, never for restart counts: {updates:#?}"
    );
    let d = &open["diagnosis"];
    assert!(d["cause"].is_string(), "{d:#}");
    let commands = d["fix"]["commands"].as_array().expect("fix commands");
    assert!(
        commands.iter().any(|c| c
            .as_str()
            .is_some_and(|c| c.contains("deployment/web") && c.contains("-n shop"))),
        "fix commands name the real workload and namespace: {d:#}"
    );
    for key in [
        "cluster",
        "namespace",
        "workload",
        "pods",
        "pod",
        "container",
        "init_container",
        "type",
        "pattern",
        "severity",
        "reason",
        "message",
        "exit_code",
        "signal",
        "restart_count",
        "node",
        "first_seen",
        "last_seen",
        "state",
        "diagnosis",
    ] {
        assert!(open.get(key).is_some(), "stable schema lacks {key}");
    }
}

#[test]
fn rollouts_completed_jobs_and_terminating_pods_say_nothing() {
    let api = FakeApi::start();
    for p in WEB {
        api.upsert_pod(pod("shop", p).running().build());
    }
    let home = TempDir::new("det-quiet");
    let mut d = start(&api, &home, &[]);
    // A rollout: old pods terminate (exit 143) and go, new ones come up.
    for p in WEB {
        api.upsert_pod(pod("shop", p).terminating().build());
    }
    for p in WEB {
        api.delete_pod("shop", p);
        api.upsert_pod(
            pod("shop", &p.replace("7d4b9c6f8", "5b7c9f6d8"))
                .running()
                .build(),
        );
    }
    api.upsert_pod(pod("batch", "report-29012345-q7x2k").succeeded().build());
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);
    let records = records_after_marker(&api, &mut d, "shop");
    assert!(records.is_empty(), "{records:#?}");
}

#[test]
fn failures_present_at_start_up_are_one_summary_not_a_flood() {
    let api = FakeApi::start();
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(6, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("shop", "cart-6c8d9f7b5-aaaaa")
            .image_pull_backoff()
            .build(),
    );
    api.upsert_pod(pod("shop", "ok-6c8d9f7b5-aaaaa").running().build());
    let home = TempDir::new("det-startup");
    let mut d = start(&api, &home, &[]);
    d.wait("the start-up summary", T, |d| {
        d.logs().contains("already failing at start-up")
    });
    stage_marker(&api, "shop");
    d.wait("the marker's notification", T, |d| {
        d.logs()
            .lines()
            .any(|l| l.contains("notification:") && l.contains("/Deployment/marker"))
    });
    let logs = d.logs();
    assert_eq!(
        logs.matches("notification:").count(),
        2,
        "the summary and the marker's: {logs}"
    );
    assert!(
        logs.contains("already failing at start-up: 2 incidents"),
        "{logs}"
    );
    // The record still carries each incident.
    let records: Vec<Value> = d.records().into_iter().filter(|r| !is_marker(r)).collect();
    let types: Vec<String> = of(&records, "open")
        .iter()
        .map(|r| r["type"].to_string())
        .collect();
    assert_eq!(types.len(), 2, "{types:?}");
}

#[test]
fn twelve_workloads_failing_at_once_are_one_grouped_notification() {
    let api = FakeApi::start();
    let home = TempDir::new("det-storm");
    let mut d = start(&api, &home, &[("NOTIFY_BATCH_MS", "1500")]);
    for i in 0..12 {
        api.upsert_pod(
            pod("shop", &format!("svc{i}-7d4b9c6f8-aaaaa"))
                .node("worker-3")
                .crash_loop(3, 1, "Error")
                .build(),
        );
    }
    d.wait("a storm notification", T, |d| {
        d.logs().contains("notification: storm: 12 new incidents")
    });
    let logs = d.logs();
    assert!(logs.contains("sharing node worker-3"), "{logs}");
    assert_eq!(logs.matches("notification:").count(), 1, "{logs}");
    assert_eq!(of(&d.records(), "open").len(), 12);
}

#[test]
fn a_stuck_pending_pod_is_reported_by_the_timer_without_any_event() {
    let api = FakeApi::start();
    api.upsert_pod(
        pod("shop", "big-7d4b9c6f8-aaaaa")
            .age(Duration::from_secs(26))
            .pending_unschedulable("0/3 nodes are available: 3 Insufficient cpu.")
            .build(),
    );
    let home = TempDir::new("det-pending");
    let mut d = start(&api, &home, &[("MAX_PENDING_DURATION_MS", "30000")]);
    assert!(d.records().is_empty(), "not yet: within the threshold");
    d.wait("Unschedulable from the tick", T, |d| {
        of(&d.records(), "open")
            .iter()
            .any(|r| r["type"] == "Unschedulable")
    });
    let records = d.records();
    let r = of(&records, "open")[0];
    assert_eq!(r["message"], "0/3 nodes are available: 3 Insufficient cpu.");
    assert_eq!(r["severity"], "high");
}

#[test]
fn scan_reads_a_kubectl_dump_and_exits_1_when_something_fails() {
    let home = TempDir::new("scan");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan-sample.json"
    );
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "-f", sample])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut types: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert!(!types.is_empty());
    let text = crate::util::daemon::command(home.path())
        .args(["scan", "-f", sample])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).starts_with("NAMESPACE"));

    let healthy = home.path().join("healthy.json");
    std::fs::write(&healthy, serde_json::json!({"kind": "List", "apiVersion": "v1", "items": [pod("a", "x-7d4b9c6f8-aaaaa").running().build()]}).to_string()).unwrap();
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-f"])
        .arg(&healthy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let bad = home.path().join("bad.json");
    std::fs::write(&bad, "{\"kind\": \"Deployment\"}").unwrap();
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.json"));
}

#[test]
fn pods_in_a_namespace_annotated_ignore_report_nothing() {
    let api = FakeApi::start();
    api.set_namespace_annotation("lab", "opsctrl.dev/ignore", Some("true"));
    api.upsert_pod(
        pod("lab", "toy-7d4b9c6f8-aaaaa")
            .crash_loop(7, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(7, 1, "Error")
            .build(),
    );
    let home = TempDir::new("det-ignore-ns");
    let mut d = start(&api, &home, &[]);
    d.wait("the shop incident", T, |d| {
        !of(&d.records(), "open").is_empty()
    });
    let records = records_after_marker(&api, &mut d, "shop");
    assert!(
        records.iter().all(|r| r["namespace"] == "shop"),
        "{records:#?}"
    );

    // Lifting the annotation brings the lab pod back into view on its next crash.
    api.set_namespace_annotation("lab", "opsctrl.dev/ignore", None);
    api.upsert_pod(
        pod("lab", "toy-7d4b9c6f8-bbbbb")
            .crash_loop(1, 2, "Error")
            .build(),
    );
    d.wait("a lab incident", T, |d| {
        d.records().iter().any(|r| r["namespace"] == "lab")
    });
}

#[test]
fn without_rights_on_namespaces_detection_still_starts() {
    use crate::util::fake_api::SsarRule;
    let api = FakeApi::start();
    api.set_rbac(vec![
        SsarRule::new("list", "", "pods"),
        SsarRule::new("watch", "", "pods"),
        SsarRule::new("list", "", "events"),
    ]);
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(7, 1, "Error")
            .build(),
    );
    let home = TempDir::new("det-no-ns");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[("OUTPUT", "json"), ("NOTIFY_BATCH_MS", "0")],
    );
    // /readyz tells the truth: the namespace stream is forbidden.
    d.wait("/readyz naming the namespace stream", T, |d| {
        d.get("/readyz")
            .is_some_and(|(s, b)| s == 503 && b.contains("namespaces") && b.contains("403"))
    });
    d.wait("the incident anyway", T, |d| {
        !of(&d.records(), "open").is_empty()
    });
    assert!(
        d.logs()
            .contains("detecting without the namespace opsctrl.dev/ignore annotation")
    );
}

#[test]
fn not_ready_err_image_pull_and_config_errors_are_reported_with_their_cause() {
    const PULL_GRACE: Duration = Duration::from_millis(1500);
    let api = FakeApi::start();
    let names = [
        "api-6c9f7b5d4-aaaaa",
        "cart-5f8d6c7b9-bbbbb",
        "pay-7b6c5d4f8-ccccc",
    ];
    let uids = ["uid-api", "uid-cart", "uid-pay"];
    for (n, u) in names.iter().zip(uids) {
        api.upsert_pod(pod("shop", n).uid(u).running().build());
    }
    let home = TempDir::new("det-kinds");
    let mut d = start(
        &api,
        &home,
        &[
            ("NOT_READY_GRACE_MS", "1000"),
            ("IMAGE_PULL_GRACE_MS", "1500"),
        ],
    );

    // The same pods (same uids) turn bad while the daemon watches.
    let flipped = std::time::Instant::now();
    // Not Ready because its readiness probe fails (the builder's spec has no probes).
    let mut not_ready = pod("shop", names[0]).uid(uids[0]).not_ready().build();
    not_ready["spec"]["containers"][0]["readinessProbe"] = serde_json::json!({
        "httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
        "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3, "successThreshold": 1,
    });
    api.upsert_pod(not_ready);
    api.upsert_pod(pod("shop", names[1]).uid(uids[1]).err_image_pull().build());
    api.upsert_pod(
        pod("shop", names[2])
            .uid(uids[2])
            .create_container_config_error("secret \"pay-db\" not found")
            .build(),
    );
    let open_for = |d: &Daemon, name: &str| {
        of(&d.records(), "open")
            .into_iter()
            .find(|r| r["pod"] == name)
            .cloned()
    };
    d.wait("three open incidents", T, |d| {
        names.iter().all(|n| open_for(d, n).is_some())
    });
    let pulled = open_for(&d, names[1]).expect("the ErrImagePull incident");
    assert!(
        flipped.elapsed() >= PULL_GRACE,
        "ErrImagePull is tolerated for IMAGE_PULL_GRACE_MS"
    );

    let not_ready = open_for(&d, names[0]).expect("the NotReady incident");
    assert_eq!(not_ready["type"], "NotReady", "{not_ready:#}");
    assert_eq!(not_ready["severity"], "medium", "{not_ready:#}");
    assert_eq!(not_ready["pattern"], "container-terminated-error");
    assert_eq!(not_ready["workload"]["name"], "api", "{not_ready:#}");
    assert_eq!(
        not_ready["diagnosis"]["cause"], "readiness_probe_failed",
        "{not_ready:#}"
    );

    assert_eq!(pulled["type"], "ImagePullBackOff", "{pulled:#}");
    assert_eq!(pulled["reason"], "ErrImagePull", "{pulled:#}");
    assert_eq!(pulled["pattern"], "image-pull-failure");
    assert_eq!(
        pulled["diagnosis"]["cause"], "image_not_found",
        "{pulled:#}"
    );

    let config = open_for(&d, names[2]).expect("the CreateContainerConfigError incident");
    assert_eq!(config["type"], "CreateContainerConfigError", "{config:#}");
    assert_eq!(config["severity"], "high");
    assert_eq!(config["pattern"], "configuration-error");
    assert_eq!(
        config["message"], "secret \"pay-db\" not found",
        "{config:#}"
    );
    assert_eq!(config["diagnosis"]["cause"], "missing_secret", "{config:#}");
}

#[test]
fn scan_shows_every_distinct_failure_of_a_workload_with_its_own_diagnosis() {
    // Deployment/web of the sample: the old ReplicaSet is OOM-killed while
    // the new one cannot pull its image, and one of its pods names an
    // invalid image. Three problems, three fixes; none folded into another.
    let home = TempDir::new("scan-distinct");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/scan-sample.json"
    );
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "-f", sample])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Times come from the dump's own evidence, not from when scan ran.
    for i in v.as_array().unwrap() {
        assert!(
            i["first_seen"].as_str().unwrap().starts_with("2024-"),
            "{}",
            i["first_seen"]
        );
        assert!(i["detected_at"].as_str().unwrap() >= i["first_seen"].as_str().unwrap());
    }
    let web: Vec<(&str, &str, &str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["workload"]["name"] == "web")
        .map(|i| {
            (
                i["type"].as_str().unwrap(),
                i["pod"].as_str().unwrap(),
                i["diagnosis"]["cause"].as_str().unwrap(),
                i["state"].as_str().unwrap(),
            )
        })
        .collect();
    // The new revision's failures first: they are what to fix (or undo);
    // the old revision's OOM comes after them.
    assert_eq!(
        web,
        [
            (
                "ImagePullBackOff",
                "web-8d5f7c6b9-b2n8v",
                "image_not_found",
                "open"
            ),
            (
                "InvalidImageName",
                "web-8d5f7c6b9-d3k7w",
                "invalid_image_name",
                "open"
            ),
            ("OOMKilled", "web-7c9d8f6b5-x4k2p", "oom_killed", "open"),
        ]
    );
    let commands = |i: &Value| -> Vec<String> {
        i["diagnosis"]["fix"]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    };
    for i in v.as_array().unwrap() {
        let rev = i["workload"]["revision"].as_str().unwrap_or("");
        let cmds = commands(i);
        if i["workload"]["name"] == "web" && rev == "web-8d5f7c6b9" {
            // A rollout gone wrong: undo is among the commands.
            assert!(
                cmds.iter()
                    .any(|c| c == "kubectl rollout undo deployment/web -n shop"),
                "{cmds:#?}"
            );
        }
        if i["workload"]["name"] == "web" && rev == "web-7c9d8f6b5" {
            // Raising the old revision's memory would roll out the broken
            // image once more: no template change, and the reason said.
            assert!(
                cmds.iter().all(|c| !c.starts_with("kubectl set ")),
                "{cmds:#?}"
            );
            let fix = i["diagnosis"]["fix"]["text"].as_str().unwrap();
            assert!(fix.contains("rolling out web-8d5f7c6b9"), "{fix}");
        }
        for c in &cmds {
            // Runnable where the reader is: kubectl only (no docker on k3s).
            assert!(c.starts_with("kubectl "), "{c}");
            // A container that never restarted has no previous run.
            if i["restart_count"] == 0 {
                assert!(!c.contains("--previous"), "{c} for {i:#}");
            }
        }
    }
    let text = crate::util::daemon::command(home.path())
        .args(["scan", "-f", sample])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    for l in text.lines().take_while(|l| !l.is_empty()) {
        assert!(
            l.chars().count() <= 120,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    assert!(
        text.starts_with("NAMESPACE ") && text.contains(" RESTARTS ") && text.contains(" AGE ")
    );
    for t in ["OOMKilled", "ImagePullBackOff", "InvalidImageName"] {
        assert!(
            text.lines()
                .any(|l| l.contains("Deployment/web") && l.contains(t)),
            "{t} missing:\n{text}"
        );
    }
}

#[test]
fn scan_honours_the_namespace_ignore_annotation_live_and_in_a_dump() {
    let api = FakeApi::start();
    api.upsert_pod(
        pod("shop", "api-5f6d8b9c4-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.upsert_pod(
        pod("lab", "toy-5f6d8b9c4-bbbbb")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    api.set_namespace_annotation("lab", "opsctrl.dev/ignore", Some("true"));
    let home = TempDir::new("scan-ignore");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        namespaces,
        ["shop"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same from `kubectl get namespaces,pods -A -o json`.
    let dump = serde_json::json!({"kind": "List", "apiVersion": "v1", "items": [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": "lab", "annotations": {"opsctrl.dev/ignore": "true"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        pod("shop", "api-5f6d8b9c4-aaaaa").crash_loop(4, 1, "Error").build(),
        pod("lab", "toy-5f6d8b9c4-bbbbb").crash_loop(4, 1, "Error").build(),
    ]});
    let file = home.path().join("dump.json");
    std::fs::write(&file, dump.to_string()).unwrap();
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v:#}");
    assert_eq!(v[0]["namespace"], "shop");
}
