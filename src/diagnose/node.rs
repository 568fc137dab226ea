/*!
Diagnoses of node incidents, and of pod failures attributed to their node.

Node incidents are not matched against the pod rule table (there is no pod,
no container, no exit code): each node failure type has one rule here, with
commands that name the real node. What must run on the node itself (disk
usage under k3s's `/var/lib/rancher/k3s`, image pruning, memory, process
counts) is a `kubectl debug node/<node> -- chroot /host …` command, like the
pod rules' (k3s nodes have no docker, and no SSH is assumed), and the fix
text says what to look for and which kubelet thresholds to set.
*/

use super::vars::cap;
use crate::model::{Cause, Diagnosis, FailureType, Fix, Incident, NodeRecord};

const DESCRIBE: &str = "kubectl describe node {node}";
const PODS: &str = "kubectl get pods -A -o wide --field-selector spec.nodeName={node}";
const EVENTS: &str =
    "kubectl get events -A --field-selector involvedObject.kind=Node,involvedObject.name={node}";
/// On the node itself, through a debug pod with the host's root at /host
/// (k3s nodes have no docker; this needs no SSH either).
const ON_NODE: &str = "kubectl debug node/{node} -it --image=busybox:1.36 -- chroot /host";

fn commands(node: &str, templates: &[&str]) -> Vec<String> {
    templates
        .iter()
        .map(|t| t.replace("{on_node}", ON_NODE).replace("{node}", node))
        .collect()
}

fn diagnosis(
    cause: Cause,
    rule: &'static str,
    summary: String,
    evidence: Vec<String>,
    text: String,
    commands: Vec<String>,
) -> Diagnosis {
    Diagnosis {
        cause,
        summary,
        confidence: 0.9,
        evidence,
        fix: Fix { text, commands },
        rule,
        ai: None,
        backend: None,
        node_incident: None,
    }
}

/// Facts about the node worth quoting (kubelet version, roles, zone, cordon).
fn facts(node: Option<&NodeRecord>) -> Vec<String> {
    let Some(n) = node else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(v) = &n.kubelet_version {
        out.push(format!("kubelet {v}"));
    }
    if !n.roles.is_empty() {
        out.push(format!("roles: {}", n.roles.join(",")));
    }
    if let Some(z) = &n.zone {
        out.push(format!("zone: {z}"));
    }
    if n.unschedulable {
        out.push("cordoned (spec.unschedulable)".into());
    }
    if n.network_unavailable
        .as_ref()
        .is_some_and(|c| c.status == Some(true))
    {
        out.push("NetworkUnavailable=True: the node's pod network is not set up".into());
    }
    out
}

/// The diagnosis of a node incident (NodeNotReady, NodePressure, NodeUnschedulable).
pub fn diagnose_node(incident: &Incident, node: Option<&NodeRecord>) -> Diagnosis {
    let f = &incident.finding;
    let name = f.pod.as_str();
    let mut evidence = vec![format!("{}: {}", f.reason, cap(&f.message, 300))];
    if let Some(s) = incident.affected_summary() {
        evidence.push(s);
    }
    evidence.extend(facts(node));
    match f.kind {
        FailureType::NodePressure if f.reason.contains("DiskPressure") => diagnosis(
            Cause::NodeDiskPressure,
            "node-disk-pressure",
            format!(
                "Node {name} is low on disk: the kubelet evicts pods and stops admitting new ones until free space is back above its eviction threshold (by default nodefs.available<10%, imagefs.available<15%)."
            ),
            evidence,
            format!(
                "Free disk on {name}. On the node, see what fills it: `sudo df -h / /var/lib/rancher/k3s` and `sudo du -xh -d2 /var/lib/rancher/k3s/agent | sort -h | tail` (k3s; elsewhere /var/lib/containerd and /var/lib/kubelet), then remove unused images with `sudo k3s crictl rmi --prune` and trim /var/log. Image garbage collection starts at imageGCHighThresholdPercent (85%) and frees down to imageGCLowThresholdPercent (80%); on a small SD card set them lower so it runs before the eviction threshold, e.g. k3s `--kubelet-arg=image-gc-high-threshold=70 --kubelet-arg=image-gc-low-threshold=60`, and give the kubelet an explicit `--kubelet-arg=eviction-hard=nodefs.available<5%,imagefs.available<5%` if evictions come too early. Evicted pods stay listed as Failed until deleted."
            ),
            commands(
                name,
                &[
                    DESCRIBE,
                    PODS,
                    "{on_node} du -xh -d2 /var/lib/rancher/k3s/agent",
                    "{on_node} crictl rmi --prune",
                    "kubectl get pods -A --field-selector spec.nodeName={node},status.phase=Failed",
                    "kubectl delete pods -A --field-selector spec.nodeName={node},status.phase=Failed",
                ],
            ),
        ),
        FailureType::NodePressure if f.reason.contains("MemoryPressure") => diagnosis(
            Cause::NodeMemoryPressure,
            "node-memory-pressure",
            format!(
                "Node {name} is low on memory: the kubelet evicts pods (BestEffort first, then Burstable over their requests) until memory.available is back above its eviction threshold (100Mi by default)."
            ),
            evidence,
            format!(
                "Find what uses the memory on {name} and give pods memory requests that add up to what the node has. On the node, `free -m` and `sudo k3s crictl stats` show the real use (a process outside Kubernetes counts too). To keep room for the system, reserve it: k3s `--kubelet-arg=system-reserved=memory=256Mi --kubelet-arg=eviction-hard=memory.available<200Mi`."
            ),
            commands(
                name,
                &[
                    DESCRIBE,
                    PODS,
                    "kubectl top pods -A --sort-by=memory",
                    "kubectl top node {node}",
                    "{on_node} free -m",
                ],
            ),
        ),
        FailureType::NodePressure => diagnosis(
            Cause::NodePidPressure,
            "node-pid-pressure",
            format!(
                "Node {name} is running out of process IDs: a pod is forking without bound, and the kubelet evicts pods to get them back."
            ),
            evidence,
            "Find the pod with the most processes: on the node, `ps -eo pid,comm --no-headers | wc -l` against `cat /proc/sys/kernel/pid_max`, and `sudo k3s crictl stats` per container. Cap processes per pod with k3s `--kubelet-arg=pod-max-pids=1024`.".to_string(),
            commands(
                name,
                &[DESCRIBE, PODS, "{on_node} cat /proc/sys/kernel/pid_max"],
            ),
        ),
        FailureType::NodeUnschedulable => diagnosis(
            Cause::NodeCordoned,
            "node-cordoned",
            format!(
                "Node {name} has been cordoned (spec.unschedulable) for a while: no new pods are scheduled on it, so the cluster runs with less room than it has."
            ),
            evidence,
            format!(
                "If the maintenance on {name} is over, uncordon it; if the node is being retired, drain and delete it."
            ),
            commands(
                name,
                &[
                    "kubectl uncordon {node}",
                    PODS,
                    "kubectl drain {node} --ignore-daemonsets --delete-emptydir-data",
                ],
            ),
        ),
        // NodeNotReady, and anything else about a node.
        _ => diagnosis(
            Cause::NodeNotReady,
            "node-not-ready",
            format!(
                "Node {name} is not Ready ({}): its kubelet stopped reporting or reports itself unhealthy, so the pods on it are not running as they should and will be evicted after their toleration (5 minutes by default).",
                f.reason
            ),
            evidence,
            format!(
                "Check the machine and its kubelet: power, network, a full disk. On the node, `sudo systemctl status k3s-agent` (k3s servers: `k3s`; others: `kubelet`) and `sudo journalctl -u k3s-agent --since -30min`; `df -h /var/lib/rancher/k3s` for a full disk. If {name} will not come back, drain it so its pods are rescheduled at once."
            ),
            commands(
                name,
                &[
                    DESCRIBE,
                    PODS,
                    EVENTS,
                    "kubectl drain {node} --ignore-daemonsets --delete-emptydir-data --force",
                ],
            ),
        ),
    }
}

/// A pod failure whose cause is its node: the node's cause, the node
/// incident's id, and the pod's own diagnosis kept as evidence.
pub fn attribute(own: Diagnosis, node: &str, why: &str, node_incident: Option<u64>) -> Diagnosis {
    let cause = match why {
        "MemoryPressure" => Cause::NodeMemoryPressure,
        "DiskPressure" => Cause::NodeDiskPressure,
        "PIDPressure" => Cause::NodePidPressure,
        _ => Cause::NodeNotReady,
    };
    let incident = node_incident.map_or_else(String::new, |id| format!(" (incident #{id})"));
    let mut evidence = vec![format!("node {node}: {why}")];
    evidence.push(format!("on its own: {}", cap(&own.summary, 200)));
    Diagnosis {
        cause,
        summary: format!(
            "This pod's failure is its node's doing: {node} is {}{incident}. Fix the node; the pod recovers or is rescheduled with it.",
            match why {
                "NodeNotReady" => "not Ready".to_string(),
                p => format!("under {p}"),
            }
        ),
        confidence: 0.85,
        evidence,
        fix: Fix {
            text: "See the node's incident for the fix. If the pod must run now, delete it so it is rescheduled elsewhere (a controller recreates it).".to_string(),
            commands: commands(node, &[DESCRIBE, PODS]),
        },
        rule: "node-attribution",
        ai: None,
        backend: None,
        node_incident,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, State, Workload};

    fn node_incident(kind: FailureType, reason: &str) -> Incident {
        let mut f = Finding::test(kind, "pi-3");
        f.namespace = String::new();
        f.container = None;
        f.reason = reason.into();
        f.message = "kubelet has disk pressure".into();
        let mut i = Incident::test(f, State::Open);
        i.namespace = String::new();
        i.workload = Workload {
            kind: "Node".into(),
            name: "pi-3".into(),
        };
        i
    }

    #[test]
    fn each_node_failure_has_its_cause_and_commands_naming_the_node() {
        for (kind, reason, cause) in [
            (
                FailureType::NodeNotReady,
                "NodeStatusUnknown",
                Cause::NodeNotReady,
            ),
            (
                FailureType::NodePressure,
                "DiskPressure",
                Cause::NodeDiskPressure,
            ),
            (
                FailureType::NodePressure,
                "MemoryPressure",
                Cause::NodeMemoryPressure,
            ),
            (
                FailureType::NodePressure,
                "PIDPressure",
                Cause::NodePidPressure,
            ),
            (
                FailureType::NodeUnschedulable,
                "Cordoned",
                Cause::NodeCordoned,
            ),
        ] {
            let d = diagnose_node(&node_incident(kind, reason), None);
            assert_eq!(d.cause, cause, "{reason}");
            assert!(d.fix.commands.iter().all(|c| c.starts_with("kubectl ")));
            assert!(
                d.fix
                    .commands
                    .iter()
                    .any(|c| c.contains("spec.nodeName=pi-3")),
                "{:?}",
                d.fix.commands
            );
        }
    }

    #[test]
    fn disk_pressure_names_k3s_paths_to_run_on_the_node_and_gc_thresholds() {
        let d = diagnose_node(
            &node_incident(FailureType::NodePressure, "DiskPressure"),
            None,
        );
        assert!(
            d.fix.commands.contains(
                &"kubectl debug node/pi-3 -it --image=busybox:1.36 -- chroot /host du -xh -d2 /var/lib/rancher/k3s/agent"
                    .to_string()
            ),
            "{:?}",
            d.fix.commands
        );
        let d = diagnose_node(
            &node_incident(FailureType::NodePressure, "DiskPressure"),
            None,
        );
        assert!(d.fix.text.contains("On the node"));
        assert!(d.fix.text.contains("/var/lib/rancher/k3s"));
        assert!(d.fix.text.contains("image-gc-high-threshold"));
        assert!(d.fix.text.contains("eviction-hard"));
        assert!(
            d.fix
                .commands
                .contains(&"kubectl describe node pi-3".to_string())
        );
        assert_eq!(d.evidence[0], "DiskPressure: kubelet has disk pressure");
    }

    #[test]
    fn an_attributed_pod_names_the_node_cause_and_its_incident() {
        let own = diagnose_node(&node_incident(FailureType::NodeNotReady, "x"), None);
        let d = attribute(own, "pi-3", "DiskPressure", Some(12));
        assert_eq!(d.cause, Cause::NodeDiskPressure);
        assert_eq!(d.node_incident, Some(12));
        assert!(
            d.summary.contains("pi-3") && d.summary.contains("#12"),
            "{}",
            d.summary
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["node_incident"], 12);
        assert_eq!(json["cause"], "node_disk_pressure");
    }
}
