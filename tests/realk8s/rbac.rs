//! `check` and `run` under exactly the RBAC the manifests grant, on the real server.

use std::time::Duration;

use serde_json::{Value, json};

use super::install::{Install, Variant, without};
use super::stage::{self, Stage, State, ctr};
use crate::util::TempDir;
use crate::util::daemon::{Daemon, command};
use crate::util::real_api;

const T: Duration = Duration::from_secs(60);

/// `opsctrl-daemon check` with the install's settings plus `extra`: (exit code, stdout).
fn check(i: &Install, home: &TempDir, extra: &[(&str, &str)]) -> (Option<i32>, String) {
    let kc = i.kubeconfig(home.path());
    let mut cmd = command(home.path());
    cmd.arg("check").arg("--kubeconfig").arg(&kc);
    for (k, v) in i.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_passes_with_the_shipped_cluster_role_and_names_a_removed_rule() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-check");
    let i = Install::new(c, Variant::Cluster, &[], |_| {});
    let (code, out) = check(&i, &home, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("identity: {}", i.username())),
        "{out}"
    );
    assert!(out.contains("all permissions granted"), "{out}");

    let cut = Install::new(
        c,
        Variant::Cluster,
        &[],
        without("ClusterRole", "pods", "watch"),
    );
    let (code, out) = check(&cut, &home, &[]);
    assert_eq!(code, Some(1), "{out}");
    // The fix's commands are ones the real server takes.
    for line in out.lines().filter_map(|l| l.trim().strip_prefix("fix: ")) {
        for cmd in line.split(" && ") {
            let mut args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
            assert_eq!(cmd.split_whitespace().next(), Some("kubectl"), "{cmd}");
            args.push("--dry-run=server");
            let o = c.kubectl(&args);
            assert!(
                o.status.success(),
                "{cmd}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    assert!(out.contains("no   watch pods in all namespaces"), "{out}");
    assert!(out.contains("yes  list pods in all namespaces"), "{out}");
    assert!(
        out.contains(&format!(
            "fix: kubectl create clusterrole opsctrl-daemon-read --verb=get,list,watch \
             --resource=pods,events,namespaces,nodes && kubectl create clusterrolebinding \
             opsctrl-daemon-read --clusterrole=opsctrl-daemon-read --serviceaccount={}:opsctrl-daemon",
            cut.ns
        )),
        "{out}"
    );
}

#[test]
fn check_passes_with_every_component_on_both_variants_and_only_with_them() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-check-components");
    // Logs are in the default install.
    let all = ["k8s-events", "ha"];
    for variant in [Variant::Cluster, Variant::Namespaced] {
        let i = Install::new(c, variant, &all, |_| {});
        for (k, v) in [
            ("INCLUDE_LOGS", "true"),
            ("EMIT_K8S_EVENTS", "true"),
            ("LEADER_ELECTION", "true"),
        ] {
            assert!(
                i.settings.contains(&(k.into(), v.into())),
                "{variant:?} {k}"
            );
        }
        let lease_ns = [("LEADER_ELECTION_NAMESPACE", i.ns.as_str())];
        let (code, out) = check(&i, &home, &lease_ns);
        assert_eq!(code, Some(0), "{variant:?}: {out}");
        if variant == Variant::Namespaced {
            for ns in &i.watched {
                assert!(
                    out.contains(&format!("yes  get pods/log in namespace {ns}")),
                    "{out}"
                );
                assert!(
                    out.contains(&format!("yes  create events in namespace {ns}")),
                    "{out}"
                );
            }
            assert!(!out.contains("all namespaces"), "{out}");
        }

        // The same settings without the components' rules: each is missing, named, and
        // pointed at its component.
        let plain = Install::new(c, variant, &["no-logs"], |_| {});
        let settings = [
            ("INCLUDE_LOGS", "true"),
            ("EMIT_K8S_EVENTS", "true"),
            ("LEADER_ELECTION", "true"),
            ("LEADER_ELECTION_NAMESPACE", plain.ns.as_str()),
        ];
        let (code, out) = check(&plain, &home, &settings);
        assert_eq!(code, Some(1), "{variant:?}: {out}");
        assert!(out.contains("no   get pods/log"), "{out}");
        assert!(out.contains("no   create events"), "{out}");
        assert!(out.contains("without components/no-logs"), "{out}");
        assert!(out.contains("manifests/components/k8s-events"), "{out}");
        // The leader-election Role is in core/, so the Lease rules are granted either way.
        assert!(
            out.contains(&format!(
                "yes  update leases.coordination.k8s.io in namespace {}",
                plain.ns
            )),
            "{out}"
        );
    }
}

/// A Deployment whose one pod crash-loops on `node`; returns (deployment, pod).
fn crash_looping(s: &Stage, node: &str, name: &str) -> (stage::Obj, stage::StagedPod) {
    let containers = [ctr("app", "registry.example.com/shop/web:1.4.2")];
    let (d, rs) = s.deployment(name, 1, &containers);
    let mut p = s.pod(Some(&rs), &format!("{}-x7k2p", rs.name), &containers);
    s.bind(&mut p, node);
    s.status(&p, stage::pod_status(&p, &s.ns, &[State::Running]));
    s.status(
        &p,
        stage::pod_status(
            &p,
            &s.ns,
            &[State::CrashLoop {
                restarts: 6,
                exit: 1,
                reason: "Error",
            }],
        ),
    );
    s.kubelet_event(
        &p,
        Some("app"),
        "Warning",
        "BackOff",
        &format!(
            "Back-off restarting failed container app in pod {}_{}({})",
            p.name, s.ns, p.uid
        ),
        14,
    );
    (d, p)
}

fn records_for(d: &Daemon, ns: &str) -> Vec<Value> {
    d.records()
        .into_iter()
        .filter(|r| r["namespace"] == ns)
        .collect()
}

fn start(i: &Install, home: &TempDir, extra: &[(&str, &str)]) -> Daemon {
    let kc = i.kubeconfig(home.path());
    let env: Vec<(String, String)> = i.env();
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(&[
        ("OUTPUT", "json"),
        ("NOTIFY_BATCH_MS", "0"),
        ("RESOLVE_AFTER_MS", "0"),
        ("POD_NAME", "opsctrl-daemon-5c9d7b8f4-q2wxz"),
        ("POD_NAMESPACE", i.ns.as_str()),
        ("RUST_LOG", "opsctrl_daemon=debug"),
    ]);
    all.extend_from_slice(extra);
    Daemon::start(home.path(), &kc, &all)
}

fn healthy(s: &Stage, p: &stage::StagedPod) {
    s.status(p, stage::pod_status(p, &s.ns, &[State::Running]));
}

#[test]
fn run_with_every_component_lists_watches_detects_enriches_emits_leads_and_resolves() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-run");
    let i = Install::new(c, Variant::Cluster, &["k8s-events", "ha"], |_| {});
    let s = Stage::new(c, "shop");
    let node = s.node();
    let hook = crate::util::fake_receiver::FakeReceiver::start();
    let slack = crate::util::fake_slack::FakeSlack::start();
    let (hook_url, slack_url) = (hook.url("/hook"), slack.webhook_url());
    let mut d = start(
        &i,
        &home,
        &[
            ("WEBHOOK_URL", &hook_url),
            ("SLACK_WEBHOOK_URL", &slack_url),
        ],
    );
    d.wait_ready();
    d.wait_metric("opsctrl_leader", T, |v| v == 1.0);

    // The real Lease, as client-go's leader election writes it.
    let lease = c.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases/opsctrl-daemon",
        i.ns
    ));
    assert_eq!(
        lease["spec"]["holderIdentity"], "opsctrl-daemon-5c9d7b8f4-q2wxz",
        "{lease}"
    );
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15, "{lease}");

    let (_, p) = crash_looping(&s, &node, "web");
    d.wait("the crash loop's open record", T, |d| {
        records_for(d, &s.ns)
            .iter()
            .any(|r| r["state"] == "open" && r["type"] == "CrashLoopBackOff")
    });
    let open = records_for(&d, &s.ns)
        .into_iter()
        .find(|r| r["state"] == "open")
        .expect("open");
    // The revision is the ReplicaSet the Deployment controller made.
    let rs = p.name.rsplit_once('-').map_or("", |(rs, _)| rs);
    assert_eq!(
        open["workload"],
        json!({"kind": "Deployment", "name": "web", "revision": rs}),
        "{open}"
    );
    assert_eq!(open["exit_code"], 1, "{open}");
    assert_eq!(open["node"], node.as_str(), "{open}");

    // The notification went out: enriched (events read, logs asked for) and written as an
    // Event on the pod.
    let ours = format!(
        "notification: open: critical CrashLoopBackOff {}/Deployment/web",
        s.ns
    );
    d.wait("the notification", T, |d| d.logs().contains(&ours));
    let ev_path = format!(
        "/api/v1/namespaces/{}/events?fieldSelector=involvedObject.uid={}",
        s.ns, p.uid
    );
    let mut ours = Vec::new();
    d.wait("the OpsctrlDiagnosis Event", T, |_| {
        ours = c.get(&ev_path)["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["reason"] == "OpsctrlDiagnosis")
            .collect();
        !ours.is_empty()
    });
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["involvedObject"]["name"], p.name.as_str());
    // One diagnosis everywhere: the last record names the cause the webhook
    // body and the Slack message name (enrichment's, once it has answered).
    let cause_of_hook = || {
        hook.received()
            .last()
            .map(|r| r.json()["diagnosis"]["cause"].clone())
    };
    d.wait("stdout, the webhook and Slack to agree", T, |d| {
        let last = records_for(d, &s.ns)
            .last()
            .map(|r| r["diagnosis"]["cause"].clone());
        let slack_cause = slack.messages().last().and_then(|m| m.root_cause());
        last.is_some()
            && last == cause_of_hook()
            && slack_cause.as_deref() == last.as_ref().and_then(|c| c.as_str())
    });
    assert_eq!(ours[0]["type"], "Warning", "{:?}", ours[0]);
    let logs = d.logs();
    // Not in the timestamp (`…:34.403Z`), which is the last field of a JSON line.
    let forbidden = logs
        .lines()
        .map(|l| l.split("\"ts\":").next().unwrap_or(l))
        .any(|l| l.contains("403") || l.contains("forbidden"));
    assert!(!forbidden, "a request was forbidden:\n{logs}");
    // The logs call passed RBAC (a 403 comes before the server proxies to the kubelet) and
    // failed only because no kubelet listens on the node.
    let l = logs
        .lines()
        .find(|l| l.contains(&format!("enrichment: logs of {}/{}", s.ns, p.name)))
        .unwrap_or_else(|| panic!("no logs call:\n{logs}"));
    assert!(
        l.contains("containerLogs")
            && l.contains("previous=true")
            && l.contains("connection refused"),
        "{l}"
    );
    assert!(!logs.contains("enrichment: events of"), "{logs}");

    // Healthy again: resolved.
    healthy(&s, &p);
    d.wait("the resolution", T, |d| {
        records_for(d, &s.ns)
            .iter()
            .any(|r| r["state"] == "resolved")
    });

    let (status, _, logs) = d.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("released the Lease"), "{logs}");
    let lease = c.get(&format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases/opsctrl-daemon",
        i.ns
    ));
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{lease}"
    );
}

#[test]
fn the_namespaced_overlay_works_with_its_roles_alone() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-namespaced");
    let i = Install::new(c, Variant::Namespaced, &["k8s-events"], |_| {});
    let s = Stage::in_namespace(c, &i.watched[1]);
    let node = s.node();
    let mut d = start(&i, &home, &[]);
    d.wait_ready();
    assert_eq!(d.metric("opsctrl_pods_tracked"), Some(0.0));
    let (_, p) = crash_looping(&s, &node, "checkout");
    d.wait("the open record", T, |d| {
        records_for(d, &s.ns).iter().any(|r| r["state"] == "open")
    });
    let ev_path = format!(
        "/api/v1/namespaces/{}/events?fieldSelector=involvedObject.uid={}",
        s.ns, p.uid
    );
    d.wait("the OpsctrlDiagnosis Event", T, |_| {
        c.get(&ev_path)["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["reason"] == "OpsctrlDiagnosis"))
    });
    let logs = d.logs();
    assert!(!logs.contains("403"), "{logs}");
    // A pod in a namespace without a Role is not seen (and not asked for).
    let other = Stage::new(c, "elsewhere");
    crash_looping(&other, &node, "api");
    std::thread::sleep(Duration::from_secs(2));
    assert!(records_for(&d, &other.ns).is_empty());
    let (status, _, logs) = d.terminate();
    assert!(status.success(), "{logs}");
}

/// The ServiceAccount's token, read from a file as a projected volume is: when the old
/// token stops being valid (its bound pod is deleted), the rotated file is read again.
#[test]
fn a_rotated_bound_token_file_is_picked_up() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-rotate");
    let i = Install::new(c, Variant::Cluster, &[], |_| {});
    // What the tokens are bound to: a Secret each (a projected token is bound to its pod;
    // deleting the object invalidates the token all the same).
    let bound = |name: &str| -> (String, String) {
        let v = c.post(
            &format!("/api/v1/namespaces/{}/secrets", i.ns),
            &serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}),
        );
        (
            name.to_string(),
            v["metadata"]["uid"].as_str().unwrap_or("").to_string(),
        )
    };
    let first = bound("token-anchor-first");
    let second = bound("token-anchor-second");
    let tf = home.join("token");
    std::fs::write(&tf, i.token(Some(("Secret", &first.0, &first.1)))).expect("token");
    let kc = home.join("kubeconfig");
    std::fs::write(&kc, c.kubeconfig_token_file(&tf)).expect("kubeconfig");
    let s = Stage::new(c, "rotate");
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("WATCH_NAMESPACES", s.ns.as_str()),
            ("OUTPUT", "json"),
            ("NOTIFY_BATCH_MS", "0"),
            ("RUST_LOG", "opsctrl_daemon=debug"),
        ],
    );
    d.wait_ready();

    // Rotate: a new token in the file, and the old one invalid (once the server's
    // authentication cache has let go of it).
    let old = std::fs::read_to_string(&tf).expect("token");
    std::fs::write(&tf, i.token(Some(("Secret", &second.0, &second.1)))).expect("token");
    assert_eq!(
        c.delete(&format!("/api/v1/namespaces/{}/secrets/{}", i.ns, first.0)),
        200
    );
    d.wait("the old token to be refused", T, |_| {
        c.call_as(&old, "GET", "/api/v1/namespaces/default/pods", None)
            .0
            == 401
    });
    // The next request the daemon makes (the enrichment of a new failure) succeeds.
    let node = s.node();
    crash_looping(&s, &node, "web");
    let ours = format!(
        "notification: open: critical CrashLoopBackOff {}/Deployment/web",
        s.ns
    );
    d.wait("the notification", T, |d| d.logs().contains(&ours));
    // The server refuses the old token by now, so the events were read with the new one:
    // picked up after a 401, or by the minutely re-read when this machine is slow.
    let logs = d.logs();
    assert!(!logs.contains("enrichment: events of"), "{logs}");
    assert!(records_for(&d, &s.ns).iter().any(|r| r["state"] == "open"));
    let (status, _, logs) = d.terminate();
    assert!(status.success(), "{logs}");
}
