/*!
The LLM second opinion against a fake OpenAI-compatible server
(`util::fake_llm`), at library level: an `Item` is built from a kubelet-shaped
pod fixture, classified and diagnosed by the real rules, then handed to
`LlmClient::second_opinion` as a delivery worker would.

What is checked: the answer and the request's shape, the time budget, every
failure leaving the rules' diagnosis alone (and counted), the cache, and that
no secret from the events or logs reaches the LLM while the rest does.
*/

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use opsctrl_daemon::detect::classify::{NothingKnown, Thresholds, classify};
use opsctrl_daemon::detect::workload::workload_of;
use opsctrl_daemon::diagnose::llm::LlmClient;
use opsctrl_daemon::diagnose::{Context, diagnose};
use opsctrl_daemon::kube::types::Pod;
use opsctrl_daemon::metrics::Metrics;
use opsctrl_daemon::model::Item;
use opsctrl_daemon::model::PodRecord;
use opsctrl_daemon::model::{Incident, State};
use opsctrl_daemon::secret::Secret;
use opsctrl_daemon::settings::{DiagnosisSettings, Llm};
use opsctrl_daemon::util::time::parse_rfc3339;
use serde_json::json;

use crate::util::fake_llm::{DEFAULT_ANSWER, FakeLlm, Mode};

const KEY: &str = "sk-test-0123456789abcdefghijklmn";
const MODEL: &str = "llama3.1:8b";

/// A crash-looping `api` container of Deployment shop/api (the
/// `crashloop-error` fixture), diagnosed by the rules with these lines.
fn item_with(events: &[&str], logs: &[&str]) -> Item {
    let json = include_str!("fixtures/pods/crashloop-error.json");
    let pod = PodRecord::from(serde_json::from_str::<Pod>(json).expect("fixture parses"));
    let now = parse_rfc3339("2024-05-14T10:00:00Z").expect("a time");
    let finding = classify(&pod, &NothingKnown, now, &Thresholds::default())
        .into_iter()
        .next()
        .expect("the fixture fails");
    let workload = workload_of(&pod);
    let events: Vec<String> = events.iter().map(|s| s.to_string()).collect();
    let logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
    let diagnosis = diagnose(&Context {
        finding: &finding,
        pod: &pod,
        workload: &workload,
        events: &events,
        logs: &logs,
        rollout: &opsctrl_daemon::model::Rollout::Steady,
    });
    Item {
        incident: Incident {
            id: 1,
            cluster: "prod".into(),
            namespace: pod.namespace.to_string(),
            workload,
            revision: None,
            pods: vec![pod.name.to_string()],
            finding,
            first_seen_ms: now * 1000,
            detected_ms: now * 1000,
            last_seen_ms: now * 1000,
            affected: Vec::new(),
            state: State::Open,
        },
        diagnosis: Some(diagnosis),
        events,
        logs,
        facts: Vec::new(),
    }
}

fn item() -> Item {
    item_with(
        &[
            "Warning BackOff (x12): Back-off restarting failed container api in pod api-5f6d8b9c4-q7w2z_shop",
        ],
        &["panic: open /etc/api/config.yaml: no such file or directory"],
    )
}

/// The same failure in another workload: another fingerprint.
fn other_item() -> Item {
    let mut it = item();
    it.incident.id = 2;
    it.incident.workload.name = "billing".into();
    it
}

fn client(fake: &FakeLlm, key: Option<&str>, timeout: Duration) -> (LlmClient, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new(&[], 5));
    let llm = Llm {
        base_url: fake.base_url(),
        model: MODEL.into(),
        api_key: key.map(Secret::new),
    };
    let settings = DiagnosisSettings {
        llm: Some(llm.clone()),
        ..DiagnosisSettings::default()
    };
    let c = LlmClient::with_timeout(&llm, &settings, Arc::clone(&metrics), timeout);
    (c, metrics)
}

/// (requests, failures, cache hits, cache misses)
fn counts(m: &Metrics) -> (u64, u64, u64, u64) {
    let c = &m.counters;
    (
        c.llm_requests.load(Ordering::Relaxed),
        c.llm_failures.load(Ordering::Relaxed),
        c.llm_cache_hits.load(Ordering::Relaxed),
        c.llm_cache_misses.load(Ordering::Relaxed),
    )
}

const T: Duration = Duration::from_secs(10);

#[test]
fn answer_is_attached_and_the_request_is_openai_shaped() {
    let fake = FakeLlm::start();
    let (c, m) = client(&fake, Some(KEY), T);
    let it = item();
    let ai = c.second_opinion(&it).expect("an answer");
    assert_eq!(ai, json!({"model": MODEL, "answer": DEFAULT_ANSWER}));
    assert_eq!(counts(&m), (1, 0, 0, 1));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json"))
    );
    let body = r.json();
    assert_eq!(body["model"], MODEL);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_tokens"], 600);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    let user = r.message("user");
    let d = it.diagnosis.as_ref().expect("diagnosed");
    for want in [
        "CrashLoopBackOff",
        "Deployment api in namespace shop",
        "Container: api",
        "Image: registry.example.com/shop/api:2.8.0",
        "Exit code: 2",
        "Restarts: 14",
        d.cause.as_str(),
        &d.fix.commands[0],
        "Warning BackOff (x12)",
        "panic: open /etc/api/config.yaml: no such file or directory",
    ] {
        assert!(user.contains(want), "{want:?} missing from:\n{user}");
    }
    assert!(user.len() <= opsctrl_daemon::diagnose::llm::MAX_PROMPT);
}

#[test]
fn without_a_key_sends_no_authorization_header() {
    let fake = FakeLlm::start();
    let (c, _) = client(&fake, None, T);
    assert!(c.second_opinion(&item()).is_some());
    assert_eq!(fake.requests()[0].header("authorization"), None);
    // An empty key counts as none.
    let (c, _) = client(&fake, Some(""), T);
    assert!(c.second_opinion(&other_item()).is_some());
    assert_eq!(fake.requests()[1].header("authorization"), None);
}

#[test]
fn hanging_times_out_fast_and_pauses_further_requests() {
    let fake = FakeLlm::start();
    fake.set_mode(Mode::Hang(Duration::from_secs(10)));
    let (c, m) = client(&fake, Some(KEY), Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(c.second_opinion(&item()), None);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(counts(&m), (1, 1, 0, 1));
    // The LLM is unavailable: the next incident does not wait for it again.
    fake.set_mode(Mode::Ok);
    let t = Instant::now();
    assert_eq!(c.second_opinion(&other_item()), None);
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(counts(&m), (1, 1, 0, 2));
}

#[test]
fn server_error_is_a_failure_and_the_rules_stand() {
    let fake = FakeLlm::start();
    fake.set_mode(Mode::ServerError);
    let (c, m) = client(&fake, Some(KEY), T);
    assert_eq!(c.second_opinion(&item()), None);
    assert_eq!(counts(&m), (1, 1, 0, 1));
    // Nothing was cached, and the pause holds back the next request.
    fake.set_mode(Mode::Ok);
    assert_eq!(c.second_opinion(&item()), None);
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn malformed_or_empty_answers_are_failures_without_a_pause() {
    let fake = FakeLlm::start();
    let (c, m) = client(&fake, Some(KEY), T);
    fake.set_mode(Mode::Malformed);
    assert_eq!(c.second_opinion(&item()), None);
    fake.set_mode(Mode::Empty);
    assert_eq!(c.second_opinion(&item()), None);
    assert_eq!(counts(&m), (2, 2, 0, 2));
    // The service is up, only that answer was bad: the next one is asked for.
    fake.set_mode(Mode::Ok);
    assert!(c.second_opinion(&item()).is_some());
    assert_eq!(counts(&m), (3, 2, 0, 3));
}

#[test]
fn wrong_key_is_refused_and_each_incident_tries_again() {
    let fake = FakeLlm::start();
    fake.require_key(Some(KEY));
    let (c, m) = client(&fake, Some("sk-wrong-abcdefghijklmnopqrstuv"), T);
    assert_eq!(c.second_opinion(&item()), None);
    assert_eq!(c.second_opinion(&other_item()), None);
    // A 401 is a configuration problem, not an outage: no pause.
    assert_eq!(counts(&m), (2, 2, 0, 2));
    let (good, _) = client(&fake, Some(KEY), T);
    assert!(good.second_opinion(&item()).is_some());
}

#[test]
fn answers_are_cached_by_incident_fingerprint() {
    let fake = FakeLlm::start();
    let (c, m) = client(&fake, Some(KEY), T);
    let first = c.second_opinion(&item()).expect("an answer");
    // The same failure again, later, in a new pod of the same Deployment.
    let mut again = item();
    again.incident.pods = vec!["api-5f6d8b9c4-zzzzz".into()];
    again.incident.finding.pod = "api-5f6d8b9c4-zzzzz".into();
    again.incident.finding.restart_count = Some(15);
    again.incident.last_seen_ms += 60_000;
    again.incident.state = State::Updated;
    fake.set_answer("a different answer that must not be seen");
    assert_eq!(c.second_opinion(&again), Some(first));
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(counts(&m), (1, 0, 1, 1));

    // Another workload is another incident: a new request.
    let other = c.second_opinion(&other_item()).expect("an answer");
    assert_eq!(other["answer"], "a different answer that must not be seen");
    assert_eq!(fake.requests().len(), 2);
    // And another exit code of the same workload too.
    let mut oom = item();
    oom.incident.finding.exit_code = Some(137);
    assert!(c.second_opinion(&oom).is_some());
    assert_eq!(counts(&m), (3, 0, 1, 3));
    // `/health` reads these: three answers held, one hit in four lookups.
    assert_eq!(m.counters.llm_cache_entries.load(Ordering::Relaxed), 3);
    assert_eq!(m.counters.llm_cache_hit_rate(), Some(0.25));
}

#[test]
fn from_settings_only_when_configured_and_enabled() {
    let m = Arc::new(Metrics::new(&[], 5));
    let llm = Llm {
        base_url: "http://localhost:11434/v1".into(),
        model: MODEL.into(),
        api_key: None,
    };
    assert!(LlmClient::from_settings(&DiagnosisSettings::default(), Arc::clone(&m)).is_none());
    let on = DiagnosisSettings {
        llm: Some(llm),
        ..DiagnosisSettings::default()
    };
    assert!(LlmClient::from_settings(&on, Arc::clone(&m)).is_some());
    let off = DiagnosisSettings {
        enabled: false,
        ..on
    };
    assert!(LlmClient::from_settings(&off, m).is_none());
}

#[test]
fn never_receives_secrets_from_events_or_logs() {
    let fake = FakeLlm::start();
    let (c, _) = client(&fake, Some(KEY), T);
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhcGkifQ.c2lnbmF0dXJlLXZhbHVl";
    let events = [
        "Warning Failed: Error: couldn't find key DB_PASSWORD in Secret shop/db-creds",
        "Warning BackOff (x12): Back-off restarting failed container api",
        "Normal Pulled: pulled registry.example.com/shop/api:2.8.0 for ops@example.com from 10.42.7.19",
    ];
    let logs = [
        "starting api v2.8.0 with env:",
        "PASSWORD=hunter2",
        "DATABASE_URL=postgres://api:Tr0ub4dor&3@db.shop.svc:5432/orders",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "SLACK_TOKEN=xoxb-2048-4096-AbCdEfGhIjKlMnOp",
        "calling billing with Authorization: Bearer s3cr3t-b3arer-t0ken",
        &format!("session cookie {jwt}"),
        "{\"level\":\"error\",\"api_key\":\"k-9f8e7d6c5b4a\",\"msg\":\"upstream refused\"}",
        "admin contact: jane.doe@example.org, peer 2001:db8::42",
        "dial tcp 10.0.3.7:5432: connect: connection refused",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAtopsecretkeymaterial",
        "-----END RSA PRIVATE KEY-----",
        "panic: open /etc/api/config.yaml: no such file or directory",
    ];
    let mut it = item_with(&events, &logs);
    // The failure's own message quotes the log tail too.
    it.incident.finding.message = "container failed: token=abc123xyz".into();
    assert!(c.second_opinion(&it).is_some());
    let r = &fake.requests()[0];
    let sent = format!("{}\n{}", r.body, r.message("user"));
    for secret in [
        "hunter2",
        "Tr0ub4dor",
        "wJalrXUtnFEMI",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-2048",
        "s3cr3t-b3arer-t0ken",
        "eyJhbGciOiJIUzI1NiIs",
        "k-9f8e7d6c5b4a",
        "jane.doe",
        "ops@example.com",
        "2001:db8::42",
        "10.0.3.7",
        "10.42.7.19",
        "topsecretkeymaterial",
        "abc123xyz",
        KEY,
    ] {
        assert!(
            !sent.contains(secret),
            "{secret:?} reached the LLM:\n{sent}"
        );
    }
    let user = r.message("user");
    for kept in [
        "couldn't find key DB_PASSWORD in Secret shop/db-creds",
        "\"DB_PASSWORD\":\"<value>\"",
        "Back-off restarting failed container api",
        "postgres://api:[REDACTED]@db.shop.svc:5432/orders",
        "Authorization: Bearer [REDACTED]",
        "AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key]",
        "[REDACTED:private-key]",
        "connect: connection refused",
        "\"msg\":\"upstream refused\"",
        "panic: open /etc/api/config.yaml: no such file or directory",
        "starting api v2.8.0 with env:",
    ] {
        assert!(user.contains(kept), "{kept:?} missing from:\n{user}");
    }
}
