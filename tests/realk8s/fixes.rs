/*!
Every `kubectl` command in the diagnoses of the staged failures, run with the real kubectl
against the real server.

The failures are staged as the controllers, the scheduler and kubelet write them (one per
workload kind and failure family), `opsctrl-daemon scan -o json` diagnoses them under the
shipped read-only RBAC, and each command of each incident's fix runs:
- read-only commands as they are: they must succeed, except that commands that need a kubelet
  (`logs`, `exec`) or metrics-server (`top`) may fail only with the error a server without
  them gives;
- mutating commands (`set`, `patch`, `scale`, `rollout undo`, `create`, `delete`, `label`,
  `run`, `apply`) with `--dry-run=server`, so admission and validation see them for real;
- `<placeholders>` are filled in the way a reader would (the node's name for `<node>`);
- a pipe into `grep` runs its kubectl part; a pipe into `kubectl apply -f -` runs both;
- `kubectl debug` (interactive, needs a kubelet) is held to naming a node or pod that exists,
  and deleting the pod copy it makes to the pod it copies;
- anything that is not kubectl fails: the reader may have no docker, crane or openssl.
*/

use serde_json::Value;

use super::install::{Install, Variant};
use super::stage::{self, Stage, State, ctr};
use crate::util::TempDir;
use crate::util::daemon::command;
use crate::util::real_api::{self, Cluster};

/// Splits a shell command line into pipeline segments of words (quotes and backslashes as
/// sh reads them; no variables or globs appear in the rules' commands).
pub fn shell_words(line: &str) -> Vec<Vec<String>> {
    let mut segments = vec![Vec::new()];
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars.next().unwrap_or('\\'))
                        }
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            '|' => {
                if in_word {
                    segments.last_mut().unwrap().push(std::mem::take(&mut word));
                    in_word = false;
                }
                segments.push(Vec::new());
            }
            c if c.is_whitespace() => {
                if in_word {
                    segments.last_mut().unwrap().push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        segments.last_mut().unwrap().push(word);
    }
    segments
}

/// `<node>` → the node; any other `<some-thing>` → `some-thing` (a valid name, key or tag).
fn fill(word: &str, node: &str) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 1..start + len];
        out.push_str(if inner == "node" { node } else { inner });
        rest = &rest[start + len + 1..];
    }
    out + rest
}

const MUTATING: &[&str] = &[
    "set", "patch", "scale", "create", "delete", "label", "annotate", "run", "apply", "edit",
    "replace",
];

/// The value after `name` (`-n shop` → `shop`), or empty.
fn flag(args: &[String], name: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_default()
}

/// The verb of a kubectl command (`rollout undo` counts as `undo`).
fn verb(args: &[String]) -> &str {
    match args.get(1).map(String::as_str) {
        Some("rollout") => args.get(2).map_or("rollout", String::as_str),
        Some(v) => v,
        None => "",
    }
}

fn is_mutating(args: &[String]) -> bool {
    let v = verb(args);
    MUTATING.contains(&v) || v == "undo" || v == "restart"
}

/// What a server without kubelet or metrics-server answers.
fn no_kubelet_error(stderr: &str) -> bool {
    [
        "dial tcp",
        "connection refused",
        "error dialing backend",
        "no preferred addresses",
        "Metrics API not available",
        "the server could not find the requested resource (get pods.metrics.k8s.io",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// The outcome of one command: Ok(what was run) or Err(why it is wrong).
fn run_command(c: &Cluster, line: &str, node: &str) -> Result<String, String> {
    let segments: Vec<Vec<String>> = shell_words(line)
        .into_iter()
        .map(|s| s.iter().map(|w| fill(w, node)).collect())
        .collect();
    let mut ran = Vec::new();
    let mut stdin: Option<String> = None;
    for seg in &segments {
        if seg.first().map(String::as_str) != Some("kubectl") {
            // `| grep …` only filters what a reader sees; anything else (docker, crane,
            // openssl) may not be installed where the reader is: every command is kubectl.
            if seg.first().map(String::as_str) == Some("grep") && !ran.is_empty() {
                continue;
            }
            return Err(format!("{line}: not a kubectl command"));
        }
        let mut args: Vec<String> = seg.clone();
        let v = verb(&args).to_string();
        if v == "debug" {
            // Interactive and needs a kubelet (and has no --dry-run): what it names exists.
            let target = args.iter().skip(2).find(|a| !a.starts_with('-')).cloned();
            let Some(target) = target else {
                return Err(format!("{line}: kubectl debug without a target"));
            };
            let get: Vec<String> = if target.starts_with("node/") {
                vec!["get".into(), target.clone()]
            } else {
                vec![
                    "get".into(),
                    "pod".into(),
                    target.clone(),
                    "-n".into(),
                    flag(&args, "-n"),
                ]
            };
            let get: Vec<&str> = get.iter().map(String::as_str).collect();
            let out = c.kubectl(&get);
            if !out.status.success() {
                return Err(format!("{line}: {}", String::from_utf8_lossy(&out.stderr)));
            }
            ran.push(format!("kubectl {} (for kubectl debug)", get.join(" ")));
            continue;
        }
        if v == "delete" && args.get(2).map(String::as_str) == Some("pod") {
            // The copy `kubectl debug --copy-to=<pod>-debug` made: it exists once that
            // ran, so the pod it copies must exist now.
            if let Some(copied) = args.get(3).and_then(|n| n.strip_suffix("-debug")) {
                let ns = flag(&args, "-n");
                let out = c.kubectl(&["get", "pod", copied, "-n", &ns]);
                if !out.status.success() {
                    return Err(format!("{line}: {}", String::from_utf8_lossy(&out.stderr)));
                }
                ran.push(format!(
                    "kubectl get pod {copied} -n {ns} (for the debug copy)"
                ));
                continue;
            }
        }
        // `--local` edits a copy and asks the server nothing.
        let offline = args
            .iter()
            .any(|a| a.starts_with("--dry-run") || a == "--local");
        // `replace --force` deletes and creates, which kubectl cannot dry-run: it runs for
        // real (this namespace is the test's own).
        let force = v == "replace" && args.iter().any(|a| a == "--force");
        if is_mutating(&args) && !offline && !force {
            if v == "run" {
                // --rm and -i attach to the pod, which a dry run never creates.
                args.retain(|a| a != "--rm" && a != "-i" && a != "-it");
            }
            let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
            args.insert(at, "--dry-run=server".into());
        }
        let refs: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        let out = c.kubectl_with(&c.admin_kubeconfig, &refs, stdin.as_deref());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ran.push(args.join(" "));
        if !out.status.success() {
            let kubelet_ok = matches!(v.as_str(), "logs" | "exec" | "top" | "attach")
                && no_kubelet_error(&stderr);
            if !kubelet_ok {
                return Err(format!(
                    "{line}\n    ran: {}\n    → {stderr}",
                    args.join(" ")
                ));
            }
        }
        stdin = Some(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Ok(ran.join(" | "))
}

/// The staged failures: (workload as the incident names it, expected cause).
fn stage_failures(s: &Stage, node: &str) -> Vec<(&'static str, &'static str)> {
    let mut want = Vec::new();
    let bind = |p: &mut stage::StagedPod| s.bind(p, node);

    // A Deployment whose app exits 1 and crash-loops.
    let web = [ctr("web", "registry.example.com/shop/web:1.4.2")];
    let (_, rs) = s.deployment("web", 2, &web);
    for suffix in ["7xk2p", "m4q9z"] {
        let mut p = s.pod(Some(&rs), &format!("{}-{suffix}", rs.name), &web);
        bind(&mut p);
        let st = State::CrashLoop {
            restarts: 7,
            exit: 1,
            reason: "Error",
        };
        s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
        s.kubelet_event(
            &p,
            Some("web"),
            "Warning",
            "BackOff",
            &format!(
                "Back-off restarting failed container web in pod {}_{}({})",
                p.name, s.ns, p.uid
            ),
            31,
        );
    }
    want.push(("Deployment/web", "app_error_exit"));

    // A Deployment OOM-killed at its 256Mi limit.
    let api = [ctr("api", "ghcr.io/example/api:2.0.1").memory_limit("256Mi")];
    let (_, rs) = s.deployment("api", 1, &api);
    let mut p = s.pod(Some(&rs), &format!("{}-p8w2c", rs.name), &api);
    bind(&mut p);
    let st = State::CrashLoop {
        restarts: 4,
        exit: 137,
        reason: "OOMKilled",
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    want.push(("Deployment/api", "oom_killed"));

    // A Deployment whose liveness probe times out: running again after kubelet killed it.
    let slow = [ctr("app", "ghcr.io/example/slow:3.1").liveness("/healthz", 8080)];
    let (_, rs) = s.deployment("slow", 1, &slow);
    let mut p = s.pod(Some(&rs), &format!("{}-h5t7v", rs.name), &slow);
    bind(&mut p);
    let st = State::RunningAfter {
        restarts: 5,
        exit: 137,
        reason: "Error",
    };
    let mut status = stage::pod_status(&p, &s.ns, &[st]);
    status["containerStatuses"][0]["ready"] = false.into();
    s.status(&p, status);
    s.kubelet_event(
        &p,
        Some("app"),
        "Warning",
        "Unhealthy",
        "Liveness probe failed: Get \"http://10.244.0.17:8080/healthz\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
        15,
    );
    s.kubelet_event(
        &p,
        Some("app"),
        "Normal",
        "Killing",
        "Container app failed liveness probe, will be restarted",
        5,
    );
    want.push(("Deployment/slow", "liveness_probe_failed"));

    // A StatefulSet whose image tag does not exist.
    let image = "docker.io/library/postgres:16.99-nope";
    let db = [ctr("postgres", image)];
    let sts = s.statefulset("db", &db);
    let mut p = s.pod(Some(&sts), "db-0", &db);
    bind(&mut p);
    let st = State::Waiting {
        reason: "ImagePullBackOff",
        message: stage::pull_backoff(image),
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    s.kubelet_event(
        &p,
        Some("postgres"),
        "Warning",
        "Failed",
        &format!(
            "Failed to pull image \"{image}\": {}",
            stage::pull_not_found(image)
        ),
        4,
    );
    s.kubelet_event(
        &p,
        Some("postgres"),
        "Warning",
        "Failed",
        "Error: ErrImagePull",
        4,
    );
    s.kubelet_event(
        &p,
        Some("postgres"),
        "Normal",
        "BackOff",
        &stage::pull_backoff(image),
        9,
    );
    want.push(("StatefulSet/db", "image_not_found"));

    // A DaemonSet whose pod needs a ConfigMap that is not there.
    let agent = [ctr("agent", "ghcr.io/example/agent:0.9").config_from("agent-config")];
    let ds = s.daemonset("agent", &agent);
    let mut p = s.pod(Some(&ds), "agent-q7r4x", &agent);
    bind(&mut p);
    let st = State::Waiting {
        reason: "CreateContainerConfigError",
        message: "configmap \"agent-config\" not found".into(),
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    s.kubelet_event(
        &p,
        Some("agent"),
        "Warning",
        "Failed",
        "Error: configmap \"agent-config\" not found",
        6,
    );
    want.push(("DaemonSet/agent", "missing_configmap"));

    // A CronJob's Job whose pod failed with exit 2.
    let report = [ctr("report", "ghcr.io/example/report:1.0")];
    let (_, job) = s.cronjob("report", &report);
    let mut p = s.pod(Some(&job), &format!("{}-9fj2k", job.name), &report);
    bind(&mut p);
    let st = State::Terminated {
        exit: 2,
        reason: "Error",
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    want.push(("CronJob/report", "app_error_exit"));

    // A Job stopped at its activeDeadlineSeconds.
    let migrate = [ctr("migrate", "ghcr.io/example/migrate:5")];
    let job = s.job_with("migrate", &migrate, None, Some(600));
    let mut p = s.pod_with(Some(&job), "migrate-x2b9n", &migrate, Some(600));
    bind(&mut p);
    let mut st = stage::pod_status(
        &p,
        &s.ns,
        &[State::Terminated {
            exit: 137,
            reason: "Error",
        }],
    );
    // kubelet stops it (some time) after it was created.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    st["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = stage::ago(0).into();
    st["phase"] = "Failed".into();
    st["reason"] = "DeadlineExceeded".into();
    st["message"] = "Pod was active on the node longer than the specified deadline".into();
    s.status(&p, st);
    want.push(("Job/migrate", "deadline_exceeded"));

    // A Deployment's pod evicted under memory pressure.
    let cache = [ctr("cache", "docker.io/library/redis:7.2").memory_request("64Mi")];
    let (_, rs) = s.deployment("cache", 1, &cache);
    let mut p = s.pod(Some(&rs), &format!("{}-z2x8d", rs.name), &cache);
    bind(&mut p);
    s.status(
        &p,
        serde_json::json!({
            "phase": "Failed", "reason": "Evicted",
            "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91784Ki. Container cache was using 1523000Ki, request is 64Mi, has larger consumption of memory. ",
            "startTime": stage::ago(3600),
            "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
                            "message": "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91784Ki. ",
                            "lastProbeTime": null, "lastTransitionTime": stage::ago(300)}],
        }),
    );
    want.push(("Deployment/cache", "evicted_memory"));

    // A Deployment whose registry refuses the pull (no imagePullSecrets).
    let image = "registry.example.com/private/app:1.0";
    let private = [ctr("app", image)];
    let (_, rs) = s.deployment("private", 1, &private);
    let mut p = s.pod(Some(&rs), &format!("{}-t6v2m", rs.name), &private);
    bind(&mut p);
    let st = State::Waiting {
        reason: "ImagePullBackOff",
        message: stage::pull_backoff(image),
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    s.kubelet_event(
        &p,
        Some("app"),
        "Warning",
        "Failed",
        &format!(
            "Failed to pull image \"{image}\": rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
        ),
        3,
    );
    want.push(("Deployment/private", "image_pull_unauthorized"));

    // A DaemonSet whose pod needs a Secret that is not there.
    let shipper = [ctr("shipper", "docker.io/fluent/fluent-bit:3.0")];
    let ds = s.daemonset("shipper", &shipper);
    let mut p = s.pod(Some(&ds), "shipper-k2v8d", &shipper);
    bind(&mut p);
    let st = State::Waiting {
        reason: "CreateContainerConfigError",
        message: "secret \"shipper-creds\" not found".into(),
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    want.push(("DaemonSet/shipper", "missing_secret"));

    // A Deployment whose liveness endpoint answers 500: kubelet restarts it.
    let sick = [ctr("app", "ghcr.io/example/sick:1.2").liveness("/healthz", 8080)];
    let (_, rs) = s.deployment("sick", 1, &sick);
    let mut p = s.pod(Some(&rs), &format!("{}-w8r3n", rs.name), &sick);
    bind(&mut p);
    let st = State::CrashLoop {
        restarts: 6,
        exit: 137,
        reason: "Error",
    };
    s.status(&p, stage::pod_status(&p, &s.ns, &[st]));
    s.kubelet_event(
        &p,
        Some("app"),
        "Warning",
        "Unhealthy",
        "Liveness probe failed: HTTP probe failed with statuscode: 500",
        18,
    );
    s.kubelet_event(
        &p,
        Some("app"),
        "Normal",
        "Killing",
        "Container app failed liveness probe, will be restarted",
        6,
    );
    want.push(("Deployment/sick", "liveness_probe_failed"));

    // A Deployment pinned to nodes that do not exist.
    let edge = [ctr("app", "ghcr.io/example/edge:0.3")];
    let selector = serde_json::json!({"nodeSelector": {"disktype": "nvme"}});
    let (_, rs) = s.deployment_with("edge", 1, &edge, &selector);
    let p = s.pod_spec(Some(&rs), &format!("{}-b5n2c", rs.name), &edge, &selector);
    let msg = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..";
    s.status(&p, stage::unschedulable_status(msg, 1200));
    s.scheduler_event(&p, msg);
    want.push(("Deployment/edge", "node_selector_mismatch"));

    // A StatefulSet's pod that tolerates no taint of the only node.
    let gpu = [ctr("trainer", "ghcr.io/example/trainer:2")];
    let sts = s.statefulset("trainer", &gpu);
    let p = s.pod(Some(&sts), "trainer-0", &gpu);
    let msg = "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..";
    s.status(&p, stage::unschedulable_status(msg, 1200));
    s.scheduler_event(&p, msg);
    want.push(("StatefulSet/trainer", "untolerated_taint"));

    // A bare pod that asks for more memory than any node has.
    let big = [ctr("shell", "docker.io/library/busybox:1.36").memory_request("16Gi")];
    let p = s.pod(None, "debug-shell", &big);
    let msg = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..";
    s.status(&p, stage::unschedulable_status(msg, 1200));
    s.scheduler_event(&p, msg);
    want.push(("Pod/debug-shell", "insufficient_memory"));
    want
}

#[test]
fn every_fix_command_of_every_staged_failure_works_on_the_real_server() {
    let Some(c) = real_api::shared() else { return };
    let home = TempDir::new("realk8s-fixes");
    let s = Stage::new(c, "fixes");
    let node = s.node();
    let want = stage_failures(&s, &node);
    // The daemon's identity from the shipped read-only install.
    let i = Install::new(c, Variant::Cluster, &[], |_| {});
    let kc = i.kubeconfig(home.path());
    let out = command(home.path())
        .args([
            "scan",
            "-o",
            "json",
            "--watch-namespaces",
            &s.ns,
            "--kubeconfig",
        ])
        .arg(&kc)
        .output()
        .expect("run scan");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let incidents: Vec<Value> =
        serde_json::from_slice(&out.stdout).expect("scan -o json prints a JSON array");

    let mut problems = Vec::new();
    let mut ran = 0;
    for (workload, cause) in &want {
        let Some(inc) = incidents.iter().find(|i| {
            format!(
                "{}/{}",
                i["workload"]["kind"].as_str().unwrap_or(""),
                i["workload"]["name"].as_str().unwrap_or("")
            ) == *workload
        }) else {
            problems.push(format!("{workload}: no incident"));
            continue;
        };
        let got = inc["diagnosis"]["cause"].as_str().unwrap_or("");
        if got != *cause {
            problems.push(format!(
                "{workload}: cause {got}, staged {cause} (rule {})",
                inc["diagnosis"]["rule"]
            ));
        }
        let commands: Vec<&str> = inc["diagnosis"]["fix"]["commands"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if commands.is_empty() {
            problems.push(format!("{workload}: no commands"));
        }
        for cmd in commands {
            ran += 1;
            match run_command(c, cmd, &node) {
                Ok(what) => {
                    if std::env::var_os("REALK8S_LOG").is_some() {
                        eprintln!("ok  {workload}: {what}");
                    }
                }
                Err(e) => problems.push(format!("{workload} ({got}): {e}")),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {ran} commands or causes are wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(ran >= 20, "only {ran} commands");
}

#[test]
fn shell_words_split_like_sh() {
    assert_eq!(
        shell_words(r#"kubectl patch deployment/web -p='[{"op":"x"}]' | grep -A8 "a b""#),
        vec![
            vec!["kubectl", "patch", "deployment/web", r#"-p=[{"op":"x"}]"#],
            vec!["grep", "-A8", "a b"],
        ]
    );
    assert_eq!(
        shell_words(r#"kubectl get x -o jsonpath='{.a}{"\n"}'"#)[0][4],
        r#"jsonpath={.a}{"\n"}"#
    );
    assert_eq!(
        fill("--from-literal=<key>=<value>", "n1"),
        "--from-literal=key=value"
    );
    assert_eq!(fill("<node>", "n1"), "n1");
}

/// One log line per log rule (`src/diagnose/log_rules.rs`): what a crashed run prints.
const LOG_LINES: &[&str] = &[
    "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
    "listen tcp :8080: bind: address already in use",
    "panic: environment variable DATABASE_URL is not set",
    "panic: open /etc/app/config.yaml: no such file or directory",
    "dial tcp: lookup postgres.shop.svc on 10.96.0.10:53: no such host",
    "panic: dial tcp postgres:5432: connect: connection refused",
    "error: migration 20240514_add_orders failed: relation \"orders\" already exists",
    "open /data/cache.db: permission denied",
    "panic: runtime error: invalid memory address or nil pointer dereference",
];

/// Every command of every log rule, for a Deployment's crash-looping pod, a CronJob's
/// failed Job pod and a bare pod, run against the real server as the table's are: the
/// commands fit the kind (no `set env` on a Job, no `rollout` without a rollout).
#[test]
fn every_log_rule_command_works_on_the_real_server_for_each_kind() {
    use opsctrl_daemon::detect::classify::{NothingKnown, Thresholds, classify};
    use opsctrl_daemon::detect::workload::workload_of;
    use opsctrl_daemon::diagnose::{Context, log_rules};
    use opsctrl_daemon::kube::types::Pod;
    use opsctrl_daemon::model::PodRecord;

    let Some(c) = real_api::shared() else { return };
    let s = Stage::new(c, "logfix");
    let node = s.node();
    let crash = State::CrashLoop {
        restarts: 3,
        exit: 1,
        reason: "Error",
    };
    let web = [ctr("web", "registry.example.com/shop/web:1.4.2")];
    let (_, rs) = s.deployment("web", 1, &web);
    let mut deployed = s.pod(Some(&rs), &format!("{}-7xk2p", rs.name), &web);
    s.bind(&mut deployed, &node);
    s.status(&deployed, stage::pod_status(&deployed, &s.ns, &[crash]));
    let report = [ctr("report", "ghcr.io/example/report:1.0")];
    let (_, job) = s.cronjob("report", &report);
    let mut jobbed = s.pod(Some(&job), &format!("{}-9fj2k", job.name), &report);
    s.bind(&mut jobbed, &node);
    let done = State::Terminated {
        exit: 1,
        reason: "Error",
    };
    s.status(&jobbed, stage::pod_status(&jobbed, &s.ns, &[done]));
    let tool = [ctr("tool", "ghcr.io/example/tool:1")];
    let mut bare = s.pod(None, "tool", &tool);
    s.bind(&mut bare, &node);
    let crash = State::CrashLoop {
        restarts: 2,
        exit: 1,
        reason: "Error",
    };
    s.status(&bare, stage::pod_status(&bare, &s.ns, &[crash]));

    let mut problems = Vec::new();
    let mut ran = 0;
    for staged in [&deployed, &jobbed, &bare] {
        let obj = c.get(&format!("/api/v1/namespaces/{}/pods/{}", s.ns, staged.name));
        let pod = PodRecord::from(serde_json::from_value::<Pod>(obj).expect("a pod"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let Some(finding) = classify(&pod, &NothingKnown, now, &Thresholds::default())
            .into_iter()
            .next()
        else {
            problems.push(format!("{}: no finding", staged.name));
            continue;
        };
        let workload = workload_of(&pod);
        for line in LOG_LINES {
            let logs = vec![line.to_string()];
            let ctx = Context {
                finding: &finding,
                pod: &pod,
                workload: &workload,
                events: &[],
                logs: &logs,
                rollout: &opsctrl_daemon::model::Rollout::default(),
            };
            let Some(d) = log_rules::diagnose(&ctx, pod.containers.first()) else {
                problems.push(format!("{}: no log cause for {line:?}", staged.name));
                continue;
            };
            for cmd in &d.fix.commands {
                ran += 1;
                if let Err(e) = run_command(c, cmd, &node) {
                    problems.push(format!(
                        "{} {} ({}): {e}",
                        workload.kind, staged.name, d.cause
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {ran} log-rule commands are wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(ran >= 60, "only {ran} commands");
}
