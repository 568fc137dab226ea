/*!
The classification step: what the classification thread does with one input,
as a pure function of its state, the input and the clock.

`Classifier::handle(input, now_ms) -> Effects` applies a store or namespace
event, or a timer tick, and returns what should happen because of it: the
records to print (each transition with its diagnosis, already redacted), the
notifications to hand to the delivery pool (with the pods they are about),
and how many watch events were applied. It never prints, sends, sleeps or
reads a clock; `daemon::run` wires the threads and channels and applies the
effects, so everything here is tested with plain values and a fake clock.

- `detector`: classification and the incident engine over the store.
- `nodes`: the node table, node incidents and what they list as affected.
- `silence`: holds back silenced notifications, and lets them out when the
  silence ends.
*/

pub mod detector;
pub mod nodes;
pub mod silence;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::diagnose::RuleSet;
use crate::diagnose::redact::redact;
use crate::kube::store::{Change, Event, Store, StreamId};
use crate::model::{
    Alert, Diagnosis, Incident, Item, Job, NamespaceRecord, NodeRecord, Notification, Rediagnosis,
    SilenceUntil, State, Subject, Transition,
};
use crate::routing::Silences;
use crate::settings::Detect;
use detector::Detector;
use silence::Silencer;

/// How long detection waits for the namespace list once the pods are
/// listed; past it, detection starts without the namespaces' annotation
/// (RBAC that cannot read namespaces must not blind the daemon).
pub const NAMESPACE_WAIT_MS: i64 = 10_000;

/// One thing that happened, in the order it happened.
#[derive(Debug)]
pub enum Input {
    /// From a pod stream.
    Store { stream: StreamId, event: Event },
    /// From the namespace stream.
    Namespaces { event: Event<NamespaceRecord> },
    /// From the node stream.
    Nodes { event: Event<NodeRecord> },
    /// Once a second, busy or not: thresholds, graces and hold-downs must
    /// not wait for an event to arrive.
    Tick,
    /// A delivery worker's enrichment changed an incident's diagnosis.
    Rediagnosed(Box<Rediagnosis>),
}

/// A line of the record: a transition and its diagnosis.
pub type Record = (Transition, Option<Diagnosis>);

/// What one step asks the world to do.
#[derive(Default)]
pub struct Effects {
    /// To print, in order (stdout, text or JSON lines).
    pub records: Vec<Record>,
    /// To hand to the delivery pool, in order.
    pub jobs: Vec<Job>,
    /// Watch events applied to the store (a page counts its pods).
    pub events_applied: u64,
    /// Notifications held back by a silence.
    pub silenced: u64,
}

impl Effects {
    fn extend(&mut self, other: Effects) {
        self.records.extend(other.records);
        self.jobs.extend(other.jobs);
        self.events_applied += other.events_applied;
        self.silenced += other.silenced;
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.jobs.is_empty()
    }
}

/// What a classifier is started with.
pub struct Config {
    /// Named in every incident.
    pub cluster: String,
    pub detect: Detect,
    pub rules: Arc<RuleSet>,
    /// For logs, one per pod stream, by stream id.
    pub stream_names: Vec<String>,
    /// A namespace stream exists: detection waits for its first list (or
    /// `NAMESPACE_WAIT_MS`), so a pod in an ignored namespace never opens
    /// an incident at start-up.
    pub namespaces_watched: bool,
    /// A node stream exists: detection waits for its first list too (or
    /// `NAMESPACE_WAIT_MS`), so a pod on a node that is down at start-up is
    /// attributed to it rather than announced on its own.
    pub nodes_watched: bool,
    /// `SILENCES_FILE` (empty when unset).
    pub silences: Silences,
}

/// The namespaces listed so far: the ignored ones, and the silenced ones.
type NsListing = (HashSet<Box<str>>, HashMap<Box<str>, SilenceUntil>);

/// The classification thread's state: the pod store, the detector, and
/// where detection stands at start-up.
pub struct Classifier {
    store: Store,
    detector: Detector,
    stream_names: Vec<String>,
    /// Per pod stream: its first LIST is done.
    listed: Vec<bool>,
    /// The namespace list being received (ignored names, annotated silences).
    ns_listing: Option<NsListing>,
    silencer: Silencer,
    /// Detection runs (namespaces and nodes known, or given up waiting).
    detecting: bool,
    /// The namespace list is in (or not watched).
    namespaces_known: bool,
    /// The node list is in (or not watched).
    nodes_known: bool,
    /// The start-up summary went out.
    announced: bool,
    /// When every pod stream had listed.
    pods_listed_at: Option<i64>,
    /// Transitions before the start-up summary: printed with it, one record
    /// per incident, so the start-up burst shows no OPEN then UPDATED pair.
    held: Vec<Transition>,
}

impl Classifier {
    pub fn new(cfg: Config) -> Classifier {
        let streams = cfg.stream_names.len();
        Classifier {
            store: Store::new(),
            detector: Detector::with_rules(cfg.cluster, &cfg.detect, cfg.rules),
            stream_names: cfg.stream_names,
            listed: vec![false; streams],
            ns_listing: None,
            silencer: Silencer::new(cfg.silences),
            detecting: !cfg.namespaces_watched && !cfg.nodes_watched,
            namespaces_known: !cfg.namespaces_watched,
            nodes_known: !cfg.nodes_watched,
            announced: false,
            pods_listed_at: None,
            held: Vec::new(),
        }
    }

    /// Pods in the store.
    pub fn pods_tracked(&self) -> usize {
        self.store.len()
    }

    /// Incidents open now.
    pub fn open_incidents(&self) -> usize {
        self.detector.engine().open_incidents().count()
    }

    /// Every pod stream has listed once.
    pub fn listed(&self) -> bool {
        self.listed.iter().all(|l| *l)
    }

    /// The store, read-only (benchmarks, tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies one input at `now_ms` (Unix milliseconds).
    pub fn handle(&mut self, input: Input, now_ms: i64) -> Effects {
        let mut fx = match input {
            Input::Store { stream, event } => self.on_pods(stream, event, now_ms),
            Input::Namespaces { event } => self.on_namespaces(event, now_ms),
            Input::Nodes { event } => self.on_nodes(event, now_ms),
            Input::Tick => {
                let (t, mut n) = self.detector.tick(&self.store, now_ms);
                let mut fx = self.records(t);
                let engine = self.detector.engine();
                let det = &self.detector;
                n.extend(self.silencer.release(
                    &|id| engine.incident(id).cloned(),
                    &self.store,
                    &|id| det.diagnosis_of(id).map(|d| d.cause),
                    now_ms,
                ));
                self.notify(&mut fx, n, now_ms);
                fx
            }
            Input::Rediagnosed(r) => match self.detector.rediagnosed(*r, now_ms) {
                Some(t) => self.records(vec![t]),
                None => Effects::default(),
            },
        };
        if self.pods_listed_at.is_none() && self.listed() {
            self.pods_listed_at = Some(now_ms);
        }
        if !self.detecting
            && self
                .pods_listed_at
                .is_some_and(|t| now_ms - t >= NAMESPACE_WAIT_MS)
        {
            if !self.namespaces_known {
                log::warn!(
                    "namespaces cannot be listed yet ({}s after the pods): detecting without the namespace opsctrl.dev/ignore annotation until they can",
                    NAMESPACE_WAIT_MS / 1000
                );
            }
            if !self.nodes_known {
                log::warn!(
                    "nodes cannot be listed yet ({}s after the pods): detecting without node facts until they can (run `opsctrl-daemon check`)",
                    NAMESPACE_WAIT_MS / 1000
                );
            }
            fx.extend(self.start_detection(now_ms));
        }
        fx
    }

    /// Shutting down: what the engine holds back (a batch, a rate-limited
    /// update) comes out now.
    pub fn finish(&mut self, now_ms: i64) -> Effects {
        let (t, n) = self.detector.flush(now_ms);
        let mut fx = self.records(t);
        self.notify(&mut fx, n, now_ms);
        fx
    }

    fn on_pods(&mut self, stream: StreamId, event: Event, now_ms: i64) -> Effects {
        let applied = match &event {
            Event::Page(p) => p.len() as u64,
            Event::Apply(_) | Event::Delete(_) => 1,
            Event::Init | Event::InitDone => 0,
        };
        let done = matches!(event, Event::InitDone);
        let changes = self.store.apply(stream, event);
        let mut transitions = Vec::new();
        for c in changes {
            if log::log_enabled!(log::Level::Debug) {
                match &c {
                    Change::Upserted { key, previous } => log::debug!(
                        "pod {} {key}",
                        if previous.is_some() {
                            "updated"
                        } else {
                            "added"
                        }
                    ),
                    Change::Deleted(p) => log::debug!("pod deleted {}", p.key()),
                }
            }
            if self.detecting {
                transitions.extend(self.detector.on_change(&self.store, c, now_ms));
            }
        }
        let mut fx = self.records(transitions);
        fx.events_applied = applied;
        if done {
            let i = usize::from(stream);
            let first = self.listed.get(i).is_some_and(|l| !*l);
            if let Some(l) = self.listed.get_mut(i) {
                *l = true;
            }
            let name = self.stream_names.get(i).map_or("?", String::as_str);
            let pods = self.store.len();
            if first {
                log::info!("initial list done stream={name} pods_tracked={pods}");
                fx.extend(self.announce_if_ready(now_ms));
            } else {
                log::info!("relist done stream={name} pods_tracked={pods}");
            }
        }
        fx
    }

    fn on_namespaces(&mut self, event: Event<NamespaceRecord>, now_ms: i64) -> Effects {
        match event {
            Event::Init => {
                self.ns_listing = Some(Default::default());
                Effects::default()
            }
            Event::Page(page) => {
                let (ignored, silenced) = self.ns_listing.get_or_insert_with(Default::default);
                for n in page {
                    if let Some(s) = n.silence_until {
                        silenced.insert(n.name.clone(), s);
                    }
                    if n.ignore {
                        ignored.insert(n.name);
                    }
                }
                Effects::default()
            }
            Event::InitDone => {
                let (names, silenced) = self.ns_listing.take().unwrap_or_default();
                self.silencer.set_namespaces(silenced);
                log::info!("namespaces listed ignored={}", names.len());
                let t = self
                    .detector
                    .set_ignored_namespaces(&self.store, names, now_ms);
                let mut fx = self.records(t);
                self.namespaces_known = true;
                if self.nodes_known {
                    fx.extend(self.start_detection(now_ms));
                }
                fx
            }
            Event::Apply(n) => {
                let NamespaceRecord {
                    name,
                    ignore,
                    silence_until,
                } = *n;
                self.silencer.set_namespace(&name, silence_until);
                let t = self
                    .detector
                    .set_namespace_ignored(&self.store, &name, ignore, now_ms);
                self.records(t)
            }
            Event::Delete(n) => {
                self.silencer.set_namespace(&n.name, None);
                let t = self
                    .detector
                    .set_namespace_ignored(&self.store, &n.name, false, now_ms);
                self.records(t)
            }
        }
    }

    fn on_nodes(&mut self, event: Event<NodeRecord>, now_ms: i64) -> Effects {
        let done = matches!(event, Event::InitDone);
        let applied = match &event {
            Event::Page(p) => p.len() as u64,
            Event::Apply(_) | Event::Delete(_) => 1,
            Event::Init | Event::InitDone => 0,
        };
        let t = self
            .detector
            .on_nodes(&self.store, event, self.detecting, now_ms);
        let mut fx = self.records(t);
        fx.events_applied = applied;
        if done && !self.nodes_known {
            self.nodes_known = true;
            log::info!("nodes listed nodes={}", self.detector.nodes().len());
            if self.namespaces_known {
                fx.extend(self.start_detection(now_ms));
            }
        }
        fx
    }

    /// Nodes in the node table.
    pub fn nodes_tracked(&self) -> usize {
        self.detector.nodes().len()
    }

    /// Detection begins over everything in the store (once).
    fn start_detection(&mut self, now_ms: i64) -> Effects {
        if std::mem::replace(&mut self.detecting, true) {
            return Effects::default();
        }
        let t = self.detector.observe_all(&self.store, now_ms);
        let mut fx = self.records(t);
        fx.extend(self.announce_if_ready(now_ms));
        fx
    }

    /// Once detection runs and every pod stream has listed, what is open was
    /// already broken at start-up: one summary.
    fn announce_if_ready(&mut self, now_ms: i64) -> Effects {
        if !self.detecting || self.announced || !self.listed() {
            return Effects::default();
        }
        self.announced = true;
        let (t, n) = self.detector.startup_done(&self.store, now_ms);
        let mut held = std::mem::take(&mut self.held);
        held.extend(t);
        let mut fx = self.records(held);
        self.notify(&mut fx, n, now_ms);
        fx
    }

    /// Each transition with its diagnosis, redacted: the record may be
    /// shipped off the node by a log collector, and kubelet copies log
    /// tails into messages.
    fn records(&mut self, transitions: Vec<Transition>) -> Effects {
        if !self.announced {
            self.held.extend(transitions);
            return Effects::default();
        }
        let transitions = coalesce(transitions);
        let mut records = Vec::with_capacity(transitions.len());
        for mut t in transitions {
            t.incident.finding.message = redact(&t.incident.finding.message);
            let d = self.detector.diagnose(&self.store, &t).map(|mut d| {
                d.redact_with(redact);
                d
            });
            records.push((t, d));
        }
        Effects {
            records,
            ..Effects::default()
        }
    }

    /// The notifications that are not silenced become jobs.
    fn notify(&mut self, fx: &mut Effects, notifications: Vec<Notification>, now_ms: i64) {
        if notifications.is_empty() {
            return;
        }
        let det = &self.detector;
        let kept = self.silencer.filter(
            notifications,
            &self.store,
            &|id| det.diagnosis_of(id).map(|d| d.cause),
            now_ms,
        );
        fx.silenced += kept.silenced;
        fx.jobs
            .extend(kept.notifications.into_iter().map(|n| self.job(n)));
    }

    /// Incidents whose notification a silence holds back now.
    pub fn silenced_incidents(&self) -> usize {
        self.silencer.held()
    }

    /// An incident with its diagnosis, and a copy of its pod for enrichment.
    fn item(&self, incident: Incident) -> (Item, Option<Box<Subject>>) {
        let diagnosis = self.detector.diagnosis_of(incident.id).cloned();
        let key = format!("{}/{}", incident.namespace, incident.finding.pod);
        let subject = self.store.get(&key).map(|pod| {
            Box::new(Subject {
                pod: pod.clone(),
                rollout: self.detector.rollout(&self.store, &incident, pod),
            })
        });
        (Item::new(incident, diagnosis), subject)
    }

    fn job(&self, n: Notification) -> Job {
        let group = |incidents: Vec<Incident>| -> (Vec<Item>, Vec<Option<Box<Subject>>>) {
            incidents.into_iter().map(|i| self.item(i)).unzip()
        };
        match n {
            Notification::Single { incident, reminder } => {
                let (item, pod) = self.item(incident);
                Job {
                    alert: Alert::Incident {
                        item: Box::new(item),
                        reminder,
                    },
                    pods: vec![pod],
                }
            }
            Notification::StartupSummary { incidents } => {
                let (items, pods) = group(incidents);
                Job {
                    alert: Alert::StartupSummary { items },
                    pods,
                }
            }
            Notification::Storm { shared, incidents } => {
                let (items, pods) = group(incidents);
                Job {
                    alert: Alert::Storm { shared, items },
                    pods,
                }
            }
        }
    }
}

/// One transition per incident and step: a later snapshot replaces an
/// earlier one (an incident opened and updated in one step is one `open`
/// record with the latest state), but a resolution always stands on its own.
fn coalesce(transitions: Vec<Transition>) -> Vec<Transition> {
    if transitions.len() < 2 {
        return transitions;
    }
    let mut out: Vec<Transition> = Vec::with_capacity(transitions.len());
    let mut at: HashMap<u64, usize> = HashMap::new();
    for t in transitions {
        let id = t.incident.id;
        match at.get(&id) {
            Some(&i)
                if t.incident.state != State::Resolved
                    && out[i].incident.state != State::Resolved =>
            {
                let first = out[i].incident.state;
                out[i] = t;
                if first == State::Open {
                    out[i].incident.state = State::Open;
                }
            }
            _ => {
                at.insert(id, out.len());
                out.push(t);
            }
        }
    }
    out
}

/// Records that open an incident (for the `opened` counter).
pub fn opened(records: &[Record]) -> u64 {
    records
        .iter()
        .filter(|(t, _)| t.incident.state == State::Open)
        .count() as u64
}

#[cfg(test)]
mod tests;
