//! Leader election on a real `coordination.k8s.io/v1` Lease, under exactly the manifests'
//! leader-election Role (create, and get/update on the one Lease by name): electors racing
//! (the real server's 409s decide), a stale write refused, a release handed over at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use opsctrl_daemon::kube::client::Client;
use opsctrl_daemon::kube::config::{self, Env};
use opsctrl_daemon::leader::{Elector, Timing};
use opsctrl_daemon::metrics::Metrics;
use opsctrl_daemon::settings::Leader;

use super::install::{Install, Variant};
use crate::util::real_api::{self, Cluster};
use crate::util::{TempDir, wait_until};

const LEASE: &str = "opsctrl-daemon";

fn fast() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_millis(2500),
        renew_period: Duration::from_millis(500),
        retry_period: Duration::from_millis(250),
        request_timeout: Duration::from_secs(2),
    }
}

fn client(i: &Install, dir: &TempDir, n: usize) -> Client {
    let kc = dir.join(format!("kubeconfig-{n}"));
    std::fs::write(&kc, i.c.kubeconfig_yaml(&i.token(None))).expect("kubeconfig");
    let cfg = config::load(Some(&kc), None, &Env::from_process()).expect("load kubeconfig");
    Client::new(&cfg).expect("client")
}

fn elector(i: &Install, dir: &TempDir, n: usize, id: &str, m: &Arc<Metrics>) -> Elector {
    let lease = Leader {
        namespace: i.ns.clone(),
        name: LEASE.into(),
        identity: id.into(),
    };
    Elector::start(client(i, dir, n), &lease, fast(), m.clone()).expect("start elector")
}

fn lease_path(ns: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{LEASE}")
}

fn lease(c: &Cluster, ns: &str) -> Value {
    c.get(&lease_path(ns))
}

/// (verb, code) of the Lease writes made by `user`, from the audit log.
fn writes(c: &Cluster, user: &str) -> Vec<(String, u16)> {
    c.audit(user)
        .into_iter()
        .filter(|a| a.resource == "leases" && a.stage == "ResponseComplete")
        .map(|a| (a.verb, a.code))
        .collect()
}

#[test]
fn electors_race_for_a_real_lease_under_the_shipped_role() {
    let Some(c) = real_api::shared() else { return };
    let dir = TempDir::new("realk8s-lease");
    let i = Install::new(c, Variant::Cluster, &["ha"], |_| {});
    let ms: Vec<Arc<Metrics>> = (0..3).map(|_| Arc::new(Metrics::new(&[], 5))).collect();
    let ids = ["daemon-a", "daemon-b", "daemon-c"];
    let electors: Vec<Elector> = ids
        .iter()
        .zip(&ms)
        .enumerate()
        .map(|(n, (id, m))| elector(&i, &dir, n, id, m))
        .collect();
    let ls: Vec<_> = electors.iter().map(Elector::leadership).collect();
    let leaders = || ls.iter().filter(|l| l.is_leader()).count();
    assert!(wait_until(Duration::from_secs(15), || leaders() == 1));
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(leaders(), 1, "more than one leader, or none");
        std::thread::sleep(Duration::from_millis(10));
    }
    let winner = ids[ls.iter().position(|l| l.is_leader()).expect("a leader")];
    let l = lease(c, &i.ns);
    assert_eq!(l["spec"]["holderIdentity"], winner, "{l}");
    // Exactly one create won; the others got the real server's 409 AlreadyExists.
    let w = writes(c, &i.username());
    let creates: Vec<u16> = w
        .iter()
        .filter(|(v, _)| v == "create")
        .map(|(_, c)| *c)
        .collect();
    assert_eq!(creates.iter().filter(|c| **c == 201).count(), 1, "{w:?}");
    assert!(creates.iter().all(|c| *c == 201 || *c == 409), "{w:?}");
    assert!(
        w.iter().all(|(_, code)| *code != 403),
        "a Lease write was forbidden: {w:?}"
    );
    let acquired: u64 = ms
        .iter()
        .map(|m| m.counters.leader_acquired.load(Ordering::Relaxed))
        .sum();
    assert_eq!(acquired, 1);

    // Someone else writes the Lease: the leader's next renewal is a 409, and it steps down
    // without overwriting.
    let mut l = lease(c, &i.ns);
    l["spec"]["holderIdentity"] = json!("intruder");
    l["spec"]["leaseDurationSeconds"] = json!(30);
    let (s, v) = c.call("PUT", &lease_path(&i.ns), Some(("application/json", &l)));
    assert_eq!(s, 200, "{v}");
    let leader = &ls[ids.iter().position(|x| *x == winner).expect("winner")];
    assert!(
        wait_until(Duration::from_secs(5), || !leader.is_leader()),
        "the leader kept leading over someone else's Lease"
    );
    assert!(
        writes(c, &i.username())
            .iter()
            .any(|(v, code)| v == "update" && *code == 409),
        "{:?}",
        writes(c, &i.username())
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lease(c, &i.ns)["spec"]["holderIdentity"], "intruder");
    assert_eq!(leaders(), 0);

    // The intruder releases (as the daemon does on SIGTERM): one elector takes over at once.
    let mut l = lease(c, &i.ns);
    l["spec"]["holderIdentity"] = json!("");
    l["spec"]["leaseDurationSeconds"] = json!(1);
    let (s, v) = c.call("PUT", &lease_path(&i.ns), Some(("application/json", &l)));
    assert_eq!(s, 200, "{v}");
    assert!(wait_until(Duration::from_secs(6), || leaders() == 1));
    let holder = lease(c, &i.ns)["spec"]["holderIdentity"].clone();
    assert!(ids.iter().any(|id| holder == *id), "{holder}");
    drop(electors);
}
