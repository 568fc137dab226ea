/*!
The vocabulary of detection: failure types (a closed list, most specific
first), severities, findings, workloads and terminations.
*/

use std::fmt;

/// The original daemon's severity levels, lowest first (so `Ord` ranks them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong, in precedence order: a pod showing several is reported as
/// the first that applies (`Ord` follows this order, most specific first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureType {
    OOMKilled,
    CrashLoopBackOff,
    ImagePullBackOff,
    InvalidImageName,
    CreateContainerConfigError,
    ContainerStartError,
    Unschedulable,
    PendingTooLong,
    Evicted,
    Failed,
    NotReady,
    HighRestartCount,
    /// A node's Ready condition False or Unknown past its grace.
    NodeNotReady,
    /// A node reports memory, disk or PID pressure.
    NodePressure,
    /// A node cordoned past its grace (informational).
    NodeUnschedulable,
}

impl FailureType {
    pub const ALL: [FailureType; 15] = [
        FailureType::OOMKilled,
        FailureType::CrashLoopBackOff,
        FailureType::ImagePullBackOff,
        FailureType::InvalidImageName,
        FailureType::CreateContainerConfigError,
        FailureType::ContainerStartError,
        FailureType::Unschedulable,
        FailureType::PendingTooLong,
        FailureType::Evicted,
        FailureType::Failed,
        FailureType::NotReady,
        FailureType::HighRestartCount,
        FailureType::NodeNotReady,
        FailureType::NodePressure,
        FailureType::NodeUnschedulable,
    ];

    /// The `type` field of the stable JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::OOMKilled => "OOMKilled",
            FailureType::CrashLoopBackOff => "CrashLoopBackOff",
            FailureType::ImagePullBackOff => "ImagePullBackOff",
            FailureType::InvalidImageName => "InvalidImageName",
            FailureType::CreateContainerConfigError => "CreateContainerConfigError",
            FailureType::ContainerStartError => "ContainerStartError",
            FailureType::Unschedulable => "Unschedulable",
            FailureType::PendingTooLong => "PendingTooLong",
            FailureType::Evicted => "Evicted",
            FailureType::Failed => "Failed",
            FailureType::NotReady => "NotReady",
            FailureType::HighRestartCount => "HighRestartCount",
            FailureType::NodeNotReady => "NodeNotReady",
            FailureType::NodePressure => "NodePressure",
            FailureType::NodeUnschedulable => "NodeUnschedulable",
        }
    }

    /// The original daemon's `pattern` name, kept for compatibility.
    pub fn pattern(self) -> &'static str {
        match self {
            FailureType::OOMKilled => "resource-constraint",
            FailureType::CrashLoopBackOff
            | FailureType::InvalidImageName
            | FailureType::ContainerStartError => "container-waiting-error",
            FailureType::ImagePullBackOff => "image-pull-failure",
            FailureType::CreateContainerConfigError => "configuration-error",
            FailureType::Unschedulable | FailureType::PendingTooLong => "long-pending",
            FailureType::Evicted | FailureType::Failed => "pod-phase-failed",
            FailureType::NotReady => "container-terminated-error",
            FailureType::HighRestartCount => "high-restart-count",
            FailureType::NodeNotReady => "node-not-ready",
            FailureType::NodePressure => "node-pressure",
            FailureType::NodeUnschedulable => "node-unschedulable",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            FailureType::OOMKilled | FailureType::CrashLoopBackOff | FailureType::NodeNotReady => {
                Severity::Critical
            }
            FailureType::ImagePullBackOff
            | FailureType::InvalidImageName
            | FailureType::CreateContainerConfigError
            | FailureType::ContainerStartError
            | FailureType::Unschedulable
            | FailureType::Failed
            | FailureType::NodePressure => Severity::High,
            FailureType::PendingTooLong
            | FailureType::Evicted
            | FailureType::NotReady
            | FailureType::HighRestartCount => Severity::Medium,
            FailureType::NodeUnschedulable => Severity::Informational,
        }
    }

    /// Container-level types beat pod-level ones.
    /// About a node rather than a pod.
    pub fn is_node_level(self) -> bool {
        matches!(self.family(), Family::Node | Family::Cordon)
    }

    pub fn is_container_level(self) -> bool {
        matches!(
            self,
            FailureType::OOMKilled
                | FailureType::CrashLoopBackOff
                | FailureType::ImagePullBackOff
                | FailureType::InvalidImageName
                | FailureType::CreateContainerConfigError
                | FailureType::ContainerStartError
                | FailureType::HighRestartCount
        )
    }
}

/// Which failures are one problem. A container flapping between OOMKilled
/// and CrashLoopBackOff is one problem (`Crash`); an image that cannot be
/// pulled and a crash are two, with two fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// The process runs and dies: OOM kills, crash loops, failed starts,
    /// restarts, a failed pod.
    Crash,
    /// The image cannot be pulled (a missing tag, credentials, the network).
    ImagePull,
    /// The image reference is not a valid name: a spec error, never pulled.
    ImageName,
    /// The container's configuration (a ConfigMap, Secret or key) is missing.
    Config,
    /// The pod cannot be scheduled, or stays Pending.
    Scheduling,
    /// The kubelet evicted the pod.
    Eviction,
    /// Running but not Ready.
    Readiness,
    /// A node is NotReady or under pressure: one problem of the node (a
    /// node under disk pressure that then goes NotReady stays one incident).
    Node,
    /// A node is cordoned: a decision, not a fault, so its own incident.
    Cordon,
}

impl FailureType {
    pub fn family(self) -> Family {
        match self {
            FailureType::OOMKilled
            | FailureType::CrashLoopBackOff
            | FailureType::ContainerStartError
            | FailureType::HighRestartCount
            | FailureType::Failed => Family::Crash,
            FailureType::ImagePullBackOff => Family::ImagePull,
            FailureType::InvalidImageName => Family::ImageName,
            FailureType::CreateContainerConfigError => Family::Config,
            FailureType::Unschedulable | FailureType::PendingTooLong => Family::Scheduling,
            FailureType::Evicted => Family::Eviction,
            FailureType::NotReady => Family::Readiness,
            FailureType::NodeNotReady | FailureType::NodePressure => Family::Node,
            FailureType::NodeUnschedulable => Family::Cordon,
        }
    }
}

impl fmt::Display for FailureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container termination, identified by container and finish time.
/// Each counts once, towards the incident open when it is seen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Termination {
    pub pod_uid: String,
    pub container: String,
    /// Unix seconds (`finishedAt`).
    pub finished: i64,
}

/// One failure seen on one pod (and container) at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub kind: FailureType,
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub init_container: bool,
    /// The kubelet's or scheduler's reason (`CrashLoopBackOff`, `OOMKilled`, `Unschedulable`, …).
    pub reason: String,
    /// The waiting/terminated/condition/pod message (capped upstream).
    pub message: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub restart_count: Option<u32>,
    pub node: Option<String>,
    /// The failing container's image, if container-level (storm grouping by registry).
    pub image: Option<String>,
    /// When the failure began by the object's own clock (Unix seconds), if known.
    pub since: Option<i64>,
    /// The termination this finding rests on, to be counted once.
    pub termination: Option<Termination>,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }

    /// The same problem of the same pod for a diagnosis: a diagnosis made for
    /// one holds for the other (messages and counters may have moved on).
    pub fn diagnosed_alike(&self, other: &Finding) -> bool {
        self.kind == other.kind
            && self.pod == other.pod
            && self.reason == other.reason
            && self.exit_code == other.exit_code
            && self.container == other.container
            && self.init_container == other.init_container
    }

    /// A finding with only a type and a pod (test values).
    #[cfg(test)]
    pub fn test(kind: FailureType, pod: &str) -> Finding {
        Finding {
            kind,
            namespace: "shop".into(),
            pod: pod.into(),
            container: Some("app".into()),
            init_container: false,
            reason: kind.as_str().into(),
            message: String::new(),
            exit_code: None,
            signal: None,
            restart_count: None,
            node: None,
            image: None,
            since: None,
            termination: None,
        }
    }
}

/// The owning workload: what an incident is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicaSet`, `Pod`, …
    pub kind: String,
    pub name: String,
}

/// Where an incident's revision stands in its workload's rollout: what a
/// person should fix first, and which changes would make things worse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Rollout {
    /// One revision runs (or the workload has no revisions).
    #[default]
    Steady,
    /// A newer revision (`newer`) is rolling out, failing with `newer_failing`
    /// if it fails too: a change to the pod template now would start another
    /// rollout from the newer revision's template.
    Superseded {
        newer: String,
        newer_failing: Option<FailureType>,
    },
    /// The newest revision fails while `older` still runs: a rollout gone
    /// wrong, which `kubectl rollout undo` takes back.
    Newest { older: String },
}
