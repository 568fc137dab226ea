/*!
Staging on the real API server what kube-controller-manager, the scheduler and kubelet would
write, since none of them runs here:

- workloads and the objects their controllers make: a Deployment's ReplicaSet
  (`<deployment>-<pod-template-hash>`), a CronJob's Job (`<cronjob>-<scheduled minutes>`), and
  pods with `ownerReferences` carrying the owners' real uids;
- a Node (with the status kubelet posts), and scheduling as the scheduler does it:
  `POST pods/{name}/binding`, or a `PodScheduled=False/Unschedulable` condition plus an
  `events.k8s.io/v1` FailedScheduling Event;
- `PATCH pods/{name}/status` (a strategic merge patch, as kubelet sends) with the phases,
  conditions, container states, `lastState`, restart counts and messages that kubelet and
  containerd write, and kubelet's core/v1 Events.

The texts follow kubelet 1.28 (`pkg/kubelet/kuberuntime`, `pkg/kubelet/images`, `events`) and
containerd 1.7's CRI error strings.
*/

use serde_json::{Value, json};

use crate::util::real_api::Cluster;

/// A created object: what an ownerReference needs.
#[derive(Clone, Debug)]
pub struct Obj {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl Obj {
    fn from(v: &Value) -> Obj {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Obj {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            name: s("/metadata/name"),
            uid: s("/metadata/uid"),
        }
    }
    /// A controller ownerReference, as the workload controllers set it.
    pub fn owner_ref(&self) -> Value {
        json!([{"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "uid": self.uid, "controller": true, "blockOwnerDeletion": true}])
    }
}

/// A time `secs_ago` seconds in the past, RFC 3339 (seconds).
pub fn ago(secs_ago: u64) -> String {
    rfc3339(now_secs().saturating_sub(secs_ago))
}

/// Now with microseconds (`MicroTime`, as events.k8s.io/v1 wants it).
pub fn micro_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = rfc3339(d.as_secs());
    format!("{}.{:06}Z", &s[..19], d.subsec_micros())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc3339(t: u64) -> String {
    opsctrl_daemon::util::time::format_rfc3339(t as i64)
}

/// A containerd container id: `containerd://` and 64 hex digits.
fn container_id(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!(
        "containerd://{:016x}{:016x}{:016x}{:016x}",
        h,
        h.rotate_left(16),
        h.rotate_left(32),
        h.rotate_left(48)
    )
}

/// The image id containerd reports for a pulled image.
fn image_id(image: &str) -> String {
    let repo = image.split(':').next().unwrap_or(image);
    let full = if repo.contains('/') && repo.split('/').next().is_some_and(|h| h.contains('.')) {
        repo.to_string()
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!(
        "{full}@sha256:{}",
        &container_id(image)["containerd://".len()..]
    )
}

/// One test namespace's staging area.
pub struct Stage<'a> {
    pub c: &'a Cluster,
    pub ns: String,
}

/// A container for a pod template: name, image, memory limit and an optional probe.
#[derive(Clone, Debug)]
pub struct Ctr {
    pub name: String,
    pub image: String,
    pub memory_limit: Option<String>,
    pub liveness_http: Option<(String, u16)>,
    pub env_from_configmap: Option<String>,
    pub memory_request: Option<String>,
}

pub fn ctr(name: &str, image: &str) -> Ctr {
    Ctr {
        name: name.into(),
        image: image.into(),
        memory_limit: None,
        liveness_http: None,
        env_from_configmap: None,
        memory_request: None,
    }
}

impl Ctr {
    pub fn memory_limit(mut self, q: &str) -> Ctr {
        self.memory_limit = Some(q.into());
        self
    }
    pub fn memory_request(mut self, q: &str) -> Ctr {
        self.memory_request = Some(q.into());
        self
    }
    pub fn liveness(mut self, path: &str, port: u16) -> Ctr {
        self.liveness_http = Some((path.into(), port));
        self
    }
    pub fn config_from(mut self, configmap: &str) -> Ctr {
        self.env_from_configmap = Some(configmap.into());
        self
    }
    fn spec(&self) -> Value {
        let mut c = json!({"name": self.name, "image": self.image,
                           "ports": [{"name": "http", "containerPort": 8080}]});
        let mut res = json!({});
        if let Some(l) = &self.memory_limit {
            res["limits"] = json!({"memory": l});
            res["requests"] = json!({"memory": l, "cpu": "50m"});
        }
        if let Some(r) = &self.memory_request {
            res["requests"] = json!({"memory": r, "cpu": "50m"});
        }
        if res != json!({}) {
            c["resources"] = res;
        }
        if let Some((path, port)) = &self.liveness_http {
            c["livenessProbe"] = json!({"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3,
                "successThreshold": 1});
        }
        if let Some(cm) = &self.env_from_configmap {
            c["env"] = json!([{"name": "APP_MODE", "valueFrom":
                {"configMapKeyRef": {"name": cm, "key": "mode"}}}]);
        }
        c
    }
}

fn template(app: &str, containers: &[Ctr], restart: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {
            "restartPolicy": restart,
            "containers": containers.iter().map(Ctr::spec).collect::<Vec<_>>(),
        }
    })
}

/// A pod as created by a controller or a user.
#[derive(Clone, Debug)]
pub struct StagedPod {
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub containers: Vec<Ctr>,
}

impl<'a> Stage<'a> {
    pub fn new(c: &'a Cluster, ns_prefix: &str) -> Stage<'a> {
        let ns = c.namespace(ns_prefix);
        Stage { c, ns }
    }

    pub fn in_namespace(c: &'a Cluster, ns: &str) -> Stage<'a> {
        Stage { c, ns: ns.into() }
    }

    fn path(&self, group: &str, resource: &str) -> String {
        if group.is_empty() {
            format!("/api/v1/namespaces/{}/{resource}", self.ns)
        } else {
            format!("/apis/{group}/namespaces/{}/{resource}", self.ns)
        }
    }

    // ------------------------------------------------------------------------------------
    // Nodes
    // ------------------------------------------------------------------------------------

    /// A Ready node with the status kubelet posts (4 CPU, 8 GiB), under a unique name.
    pub fn node(&self) -> String {
        let name = self.c.unique("worker");
        let labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64"});
        self.c.post(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": labels}}),
        );
        let now = ago(0);
        let cond = |t: &str, s: &str, reason: &str, msg: &str| {
            json!({"type": t, "status": s, "reason": reason, "message": msg,
                   "lastHeartbeatTime": now, "lastTransitionTime": ago(3600)})
        };
        let cap = json!({"cpu": "4", "memory": "8148008Ki", "pods": "110",
                         "ephemeral-storage": "51287520Ki"});
        self.c.patch(
            &format!("/api/v1/nodes/{name}/status"),
            &json!({"status": {
                "capacity": cap, "allocatable": cap,
                "conditions": [
                    cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ],
                // Only the InternalIP (kubelet also reports its Hostname, which the API
                // server would try first): a call for the kubelet gets a quick "connection
                // refused" and never waits on DNS.
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": "0", "systemUUID": "0", "bootID": "0",
                    "kernelVersion": "6.1.0-18-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.13", "kubeletVersion": "v1.28.7",
                    "kubeProxyVersion": "v1.28.7", "operatingSystem": "linux", "architecture": "amd64"}
            }}),
        );
        name
    }

    // ------------------------------------------------------------------------------------
    // Workloads and what their controllers create
    // ------------------------------------------------------------------------------------

    /// A Deployment and its current ReplicaSet (`<name>-<hash>`, owned by it).
    /// Returns (deployment, replicaset).
    pub fn deployment(&self, name: &str, replicas: u32, containers: &[Ctr]) -> (Obj, Obj) {
        self.deployment_with(name, replicas, containers, &json!({}))
    }

    /// The same, with the fields of `extra` in the pod template's spec (a nodeSelector).
    pub fn deployment_with(
        &self,
        name: &str,
        replicas: u32,
        containers: &[Ctr],
        extra: &Value,
    ) -> (Obj, Obj) {
        let mut tpl = template(name, containers, "Always");
        for (k, v) in extra.as_object().into_iter().flatten() {
            tpl["spec"][k] = v.clone();
        }
        let d = Obj::from(&self.c.post(
            &self.path("apps/v1", "deployments"),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "labels": {"app": name}},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                             "template": tpl}}),
        ));
        let hash = &container_id(&d.uid)["containerd://".len()..][..10];
        // The controller's hash alphabet: no vowels, so it never spells a word.
        let hash: String = hash
            .chars()
            .map(|c| match c {
                'a' => 'b',
                'e' => 'f',
                '0' => '7',
                '1' => '8',
                '3' => '9',
                other => other,
            })
            .collect();
        let mut rs_tpl = tpl.clone();
        rs_tpl["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let rs = Obj::from(&self.c.post(
            &self.path("apps/v1", "replicasets"),
            &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("{name}-{hash}"),
                                 "labels": {"app": name, "pod-template-hash": hash},
                                 "annotations": {"deployment.kubernetes.io/revision": "1",
                                                 "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                                                 "deployment.kubernetes.io/max-replicas": (replicas + 1).to_string()},
                                 "ownerReferences": d.owner_ref()},
                    "spec": {"replicas": replicas,
                             "selector": {"matchLabels": {"app": name, "pod-template-hash": hash}},
                             "template": rs_tpl}}),
        ));
        (d, rs)
    }

    pub fn statefulset(&self, name: &str, containers: &[Ctr]) -> Obj {
        Obj::from(&self.c.post(
            &self.path("apps/v1", "statefulsets"),
            &json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": name},
                    "spec": {"replicas": 1, "serviceName": name,
                             "selector": {"matchLabels": {"app": name}},
                             "template": template(name, containers, "Always")}}),
        ))
    }

    pub fn daemonset(&self, name: &str, containers: &[Ctr]) -> Obj {
        Obj::from(&self.c.post(
            &self.path("apps/v1", "daemonsets"),
            &json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                    "metadata": {"name": name},
                    "spec": {"selector": {"matchLabels": {"app": name}},
                             "template": template(name, containers, "Always")}}),
        ))
    }

    /// A Job (owned by `owner` when a CronJob made it).
    pub fn job(&self, name: &str, containers: &[Ctr], owner: Option<&Obj>) -> Obj {
        self.job_with(name, containers, owner, None)
    }

    /// A Job whose pods have `spec.activeDeadlineSeconds` (kubelet enforces it per pod).
    pub fn job_with(
        &self,
        name: &str,
        containers: &[Ctr],
        owner: Option<&Obj>,
        pod_deadline: Option<u32>,
    ) -> Obj {
        let mut tpl = template(name, containers, "Never");
        if let Some(d) = pod_deadline {
            tpl["spec"]["activeDeadlineSeconds"] = json!(d);
        }
        let mut meta = json!({"name": name});
        if let Some(o) = owner {
            meta["ownerReferences"] = o.owner_ref();
            meta["annotations"] =
                json!({"batch.kubernetes.io/cronjob-scheduled-timestamp": ago(60)});
        }
        Obj::from(&self.c.post(
            &self.path("batch/v1", "jobs"),
            &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                    "spec": {"backoffLimit": 0, "template": tpl}}),
        ))
    }

    /// A CronJob and the Job it made for the last schedule (`<name>-<unix minutes>`).
    pub fn cronjob(&self, name: &str, containers: &[Ctr]) -> (Obj, Obj) {
        let cj = Obj::from(&self.c.post(
            &self.path("batch/v1", "cronjobs"),
            &json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
                    "spec": {"schedule": "*/5 * * * *",
                             "jobTemplate": {"spec": {"backoffLimit": 0,
                                 "template": template(name, containers, "Never")}}}}),
        ));
        let minutes = now_secs() / 60 / 5 * 5;
        let job = self.job(&format!("{name}-{minutes}"), containers, Some(&cj));
        (cj, job)
    }

    /// A pod as `owner`'s controller creates it (`None`: a bare pod), named `name`.
    pub fn pod(&self, owner: Option<&Obj>, name: &str, containers: &[Ctr]) -> StagedPod {
        self.pod_with(owner, name, containers, None)
    }

    /// A pod with `spec.activeDeadlineSeconds`.
    pub fn pod_with(
        &self,
        owner: Option<&Obj>,
        name: &str,
        containers: &[Ctr],
        deadline: Option<u32>,
    ) -> StagedPod {
        let extra = deadline.map_or(json!({}), |d| json!({"activeDeadlineSeconds": d}));
        self.pod_spec(owner, name, containers, &extra)
    }

    /// A pod whose spec also has the fields of `extra` (copied from its template, as the
    /// controllers do: a nodeSelector, a deadline).
    pub fn pod_spec(
        &self,
        owner: Option<&Obj>,
        name: &str,
        containers: &[Ctr],
        extra: &Value,
    ) -> StagedPod {
        let restart = if owner.is_some_and(|o| o.kind == "Job") {
            "Never"
        } else {
            "Always"
        };
        let app = owner.map_or(name, |o| o.name.as_str());
        let mut body = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app}},
            "spec": template(app, containers, restart)["spec"].clone()});
        if let Some(o) = owner {
            body["metadata"]["ownerReferences"] = o.owner_ref();
            if o.kind == "Job" {
                body["metadata"]["labels"]["job-name"] = json!(o.name);
                body["metadata"]["labels"]["batch.kubernetes.io/job-name"] = json!(o.name);
                body["metadata"]["labels"]["controller-uid"] = json!(o.uid);
            }
            if o.kind == "ReplicaSet" {
                let hash = o.name.rsplit('-').next().unwrap_or("");
                body["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            }
        }
        for (k, v) in extra.as_object().into_iter().flatten() {
            body["spec"][k] = v.clone();
        }
        let v = self.c.post(&self.path("", "pods"), &body);
        StagedPod {
            name: name.into(),
            uid: Obj::from(&v).uid,
            node: None,
            containers: containers.to_vec(),
        }
    }

    /// What the scheduler does on success: `POST pods/{name}/binding`, then kubelet's
    /// first status (Pending, containers ContainerCreating).
    pub fn bind(&self, pod: &mut StagedPod, node: &str) {
        self.c.post(
            &format!("{}/{}/binding", self.path("", "pods"), pod.name),
            &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod.name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}),
        );
        pod.node = Some(node.into());
    }

    /// `PATCH pods/{name}/status` with `status`.
    pub fn status(&self, pod: &StagedPod, status: Value) {
        self.c.patch(
            &format!("{}/{}/status", self.path("", "pods"), pod.name),
            &json!({ "status": status }),
        );
    }

    // ------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------

    /// A core/v1 Event from kubelet about `pod` (its container `container` when given),
    /// as kubelet's recorder writes it (`<pod>.<hex nanos>`, source kubelet on the node).
    pub fn kubelet_event(
        &self,
        pod: &StagedPod,
        container: Option<&str>,
        kind: &str,
        reason: &str,
        message: &str,
        count: u32,
    ) {
        let node = pod.node.clone().unwrap_or_default();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut involved = json!({"kind": "Pod", "namespace": self.ns, "name": pod.name,
                                  "uid": pod.uid, "apiVersion": "v1"});
        if let Some(c) = container {
            involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
        }
        self.c.post(
            &self.path("", "events"),
            &json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{}.{nanos:x}", pod.name), "namespace": self.ns},
                "involvedObject": involved, "reason": reason, "message": message,
                "source": {"component": "kubelet", "host": node},
                "firstTimestamp": ago(600), "lastTimestamp": ago(5), "count": count,
                "type": kind, "eventTime": null, "reportingComponent": "kubelet",
                "reportingInstance": node}),
        );
    }

    /// The scheduler's `events.k8s.io/v1` FailedScheduling Event (its `note` is the message;
    /// the scheduler leaves the deprecated core fields empty).
    pub fn scheduler_event(&self, pod: &StagedPod, note: &str) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.c.post(
            &format!("/apis/events.k8s.io/v1/namespaces/{}/events", self.ns),
            &json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"name": format!("{}.{nanos:x}", pod.name), "namespace": self.ns},
                "eventTime": micro_now(), "reportingController": "default-scheduler",
                "reportingInstance": "default-scheduler-control-plane",
                "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
                "regarding": {"kind": "Pod", "namespace": self.ns, "name": pod.name,
                              "uid": pod.uid, "apiVersion": "v1"},
                "note": note}),
        );
    }
}

// ----------------------------------------------------------------------------------------
// Pod status as kubelet writes it
// ----------------------------------------------------------------------------------------

fn conditions(ready: bool, scheduled_ago: u64, ready_ago: u64, unready: &[&str]) -> Value {
    let t = |s: bool| if s { "True" } else { "False" };
    let mut ready_cond = json!({"type": "Ready", "status": t(ready), "lastProbeTime": null,
                                "lastTransitionTime": ago(ready_ago)});
    let mut cr = json!({"type": "ContainersReady", "status": t(ready), "lastProbeTime": null,
                        "lastTransitionTime": ago(ready_ago)});
    if !ready {
        let msg = format!("containers with unready status: [{}]", unready.join(" "));
        ready_cond["reason"] = json!("ContainersNotReady");
        ready_cond["message"] = json!(msg);
        cr["reason"] = json!("ContainersNotReady");
        cr["message"] = json!(msg);
    }
    json!([
        {"type": "Initialized", "status": "True", "lastProbeTime": null,
         "lastTransitionTime": ago(scheduled_ago)},
        ready_cond,
        cr,
        {"type": "PodScheduled", "status": "True", "lastProbeTime": null,
         "lastTransitionTime": ago(scheduled_ago)},
    ])
}

/// How one container is, as kubelet reports it.
#[derive(Clone, Debug)]
pub enum State {
    Running,
    /// waiting CrashLoopBackOff after `restarts` exits with `exit` (`reason`: Error, OOMKilled).
    CrashLoop {
        restarts: u32,
        exit: i32,
        reason: &'static str,
    },
    /// Running again after `restarts` restarts; the last one ended with `exit`/`reason`.
    RunningAfter {
        restarts: u32,
        exit: i32,
        reason: &'static str,
    },
    /// waiting with `reason` and `message` (ImagePullBackOff, ErrImagePull, CreateContainerConfigError).
    Waiting {
        reason: &'static str,
        message: String,
    },
    /// terminated (a Job's container) with `exit`/`reason`.
    Terminated {
        exit: i32,
        reason: &'static str,
    },
}

fn container_status(pod: &StagedPod, ns: &str, c: &Ctr, state: &State) -> Value {
    let id = container_id(&format!("{}/{}/{}", pod.uid, c.name, 0));
    let base = json!({"name": c.name, "image": c.image, "imageID": image_id(&c.image),
                      "restartCount": 0, "ready": false, "started": false});
    let terminated = |exit: i32, reason: &str, started: u64, finished: u64, seed: u32| {
        json!({"exitCode": exit, "reason": reason, "startedAt": ago(started),
               "finishedAt": ago(finished),
               "containerID": container_id(&format!("{}/{}/{seed}", pod.uid, c.name))})
    };
    let mut s = base;
    match state {
        State::Running => {
            s["state"] = json!({"running": {"startedAt": ago(900)}});
            s["ready"] = json!(true);
            s["started"] = json!(true);
            s["containerID"] = json!(id);
            s["lastState"] = json!({});
        }
        State::CrashLoop {
            restarts,
            exit,
            reason,
        } => {
            // kubelet's message since 1.27: "back-off 5m0s restarting failed container=NAME pod=POD_NS(UID)"
            let backoff = match restarts {
                0 | 1 => "10s",
                2 => "20s",
                3 => "40s",
                4 => "1m20s",
                5 => "2m40s",
                _ => "5m0s",
            };
            s["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                "back-off {backoff} restarting failed container={} pod={}_{ns}({})",
                c.name, pod.name, pod.uid)}});
            s["lastState"] = json!({"terminated": terminated(*exit, reason, 75, 70, *restarts)});
            s["restartCount"] = json!(restarts);
            s["containerID"] = json!(container_id(&format!("{}/{}/{restarts}", pod.uid, c.name)));
        }
        State::RunningAfter {
            restarts,
            exit,
            reason,
        } => {
            s["state"] = json!({"running": {"startedAt": ago(20)}});
            s["lastState"] = json!({"terminated": terminated(*exit, reason, 90, 21, *restarts)});
            s["restartCount"] = json!(restarts);
            s["containerID"] = json!(id);
        }
        State::Waiting { reason, message } => {
            s["state"] = json!({"waiting": {"reason": reason, "message": message}});
            s["lastState"] = json!({});
            // A container that never started has no image id yet.
            s["imageID"] = json!("");
        }
        State::Terminated { exit, reason } => {
            s["state"] = json!({"terminated": terminated(*exit, reason, 120, 60, 0)});
            s["lastState"] = json!({});
            s["containerID"] = json!(id);
        }
    }
    s
}

/// The status kubelet writes for `pod` on its node with one state per container.
pub fn pod_status(pod: &StagedPod, ns: &str, states: &[State]) -> Value {
    let statuses: Vec<Value> = pod
        .containers
        .iter()
        .zip(states)
        .map(|(c, s)| container_status(pod, ns, c, s))
        .collect();
    let unready: Vec<&str> = pod
        .containers
        .iter()
        .zip(states)
        .filter(|(_, s)| !matches!(s, State::Running | State::RunningAfter { .. }))
        .map(|(c, _)| c.name.as_str())
        .collect();
    let ready = unready.is_empty();
    let any_waiting_never_started = states.iter().all(|s| matches!(s, State::Waiting { .. }));
    let job_done = states.iter().all(|s| matches!(s, State::Terminated { .. }));
    let failed = job_done
        && states
            .iter()
            .any(|s| matches!(s, State::Terminated { exit, .. } if *exit != 0));
    let phase = if job_done {
        if failed { "Failed" } else { "Succeeded" }
    } else if any_waiting_never_started {
        "Pending"
    } else {
        "Running"
    };
    let mut conds = conditions(ready, 1200, if ready { 600 } else { 400 }, &unready);
    if job_done {
        // A finished pod: no container is ready; kubelet says PodCompleted.
        for c in conds.as_array_mut().into_iter().flatten() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                c["status"] = json!("False");
                c["reason"] = json!("PodCompleted");
                c.as_object_mut().map(|o| o.remove("message"));
            }
        }
    }
    json!({
        "phase": phase,
        "conditions": conds,
        "hostIP": "127.0.0.1",
        "podIP": "10.244.0.17",
        "podIPs": [{"ip": "10.244.0.17"}],
        "startTime": ago(1200),
        "containerStatuses": statuses,
    })
}

/// The status the scheduler writes for a pod it cannot place (and nothing else: the pod
/// stays unbound, so kubelet never writes).
pub fn unschedulable_status(message: &str, since_secs_ago: u64) -> Value {
    json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "lastProbeTime": null,
                        "lastTransitionTime": ago(since_secs_ago), "reason": "Unschedulable",
                        "message": message}],
    })
}

// ----------------------------------------------------------------------------------------
// Texts
// ----------------------------------------------------------------------------------------

/// containerd 1.7's ErrImagePull message for a tag that does not exist.
pub fn pull_not_found(image: &str) -> String {
    let full = image_id(image);
    let reference = format!(
        "{}:{}",
        full.split('@').next().unwrap_or(""),
        image.rsplit(':').next().unwrap_or("latest")
    );
    format!(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": \
         failed to resolve reference \"{reference}\": {reference}: not found"
    )
}

/// kubelet's ImagePullBackOff message.
pub fn pull_backoff(image: &str) -> String {
    format!("Back-off pulling image \"{image}\"")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_709_251_199), "2024-02-29T23:59:59Z");
    }
}
