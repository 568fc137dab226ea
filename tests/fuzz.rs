/*!
Property-based fuzzing (proptest) of everything that reads outside input,
in process and with bounded case counts so `cargo test` stays quick.

Targets and what must hold for every generated input:
- the watch-line decoder (`kube::types::decode_watch_line`): arbitrary bytes,
  arbitrary JSON, byte- and structure-mutated pod fixtures never panic; any
  JSON object decodes as a pod (wrong field types read as missing); a valid
  line decodes to the same `PodRecord` whatever its key order, whitespace,
  escapes or unknown extra fields;
- the kubeconfig parser and resolver (`kube::config::parse_kubeconfig`,
  `resolve`): YAML-ish token soup and mutated valid kubeconfigs never panic;
- settings resolution (`settings::resolve`): arbitrary values for every
  setting, as variables or flags, never panic; every problem names a real
  setting; accepted settings are within their documented ranges; secret
  values never appear in a problem;
- user rules (`diagnose::user_rules::parse`): arbitrary JSON and rule-shaped
  documents never panic; accepted rules then run over pods without panicking;
- routes and silences (`routing`): arbitrary text as a file, arbitrary JSON
  and route- or silence-shaped documents never panic; a plan names only
  configured sinks; a silence in force has the time inside its window; globs
  match as the textbook recursive definition says;
- detection and diagnosis: generated kubelet-shaped pods (any phase, state,
  exit code, restart count, timestamp, quantity, probe) go through the
  decoder, `classify`, `diagnose` (built-in rules, with arbitrary events and
  logs), `scan::incidents` and the scan table without panicking;
- `time::parse_rfc3339` never panics and round-trips `format_rfc3339`;
- the Slack renderer (`notify::slack`) and every other destination's
  (Teams, Discord, Telegram, ntfy, PagerDuty, Opsgenie, Alertmanager, each
  checked by its fake's rules): any incident, with huge or hostile
  messages, events, logs and names, in every state and grouping, renders
  within every limit of its service, and pod text never becomes a mention
  or a link.

`PROPTEST_CASES` overrides every target's case count (`scripts/fuzz.sh` uses
it for longer runs). A failure is shrunk to a minimal input, printed, and
its seed saved in `tests/fuzz.proptest-regressions`, which every run replays
first; commit that file, and add a named regression test for the input. The
seeds there now are the decoder failures (a field of the wrong type failing
the whole pod) fixed with this suite.

Big generators are boxed (`BoxedStrategy`): their value trees are deeply
nested types whose debug-build stack frames overflow a test thread.
*/

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use opsctrl_daemon::detect::classify::{NothingKnown, Thresholds, classify};
use opsctrl_daemon::detect::workload::workload_of;
use opsctrl_daemon::diagnose::rules::{Context, RuleSet};
use opsctrl_daemon::diagnose::user_rules;
use opsctrl_daemon::diagnose::vars::NAMES;
use opsctrl_daemon::kube::config::{merge, parse_kubeconfig, resolve};
use opsctrl_daemon::kube::types::{Pod, WatchEvent, decode_watch_line};
use opsctrl_daemon::model::Cause;
use opsctrl_daemon::model::FailureType;
use opsctrl_daemon::model::PodRecord;
use opsctrl_daemon::model::Rollout;
use opsctrl_daemon::model::Severity;
use opsctrl_daemon::routing;
use opsctrl_daemon::settings::{self, SETTINGS, Source};
use opsctrl_daemon::util::time::{format_rfc3339, parse_rfc3339};
use opsctrl_daemon::{output, scan};

use crate::util::TempDir;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// Runs `test` on `default_cases` inputs from `strategy` (or `PROPTEST_CASES`);
/// a failure (a panic included) is shrunk and reported with its minimal input.
fn check<S>(default_cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    check_weighted(default_cases, 1, strategy, test);
}

/// `check` for a target whose one case costs about `weight` ordinary ones
/// (the Slack renderer renders dozens of messages per case): it runs
/// `PROPTEST_CASES / weight` cases, so a `scripts/fuzz.sh` round stays even.
fn check_weighted<S>(
    default_cases: u32,
    weight: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map_or(default_cases, |n| (n / weight.max(1)).max(1));
    let config = Config {
        cases,
        // Failures are persisted beside this file (tests/fuzz.proptest-regressions)
        // and replayed first next time.
        source_file: Some(file!()),
        ..Config::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}

/// A tiny deterministic PRNG for choices inside one case (re-encodings), so a
/// case is reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.next() % n == 0
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Field names the decoder knows, so generated objects hit real fields.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "metadata", "spec", "status", "name", "namespace", "uid", "resourceVersion",
    "creationTimestamp", "deletionTimestamp", "ownerReferences", "annotations", "kind",
    "controller", "nodeName", "serviceAccountName", "imagePullSecrets", "containers",
    "initContainers", "image", "resources", "limits", "requests", "cpu", "memory", "livenessProbe",
    "readinessProbe", "startupProbe", "httpGet", "tcpSocket", "grpc", "exec", "path", "port",
    "timeoutSeconds", "periodSeconds", "failureThreshold", "phase", "reason", "message",
    "conditions", "type", "lastTransitionTime", "containerStatuses", "initContainerStatuses",
    "ready", "restartCount", "state", "lastState", "waiting", "running", "terminated", "exitCode",
    "signal", "startedAt", "finishedAt", "code", "opsctrl.dev/ignore", "items", "continue",
    "object",
];

/// Words kubelets, schedulers and users write, so generated pods reach the
/// classifier's and the rules' branches.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "Running", "Pending", "Failed", "Succeeded", "Unknown", "CrashLoopBackOff", "ImagePullBackOff",
    "ErrImagePull", "OOMKilled", "Error", "Completed", "ContainerCreating", "PodInitializing",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "StartError",
    "ContainerCannotRun", "InvalidImageName", "Evicted", "DeadlineExceeded", "Unschedulable",
    "PodScheduled", "Ready", "True", "False", "ReplicaSet", "Deployment", "StatefulSet",
    "DaemonSet", "Job", "CronJob", "Node", "true", "false", "web-7d4b9c6f8", "report-29012345",
    "web-7d4b9c6f8-aaaaa", "app", "init", "",
];

/// Messages kubelets, schedulers and applications write, which the rules read.
#[rustfmt::skip]
const MESSAGES: &[&str] = &[
    "back-off 5m0s restarting failed container=app pod=web_shop(uid)",
    "exec /app/server: exec format error",
    "exec: \"/app/start.sh\": stat /app/start.sh: no such file or directory: unknown",
    "dial tcp 10.0.0.5:5432: connect: connection refused",
    "dial tcp: lookup db.shop.svc on 10.43.0.10:53: no such host",
    "x509: certificate signed by unknown authority", "bind: address already in use",
    "open /data/x: permission denied", "write /data/x: no space left on device",
    "Liveness probe failed: HTTP probe failed with statuscode: 500",
    "Readiness probe failed: Get \"http://10.42.0.7:8080/ready\": context deadline exceeded",
    "Startup probe failed: command timed out", "configmap \"app-config\" not found",
    "secret \"db-password\" not found", "couldn't find key DB_URL in Secret shop/db",
    "0/3 nodes are available: 3 Insufficient cpu, 2 Insufficient memory.",
    "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}.",
    "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
    "pod has unbound immediate PersistentVolumeClaims",
    "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi.",
    "The node was low on resource: ephemeral-storage.",
    "Job was active longer than specified deadline",
    "failed to pull and unpack image \"r.example.com/a:1\": not found",
    "pull access denied, repository does not exist or may require authorization",
    "Segmentation fault (core dumped)", "Killed", "{{ns}}", "{{container}}", "%s %d %n",
];

#[rustfmt::skip]
const QUANTITIES: &[&str] = &[
    "128Mi", "1Gi", "1.5Gi", "500M", "250m", "2", "0", "0.5", "1e3", "1E3", "12e18", "9Ei",
    "99999999999999999999Ei", "0.000000001", "-1", "Mi", ".", "", "1.2.3", "1Qi", "1e400",
];

/// Values for one field: mostly from its own pool, so the classifier's and
/// the rules' branches are reached, sometimes any word or any string.
fn pick(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(pool).prop_map(String::from),
        1 => prop::sample::select(WORDS).prop_map(String::from),
        1 => any::<String>(),
    ]
    .boxed()
}

const PHASES: &[&str] = &["Running", "Pending", "Failed", "Succeeded", "Unknown"];
#[rustfmt::skip]
const WAITING: &[&str] = &[
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ContainerCreating",
    "PodInitializing", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
];
#[rustfmt::skip]
const TERMINATED: &[&str] = &[
    "OOMKilled", "Error", "Completed", "StartError", "ContainerCannotRun", "DeadlineExceeded",
    "ContainerStatusUnknown",
];
#[rustfmt::skip]
const POD_REASONS: &[&str] = &[
    "Evicted", "DeadlineExceeded", "NodeLost", "UnexpectedAdmissionError",
];
#[rustfmt::skip]
const COND_REASONS: &[&str] = &[
    "Unschedulable", "ContainersNotReady", "PodCompleted", "SchedulerError",
];
const CONTAINER_NAMES: &[&str] = &["app", "sidecar", "init"];
/// The long texts of `WORDS`: what kubelets, schedulers and apps write.
fn message() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(MESSAGES).prop_map(String::from),
        1 => any::<String>(),
    ]
    .boxed()
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(WORDS).prop_map(String::from),
        1 => prop::sample::select(MESSAGES).prop_map(String::from),
        1 => any::<String>(),
    ]
}

fn opt<T: Debug + Clone>(s: impl Strategy<Value = T>) -> impl Strategy<Value = Option<T>> {
    prop::option::weighted(0.8, s)
}

/// Timestamps around a fixed day (as the pod fixtures are), the calendar's
/// edges, and a few that are not timestamps at all.
const BASE: i64 = 1_715_680_800; // 2024-05-14T10:00:00Z

fn timestamp() -> BoxedStrategy<String> {
    prop_oneof![
        // Mostly the last hours before BASE, where "recent" and grace periods are decided.
        5 => (-7_200i64..600).prop_map(|d| format_rfc3339(BASE + d)),
        2 => (-3_000_000i64..3_000_000).prop_map(|d| format_rfc3339(BASE + d)),
        1 => prop::sample::select(&[
            "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:60Z", "2024-05-14T10:00:00.123456789+14:00", "2024-05-14 10:00:00Z",
            "not a time", "", "2024-13-01T00:00:00Z",
        ][..]).prop_map(String::from),
        1 => any::<String>(),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        word().prop_map(Value::from),
        timestamp().prop_map(Value::from),
    ]
    .boxed()
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// Any JSON value, keys mostly from the decoder's vocabulary.
fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(6, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

fn json_object() -> BoxedStrategy<Value> {
    prop::collection::vec((key(), json_value()), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
        .boxed()
}

fn event_type() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"][..])
}

/// A number, mostly in range for the field, sometimes anything JSON has.
fn number(max: i64) -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0..=max).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => leaf(),
    ]
}

fn container_state() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(json!({})),
        3 => (opt(pick(WAITING)), opt(message()))
            .prop_map(|(r, m)| json!({"waiting": {"reason": r, "message": m}})),
        2 => timestamp().prop_map(|t| json!({"running": {"startedAt": t}})),
        3 => (
            prop_oneof![4 => -2i32..256, 1 => any::<i32>()],
            opt(prop_oneof![Just(9), Just(15), any::<i32>()]),
            opt(pick(TERMINATED)),
            opt(message()),
            timestamp(),
            timestamp(),
        )
            .prop_map(|(c, s, r, m, st, fi)| {
                json!({"terminated": {"exitCode": c, "signal": s, "reason": r, "message": m,
                    "startedAt": st, "finishedAt": fi}})
            }),
        1 => json_value(),
    ]
    .boxed()
}

fn probe() -> BoxedStrategy<Value> {
    (
        prop::sample::select(&["httpGet", "tcpSocket", "grpc", "exec", "other"][..]),
        prop_oneof![Just(json!(8080)), Just(json!("http")), leaf()],
        number(120),
        number(120),
        number(30),
    )
        .prop_map(|(kind, port, t, p, f)| {
            let mut v = json!({"timeoutSeconds": t, "periodSeconds": p, "failureThreshold": f});
            let handler = match kind {
                "exec" => json!({"command": ["true"]}),
                _ => json!({"path": "/healthz", "port": port}),
            };
            v[kind] = handler;
            v
        })
        .boxed()
}

fn container_spec() -> BoxedStrategy<Value> {
    (
        pick(CONTAINER_NAMES),
        word(),
        opt(prop::sample::select(QUANTITIES)),
        opt(prop::sample::select(QUANTITIES)),
        opt(probe()),
        opt(probe()),
        opt(probe()),
    )
        .prop_map(
            |(name, image, mem, cpu, l, r, s): (String, String, _, _, _, _, _)| {
                json!({"name": name, "image": image,
                "resources": {"limits": {"memory": mem, "cpu": cpu}, "requests": {"memory": mem}},
                "livenessProbe": l, "readinessProbe": r, "startupProbe": s})
            },
        )
        .boxed()
}

fn container_status() -> BoxedStrategy<Value> {
    (
        pick(CONTAINER_NAMES),
        word(),
        any::<bool>(),
        number(200),
        container_state(),
        container_state(),
    )
        .prop_map(|(name, image, ready, restarts, state, last)| {
            json!({"name": name, "image": image, "ready": ready, "restartCount": restarts,
                "state": state, "lastState": last})
        })
        .boxed()
}

fn condition() -> BoxedStrategy<Value> {
    (
        prop::sample::select(&["PodScheduled", "Ready", "Initialized", "DisruptionTarget"][..]),
        prop::sample::select(&["True", "False", "Unknown", ""][..]),
        opt(pick(COND_REASONS)),
        opt(message()),
        timestamp(),
    )
        .prop_map(|(t, s, r, m, at)| {
            json!({"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": at})
        })
        .boxed()
}

/// A kubelet-shaped pod with arbitrary values in every field detection and
/// diagnosis read; now and then a field is replaced by any JSON at all.
fn pod() -> BoxedStrategy<Value> {
    let meta = (
        word(),
        prop::sample::select(&["shop", "default", "kube-system"][..]),
        timestamp(),
        opt(timestamp()),
        prop::collection::vec((word(), word(), opt(any::<bool>())), 0..3),
        opt(prop::sample::select(
            &["true", "TRUE ", "false", "maybe"][..],
        )),
    )
        .prop_map(|(name, ns, created, deleting, owners, ignore)| {
            let owners: Vec<Value> = owners
                .into_iter()
                .map(|(kind, name, controller)| {
                    json!({"kind": kind, "name": name, "controller": controller})
                })
                .collect();
            json!({"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                "resourceVersion": "7", "creationTimestamp": created, "deletionTimestamp": deleting,
                "ownerReferences": owners, "annotations": {"opsctrl.dev/ignore": ignore}})
        });
    let spec = (
        opt(word()),
        prop::collection::vec(container_spec(), 0..3),
        prop::collection::vec(container_spec(), 0..2),
    )
        .prop_map(|(node, containers, init)| {
            json!({"nodeName": node, "containers": containers, "initContainers": init,
                "serviceAccountName": "default", "imagePullSecrets": [{"name": "regcred"}]})
        });
    let status = (
        opt(pick(PHASES)),
        opt(pick(POD_REASONS)),
        opt(message()),
        prop::collection::vec(condition(), 0..3),
        prop::collection::vec(container_status(), 0..3),
        prop::collection::vec(container_status(), 0..2),
    )
        .prop_map(|(phase, reason, message, conditions, cs, ics)| {
            json!({"phase": phase, "reason": reason, "message": message, "conditions": conditions,
                "containerStatuses": cs, "initContainerStatuses": ics})
        });
    (meta, spec, status, opt(json_value()), any::<u64>())
        .prop_map(|(metadata, spec, status, odd, seed)| {
            let mut pod = json!({"metadata": metadata, "spec": spec, "status": status});
            if let Some(any) = odd {
                // Replace one random value somewhere in the pod with any JSON.
                let mut rng = Rng(seed | 1);
                let paths = value_paths(&pod);
                let at = &paths[rng.below(paths.len())];
                if let Some(slot) = pod.pointer_mut(at) {
                    *slot = any;
                }
            }
            pod
        })
        .boxed()
}

/// JSON pointers to every value inside `v` (the root excluded).
fn value_paths(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    walk(x, p, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    walk(x, p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

/// Objects inside `v` (pointers), the root included.
fn object_paths(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = value_paths(v)
        .into_iter()
        .filter(|p| v.pointer(p).is_some_and(Value::is_object))
        .collect();
    if v.is_object() {
        out.push(String::new());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const PODS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pods");
const BAD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad");

/// The pod fixtures, parsed.
fn pod_fixtures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(PODS_DIR).expect("tests/fixtures/pods") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("read fixture");
            let v: Value = serde_json::from_str(&text).expect("fixture is JSON");
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() > 20, "pod fixtures missing");
    out
}

fn watch_line(kind: &str, object: &Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

// ---------------------------------------------------------------------------------------------
// What runs on a decoded pod
// ---------------------------------------------------------------------------------------------

/// Everything downstream of the decoder that a pod reaches: classification
/// at several clocks and thresholds, workload resolution, diagnosis with the
/// given rules, events and logs, the incident engine and the scan output.
fn exercise(record: &PodRecord, rules: &RuleSet, now: i64, th: &Thresholds, lines: &[String]) {
    let _ = record.key();
    for t in [now, BASE, now.saturating_add(86_400 * 365)] {
        let rollouts = [
            Rollout::Steady,
            Rollout::Superseded {
                newer: "web-8d5f7c6b9".into(),
                newer_failing: Some(FailureType::ImagePullBackOff),
            },
            Rollout::Newest {
                older: "web-7c9d8f6b5".into(),
            },
        ];
        let findings = classify(record, &NothingKnown, t, th);
        for (finding, rollout) in findings.iter().zip(rollouts.iter().cycle()) {
            let workload = workload_of(record);
            let d = rules.diagnose(&Context {
                finding,
                pod: record,
                workload: &workload,
                events: lines,
                logs: lines,
                rollout,
            });
            // The cause is a `Cause`: inside the vocabulary by type. Its
            // wire name must parse back to it.
            assert_eq!(d.cause.as_str().parse::<Cause>(), Ok(d.cause));
            assert!(
                (0.0..=1.0).contains(&d.confidence),
                "confidence {}",
                d.confidence
            );
        }
    }
    let settings = settings::resolve(&NoSettings).expect("defaults are valid");
    let found = scan::incidents(
        &settings,
        "fuzz",
        std::slice::from_ref(record),
        &HashMap::new(),
        now,
        rules,
    );
    for (incident, diagnosis) in &found {
        let _ = output::incident_json(incident, Some(diagnosis)).to_string();
    }
    table_fits(&output::scan_table(&found, now.saturating_mul(1000)));
}

/// The table part of `scan`'s text (up to the first blank line) fits a
/// 120-column terminal whatever the pods hold.
fn table_fits(text: &str) {
    for line in text.lines().take_while(|l| !l.is_empty()) {
        assert!(
            line.chars().count() <= output::TABLE_WIDTH,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
}

fn decode_and_exercise(line: &[u8]) {
    if let Ok(WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p)) =
        decode_watch_line(line)
    {
        exercise(
            &PodRecord::from(p),
            &RuleSet::builtin(),
            BASE,
            &Thresholds::default(),
            &[],
        );
    }
}

/// The default settings (no flags, no variables).
struct NoSettings;

impl Source for NoSettings {
    fn flag(&self, _: &str) -> Option<String> {
        None
    }
    fn env(&self, _: &str) -> Option<String> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Watch-line decoder
// ---------------------------------------------------------------------------------------------

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    check(2000, prop::collection::vec(any::<u8>(), 0..1024), |bytes| {
        decode_and_exercise(&bytes);
        Ok(())
    });
}

#[test]
fn any_json_object_decodes_as_a_pod_and_never_panics() {
    // The decoder's contract since wrong field types read as missing: a watch
    // event whose object is any JSON object decodes (it never poisons a stream).
    check(500, (event_type(), json_object()), |(kind, object)| {
        let line = watch_line(kind, &object);
        let event = decode_watch_line(line.as_bytes());
        prop_assert!(event.is_ok(), "{line}: {:?}", event.err());
        decode_and_exercise(line.as_bytes());
        // Any JSON at all, as the object or as the whole line: no panic.
        decode_and_exercise(
            json!({"type": kind, "object": object["metadata"]})
                .to_string()
                .as_bytes(),
        );
        decode_and_exercise(object.to_string().as_bytes());
        Ok(())
    });
}

#[test]
fn byte_mutated_fixture_lines_never_panic() {
    let lines: Vec<String> = pod_fixtures()
        .iter()
        .map(|(_, v)| watch_line("MODIFIED", v))
        .collect();
    let mutation = (any::<usize>(), 0u8..4, any::<u8>(), 1usize..64);
    check(
        1000,
        (0..lines.len(), prop::collection::vec(mutation, 1..8)),
        |(i, mutations)| {
            let mut bytes = lines[i].clone().into_bytes();
            for (at, op, byte, len) in mutations {
                let at = at % (bytes.len() + 1);
                match op {
                    0 => {
                        if at < bytes.len() {
                            bytes[at] = byte;
                        }
                    }
                    1 => bytes.insert(at, byte),
                    2 => {
                        let end = (at + len).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => bytes.truncate(at),
                }
            }
            decode_and_exercise(&bytes);
            Ok(())
        },
    );
}

#[test]
fn structure_mutated_fixtures_never_panic() {
    let fixtures = pod_fixtures();
    check(
        1000,
        (0..fixtures.len(), any::<u64>(), json_value(), any::<bool>()),
        |(i, seed, any, delete)| {
            let mut v = fixtures[i].1.clone();
            let mut rng = Rng(seed | 1);
            let paths = value_paths(&v);
            let at = paths[rng.below(paths.len())].clone();
            if delete {
                if let Some((parent, key)) = at.rsplit_once('/') {
                    match v.pointer_mut(parent) {
                        Some(Value::Object(m)) => {
                            m.remove(&key.replace("~1", "/").replace("~0", "~"));
                        }
                        Some(Value::Array(a)) => {
                            if let Ok(k) = key.parse::<usize>() {
                                if k < a.len() {
                                    a.remove(k);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            } else if let Some(slot) = v.pointer_mut(&at) {
                *slot = any;
            }
            let line = watch_line("MODIFIED", &v);
            prop_assert!(decode_watch_line(line.as_bytes()).is_ok(), "{at}: {line}");
            decode_and_exercise(line.as_bytes());
            Ok(())
        },
    );
}

/// Writes `v` as JSON with shuffled keys, random whitespace and random
/// (valid) escapes: the same document, byte for byte different.
fn reencode(v: &Value, rng: &mut Rng, out: &mut String) {
    let ws = |rng: &mut Rng, out: &mut String| {
        for _ in 0..rng.below(3) {
            out.push([' ', '\n', '\t', '\r'][rng.below(4)]);
        }
    };
    ws(rng, out);
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            for i in (1..keys.len()).rev() {
                keys.swap(i, rng.below(i + 1));
            }
            out.push('{');
            for (n, k) in keys.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                string(k, rng, out);
                ws(rng, out);
                out.push(':');
                reencode(&m[k.as_str()], rng, out);
            }
            ws(rng, out);
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                reencode(x, rng, out);
            }
            ws(rng, out);
            out.push(']');
        }
        Value::String(s) => string(s, rng, out),
        other => out.push_str(&other.to_string()),
    }
    ws(rng, out);
}

fn string(s: &str, rng: &mut Rng, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if rng.one_in(2) => out.push_str("\\/"),
            c if (c as u32) < 0x20 || rng.one_in(4) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[test]
fn a_valid_line_decodes_to_the_same_record_however_it_is_written() {
    let fixtures: Vec<(String, Value, PodRecord)> = pod_fixtures()
        .into_iter()
        .map(|(name, v)| {
            let record =
                PodRecord::from(serde_json::from_value::<Pod>(v.clone()).expect("fixture decodes"));
            (name, v, record)
        })
        .collect();
    let kinds = prop::sample::select(&["ADDED", "MODIFIED", "DELETED"][..]);
    check(
        300,
        (0..fixtures.len(), kinds, any::<u64>(), 0usize..6),
        |(i, kind, seed, extra)| {
            let (name, v, want) = &fixtures[i];
            let mut rng = Rng(seed | 1);
            let mut v = v.clone();
            // Unknown fields anywhere change nothing.
            for n in 0..extra {
                let paths = object_paths(&v);
                let at = paths[rng.below(paths.len())].clone();
                if let Some(Value::Object(m)) = v.pointer_mut(&at) {
                    m.insert(format!("zzFuzz{n}"), json!({"nested": [n, "x", null]}));
                }
            }
            let mut line = String::new();
            reencode(&json!({"type": kind, "object": v}), &mut rng, &mut line);
            let event = decode_watch_line(line.as_bytes());
            let pod = match event {
                Ok(WatchEvent::Added(p) | WatchEvent::Modified(p) | WatchEvent::Deleted(p)) => p,
                other => return Err(TestCaseError::fail(format!("{name}: {other:?}\n{line}"))),
            };
            prop_assert_eq!(&PodRecord::from(pod), want, "{}: {}", name, line);
            Ok(())
        },
    );
}

#[test]
fn rfc3339_parsing_never_panics_and_round_trips() {
    check(
        2000,
        (any::<String>(), -62_167_219_200i64..253_402_300_800),
        |(text, secs)| {
            let _ = parse_rfc3339(&text);
            let formatted = format_rfc3339(secs);
            prop_assert_eq!(parse_rfc3339(&formatted), Some(secs), "{}", formatted);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Kubeconfig
// ---------------------------------------------------------------------------------------------

/// Pieces of kubeconfigs, YAML syntax and traps (anchors, tags, flow style,
/// tabs, multi-documents), to be glued in any order.
#[rustfmt::skip]
const YAML_TOKENS: &[&str] = &[
    "apiVersion: v1\n", "kind: Config\n", "clusters:\n", "- name: c\n", "  cluster:\n",
    "    server: https://127.0.0.1:1\n", "    server: 127.0.0.1:6443\n", "    server: \"\"\n",
    "    certificate-authority-data: ", "    certificate-authority: ca.crt\n",
    "    insecure-skip-tls-verify: true\n", "    tls-server-name: kubernetes\n", "users:\n",
    "- name: u\n", "  user:\n", "    token: abc\n", "    tokenFile: token\n",
    "    client-certificate: cert.pem\n", "    client-key: key.pem\n", "    client-key-data: ",
    "    client-certificate-data: ", "    exec:\n",
    "      apiVersion: client.authentication.k8s.io/v1\n",
    "      apiVersion: client.authentication.k8s.io/v1alpha1\n", "      command: ./plugin\n",
    "      args: [a, b]\n", "      env:\n", "      - name: X\n        value: y\n",
    "      provideClusterInfo: true\n", "    auth-provider: {name: gcp}\n", "    username: u\n",
    "contexts:\n", "- name: ctx\n", "  context: {cluster: c, user: u, namespace: n}\n",
    "  context:\n", "    cluster: c\n", "    user: u\n", "current-context: ctx\n",
    "current-context: c\n", "preferences: {}\n", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==\n",
    "!!!notbase64\n", "---\n", "...\n", "&a ", "*a", "<<: *a\n", "!!binary ", "!!str ", "!!map ",
    "? ", ": ", "- ", "  ", "\t", "\n", "{", "}", "[", "]", ",", "'", "\"", "|\n", ">-\n", "# c\n",
    "%YAML 1.2\n", "%TAG ! tag:x,2000:\n", "null", "~", "0x1F", "1e3", ".inf", "true", "yes", "é",
    "\u{feff}", "\u{0}", "\r\n",
];

fn yamlish() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(YAML_TOKENS).prop_map(String::from),
            1 => any::<String>(),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
    .boxed()
}

/// Valid kubeconfigs of every auth form, the seeds of the mutation target.
fn kubeconfig_seeds() -> Vec<String> {
    let valid =
        std::fs::read_to_string(format!("{BAD_DIR}/kubeconfig/valid.yaml")).expect("valid.yaml");
    let base = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    \
                certificate-authority: ca.crt\n- name: plain\n  cluster:\n    server: 127.0.0.1:8080\n\
                contexts:\n- name: ctx\n  context: {cluster: c, user: u, namespace: shop}\n\
                - name: anon\n  context: {cluster: plain}\ncurrent-context: ctx\nusers:\n- name: u\n  user:\n";
    vec![
        valid,
        format!("{base}    token: abc\n"),
        format!("{base}    tokenFile: token\n"),
        format!("{base}    client-certificate: cert.pem\n    client-key: key.pem\n"),
        format!(
            "{base}    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ./plugin\n      \
             args: [--cluster, c]\n      env:\n      - name: AWS_PROFILE\n        value: prod\n      \
             provideClusterInfo: true\n      installHint: install it\n"
        ),
        r#"{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:1","insecure-skip-tls-verify":true}}],"users":[{"name":"u","user":{"token":"t"}}],"contexts":[{"name":"ctx","context":{"cluster":"c","user":"u"}}],"current-context":"ctx"}"#.to_string(),
    ]
}

/// A directory with the files the seeds name (ca.crt, cert.pem, key.pem, token).
fn kubeconfig_dir() -> TempDir {
    let dir = TempDir::new("fuzz-kubeconfig");
    let valid =
        std::fs::read_to_string(format!("{BAD_DIR}/kubeconfig/valid.yaml")).expect("valid.yaml");
    let field = |name: &str| -> Vec<u8> {
        use base64::Engine as _;
        let line = valid
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .expect("field");
        let data = line.split_once(": ").expect("value").1;
        base64::prelude::BASE64_STANDARD
            .decode(data)
            .expect("base64")
    };
    std::fs::write(dir.join("ca.crt"), field("certificate-authority-data")).unwrap();
    std::fs::write(dir.join("cert.pem"), field("client-certificate-data")).unwrap();
    std::fs::write(dir.join("key.pem"), field("client-key-data")).unwrap();
    std::fs::write(dir.join("token"), "abc\n").unwrap();
    dir
}

/// Parses, merges and resolves `text` as `dir/config`, with the current
/// context and with `context`; errors must format.
fn load_kubeconfig(text: &str, dir: &Path, context: &str) {
    let path: PathBuf = dir.join("config");
    match parse_kubeconfig(text, &path) {
        Ok(kc) => {
            let contexts: Vec<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
            let merged = merge(vec![kc.clone(), kc]);
            for ctx in [None, Some(context)]
                .into_iter()
                .chain(contexts.iter().map(|c| Some(c.as_str())))
            {
                if let Err(e) = resolve(&merged, std::slice::from_ref(&path), ctx) {
                    let _ = e.to_string();
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

#[test]
fn kubeconfig_token_soup_never_panics() {
    let dir = kubeconfig_dir();
    check(1000, (yamlish(), word()), |(text, context)| {
        load_kubeconfig(&text, dir.path(), &context);
        Ok(())
    });
}

#[test]
fn mutated_valid_kubeconfigs_never_panic() {
    let dir = kubeconfig_dir();
    let seeds = kubeconfig_seeds();
    // The seeds are valid: every one loads, so mutations start from a good file.
    for seed in &seeds {
        let kc = parse_kubeconfig(seed, &dir.join("config")).expect("seed parses");
        resolve(&kc, &[dir.join("config")], None)
            .unwrap_or_else(|e| panic!("seed resolves: {e}\n{seed}"));
    }
    let op = (
        0u8..7,
        any::<usize>(),
        any::<usize>(),
        prop::sample::select(YAML_TOKENS),
    );
    check(
        1000,
        (0..seeds.len(), prop::collection::vec(op, 1..6)),
        |(i, ops)| {
            let mut lines: Vec<String> = seeds[i].lines().map(String::from).collect();
            for (kind, a, b, token) in ops {
                let n = lines.len().max(1);
                let (a, b) = (a % n, b % n);
                match kind {
                    0 if a < lines.len() => {
                        lines.remove(a);
                    }
                    1 if a < lines.len() => lines.insert(a, lines[a].clone()),
                    2 if a < lines.len() && b < lines.len() => lines.swap(a, b),
                    3 if a < lines.len() => lines[a] = format!("  {}", lines[a]),
                    4 if a < lines.len() => lines[a] = lines[a].trim_start().to_string(),
                    5 if a < lines.len() => {
                        // Replace the value after the key with a token.
                        let key = lines[a].split(':').next().unwrap_or("").to_string();
                        lines[a] = format!("{key}: {}", token.trim_end());
                    }
                    _ => lines.insert(a.min(lines.len()), token.trim_end_matches('\n').to_string()),
                }
            }
            let mut text = lines.join("\n");
            // Sometimes cut mid-line, as a copy interrupted.
            if i % 2 == 0 && !text.is_empty() {
                let cut = (text.len() * 7 / 8..text.len())
                    .find(|c| text.is_char_boundary(*c))
                    .unwrap_or(0);
                text.truncate(cut);
            }
            load_kubeconfig(&text, dir.path(), "ctx");
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct FakeSource {
    flags: HashMap<String, String>,
    env: HashMap<String, String>,
}

impl Source for FakeSource {
    fn flag(&self, flag: &str) -> Option<String> {
        self.flags.get(flag).cloned()
    }
    fn env(&self, env: &str) -> Option<String> {
        self.env.get(env).cloned()
    }
}

/// Values that sit on or just past the edges of the settings' rules.
#[rustfmt::skip]
const SETTING_VALUES: &[&str] = &[
    "", " ", "0", "-1", "1", "9", "10", "100", "1000", "1024", "65535", "65536", "86400000",
    "18446744073709551615", "18446744073709551616", "1e3", "NaN", "inf", "-inf", "1.1", "1.09",
    "10", "10.0000001", "2.5", "true", "FALSE", "yes", "*", "*,a", "a,,b", ",", "kube-system",
    "a-b", "-a", "UPPER", "text", "json", "debug", "http://", "https://", "https://:80",
    "http://[::1]:8080/v1", "https://hooks.slack.com/services/T/B/x", "xoxb-1-2", "#alerts",
    "C0123", "a=#b", "a=#b,c=d", "=", "a@b.c", "@b.c", "~", "~/x", "/tmp", "relative",
    "/nonexistent/file", "/etc/hostname", "app=web,tier!=cache", "app in (a, b)", "a===b",
    "critical,HIGH", "informational", "\u{0}", "\u{7f}", "é", "a\nb",
];

/// Settings whose values are secrets: they must never be echoed.
#[rustfmt::skip]
const SECRETS: &[&str] = &[
    "SLACK_WEBHOOK_URL", "LLM_API_KEY", "SLACK_BOT_TOKEN", "WEBHOOK_AUTH_HEADER", "WEBHOOK_URL",
];

fn setting_value() -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(SETTING_VALUES).prop_map(String::from),
        2 => "[a-z0-9=,#*/:.@~ -]{0,24}",
        1 => any::<String>(),
    ]
    .boxed()
}

#[test]
fn settings_resolution_never_panics_and_keeps_its_promises() {
    let one = (0..SETTINGS.len(), any::<bool>(), setting_value());
    let extra = prop::collection::vec(
        (
            prop::sample::select(
                &["RUST_LOG", "HOME", "POD_NAMESPACE", "POD_NAME", "HOSTNAME"][..],
            ),
            setting_value(),
        ),
        0..3,
    );
    check(
        500,
        (prop::collection::vec(one, 0..24), extra),
        |(given, extra)| {
            let mut source = FakeSource::default();
            for (i, as_flag, value) in given {
                let spec = &SETTINGS[i];
                // Secret values carry a marker that must never come back out.
                let value = if SECRETS.contains(&spec.env) {
                    format!("Zq9{value}")
                } else {
                    value
                };
                if as_flag {
                    source.flags.insert(spec.flag.to_string(), value);
                } else {
                    source.env.insert(spec.env.to_string(), value);
                }
            }
            for (k, v) in extra {
                source.env.insert(k.to_string(), v);
            }
            match settings::resolve(&source) {
                Err(problems) => {
                    prop_assert!(!problems.is_empty());
                    for p in &problems {
                        prop_assert!(
                            SETTINGS.iter().any(|s| s.env == p.name || s.flag == p.name),
                            "{p} names no setting"
                        );
                        let text = p.to_string();
                        prop_assert!(text.starts_with(&p.name));
                        prop_assert!(!text.contains("Zq9"), "a secret was echoed: {text}");
                    }
                }
                Ok(s) => {
                    prop_assert!((1..=10_000).contains(&s.page_size));
                    prop_assert!(s.health_port.is_none_or(|p| p >= 1024));
                    prop_assert!(s.reconnect.initial <= s.reconnect.max);
                    prop_assert!((1.1..=10.0).contains(&s.reconnect.multiplier));
                    prop_assert!(s.alerts.backoff <= s.alerts.max_backoff);
                    prop_assert!(!s.alerts.severities.is_empty());
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// User rules
// ---------------------------------------------------------------------------------------------

#[rustfmt::skip]
const PATTERNS: &[&str] = &[
    "(?i)connection refused", "refused.*:5432", "^Error$", "(", ")", "[", "a{2,1}", "(?P<x>a)",
    "\\", "\\d+", "(a*)*b", "(?:a{100}){100}", ".*", "", "\\bOOM\\b", "[[:alpha:]]", "\\p{L}",
    "(?x) a # comment", "a|b|", "é+",
];

fn template() -> BoxedStrategy<String> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(NAMES).prop_map(|n| format!("{{{{{n}}}}}")),
            prop::sample::select(&["{{", "}}", "{{{", "{{nope}}", "{{}}", " text ", "é"][..])
                .prop_map(String::from),
            word(),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
    .boxed()
}

fn user_rule() -> BoxedStrategy<Value> {
    let kinds = FailureType::ALL.map(|k| k.as_str());
    (
        (
            prop_oneof![word(), "[a-z0-9-]{1,12}"],
            prop_oneof![4 => prop::sample::select(Cause::ALL.map(|c| c.as_str()).to_vec()).prop_map(String::from), 1 => word()],
            prop::collection::vec(
                prop_oneof![
                    prop::sample::select(kinds.to_vec()).prop_map(String::from),
                    word()
                ],
                0..3,
            ),
            prop::collection::vec(word(), 0..3),
            prop::collection::vec(prop_oneof![-1i32..256, any::<i32>()], 0..3),
            prop::collection::vec(any::<i32>(), 0..2),
        ),
        (
            opt(any::<bool>()),
            opt(prop_oneof![
                prop::sample::select(PATTERNS).prop_map(String::from),
                any::<String>()
            ]),
            opt(prop::sample::select(PATTERNS).prop_map(String::from)),
            opt(prop::sample::select(PATTERNS).prop_map(String::from)),
            opt(prop_oneof![0.0f64..=1.0, any::<f64>()]),
            template(),
            template(),
            prop::collection::vec(template(), 0..3),
        ),
        opt(("[a-z_]{1,12}", json_value())),
    )
        .prop_map(|(head, tail, odd)| {
            let (id, cause, types, reasons, exits, signals) = head;
            let (init, msg, ev, logs, conf, summary, fix, commands) = tail;
            let mut r = json!({"id": id, "cause": cause, "types": types, "reasons": reasons,
                "exit_codes": exits, "signals": signals, "summary": summary, "fix": fix,
                "commands": commands});
            let optional = [
                ("init", init.map(Value::from)),
                ("message", msg.map(Value::from)),
                ("events", ev.map(Value::from)),
                ("logs", logs.map(Value::from)),
                (
                    "confidence",
                    conf.and_then(serde_json::Number::from_f64)
                        .map(Value::Number),
                ),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    r[k] = v;
                }
            }
            // Now and then one field (known or not) holds any JSON at all.
            if let Some((k, v)) = odd {
                r[k] = v;
            }
            r
        })
        .boxed()
}

#[test]
fn user_rules_never_panic_and_accepted_rules_run() {
    let pods: Vec<PodRecord> = pod_fixtures()
        .into_iter()
        .map(|(_, v)| PodRecord::from(serde_json::from_value::<Pod>(v).expect("fixture")))
        .collect();
    let doc = prop_oneof![
        3 => (prop::collection::vec(user_rule(), 0..4), prop::collection::vec(word(), 0..2), any::<bool>())
            .prop_map(|(rules, disable, bare)| if bare { json!(rules) } else { json!({"rules": rules, "disable": disable}) }),
        1 => json_value(),
    ];
    let lines = prop::collection::vec(word(), 0..4);
    check(
        300,
        (doc, any::<String>(), lines, 0..pods.len()),
        |(doc, text, lines, i)| {
            let _ = user_rules::parse(&text);
            if let Ok(rules) = user_rules::parse(&doc.to_string()) {
                exercise(&pods[i], &rules, BASE + 600, &Thresholds::default(), &lines);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Routes and silences
// ---------------------------------------------------------------------------------------------

/// The classic definition of a glob match, recursively (exponential, so only for short inputs).
fn glob_reference(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|i| glob_reference(rest, &t[i..])),
        Some((c, rest)) => {
            t.first().is_some_and(|x| *c == '?' || c == x) && glob_reference(rest, &t[1..])
        }
    }
}

#[test]
fn globs_match_as_the_textbook_definition_says() {
    check(2000, ("[ab*?]{0,8}", "[ab]{0,10}"), |(p, t)| {
        let (pc, tc): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
        prop_assert_eq!(
            routing::glob::matches(&p, &t),
            glob_reference(&pc, &tc),
            "{:?} ~ {:?}",
            p,
            t
        );
        Ok(())
    });
}

fn one_or_list(s: BoxedStrategy<String>) -> BoxedStrategy<Value> {
    prop_oneof![
        s.clone().prop_map(Value::from),
        prop::collection::vec(s, 0..3).prop_map(Value::from)
    ]
    .boxed()
}

fn matcher_doc() -> BoxedStrategy<Value> {
    let glob = prop_oneof![
        prop::sample::select(&["shop", "sh*", "*", "?", "", "pay-*", "*-prod", "web"][..])
            .prop_map(String::from),
        word()
    ]
    .boxed();
    let sev = prop_oneof![
        prop::sample::select(Severity::ALL.map(|s| s.as_str()).to_vec()).prop_map(String::from),
        word()
    ]
    .boxed();
    let kind = prop_oneof![
        prop::sample::select(FailureType::ALL.map(|k| k.as_str()).to_vec()).prop_map(String::from),
        word()
    ]
    .boxed();
    let cause = prop_oneof![
        prop::sample::select(Cause::ALL.map(|c| c.as_str()).to_vec()).prop_map(String::from),
        word()
    ]
    .boxed();
    (
        opt(one_or_list(glob.clone())),
        opt(one_or_list(sev.clone())),
        opt(sev.prop_map(Value::from)),
        opt(one_or_list(kind)),
        opt(one_or_list(cause)),
        opt(one_or_list(glob.clone())),
        opt(prop::collection::btree_map("[a-z]{1,4}", glob, 0..3)),
        opt(("[a-z_]{1,10}", json_value())),
    )
        .prop_map(|(ns, sev, min, ty, cause, name, labels, odd)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("namespace", ns),
                ("severity", sev),
                ("min_severity", min),
                ("type", ty),
                ("cause", cause),
                ("name", name),
                ("labels", labels.map(|l| json!(l))),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            if let Some((k, v)) = odd {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

fn subject_parts() -> impl Strategy<Value = (String, usize, usize, String, Vec<(String, String)>)> {
    (
        prop_oneof![
            prop::sample::select(&["shop", "pay-eu", "web", ""][..]).prop_map(String::from),
            word()
        ],
        0..Severity::ALL.len(),
        0..FailureType::ALL.len(),
        prop_oneof![Just("web".to_string()), word()],
        prop::collection::vec(("[a-z]{1,4}", word()), 0..3),
    )
}

#[test]
fn routes_and_silences_never_panic_and_plans_name_configured_sinks_only() {
    use opsctrl_daemon::routing::{Facts, OverrideKind, Routes, Silences, SinkInfo};
    const SINKS: &[SinkInfo] = &[
        SinkInfo {
            name: "slack",
            accepts: &[OverrideKind::WebhookFile],
            channel: None,
        },
        SinkInfo {
            name: "slack-bot",
            accepts: &[OverrideKind::Channel],
            channel: None,
        },
        SinkInfo {
            name: "webhook",
            accepts: &[],
            channel: None,
        },
    ];
    let sink = prop_oneof![
        prop::sample::select(&["slack", "slack-bot", "webhook", "teams", ""][..])
            .prop_map(Value::from),
        (
            prop::sample::select(&["slack", "slack-bot", "webhook"][..]),
            opt(word()),
            opt(word())
        )
            .prop_map(|(s, ch, wf)| json!({"sink": s, "channel": ch, "webhook_file": wf})),
        json_value(),
    ];
    let route = (opt(word()), matcher_doc(), prop::collection::vec(sink.clone(), 0..3), opt(any::<bool>()))
        .prop_map(|(name, m, sinks, cont)| json!({"name": name, "match": m, "sinks": sinks, "continue": cont}));
    let routes = prop_oneof![
        3 => (prop::collection::vec(route, 0..4), opt(prop::collection::vec(sink, 0..3)))
            .prop_map(|(r, d)| json!({"routes": r, "default": d})),
        1 => json_value(),
    ];
    let silence = (
        matcher_doc(),
        opt(timestamp()),
        opt(timestamp()),
        opt(word()),
    )
        .prop_map(|(m, s, e, c)| json!({"match": m, "starts_at": s, "ends_at": e, "comment": c}));
    let silences = prop_oneof![
        3 => prop::collection::vec(silence, 0..4).prop_map(Value::from),
        1 => json_value(),
    ];
    check(
        300,
        (
            routes,
            silences,
            subject_parts(),
            any::<String>(),
            (BASE - 86_400)..(BASE + 86_400),
        ),
        |(routes, silences, (ns, sev, kind, name, labels), text, now)| {
            let _ = routing::file::parse(&text);
            let labels: Vec<(Box<str>, Box<str>)> = labels
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect();
            let s = Facts {
                namespace: &ns,
                severity: Severity::ALL[sev],
                kind: FailureType::ALL[kind],
                cause: None,
                workload_kind: "Deployment",
                workload_name: &name,
                labels: &labels,
            };
            let read = |_: &Path| Ok("https://hooks.slack.test/T/B/x".to_string());
            if let Ok(r) = Routes::parse(&routes, SINKS, &read) {
                let plan = r.plan(&s);
                for t in plan.targets.iter().flatten() {
                    prop_assert!(SINKS.iter().any(|x| x.name == t.sink), "{:?}", t);
                }
                prop_assert_eq!(plan.by_default, plan.matched.is_empty());
            }
            if let Ok(sl) = Silences::parse(&silences) {
                let now_ms = now * 1000;
                if let Some(x) = sl.active(&s, now_ms) {
                    prop_assert!(x.starts_ms.is_none_or(|t| t <= now_ms) && now_ms < x.ends_ms);
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Detection and diagnosis
// ---------------------------------------------------------------------------------------------

#[test]
fn classify_and_diagnose_never_panic_on_generated_pods() {
    let thresholds =
        (1u32..=100, 30i64..3600, 0i64..3600, 1i64..86_400).prop_map(|(r, p, i, n)| Thresholds {
            min_restart: r,
            max_pending_secs: p,
            image_pull_grace_secs: i,
            not_ready_grace_secs: n,
        });
    let now = prop_oneof![
        4 => (-3_000_000i64..3_000_000).prop_map(|d| BASE + d),
        1 => prop::sample::select(vec![0i64, -62_167_219_200, 253_402_300_799, i64::from(i32::MAX)]),
    ];
    check(
        800,
        (pod(), now, thresholds, prop::collection::vec(word(), 0..4)),
        |(pod, now, th, lines)| {
            let line = watch_line("MODIFIED", &pod);
            let pod = match decode_watch_line(line.as_bytes()) {
                Ok(WatchEvent::Modified(p)) => p,
                other => return Err(TestCaseError::fail(format!("{other:?}\n{line}"))),
            };
            exercise(&PodRecord::from(pod), &RuleSet::builtin(), now, &th, &lines);
            Ok(())
        },
    );
}

#[test]
fn scan_files_never_panic() {
    let doc = prop_oneof![
        prop::collection::vec(pod(), 0..4)
            .prop_map(|items| json!({"kind": "List", "items": items}).to_string()),
        json_value().prop_map(|v| v.to_string()),
        any::<String>(),
    ];
    check(300, doc, |text| {
        if let Ok((pods, events)) = scan::pods_from_json(&text) {
            let settings = settings::resolve(&NoSettings).expect("defaults");
            let found =
                scan::incidents(&settings, "fuzz", &pods, &events, BASE, &RuleSet::builtin());
            table_fits(&output::scan_table(&found, BASE * 1000));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Slack Block Kit renderer
// ---------------------------------------------------------------------------------------------

/// Slack rejects a whole message for one block over a limit: every rendering
/// must hold all of them, and pod text must not become a mention.
fn check_slack_message(v: &Value) -> Result<(), TestCaseError> {
    let text = v.to_string();
    prop_assert!(text.len() <= 35_000, "body {} bytes", text.len());
    let blocks = v["blocks"].as_array().cloned().unwrap_or_default();
    prop_assert!(
        !blocks.is_empty() && blocks.len() <= 50,
        "{} blocks",
        blocks.len()
    );
    prop_assert!(
        v["text"].as_str().is_some_and(|t| !t.is_empty()),
        "no fallback text"
    );
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for b in &blocks {
        match b["type"].as_str() {
            Some("header") => prop_assert!(chars(&b["text"]["text"]) <= 150, "{b}"),
            Some("section") => {
                prop_assert!(chars(&b["text"]["text"]) <= 3000, "section over 3000");
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                prop_assert!(fields.len() <= 10, "{} fields", fields.len());
                for f in &fields {
                    prop_assert!(chars(&f["text"]) <= 2000, "field over 2000");
                }
            }
            Some("context") => {
                let el = b["elements"].as_array().cloned().unwrap_or_default();
                prop_assert!(el.len() <= 10, "{} context elements", el.len());
            }
            Some("divider") => {}
            other => prop_assert!(false, "unknown block type {other:?}"),
        }
    }
    // `<!channel>` in a pod message must arrive escaped, never as a mention
    // (plain_text, which Slack never parses for mentions, may carry it).
    let mut at = Vec::new();
    fn walk(v: &Value, path: String, plain: bool, at: &mut Vec<String>) {
        match v {
            Value::String(s) if !plain && (s.contains("<!channel>") || s.contains("<!here>")) => {
                at.push(path)
            }
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, format!("{path}[{i}]"), plain, at)),
            Value::Object(o) => {
                let plain = plain || o.get("type").and_then(Value::as_str) == Some("plain_text");
                o.iter()
                    .for_each(|(k, x)| walk(x, format!("{path}.{k}"), plain, at));
            }
            _ => {}
        }
    }
    walk(v, String::new(), false, &mut at);
    prop_assert!(at.is_empty(), "mention leaked at {at:?}");
    Ok(())
}

/// Pod text as the renderers may get it: generated messages, any string,
/// and huge runs of mention, entity and fence syntax.
fn noise() -> BoxedStrategy<String> {
    prop_oneof![
        3 => message(),
        1 => any::<String>(),
        1 => (1usize..200_000).prop_map(|n| "<!channel> & `` ```💥 <b>[x](y) {{DATE(z)}} @everyone ".repeat(n / 40 + 1)),
    ]
    .boxed()
}

type AlertCase = (Vec<Value>, Vec<String>, String, usize, u8);

fn alert_case() -> impl Strategy<Value = AlertCase> {
    (
        prop::collection::vec(pod(), 1..4),
        prop::collection::vec(noise(), 0..600),
        noise(),
        0usize..250,
        0u8..4,
    )
}

/// Every alert a case gives: each incident open, updated or resolved (and
/// as a reminder), a start-up summary and a storm of many copies; the
/// pods' own texts, events, logs, facts and the LLM's answer are the noise.
fn case_alerts((pods, lines, text, copies, state): AlertCase) -> Vec<opsctrl_daemon::model::Alert> {
    use opsctrl_daemon::model::State;
    use opsctrl_daemon::model::{Alert, Item};
    let records: Vec<PodRecord> = pods
        .iter()
        .filter_map(
            |p| match decode_watch_line(watch_line("MODIFIED", p).as_bytes()) {
                Ok(WatchEvent::Modified(p)) => Some(PodRecord::from(p)),
                _ => None,
            },
        )
        .collect();
    let settings = settings::resolve(&NoSettings).expect("defaults are valid");
    let found = scan::incidents(
        &settings,
        &text.chars().take(300).collect::<String>(),
        &records,
        &HashMap::new(),
        BASE + 3600,
        &RuleSet::builtin(),
    );
    let items: Vec<Item> = found
        .into_iter()
        .map(|(mut incident, mut d)| {
            incident.state = match state {
                0 => State::Open,
                1 => State::Updated,
                _ => State::Resolved,
            };
            incident.finding.message = text.clone();
            d.summary = text.clone();
            d.fix.text = text.clone();
            d.ai = Some(json!({"model": "m", "answer": text}));
            let mut item = Item::new(incident, Some(d));
            item.events = lines.clone();
            item.logs = lines.clone();
            item.facts = lines.iter().take(10).cloned().collect();
            item
        })
        .collect();
    let mut out = Vec::new();
    for item in &items {
        for reminder in [false, true] {
            out.push(Alert::Incident {
                item: Box::new(item.clone()),
                reminder,
            });
        }
    }
    if let Some(first) = items.first() {
        let many: Vec<Item> = std::iter::repeat_n(first.clone(), copies.max(1)).collect();
        out.push(Alert::StartupSummary {
            items: many.clone(),
        });
        out.push(Alert::Storm {
            shared: text.chars().take(500).collect(),
            items: many,
        });
    }
    out
}

#[test]
fn slack_messages_hold_slack_limits_for_any_incident() {
    use opsctrl_daemon::model::Alert;
    use opsctrl_daemon::notify::slack;
    check_weighted(64, 20, alert_case(), |case| {
        for alert in case_alerts(case) {
            check_slack_message(&slack::render(&alert))?;
            if let Alert::Incident { item, .. } = &alert {
                check_slack_message(&slack::render_parent(item))?;
            }
        }
        Ok(())
    });
}

/// Every other destination's rendering of any incident passes its fake's
/// checks (the service's documented limits and request shape), for the
/// same hostile and huge inputs as Slack's.
#[test]
fn other_destinations_hold_their_limits_for_any_incident() {
    use crate::util::fake_services as fs;
    use opsctrl_daemon::model::Alert;
    use opsctrl_daemon::notify::{
        alertmanager, discord, ntfy, opsgenie, pagerduty, teams, telegram,
    };
    let link = Some("https://dash.example/{namespace}/{workload}?pod={pod}&c={cluster}");
    let ok = |r: Result<(), String>, what: &str| -> Result<(), TestCaseError> {
        r.map_err(|why| TestCaseError::fail(format!("{what}: {why:.300}")))
    };
    check_weighted(32, 40, alert_case(), |case| {
        for alert in case_alerts(case) {
            ok(fs::teams::check_message(&teams::render(&alert)), "teams")?;
            ok(
                fs::discord::check_message(&discord::render(&alert)),
                "discord",
            )?;
            ok(
                fs::telegram::check_text(&telegram::render(&alert)),
                "telegram",
            )?;
            let n = ntfy::render(&alert, fs::ntfy::TOPIC, link);
            ok(fs::ntfy::check_message(&n), "ntfy")?;
            let reminder = matches!(alert, Alert::Incident { reminder: true, .. });
            let mut am = Vec::new();
            for item in alert.items() {
                let e = pagerduty::event(item, reminder, fs::pagerduty::ROUTING_KEY, link);
                ok(fs::pagerduty::check_event(&e), "pagerduty")?;
                let (path, body) = opsgenie::request(item, reminder, link);
                if path == "/v2/alerts" {
                    ok(fs::opsgenie::check_create(&body), "opsgenie create")?;
                } else {
                    ok(fs::opsgenie::check_action(&body), "opsgenie action")?;
                }
                am.push(alertmanager::render(item, link, BASE + 7200));
            }
            ok(
                fs::alertmanager::check_alerts(&Value::Array(am)),
                "alertmanager",
            )?;
        }
        Ok(())
    });
}
