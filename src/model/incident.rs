/*!
Incidents: one per broken workload, with its lifecycle state, and the two
streams the incident engine produces — every `Transition` for the record,
and the quieter `Notification`s for the sinks.
*/

use super::finding::{FailureType, Finding, Severity, Workload};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Updated,
    Resolved,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Updated => "updated",
            State::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    pub id: u64,
    pub cluster: String,
    pub namespace: String,
    pub workload: Workload,
    /// The revision failing (a Deployment's ReplicaSet, `web-7d4b9c6f8`),
    /// when the workload has revisions: two revisions are two incidents.
    pub revision: Option<String>,
    /// Sorted names of the pods affected (that failed and still exist).
    pub pods: Vec<String>,
    /// The most specific current finding among its pods (the representative).
    pub finding: Finding,
    /// When the failure began by the cluster's own evidence (the finding's
    /// `since`: a termination, a condition's transition, the pod's creation),
    /// never later than `detected_ms`.
    pub first_seen_ms: i64,
    /// When the daemon opened the incident.
    pub detected_ms: i64,
    pub last_seen_ms: i64,
    pub state: State,
    /// A node incident's affected workloads (pods on a NotReady node, pods
    /// whose failure is attributed to the node); empty for pod incidents.
    pub affected: Vec<Affected>,
}

/// One workload a node incident affects.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Affected {
    pub namespace: String,
    pub workload: Workload,
    /// Sorted pod names.
    pub pods: Vec<String>,
    /// The workload's own incident attached to the node's, if it has one.
    pub incident: Option<u64>,
}

impl Incident {
    /// A node incident (`workload.kind` is `Node`).
    pub fn is_node(&self) -> bool {
        self.workload.kind == "Node"
    }

    /// "14 pods of 9 workloads affected"; `None` when nothing is.
    pub fn affected_summary(&self) -> Option<String> {
        let workloads = self.affected.len();
        let pods: usize = self.affected.iter().map(|a| a.pods.len()).sum();
        (workloads > 0).then(|| {
            format!(
                "{pods} pod{} of {workloads} workload{} affected",
                if pods == 1 { "" } else { "s" },
                if workloads == 1 { "" } else { "s" }
            )
        })
    }
    pub fn kind(&self) -> FailureType {
        self.finding.kind
    }

    pub fn severity(&self) -> Severity {
        self.finding.severity()
    }
}

#[cfg(test)]
impl Incident {
    /// An open-or-whatever incident of Deployment `web` about `finding`'s
    /// pod (test values; tests override what they care about).
    pub fn test(finding: Finding, state: State) -> Incident {
        Incident {
            id: 7,
            cluster: "edge-1".into(),
            namespace: finding.namespace.clone(),
            workload: Workload {
                kind: "Deployment".into(),
                name: "web".into(),
            },
            revision: None,
            pods: vec![finding.pod.clone()],
            finding,
            first_seen_ms: 1_764_104_400_000,
            detected_ms: 1_764_104_400_000,
            last_seen_ms: 1_764_104_460_000,
            state,
            affected: Vec::new(),
        }
    }
}

/// One lifecycle step of one incident: the record (stdout/JSON) carries every one of these.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// A snapshot; `incident.state` is the new state.
    pub incident: Incident,
    pub at_ms: i64,
}

/// What notification sinks (Slack, webhooks) should send.
// Few and short-lived (a handful a second at most), so the unboxed
// `Single` keeps the sinks' pattern matching plain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Notification {
    /// One incident opened, updated, resolved or re-announced.
    Single { incident: Incident, reminder: bool },
    /// Failures already present at start-up, announced once together.
    StartupSummary { incidents: Vec<Incident> },
    /// More than `storm_threshold` new incidents in one batch, grouped;
    /// `shared` names what they share ("node worker-3", "registry ghcr.io",
    /// "namespace shop"), or is empty when nothing.
    Storm {
        shared: String,
        incidents: Vec<Incident>,
    },
}
