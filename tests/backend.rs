/*!
The OpsCtrl backend client against the fake backend (`util::fake_backend`), at library level:
a closure stands in for the kube-system namespace, each test has its own state directory, and
the background thread runs on a fast `Timing`.

Covered: register → pending (claim URL in the status, /health and the log; `analyze` answers
`Ok(None)` at once) → claimed → tokens → analyze-stack with the original payload and Bearer →
proactive refresh → refresh refused → tokens fetched again; restarts resuming from the state
files; the files' schemas and modes; a cluster-id error never producing a random id; a saved
registration of another cluster being discarded; retryable and permanent failures; the payload
cap; and no token in logs, statuses or errors.
*/

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use opsctrl_daemon::backend::{Backend, Timing};
use opsctrl_daemon::metrics::Metrics;
use opsctrl_daemon::model::FailureType;
use opsctrl_daemon::model::State;
use opsctrl_daemon::model::{Failure, Item};
use opsctrl_daemon::settings;
use serde_json::{Value, json};

use crate::util::fake_backend::FakeBackend;
use crate::util::items;
use crate::util::{TempDir, wait_until};

const UID: &str = "6a1f3c2e-0d4b-4e7a-9c11-00000000beef";
const EMAIL: &str = "ops@example.com";
const FRONTEND: &str = "https://app.example.test";
const WAIT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ log capture

struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

/// Installs the capturing logger once for the whole test binary. `None` when another logger
/// got there first (then log assertions are skipped, the rest still runs).
fn capture() -> Option<&'static Capture> {
    static CAPTURE: OnceLock<Option<&'static Capture>> = OnceLock::new();
    *CAPTURE.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        match log::set_logger(c) {
            Ok(()) => {
                log::set_max_level(log::LevelFilter::Debug);
                Some(c)
            }
            Err(_) => None,
        }
    })
}

fn logs() -> Vec<String> {
    capture()
        .map(|c| c.0.lock().map(|v| v.clone()).unwrap_or_default())
        .unwrap_or_default()
}

/// No token the fake ever issued appears in the captured log, in `extra` or in the status.
fn assert_no_token_leak(fake: &FakeBackend, b: &Backend, extra: &[String]) {
    let tokens = fake.issued_tokens();
    assert!(!tokens.is_empty(), "the test should have issued tokens");
    let mut texts = logs();
    texts.extend_from_slice(extra);
    texts.push(b.status());
    for t in &tokens {
        for line in &texts {
            assert!(!line.contains(t.as_str()), "token leaked into: {line}");
        }
    }
}

// ------------------------------------------------------------------ helpers

fn settings(fake: &FakeBackend, state_dir: &Path) -> settings::Backend {
    settings::Backend {
        url: fake.url(),
        frontend_url: FRONTEND.into(),
        user_email: EMAIL.into(),
        cluster_name: "edge-1".into(),
        state_dir: state_dir.to_path_buf(),
    }
}

fn timing() -> Timing {
    Timing {
        claim_check: Duration::from_millis(100),
        claim_reminder: Duration::from_secs(60),
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(300),
        idle_check: Duration::from_millis(200),
        min_refresh_gap: Duration::from_millis(100),
    }
}

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&[], 5))
}

fn start(fake: &FakeBackend, dir: &Path, m: &Arc<Metrics>) -> Arc<Backend> {
    capture();
    Backend::start_with(
        &settings(fake, dir),
        || Ok(UID.to_string()),
        m.clone(),
        timing(),
    )
}

fn claim_url() -> String {
    format!("{FRONTEND}/claim?cluster=clu_{UID}")
}

fn item(logs: Vec<String>) -> Item {
    let f = items::finding(FailureType::CrashLoopBackOff, "shop", "web-7d4b9c6f8-aaaaa");
    let mut it = Item::new(items::incident(f, State::Open), None);
    it.events = vec!["Warning BackOff (x12): Back-off restarting failed container".into()];
    it.logs = logs;
    it
}

fn read_json(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn mode(path: PathBuf) -> u32 {
    std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map_or(vec![], |o| o.keys().cloned().collect());
    k.sort();
    k
}

fn wait_registered(b: &Backend) {
    assert!(
        wait_until(WAIT, || b.status() == "registered"),
        "not registered: {}",
        b.status()
    );
}

fn counter(m: &Metrics, c: fn(&Metrics) -> &std::sync::atomic::AtomicU64) -> u64 {
    c(m).load(Ordering::Relaxed)
}

// ------------------------------------------------------------------ tests

#[test]
fn registers_waits_for_the_claim_then_reports_with_tokens() {
    let fake = FakeBackend::start();
    let tmp = TempDir::new("backend-flow");
    let dir = tmp.join("state");
    let m = metrics();
    let b = start(&fake, &dir, &m);

    // Pending: the claim URL is in the status and the log, and in /health
    // when HEALTH_SHOW_CLAIM_URL asks for it.
    assert!(
        wait_until(WAIT, || b.status().starts_with("pending")),
        "{}",
        b.status()
    );
    assert_eq!(b.status(), format!("pending: claim at {}", claim_url()));
    assert_eq!(m.backend_status().to_string(), b.status());
    let health = opsctrl_daemon::serve::route("GET", "/health", &m);
    let health: Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(health["backend"]["claimUrl"], Value::Null);
    assert_eq!(health["backend"]["status"], "pending");
    m.show_claim_url(true);
    let health = opsctrl_daemon::serve::route("GET", "/health", &m);
    let health: Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(health["backend"]["claimUrl"], claim_url());
    if capture().is_some() {
        assert!(
            logs().iter().any(|l| l.contains(&claim_url())),
            "the claim URL is logged"
        );
    }

    // Monitoring never waits: nothing is sent while pending.
    let t = Instant::now();
    assert_eq!(b.analyze(&item(vec![])), Ok(None));
    assert!(t.elapsed() < Duration::from_millis(200));
    assert_eq!(fake.count("POST", "/daemon/analyze-stack"), 0);

    // The registration call and pending.json, as the original.
    let reg = fake.requests_to("POST", "/clusters");
    assert_eq!(reg.len(), 1);
    assert_eq!(
        reg[0].json(),
        json!({"externalRefId": format!("clu_{UID}"), "clusterName": "edge-1", "userEmail": EMAIL})
    );
    assert!(
        reg[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("opsctrl-daemon/")),
        "{:?}",
        reg[0].headers
    );
    let pending = read_json(dir.join("pending.json"));
    assert_eq!(
        sorted_keys(&pending),
        [
            "cluster_id",
            "cluster_name",
            "created_at",
            "registration_url",
            "requires_browser_confirmation",
            "user_email"
        ]
    );
    assert_eq!(pending["cluster_id"], format!("clu_{UID}"));
    assert_eq!(pending["registration_url"], claim_url());
    assert_eq!(pending["requires_browser_confirmation"], false);
    assert_eq!(mode(dir.join("pending.json")), 0o600);
    assert_eq!(mode(dir.clone()), 0o700);
    assert!(!dir.join("cluster.json").exists());

    // The claim is checked again and again while nobody claims.
    let check_path = format!("/clusters/clu_{UID}");
    assert!(wait_until(WAIT, || fake.count("GET", &check_path) >= 2));
    assert!(b.status().starts_with("pending"));

    // Claimed → cluster.json, tokens, registered.
    fake.set_claimed(true);
    wait_registered(&b);
    let backend_id = fake.clusters()[0].id.clone();
    assert!(!dir.join("pending.json").exists());
    let cluster = read_json(dir.join("cluster.json"));
    assert_eq!(
        sorted_keys(&cluster),
        [
            "cluster_foreign_id",
            "cluster_id",
            "cluster_name",
            "is_claimed",
            "org_id",
            "registered_at",
            "user_email"
        ]
    );
    assert_eq!(cluster["cluster_id"], format!("clu_{UID}"));
    assert_eq!(cluster["cluster_foreign_id"], backend_id.as_str());
    assert_eq!(cluster["org_id"], "org_1");
    assert_eq!(cluster["is_claimed"], true);
    let tokens = read_json(dir.join("tokens.json"));
    assert_eq!(
        sorted_keys(&tokens),
        [
            "accessToken",
            "clusterId",
            "expiresAt",
            "expiresIn",
            "orgId",
            "refreshToken"
        ]
    );
    assert_eq!(
        tokens["clusterId"],
        backend_id.as_str(),
        "one id for tokens: the backend's"
    );
    assert_eq!(tokens["expiresIn"], 3600);
    for f in ["cluster.json", "tokens.json"] {
        assert_eq!(mode(dir.join(f)), 0o600, "{f}");
    }

    // #3 with the backend id and org; #4 with the listed token and the backend id.
    let listing = fake.requests_to("GET", "/auth/cluster/tokens");
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].param("clusterId"), Some(backend_id.as_str()));
    assert_eq!(listing[0].param("orgId"), Some("org_1"));
    let exchange = fake.requests_to("POST", "/auth/cluster/refresh");
    assert_eq!(exchange.len(), 1);
    assert_eq!(exchange[0].json()["clusterId"], backend_id.as_str());

    // analyze-stack: Bearer, the original payload, the analysis handed back.
    let analysis = b.analyze(&item(vec!["panic: DATABASE_URL missing".into()]));
    assert_eq!(analysis, Ok(Some(fake.analysis())));
    let sent = fake.requests_to("POST", "/daemon/analyze-stack");
    assert_eq!(sent.len(), 1);
    let bearer = sent[0].header("authorization").unwrap_or("").to_string();
    assert_eq!(
        bearer,
        format!("Bearer {}", tokens["accessToken"].as_str().unwrap())
    );
    let body = sent[0].json();
    assert_eq!(
        sorted_keys(&body),
        [
            "components",
            "helmRelease",
            "namespace",
            "primaryPod",
            "timestamp"
        ]
    );
    assert_eq!(body["primaryPod"], "web-7d4b9c6f8-aaaaa");
    assert_eq!(body["helmRelease"], "web");
    assert_eq!(body["namespace"], "shop");
    assert_eq!(body["timestamp"], "2025-11-25T21:00:00.000Z");
    let c = &body["components"][0];
    assert_eq!(c["podName"], "web-7d4b9c6f8-aaaaa");
    assert_eq!(c["status"]["phase"], "Running");
    assert_eq!(
        c["status"]["containerStates"][0]["state"],
        "Waiting: CrashLoopBackOff"
    );
    assert_eq!(
        c["events"][0],
        "Warning BackOff (x12): Back-off restarting failed container"
    );
    assert_eq!(c["logs"], json!(["[main:app] panic: DATABASE_URL missing"]));
    assert_eq!(counter(&m, |m| &m.counters.backend_reports), 1);

    // A resolved incident is not sent.
    let mut resolved = item(vec![]);
    resolved.incident.state = State::Resolved;
    assert_eq!(b.analyze(&resolved), Ok(None));
    assert_eq!(fake.count("POST", "/daemon/analyze-stack"), 1);

    assert_no_token_leak(&fake, &b, &[]);
}

#[test]
fn refreshes_tokens_before_they_expire_always_with_the_backend_id() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    // 2 s tokens: refreshed after about 1 s (half the lifetime below 4 min).
    fake.set_token_lifetime(2);
    let tmp = TempDir::new("backend-refresh");
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    wait_registered(&b);
    assert!(
        wait_until(WAIT, || fake.count("POST", "/auth/cluster/refresh") >= 4),
        "proactive refreshes: {}",
        fake.count("POST", "/auth/cluster/refresh")
    );
    let backend_id = fake.clusters()[0].id.clone();
    for r in fake.requests_to("POST", "/auth/cluster/refresh") {
        assert_eq!(r.json()["clusterId"], backend_id.as_str());
        assert_eq!(r.status, 200, "every refresh used a live token");
    }
    // Only the first token came from the listing.
    assert_eq!(fake.count("GET", "/auth/cluster/tokens"), 1);
    assert!(matches!(b.analyze(&item(vec![])), Ok(Some(_))));
    // tokens.json follows the refreshes.
    let saved = read_json(tmp.join("tokens.json"));
    let live = fake.live_access_tokens();
    assert!(
        wait_until(WAIT, || {
            let saved = read_json(tmp.join("tokens.json"));
            fake.live_access_tokens()
                .iter()
                .any(|t| saved["accessToken"] == t.as_str())
        }),
        "saved {saved} live {live:?}"
    );
    assert_no_token_leak(&fake, &b, &[]);
}

#[test]
fn revoked_tokens_are_fetched_again_when_analyze_meets_a_401() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    let tmp = TempDir::new("backend-revoke");
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    wait_registered(&b);
    assert!(matches!(b.analyze(&item(vec![])), Ok(Some(_))));

    fake.revoke_tokens();
    // 401 → refresh answers 401 → #3 + exchange → sent again.
    let answer = b.analyze(&item(vec![]));
    assert_eq!(answer, Ok(Some(fake.analysis())));
    let statuses: Vec<u16> = fake
        .requests_to("POST", "/daemon/analyze-stack")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [201, 401, 201]);
    let refreshes: Vec<u16> = fake
        .requests_to("POST", "/auth/cluster/refresh")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(refreshes, [200, 401, 200]);
    assert_eq!(fake.count("GET", "/auth/cluster/tokens"), 2);
    assert_eq!(b.status(), "registered");
    assert!(counter(&m, |m| &m.counters.backend_failures) >= 2);
    assert_eq!(counter(&m, |m| &m.counters.backend_reports), 2);
    assert_no_token_leak(&fake, &b, &[format!("{answer:?}")]);
}

#[test]
fn a_refused_proactive_refresh_fetches_tokens_again() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    fake.set_token_lifetime(2);
    let tmp = TempDir::new("backend-refused");
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    wait_registered(&b);
    fake.revoke_tokens();
    // The next proactive refresh is refused (401) and the thread fetches tokens again
    // instead of going quiet like the original.
    assert!(
        wait_until(WAIT, || fake.count("GET", "/auth/cluster/tokens") >= 2),
        "{}",
        b.status()
    );
    assert!(
        fake.requests_to("POST", "/auth/cluster/refresh")
            .iter()
            .any(|r| r.status == 401)
    );
    wait_registered(&b);
    assert!(matches!(b.analyze(&item(vec![])), Ok(Some(_))));
    if capture().is_some() {
        assert!(
            logs()
                .iter()
                .any(|l| l.contains("refresh refused")
                    && l.contains("Invalid refresh token <redacted>")),
            "the refusal is logged, token scrubbed"
        );
    }
    assert_no_token_leak(&fake, &b, &[]);
}

#[test]
fn a_restart_resumes_from_the_state_files() {
    // Registered: no second registration, and valid saved tokens are reused.
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    let tmp = TempDir::new("backend-restart");
    let m = metrics();
    let first = start(&fake, tmp.path(), &m);
    wait_registered(&first);
    assert!(matches!(first.analyze(&item(vec![])), Ok(Some(_))));
    drop(first);

    let second = start(&fake, tmp.path(), &m);
    wait_registered(&second);
    assert!(matches!(second.analyze(&item(vec![])), Ok(Some(_))));
    assert_eq!(fake.count("POST", "/clusters"), 1, "not registered again");
    assert_eq!(
        fake.count("GET", "/auth/cluster/tokens"),
        1,
        "saved tokens reused"
    );
    assert_eq!(fake.count("POST", "/auth/cluster/refresh"), 1);

    // Pending: the new process checks the claim instead of registering again.
    let fake = FakeBackend::start();
    let tmp = TempDir::new("backend-restart-pending");
    let first = start(&fake, tmp.path(), &m);
    assert!(wait_until(WAIT, || first.status().starts_with("pending")));
    drop(first);
    let second = start(&fake, tmp.path(), &m);
    let check_path = format!("/clusters/clu_{UID}");
    let before = fake.count("GET", &check_path);
    assert!(wait_until(WAIT, || fake.count("GET", &check_path) > before + 1));
    assert_eq!(
        second.status(),
        format!("pending: claim at {}", claim_url())
    );
    fake.set_claimed(true);
    wait_registered(&second);
    assert_eq!(fake.count("POST", "/clusters"), 1);
}

#[test]
fn a_cluster_id_error_is_retried_and_never_replaced_by_a_random_id() {
    let fake = FakeBackend::start();
    let tmp = TempDir::new("backend-noid");
    let dir = tmp.join("state");
    let m = metrics();
    let allow = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(0u32));
    let (a, n) = (allow.clone(), calls.clone());
    capture();
    let b = Backend::start_with(
        &settings(&fake, &dir),
        move || {
            *n.lock().unwrap() += 1;
            if a.load(Ordering::SeqCst) {
                Ok(UID.to_string())
            } else {
                Err("namespaces \"kube-system\" is forbidden".to_string())
            }
        },
        m.clone(),
        timing(),
    );
    assert!(wait_until(WAIT, || *calls.lock().unwrap() >= 3));
    assert!(
        b.status()
            .starts_with("error: cannot read the cluster id (namespace kube-system)"),
        "{}",
        b.status()
    );
    assert!(b.status().contains("forbidden"));
    assert_eq!(b.analyze(&item(vec![])), Ok(None));
    assert!(fake.requests().is_empty(), "nothing sent without a real id");
    assert!(!dir.exists(), "nothing saved without a real id");

    allow.store(true, Ordering::SeqCst);
    assert!(wait_until(WAIT, || b.status().starts_with("pending")));
    let reg = fake.requests_to("POST", "/clusters");
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0].json()["externalRefId"], format!("clu_{UID}"));
}

#[test]
fn a_saved_registration_of_another_cluster_is_discarded() {
    let fake = FakeBackend::start();
    let tmp = TempDir::new("backend-mismatch");
    // As the original wrote them (numeric backend id, clu_ id in tokens.json).
    std::fs::write(
        tmp.join("cluster.json"),
        r#"{"cluster_id":"clu_other","cluster_name":"old","user_email":"ops@example.com",
            "registered_at":"2025-01-01T00:00:00.000Z","is_claimed":true,"org_id":"org_9",
            "cluster_foreign_id":999}"#,
    )
    .unwrap();
    std::fs::write(
        tmp.join("tokens.json"),
        r#"{"accessToken":"at_old","refreshToken":"rt_old","expiresIn":3600,
            "expiresAt":99999999999999,"clusterId":"clu_other","orgId":"org_9"}"#,
    )
    .unwrap();
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    assert!(
        wait_until(WAIT, || b.status().starts_with("pending")),
        "{}",
        b.status()
    );
    assert!(!tmp.join("cluster.json").exists());
    assert!(!tmp.join("tokens.json").exists());
    assert_eq!(
        read_json(tmp.join("pending.json"))["cluster_id"],
        format!("clu_{UID}")
    );
    assert_eq!(
        fake.requests_to("POST", "/clusters")[0].json()["externalRefId"],
        format!("clu_{UID}")
    );
}

#[test]
fn failures_are_retried_by_the_thread_and_classified_for_the_pool() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    fake.fail_next("POST", "/clusters", 3, 500);
    let tmp = TempDir::new("backend-failures");
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    wait_registered(&b);
    let statuses: Vec<u16> = fake
        .requests_to("POST", "/clusters")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 500, 500, 201]);
    assert!(counter(&m, |m| &m.counters.backend_failures) >= 3);

    fake.fail_next("POST", "/daemon/analyze-stack", 1, 503);
    match b.analyze(&item(vec![])) {
        Err(Failure::Retry { why, .. }) => assert!(why.contains("HTTP 503"), "{why}"),
        other => panic!("{other:?}"),
    }
    fake.fail_next("POST", "/daemon/analyze-stack", 1, 400);
    assert!(matches!(
        b.analyze(&item(vec![])),
        Err(Failure::Permanent(_))
    ));
    assert!(matches!(b.analyze(&item(vec![])), Ok(Some(_))));

    // The listing empty at first: registered, no tokens yet, retried until there are.
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    fake.set_tokens_available(false);
    let tmp = TempDir::new("backend-notokens");
    let b = start(&fake, tmp.path(), &m);
    assert!(
        wait_until(WAIT, || b.status().starts_with("registered, no tokens yet")),
        "{}",
        b.status()
    );
    assert_eq!(b.analyze(&item(vec![])), Ok(None));
    assert!(wait_until(WAIT, || fake
        .count("GET", "/auth/cluster/tokens")
        >= 2));
    fake.set_tokens_available(true);
    wait_registered(&b);
    assert!(matches!(b.analyze(&item(vec![])), Ok(Some(_))));

    // A pending cluster the backend forgot is registered again.
    let fake = FakeBackend::start();
    let tmp = TempDir::new("backend-forgot");
    let b = start(&fake, tmp.path(), &m);
    assert!(wait_until(WAIT, || b.status().starts_with("pending")));
    fake.forget_clusters();
    assert!(wait_until(WAIT, || fake.count("POST", "/clusters") >= 2));
    assert!(wait_until(WAIT, || b.status().starts_with("pending")));
}

#[test]
fn a_huge_log_is_capped_in_the_payload() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    let tmp = TempDir::new("backend-cap");
    let m = metrics();
    let b = start(&fake, tmp.path(), &m);
    wait_registered(&b);
    let logs: Vec<String> = (0..50_000)
        .map(|i| format!("{i:05} {}", "x".repeat(200)))
        .collect();
    assert!(matches!(b.analyze(&item(logs)), Ok(Some(_))));
    let sent = fake.requests_to("POST", "/daemon/analyze-stack");
    let body = &sent[0].body;
    assert!(body.len() <= 64 * 1024, "{} bytes", body.len());
    let v = sent[0].json();
    let lines = v["components"][0]["logs"].as_array().unwrap();
    assert!(lines[0].as_str().unwrap().contains("omitted (size cap)"));
    assert!(
        lines
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("[main:app] 49999 ")
    );
}

#[test]
fn a_state_dir_that_cannot_be_written_is_logged_truthfully() {
    let fake = FakeBackend::start();
    fake.set_claim_on_register(true);
    let tmp = TempDir::new("backend-unwritable");
    // A directory below a regular file cannot be created (ENOTDIR), which
    // fails every write the way ENOSPC or a read-only volume does, even as root.
    let blocker = tmp.join("blocker");
    std::fs::write(&blocker, "").unwrap();
    let dir = blocker.join("state");
    let m = metrics();
    let b = start(&fake, &dir, &m);
    wait_registered(&b);
    assert_eq!(b.analyze(&item(vec![])).map(|a| a.is_some()), Ok(true));
    let Some(_) = capture() else {
        return; // another logger took the log: nothing to read
    };
    let logs = logs();
    let ours: Vec<&String> = logs
        .iter()
        .filter(|l| l.contains(&*dir.to_string_lossy()))
        .collect();
    assert!(
        ours.iter()
            .any(|l| l.contains("tokens received but not stored")),
        "{ours:#?}"
    );
    assert!(
        !ours
            .iter()
            .any(|l| l.contains("and stored") || l.contains("stored successfully")),
        "{ours:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.contains("stored successfully")),
        "no success is claimed after a failed write"
    );
}
