//! Nodes on the real server, under exactly the RBAC the manifests grant: Node objects
//! created and their status PATCHed as kubelet (and the node controller, for the pods)
//! would, and the daemon's node incident, attribution and resolution.

use std::time::Duration;

use serde_json::{Value, json};

use super::install::{Install, Variant};
use super::stage::{self, Stage, State, ago, ctr};
use crate::util::TempDir;
use crate::util::daemon::{Daemon, command};
use crate::util::real_api::{self, Cluster};

const T: Duration = Duration::from_secs(60);

/// kubelet's node-status PATCH: `Ready` (and the other conditions) as of now.
fn node_status(c: &Cluster, node: &str, ready: &str, since_secs: u64) {
    let (reason, message) = match ready {
        "True" => ("KubeletReady", "kubelet is posting ready status"),
        _ => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
    };
    c.patch(
        &format!("/api/v1/nodes/{node}/status"),
        &json!({"status": {"conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "message": message,
             "lastHeartbeatTime": ago(0), "lastTransitionTime": ago(since_secs)}
        ]}}),
    );
}

/// A running pod's status with its Ready condition `ready` (the node controller sets it
/// False on the pods of an unreachable node).
fn pod_ready(s: &Stage, p: &stage::StagedPod, ready: bool) {
    let mut st = stage::pod_status(p, &s.ns, &[State::Running]);
    if let Some(conds) = st["conditions"].as_array_mut() {
        for c in conds.iter_mut().filter(|c| c["type"] == "Ready") {
            c["status"] = json!(if ready { "True" } else { "False" });
            c["lastTransitionTime"] = json!(ago(if ready { 0 } else { 30 }));
        }
    }
    s.status(p, st);
}

fn start(i: &Install, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = i.kubeconfig(home.path());
    let env: Vec<(String, String)> = i.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(&[
        ("OUTPUT", "json"),
        ("NOTIFY_BATCH_MS", "500"),
        ("RESOLVE_AFTER_MS", "1000"),
        ("NOT_READY_GRACE_MS", "1000"),
        ("NODE_NOT_READY_GRACE_MS", "1000"),
    ]);
    all.extend_from_slice(extra);
    let mut d = Daemon::start(home.path(), &kc, &all);
    d.wait_ready();
    d
}

fn of_node<'a>(records: &'a [Value], node: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["workload"]["kind"] == "Node" && r["workload"]["name"] == node)
        .collect()
}

#[test]
fn a_node_patched_not_ready_is_one_incident_listing_its_workloads_and_resolves_when_back() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-nodes");
    let i = Install::new(c, Variant::Cluster, &[], |_| {});
    let s = Stage::new(c, "nodes");
    let node = s.node();
    let containers = [ctr("app", "registry.example.com/shop/web:1.4.2")];
    let mut pods = Vec::new();
    for name in ["web", "api", "worker"] {
        let (_, rs) = s.deployment(name, 1, &containers);
        let mut p = s.pod(Some(&rs), &format!("{}-q2w8x", rs.name), &containers);
        s.bind(&mut p, &node);
        pod_ready(&s, &p, true);
        pods.push(p);
    }
    let mut d = start(&i, &home, &[]);

    node_status(c, &node, "Unknown", 5);
    for p in &pods {
        pod_ready(&s, p, false);
    }
    d.wait("the node's incident", T, |d| {
        of_node(&d.records(), &node).iter().any(|r| {
            r["type"] == "NodeNotReady" && r["affected"].as_array().is_some_and(|a| a.len() == 3)
        })
    });
    d.wait("the pods' latest records attributed to it", T, |d| {
        let mut latest: std::collections::BTreeMap<u64, Value> = Default::default();
        for r in d.records() {
            if r["namespace"] == s.ns.as_str() && r["type"] == "NotReady" {
                latest.insert(r["id"].as_u64().unwrap_or(0), r);
            }
        }
        latest.len() == 3
            && latest
                .values()
                .all(|r| r["diagnosis"]["cause"] == "node_not_ready")
    });
    let logs = d.logs();
    let sent: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("notification:") && l.contains(s.ns.as_str()))
        .collect();
    assert!(
        sent.is_empty(),
        "the pods are not notified on their own: {sent:?}"
    );
    assert!(
        logs.lines()
            .any(|l| l.contains("notification:") && l.contains(&format!("Node/{node}"))),
        "{logs}"
    );

    node_status(c, &node, "True", 0);
    for p in &pods {
        pod_ready(&s, p, true);
    }
    d.wait("the node's incident resolved", T, |d| {
        of_node(&d.records(), &node)
            .iter()
            .any(|r| r["state"] == "resolved")
    });
    d.wait("its pods' incidents resolved with it", T, |d| {
        d.records()
            .iter()
            .filter(|r| r["namespace"] == s.ns.as_str() && r["state"] == "resolved")
            .count()
            == 3
    });
}

#[test]
fn check_grants_nodes_cluster_wide_and_explains_the_namespaced_install_has_none() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-nodes-check");
    for (variant, want) in [
        (Variant::Cluster, "yes  watch nodes in all namespaces"),
        (Variant::Namespaced, "note: node detection is off"),
    ] {
        let i = Install::new(c, variant, &[], |_| {});
        let kc = i.kubeconfig(home.path());
        let mut cmd = command(home.path());
        cmd.arg("check").arg("--kubeconfig").arg(&kc);
        for (k, v) in i.env() {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run check");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{variant:?}: {text}");
        assert!(text.contains(want), "{variant:?}: {text}");
    }
    // The namespaced install runs, says once that node detection is off, and never asks.
    let i = Install::new(c, Variant::Namespaced, &[], |_| {});
    let ns = i.watched.join(",");
    let d = start(&i, &home, &[("WATCH_NAMESPACES", ns.as_str())]);
    let logs = d.logs();
    assert_eq!(logs.matches("node detection off").count(), 1, "{logs}");
    assert!(!logs.contains("stream=nodes"), "{logs}");
}
