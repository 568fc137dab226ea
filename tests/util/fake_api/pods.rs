//! Kubelet-shaped pod JSON for tests and the benchmark server.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::{new_uid, rfc3339};

#[derive(Clone, Debug)]
enum CState {
    Running {
        ready: bool,
    },
    CrashLoop {
        restarts: u32,
        exit_code: i32,
        reason: String,
    },
    Waiting {
        reason: String,
        message: String,
        pulled: bool,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
    },
}

#[derive(Clone, Debug)]
struct Container {
    name: String,
    image: String,
    state: CState,
}

#[derive(Clone, Debug)]
enum PodPhase {
    /// Derived from the containers (Running or Pending).
    FromContainers,
    Unschedulable(String),
    Failed {
        reason: String,
        message: String,
    },
    Succeeded,
}

/// Builds pod JSON shaped the way kube-apiserver serves pods written by the scheduler and a
/// v1.32 kubelet. State methods act on the first (main) container.
#[derive(Clone, Debug)]
pub struct PodBuilder {
    ns: String,
    name: String,
    uid: String,
    labels: BTreeMap<String, String>,
    owner_rs: Option<String>,
    node: String,
    restart_policy: String,
    containers: Vec<Container>,
    phase: PodPhase,
    terminating: bool,
    age: Duration,
}

/// A healthy running pod `ns/name` owned by a ReplicaSet, on node `worker-1`.
///
/// Names shaped like `app-<rs hash>-<5 chars>` get the matching ReplicaSet `app-<rs hash>`
/// and `app=<app>` label; other names get a ReplicaSet `<name>-<hash>`.
pub fn pod(ns: &str, name: &str) -> PodBuilder {
    let parts: Vec<&str> = name.split('-').collect();
    let (app, rs) = if parts.len() >= 3 && parts[parts.len() - 1].len() == 5 {
        let rs = parts[..parts.len() - 1].join("-");
        (parts[..parts.len() - 2].join("-"), rs)
    } else {
        (name.to_string(), format!("{name}-{}", hash10(name)))
    };
    let hash = rs.rsplit('-').next().unwrap_or("").to_string();
    let mut labels = BTreeMap::new();
    labels.insert("app".to_string(), app.clone());
    labels.insert("pod-template-hash".to_string(), hash);
    PodBuilder {
        ns: ns.to_string(),
        name: name.to_string(),
        uid: new_uid(),
        labels,
        owner_rs: Some(rs),
        node: "worker-1".to_string(),
        restart_policy: "Always".to_string(),
        containers: vec![Container {
            name: "app".to_string(),
            image: format!("registry.example.com/{app}:1.4.2"),
            state: CState::Running { ready: true },
        }],
        phase: PodPhase::FromContainers,
        terminating: false,
        age: Duration::from_secs(600),
    }
}

fn hash10(s: &str) -> String {
    // Stable pod-template-hash-looking suffix (the alphabet kube uses: no vowels).
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 1469598103934665603;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1099511628211);
    }
    (0..10)
        .map(|i| ALPHA[((h >> (i * 6)) % ALPHA.len() as u64) as usize] as char)
        .collect()
}

fn hex64(seed: &str) -> String {
    let mut out = String::new();
    let mut h: u64 = 0xcbf29ce484222325;
    for round in 0..4u64 {
        for b in seed.bytes().chain(round.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        out += &format!("{h:016x}");
    }
    out
}

/// Go's time.Duration formatting for whole seconds ("40s", "2m40s", "5m0s").
fn go_duration(secs: u64) -> String {
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

impl PodBuilder {
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.to_string(), v.to_string());
        self
    }
    pub fn uid(mut self, uid: &str) -> Self {
        self.uid = uid.to_string();
        self
    }
    pub fn node(mut self, node: &str) -> Self {
        self.node = node.to_string();
        self
    }
    /// How long ago the pod was created (default 10 min).
    pub fn age(mut self, age: Duration) -> Self {
        self.age = age;
        self
    }

    fn main(mut self, state: CState) -> Self {
        self.phase = PodPhase::FromContainers;
        self.containers[0].state = state;
        self
    }

    /// Running and ready (the default).
    pub fn running(self) -> Self {
        self.main(CState::Running { ready: true })
    }
    /// Running but its readiness probe fails.
    pub fn not_ready(self) -> Self {
        self.main(CState::Running { ready: false })
    }
    /// CrashLoopBackOff after `restarts` restarts; the last run ended with
    /// `last_exit_code`/`last_reason` (e.g. 1/"Error", 137/"OOMKilled").
    pub fn crash_loop(self, restarts: u32, last_exit_code: i32, last_reason: &str) -> Self {
        self.main(CState::CrashLoop {
            restarts: restarts.max(1),
            exit_code: last_exit_code,
            reason: last_reason.to_string(),
        })
    }
    pub fn oom_killed(self, restarts: u32) -> Self {
        self.crash_loop(restarts, 137, "OOMKilled")
    }
    pub fn image_pull_backoff(self) -> Self {
        let image = self.containers[0].image.clone();
        self.main(CState::Waiting {
            reason: "ImagePullBackOff".into(),
            message: format!("Back-off pulling image \"{image}\""),
            pulled: false,
        })
    }
    pub fn err_image_pull(self) -> Self {
        let image = self.containers[0].image.clone();
        let message = format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {image}: not found"
        );
        self.main(CState::Waiting {
            reason: "ErrImagePull".into(),
            message,
            pulled: false,
        })
    }
    /// e.g. `secret "db-password" not found`.
    pub fn create_container_config_error(self, msg: &str) -> Self {
        self.main(CState::Waiting {
            reason: "CreateContainerConfigError".into(),
            message: msg.to_string(),
            pulled: true,
        })
    }
    /// Not scheduled: PodScheduled=False/Unschedulable with the scheduler's message.
    pub fn pending_unschedulable(mut self, msg: &str) -> Self {
        self.phase = PodPhase::Unschedulable(msg.to_string());
        self
    }
    /// Phase Failed with a pod-level reason/message (Evicted, DeadlineExceeded, ...).
    pub fn phase_failed(mut self, reason: &str, msg: &str) -> Self {
        self.phase = PodPhase::Failed {
            reason: reason.to_string(),
            message: msg.to_string(),
        };
        self
    }
    pub fn evicted(self, msg: &str) -> Self {
        self.phase_failed("Evicted", msg)
    }
    /// All containers exited 0 (restartPolicy becomes Never, like a Job pod).
    pub fn succeeded(mut self) -> Self {
        self.phase = PodPhase::Succeeded;
        self.restart_policy = "Never".to_string();
        self
    }
    /// Being deleted: deletionTimestamp set, grace period 30 s.
    pub fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }

    pub fn build(&self) -> Value {
        let now = SystemTime::now();
        let at = |ago: Duration| rfc3339(now.checked_sub(ago).unwrap_or(now));
        let created = at(self.age);
        let started = at(self.age.saturating_sub(Duration::from_secs(3)));
        let sa_volume = format!("kube-api-access-{}", &hash10(&self.uid)[..5]);
        let scheduled = !matches!(self.phase, PodPhase::Unschedulable(_));

        let mut metadata = json!({
            "name": self.name,
            "namespace": self.ns,
            "uid": self.uid,
            "creationTimestamp": created,
            "labels": self.labels,
        });
        if let Some(rs) = &self.owner_rs {
            metadata["generateName"] = json!(format!("{rs}-"));
            metadata["ownerReferences"] = json!([{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                "uid": format!("{}-{}-4{}-8{}-{}", &hex64(rs)[..8], &hex64(rs)[8..12], &hex64(rs)[12..15], &hex64(rs)[15..18], &hex64(rs)[18..30]),
                "controller": true, "blockOwnerDeletion": true
            }]);
        }
        if self.terminating {
            metadata["deletionTimestamp"] = json!(at(Duration::ZERO));
            metadata["deletionGracePeriodSeconds"] = json!(30);
        }

        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": c.image,
                    "ports": [{"containerPort": 8080, "protocol": "TCP", "name": "http"}],
                    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                    "volumeMounts": [{"name": sa_volume, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent"
                })
            })
            .collect();
        let mut spec = json!({
            "volumes": [{"name": sa_volume, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ], "defaultMode": 420}}],
            "containers": containers,
            "restartPolicy": self.restart_policy,
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        });
        if scheduled {
            spec["nodeName"] = json!(self.node);
        }

        let status = match &self.phase {
            PodPhase::Unschedulable(msg) => json!({
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                                "lastTransitionTime": created, "reason": "Unschedulable", "message": msg}],
                "qosClass": "Burstable"
            }),
            _ => self.kubelet_status(&created, &started, &sa_volume, &at),
        };
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status})
    }

    fn container_id(&self, c: &Container, run: u32) -> String {
        format!(
            "containerd://{}",
            hex64(&format!("{}/{}/{}/{run}", self.uid, self.name, c.name))
        )
    }

    fn image_id(c: &Container) -> String {
        let repo = c.image.split(':').next().unwrap_or(&c.image);
        format!("{repo}@sha256:{}", hex64(&c.image))
    }

    fn kubelet_status(
        &self,
        created: &str,
        started: &str,
        sa_volume: &str,
        at: &dyn Fn(Duration) -> String,
    ) -> Value {
        let failed = matches!(self.phase, PodPhase::Failed { .. });
        let succeeded = matches!(self.phase, PodPhase::Succeeded);
        let mut statuses: Vec<(String, Value, bool, bool)> = Vec::new(); // (name, status, ready, ever ran)
        for c in &self.containers {
            let mounts = json!([{"name": sa_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                                 "readOnly": true, "recursiveReadOnly": "Disabled"}]);
            let base = |state: Value,
                        last: Value,
                        ready: bool,
                        restarts: u32,
                        started_flag: bool,
                        cid: Option<String>,
                        pulled: bool| {
                let mut s = json!({
                    "name": c.name, "state": state, "lastState": last, "ready": ready, "restartCount": restarts,
                    "image": c.image, "imageID": if pulled { Self::image_id(c) } else { String::new() },
                    "started": started_flag, "volumeMounts": mounts
                });
                if let Some(id) = cid {
                    s["containerID"] = json!(id);
                }
                s
            };
            let state = if failed {
                // What the kubelet reports for containers it killed (eviction, deadline).
                CState::Terminated {
                    exit_code: 137,
                    reason: "Error".into(),
                    message: String::new(),
                }
            } else if succeeded {
                CState::Terminated {
                    exit_code: 0,
                    reason: "Completed".into(),
                    message: String::new(),
                }
            } else {
                c.state.clone()
            };
            let (st, ready, ran) = match &state {
                CState::Running { ready } => (
                    base(
                        json!({"running": {"startedAt": started}}),
                        json!({}),
                        *ready,
                        0,
                        true,
                        Some(self.container_id(c, 0)),
                        true,
                    ),
                    *ready,
                    true,
                ),
                CState::CrashLoop {
                    restarts,
                    exit_code,
                    reason,
                } => {
                    let backoff = (10u64 << (restarts - 1).min(5)).min(300);
                    let cid = self.container_id(c, *restarts);
                    let last = json!({"terminated": {
                        "exitCode": exit_code, "reason": reason,
                        "startedAt": at(Duration::from_secs(backoff + 12)), "finishedAt": at(Duration::from_secs(backoff)),
                        "containerID": cid
                    }});
                    let waiting = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                        "back-off {} restarting failed container={} pod={}_{}({})", go_duration(backoff), c.name, self.name, self.ns, self.uid)}});
                    (
                        base(waiting, last, false, *restarts, false, Some(cid), true),
                        false,
                        true,
                    )
                }
                CState::Waiting {
                    reason,
                    message,
                    pulled,
                } => (
                    base(
                        json!({"waiting": {"reason": reason, "message": message}}),
                        json!({}),
                        false,
                        0,
                        false,
                        None,
                        *pulled,
                    ),
                    false,
                    false,
                ),
                CState::Terminated {
                    exit_code,
                    reason,
                    message,
                } => {
                    let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": started,
                                       "finishedAt": at(Duration::from_secs(30)), "containerID": self.container_id(c, 0)});
                    if !message.is_empty() {
                        t["message"] = json!(message);
                    }
                    (
                        base(
                            json!({"terminated": t}),
                            json!({}),
                            false,
                            0,
                            false,
                            Some(self.container_id(c, 0)),
                            true,
                        ),
                        false,
                        true,
                    )
                }
            };
            statuses.push((c.name.clone(), st, ready, ran));
        }
        statuses.sort_by(|a, b| a.0.cmp(&b.0)); // the kubelet sorts container statuses by name

        let unready: Vec<&str> = statuses
            .iter()
            .filter(|s| !s.2)
            .map(|s| s.0.as_str())
            .collect();
        let all_ready = unready.is_empty();
        let cond = |t: &str, ok: bool, reason: Option<&str>, msg: Option<String>| {
            let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": if ok { started.to_string() } else { at(Duration::from_secs(30)) }});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            if let Some(m) = msg {
                c["message"] = json!(m);
            }
            c
        };
        let unready_msg = format!("containers with unready status: [{}]", unready.join(" "));
        let (phase, ready_reason) = if failed {
            ("Failed", Some("PodFailed"))
        } else if succeeded {
            ("Succeeded", Some("PodCompleted"))
        } else if statuses.iter().all(|s| !s.3) {
            ("Pending", Some("ContainersNotReady"))
        } else {
            ("Running", Some("ContainersNotReady"))
        };
        let done = failed || succeeded;
        let mut conditions = Vec::new();
        if let PodPhase::Failed { reason, message } = &self.phase {
            if reason == "Evicted" {
                conditions.push(cond(
                    "DisruptionTarget",
                    true,
                    Some("TerminationByKubelet"),
                    Some(message.clone()),
                ));
            }
        }
        conditions.push(cond("PodReadyToStartContainers", !done, None, None));
        conditions.push(cond(
            "Initialized",
            true,
            if succeeded {
                Some("PodCompleted")
            } else {
                None
            },
            None,
        ));
        let ready_msg = if done {
            None
        } else {
            Some(unready_msg.clone())
        };
        conditions.push(cond(
            "Ready",
            all_ready && !done,
            if all_ready && !done {
                None
            } else {
                ready_reason
            },
            if all_ready { None } else { ready_msg.clone() },
        ));
        conditions.push(cond(
            "ContainersReady",
            all_ready && !done,
            if all_ready && !done {
                None
            } else {
                ready_reason
            },
            if all_ready { None } else { ready_msg },
        ));
        conditions.push(cond("PodScheduled", true, None, None));

        let h = hex64(&self.uid);
        let ip = format!(
            "10.244.{}.{}",
            h.as_bytes()[0] % 8 + 1,
            u8::from_str_radix(&h[2..4], 16).unwrap_or(7) % 250 + 2
        );
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": "10.0.0.11",
            "hostIPs": [{"ip": "10.0.0.11"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": created,
            "containerStatuses": statuses.into_iter().map(|s| s.1).collect::<Vec<_>>(),
            "qosClass": "Burstable"
        });
        if let PodPhase::Failed { reason, message } = &self.phase {
            status["reason"] = json!(reason);
            status["message"] = json!(message);
        }
        status
    }
}
