/*!
Where a pod that cannot be scheduled would fit: its requests against each
schedulable node's allocatable minus what the pods already on it request,
and the taints and cordons that keep it off nodes. Pure: the caller passes
the nodes and the pods it knows.

The lines go into the diagnosis' evidence, each starting with `FIT_PREFIX`
so enrichment, which diagnoses again without the nodes, keeps them.
*/

use super::quantity::{bytes, millicores};
use crate::model::{NodeRecord, Phase, PodRecord};

/// Every evidence line from here starts with this.
pub const FIT_PREFIX: &str = "nodes: ";

/// Nodes named per line at most.
const NAMED: usize = 5;

/// (millicores, bytes) a pod requests: its containers together, or its
/// largest init container if that is more (init containers run one by one).
pub fn requests(p: &PodRecord) -> (u128, u128) {
    let sum = |f: fn(&crate::model::ContainerRecord) -> (u128, u128)| {
        p.containers
            .iter()
            .map(f)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    };
    let one = |c: &crate::model::ContainerRecord| {
        (
            c.cpu_request.as_deref().and_then(millicores).unwrap_or(0),
            c.memory_request.as_deref().and_then(bytes).unwrap_or(0),
        )
    };
    let (cpu, mem) = sum(one);
    let init = p
        .init_containers
        .iter()
        .map(one)
        .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
    (cpu.max(init.0), mem.max(init.1))
}

fn cpu_text(m: u128) -> String {
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

fn mem_text(b: u128) -> String {
    const MI: u128 = 1024 * 1024;
    if b >= 1024 * MI && b % (1024 * MI) == 0 {
        format!("{}Gi", b / (1024 * MI))
    } else {
        format!("{}Mi", b.div_ceil(MI))
    }
}

fn names(v: &[&str]) -> String {
    let mut s = v.iter().take(NAMED).copied().collect::<Vec<_>>().join(", ");
    if v.len() > NAMED {
        s.push_str(&format!(" and {} more", v.len() - NAMED));
    }
    s
}

/// The evidence lines for `pod` (Pending) against `nodes`, with `pods` the
/// pods the daemon knows (their requests use up the nodes' room).
pub fn scheduling_facts<'a>(
    pod: &PodRecord,
    nodes: &[&NodeRecord],
    pods: impl Iterator<Item = &'a PodRecord>,
) -> Vec<String> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let cordoned: Vec<&str> = nodes
        .iter()
        .filter(|n| n.unschedulable)
        .map(|n| &*n.name)
        .collect();
    let down: Vec<&str> = nodes
        .iter()
        .filter(|n| n.not_ready())
        .map(|n| &*n.name)
        .collect();
    if !cordoned.is_empty() {
        out.push(format!("{FIT_PREFIX}cordoned: {}", names(&cordoned)));
    }
    if !down.is_empty() {
        out.push(format!("{FIT_PREFIX}not Ready: {}", names(&down)));
    }
    let tainted: Vec<String> = nodes
        .iter()
        .filter(|n| !n.unschedulable)
        .filter_map(|n| {
            let t: Vec<String> = n
                .taints
                .iter()
                .filter(|t| &*t.effect != "PreferNoSchedule")
                .filter(|t| !t.key.starts_with("node.kubernetes.io/"))
                .map(|t| t.display())
                .collect();
            (!t.is_empty()).then(|| format!("{} ({})", n.name, t.join(", ")))
        })
        .collect();
    if !tainted.is_empty() {
        let refs: Vec<&str> = tainted.iter().map(String::as_str).collect();
        out.push(format!(
            "{FIT_PREFIX}tainted (a toleration is needed to land there): {}",
            names(&refs)
        ));
    }
    // Room left on each node that takes pods.
    let open: Vec<&&NodeRecord> = nodes
        .iter()
        .filter(|n| !n.unschedulable && !n.not_ready())
        .collect();
    let mut used: std::collections::HashMap<&str, (u128, u128)> =
        open.iter().map(|n| (&*n.name, (0, 0))).collect();
    for p in pods {
        let live = !matches!(p.phase, Phase::Succeeded | Phase::Failed);
        if let (true, Some(u)) = (live, p.node.as_deref().and_then(|n| used.get_mut(n))) {
            let (c, m) = requests(p);
            u.0 += c;
            u.1 += m;
        }
    }
    let (want_cpu, want_mem) = requests(pod);
    let mut free: Vec<(&str, Option<u128>, Option<u128>)> = open
        .iter()
        .map(|n| {
            let (uc, um) = used.get(&*n.name).copied().unwrap_or_default();
            let a = &n.allocatable;
            (
                &*n.name,
                a.cpu
                    .as_deref()
                    .and_then(millicores)
                    .map(|c| c.saturating_sub(uc)),
                a.memory
                    .as_deref()
                    .and_then(bytes)
                    .map(|m| m.saturating_sub(um)),
            )
        })
        .collect();
    if free.is_empty() {
        out.push(format!(
            "{FIT_PREFIX}no node takes new pods (all cordoned or not Ready)"
        ));
        return out;
    }
    free.sort_by_key(|(n, _, _)| *n);
    let best_cpu = free.iter().filter_map(|(n, c, _)| c.map(|c| (c, *n))).max();
    let best_mem = free.iter().filter_map(|(n, _, m)| m.map(|m| (m, *n))).max();
    if want_cpu > 0 {
        if let Some((c, n)) = best_cpu {
            let fits = free
                .iter()
                .filter(|(_, fc, _)| fc.is_some_and(|fc| fc >= want_cpu))
                .count();
            out.push(format!(
                "{FIT_PREFIX}the pod requests cpu {}; {fits} of {} schedulable nodes have that free (most: {} on {n})",
                cpu_text(want_cpu),
                free.len(),
                cpu_text(c)
            ));
        }
    }
    if want_mem > 0 {
        if let Some((m, n)) = best_mem {
            let fits = free
                .iter()
                .filter(|(_, _, fm)| fm.is_some_and(|fm| fm >= want_mem))
                .count();
            out.push(format!(
                "{FIT_PREFIX}the pod requests memory {}; {fits} of {} schedulable nodes have that free (most: {} on {n})",
                mem_text(want_mem),
                free.len(),
                mem_text(m)
            ));
        }
    }
    let both: Vec<&str> = free
        .iter()
        .filter(|(_, c, m)| c.is_none_or(|c| c >= want_cpu) && m.is_none_or(|m| m >= want_mem))
        .map(|(n, _, _)| *n)
        .collect();
    if want_cpu > 0 || want_mem > 0 {
        out.push(if both.is_empty() {
            format!("{FIT_PREFIX}no schedulable node has room for both requests: lower them, or free or add a node")
        } else {
            format!("{FIT_PREFIX}room for its requests on: {} (so a taint, selector or affinity keeps it off)", names(&both))
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Allocatable, ContainerRecord, ContainerState, Taint};

    fn node(name: &str, cpu: &str, mem: &str) -> NodeRecord {
        NodeRecord {
            allocatable: Allocatable {
                cpu: Some(cpu.into()),
                memory: Some(mem.into()),
                ..Allocatable::default()
            },
            ..NodeRecord::bare(name)
        }
    }

    fn pod(name: &str, node: Option<&str>, cpu: &str, mem: &str) -> PodRecord {
        let mut p = PodRecord::bare("shop", name, Phase::Running);
        p.node = node.map(Into::into);
        p.containers = vec![ContainerRecord {
            name: "app".into(),
            image: "x".into(),
            ready: true,
            restart_count: 0,
            state: ContainerState::Unknown,
            last_terminated: None,
            memory_limit: None,
            cpu_limit: None,
            memory_request: Some(mem.into()),
            cpu_request: Some(cpu.into()),
            index: Some(0),
            liveness: None,
            readiness: None,
            startup: None,
        }]
        .into_boxed_slice();
        p
    }

    #[test]
    fn a_cpu_request_no_node_has_free_is_named_with_the_most_room() {
        let a = node("pi-1", "4", "8Gi");
        let b = node("pi-2", "2", "8Gi");
        let running = [pod("busy", Some("pi-1"), "3500m", "1Gi")];
        let pending = pod("web", None, "3", "1Gi");
        let f = scheduling_facts(&pending, &[&a, &b], running.iter());
        assert!(
            f.contains(&"nodes: the pod requests cpu 3; 0 of 2 schedulable nodes have that free (most: 2 on pi-2)".to_string()),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|l| l.contains("1 of 2") || l.contains("2 of 2")),
            "{f:?}"
        );
        assert!(
            f.last().unwrap().contains("no schedulable node has room"),
            "{f:?}"
        );
        assert!(f.iter().all(|l| l.starts_with(FIT_PREFIX)));
    }

    #[test]
    fn room_with_taints_and_cordons_points_at_the_toleration() {
        let mut a = node("pi-gpu", "8", "16Gi");
        a.taints = vec![Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
        }]
        .into_boxed_slice();
        let mut b = node("pi-2", "8", "16Gi");
        b.unschedulable = true;
        let pending = pod("web", None, "1", "1Gi");
        let f = scheduling_facts(&pending, &[&a, &b], std::iter::empty());
        assert!(f.contains(&"nodes: cordoned: pi-2".to_string()), "{f:?}");
        assert!(
            f.contains(&"nodes: tainted (a toleration is needed to land there): pi-gpu (dedicated=gpu:NoSchedule)".to_string()),
            "{f:?}"
        );
        assert!(
            f.last()
                .unwrap()
                .contains("room for its requests on: pi-gpu"),
            "{f:?}"
        );
    }

    #[test]
    fn no_nodes_no_facts() {
        assert!(
            scheduling_facts(&pod("web", None, "1", "1Gi"), &[], std::iter::empty()).is_empty()
        );
    }
}
