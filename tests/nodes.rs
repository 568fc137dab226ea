//! Nodes end to end on the fake API server: a node going NotReady with ten
//! workloads on it, disk-pressure evictions, and an OOM on a healthy node.

use std::time::Duration;

use serde_json::{Value, json};

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi};
use crate::util::fake_slack::FakeSlack;
use crate::util::{TempDir, pod, wait_until};

const T: Duration = Duration::from_secs(30);
const NODE: &str = "pi-3";

/// A node as kubelet reports it: `ready` is "True", "False" or "Unknown";
/// `disk_pressure` sets DiskPressure True. With an image list, as real nodes have.
pub fn node(name: &str, ready: &str, disk_pressure: bool) -> Value {
    let now = "2026-12-01T10:00:00Z";
    let cond = |t: &str, s: &str, reason: &str, message: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let images: Vec<Value> = (0..50)
        .map(|i| json!({"names": [format!("registry.example.com/app{i}@sha256:{i:064}")], "sizeBytes": 1000 * i}))
        .collect();
    json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "node-role.kubernetes.io/worker": "true",
            "topology.kubernetes.io/zone": "shelf-1"}},
        "spec": {},
        "status": {
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                if disk_pressure {
                    cond("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure")
                } else {
                    cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
                },
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                match ready {
                    "True" => cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                    s => cond("Ready", s, "NodeStatusUnknown", "Kubelet stopped posting node status."),
                },
            ],
            "allocatable": {"cpu": "4", "memory": "3791Mi", "pods": "110", "ephemeral-storage": "28Gi"},
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"},
            "images": images,
        }
    })
}

fn start(api: &FakeApi, home: &TempDir, slack: &FakeSlack) -> Daemon {
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let url = slack.webhook_url();
    let env = vec![
        ("OUTPUT", "json"),
        ("RESOLVE_AFTER_MS", "1000"),
        ("NOTIFY_BATCH_MS", "1500"),
        ("NOT_READY_GRACE_MS", "1000"),
        ("NODE_NOT_READY_GRACE_MS", "1000"),
        ("CLUSTER_NAME", "edge-1"),
        ("SLACK_WEBHOOK_URL", url.as_str()),
    ];
    let mut d = Daemon::start(home.path(), &kc, &env);
    d.wait_ready();
    d
}

fn workload(i: usize) -> String {
    format!("svc{i}-7d4b9c6f8-aaaaa")
}

#[test]
fn a_node_going_not_ready_with_ten_workloads_is_one_slack_message_and_one_resolution() {
    let api = FakeApi::start();
    api.upsert_node(node(NODE, "True", false));
    for i in 0..10 {
        api.upsert_pod(pod("shop", &workload(i)).node(NODE).running().build());
    }
    let slack = FakeSlack::start();
    let home = TempDir::new("nodes-down");
    let mut d = start(&api, &home, &slack);

    // Heartbeats that change nothing we keep are no work.
    for _ in 0..5 {
        api.upsert_node(node(NODE, "True", false));
    }
    api.upsert_node(node(NODE, "Unknown", false));
    for i in 0..10 {
        api.upsert_pod(pod("shop", &workload(i)).node(NODE).not_ready().build());
    }
    d.wait("the node's incident and its pods' records", T, |d| {
        let r = d.records();
        r.iter().any(|r| r["type"] == "NodeNotReady")
            && r.iter()
                .filter(|r| r["type"] == "NotReady")
                .filter_map(|r| r["id"].as_u64())
                .collect::<std::collections::BTreeSet<u64>>()
                .len()
                == 10
    });
    assert!(
        wait_until(T, || !slack.messages().is_empty()),
        "{}",
        d.logs()
    );
    // Past the batch window: nothing else comes.
    std::thread::sleep(Duration::from_secs(3));
    let msgs = slack.messages();
    assert_eq!(
        msgs.len(),
        1,
        "{:#?}",
        msgs.iter().map(|m| m.header()).collect::<Vec<_>>()
    );
    let body = msgs[0].blocks.to_string();
    assert!(
        msgs[0].header().contains("NodeNotReady"),
        "{}",
        msgs[0].header()
    );
    assert!(msgs[0].header().contains(NODE), "{}", msgs[0].header());
    assert!(body.contains("10 pods of 10 workloads affected"), "{body}");
    for i in 0..10 {
        assert!(
            body.contains(&format!("Deployment/svc{i}")),
            "svc{i} in {body}"
        );
    }
    let records = d.records();
    let node_rec = records
        .iter()
        .find(|r| r["type"] == "NodeNotReady")
        .unwrap();
    assert_eq!(node_rec["namespace"], Value::Null);
    assert_eq!(
        node_rec["workload"],
        json!({"kind": "Node", "name": NODE, "revision": null})
    );
    let id = node_rec["id"].clone();
    // Each pod incident's latest record names the node (a pod seen failing
    // before its node, on the other stream, is attributed by an update).
    let mut latest: std::collections::BTreeMap<u64, &Value> = Default::default();
    for r in records.iter().filter(|r| r["type"] == "NotReady") {
        latest.insert(r["id"].as_u64().unwrap(), r);
    }
    assert_eq!(latest.len(), 10);
    for r in latest.values() {
        assert_eq!(r["diagnosis"]["cause"], "node_not_ready", "{r}");
        assert_eq!(r["diagnosis"]["node_incident"], id, "{r}");
    }

    // Back: one resolution.
    api.upsert_node(node(NODE, "True", false));
    for i in 0..10 {
        api.upsert_pod(pod("shop", &workload(i)).node(NODE).running().build());
    }
    assert!(
        wait_until(T, || slack.messages().len() >= 2),
        "{}",
        d.logs()
    );
    std::thread::sleep(Duration::from_secs(3));
    let msgs = slack.messages();
    assert_eq!(
        msgs.len(),
        2,
        "{:#?}",
        msgs.iter().map(|m| m.header()).collect::<Vec<_>>()
    );
    assert!(
        msgs[1].header().contains("Resolved"),
        "{}",
        msgs[1].header()
    );
    assert!(msgs[1].header().contains(NODE), "{}", msgs[1].header());
    d.wait("every incident resolved", T, |d| {
        d.records()
            .iter()
            .filter(|r| r["state"] == "resolved")
            .count()
            == 11
    });
}

#[test]
fn disk_pressure_evictions_are_one_node_incident_listing_the_evicted_pods() {
    let api = FakeApi::start();
    api.upsert_node(node(NODE, "True", false));
    let slack = FakeSlack::start();
    let home = TempDir::new("nodes-disk");
    let mut d = start(&api, &home, &slack);
    api.upsert_node(node(NODE, "True", true));
    for name in [
        "api-7d4b9c6f8-aaaaa",
        "worker-6c5b8d7f9-bbbbb",
        "cache-5f4c7b8d6-ccccc",
    ] {
        api.upsert_pod(
            pod("shop", name)
                .node(NODE)
                .evicted("The node was low on resource: ephemeral-storage. ")
                .build(),
        );
    }
    d.wait("three evictions recorded", T, |d| {
        let ids: std::collections::BTreeSet<u64> = d
            .records()
            .iter()
            .filter(|r| r["type"] == "Evicted")
            .filter_map(|r| r["id"].as_u64())
            .collect();
        ids.len() == 3
    });
    assert!(
        wait_until(T, || !slack.messages().is_empty()),
        "{}",
        d.logs()
    );
    std::thread::sleep(Duration::from_secs(3));
    let msgs = slack.messages();
    assert_eq!(
        msgs.len(),
        1,
        "{:#?}",
        msgs.iter().map(|m| m.header()).collect::<Vec<_>>()
    );
    assert!(
        msgs[0].header().contains("NodePressure"),
        "{}",
        msgs[0].header()
    );
    let body = msgs[0].blocks.to_string();
    for w in ["Deployment/api", "Deployment/worker", "Deployment/cache"] {
        assert!(body.contains(w), "{w} in {body}");
    }
    assert!(body.contains("/var/lib/rancher/k3s"), "{body}");
    // Each eviction's latest record names the node's cause.
    let mut latest: std::collections::BTreeMap<u64, Value> = Default::default();
    for r in d.records() {
        if r["type"] == "Evicted" {
            latest.insert(r["id"].as_u64().unwrap(), r);
        }
    }
    for r in latest.values() {
        assert_eq!(r["diagnosis"]["cause"], "node_disk_pressure", "{r}");
    }
    // The node is removed from the cluster: its incident ends with it.
    assert!(api.delete_node(NODE).is_some());
    d.wait("the node incident resolved", T, |d| {
        d.records()
            .iter()
            .any(|r| r["type"] == "NodePressure" && r["state"] == "resolved")
    });
}

#[test]
fn an_oom_over_its_limit_on_a_healthy_node_is_its_own_incident() {
    let api = FakeApi::start();
    api.upsert_node(node(NODE, "True", false));
    let slack = FakeSlack::start();
    let home = TempDir::new("nodes-oom");
    let d = start(&api, &home, &slack);
    api.upsert_pod(
        pod("shop", "api-7d4b9c6f8-aaaaa")
            .node(NODE)
            .oom_killed(1)
            .build(),
    );
    assert!(
        wait_until(T, || !slack.messages().is_empty()),
        "{}",
        d.logs()
    );
    let msgs = slack.messages();
    assert!(
        msgs[0].header().contains("OOMKilled"),
        "{}",
        msgs[0].header()
    );
    assert!(
        msgs[0].header().contains("Deployment/api"),
        "{}",
        msgs[0].header()
    );
    let r = d.records();
    assert_eq!(r[0]["diagnosis"]["cause"], "oom_killed");
    assert_eq!(r[0]["diagnosis"].get("node_incident"), None);
}

#[test]
fn scan_reports_node_incidents_live_and_from_a_dump_with_nodes() {
    let api = FakeApi::start();
    api.upsert_node(node(NODE, "Unknown", false));
    api.upsert_node(node("pi-4", "True", false));
    for i in 0..3 {
        api.upsert_pod(pod("shop", &workload(i)).node(NODE).not_ready().build());
    }
    let home = TempDir::new("nodes-scan");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "--kubeconfig"])
        .arg(&kc)
        .env("NOT_READY_GRACE_MS", "1000")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |v: &Value| {
        let all = v.as_array().unwrap();
        let nodes: Vec<&Value> = all
            .iter()
            .filter(|i| i["workload"]["kind"] == "Node")
            .collect();
        assert_eq!(nodes.len(), 1, "{v}");
        assert_eq!(nodes[0]["workload"]["name"], NODE);
        assert_eq!(
            nodes[0]["affected_summary"],
            "3 pods of 3 workloads affected"
        );
        let pods: Vec<&Value> = all.iter().filter(|i| i["type"] == "NotReady").collect();
        assert_eq!(pods.len(), 3, "{v}");
        for p in pods {
            assert_eq!(p["diagnosis"]["node_incident"], nodes[0]["id"], "{p}");
        }
    };
    check(&live);

    // The same from `kubectl get nodes,pods,events -A -o json`.
    let items: Vec<Value> = [node(NODE, "Unknown", false), node("pi-4", "True", false)]
        .into_iter()
        .map(|mut n| {
            n["kind"] = json!("Node");
            n
        })
        .chain((0..3).map(|i| {
            let mut p = pod("shop", &workload(i)).node(NODE).not_ready().build();
            p["kind"] = json!("Pod");
            p
        }))
        .collect();
    let dump = home.path().join("dump.json");
    std::fs::write(
        &dump,
        json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string(),
    )
    .unwrap();
    let out = crate::util::daemon::command(home.path())
        .args(["scan", "-o", "json", "-f"])
        .arg(&dump)
        .env("NOT_READY_GRACE_MS", "1000")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&serde_json::from_slice(&out.stdout).unwrap());
    let text = crate::util::daemon::command(home.path())
        .args(["scan", "-f"])
        .arg(&dump)
        .env("NOT_READY_GRACE_MS", "1000")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("Node/{NODE}")), "{text}");
}

#[test]
fn a_system_oom_on_the_node_is_told_apart_from_an_oom_over_the_containers_limit() {
    let api = FakeApi::start();
    api.upsert_node(node(NODE, "True", false));
    api.upsert_node(node("pi-4", "True", false));
    // kubelet's event for a kill the kernel made for the whole node.
    api.add_event(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{NODE}.17a1b2c3d4e5f6a7"), "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": NODE, "uid": NODE},
        "type": "Warning", "reason": "SystemOOM",
        "message": "System OOM encountered, victim process: api, pid: 4242",
        "lastTimestamp": crate::util::fake_api::rfc3339_now(),
    }));
    let slack = FakeSlack::start();
    let home = TempDir::new("nodes-system-oom");
    let d = start(&api, &home, &slack);
    api.upsert_pod(
        pod("shop", "api-7d4b9c6f8-aaaaa")
            .node(NODE)
            .oom_killed(1)
            .build(),
    );
    api.upsert_pod(
        pod("shop", "web-6c5b8d7f9-bbbbb")
            .node("pi-4")
            .oom_killed(1)
            .build(),
    );
    let causes = || -> Vec<String> {
        d.logs()
            .lines()
            .filter(|l| l.contains("notification:"))
            .map(String::from)
            .collect()
    };
    assert!(wait_until(T, || causes().len() >= 2), "{}", d.logs());
    let lines = causes();
    let api_line = lines.iter().find(|l| l.contains("Deployment/api")).unwrap();
    let web_line = lines.iter().find(|l| l.contains("Deployment/web")).unwrap();
    assert!(api_line.contains("cause=system_oom"), "{api_line}");
    assert!(web_line.contains("cause=oom_killed"), "{web_line}");
}
