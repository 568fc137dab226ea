/*!
Leader election and the Kubernetes Event sink, end to end against the fake API server:

- the fake's Lease and Event-create semantics (conflicts, validation, RBAC, blocks, kubectl);
- electors from the library (short timings, so take-overs take seconds): acquisition,
  renewal, a race, a take-over only after expiry, a partitioned leader stepping down before
  its Lease can expire, a stale write refused, a release on stop;
- the `k8s-events` sink writing Events that `kubectl get events` would show;
- two real daemon processes sharing one Lease: one notification, and fail-over after SIGKILL.
*/

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use opsctrl_daemon::kube::client::Client;
use opsctrl_daemon::kube::config::{self, Env};
use opsctrl_daemon::leader::{Elector, Timing};
use opsctrl_daemon::metrics::Metrics;
use opsctrl_daemon::model::{Alert, Failure, Item};
use opsctrl_daemon::model::{Diagnosis, Fix};
use opsctrl_daemon::model::{FailureType, Finding, Termination};
use opsctrl_daemon::model::{Incident, State};
use opsctrl_daemon::notify::Sink;
use opsctrl_daemon::notify::k8s_event::K8sEvents;
use opsctrl_daemon::settings::Leader;
use opsctrl_daemon::util::time::format_micros as micro_time;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, Block, FakeApi, SsarRule};
use crate::util::items;
use crate::util::{TempDir, pod, stage_marker, wait_until};

const NS: &str = "opsctrl";
const LEASE: &str = "opsctrl-daemon";
const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/opsctrl/leases/opsctrl-daemon";
const LEASES_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/opsctrl/leases";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Timings short enough for tests, with the production orderings (lease > deadline > period).
fn fast() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_millis(2500),
        renew_period: Duration::from_millis(500),
        retry_period: Duration::from_millis(250),
        request_timeout: Duration::from_secs(1),
    }
}

/// A kube client for the fake, presenting bearer `token` (the server's default when `None`).
fn client(api: &FakeApi, dir: &TempDir, token: Option<&str>) -> Client {
    let auth = match token {
        None => Auth::Token,
        Some(t) => {
            let f = dir.join(format!("token-{t}"));
            std::fs::write(&f, t).expect("write token file");
            Auth::TokenFile(f)
        }
    };
    let kc: PathBuf = dir.join(format!("kubeconfig-{}", token.unwrap_or("default")));
    std::fs::write(&kc, api.kubeconfig_yaml(&auth)).expect("write kubeconfig");
    let cfg = config::load(Some(&kc), None, &Env::from_process()).expect("load kubeconfig");
    Client::new(&cfg).expect("client")
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&[], 5))
}

fn elector(client: Client, identity: &str, timing: Timing, m: &Arc<Metrics>) -> Elector {
    let lease = Leader {
        namespace: NS.into(),
        name: LEASE.into(),
        identity: identity.into(),
    };
    Elector::start(client, &lease, timing, m.clone()).expect("start elector")
}

fn lease(api: &FakeApi) -> Value {
    api.get_lease(NS, LEASE).expect("the Lease exists")
}

/// Wait until the holder has renewed the Lease `n` times from now: the positive signal
/// before asserting that a contender did not take it (contenders retry faster than the
/// holder renews, so each of them has tried meanwhile).
fn wait_renewals(api: &FakeApi, n: usize) {
    let mut last = spec_str(&lease(api), "renewTime");
    let mut seen = 0;
    let renewed = wait_until(Duration::from_secs(20), || {
        let now = spec_str(&lease(api), "renewTime");
        if now != last {
            seen += 1;
            last = now;
        }
        seen >= n
    });
    assert!(renewed, "the holder renewed {seen} times, not {n}");
}

fn holder(api: &FakeApi) -> String {
    api.get_lease(NS, LEASE)
        .and_then(|l| {
            l.pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default()
}

fn spec_str(l: &Value, field: &str) -> String {
    l["spec"][field].as_str().unwrap_or("").to_string()
}

/// `2006-01-02T15:04:05.000000Z`
fn is_micro_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[10] == b'T'
        && b[19] == b'.'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && b[26] == b'Z'
}

/// Lease requests with this method, as (status, user) pairs.
fn lease_requests(api: &FakeApi, method: &str) -> Vec<u16> {
    api.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(LEASES_PATH))
        .map(|r| r.status)
        .collect()
}

/// One raw request with the server's token (or `token`): (status, JSON body).
fn call(api: &FakeApi, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    call_as(api, &api.token(), method, path, body)
}

fn call_as(
    api: &FakeApi,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", api.url());
    let auth = format!("Bearer {token}");
    let a = api.agent();
    let resp = match (method, body) {
        ("GET", _) => a.get(&url).header("Authorization", &auth).call(),
        ("POST", Some(b)) => a
            .post(&url)
            .header("Authorization", &auth)
            .content_type("application/json")
            .send(b.to_string()),
        ("PUT", Some(b)) => a
            .put(&url)
            .header("Authorization", &auth)
            .content_type("application/json")
            .send(b.to_string()),
        other => panic!("unsupported request {other:?}"),
    };
    let mut resp = resp.expect("request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn kubectl(kubeconfig: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--request-timeout=20s")
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("kubectl is on PATH (CI installs it)");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lease_body(holder: &str, duration: i64, transitions: i64) -> Value {
    let now = micro_time(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0),
    );
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": LEASE, "namespace": NS},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                 "acquireTime": now, "renewTime": now, "leaseTransitions": transitions}
    })
}

// ---------------------------------------------------------------------------------------------
// The fake API server's Leases and Events
// ---------------------------------------------------------------------------------------------

#[test]
fn fake_api_leases_follow_the_apiserver() {
    let api = FakeApi::start();
    let (code, missing) = call(&api, "GET", LEASE_PATH, None);
    assert_eq!(code, 404);
    assert_eq!(missing["kind"], "Status");
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(
        missing["message"],
        "leases.coordination.k8s.io \"opsctrl-daemon\" not found"
    );
    assert_eq!(missing["details"]["group"], "coordination.k8s.io");

    let body = lease_body("a", 15, 0);
    let (code, created) = call(&api, "POST", LEASES_PATH, Some(&body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["kind"], "Lease");
    assert_eq!(created["apiVersion"], "coordination.k8s.io/v1");
    assert!(created["metadata"]["uid"].is_string());
    let rv1 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, exists) = call(&api, "POST", LEASES_PATH, Some(&body));
    assert_eq!(
        (code, exists["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );

    // Updates are conditional: no version is invalid, an old one conflicts.
    let mut update = created.clone();
    update["spec"]["holderIdentity"] = json!("b");
    update["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, invalid) = call(&api, "PUT", LEASE_PATH, Some(&update));
    assert_eq!((code, invalid["reason"].as_str()), (422, Some("Invalid")));
    assert!(
        invalid["message"]
            .as_str()
            .unwrap()
            .contains("metadata.resourceVersion")
    );
    update["metadata"]["resourceVersion"] = json!("1");
    let (code, stale) = call(&api, "PUT", LEASE_PATH, Some(&update));
    assert_eq!((code, stale["reason"].as_str()), (409, Some("Conflict")));
    assert!(
        stale["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified")
    );
    assert_eq!(holder(&api), "a", "a conflicting write changes nothing");

    update["metadata"]["resourceVersion"] = json!(rv1);
    let (code, updated) = call(&api, "PUT", LEASE_PATH, Some(&update));
    assert_eq!(code, 200, "{updated}");
    let rv2 = updated["metadata"]["resourceVersion"].as_str().unwrap();
    assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());
    assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(holder(&api), "b");
    // The same content again is a no-op: no new version.
    let (code, same) = call(&api, "PUT", LEASE_PATH, Some(&updated));
    assert_eq!(code, 200);
    assert_eq!(same["metadata"]["resourceVersion"], rv2);

    // Validation.
    let mut bad = updated.clone();
    bad["spec"]["leaseDurationSeconds"] = json!(0);
    assert_eq!(call(&api, "PUT", LEASE_PATH, Some(&bad)).0, 422);
    let mut bad = updated.clone();
    bad["spec"]["renewTime"] = json!("2025-01-01T00:00:00Z");
    assert_eq!(call(&api, "PUT", LEASE_PATH, Some(&bad)).0, 400);
    let mut bad = updated.clone();
    bad["metadata"]["name"] = json!("other");
    assert_eq!(call(&api, "PUT", LEASE_PATH, Some(&bad)).0, 400);
    let other = format!("{LEASES_PATH}/nope");
    let mut nope = updated.clone();
    nope["metadata"]["name"] = json!("nope");
    assert_eq!(call(&api, "PUT", &other, Some(&nope)).0, 404);

    // RBAC applies, with the API group in the message.
    api.set_rbac(vec![
        SsarRule::new("get", "coordination.k8s.io", "leases").in_namespace(NS),
    ]);
    assert_eq!(call(&api, "GET", LEASE_PATH, None).0, 200);
    let (code, denied) = call(&api, "PUT", LEASE_PATH, Some(&updated));
    assert_eq!(code, 403);
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"opsctrl\""),
        "{denied}"
    );
    api.set_rbac(vec![SsarRule::all()]);

    // Blocks hit one client, by token.
    let other_token = "client-b-token";
    api.set_tokens(&[&api.token(), other_token]);
    api.block("leases", Some(other_token), Block::Status(500));
    assert_eq!(call_as(&api, other_token, "GET", LEASE_PATH, None).0, 500);
    assert_eq!(call(&api, "GET", LEASE_PATH, None).0, 200);
    api.unblock();
    assert_eq!(call_as(&api, other_token, "GET", LEASE_PATH, None).0, 200);

    // kubectl sees it, JSON and table.
    let dir = TempDir::new("lease-kubectl");
    let kc = api.write_kubeconfig(dir.path(), Auth::Token);
    let list: Value = serde_json::from_str(&kubectl(
        &kc,
        &dir.join("cache"),
        &["get", "lease", "-n", NS, "-o", "json"],
    ))
    .expect("kubectl -o json");
    assert_eq!(list["items"][0]["metadata"]["name"], LEASE);
    assert_eq!(list["items"][0]["spec"]["holderIdentity"], "b");
    let table = kubectl(&kc, &dir.join("cache"), &["get", "lease", "-n", NS]);
    assert!(table.contains("HOLDER"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(LEASE) && l.split_whitespace().nth(1) == Some("b")),
        "{table}"
    );
}

#[test]
fn fake_api_creates_events_with_generate_name_and_validates_them() {
    let api = FakeApi::start();
    let path = "/api/v1/namespaces/shop/events";
    let now = micro_time(1_700_000_000_000_000);
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "web-1.opsctrl-", "namespace": "shop"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-1", "namespace": "shop"},
        "reason": "OpsctrlDiagnosis", "message": "m", "type": "Warning",
        "source": {"component": "opsctrl-daemon"},
        "reportingComponent": "opsctrl.dev/daemon", "reportingInstance": "r", "action": "Diagnosed",
        "eventTime": now, "firstTimestamp": "2023-11-14T22:13:20Z", "lastTimestamp": "2023-11-14T22:13:20Z", "count": 1
    });
    let (code, created) = call(&api, "POST", path, Some(&event));
    assert_eq!(code, 201, "{created}");
    let name = created["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web-1.opsctrl-") && name.len() == "web-1.opsctrl-".len() + 5);
    let (_, list) = call(
        &api,
        "GET",
        "/api/v1/namespaces/shop/events?fieldSelector=involvedObject.name%3Dweb-1",
        None,
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["metadata"]["name"], name);

    let mut e = event.clone();
    e.as_object_mut().unwrap().remove("action");
    let (code, invalid) = call(&api, "POST", path, Some(&e));
    assert_eq!(code, 422);
    assert!(invalid["message"].as_str().unwrap().contains("action"));
    let mut e = event.clone();
    e["message"] = json!("x".repeat(1025));
    assert_eq!(call(&api, "POST", path, Some(&e)).0, 422);
    let mut e = event.clone();
    e["involvedObject"]["namespace"] = json!("other");
    e.as_object_mut().unwrap().remove("eventTime");
    assert_eq!(call(&api, "POST", path, Some(&e)).0, 422);
    let mut e = event.clone();
    e["metadata"]["namespace"] = json!("other");
    assert_eq!(call(&api, "POST", path, Some(&e)).0, 400);
    assert_eq!(call(&api, "POST", "/api/v1/events", Some(&event)).0, 405);

    api.set_rbac(vec![SsarRule::new("list", "", "events")]);
    assert_eq!(call(&api, "POST", path, Some(&event)).0, 403);
    assert_eq!(api.events().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Electors
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_acquires_an_empty_server_renews_and_releases() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-acquire");
    let m = metrics();
    let a = elector(client(&api, &dir, None), "daemon-a", fast(), &m);
    let l = a.leadership();
    assert!(wait_until(Duration::from_secs(10), || l.is_leader()));
    assert_eq!(m.counters.leader.load(Ordering::Relaxed), 1);
    assert_eq!(m.counters.leader_acquired.load(Ordering::Relaxed), 1);

    let first = lease(&api);
    assert_eq!(first["spec"]["holderIdentity"], "daemon-a");
    assert_eq!(first["spec"]["leaseDurationSeconds"], 4);
    assert_eq!(first["spec"]["leaseTransitions"], 0);
    let acquired = spec_str(&first, "acquireTime");
    assert!(is_micro_time(&acquired), "{acquired}");
    // Renewals: renewTime moves forward, the holder and acquireTime stay.
    let mut renewals = vec![spec_str(&first, "renewTime")];
    let ok = wait_until(Duration::from_secs(10), || {
        let r = spec_str(&lease(&api), "renewTime");
        if renewals.last() != Some(&r) {
            renewals.push(r);
        }
        renewals.len() >= 4
    });
    assert!(ok, "renewTime did not advance: {renewals:?}");
    assert!(renewals.iter().all(|r| is_micro_time(r)), "{renewals:?}");
    assert!(renewals.windows(2).all(|w| w[0] < w[1]), "{renewals:?}");
    let now = lease(&api);
    assert_eq!(now["spec"]["holderIdentity"], "daemon-a");
    assert_eq!(spec_str(&now, "acquireTime"), acquired);
    assert_eq!(now["spec"]["leaseTransitions"], 0);
    assert!(l.is_leader());
    // The leader renews on its own last write: one create, PUTs, almost no GETs.
    assert_eq!(lease_requests(&api, "POST"), [201]);
    let puts = lease_requests(&api, "PUT");
    assert!(
        puts.len() >= 3 && puts.iter().all(|s| *s == 200),
        "{puts:?}"
    );
    assert!(lease_requests(&api, "GET").len() <= 1);

    a.stop();
    assert!(!l.is_leader());
    assert_eq!(m.counters.leader.load(Ordering::Relaxed), 0);
    let released = lease(&api);
    assert_eq!(released["spec"]["holderIdentity"], "");
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1);
}

#[test]
fn racing_electors_elect_exactly_one() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-race");
    let ms: Vec<Arc<Metrics>> = (0..3).map(|_| metrics()).collect();
    let electors: Vec<Elector> = ["a", "b", "c"]
        .iter()
        .zip(&ms)
        .map(|(id, m)| elector(client(&api, &dir, None), id, fast(), m))
        .collect();
    let ls: Vec<_> = electors.iter().map(Elector::leadership).collect();
    let leaders = || ls.iter().filter(|l| l.is_leader()).count();
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut seen_one = false;
    while Instant::now() < deadline {
        let n = leaders();
        assert!(n <= 1, "{n} leaders at once");
        seen_one |= n == 1;
        thread::sleep(Duration::from_millis(5));
    }
    assert!(seen_one, "nobody became leader");
    assert_eq!(leaders(), 1);
    let winner = ["a", "b", "c"][ls.iter().position(|l| l.is_leader()).unwrap()];
    assert_eq!(holder(&api), winner);
    let created: Vec<u16> = lease_requests(&api, "POST");
    assert_eq!(
        created.iter().filter(|s| **s == 201).count(),
        1,
        "exactly one create wins: {created:?}"
    );
    assert!(
        created.iter().all(|s| *s == 201 || *s == 409),
        "{created:?}"
    );
    let acquired: u64 = ms
        .iter()
        .map(|m| m.counters.leader_acquired.load(Ordering::Relaxed))
        .sum();
    assert_eq!(acquired, 1);
}

#[test]
fn a_standby_takes_over_only_after_the_lease_expires() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-expiry");
    // A holder the test plays: 3 s leases, renewed every second.
    api.put_lease(lease_body("ghost", 3, 4));
    let m = metrics();
    let b = elector(client(&api, &dir, None), "daemon-b", fast(), &m);
    let l = b.leadership();
    for _ in 0..5 {
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            assert!(!l.is_leader(), "took a Lease that was being renewed");
            thread::sleep(Duration::from_millis(10));
        }
        api.put_lease(lease_body("ghost", 3, 4));
    }
    // The ghost dies right after that renewal.
    let last_renewal = Instant::now();
    while last_renewal.elapsed() < Duration::from_millis(2950) {
        assert!(
            !l.is_leader(),
            "took over {:?} after the last renewal, before 3 s",
            last_renewal.elapsed()
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        wait_until(Duration::from_secs(4), || l.is_leader()),
        "no take-over 7 s after the last renewal"
    );
    let taken = lease(&api);
    assert_eq!(taken["spec"]["holderIdentity"], "daemon-b");
    assert_eq!(taken["spec"]["leaseTransitions"], 5);
    assert_eq!(taken["spec"]["leaseDurationSeconds"], 4);
    assert_eq!(
        spec_str(&taken, "acquireTime"),
        spec_str(&taken, "renewTime")
    );
    assert_eq!(m.counters.leader_acquired.load(Ordering::Relaxed), 1);
}

#[test]
fn a_partitioned_leader_steps_down_before_its_lease_expires() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-partition");
    let (ta, tb) = ("token-daemon-a", "token-daemon-b");
    api.set_tokens(&[&api.token(), ta, tb]);
    let (ma, mb) = (metrics(), metrics());
    let a = elector(client(&api, &dir, Some(ta)), "daemon-a", fast(), &ma);
    let la = a.leadership();
    assert!(wait_until(Duration::from_secs(10), || la.is_leader()));
    let b = elector(client(&api, &dir, Some(tb)), "daemon-b", fast(), &mb);
    let lb = b.leadership();
    wait_renewals(&api, 2);
    assert!(la.is_leader() && !lb.is_leader());

    // a's Lease requests now hang (a network partition between a and the API server).
    api.block("leases", Some(ta), Block::Hang);
    let cut = Instant::now();
    let t = fast();
    let (mut a_stopped, mut b_started) = (None, None);
    while b_started.is_none() && cut.elapsed() < Duration::from_secs(15) {
        let (a_now, b_now) = (la.is_leader(), lb.is_leader());
        assert!(
            !(a_now && b_now),
            "two leaders {:?} after the cut",
            cut.elapsed()
        );
        if !a_now && a_stopped.is_none() {
            a_stopped = Some(cut.elapsed());
        }
        if b_now {
            b_started = Some(cut.elapsed());
        }
        thread::sleep(Duration::from_millis(5));
    }
    let a_stopped = a_stopped.expect("a never stepped down");
    let b_started = b_started.expect("b never took over");
    // a's last renewal was sent before the cut, so it stops by cut + renew deadline.
    assert!(
        a_stopped <= t.renew_deadline + Duration::from_millis(200),
        "a led {a_stopped:?} after the cut"
    );
    assert!(
        b_started <= a_stopped + t.lease_duration + Duration::from_secs(1),
        "b took over {b_started:?} after the cut, a stopped at {a_stopped:?}"
    );
    assert_eq!(holder(&api), "daemon-b");
    assert!(
        wait_until(Duration::from_secs(3), || ma
            .counters
            .leader
            .load(Ordering::Relaxed)
            == 0),
        "a's leader gauge stayed 1"
    );

    // Healed: a reads b's Lease and stays standby.
    api.unblock();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(!la.is_leader() && lb.is_leader());
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(lease(&api)["spec"]["leaseTransitions"], 1);
    drop(b);
    drop(a);
}

#[test]
fn a_stale_write_is_refused_and_the_leader_steps_down() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-stale");
    let m = metrics();
    let a = elector(client(&api, &dir, None), "daemon-a", fast(), &m);
    let l = a.leadership();
    assert!(wait_until(Duration::from_secs(10), || l.is_leader()));
    // Someone else writes the Lease behind a's back.
    api.put_lease(lease_body("intruder", 30, 7));
    assert!(
        wait_until(Duration::from_secs(3), || !l.is_leader()),
        "a kept leading over someone else's Lease"
    );
    // a's renewal on its old version was refused, and a never overwrote the intruder.
    assert!(lease_requests(&api, "PUT").contains(&409));
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(holder(&api), "intruder");
        assert!(!l.is_leader());
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(m.counters.leader.load(Ordering::Relaxed), 0);
}

#[test]
fn stopping_the_leader_hands_the_lease_over_at_once() {
    let api = FakeApi::start();
    let dir = TempDir::new("leader-release");
    // Long leases: without the release, b would wait 10 s.
    let slow = Timing {
        lease_duration: Duration::from_secs(10),
        renew_deadline: Duration::from_secs(6),
        ..fast()
    };
    let (ma, mb) = (metrics(), metrics());
    let a = elector(client(&api, &dir, None), "daemon-a", slow, &ma);
    assert!(wait_until(Duration::from_secs(10), || a
        .leadership()
        .is_leader()));
    let b = elector(client(&api, &dir, None), "daemon-b", slow, &mb);
    let lb = b.leadership();
    wait_renewals(&api, 2);
    assert!(!lb.is_leader());
    let stopped = Instant::now();
    a.stop();
    assert!(
        wait_until(Duration::from_secs(3), || lb.is_leader()),
        "b did not take over a released Lease"
    );
    assert!(stopped.elapsed() < Duration::from_secs(4));
    let l = lease(&api);
    assert_eq!(l["spec"]["holderIdentity"], "daemon-b");
    assert_eq!(l["spec"]["leaseTransitions"], 1);
}

// ---------------------------------------------------------------------------------------------
// The k8s-events sink
// ---------------------------------------------------------------------------------------------

fn item(id: u64, ns: &str, pod_name: &str, state: State) -> Item {
    let finding = Finding {
        reason: "CrashLoopBackOff".into(),
        message: "back-off 40s restarting failed container".into(),
        restart_count: Some(4),
        node: None,
        image: None,
        termination: Some(Termination {
            pod_uid: format!("uid-{pod_name}"),
            container: "app".into(),
            finished: 1,
        }),
        ..items::finding(FailureType::CrashLoopBackOff, ns, pod_name)
    };
    Item {
        incident: Incident {
            id,
            cluster: "k3s".into(),
            first_seen_ms: 1_000,
            detected_ms: 1_000,
            last_seen_ms: 2_000,
            ..items::incident(finding, state)
        },
        diagnosis: Some(Diagnosis {
            cause: opsctrl_daemon::model::Cause::AppErrorExit,
            summary: "The app exits with code 1.".into(),
            confidence: 0.8,
            evidence: vec![],
            fix: Fix {
                text: "Read the logs.".into(),
                commands: vec![format!("kubectl logs -n {ns} {pod_name} -c app --previous")],
            },
            rule: "exit-nonzero",
            ai: None,
            backend: None,
            node_incident: None,
        }),
        events: vec![],
        logs: vec![],
        facts: Vec::new(),
    }
}

fn events_of(api: &FakeApi, ns: &str, pod_name: &str) -> Vec<Value> {
    let (code, list) = call(
        api,
        "GET",
        &format!("/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name%3D{pod_name}"),
        None,
    );
    assert_eq!(code, 200, "{list}");
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn k8s_event_sink_writes_one_event_per_incident_and_never_twice() {
    let api = FakeApi::start();
    let dir = TempDir::new("k8s-events");
    let sink = K8sEvents::new(client(&api, &dir, None), "opsctrl-daemon-7c9-x2");
    assert_eq!(sink.name(), "k8s-events");
    let alert = Alert::StartupSummary {
        items: vec![
            item(1, "shop", "web-1", State::Open),
            item(2, "data", "db-0", State::Open),
        ],
    };
    assert_eq!(sink.deliver(&alert), Ok(()));
    let web = events_of(&api, "shop", "web-1");
    assert_eq!(web.len(), 1, "{web:#?}");
    let e = &web[0];
    assert!(
        e["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("web-1.opsctrl-")
    );
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["reason"], "OpsctrlDiagnosis");
    assert_eq!(e["involvedObject"]["kind"], "Pod");
    assert_eq!(e["involvedObject"]["uid"], "uid-web-1");
    assert_eq!(e["source"]["component"], "opsctrl-daemon");
    assert_eq!(e["reportingComponent"], "opsctrl.dev/daemon");
    assert_eq!(e["reportingInstance"], "opsctrl-daemon-7c9-x2");
    assert_eq!(
        e["message"],
        "app_error_exit: The app exits with code 1. Fix: kubectl logs -n shop web-1 -c app --previous"
    );
    assert!(is_micro_time(e["eventTime"].as_str().unwrap()));
    assert_eq!(events_of(&api, "data", "db-0").len(), 1);

    // The pool retries the same alert: nothing is written twice.
    assert_eq!(sink.deliver(&alert), Ok(()));
    assert_eq!(api.events().len(), 2);
    // A resolution writes nothing.
    let resolved = Alert::Incident {
        item: Box::new(item(1, "shop", "web-1", State::Resolved)),
        reminder: false,
    };
    assert_eq!(sink.deliver(&resolved), Ok(()));
    assert_eq!(api.events().len(), 2);

    // 5xx: retried; 403: permanent, with the way to enable it.
    let next = Alert::Incident {
        item: Box::new(item(3, "shop", "web-2", State::Open)),
        reminder: false,
    };
    api.block("events", None, Block::Status(503));
    assert!(matches!(sink.deliver(&next), Err(Failure::Retry { .. })));
    api.unblock();
    api.set_rbac(vec![SsarRule::new("list", "", "events")]);
    match sink.deliver(&next) {
        Err(Failure::Permanent(why)) => {
            assert!(why.contains("403"), "{why}");
            assert!(why.contains("manifests/components/k8s-events"), "{why}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    api.set_rbac(vec![SsarRule::all()]);
    assert_eq!(sink.deliver(&next), Ok(()));
    assert_eq!(events_of(&api, "shop", "web-2").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Two real daemons
// ---------------------------------------------------------------------------------------------

fn start_daemon(api: &FakeApi, home: &TempDir, token: &str, identity: &str) -> Daemon {
    let tf = home.join("token");
    std::fs::write(&tf, token).expect("write token");
    let kc = home.join("kubeconfig");
    std::fs::write(&kc, api.kubeconfig_yaml(&Auth::TokenFile(tf))).expect("write kubeconfig");
    Daemon::start(
        home.path(),
        &kc,
        &[
            ("LEADER_ELECTION", "true"),
            ("LEADER_ELECTION_NAMESPACE", NS),
            ("POD_NAME", identity),
            ("NOTIFY_BATCH_MS", "0"),
            ("OUTPUT", "json"),
        ],
    )
}

#[test]
fn two_daemons_send_one_notification_and_the_survivor_takes_over() {
    let api = FakeApi::start();
    let (ta, tb) = ("token-daemon-a", "token-daemon-b");
    api.set_tokens(&[&api.token(), ta, tb]);
    let (home_a, home_b) = (TempDir::new("ha-a"), TempDir::new("ha-b"));
    let mut a = start_daemon(&api, &home_a, ta, "daemon-a");
    a.wait_metric("opsctrl_leader", Duration::from_secs(20), |v| v == 1.0);
    a.wait_ready();
    let mut b = start_daemon(&api, &home_b, tb, "daemon-b");
    b.wait_ready();
    b.wait("b on standby", Duration::from_secs(20), |d| {
        d.logs()
            .contains("standby: Lease opsctrl/opsctrl-daemon held by daemon-a")
    });
    assert_eq!(b.metric("opsctrl_leader"), Some(0.0));

    // One crash-looping pod: both see it, only the leader sends.
    api.upsert_pod(
        pod("shop", "web-7d4b9c6f8-aaaaa")
            .crash_loop(4, 1, "Error")
            .build(),
    );
    a.wait("a's notification", Duration::from_secs(30), |d| {
        d.logs().contains("notification: ")
    });
    b.wait(
        "b's suppressed notification",
        Duration::from_secs(30),
        |d| d.logs().contains("notification (standby, not sent): "),
    );
    // The positive signal before asserting that nothing was sent twice: both handle a
    // later, unrelated failure.
    stage_marker(&api, "shop");
    let marker_line = |logs: &str, what: &str| {
        logs.lines()
            .any(|l| l.contains(what) && l.contains("/Deployment/marker"))
    };
    a.wait("a's marker notification", Duration::from_secs(30), |d| {
        marker_line(&d.logs(), "notification: ")
    });
    b.wait(
        "b's suppressed marker notification",
        Duration::from_secs(30),
        |d| marker_line(&d.logs(), "notification (standby, not sent): "),
    );
    let (la, lb) = (a.logs(), b.logs());
    assert_eq!(la.matches("notification: ").count(), 2, "{la}");
    assert_eq!(lb.matches("notification: ").count(), 0, "{lb}");
    assert_eq!(
        lb.matches("notification (standby, not sent): ").count(),
        2,
        "{lb}"
    );
    // Both classified it: the record on stdout is not gated.
    assert!(
        !b.records().is_empty(),
        "the standby still records incidents"
    );

    // SIGKILL the leader: no release, b must wait for the Lease to expire.
    drop(a);
    let killed = Instant::now();
    b.wait_metric("opsctrl_leader", Duration::from_secs(25), |v| v == 1.0);
    let took = killed.elapsed();
    assert!(
        took >= Duration::from_secs(9),
        "b took over {took:?} after the kill, before the Lease could have expired"
    );
    assert!(b.logs().contains("became leader"), "{}", b.logs());
    assert_eq!(holder(&api), "daemon-b");
    assert_eq!(lease(&api)["spec"]["leaseTransitions"], 1);

    // Now b sends.
    api.upsert_pod(pod("data", "db-0").crash_loop(4, 1, "Error").build());
    b.wait("b's own notification", Duration::from_secs(30), |d| {
        d.logs().contains("notification: ")
    });

    // SIGTERM: the Lease is released on the way out.
    let (status, _, logs) = b.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("released the Lease"), "{logs}");
    assert_eq!(holder(&api), "");
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

#[test]
fn check_asks_for_leases_logs_and_event_create_only_when_enabled() {
    let api = FakeApi::start();
    api.set_rbac(vec![
        SsarRule::new("get", "", "pods").in_namespace("shop"),
        SsarRule::new("list", "", "pods").in_namespace("shop"),
        SsarRule::new("watch", "", "pods").in_namespace("shop"),
        SsarRule::new("list", "", "events").in_namespace("shop"),
        SsarRule::new("get", "coordination.k8s.io", "leases").in_namespace(NS),
        SsarRule::new("create", "authorization.k8s.io", "selfsubjectaccessreviews"),
    ]);
    let home = TempDir::new("check-leader");
    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = crate::util::daemon::command(home.path());
        cmd.args(["check", "--watch-namespaces", "shop"])
            .arg("--kubeconfig")
            .arg(&kc);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // INCLUDE_LOGS is on by default: off, nothing but the reads is asked for.
    let (code, text) = run(&[("INCLUDE_LOGS", "false")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains("leases") && !text.contains("pods/log"),
        "{text}"
    );
    let (code, text) = run(&[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("no   get pods/log in namespace shop"),
        "{text}"
    );
    assert!(text.contains("INCLUDE_LOGS=false"), "{text}");

    let (code, text) = run(&[
        ("LEADER_ELECTION", "true"),
        ("LEADER_ELECTION_NAMESPACE", NS),
        ("INCLUDE_LOGS", "true"),
        ("EMIT_K8S_EVENTS", "true"),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("yes  get leases.coordination.k8s.io in namespace opsctrl"),
        "{text}"
    );
    assert!(
        text.contains("no   update leases.coordination.k8s.io in namespace opsctrl"),
        "{text}"
    );
    assert!(
        text.contains("kubectl create role opsctrl-daemon-leader-election -n opsctrl"),
        "{text}"
    );
    assert!(
        text.contains("no   get pods/log in namespace shop"),
        "{text}"
    );
    assert!(
        text.contains("no   create events in namespace shop"),
        "{text}"
    );
    assert!(text.contains("manifests/components/k8s-events"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// The manifests' settings
// ---------------------------------------------------------------------------------------------

/// The settings the manifests give the daemon are ones it accepts: the ConfigMap (with what
/// each component switches on, and the namespaced overlay's namespaces), the Secret's empty
/// placeholders and the downward-API variables. `scan -f` resolves every setting first and
/// exits 2 on any invalid one.
#[test]
fn the_manifests_settings_start_the_daemon() {
    use yaml_rust2::YamlLoader;
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/core/configmap.yaml"),
    )
    .expect("read the ConfigMap");
    let docs = YamlLoader::load_from_str(&text).expect("YAML");
    let data = docs[0]["data"].as_hash().expect("ConfigMap data");
    let base: Vec<(String, String)> = data
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().expect("key").to_string(),
                v.as_str().expect("string values only").to_string(),
            )
        })
        .collect();
    assert!(base.iter().any(|(k, _)| k == "LEADER_ELECTION"));
    let variants: [&[(&str, &str)]; 2] = [
        &[],
        &[
            ("INCLUDE_LOGS", "true"),
            ("EMIT_K8S_EVENTS", "true"),
            ("LEADER_ELECTION", "true"),
            ("WATCH_NAMESPACES", "shop,payments"),
        ],
    ];
    let home = TempDir::new("manifest-settings");
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan-sample.json");
    for extra in variants {
        let mut cmd = crate::util::daemon::command(home.path());
        cmd.arg("scan").arg("-f").arg(&sample);
        for (k, v) in &base {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        for k in ["SLACK_WEBHOOK_URL", "SLACK_BOT_TOKEN", "LLM_API_KEY"] {
            cmd.env(k, "");
        }
        cmd.env("POD_NAME", "opsctrl-daemon-6d4f9-x2v7q")
            .env("POD_NAMESPACE", "opsctrl");
        let out = cmd.output().expect("run scan");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "settings {extra:?} refused ({:?}): {err}",
            out.status.code()
        );
    }
}
