/*!
LIST+WATCH against the real server, counted from its audit log (list and watch of pods and
namespaces, by the daemon's user agent):

- watches the server ends (a short `WATCH_TIMEOUT_SECONDS`) resume from a `resourceVersion`
  with exactly one LIST per stream;
- on a dedicated cluster with `--watch-cache=false` and a one-second etcd compaction: a
  partition (a TCP proxy that cuts the daemon off) during which pods change and history is
  compacted ends in a real `410 Gone`, one relist, and each change reported once; then a
  kube-apiserver restart, with `/readyz` 503 during the outage and 200 after.
*/

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::install::{Install, Variant};
use super::stage::{self, Stage, StagedPod, State, ctr};
use crate::util::daemon::Daemon;
use crate::util::real_api::{self, Audit, Cluster, Options};
use crate::util::{TempDir, wait_until};

const T: Duration = Duration::from_secs(60);
const UA: &str = "opsctrl-daemon/";

/// The daemon's requests in the audit log, one entry per request (its last stage).
fn requests(c: &Cluster, user: &str) -> Vec<Audit> {
    let mut by_id: BTreeMap<String, (usize, Audit)> = BTreeMap::new();
    for (i, a) in c
        .audit(user)
        .into_iter()
        .filter(|a| a.user_agent.starts_with(UA))
        .enumerate()
    {
        let first = by_id.get(&a.id).map_or(i, |(n, _)| *n);
        by_id.insert(a.id.clone(), (first, a));
    }
    let mut v: Vec<(usize, Audit)> = by_id.into_values().collect();
    v.sort_by_key(|(n, _)| *n);
    v.into_iter().map(|(_, a)| a).collect()
}

fn of<'a>(reqs: &'a [Audit], verb: &str, path: &str) -> Vec<&'a Audit> {
    reqs.iter()
        .filter(|a| a.verb == verb && a.uri.split('?').next() == Some(path))
        .collect()
}

/// A Deployment with `n` running pods: (its ReplicaSet, the pods).
fn running_pods(s: &Stage, node: &str, name: &str, n: usize) -> (stage::Obj, Vec<StagedPod>) {
    let containers = [ctr("app", "registry.example.com/shop/web:1.4.2")];
    let (_, rs) = s.deployment(name, n as u32, &containers);
    let pods = (0..n)
        .map(|i| running_pod(s, node, &rs, &format!("p{i}x{i}q")))
        .collect();
    (rs, pods)
}

fn running_pod(s: &Stage, node: &str, rs: &stage::Obj, suffix: &str) -> StagedPod {
    let containers = [ctr("app", "registry.example.com/shop/web:1.4.2")];
    let mut p = s.pod(Some(rs), &format!("{}-{suffix}", rs.name), &containers);
    s.bind(&mut p, node);
    s.status(&p, stage::pod_status(&p, &s.ns, &[State::Running]));
    p
}

#[test]
fn watches_the_server_ends_resume_from_their_resource_version_with_one_list_per_stream() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-watch");
    let i = Install::new(c, Variant::Namespaced, &[], |_| {});
    let shop = Stage::in_namespace(c, &i.watched[0]);
    let node = shop.node();
    running_pods(&shop, &node, "web", 2);
    let kc = i.kubeconfig(home.path());
    let ns_list = i.watched.join(",");
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("WATCH_NAMESPACES", ns_list.as_str()),
            ("WATCH_TIMEOUT_SECONDS", "5"),
            ("RUST_LOG", "opsctrl_daemon=debug"),
        ],
    );
    d.wait_ready();
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 2.0);
    // Changes over a run long enough for several server-ended watches per stream.
    let payments = Stage::in_namespace(c, &i.watched[1]);
    for round in 0..3 {
        std::thread::sleep(Duration::from_secs(5));
        running_pods(&payments, &node, &format!("pay{round}"), 1);
    }
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 5.0);
    let user = i.username();
    d.wait("three watches per stream", T, |_| {
        let r = requests(c, &user);
        i.watched
            .iter()
            .all(|ns| of(&r, "watch", &format!("/api/v1/namespaces/{ns}/pods")).len() >= 3)
    });
    let r = requests(c, &user);
    for ns in &i.watched {
        let path = format!("/api/v1/namespaces/{ns}/pods");
        let lists = of(&r, "list", &path);
        assert_eq!(lists.len(), 1, "one LIST for {ns}: {lists:#?}");
        assert_eq!(lists[0].code, 200);
        let watches = of(&r, "watch", &path);
        let mut last = 0u64;
        for w in &watches {
            let rv: u64 = w
                .param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("a watch without a resourceVersion: {w:?}"));
            assert!(rv >= last, "the resume point went back: {watches:#?}");
            last = rv;
            let t: u64 = w
                .param("timeoutSeconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!((5..=10).contains(&t), "{w:?}");
            assert_eq!(w.param("allowWatchBookmarks").as_deref(), Some("true"));
        }
    }
    assert_eq!(d.metric("opsctrl_watch_relists_total"), Some(0.0));
    assert!(d.metric("opsctrl_watch_restarts_total").unwrap_or(0.0) >= 4.0);
    let (status, _, logs) = d.terminate();
    assert!(status.success(), "{logs}");
}

/// A TCP proxy to the API server that can cut every connection and refuse new ones.
struct Partition {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Partition {
    fn start(upstream: u16) -> Partition {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = l.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (c2, o2) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(down) = conn else { continue };
                if c2.load(Ordering::SeqCst) {
                    let _ = down.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let pipe = |mut from: TcpStream, mut to: TcpStream| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                let clones = (
                    down.try_clone(),
                    up.try_clone(),
                    down.try_clone(),
                    up.try_clone(),
                );
                if let (Ok(d2), Ok(u2), Ok(d3), Ok(u3)) = clones {
                    o2.lock().unwrap().extend([d3, u3]);
                    pipe(down, up);
                    pipe(u2, d2);
                }
            }
        });
        Partition { port, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// A watch from `rv` now ends in 410 Gone (as an HTTP status or an ERROR event).
fn compacted(c: &Cluster, path: &str, rv: &str) -> bool {
    let (status, body) = c.call(
        "GET",
        &format!("{path}?watch=true&resourceVersion={rv}&timeoutSeconds=1"),
        None,
    );
    // One line, the ERROR event, parses as one document; a stream of events does not.
    status == 410 || body["object"]["code"] == 410
}

#[test]
fn a_compacted_resource_version_relists_once_and_an_apiserver_restart_is_survived() {
    let Some(bins) = real_api::bins_or_skip() else {
        return;
    };
    let c = Cluster::start(
        &bins,
        Options {
            watch_cache: false,
            compaction_interval: Duration::from_secs(1),
            audit: true,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = Stage::new(&c, "gone");
    let node = s.node();
    let (web_rs, web) = running_pods(&s, &node, "web", 3);
    // One incident open before the partition: it must not be announced again.
    let api = [ctr("api", "ghcr.io/example/api:2.0.1")];
    let (_, rs) = s.deployment("api", 1, &api);
    let mut x = s.pod(Some(&rs), &format!("{}-c4n7w", rs.name), &api);
    s.bind(&mut x, &node);
    let crash = State::CrashLoop {
        restarts: 5,
        exit: 1,
        reason: "Error",
    };
    s.status(
        &x,
        stage::pod_status(&x, &s.ns, std::slice::from_ref(&crash)),
    );

    let proxy = Partition::start(c.port);
    let home = TempDir::new("realk8s-gone");
    let kc = home.join("kubeconfig");
    std::fs::write(
        &kc,
        c.kubeconfig_via(&format!("https://127.0.0.1:{}", proxy.port), &c.admin_token),
    )
    .expect("kubeconfig");
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
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);
    let opens = |d: &Daemon, kind_name: &str| {
        d.records()
            .iter()
            .filter(|r| {
                r["state"] == "open"
                    && format!(
                        "{}/{}",
                        r["workload"]["kind"].as_str().unwrap_or(""),
                        r["workload"]["name"].as_str().unwrap_or("")
                    ) == kind_name
            })
            .count()
    };
    d.wait("api's incident", T, |d| opens(d, "Deployment/api") == 1);
    let path = format!("/api/v1/namespaces/{}/pods", s.ns);
    let before = c.get(&path)["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();

    // Partitioned: pods change, and etcd compacts the history the daemon would resume from.
    proxy.cut();
    // A bound pod's DELETE only marks it (deletionTimestamp); kubelet's final DELETE with
    // gracePeriodSeconds=0 removes it once its containers are stopped.
    assert_eq!(
        c.delete(&format!("{path}/{}?gracePeriodSeconds=0", web[0].name)),
        200,
        "delete {}",
        web[0].name
    );
    s.status(
        &web[1],
        stage::pod_status(&web[1], &s.ns, std::slice::from_ref(&crash)),
    );
    let born = running_pod(&s, &node, &web_rs, "n3w9z");
    assert!(
        wait_until(T, || compacted(&c, &path, &before)),
        "history before resourceVersion {before} was never compacted"
    );
    proxy.heal();

    d.wait_metric("opsctrl_watch_relists_total", T, |v| v >= 1.0);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 4.0);
    d.wait("web's incident", T, |d| opens(d, "Deployment/web") == 1);
    d.wait("the relist's difference", T, |d| {
        let l = d.logs();
        l.contains(&format!("pod deleted {}/{}", s.ns, web[0].name))
            && l.contains(&format!("pod updated {}/{}", s.ns, web[1].name))
            && l.contains(&format!("pod added {}/{}", s.ns, born.name))
    });
    std::thread::sleep(Duration::from_secs(1));
    let logs = d.logs();
    for line in [
        format!("pod deleted {}/{}", s.ns, web[0].name),
        format!("pod added {}/{}", s.ns, born.name),
    ] {
        assert_eq!(logs.matches(&line).count(), 1, "{line}:\n{logs}");
    }
    assert!(
        !logs.contains(&format!("pod updated {}/{}", s.ns, web[2].name)),
        "an unchanged pod reported"
    );
    assert_eq!(opens(&d, "Deployment/web"), 1);
    assert_eq!(
        opens(&d, "Deployment/api"),
        1,
        "the relist repeated an incident"
    );
    let r = requests(&c, "realk8s-admin");
    let lists = of(&r, "list", &path);
    assert_eq!(
        lists.len(),
        2,
        "a LIST at start and one after 410: {lists:#?}"
    );

    // kube-apiserver restarts: /readyz says so, and the daemon carries on after.
    c.stop_apiserver();
    d.wait("/readyz 503 during the outage", T, |d| {
        d.get("/readyz").is_some_and(|(s, _)| s == 503)
    });
    c.start_apiserver().unwrap_or_else(|e| panic!("{e}"));
    d.wait_ready();
    running_pods(&s, &node, "late", 1);
    d.wait_metric("opsctrl_pods_tracked", T, |v| v == 5.0);
    let (status, _, logs) = d.terminate();
    assert!(status.success(), "{logs}");
}
