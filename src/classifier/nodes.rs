/*!
The node side of detection: the node table, what the daemon remembers of
each node (when it first saw it NotReady or cordoned), and the node's own
incidents in the shared engine (key `/<node>`, workload `Node/<name>`, no
namespace), plus what a node incident lists as affected.

A node update equal to the kept record (a status heartbeat) is no change
and does nothing; only a change of what detection reads re-classifies the
node, and only a change of its health re-looks at the pods on it.
*/

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::detect::incident::{Affected, Engine, NODE_KIND};
use crate::detect::node::{NodeSeen, NodeThresholds, classify_node, node_time_sensitive};
use crate::detect::workload::workload_of;
use crate::kube::node_store::{NodeChange, NodeStore};
use crate::kube::store::{Event, Store};
use crate::model::{NodeRecord, Phase, PodRecord, Transition, Workload};
use crate::settings::Detect;

pub struct Nodes {
    store: NodeStore,
    seen: HashMap<Box<str>, NodeSeen>,
    /// Nodes whose verdict can change with time alone (a grace running).
    timed: HashSet<Box<str>>,
    thresholds: NodeThresholds,
}

/// The engine key of a node.
pub fn node_key(name: &str) -> String {
    format!("/{name}")
}

pub fn node_workload(name: &str) -> Workload {
    Workload {
        kind: NODE_KIND.into(),
        name: name.into(),
    }
}

/// What the node's health is, as far as its pods are concerned.
fn health(n: &NodeRecord) -> (bool, bool) {
    (n.not_ready(), n.under_pressure())
}

impl Nodes {
    pub fn new(d: &Detect) -> Nodes {
        Nodes {
            store: NodeStore::new(),
            seen: HashMap::new(),
            timed: HashSet::new(),
            thresholds: NodeThresholds {
                not_ready_grace_secs: d.node_not_ready_grace_ms / 1000,
                unschedulable_grace_secs: d.node_unschedulable_grace_ms / 1000,
            },
        }
    }

    pub fn get(&self, name: &str) -> Option<&NodeRecord> {
        self.store.get(name)
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &NodeRecord> {
        self.store.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    pub fn listed(&self) -> bool {
        self.store.listed()
    }

    /// Applies a node stream event; with `detect`, observes what changed.
    /// Returns the transitions and the nodes whose health changed (their
    /// pods must be looked at again).
    pub fn apply(
        &mut self,
        engine: &mut Engine,
        event: Event<NodeRecord>,
        detect: bool,
        now_ms: i64,
    ) -> (Vec<Transition>, Vec<Box<str>>) {
        let changes = self.store.apply(event);
        let mut out = Vec::new();
        let mut flipped = Vec::new();
        for c in changes {
            match c {
                NodeChange::Upserted { name, previous } => {
                    let was = previous.as_ref().map(health).unwrap_or_default();
                    if detect {
                        out.extend(self.observe(engine, &name, now_ms));
                    }
                    let now = self.store.get(&name).map(health).unwrap_or_default();
                    if was != now {
                        flipped.push(name);
                    }
                }
                NodeChange::Deleted(n) => {
                    self.seen.remove(&n.name);
                    self.timed.remove(&n.name);
                    if detect {
                        out.extend(engine.pod_ignored(&node_key(&n.name), now_ms));
                        engine.release_node(&n.name, false, now_ms, &mut out);
                    }
                    if n.not_ready() || n.under_pressure() {
                        flipped.push(n.name);
                    }
                }
            }
        }
        (out, flipped)
    }

    /// Classifies one node and passes its findings to the engine.
    pub fn observe(&mut self, engine: &mut Engine, name: &str, now_ms: i64) -> Vec<Transition> {
        let Some(n) = self.store.get(name) else {
            return Vec::new();
        };
        let now = now_ms.div_euclid(1000);
        let seen = self.seen.entry(n.name.clone()).or_default();
        seen.update(n, now);
        let seen = *seen;
        if seen == NodeSeen::default() {
            self.seen.remove(name);
        }
        if node_time_sensitive(n, &seen) {
            if !self.timed.contains(name) {
                self.timed.insert(n.name.clone());
            }
        } else {
            self.timed.remove(name);
        }
        let findings = classify_node(n, &seen, now, &self.thresholds);
        let key = node_key(name);
        if findings.is_empty() && !engine.tracks(&key) {
            // Healthy and never in an incident: nothing held for it either.
            if n.healthy() {
                let mut out = Vec::new();
                engine.release_node(name, false, now_ms, &mut out);
                return out;
            }
            return Vec::new();
        }
        let healthy = n.healthy();
        let mut out =
            engine.observe_revision(&key, &node_workload(name), None, healthy, findings, now_ms);
        if healthy && engine.node_incident(name).is_none() {
            // Recovered before its incident opened: what waited for it is
            // its own again.
            engine.release_node(name, false, now_ms, &mut out);
        }
        out
    }

    /// Every node, as if just seen (detection starts).
    pub fn observe_all(&mut self, engine: &mut Engine, now_ms: i64) -> Vec<Transition> {
        let names: Vec<Box<str>> = self.store.iter().map(|n| n.name.clone()).collect();
        names
            .iter()
            .flat_map(|n| self.observe(engine, n, now_ms))
            .collect()
    }

    /// The tick: nodes in a grace are classified again, and each node with
    /// an open NotReady incident lists the pods on it.
    pub fn tick(&mut self, engine: &mut Engine, pods: &Store, now_ms: i64) -> Vec<Transition> {
        let names: Vec<Box<str>> = self.timed.iter().cloned().collect();
        let mut out = Vec::new();
        for name in &names {
            out.extend(self.observe(engine, name, now_ms));
        }
        self.list_pods_of_down_nodes(engine, pods);
        out
    }

    /// Each NotReady node with an open incident lists the pods on it.
    pub fn list_pods_of_down_nodes(&self, engine: &mut Engine, pods: &Store) {
        let down: Vec<Box<str>> = self
            .timed
            .iter()
            .filter(|n| self.store.get(n).is_some_and(NodeRecord::not_ready))
            .filter(|n| engine.node_incident(n).is_some())
            .cloned()
            .collect();
        if !down.is_empty() {
            for (node, affected) in pods_on(pods.iter(), &down) {
                engine.set_node_pods(&node, affected);
            }
        }
    }
}

/// The live pods on each of `nodes`, grouped by workload. One pass over
/// the store, and only while a node is down.
pub fn pods_on<'a>(
    pods: impl Iterator<Item = &'a PodRecord>,
    nodes: &[Box<str>],
) -> Vec<(Box<str>, Vec<Affected>)> {
    let mut by: BTreeMap<&str, BTreeMap<(String, Workload), Vec<String>>> =
        nodes.iter().map(|n| (&**n, BTreeMap::new())).collect();
    for p in pods {
        let Some(node) = p.node.as_deref() else {
            continue;
        };
        if matches!(p.phase, Phase::Succeeded | Phase::Failed) {
            continue;
        }
        if let Some(w) = by.get_mut(node) {
            w.entry((p.namespace.to_string(), workload_of(p)))
                .or_default()
                .push(p.name.to_string());
        }
    }
    by.into_iter()
        .map(|(node, w)| {
            let affected = w
                .into_iter()
                .map(|((namespace, workload), mut pods)| {
                    pods.sort();
                    Affected {
                        namespace,
                        workload,
                        pods,
                        incident: None,
                    }
                })
                .collect();
            (Box::from(node), affected)
        })
        .collect()
}
