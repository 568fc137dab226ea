//! Nothing secret leaves the cluster: env values, tokens, passwords, emails
//! and IPs put into a failing pod's spec, termination message, events and
//! logs reach neither the LLM, the OpsCtrl backend, a webhook, Slack, nor
//! the stdout record — while the useful, non-secret text does.

use std::time::Duration;

use serde_json::json;

use crate::util::daemon::Daemon;
use crate::util::fake_api::{Auth, FakeApi, rfc3339_now};
use crate::util::fake_backend::FakeBackend;
use crate::util::fake_llm::FakeLlm;
use crate::util::fake_receiver::FakeReceiver;
use crate::util::fake_slack::FakeSlack;
use crate::util::{TempDir, pod, wait_until};

const T: Duration = Duration::from_secs(40);

/// Each must never leave the daemon.
const SECRETS: &[&str] = &[
    "env-value-0xDEADBEEF",
    "hunter2-LOGSECRET",
    "pgpass-LOGSECRET",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2dzZWNyZXQifQ",
    "EVENTSECRET1234567890",
    "admin@example.com",
    "10.20.30.40",
    "TERMSECRET-42",
    "AKIAIOSFODNN7EXAMPLE",
    "MyS3cretPw1",
    "rootpw-LOGSECRET9",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "cli-LOGSECRET7",
    "s3cr3tLOG77",
    "Pass2024LOG",
];

fn leaks(what: &str, text: &str) -> Vec<String> {
    SECRETS
        .iter()
        .filter(|s| text.contains(*s))
        .map(|s| format!("{what} carries {s:?}"))
        .collect()
}

#[test]
fn secrets_in_pod_output_reach_no_llm_backend_alert_or_record() {
    let api = FakeApi::start();
    api.add_namespace("kube-system");
    let llm = FakeLlm::start();
    let backend = FakeBackend::start();
    backend.set_claim_on_register(true);
    let hook = FakeReceiver::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("secrecy");

    let name = "pay-5f6d7c8b9-aaaaa";
    let uid = "5ec7e700-0000-4000-8000-000000000001";
    let mut p = pod("shop", name).uid(uid).crash_loop(5, 1, "Error").build();
    p["spec"]["containers"][0]["env"] = json!([
        {"name": "DB_PASSWORD", "value": "env-value-0xDEADBEEF"},
        {"name": "AWS_ACCESS_KEY_ID", "value": "AKIAIOSFODNN7EXAMPLE"}
    ]);
    // kubelet's FallbackToLogsOnError copies the log tail into the message.
    p["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"] =
        json!("fatal: cannot start, DB_PASSWORD=TERMSECRET-42 rejected by 10.20.30.40");
    api.set_pod_log(
        "shop",
        name,
        "app",
        true,
        "connecting with password=hunter2-LOGSECRET\n\
         dsn postgres://app:pgpass-LOGSECRET@db.shop.svc:5432/pay\n\
         Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2dzZWNyZXQifQ.c2lnbmF0dXJl\n\
         init: mysql -uroot -pMyS3cretPw1 -h db.shop.svc\n\
         env MYSQL_ROOT_PASSWORD rootpw-LOGSECRET9\n\
         aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n\
         migrate --password cli-LOGSECRET7 --db pay\n\
         signing with secret s3cr3tLOG77; login pass Pass2024LOG\n\
         panic: connection refused by payments upstream\n",
    );
    api.add_event(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.secret"), "namespace": "shop"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": name, "uid": uid},
        "type": "Warning", "reason": "Failed",
        "message": "pull with token=EVENTSECRET1234567890 for admin@example.com from 10.20.30.40 failed",
        "count": 3, "lastTimestamp": rfc3339_now(),
    }));

    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let (llm_url, backend_url, hook_url, slack_url) = (
        llm.base_url(),
        backend.url(),
        hook.url("/hook"),
        slack.webhook_url(),
    );
    let state = home.join("state");
    let state_dir = state.to_string_lossy().to_string();
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("OUTPUT", "json"),
            ("NOTIFY_BATCH_MS", "0"),
            ("CLUSTER_NAME", "edge-1"),
            ("INCLUDE_LOGS", "true"),
            ("LLM_BASE_URL", &llm_url),
            ("LLM_MODEL", "test-model"),
            ("OPSCTRL_BACKEND_URL", &backend_url),
            ("USER_EMAIL", "ops@example.org"),
            ("OPSCTRL_STATE_DIR", &state_dir),
            ("WEBHOOK_URL", &hook_url),
            ("SLACK_WEBHOOK_URL", &slack_url),
        ],
    );
    d.wait_ready();
    d.wait("the backend registered", T, |d| {
        d.get("/health")
            .is_some_and(|(_, body)| body.contains("\"registered\""))
    });

    api.upsert_pod(p);
    assert!(
        wait_until(T, || {
            !hook.received().is_empty()
                && !slack.messages().is_empty()
                && backend.count("POST", "/daemon/analyze-stack") > 0
                && !llm.requests().is_empty()
        }),
        "every sink got the incident: hook {} slack {} backend {} llm {}\n{}",
        hook.received().len(),
        slack.messages().len(),
        backend.count("POST", "/daemon/analyze-stack"),
        llm.requests().len(),
        d.logs()
    );

    let mut found = Vec::new();
    let llm_bodies: String = llm.requests().iter().map(|r| r.body.clone()).collect();
    found.extend(leaks("the LLM request", &llm_bodies));
    let backend_bodies: String = backend
        .requests_to("POST", "/daemon/analyze-stack")
        .iter()
        .map(|r| r.body.clone())
        .collect();
    found.extend(leaks("the backend report", &backend_bodies));
    let hook_bodies: String = hook
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    found.extend(leaks("the webhook", &hook_bodies));
    let slack_bodies: String = slack
        .messages()
        .iter()
        .map(|m| format!("{} {}", m.text, m.blocks))
        .collect();
    found.extend(leaks("Slack", &slack_bodies));
    let stdout: String = d.records().iter().map(|r| r.to_string()).collect();
    found.extend(leaks("the stdout record", &stdout));
    found.extend(leaks("the daemon's log", &d.logs()));
    assert!(found.is_empty(), "{found:#?}");

    // What is useful still arrives: the log's reason, the event, the env *names*.
    for (what, text) in [("LLM", &llm_bodies), ("webhook", &hook_bodies)] {
        assert!(
            text.contains("connection refused by payments upstream"),
            "{what} lost the log line"
        );
        assert!(text.contains("DB_PASSWORD"), "{what} lost the env name");
    }
    // The LLM's and the backend's answers ride along in the alert.
    let alert = hook.received()[0].json();
    let diag = &alert["diagnosis"];
    assert_eq!(diag["cause"], "connection_refused", "{alert}");
    assert!(
        diag["ai"]["answer"]
            .as_str()
            .is_some_and(|a| a.contains("DATABASE_URL")),
        "{alert}"
    );
    assert_eq!(diag["ai"]["model"], "test-model");
    assert!(diag["backend"].is_object(), "{alert}");
    assert!(
        backend_bodies.contains("connection refused by payments upstream"),
        "backend lost the log line: {backend_bodies}"
    );
    d.terminate();
}

/// Planted credentials of every kind the daemon holds. None has a shape the
/// redactor knows, so none may be written anywhere at all (not even
/// redacted): they can only leak through wire-level logging of the raw
/// traffic, or a log line of ours that prints them.
const SA_TOKEN: &str = "satoken-PLANTED-6b1d2e7f0a";
const LLM_KEY: &str = "llmkey-PLANTED-51c0ffee77";
const HOOK_AUTH: &str = "hookauth-PLANTED-9e3a11d4";
const POD_SECRET: &str = "podenv-PLANTED-0ddba11";
const POD_SECRET_2: &str = "dbpass-PLANTED-feedf00d";

#[test]
fn trace_logging_writes_no_credential_anywhere() {
    use crate::util::fake_api::Options;
    use crate::util::fake_slack::WEBHOOK_PATH;

    let api = FakeApi::start_with(Options {
        token: Some(SA_TOKEN.into()),
        ..Options::default()
    });
    api.add_namespace("kube-system");
    let llm = FakeLlm::start();
    llm.require_key(Some(LLM_KEY));
    let backend = FakeBackend::start();
    backend.set_claim_on_register(true);
    let hook = FakeReceiver::start();
    let slack = FakeSlack::start();
    let home = TempDir::new("secrecy-trace");

    let name = "trace-5f6d7c8b9-aaaaa";
    let mut p = pod("shop", name).crash_loop(5, 1, "Error").build();
    p["spec"]["containers"][0]["env"] = json!([
        {"name": "API_TOKEN", "value": POD_SECRET},
        {"name": "DATABASE_PASSWORD", "value": POD_SECRET_2}
    ]);
    api.set_pod_log(
        "shop",
        name,
        "app",
        true,
        "panic: connection refused by payments upstream\n",
    );

    let kc = api.write_kubeconfig(home.path(), Auth::Token);
    let state = home.join("state");
    let (llm_url, backend_url, hook_url, slack_url, state_dir) = (
        llm.base_url(),
        backend.url(),
        hook.url("/hook"),
        slack.webhook_url(),
        state.to_string_lossy().to_string(),
    );
    let hook_auth = format!("Bearer {HOOK_AUTH}");
    let mut d = Daemon::start(
        home.path(),
        &kc,
        &[
            ("LOG_LEVEL", "trace"),
            ("CLUSTER_NAME", "edge-1"),
            ("OUTPUT", "json"),
            ("NOTIFY_BATCH_MS", "0"),
            ("INCLUDE_LOGS", "true"),
            ("EMIT_K8S_EVENTS", "true"),
            ("LLM_BASE_URL", &llm_url),
            ("LLM_MODEL", "test-model"),
            ("LLM_API_KEY", LLM_KEY),
            ("OPSCTRL_BACKEND_URL", &backend_url),
            ("USER_EMAIL", "ops@example.org"),
            ("OPSCTRL_STATE_DIR", &state_dir),
            ("WEBHOOK_URL", &hook_url),
            ("WEBHOOK_AUTH_HEADER", &hook_auth),
            ("SLACK_WEBHOOK_URL", &slack_url),
        ],
    );
    d.wait_ready();
    d.wait("the backend registered", T, |d| {
        d.get("/health")
            .is_some_and(|(_, body)| body.contains("\"registered\""))
    });
    api.upsert_pod(p);
    assert!(
        wait_until(T, || {
            !hook.received().is_empty()
                && !slack.messages().is_empty()
                && backend.count("POST", "/daemon/analyze-stack") > 0
                && !llm.requests().is_empty()
        }),
        "every sink got the incident\n{}",
        d.logs()
    );
    // The credentials were really in use (else the test proves nothing).
    assert_eq!(
        hook.received()[0].header("authorization"),
        Some(hook_auth.as_str())
    );
    assert!(
        llm.requests()[0]
            .header("authorization")
            .is_some_and(|h| h.contains(LLM_KEY))
    );
    // Let the Kubernetes Event and the last writes land, then stop.
    std::thread::sleep(Duration::from_secs(2));
    let stdout = d.stdout().join("\n");
    let (_, _, logs) = d.terminate();
    if let Some(p) = std::env::var_os("TRACE_LOG_DUMP") {
        std::fs::write(p, &logs).unwrap();
    }
    assert!(
        logs.contains(" TRACE ") || logs.contains("\"level\":\"trace\""),
        "trace level was on: {logs}"
    );

    let mut planted: Vec<String> = [SA_TOKEN, LLM_KEY, HOOK_AUTH, POD_SECRET, POD_SECRET_2]
        .iter()
        .map(|s| s.to_string())
        .collect();
    planted.push(WEBHOOK_PATH.to_string());
    planted.extend(backend.issued_tokens());
    let mut outputs = vec![("stderr", logs), ("stdout", stdout)];
    let bodies = |v: Vec<String>| v.join("\n");
    outputs.push((
        "the webhook bodies",
        bodies(
            hook.received()
                .iter()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .collect(),
        ),
    ));
    outputs.push((
        "the Slack messages",
        bodies(
            slack
                .messages()
                .iter()
                .map(|m| format!("{} {}", m.text, m.blocks))
                .collect(),
        ),
    ));
    outputs.push((
        "the LLM requests",
        bodies(llm.requests().iter().map(|r| r.body.clone()).collect()),
    ));
    outputs.push((
        "the backend requests",
        // (the refresh token must travel to /auth/cluster/refresh, nowhere else)
        bodies(
            backend
                .requests()
                .iter()
                .filter(|r| !r.path.starts_with("/auth/"))
                .map(|r| r.body.clone())
                .collect(),
        ),
    ));
    outputs.push((
        "the Kubernetes Events",
        bodies(api.events().iter().map(|e| e.to_string()).collect()),
    ));
    let mut found = Vec::new();
    for (what, text) in &outputs {
        for s in &planted {
            if text.contains(s.as_str()) {
                found.push(format!("{what} carries {s:?}"));
            }
        }
    }
    for (what, text) in &outputs {
        for l in text
            .lines()
            .filter(|l| planted.iter().any(|s| l.contains(s.as_str())))
        {
            eprintln!("{what}: {l}");
        }
    }
    assert!(found.is_empty(), "{found:#?}");
}
