/*!
The detection pipeline the classification thread runs: store changes in,
incident transitions (the record) and notifications out.

It owns the incident engine and the little the classifier needs to
remember: when the daemon itself first saw a container in ErrImagePull, and
which pods can change verdict by the mere passing of time (Pending, not
Ready, ErrImagePull in its grace), so the timer tick re-classifies those and
only those. Pure: the caller passes `now` and does the printing.
*/

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use super::nodes::Nodes;
use crate::detect::classify::{Known, Thresholds, classify};
use crate::detect::incident::Engine;
use crate::detect::node::node_cause;
pub use crate::detect::tuning::{engine_config, thresholds};
use crate::detect::workload::{revision_of, rollout_of_incident, workload_of};
use crate::diagnose::fit::scheduling_facts;
use crate::diagnose::node::{attribute, diagnose_node};
use crate::diagnose::redact::redact;
use crate::diagnose::rules::{Context, RuleSet};
use crate::kube::store::{Change, Event, Store};
use crate::model::{
    ContainerRecord, ContainerState, Diagnosis, FailureType, Finding, Incident, NodeRecord,
    Notification, Phase, PodRecord, Rediagnosis, Rollout, State, Termination, Transition,
};
use crate::settings::Detect;

pub struct Detector {
    engine: Engine,
    thresholds: Thresholds,
    /// (pod uid, container) → when the daemon first saw it in ErrImagePull.
    err_image_pull: HashMap<(Box<str>, Box<str>), i64>,
    /// Pods whose verdict can change with time alone.
    timed: HashSet<String>,
    /// Namespaces annotated `opsctrl.dev/ignore: "true"`.
    ignored_namespaces: HashSet<Box<str>>,
    /// The latest diagnosis of each open incident, by id.
    diagnoses: HashMap<u64, Diagnosis>,
    /// Enrichment's better diagnosis of an open incident (redacted), and the
    /// finding it holds for: used instead of the rules' own while the
    /// incident's finding stays alike.
    enriched: HashMap<u64, (Finding, Diagnosis)>,
    rules: Arc<RuleSet>,
    started: bool,
    nodes: Nodes,
}

struct View<'a> {
    engine: &'a Engine,
    err_image_pull: &'a HashMap<(Box<str>, Box<str>), i64>,
}

impl Known for View<'_> {
    fn counted(&self, t: &Termination) -> bool {
        self.engine.counted(t)
    }
    fn err_image_pull_seen(&self, pod_uid: &str, container: &str) -> Option<i64> {
        self.err_image_pull
            .get(&(Box::from(pod_uid), Box::from(container)))
            .copied()
    }
}

fn waiting_reason(c: &ContainerRecord) -> Option<&str> {
    match &c.state {
        ContainerState::Waiting { reason, .. } => reason.as_deref(),
        _ => None,
    }
}

fn all_containers(p: &PodRecord) -> impl Iterator<Item = &ContainerRecord> {
    p.init_containers.iter().chain(p.containers.iter())
}

/// Running and Ready, or Succeeded: what "healthy" means for resolving.
pub fn is_healthy(p: &PodRecord) -> bool {
    match p.phase {
        Phase::Succeeded => true,
        Phase::Running => p.ready.as_ref().and_then(|c| c.status) == Some(true),
        _ => false,
    }
}

fn time_sensitive(p: &PodRecord) -> bool {
    p.deleting.is_none()
        && (p.phase == Phase::Pending
            || (p.phase == Phase::Running && !is_healthy(p))
            || all_containers(p).any(|c| waiting_reason(c) == Some("ErrImagePull")))
}

impl Detector {
    pub fn new(cluster: String, d: &Detect) -> Detector {
        Detector::with_rules(cluster, d, Arc::new(RuleSet::builtin()))
    }

    pub fn with_rules(cluster: String, d: &Detect, rules: Arc<RuleSet>) -> Detector {
        Detector {
            engine: Engine::new(engine_config(cluster, d)),
            thresholds: thresholds(d),
            err_image_pull: HashMap::new(),
            timed: HashSet::new(),
            ignored_namespaces: HashSet::new(),
            diagnoses: HashMap::new(),
            enriched: HashMap::new(),
            rules,
            started: false,
            nodes: Nodes::new(d),
        }
    }

    /// The node table and its detection.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// A node stream event. With `detect`, node incidents open and close,
    /// and the pods of a node whose health changed are looked at again
    /// (their failure may now be the node's doing, or no longer).
    pub fn on_nodes(
        &mut self,
        store: &Store,
        event: Event<NodeRecord>,
        detect: bool,
        now_ms: i64,
    ) -> Vec<Transition> {
        let (mut out, flipped) = self.nodes.apply(&mut self.engine, event, detect, now_ms);
        if detect && !flipped.is_empty() {
            for pod in store.iter() {
                if pod
                    .node
                    .as_deref()
                    .is_some_and(|n| flipped.contains(&Box::from(n)))
                {
                    out.extend(self.observe(&pod.key(), pod, Some(pod), now_ms));
                }
            }
        }
        out
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies one store change.
    pub fn on_change(&mut self, store: &Store, change: Change, now_ms: i64) -> Vec<Transition> {
        match change {
            Change::Upserted { key, previous } => match store.get(&key) {
                Some(pod) => {
                    let mut out = self.observe(&key, pod, previous.as_ref(), now_ms);
                    self.replaced_already(store, &mut out, now_ms);
                    out
                }
                None => Vec::new(),
            },
            Change::Deleted(pod) => {
                let key = pod.key();
                self.timed.remove(&key);
                self.err_image_pull.retain(|(uid, _), _| **uid != *pod.uid);
                self.engine.pod_gone(&key, now_ms)
            }
        }
    }

    /// Classifies every pod in the store, as if just seen (detection starts
    /// once the namespaces are known).
    pub fn observe_all(&mut self, store: &Store, now_ms: i64) -> Vec<Transition> {
        // Nodes first: a pod's failure may be its node's doing.
        let mut out = self.nodes.observe_all(&mut self.engine, now_ms);
        for pod in store.iter() {
            out.extend(self.observe(&pod.key(), pod, None, now_ms));
        }
        self.replaced_already(store, &mut out, now_ms);
        out
    }

    /// An eviction incident just opened whose workload already runs a
    /// healthy pod (the replacement came up first, or was there at
    /// start-up): it has its replacement now.
    fn replaced_already(&mut self, store: &Store, out: &mut Vec<Transition>, now_ms: i64) {
        let opened: Vec<Incident> = out
            .iter()
            .filter(|t| {
                t.incident.state == State::Open && t.incident.kind() == FailureType::Evicted
            })
            .map(|t| t.incident.clone())
            .collect();
        for i in opened {
            let healthy = store.iter().find(|p| {
                *p.namespace == *i.namespace && is_healthy(p) && workload_of(p) == i.workload
            });
            if let Some(p) = healthy {
                let more = self
                    .engine
                    .healthy_pod(&p.key(), &p.namespace, &i.workload, now_ms);
                out.extend(more);
            }
        }
    }

    /// A namespace's ignore annotation; the pods of a namespace whose flag
    /// flips are looked at again.
    pub fn set_namespace_ignored(
        &mut self,
        store: &Store,
        ns: &str,
        ignored: bool,
        now_ms: i64,
    ) -> Vec<Transition> {
        let changed = if ignored {
            self.ignored_namespaces.insert(Box::from(ns))
        } else {
            self.ignored_namespaces.remove(ns)
        };
        if !changed {
            return Vec::new();
        }
        let mut out = Vec::new();
        for pod in store.iter().filter(|p| &*p.namespace == ns) {
            out.extend(self.observe(&pod.key(), pod, Some(pod), now_ms));
        }
        out
    }

    /// Replaces the whole set (after a namespace LIST).
    pub fn set_ignored_namespaces(
        &mut self,
        store: &Store,
        names: HashSet<Box<str>>,
        now_ms: i64,
    ) -> Vec<Transition> {
        let flipped: Vec<Box<str>> = names
            .symmetric_difference(&self.ignored_namespaces)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for ns in flipped {
            let ignored = names.contains(&ns);
            out.extend(self.set_namespace_ignored(store, &ns, ignored, now_ms));
        }
        out
    }

    fn observe(
        &mut self,
        key: &str,
        pod: &PodRecord,
        previous: Option<&PodRecord>,
        now_ms: i64,
    ) -> Vec<Transition> {
        let now = now_ms.div_euclid(1000);
        // An ignored pod or namespace counts as gone: its incidents resolve
        // rather than stay open on pods nobody wants to hear about.
        if pod.ignore || self.ignored_namespaces.contains(&*pod.namespace) {
            self.timed.remove(key);
            return self.engine.pod_ignored(key, now_ms);
        }
        // Remember when a container the daemon already knew went into
        // ErrImagePull; pods first met in that state fall back to the
        // object's own clock (in classify), so a restart resets nothing.
        // (Keys are built only when needed: this runs for every pod update.)
        for c in all_containers(pod) {
            let reason = waiting_reason(c);
            if reason == Some("ErrImagePull") {
                let was = previous
                    .and_then(|p| all_containers(p).find(|pc| pc.name == c.name))
                    .is_some_and(|pc| waiting_reason(pc) == Some("ErrImagePull"));
                if previous.is_some() && !was {
                    self.err_image_pull
                        .entry((pod.uid.clone(), c.name.clone()))
                        .or_insert(now);
                }
            } else if reason != Some("ImagePullBackOff") && !self.err_image_pull.is_empty() {
                self.err_image_pull
                    .remove(&(pod.uid.clone(), c.name.clone()));
            }
        }
        if time_sensitive(pod) {
            if !self.timed.contains(key) {
                self.timed.insert(key.to_string());
            }
        } else {
            self.timed.remove(key);
        }
        let view = View {
            engine: &self.engine,
            err_image_pull: &self.err_image_pull,
        };
        let findings = classify(pod, &view, now, &self.thresholds);
        // A healthy pod may be the replacement an eviction waits for (the
        // evicted pod object stays behind, Failed).
        let mut replaced = Vec::new();
        if findings.is_empty() && self.engine.evictions_open() && is_healthy(pod) {
            replaced = self
                .engine
                .healthy_pod(key, &pod.namespace, &workload_of(pod), now_ms);
        }
        // The common case, a healthy pod the engine knows nothing of: skip
        // resolving its workload (allocations) on this per-update path.
        if findings.is_empty() && !self.engine.tracks(key) {
            return replaced;
        }
        let node = pod.node.as_deref().and_then(|n| self.nodes.get(n));
        let cause = node.and_then(|n| node_cause(pod, &findings, n).map(|why| (&*n.name, why)));
        replaced.extend(self.engine.observe_caused(
            key,
            &workload_of(pod),
            revision_of(pod),
            is_healthy(pod),
            findings,
            cause.as_ref().map(|(n, w)| (*n, w.as_str())),
            now_ms,
        ));
        replaced
    }

    /// The timer tick: re-classify the pods time can change, then let the
    /// engine resolve, flush batches and remind.
    pub fn tick(&mut self, store: &Store, now_ms: i64) -> (Vec<Transition>, Vec<Notification>) {
        let mut transitions = Vec::new();
        let keys: Vec<String> = self.timed.iter().cloned().collect();
        for key in keys {
            match store.get(&key) {
                Some(pod) => transitions.extend(self.observe(&key, pod, Some(pod), now_ms)),
                None => {
                    self.timed.remove(&key);
                }
            }
        }
        transitions.extend(self.nodes.tick(&mut self.engine, store, now_ms));
        let (t, n) = self.engine.tick(now_ms);
        transitions.extend(t);
        (transitions, n)
    }

    /// The diagnosis for a transition: worked out from the pod as it is now
    /// for `open`/`updated` (a cheap, pure table lookup), kept for `resolved`.
    pub fn diagnose(&mut self, store: &Store, t: &Transition) -> Option<Diagnosis> {
        let i = &t.incident;
        if i.state == State::Resolved {
            let rules = self.diagnoses.remove(&i.id);
            return self.enriched.remove(&i.id).map(|(_, d)| d).or(rules);
        }
        match self.enriched.get(&i.id) {
            Some((f, d)) if f.diagnosed_alike(&i.finding) => {
                let d = d.clone();
                self.diagnoses.insert(i.id, d.clone());
                return Some(d);
            }
            Some(_) => {
                self.enriched.remove(&i.id);
            }
            None => {}
        }
        if i.is_node() {
            let d = diagnose_node(i, self.nodes.get(&i.workload.name));
            self.diagnoses.insert(i.id, d.clone());
            return Some(d);
        }
        let key = format!("{}/{}", i.namespace, i.finding.pod);
        let pod = store.get(&key)?;
        let rollout = self.rollout(store, i, pod);
        let mut d = self.rules.diagnose(&Context {
            finding: &i.finding,
            pod,
            workload: &i.workload,
            events: &[],
            logs: &[],
            rollout: &rollout,
        });
        if let Some((node, why)) = self.engine.attributed(i.id) {
            let id = self.engine.node_incident(node).map(|n| n.id);
            d = attribute(d, node, why, id);
        }
        if matches!(
            i.kind(),
            FailureType::Unschedulable | FailureType::PendingTooLong
        ) {
            let nodes: Vec<&NodeRecord> = self.nodes.iter().collect();
            d.evidence
                .extend(scheduling_facts(pod, &nodes, store.iter()));
        }
        self.diagnoses.insert(i.id, d.clone());
        Some(d)
    }

    /// Where the incident's revision stands in its workload's rollout.
    pub fn rollout(&self, store: &Store, i: &Incident, pod: &PodRecord) -> Rollout {
        rollout_of_incident(i, pod, store.iter(), self.engine.open_incidents())
    }

    /// Enrichment found a better diagnosis (`r`, redacted) for an open
    /// incident: it stands from now on while the incident's finding stays
    /// alike, and the incident gets an `updated` record when it says
    /// something else than the record did. A stale one (the incident moved
    /// on, or resolved) changes nothing.
    pub fn rediagnosed(&mut self, r: Rediagnosis, now_ms: i64) -> Option<Transition> {
        let incident = self.engine.incident(r.incident)?;
        if !r.finding.diagnosed_alike(&incident.finding) {
            return None;
        }
        let same = self.diagnoses.get(&r.incident).is_some_and(|d| {
            let mut d = d.clone();
            d.redact_with(redact);
            d.says_the_same(&r.diagnosis)
        });
        let mut incident = incident.clone();
        self.enriched.insert(r.incident, (r.finding, r.diagnosis));
        if same {
            return None;
        }
        incident.state = State::Updated;
        Some(Transition {
            incident,
            at_ms: now_ms,
        })
    }

    /// The diagnosis last worked out for an open incident.
    pub fn diagnosis_of(&self, id: u64) -> Option<&Diagnosis> {
        self.diagnoses.get(&id)
    }

    /// Shutting down: whatever the engine still holds back (a batch, a
    /// rate-limited update) goes out now; resolutions due are made.
    pub fn flush(&mut self, now_ms: i64) -> (Vec<Transition>, Vec<Notification>) {
        self.engine.flush(now_ms)
    }

    /// Every stream has listed once: what is open was broken before we started.
    /// Node incidents list what they affect before the summary goes out
    /// (their lists are otherwise refreshed by the tick).
    pub fn startup_done(
        &mut self,
        store: &Store,
        now_ms: i64,
    ) -> (Vec<Transition>, Vec<Notification>) {
        if std::mem::replace(&mut self.started, true) {
            return (Vec::new(), Vec::new());
        }
        self.nodes.list_pods_of_down_nodes(&mut self.engine, store);
        let t = self.engine.refresh_node_incidents(now_ms);
        (t, self.engine.startup_done(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::Event;
    use crate::kube::types::Pod;

    fn crashing() -> PodRecord {
        let pod: Pod = serde_json::from_str(include_str!(
            "../../tests/fixtures/pods/crashloop-error.json"
        ))
        .unwrap();
        PodRecord::from(pod)
    }

    fn feed(d: &mut Detector, store: &mut Store, pod: PodRecord, now_ms: i64) -> Vec<Transition> {
        let changes = store.apply(0, Event::Apply(Box::new(pod)));
        changes
            .into_iter()
            .flat_map(|c| d.on_change(store, c, now_ms))
            .collect()
    }

    fn states(ts: &[Transition]) -> Vec<State> {
        ts.iter().map(|t| t.incident.state).collect()
    }

    #[test]
    fn an_ignored_namespace_resolves_its_incidents_and_opens_none() {
        let mut d = Detector::new("c".into(), &Detect::default());
        let mut store = Store::new();
        let pod = crashing();
        let ns = pod.namespace.to_string();
        let t0 = 1_900_000_000_000;
        assert_eq!(
            states(&feed(&mut d, &mut store, pod.clone(), t0)),
            [State::Open]
        );
        assert_eq!(
            states(&d.set_namespace_ignored(&store, &ns, true, t0 + 1000)),
            [State::Resolved]
        );
        let mut again = pod.clone();
        again.containers[0].restart_count += 1;
        assert!(feed(&mut d, &mut store, again, t0 + 2000).is_empty());
        // Back in view: the termination seen while ignored was already
        // counted, so the next crash is what opens a new incident.
        assert!(
            d.set_namespace_ignored(&store, &ns, false, t0 + 3000)
                .is_empty()
        );
        let mut next = store.get(&pod.key()).unwrap().clone();
        if let Some(t) = next.containers[0].last_terminated.as_mut() {
            t.finished = t.finished.map(|f| f + 60);
        }
        next.containers[0].restart_count += 1;
        assert_eq!(
            states(&feed(&mut d, &mut store, next, t0 + 4000)),
            [State::Open]
        );
    }

    #[test]
    fn an_ignored_pod_opens_nothing() {
        let mut d = Detector::new("c".into(), &Detect::default());
        let mut store = Store::new();
        let mut pod = crashing();
        pod.ignore = true;
        assert!(feed(&mut d, &mut store, pod, 1_900_000_000_000).is_empty());
    }
}
