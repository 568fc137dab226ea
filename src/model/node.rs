/*!
The compact record the daemon keeps per node: the conditions detection
reads, whether it is cordoned, its taints and allocatable resources (for
scheduling diagnoses), and a few labels to name it. Heartbeat times, images,
addresses and the rest of the object are never kept, so a status heartbeat
that changes nothing here compares equal and costs no work.
*/

use super::pod::Condition;

/// A node taint (`key=value:effect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: Box<str>,
    pub value: Option<Box<str>>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: Box<str>,
}

impl Taint {
    /// As kubectl prints it: `key=value:effect`.
    pub fn display(&self) -> String {
        match &self.value {
            Some(v) if !v.is_empty() => format!("{}={v}:{}", self.key, self.effect),
            _ => format!("{}:{}", self.key, self.effect),
        }
    }
}

/// `status.allocatable`, as the API writes the quantities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub cpu: Option<Box<str>>,
    pub memory: Option<Box<str>>,
    pub pods: Option<Box<str>>,
    pub ephemeral_storage: Option<Box<str>>,
}

/// What the daemon knows of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: Box<str>,
    pub ready: Option<Condition>,
    pub memory_pressure: Option<Condition>,
    pub disk_pressure: Option<Condition>,
    pub pid_pressure: Option<Condition>,
    pub network_unavailable: Option<Condition>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    pub taints: Box<[Taint]>,
    pub allocatable: Allocatable,
    pub kubelet_version: Option<Box<str>>,
    /// From `node-role.kubernetes.io/<role>` labels, sorted.
    pub roles: Box<[Box<str>]>,
    /// `topology.kubernetes.io/zone`.
    pub zone: Option<Box<str>>,
}

/// Which pressure a node reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pressure {
    Memory,
    Disk,
    Pid,
}

impl Pressure {
    /// The condition type as the API names it.
    pub fn condition(self) -> &'static str {
        match self {
            Pressure::Memory => "MemoryPressure",
            Pressure::Disk => "DiskPressure",
            Pressure::Pid => "PIDPressure",
        }
    }
}

impl NodeRecord {
    /// A node with only a name, Ready (test values).
    pub fn bare(name: &str) -> NodeRecord {
        NodeRecord {
            name: name.into(),
            ready: Some(Condition {
                status: Some(true),
                reason: Some("KubeletReady".into()),
                message: None,
                since: None,
            }),
            ..NodeRecord::default()
        }
    }

    /// Ready is False or Unknown (a missing condition is a node still
    /// registering, not a failed one).
    pub fn not_ready(&self) -> bool {
        self.ready.as_ref().is_some_and(|c| c.status != Some(true))
    }

    /// The pressure conditions that are True, with their condition.
    pub fn pressures(&self) -> impl Iterator<Item = (Pressure, &Condition)> {
        [
            (Pressure::Memory, &self.memory_pressure),
            (Pressure::Disk, &self.disk_pressure),
            (Pressure::Pid, &self.pid_pressure),
        ]
        .into_iter()
        .filter_map(|(p, c)| {
            c.as_ref()
                .filter(|c| c.status == Some(true))
                .map(|c| (p, c))
        })
    }

    pub fn under_pressure(&self) -> bool {
        self.pressures().next().is_some()
    }

    /// Neither NotReady nor under pressure (cordoning is not ill health).
    pub fn healthy(&self) -> bool {
        !self.not_ready() && !self.under_pressure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(status: Option<bool>) -> Option<Condition> {
        Some(Condition {
            status,
            reason: None,
            message: None,
            since: None,
        })
    }

    #[test]
    fn ready_false_or_unknown_is_not_ready_and_a_missing_condition_is_not() {
        let mut n = NodeRecord::bare("a");
        assert!(!n.not_ready() && n.healthy());
        n.ready = cond(None);
        assert!(n.not_ready() && !n.healthy());
        n.ready = cond(Some(false));
        assert!(n.not_ready());
        n.ready = None;
        assert!(!n.not_ready());
    }

    #[test]
    fn only_true_pressure_conditions_count() {
        let mut n = NodeRecord::bare("a");
        n.memory_pressure = cond(Some(false));
        n.disk_pressure = cond(Some(true));
        n.pid_pressure = cond(None);
        let p: Vec<Pressure> = n.pressures().map(|(p, _)| p).collect();
        assert_eq!(p, [Pressure::Disk]);
        assert!(!n.healthy());
    }

    #[test]
    fn taints_print_as_kubectl_does() {
        let t = Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
        };
        assert_eq!(t.display(), "dedicated=gpu:NoSchedule");
        let t = Taint { value: None, ..t };
        assert_eq!(t.display(), "dedicated:NoSchedule");
    }
}
