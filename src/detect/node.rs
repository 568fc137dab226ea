/*!
Node failures and which pod failures a node causes, as pure functions of a
node record, the clock (Unix seconds) and what the daemon remembers.

- `classify_node`: `NodeNotReady` (Ready False or Unknown longer than its
  grace, measured from the condition's `lastTransitionTime`), `NodePressure`
  (memory, disk or PID pressure True; the condition messages are the
  evidence) and `NodeUnschedulable` (cordoned longer than its grace, measured
  from when the daemon first saw it cordoned: the API keeps no such time).
- `node_cause`: whether a pod's failure is its node's doing — any failure of
  a pod on a node that is not Ready (its containers cannot run, or are not
  reported), and an eviction on a node under pressure.
*/

use crate::model::{FailureType, Finding, NodeRecord, PodRecord};

/// The node thresholds (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeThresholds {
    pub not_ready_grace_secs: i64,
    pub unschedulable_grace_secs: i64,
}

/// What the daemon itself saw of a node (Unix seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeSeen {
    /// When it first saw the node not Ready (for a condition with no time).
    pub not_ready: Option<i64>,
    /// When it first saw the node cordoned.
    pub cordoned: Option<i64>,
}

impl NodeSeen {
    /// Updates what was seen with the node as it is now.
    pub fn update(&mut self, n: &NodeRecord, now: i64) {
        self.not_ready = n.not_ready().then(|| self.not_ready.unwrap_or(now));
        self.cordoned = n.unschedulable.then(|| self.cordoned.unwrap_or(now));
    }
}

fn finding(n: &NodeRecord, kind: FailureType, reason: &str, message: String) -> Finding {
    Finding {
        kind,
        namespace: String::new(),
        pod: n.name.to_string(),
        container: None,
        init_container: false,
        reason: reason.to_owned(),
        message,
        exit_code: None,
        signal: None,
        restart_count: None,
        node: Some(n.name.to_string()),
        image: None,
        since: None,
        termination: None,
    }
}

/// Since when the node has been not Ready (its own clock when it says).
fn not_ready_since(n: &NodeRecord, seen: &NodeSeen) -> Option<i64> {
    n.ready
        .as_ref()
        .filter(|_| n.not_ready())
        .and_then(|c| c.since)
        .or(seen.not_ready)
}

/// The node's findings at `now`.
pub fn classify_node(
    n: &NodeRecord,
    seen: &NodeSeen,
    now: i64,
    t: &NodeThresholds,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(ready), Some(since)) = (n.ready.as_ref(), not_ready_since(n, seen)) {
        if now.saturating_sub(since) >= t.not_ready_grace_secs {
            let status = if ready.status == Some(false) {
                "False"
            } else {
                "Unknown"
            };
            let mut message = format!("Ready={status}");
            if let Some(m) = ready.message.as_deref().filter(|m| !m.is_empty()) {
                message = format!("{message}: {m}");
            }
            let reason = ready.reason.as_deref().unwrap_or("NodeNotReady");
            let mut f = finding(n, FailureType::NodeNotReady, reason, message);
            f.since = Some(since);
            out.push(f);
        }
    }
    let pressures: Vec<_> = n.pressures().collect();
    if !pressures.is_empty() {
        let reason = pressures
            .iter()
            .map(|(p, _)| p.condition())
            .collect::<Vec<_>>()
            .join(",");
        let message = pressures
            .iter()
            .map(
                |(p, c)| match c.message.as_deref().filter(|m| !m.is_empty()) {
                    Some(m) => format!("{}: {m}", p.condition()),
                    None => p.condition().to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("; ");
        let mut f = finding(n, FailureType::NodePressure, &reason, message);
        f.since = pressures.iter().filter_map(|(_, c)| c.since).min();
        out.push(f);
    }
    if let Some(since) = seen.cordoned.filter(|_| n.unschedulable) {
        if now.saturating_sub(since) >= t.unschedulable_grace_secs {
            let message = "spec.unschedulable=true: no new pods are scheduled here".to_string();
            let mut f = finding(n, FailureType::NodeUnschedulable, "Cordoned", message);
            f.since = Some(since);
            out.push(f);
        }
    }
    out
}

/// Whether the node's verdict can change with time alone (a grace running).
pub fn node_time_sensitive(n: &NodeRecord, seen: &NodeSeen) -> bool {
    n.not_ready() || (n.unschedulable && seen.cordoned.is_some())
}

/// The node's part in a pod's failure, if it is the node's doing: the
/// reason to give (`NodeNotReady`, `DiskPressure`, …).
pub fn node_cause(pod: &PodRecord, findings: &[Finding], node: &NodeRecord) -> Option<String> {
    if findings.is_empty() || pod.node.as_deref() != Some(&*node.name) {
        return None;
    }
    if node.not_ready() {
        return Some("NodeNotReady".into());
    }
    let evicted = findings.iter().any(|f| f.kind == FailureType::Evicted);
    if evicted {
        // The kubelet names the starved resource in the message; the
        // condition that is True is the evidence either way.
        return node
            .pressures()
            .next()
            .map(|(p, _)| p.condition().to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Condition, Phase};

    const T: NodeThresholds = NodeThresholds {
        not_ready_grace_secs: 60,
        unschedulable_grace_secs: 1800,
    };
    const NOW: i64 = 1_900_000_000;

    fn cond(status: Option<bool>, since: Option<i64>, message: &str) -> Option<Condition> {
        Some(Condition {
            status,
            reason: Some("NodeStatusUnknown".into()),
            message: Some(message.into()),
            since,
        })
    }

    fn kinds(f: &[Finding]) -> Vec<FailureType> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn not_ready_is_reported_after_its_grace_from_the_condition_time() {
        let mut n = NodeRecord::bare("pi-1");
        n.ready = cond(None, Some(NOW - 59), "Kubelet stopped posting node status.");
        let seen = NodeSeen::default();
        assert!(classify_node(&n, &seen, NOW, &T).is_empty());
        assert!(node_time_sensitive(&n, &seen));
        let f = classify_node(&n, &seen, NOW + 1, &T);
        assert_eq!(kinds(&f), [FailureType::NodeNotReady]);
        assert_eq!(f[0].reason, "NodeStatusUnknown");
        assert_eq!(
            f[0].message,
            "Ready=Unknown: Kubelet stopped posting node status."
        );
        assert_eq!(f[0].since, Some(NOW - 59));
        assert_eq!((f[0].namespace.as_str(), f[0].pod.as_str()), ("", "pi-1"));
    }

    #[test]
    fn a_not_ready_condition_without_a_time_is_measured_from_when_the_daemon_saw_it() {
        let mut n = NodeRecord::bare("pi-1");
        n.ready = cond(Some(false), None, "");
        let mut seen = NodeSeen::default();
        seen.update(&n, NOW);
        assert!(classify_node(&n, &seen, NOW + 59, &T).is_empty());
        seen.update(&n, NOW + 30);
        let f = classify_node(&n, &seen, NOW + 60, &T);
        assert_eq!(f[0].message, "Ready=False");
        // Ready again: forgotten, the next NotReady starts a new grace.
        seen.update(&NodeRecord::bare("pi-1"), NOW + 70);
        assert_eq!(seen.not_ready, None);
    }

    #[test]
    fn pressure_is_reported_at_once_with_the_condition_messages_as_evidence() {
        let mut n = NodeRecord::bare("pi-2");
        n.disk_pressure = cond(Some(true), Some(NOW - 5), "kubelet has disk pressure");
        n.memory_pressure = cond(Some(true), Some(NOW - 9), "");
        n.pid_pressure = cond(Some(false), None, "");
        let f = classify_node(&n, &NodeSeen::default(), NOW, &T);
        assert_eq!(kinds(&f), [FailureType::NodePressure]);
        assert_eq!(f[0].reason, "MemoryPressure,DiskPressure");
        assert_eq!(
            f[0].message,
            "MemoryPressure; DiskPressure: kubelet has disk pressure"
        );
        assert_eq!(f[0].since, Some(NOW - 9));
        assert!(!node_time_sensitive(&n, &NodeSeen::default()));
    }

    #[test]
    fn a_cordon_is_informational_after_its_grace() {
        let mut n = NodeRecord::bare("pi-3");
        n.unschedulable = true;
        let mut seen = NodeSeen::default();
        seen.update(&n, NOW);
        assert!(node_time_sensitive(&n, &seen));
        assert!(classify_node(&n, &seen, NOW + 1799, &T).is_empty());
        let f = classify_node(&n, &seen, NOW + 1800, &T);
        assert_eq!(kinds(&f), [FailureType::NodeUnschedulable]);
        assert_eq!(f[0].severity(), crate::model::Severity::Informational);
        n.unschedulable = false;
        seen.update(&n, NOW + 1900);
        assert!(classify_node(&n, &seen, NOW + 1900, &T).is_empty());
    }

    fn pod_on(node: &str) -> PodRecord {
        let mut p = PodRecord::bare("shop", "web-1", Phase::Failed);
        p.node = Some(node.into());
        p
    }

    #[test]
    fn any_failure_on_a_not_ready_node_is_the_nodes_doing() {
        let mut n = NodeRecord::bare("pi-1");
        let f = [Finding::test(FailureType::NotReady, "web-1")];
        assert_eq!(node_cause(&pod_on("pi-1"), &f, &n), None);
        n.ready = cond(None, Some(NOW), "");
        assert_eq!(
            node_cause(&pod_on("pi-1"), &f, &n).as_deref(),
            Some("NodeNotReady")
        );
        assert_eq!(node_cause(&pod_on("pi-9"), &f, &n), None, "another node");
        assert_eq!(node_cause(&pod_on("pi-1"), &[], &n), None, "no failure");
    }

    #[test]
    fn only_an_eviction_under_pressure_is_the_nodes_doing() {
        let mut n = NodeRecord::bare("pi-2");
        n.disk_pressure = cond(Some(true), Some(NOW), "");
        let evicted = [Finding::test(FailureType::Evicted, "web-1")];
        let oom = [Finding::test(FailureType::OOMKilled, "web-1")];
        assert_eq!(
            node_cause(&pod_on("pi-2"), &evicted, &n).as_deref(),
            Some("DiskPressure")
        );
        assert_eq!(
            node_cause(&pod_on("pi-2"), &oom, &n),
            None,
            "an OOM over its limit is its own"
        );
        n.disk_pressure = cond(Some(false), Some(NOW), "");
        assert_eq!(node_cause(&pod_on("pi-2"), &evicted, &n), None);
    }
}
