/*!
The incident engine: turns each pod's current findings into incidents, one
open incident per (namespace, workload), and decides both their lifecycle
(open, updated, resolved) and what the notification sinks should send
(batched, grouped into storms, rate-limited, re-announced, summarised at
start-up).

It is pure like the rest of `detect`: values in, values out, the clock passed
in as `now_ms` (Unix milliseconds), so the whole lifecycle is tested with
plain numbers. `observe` runs for every pod update, so it only touches the
pod's own entry and its workload's incident (hash maps and an ordered set per
incident); only `tick`, once a second, walks the open incidents.

Every [`Transition`] goes to the record; notifications are a separate, quieter
stream that only ever leaves through `tick` and `startup_done`.
*/

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::mem;

pub use crate::model::incident::{Affected, Incident, Notification, State, Transition};
use crate::model::{FailureType, Family, Finding, Termination, Workload};

/// The workload kind of node incidents.
pub const NODE_KIND: &str = "Node";

/// A HighRestartCount incident's pods are Running and Ready between crashes,
/// so health says nothing: it resolves after this long without a termination.
pub const HIGH_RESTART_QUIET_MS: i64 = 600_000;
/// Counted terminations older than this are forgotten: past `RECENT_SECS`
/// the classifier no longer looks at them (5 minutes' margin for clock skew),
/// and the set must stay small under heavy churn.
const COUNTED_KEEP_SECS: i64 = super::classify::RECENT_SECS + 300;
/// Pruning walks every counted termination; once a minute is plenty.
const PRUNE_EVERY_MS: i64 = 60_000;

/// Built from `tuning::Detect`; its `Default` (the product defaults, no
/// cluster name) is implemented in `tuning`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Named in every incident (several clusters may share one channel).
    pub cluster: String,
    /// How long every pod of an incident must stay healthy before it resolves.
    pub resolve_after_ms: i64,
    /// Minimum gap between two notifications of one incident; 0 = none.
    pub rate_limit_ms: i64,
    /// A still-open incident is re-announced this often; 0 = never.
    pub renotify_ms: i64,
    /// How long the first new incident waits for others to join its batch.
    pub batch_ms: i64,
    /// A batch of more new incidents than this goes out as one storm.
    pub storm_threshold: usize,
}

/// (namespace, workload): where a pod belongs.
type WorkloadKey = (String, Workload);

/// Which problem of a pod a finding is: its family, and the container for
/// container-level types (two containers failing are two problems).
type Part = (Family, Option<String>);

/// What one open incident is about: one problem of one revision of one
/// workload. Two failures in one workload — two revisions (a rollout gone
/// wrong next to the old ReplicaSet), two containers, or two families
/// (an image pull next to a crash) — are two incidents with their own
/// diagnosis and fix; one container flapping between OOMKilled and
/// CrashLoopBackOff stays one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct IncidentKey {
    namespace: String,
    workload: Workload,
    /// The ReplicaSet of a Deployment's pod (`web-7d4b9c6f8`), else `None`.
    revision: Option<Box<str>>,
    part: Part,
}

fn part_of(f: &Finding) -> Part {
    let container = f
        .kind
        .is_container_level()
        .then(|| f.container.clone())
        .flatten();
    (f.kind.family(), container)
}

/// The last thing each pod reported.
struct PodEntry {
    workload: WorkloadKey,
    revision: Option<Box<str>>,
    name: String,
    healthy: bool,
    findings: Vec<Finding>,
    /// The open incidents this pod belongs to (it failed while they were
    /// open), one per part; usually none or one.
    incidents: Vec<(Part, u64)>,
}

/// What the last transition said: later changes are material only against it,
/// so a slow drift of counters never adds up to an update.
struct Baseline {
    kind: FailureType,
    reason: String,
    exit_code: Option<i32>,
    container: Option<String>,
    pods: usize,
    /// A node incident's affected pods.
    affected: usize,
    /// The representative pod: when it is gone or recovered and another
    /// pod stands for the incident, the commands must name the new one.
    rep: String,
}

impl Baseline {
    fn of(incident: &Incident) -> Baseline {
        Baseline {
            kind: incident.finding.kind,
            reason: incident.finding.reason.clone(),
            exit_code: incident.finding.exit_code,
            container: incident.finding.container.clone(),
            pods: incident.pods.len(),
            affected: affected_pods(incident),
            rep: incident.finding.pod.clone(),
        }
    }

    /// A new type (hence any severity change), a new cause, more pods, or
    /// another pod standing for the incident.
    fn material(&self, incident: &Incident) -> bool {
        let f = &incident.finding;
        f.kind != self.kind
            || f.reason != self.reason
            || f.exit_code != self.exit_code
            || f.container != self.container
            || incident.pods.len() > self.pods
            || affected_pods(incident) > self.affected
            || f.pod != self.rep
    }

    /// Worse news that must not wait for the rate-limit window: a higher
    /// severity, another failing container, or another failure type that
    /// is not milder. A milder change waits.
    fn escalation(&self, incident: &Incident) -> bool {
        let f = &incident.finding;
        let (now, was) = (f.kind.severity(), self.kind.severity());
        now > was || (now == was && (f.kind != self.kind || f.container != self.container))
    }
}

struct OpenIncident {
    key: IncidentKey,
    incident: Incident,
    /// Keys ("ns/name") of its pods; `incident.pods` holds their names.
    members: HashSet<String>,
    /// (most specific kind, pod key) of each member that has findings now:
    /// the first entry gives the representative without scanning the pods.
    failing: BTreeSet<(FailureType, String)>,
    /// The pod the representative came from; kept while it still shows the
    /// best kind, so equal pods do not take turns changing the cause.
    rep_pod: String,
    /// Members whose last report was not healthy.
    unhealthy: usize,
    /// Since when every member has been healthy (the hold-down clock).
    healthy_since: Option<i64>,
    baseline: Baseline,
    /// Its first notification (single, storm or start-up summary) went out.
    announced: bool,
    last_notified_ms: i64,
    /// An update not yet notified (folded by the rate limit).
    pending: bool,
    /// The pending update is an escalation: it goes out at the next tick.
    urgent: bool,
    /// The node this incident is attributed to, and why (`NodeNotReady`,
    /// `DiskPressure`): it is held back from notification and listed in
    /// the node's incident instead.
    node: Option<(String, String)>,
    /// An eviction whose workload has a healthy pod that is not one of its
    /// members: the evicted pod objects stay (phase Failed) but the
    /// workload runs again.
    replaced: bool,
}

impl OpenIncident {
    /// Whether the hold-down clock may run: every member healthy with no
    /// findings, except that a HighRestartCount incident's pods keep
    /// reporting their restart count while healthy.
    fn quiet(&self) -> bool {
        (self.unhealthy == 0
            && (self.failing.is_empty() || self.incident.kind() == FailureType::HighRestartCount))
            || (self.replaced && self.key.part.0 == Family::Eviction)
    }

    fn hold_ms(&self, resolve_after_ms: i64) -> i64 {
        if self.incident.kind() == FailureType::HighRestartCount {
            HIGH_RESTART_QUIET_MS
        } else {
            resolve_after_ms
        }
    }
}

pub struct Engine {
    cfg: Config,
    next_id: u64,
    pods: HashMap<String, PodEntry>,
    by_key: HashMap<IncidentKey, u64>,
    /// Open incidents by id: ordered, so everything derived is deterministic.
    open: BTreeMap<u64, OpenIncident>,
    counted: HashSet<Termination>,
    /// `startup_done` was called: new incidents are batched from now on.
    started: bool,
    /// New incidents waiting for their first notification, oldest first.
    batch: Vec<u64>,
    batch_since: Option<i64>,
    /// Resolutions of announced incidents, sent at the next tick.
    outbox: Vec<Notification>,
    next_prune_ms: i64,
    /// Per node, pods on it the node incident lists although they have no
    /// incident of their own (pods on a NotReady node), from the detector.
    node_pods: HashMap<String, Vec<Affected>>,
    /// Open eviction incidents: only while there are any do healthy pods
    /// the engine does not track need a look (`healthy_pod`).
    evictions: BTreeSet<u64>,
}

impl Engine {
    pub fn new(cfg: Config) -> Engine {
        Engine {
            cfg,
            next_id: 1,
            pods: HashMap::new(),
            by_key: HashMap::new(),
            open: BTreeMap::new(),
            counted: HashSet::new(),
            started: false,
            batch: Vec::new(),
            batch_since: None,
            outbox: Vec::new(),
            next_prune_ms: i64::MIN,
            node_pods: HashMap::new(),
            evictions: BTreeSet::new(),
        }
    }

    /// Some eviction incident is open (see `healthy_pod`).
    pub fn evictions_open(&self) -> bool {
        !self.evictions.is_empty()
    }

    /// A healthy pod of `workload` in `namespace`: each open eviction
    /// incident of that workload of which it is not a member has its
    /// replacement, and resolves after the usual hold-down.
    pub fn healthy_pod(
        &mut self,
        pod_key: &str,
        namespace: &str,
        workload: &Workload,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let ids: Vec<u64> = self.evictions.iter().copied().collect();
        for id in ids {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            if o.replaced
                || o.key.namespace != namespace
                || o.key.workload != *workload
                || o.members.contains(pod_key)
            {
                continue;
            }
            o.replaced = true;
            self.refresh(id, false, now_ms, &mut out);
        }
        out
    }

    /// A pod's current findings (replacing whatever it reported before) and
    /// health (Running and Ready, or Succeeded), for a workload without
    /// revisions (or when its revision is not known).
    pub fn observe(
        &mut self,
        pod_key: &str,
        workload: &Workload,
        healthy: bool,
        findings: Vec<Finding>,
        now_ms: i64,
    ) -> Vec<Transition> {
        self.observe_revision(pod_key, workload, None, healthy, findings, now_ms)
    }

    /// `observe` for a pod of one revision of its workload (a Deployment's
    /// ReplicaSet): failures of different revisions are different incidents.
    pub fn observe_revision(
        &mut self,
        pod_key: &str,
        workload: &Workload,
        revision: Option<&str>,
        healthy: bool,
        findings: Vec<Finding>,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        // Most pods are healthy and belong to no incident: keep no state for
        // them (memory grows with failures, not with the cluster).
        if findings.is_empty()
            && self
                .pods
                .get(pod_key)
                .is_none_or(|p| p.incidents.is_empty())
        {
            self.pods.remove(pod_key);
            return out;
        }
        let (namespace, name) = split_key(pod_key);
        if let Some(pod) = self.pods.get(pod_key) {
            if pod.workload.0 != namespace
                || pod.workload.1 != *workload
                || pod.revision.as_deref() != revision
            {
                // Its owner changed (not expected): leave the old incidents as if gone.
                self.pod_gone_into(pod_key, now_ms, &mut out);
            } else if pod.healthy == healthy && pod.findings == findings {
                // A relist, or an update touching nothing we look at.
                return out;
            }
        }
        if !self.pods.contains_key(pod_key) {
            let entry = PodEntry {
                workload: (namespace.to_string(), workload.clone()),
                revision: revision.map(Box::from),
                name: name.to_string(),
                healthy,
                findings: Vec::new(),
                incidents: Vec::new(),
            };
            self.pods.insert(pod_key.to_string(), entry);
        }
        let Some(pod) = self.pods.get_mut(pod_key) else {
            return out;
        };
        let was_healthy = mem::replace(&mut pod.healthy, healthy);
        let old = mem::replace(&mut pod.findings, findings);
        let new_parts = best_per_part(&pod.findings);
        let old_parts = best_per_part(&old);
        let attached = pod.incidents.clone();
        let (wk, rev) = (pod.workload.clone(), pod.revision.clone());
        let mut touched: Vec<(u64, Part)> = Vec::new();
        for (part, id) in attached.iter().cloned() {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            if was_healthy != healthy {
                o.unhealthy = if healthy {
                    o.unhealthy.saturating_sub(1)
                } else {
                    o.unhealthy + 1
                };
            }
            let (old_best, new_best) = (kind_in(&old_parts, &part), kind_in(&new_parts, &part));
            if old_best != new_best {
                if let Some(k) = old_best {
                    o.failing.remove(&(k, pod_key.to_string()));
                }
                if let Some(k) = new_best {
                    o.failing.insert((k, pod_key.to_string()));
                }
            }
            touched.push((id, part));
        }
        for (part, kind) in new_parts {
            if attached.iter().any(|(p, _)| *p == part) {
                continue;
            }
            let key = IncidentKey {
                namespace: wk.0.clone(),
                workload: wk.1.clone(),
                revision: rev.clone(),
                part: part.clone(),
            };
            let Some(id) = self.by_key.get(&key).copied() else {
                if self.openable(pod_key, &part) {
                    self.open_incident(pod_key, key, now_ms, &mut out);
                }
                continue;
            };
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            // A failing pod of the workload joins its incident. If the
            // incident's pods were all deleted, it replaces them: the
            // workload never recovered.
            if o.members.is_empty() {
                o.incident.pods.clear();
            }
            o.members.insert(pod_key.to_string());
            if let Err(i) = o.incident.pods.binary_search_by(|p| p.as_str().cmp(name)) {
                o.incident.pods.insert(i, name.to_string());
            }
            o.unhealthy += usize::from(!healthy);
            o.failing.insert((kind, pod_key.to_string()));
            if let Some(pod) = self.pods.get_mut(pod_key) {
                pod.incidents.push((part.clone(), id));
            }
            touched.push((id, part));
        }
        for (id, part) in touched {
            let new_termination = self.count_terminations(pod_key, &part);
            self.refresh(id, new_termination, now_ms, &mut out);
        }
        out.sort_by_key(|t| t.incident.id);
        out
    }

    /// `observe_revision` for a pod whose failure is its node's doing
    /// (`cause`: the node and why). Its incident, if not announced yet, is
    /// attached to the node: held back from notification and listed in
    /// the node's incident. The attachment lasts until the node's incident
    /// resolves or the node recovers (`release_node`).
    #[allow(clippy::too_many_arguments)]
    pub fn observe_caused(
        &mut self,
        pod_key: &str,
        workload: &Workload,
        revision: Option<&str>,
        healthy: bool,
        findings: Vec<Finding>,
        cause: Option<(&str, &str)>,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut out = self.observe_revision(pod_key, workload, revision, healthy, findings, now_ms);
        let Some((node, why)) = cause else {
            return out;
        };
        let ids: Vec<u64> = self
            .pods
            .get(pod_key)
            .map(|p| p.incidents.iter().map(|(_, id)| *id).collect())
            .unwrap_or_default();
        for id in ids {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            if o.announced || o.node.is_some() || o.key.workload.kind == NODE_KIND {
                continue;
            }
            o.node = Some((node.to_string(), why.to_string()));
            if let Some(i) = self.batch.iter().position(|b| *b == id) {
                self.batch.remove(i);
                if self.batch.is_empty() {
                    self.batch_since = None;
                }
            }
            // The record says so (its diagnosis now names the node): the
            // node may be seen failing after its pods, on another stream.
            if !out.iter().any(|t| t.incident.id == id) {
                o.incident.state = State::Updated;
                out.push(Transition {
                    incident: o.incident.clone(),
                    at_ms: now_ms,
                });
            }
        }
        out
    }

    /// The open NotReady/pressure incident of a node.
    pub fn node_incident(&self, node: &str) -> Option<&Incident> {
        let key = IncidentKey {
            namespace: String::new(),
            workload: Workload {
                kind: NODE_KIND.into(),
                name: node.into(),
            },
            revision: None,
            part: (Family::Node, None),
        };
        let id = self.by_key.get(&key)?;
        self.open.get(id).map(|o| &o.incident)
    }

    /// The node an open incident is attributed to, and why.
    pub fn attributed(&self, id: u64) -> Option<(&str, &str)> {
        self.open
            .get(&id)?
            .node
            .as_ref()
            .map(|(n, w)| (n.as_str(), w.as_str()))
    }

    /// The pods on a node its incident lists besides the attached
    /// incidents' (pods on a NotReady node); applied at the next tick.
    pub fn set_node_pods(&mut self, node: &str, pods: Vec<Affected>) {
        if pods.is_empty() {
            self.node_pods.remove(node);
        } else {
            self.node_pods.insert(node.to_string(), pods);
        }
    }

    /// The node is healthy again (or gone): the incidents attributed to it
    /// are its own again. With `resolve_quiet` (its incident resolved) the
    /// ones already healthy resolve with it; the others are announced on
    /// their own from now on.
    pub fn release_node(
        &mut self,
        node: &str,
        resolve_quiet: bool,
        now_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        self.node_pods.remove(node);
        let held: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| o.node.as_ref().is_some_and(|(n, _)| n == node))
            .map(|(id, _)| *id)
            .collect();
        for id in held {
            let Some(o) = self.open.get_mut(&id) else {
                continue;
            };
            o.node = None;
            if resolve_quiet && o.quiet() {
                self.resolve(id, now_ms, out);
            } else if !o.announced && self.started {
                if self.batch.is_empty() {
                    self.batch_since = Some(now_ms);
                }
                self.batch.push(id);
            }
        }
    }

    /// `refresh_affected` on its own (start-up, before the summary).
    pub fn refresh_node_incidents(&mut self, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        self.refresh_affected(now_ms, &mut out);
        out
    }

    /// Each open node incident lists what it affects: the incidents
    /// attributed to it, and the pods the detector named.
    fn refresh_affected(&mut self, now_ms: i64, out: &mut Vec<Transition>) {
        let nodes: Vec<(u64, String)> = self
            .open
            .iter()
            .filter(|(_, o)| o.key.part.0 == Family::Node && o.key.workload.kind == NODE_KIND)
            .map(|(id, o)| (*id, o.key.workload.name.clone()))
            .collect();
        for (node_id, node) in nodes {
            let mut by: BTreeMap<(String, Workload), Affected> = BTreeMap::new();
            for a in self.node_pods.get(&node).into_iter().flatten() {
                let e = by
                    .entry((a.namespace.clone(), a.workload.clone()))
                    .or_insert_with(|| Affected {
                        pods: Vec::new(),
                        ..a.clone()
                    });
                e.pods.extend(a.pods.iter().cloned());
            }
            for (id, o) in &self.open {
                if o.node.as_ref().is_none_or(|(n, _)| *n != node) {
                    continue;
                }
                let e = by
                    .entry((o.key.namespace.clone(), o.key.workload.clone()))
                    .or_insert_with(|| Affected {
                        namespace: o.key.namespace.clone(),
                        workload: o.key.workload.clone(),
                        pods: Vec::new(),
                        incident: None,
                    });
                e.incident = e.incident.or(Some(*id));
                e.pods.extend(o.incident.pods.iter().cloned());
            }
            let affected: Vec<Affected> = by
                .into_values()
                .map(|mut a| {
                    a.pods.sort();
                    a.pods.dedup();
                    a
                })
                .collect();
            let Some(o) = self.open.get_mut(&node_id) else {
                continue;
            };
            if o.incident.affected == affected {
                continue;
            }
            o.incident.affected = affected;
            self.refresh(node_id, false, now_ms, out);
        }
    }

    /// The pod was deleted. Deleting a failing pod is not a recovery (users
    /// and drains do it all the time, and its replacement may fail the same
    /// way): it leaves its incident, and an incident whose last pod is gone
    /// stays open for the hold-down (`resolve_after_ms`), long enough for a
    /// failing replacement to join it.
    pub fn pod_gone(&mut self, pod_key: &str, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        self.leave(pod_key, now_ms, &mut out);
        out
    }

    /// The pod (or its namespace) is now ignored: it counts as gone, and an
    /// incident left with no pod resolves at once rather than stay open on
    /// pods nobody wants to hear about.
    pub fn pod_ignored(&mut self, pod_key: &str, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        self.pod_gone_into(pod_key, now_ms, &mut out);
        out
    }

    /// The timer tick (once a second): resolutions after hold-downs, batch
    /// flushes, rate-limited updates, reminders.
    pub fn tick(&mut self, now_ms: i64) -> (Vec<Transition>, Vec<Notification>) {
        let mut out = Vec::new();
        self.refresh_affected(now_ms, &mut out);
        let resolve_after_ms = self.cfg.resolve_after_ms;
        let due: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| {
                o.healthy_since
                    .is_some_and(|s| now_ms.saturating_sub(s) >= o.hold_ms(resolve_after_ms))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.resolve(id, now_ms, &mut out);
        }

        if now_ms >= self.next_prune_ms {
            let cutoff = now_ms.div_euclid(1000).saturating_sub(COUNTED_KEEP_SECS);
            self.counted.retain(|t| t.finished >= cutoff);
            self.next_prune_ms = now_ms.saturating_add(PRUNE_EVERY_MS);
        }

        let mut notes = Vec::new();
        if self
            .batch_since
            .is_some_and(|s| now_ms.saturating_sub(s) >= self.cfg.batch_ms)
        {
            self.batch_since = None;
            let mut incidents = Vec::new();
            for id in mem::take(&mut self.batch) {
                if let Some(o) = self.open.get_mut(&id) {
                    incidents.push(first_announcement(o));
                    mark_sent(o, now_ms);
                }
            }
            if incidents.len() > self.cfg.storm_threshold {
                let shared = shared(&incidents);
                notes.push(Notification::Storm { shared, incidents });
            } else {
                notes.extend(incidents.into_iter().map(|incident| Notification::Single {
                    incident,
                    reminder: false,
                }));
            }
        }

        let (rate_limit_ms, renotify_ms) = (self.cfg.rate_limit_ms, self.cfg.renotify_ms);
        for o in self.open.values_mut().filter(|o| o.announced) {
            let gap = now_ms.saturating_sub(o.last_notified_ms);
            let reminder = if o.pending {
                if gap < rate_limit_ms && !o.urgent {
                    continue;
                }
                false
            } else if renotify_ms > 0 && gap >= renotify_ms {
                true
            } else {
                continue;
            };
            mark_sent(o, now_ms);
            notes.push(Notification::Single {
                incident: o.incident.clone(),
                reminder,
            });
        }

        // Resolutions are never held back by the rate limit.
        notes.append(&mut self.outbox);
        (out, notes)
    }

    /// Shutting down: the batch and rate-limited updates go out now,
    /// without reminders (what a `tick` at the end of every window would send).
    pub fn flush(&mut self, now_ms: i64) -> (Vec<Transition>, Vec<Notification>) {
        let saved = (
            self.cfg.batch_ms,
            self.cfg.rate_limit_ms,
            self.cfg.renotify_ms,
        );
        self.cfg.batch_ms = 0;
        self.cfg.rate_limit_ms = 0;
        self.cfg.renotify_ms = 0;
        let out = self.tick(now_ms);
        (
            self.cfg.batch_ms,
            self.cfg.rate_limit_ms,
            self.cfg.renotify_ms,
        ) = saved;
        out
    }

    /// Every watch finished its initial list: what is open now was already
    /// broken at start-up, and is announced once, together.
    pub fn startup_done(&mut self, now_ms: i64) -> Vec<Notification> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        let incidents: Vec<Incident> = self
            .open
            .values_mut()
            .filter(|o| o.node.is_none())
            .map(|o| {
                let i = first_announcement(o);
                mark_sent(o, now_ms);
                i
            })
            .collect();
        if incidents.is_empty() {
            Vec::new()
        } else {
            vec![Notification::StartupSummary { incidents }]
        }
    }

    /// Whether the engine holds state for this pod (it does only for pods
    /// with findings or in an incident).
    pub fn tracks(&self, pod_key: &str) -> bool {
        self.pods.contains_key(pod_key)
    }

    /// A termination already counted (the classifier asks through its `Known` trait).
    pub fn counted(&self, t: &Termination) -> bool {
        self.counted.contains(t)
    }

    /// The open incident with this id.
    pub fn incident(&self, id: u64) -> Option<&Incident> {
        self.open.get(&id).map(|o| &o.incident)
    }

    /// Open incidents, by id.
    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.open.values().map(|o| &o.incident)
    }

    /// Whether any of the pod's findings of `part` may open an incident: one
    /// resting on a termination already counted towards an earlier incident
    /// may not.
    fn openable(&self, pod_key: &str, part: &Part) -> bool {
        self.pods.get(pod_key).is_some_and(|p| {
            p.findings.iter().filter(|f| part_of(f) == *part).any(|f| {
                f.termination
                    .as_ref()
                    .is_none_or(|t| !self.counted.contains(t))
            })
        })
    }

    fn open_incident(
        &mut self,
        pod_key: &str,
        key: IncidentKey,
        now_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        let id = self.next_id;
        let Some(pod) = self.pods.get_mut(pod_key) else {
            return;
        };
        let Some(finding) = most_specific_in(&pod.findings, &key.part).cloned() else {
            return;
        };
        self.next_id += 1;
        pod.incidents.push((key.part.clone(), id));
        let incident = Incident {
            id,
            cluster: self.cfg.cluster.clone(),
            namespace: pod.workload.0.clone(),
            workload: pod.workload.1.clone(),
            revision: key.revision.as_deref().map(str::to_string),
            pods: vec![pod.name.clone()],
            first_seen_ms: began_ms(&finding, now_ms),
            detected_ms: now_ms,
            last_seen_ms: now_ms,
            state: State::Open,
            affected: Vec::new(),
            finding,
        };
        let part = key.part.clone();
        let mut o = OpenIncident {
            key,
            members: HashSet::from([pod_key.to_string()]),
            failing: BTreeSet::from([(incident.kind(), pod_key.to_string())]),
            rep_pod: pod_key.to_string(),
            unhealthy: usize::from(!pod.healthy),
            healthy_since: None,
            baseline: Baseline::of(&incident),
            announced: false,
            last_notified_ms: now_ms,
            pending: false,
            urgent: false,
            node: None,
            replaced: false,
            incident,
        };
        if part.0 == Family::Eviction {
            self.evictions.insert(id);
        }
        // A HighRestartCount pod is healthy between crashes: its clock starts now.
        if o.quiet() {
            o.healthy_since = Some(now_ms);
        }
        self.by_key.insert(o.key.clone(), id);
        self.count_terminations(pod_key, &part);
        // Before start-up is done, the summary announces it instead.
        if self.started {
            if self.batch.is_empty() {
                self.batch_since = Some(now_ms);
            }
            self.batch.push(id);
        }
        out.push(Transition {
            incident: o.incident.clone(),
            at_ms: now_ms,
        });
        self.open.insert(id, o);
    }

    /// Counts the pod's terminations of `part` towards its incident; true if
    /// any was new.
    fn count_terminations(&mut self, pod_key: &str, part: &Part) -> bool {
        let Some(pod) = self.pods.get(pod_key) else {
            return false;
        };
        let mut new = false;
        let of_part = pod.findings.iter().filter(|f| part_of(f) == *part);
        for t in of_part.filter_map(|f| f.termination.as_ref()) {
            if !self.counted.contains(t) {
                self.counted.insert(t.clone());
                new = true;
            }
        }
        new
    }

    /// After a member changed: the representative, the hold-down clock, and
    /// an `Updated` transition if the change is material.
    fn refresh(&mut self, id: u64, new_termination: bool, now_ms: i64, out: &mut Vec<Transition>) {
        let Some(o) = self.open.get_mut(&id) else {
            return;
        };
        // With no current findings the last representative stays: recovering
        // pods do not change what the incident was about.
        if let Some((kind, first)) = o.failing.first() {
            let part = &o.key.part;
            let best_of = |key: &str| {
                self.pods
                    .get(key)
                    .and_then(|p| most_specific_in(&p.findings, part))
                    .filter(|f| f.kind == *kind)
            };
            let rep = match best_of(&o.rep_pod) {
                Some(f) => Some(f),
                None => {
                    o.rep_pod = first.clone();
                    best_of(first)
                }
            };
            if let Some(f) = rep {
                if o.incident.finding != *f {
                    o.incident.finding = f.clone();
                }
            }
            // A pod that joined may show the failure began earlier.
            for (_, key) in o.failing.iter() {
                if let Some(f) = self
                    .pods
                    .get(key)
                    .and_then(|p| most_specific_in(&p.findings, part))
                {
                    o.incident.first_seen_ms = o.incident.first_seen_ms.min(began_ms(f, now_ms));
                }
            }
            o.incident.last_seen_ms = now_ms;
        }
        o.healthy_since = if !o.quiet() {
            None
        } else if new_termination {
            Some(now_ms)
        } else {
            o.healthy_since.or(Some(now_ms))
        };
        if o.baseline.material(&o.incident) {
            o.incident.state = State::Updated;
            let urgent = o.baseline.escalation(&o.incident);
            o.baseline = Baseline::of(&o.incident);
            // Not yet announced: its batch or the summary sends the latest state anyway.
            o.pending = o.announced;
            o.urgent = o.pending && (o.urgent || urgent);
            out.push(Transition {
                incident: o.incident.clone(),
                at_ms: now_ms,
            });
        }
    }

    /// A deleted pod leaves its incident; the last one leaves it vacated
    /// (open, naming the pods it had, its hold-down clock running).
    fn leave(&mut self, pod_key: &str, now_ms: i64, out: &mut Vec<Transition>) {
        self.remove_pod(pod_key, false, now_ms, out);
    }

    /// A pod gone for good (ignored, or moved to another owner): an incident
    /// left with no pod resolves at once, listing the pods it had.
    fn pod_gone_into(&mut self, pod_key: &str, now_ms: i64, out: &mut Vec<Transition>) {
        self.remove_pod(pod_key, true, now_ms, out);
    }

    fn remove_pod(
        &mut self,
        pod_key: &str,
        resolve_last: bool,
        now_ms: i64,
        out: &mut Vec<Transition>,
    ) {
        let Some(pod) = self.pods.remove(pod_key) else {
            return;
        };
        for (part, id) in &pod.incidents {
            let Some(o) = self.open.get_mut(id) else {
                continue;
            };
            let last = o.members.len() <= 1;
            if last && resolve_last {
                self.resolve(*id, now_ms, out);
                continue;
            }
            o.members.remove(pod_key);
            if !last {
                if let Ok(i) = o.incident.pods.binary_search(&pod.name) {
                    o.incident.pods.remove(i);
                }
            }
            if let Some(k) = most_specific_in(&pod.findings, part).map(|f| f.kind) {
                o.failing.remove(&(k, pod_key.to_string()));
            }
            if !pod.healthy {
                o.unhealthy = o.unhealthy.saturating_sub(1);
            }
            self.refresh(*id, false, now_ms, out);
        }
    }

    fn resolve(&mut self, id: u64, now_ms: i64, out: &mut Vec<Transition>) {
        let Some(mut o) = self.open.remove(&id) else {
            return;
        };
        if o.key.part.0 == Family::Node && o.key.workload.kind == NODE_KIND {
            // The node recovered: what it caused resolves with it, unless it
            // is still failing on its own.
            self.release_node(&o.key.workload.name, true, now_ms, out);
        }
        self.evictions.remove(&id);
        if self.by_key.get(&o.key) == Some(&id) {
            self.by_key.remove(&o.key);
        }
        for member in &o.members {
            if let Some(p) = self.pods.get_mut(member) {
                p.incidents.retain(|(_, i)| *i != id);
            }
        }
        o.incident.state = State::Resolved;
        if o.announced {
            self.outbox.push(Notification::Single {
                incident: o.incident.clone(),
                reminder: false,
            });
        } else if let Some(i) = self.batch.iter().position(|b| *b == id) {
            // Never announced: nothing to take back, so nothing is sent.
            self.batch.remove(i);
            if self.batch.is_empty() {
                self.batch_since = None;
            }
        }
        out.push(Transition {
            incident: o.incident,
            at_ms: now_ms,
        });
    }
}

/// How many pods a node incident lists as affected.
fn affected_pods(incident: &Incident) -> usize {
    incident.affected.iter().map(|a| a.pods.len()).sum()
}

/// The snapshot of an incident's first notification: whatever changed
/// while it waited for its batch, to its readers it is new, so `open`.
fn first_announcement(o: &OpenIncident) -> Incident {
    let mut i = o.incident.clone();
    if !o.announced {
        i.state = State::Open;
    }
    i
}

fn mark_sent(o: &mut OpenIncident, now_ms: i64) {
    o.announced = true;
    o.last_notified_ms = now_ms;
    o.pending = false;
    o.urgent = false;
}

/// "ns/name" → ("ns", "name"); a key without a slash is a name alone.
fn split_key(pod_key: &str) -> (&str, &str) {
    pod_key.split_once('/').unwrap_or(("", pod_key))
}

/// When a finding's failure began by the object's own clock (Unix ms),
/// never in the future of `now_ms` (clock skew).
fn began_ms(f: &Finding, now_ms: i64) -> i64 {
    f.since
        .map_or(now_ms, |s| s.saturating_mul(1000))
        .min(now_ms)
}

/// The first of the most specific findings of `part` (the precedence order is `Ord`).
fn most_specific_in<'a>(findings: &'a [Finding], part: &Part) -> Option<&'a Finding> {
    findings
        .iter()
        .filter(|f| part_of(f) == *part)
        .min_by_key(|f| f.kind)
}

/// Each part the findings touch, with its most specific kind.
fn best_per_part(findings: &[Finding]) -> Vec<(Part, FailureType)> {
    let mut out: Vec<(Part, FailureType)> = Vec::with_capacity(findings.len());
    for f in findings {
        let part = part_of(f);
        match out.iter_mut().find(|(p, _)| *p == part) {
            Some((_, k)) => *k = (*k).min(f.kind),
            None => out.push((part, f.kind)),
        }
    }
    out
}

fn kind_in(parts: &[(Part, FailureType)], part: &Part) -> Option<FailureType> {
    parts.iter().find(|(p, _)| p == part).map(|(_, k)| *k)
}

/// What a storm's incidents all share, most telling first: a node, an image
/// registry, a namespace; empty when nothing.
fn shared(incidents: &[Incident]) -> String {
    if let Some(node) = common(incidents, |i| i.finding.node.as_deref()) {
        return format!("node {node}");
    }
    if let Some(reg) = common(incidents, |i| i.finding.image.as_deref().map(registry)) {
        return format!("registry {reg}");
    }
    if let Some(ns) = common(incidents, |i| Some(i.namespace.as_str())) {
        return format!("namespace {ns}");
    }
    String::new()
}

/// The value every incident has, if they all have the same one.
fn common<'a>(
    incidents: &'a [Incident],
    f: impl Fn(&'a Incident) -> Option<&'a str>,
) -> Option<&'a str> {
    let mut it = incidents.iter();
    let first = f(it.next()?)?;
    it.all(|i| f(i) == Some(first)).then_some(first)
}

/// The host part of an image reference, as Docker reads it: the first path
/// component if it looks like a host (a dot, a port or `localhost`), else Docker Hub.
fn registry(image: &str) -> &str {
    match image.split_once('/') {
        Some(("index.docker.io", _)) => "docker.io",
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => host,
        _ => "docker.io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Severity;

    fn cfg() -> Config {
        Config {
            cluster: "prod".into(),
            ..Config::default()
        }
    }

    /// An engine past start-up, so new incidents are notified normally.
    fn started(cfg: Config) -> Engine {
        let mut e = Engine::new(cfg);
        assert!(e.startup_done(0).is_empty());
        e
    }

    fn deploy(name: &str) -> Workload {
        Workload {
            kind: "Deployment".into(),
            name: name.into(),
        }
    }

    fn finding(kind: FailureType, pod: &str) -> Finding {
        Finding {
            message: "back-off restarting failed container".into(),
            restart_count: Some(3),
            node: Some("worker-1".into()),
            image: Some("ghcr.io/acme/api:1.2".into()),
            ..Finding::test(kind, pod)
        }
    }

    fn crash(pod: &str, exit_code: i32) -> Finding {
        Finding {
            exit_code: Some(exit_code),
            ..finding(FailureType::CrashLoopBackOff, pod)
        }
    }

    fn term(pod: &str, finished: i64) -> Termination {
        Termination {
            pod_uid: format!("uid-{pod}"),
            container: "app".into(),
            finished,
        }
    }

    fn steps(ts: &[Transition]) -> Vec<(u64, State)> {
        ts.iter()
            .map(|t| (t.incident.id, t.incident.state))
            .collect()
    }

    /// Opens one incident on `shop/api-a` and sends its first notification.
    fn announced_crash(e: &mut Engine) {
        e.observe(
            "shop/api-a",
            &deploy("api"),
            false,
            vec![crash("api-a", 1)],
            0,
        );
        let (_, notes) = e.tick(5_000);
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn three_crashing_replicas_make_one_incident_listing_three_pods() {
        let mut e = started(cfg());
        let api = deploy("api");
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 1_000);
        assert_eq!(steps(&t), [(1, State::Open)]);
        assert_eq!(t[0].incident.pods, ["api-a"]);
        assert_eq!(t[0].incident.cluster, "prod");
        let t = e.observe("shop/api-c", &api, false, vec![crash("api-c", 1)], 2_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        let t = e.observe("shop/api-b", &api, false, vec![crash("api-b", 1)], 3_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        assert_eq!(t[0].incident.pods, ["api-a", "api-b", "api-c"]);
        assert_eq!(t[0].incident.first_seen_ms, 1_000);
        assert_eq!(e.open_incidents().count(), 1);
    }

    #[test]
    fn first_seen_is_the_clusters_evidence_and_detection_time_is_kept_apart() {
        let mut e = started(cfg());
        let api = deploy("api");
        let since = |pod: &str, s: i64| Finding {
            since: Some(s),
            ..crash(pod, 1)
        };
        // Failing since 500 s, seen by the daemon at 9,000 s.
        let t = e.observe(
            "shop/api-a",
            &api,
            false,
            vec![since("api-a", 500)],
            9_000_000,
        );
        assert_eq!(t[0].incident.first_seen_ms, 500_000);
        assert_eq!(t[0].incident.detected_ms, 9_000_000);
        // A pod failing since earlier joins: the failure began then.
        e.observe(
            "shop/api-b",
            &api,
            false,
            vec![since("api-b", 100)],
            9_001_000,
        );
        let i = e.open_incidents().next().unwrap();
        assert_eq!((i.first_seen_ms, i.detected_ms), (100_000, 9_000_000));
        // A clock from the future never puts first_seen after detection.
        let t = e.observe(
            "shop/web-a",
            &deploy("web"),
            false,
            vec![since("web-a", 99_999)],
            9_002_000,
        );
        assert_eq!(t[0].incident.first_seen_ms, 9_002_000);
    }

    #[test]
    fn restart_count_churn_and_new_messages_produce_nothing() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        for n in 4..20u32 {
            let f = Finding {
                restart_count: Some(n),
                message: format!("back-off {n}0s restarting failed container"),
                termination: Some(term("api-a", i64::from(n))),
                ..crash("api-a", 1)
            };
            assert!(
                e.observe("shop/api-a", &api, false, vec![f], i64::from(n) * 1_000)
                    .is_empty()
            );
        }
        let inc = e.open_incidents().next().map(|i| i.finding.restart_count);
        assert_eq!(
            inc,
            Some(Some(19)),
            "the snapshot still follows the latest finding"
        );
    }

    #[test]
    fn run_container_error_then_crash_loop_is_one_incident_updated() {
        let mut e = started(cfg());
        let api = deploy("api");
        let start = Finding {
            reason: "RunContainerError".into(),
            exit_code: Some(128),
            ..finding(FailureType::ContainerStartError, "api-a")
        };
        let t = e.observe("shop/api-a", &api, false, vec![start], 0);
        assert_eq!(steps(&t), [(1, State::Open)]);
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 128)], 10_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        assert_eq!(t[0].incident.kind(), FailureType::CrashLoopBackOff);
        assert_eq!(t[0].incident.severity(), Severity::Critical);
        assert_eq!(e.open_incidents().count(), 1);
    }

    #[test]
    fn recovery_resolves_exactly_once_after_the_hold_down() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        assert!(
            e.observe("shop/api-a", &api, true, vec![], 10_000)
                .is_empty()
        );
        assert!(e.tick(129_999).0.is_empty());
        let (t, _) = e.tick(130_000);
        assert_eq!(steps(&t), [(1, State::Resolved)]);
        assert_eq!(t[0].at_ms, 130_000);
        assert!(e.tick(131_000).0.is_empty());
        assert_eq!(e.open_incidents().count(), 0);
        // A later failure of the same workload is a new incident.
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 200_000);
        assert_eq!(steps(&t), [(2, State::Open)]);
    }

    #[test]
    fn a_relapse_during_the_hold_down_resets_the_clock() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        e.observe("shop/api-a", &api, true, vec![], 10_000);
        assert!(
            e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 60_000)
                .is_empty()
        );
        e.observe("shop/api-a", &api, true, vec![], 100_000);
        assert!(e.tick(130_000).0.is_empty());
        assert!(e.tick(219_999).0.is_empty());
        assert_eq!(steps(&e.tick(220_000).0), [(1, State::Resolved)]);
    }

    #[test]
    fn a_pod_neither_failing_nor_healthy_pauses_the_hold_down() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        e.observe("shop/api-a", &api, true, vec![], 10_000);
        e.observe("shop/api-a", &api, false, vec![], 50_000);
        assert!(e.tick(500_000).0.is_empty());
        e.observe("shop/api-a", &api, true, vec![], 600_000);
        assert!(e.tick(719_999).0.is_empty());
        assert_eq!(steps(&e.tick(720_000).0), [(1, State::Resolved)]);
    }

    #[test]
    fn every_pod_must_recover_before_the_hold_down_runs() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        e.observe("shop/api-b", &api, false, vec![crash("api-b", 1)], 0);
        // A healthy pod that never failed is not part of the incident.
        assert!(e.observe("shop/api-c", &api, true, vec![], 0).is_empty());
        e.observe("shop/api-a", &api, true, vec![], 10_000);
        assert!(e.tick(500_000).0.is_empty());
        e.observe("shop/api-b", &api, true, vec![], 500_000);
        assert_eq!(steps(&e.tick(620_000).0), [(1, State::Resolved)]);
    }

    #[test]
    fn all_pods_deleted_resolve_after_the_hold_down_naming_the_pods_it_had() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        e.observe("shop/api-b", &api, false, vec![crash("api-b", 1)], 0);
        // One recovers without findings, then both are deleted.
        e.observe("shop/api-a", &api, false, vec![], 1_000);
        assert!(e.pod_gone("shop/api-a", 2_000).is_empty());
        assert!(e.pod_gone("shop/api-b", 3_000).is_empty());
        assert!(e.pod_gone("shop/api-b", 4_000).is_empty());
        // Deleting a failing pod is not a recovery: the hold-down runs.
        assert!(e.tick(3_000 + 120_000 - 1).0.is_empty());
        let (t, _) = e.tick(3_000 + 120_000);
        assert_eq!(steps(&t), [(1, State::Resolved)]);
        assert_eq!(t[0].incident.pods, ["api-b"]);
        assert_eq!(e.open_incidents().count(), 0);
    }

    #[test]
    fn an_ignored_pod_resolves_its_incident_at_once() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        let t = e.pod_ignored("shop/api-a", 3_000);
        assert_eq!(steps(&t), [(1, State::Resolved)]);
        assert_eq!(t[0].incident.pods, ["api-a"]);
    }

    #[test]
    fn a_failing_pod_replaced_by_another_failing_pod_is_one_incident_naming_the_new_pod() {
        let mut e = started(cfg());
        let api = deploy("api");
        announced_crash(&mut e);
        // kubectl delete pod: the Deployment makes a new one, which fails too.
        assert!(e.pod_gone("shop/api-a", 10_000).is_empty());
        let t = e.observe("shop/api-b", &api, false, vec![crash("api-b", 1)], 20_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        assert_eq!(t[0].incident.pods, ["api-b"]);
        assert_eq!(t[0].incident.finding.pod, "api-b");
        // It never resolves while the replacement fails, and the update goes
        // out once the rate-limit window allows.
        let mut notes = Vec::new();
        let mut now = 21_000;
        while now <= 400_000 {
            let (t, n) = e.tick(now);
            assert!(t.is_empty(), "{t:?}");
            notes.extend(n);
            now += 1_000;
        }
        assert!(
            matches!(notes.as_slice(), [Notification::Single { incident, reminder: false }]
                if incident.state == State::Updated && incident.pods == ["api-b"]),
            "{notes:?}"
        );
    }

    #[test]
    fn an_escalation_goes_out_inside_the_rate_limit_window_and_a_milder_change_waits() {
        let mut e = started(cfg());
        let api = deploy("api");
        let restarts = finding(FailureType::HighRestartCount, "api-a");
        e.observe("shop/api-a", &api, false, vec![restarts.clone()], 0);
        assert_eq!(e.tick(5_000).1.len(), 1);
        // HighRestartCount (medium) → CrashLoopBackOff (critical): at once.
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 10_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        let (_, notes) = e.tick(11_000);
        assert!(
            matches!(notes.as_slice(), [Notification::Single { incident, .. }]
                if incident.finding.kind == FailureType::CrashLoopBackOff),
            "{notes:?}"
        );
        // CrashLoopBackOff → OOMKilled: as severe, another type: at once.
        let oom = finding(FailureType::OOMKilled, "api-a");
        e.observe("shop/api-a", &api, false, vec![oom], 20_000);
        assert_eq!(e.tick(21_000).1.len(), 1);
        // Back to HighRestartCount (milder): waits for the window.
        e.observe("shop/api-a", &api, false, vec![restarts], 30_000);
        assert!(e.tick(31_000).1.is_empty());
        assert!(e.tick(21_000 + 300_000 - 1).1.is_empty());
        assert_eq!(e.tick(21_000 + 300_000).1.len(), 1);
    }

    #[test]
    fn distinct_failures_of_one_workload_are_distinct_incidents() {
        let mut e = started(cfg());
        let web = deploy("web");
        // A rollout gone wrong: the old ReplicaSet is OOM-killed, the new
        // one cannot pull its image. Two problems, two fixes.
        let oom = finding(FailureType::OOMKilled, "web-old-a");
        let pull = finding(FailureType::ImagePullBackOff, "web-new-a");
        let t1 = e.observe_revision("shop/web-old-a", &web, Some("web-old"), false, vec![oom], 0);
        let t2 = e.observe_revision(
            "shop/web-new-a",
            &web,
            Some("web-new"),
            false,
            vec![pull],
            0,
        );
        assert_eq!(steps(&t1), [(1, State::Open)]);
        assert_eq!(steps(&t2), [(2, State::Open)]);
        // Two containers of one pod failing: two incidents.
        let app = crash("api-a", 1);
        let sidecar = Finding {
            container: Some("proxy".into()),
            ..crash("api-a", 1)
        };
        let t = e.observe("shop/api-a", &deploy("api"), false, vec![app, sidecar], 0);
        assert_eq!(steps(&t), [(3, State::Open), (4, State::Open)]);
        // One container flapping between OOMKilled and CrashLoopBackOff: one
        // incident, updated.
        let t = e.observe(
            "shop/api-a",
            &deploy("api"),
            false,
            vec![finding(FailureType::OOMKilled, "api-a")],
            1_000,
        );
        assert_eq!(steps(&t), [(3, State::Updated)]);
        assert_eq!(t[0].incident.finding.kind, FailureType::OOMKilled);
        assert_eq!(e.open_incidents().count(), 4);
        // The image pull fixed, the same container now crashes: the pull
        // incident stops failing and a crash incident opens.
        let t = e.observe_revision(
            "shop/web-new-a",
            &web,
            Some("web-new"),
            false,
            vec![crash("web-new-a", 1)],
            2_000,
        );
        assert_eq!(steps(&t), [(5, State::Open)]);
    }

    #[test]
    fn high_restart_count_resolves_after_ten_minutes_without_a_termination() {
        let mut e = started(cfg());
        let api = deploy("api");
        let high = |finished: i64| Finding {
            termination: Some(term("api-a", finished)),
            ..finding(FailureType::HighRestartCount, "api-a")
        };
        let t = e.observe("shop/api-a", &api, true, vec![high(100)], 100_000);
        assert_eq!(steps(&t), [(1, State::Open)]);
        e.observe("shop/api-a", &api, true, vec![], 101_000);
        // Healthy longer than resolve_after_ms: not enough for this type.
        assert!(e.tick(400_000).0.is_empty());
        // A new termination restarts the ten minutes.
        assert!(
            e.observe("shop/api-a", &api, true, vec![high(400)], 400_000)
                .is_empty()
        );
        assert!(e.tick(999_999).0.is_empty());
        assert_eq!(steps(&e.tick(1_000_000).0), [(1, State::Resolved)]);
    }

    #[test]
    fn terminations_count_once_and_are_forgotten_after_an_hour() {
        let mut e = started(cfg());
        let api = deploy("api");
        let now_s = 1_700_000_000;
        let t1 = term("api-a", now_s);
        let oom = Finding {
            termination: Some(t1.clone()),
            ..finding(FailureType::OOMKilled, "api-a")
        };
        assert!(!e.counted(&t1));
        e.observe("shop/api-a", &api, false, vec![oom.clone()], now_s * 1_000);
        assert!(e.counted(&t1));
        e.pod_ignored("shop/api-a", now_s * 1_000 + 1);
        // The same termination seen again (a stale report) opens nothing.
        let t = e.observe("shop/api-a", &api, false, vec![oom], now_s * 1_000 + 2);
        assert!(t.is_empty());
        assert_eq!(e.open_incidents().count(), 0);
        e.tick(now_s * 1_000 + 60_000);
        assert!(e.counted(&t1));
        e.tick((now_s + 3_601) * 1_000);
        assert!(!e.counted(&t1));
    }

    #[test]
    fn the_rate_limit_folds_updates_and_never_holds_back_a_resolution() {
        let mut e = started(cfg());
        let api = deploy("api");
        announced_crash(&mut e);
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 2)], 10_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        let t = e.observe("shop/api-a", &api, false, vec![crash("api-a", 3)], 20_000);
        assert_eq!(steps(&t), [(1, State::Updated)]);
        assert!(e.tick(304_999).1.is_empty());
        let (_, notes) = e.tick(305_000);
        let Some(Notification::Single { incident, reminder }) = notes.first() else {
            panic!("expected one update, got {notes:?}");
        };
        assert_eq!(
            (notes.len(), incident.finding.exit_code, *reminder),
            (1, Some(3), false)
        );
        assert_eq!(incident.state, State::Updated);
        // Inside the next window: an update is held, the resolution is not.
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 4)], 310_000);
        e.pod_gone("shop/api-a", 320_000);
        assert!(e.tick(321_000).1.is_empty());
        let (_, notes) = e.tick(320_000 + 120_000);
        assert_eq!(notes.len(), 1);
        assert!(
            matches!(&notes[0], Notification::Single { incident, .. } if incident.state == State::Resolved)
        );
        assert!(e.tick(700_000).1.is_empty());
    }

    #[test]
    fn opened_and_resolved_inside_the_batch_window_sends_nothing() {
        let mut e = started(cfg());
        let api = deploy("api");
        let opened = e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        let resolved = e.pod_ignored("shop/api-a", 1_000);
        assert_eq!(steps(&opened), [(1, State::Open)]);
        assert_eq!(steps(&resolved), [(1, State::Resolved)]);
        assert!(e.tick(5_000).1.is_empty());
        assert!(e.tick(10_000).1.is_empty());
    }

    #[test]
    fn flush_sends_what_the_batch_holds_back_but_no_reminder() {
        let mut e = started(cfg());
        let api = deploy("api");
        e.observe("shop/api-a", &api, false, vec![crash("api-a", 1)], 0);
        // Inside the batch window: nothing yet from a tick, all from a flush.
        assert!(e.tick(1_000).1.is_empty());
        let (_, notes) = e.flush(1_500);
        assert!(matches!(
            notes.as_slice(),
            [Notification::Single {
                reminder: false,
                ..
            }]
        ));
        // The window settings are back: nothing more, and no reminder.
        assert!(e.flush(2_000).1.is_empty());
        assert!(e.tick(3_000).1.is_empty());
    }

    #[test]
    fn a_still_open_incident_is_reannounced_every_renotify_interval() {
        let mut e = started(cfg());
        announced_crash(&mut e);
        let every = cfg().renotify_ms;
        assert!(e.tick(5_000 + every - 1).1.is_empty());
        let (_, notes) = e.tick(5_000 + every);
        assert!(matches!(
            notes.as_slice(),
            [Notification::Single { reminder: true, .. }]
        ));
        assert!(e.tick(5_000 + 2 * every - 1).1.is_empty());
        assert_eq!(e.tick(5_000 + 2 * every).1.len(), 1);

        let mut quiet = started(Config {
            renotify_ms: 0,
            ..cfg()
        });
        announced_crash(&mut quiet);
        assert!(quiet.tick(100 * every).1.is_empty());
    }

    #[test]
    fn a_batch_of_three_goes_out_as_three_singles() {
        let mut e = started(cfg());
        for (name, at) in [("api", 0), ("web", 1_000), ("db", 2_000)] {
            let pod = format!("{name}-a");
            e.observe(
                &format!("shop/{pod}"),
                &deploy(name),
                false,
                vec![crash(&pod, 1)],
                at,
            );
        }
        assert!(e.tick(4_999).1.is_empty());
        let (_, notes) = e.tick(5_000);
        let ids: Vec<u64> = notes
            .iter()
            .filter_map(|n| match n {
                Notification::Single {
                    incident,
                    reminder: false,
                } => Some(incident.id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [1, 2, 3]);
    }

    /// Twelve new incidents in one batch; returns what the storm says they share.
    fn storm_of_twelve(make: impl Fn(usize) -> (String, Finding)) -> String {
        let mut e = started(cfg());
        for i in 0..12 {
            let (ns, f) = make(i);
            let key = format!("{ns}/{}", f.pod);
            e.observe(&key, &deploy(&format!("w{i}")), false, vec![f], 0);
        }
        let (_, notes) = e.tick(5_000);
        match notes.as_slice() {
            [Notification::Storm { shared, incidents }] => {
                assert_eq!(incidents.len(), 12);
                shared.clone()
            }
            other => panic!("expected one storm, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_of_twelve_is_one_storm_naming_what_they_share() {
        let pod = |i: usize| format!("p{i}-x");
        let same_node = storm_of_twelve(|i| (format!("ns{i}"), crash(&pod(i), 1)));
        assert_eq!(same_node, "node worker-1");

        let same_registry = storm_of_twelve(|i| {
            let f = Finding {
                node: Some(format!("worker-{i}")),
                image: Some(format!("ghcr.io/acme/svc{i}:1")),
                ..crash(&pod(i), 1)
            };
            (format!("ns{i}"), f)
        });
        assert_eq!(same_registry, "registry ghcr.io");

        let docker_hub = storm_of_twelve(|i| {
            let image = if i % 2 == 0 {
                "nginx:1.27"
            } else {
                "library/redis"
            };
            let f = Finding {
                node: Some(format!("worker-{i}")),
                image: Some(image.into()),
                ..crash(&pod(i), 1)
            };
            (format!("ns{i}"), f)
        });
        assert_eq!(docker_hub, "registry docker.io");

        let same_namespace = storm_of_twelve(|i| {
            let f = Finding {
                node: Some(format!("worker-{i}")),
                image: Some(format!("registry{i}.example.com/app")),
                ..crash(&pod(i), 1)
            };
            ("shop".into(), f)
        });
        assert_eq!(same_namespace, "namespace shop");

        let nothing = storm_of_twelve(|i| {
            let f = Finding {
                node: None,
                image: None,
                ..finding(FailureType::Unschedulable, &pod(i))
            };
            (format!("ns{i}"), f)
        });
        assert_eq!(nothing, "");
    }

    #[test]
    fn registries_are_read_like_docker_does() {
        assert_eq!(registry("nginx"), "docker.io");
        assert_eq!(registry("library/nginx:1"), "docker.io");
        assert_eq!(registry("docker.io/library/nginx"), "docker.io");
        assert_eq!(registry("index.docker.io/x/y"), "docker.io");
        assert_eq!(registry("ghcr.io/acme/api@sha256:abc"), "ghcr.io");
        assert_eq!(registry("localhost:5000/api"), "localhost:5000");
        assert_eq!(registry("localhost/api"), "localhost");
    }

    #[test]
    fn failures_present_at_startup_are_summarised_once_not_announced_singly() {
        let mut e = Engine::new(cfg());
        let t = e.observe(
            "shop/api-a",
            &deploy("api"),
            false,
            vec![crash("api-a", 1)],
            0,
        );
        assert_eq!(steps(&t), [(1, State::Open)]);
        e.observe(
            "shop/web-a",
            &deploy("web"),
            false,
            vec![crash("web-a", 1)],
            0,
        );
        assert!(e.tick(10_000).1.is_empty());
        let notes = e.startup_done(11_000);
        assert!(matches!(
            notes.as_slice(),
            [Notification::StartupSummary { incidents }] if incidents.len() == 2
        ));
        assert!(e.tick(20_000).1.is_empty());
        assert!(e.startup_done(21_000).is_empty(), "start-up happens once");
        // After start-up, their updates are notified as usual (rate-limited).
        e.observe(
            "shop/api-a",
            &deploy("api"),
            false,
            vec![crash("api-a", 2)],
            30_000,
        );
        assert!(e.tick(310_000).1.is_empty());
        assert_eq!(e.tick(311_000).1.len(), 1);
    }

    #[test]
    fn nothing_open_at_startup_sends_no_summary() {
        let mut e = Engine::new(cfg());
        e.observe("shop/api-a", &deploy("api"), true, vec![], 0);
        assert!(e.startup_done(1_000).is_empty());
    }

    #[test]
    fn a_later_relist_of_the_same_pods_changes_nothing() {
        let mut e = started(cfg());
        let api = deploy("api");
        let pods = [
            ("shop/api-a", false, vec![crash("api-a", 1)]),
            ("shop/api-b", true, vec![]),
            ("shop/api-c", false, vec![]),
        ];
        for (key, healthy, findings) in pods.clone() {
            e.observe(key, &api, healthy, findings, 0);
        }
        e.tick(5_000);
        for (key, healthy, findings) in pods {
            assert!(e.observe(key, &api, healthy, findings, 60_000).is_empty());
        }
        assert!(e.tick(61_000).1.is_empty());
        assert_eq!(e.open_incidents().count(), 1);
    }
}
