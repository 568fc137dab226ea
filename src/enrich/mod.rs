/*!
Enrichment: what a delivery worker adds to a notification before it goes
out. Runs on the worker pool, never on the classification thread.

For each incident, once, and again only when it changes materially (type,
reason, exit code or container):
- the pod's events (`events.rs`), the failing container's facts
  (`facts.rs`: from the record, plus environment *names* from the pod
  object), and with `INCLUDE_LOGS` (on by default) its log tail
  (`logs.rs`); a 403 on pods/log is one warning, and the diagnosis goes on
  without logs (asked again after `LOGS_FORBIDDEN_PAUSE`);
- the rules' diagnosis again, now with events and logs;
- the optional LLM's second opinion and the OpsCtrl backend's analysis.

Every call is bounded in time (`CALL_TIMEOUT`) and size. A pod deleted
meanwhile, a 403 or a timeout only make the diagnosis poorer (and say so in
its evidence); they never fail the notification. Everything that leaves
the daemon is redacted here: the finding's message (kubelet copies the log
tail into it), events, logs, and the diagnosis' quotes.
*/

pub mod events;
pub mod facts;
pub mod logs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::diagnose::fit::FIT_PREFIX;
use crate::diagnose::{Context, RuleSet};
use crate::kube::client::{Client, Error};
use crate::metrics::Metrics;
use crate::model::Diagnosis;
use crate::model::FailureType;
use crate::model::Item;
use crate::model::Job;
use crate::model::PodRecord;
use crate::model::{Incident, State};
use crate::model::{Rediagnosis, Rollout, Subject};
use crate::notify::pool::Prepare;
use crate::util::lru::Lru;
use crate::util::sync::lock;

/// Longest one enrichment call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Most pod object bytes read (for environment names).
const MAX_POD: u64 = 2 * 1024 * 1024;
/// Incidents of one grouped alert enriched in detail (each costs API calls).
const MAX_ENRICHED_PER_ALERT: usize = 10;
/// Incidents whose enrichment is remembered (open ones; a resolution forgets).
const MAX_CACHED: usize = 4096;
/// After a 403 on pods/log, how long logs are not asked for: the grant is
/// missing for every pod alike, and a fixed RBAC is picked up after this.
const LOGS_FORBIDDEN_PAUSE: Duration = Duration::from_secs(600);

/// Turns text that may hold secrets into text that does not.
pub type Redact = fn(&str) -> String;

/// Asks an outside service about an item; `None` when it has nothing (or failed, logged).
pub type Opinion = Box<dyn Fn(&Item) -> Option<Value> + Send + Sync>;

/// What changes an incident's enrichment.
#[derive(Clone, PartialEq)]
struct Fingerprint {
    kind: FailureType,
    reason: String,
    exit_code: Option<i32>,
    container: Option<String>,
    /// The representative pod: when another pod stands for the incident,
    /// the commands must name it.
    pod: String,
}

impl Fingerprint {
    fn of(i: &Incident) -> Fingerprint {
        let f = &i.finding;
        Fingerprint {
            kind: f.kind,
            reason: f.reason.clone(),
            exit_code: f.exit_code,
            container: f.container.clone(),
            pod: f.pod.clone(),
        }
    }
}

/// Where a better diagnosis than the record's goes (the classification
/// thread, which prints it); must not block.
pub type Rediagnosed = Box<dyn Fn(Rediagnosis) + Send + Sync>;

struct Cached {
    fingerprint: Fingerprint,
    events: Vec<String>,
    logs: Vec<String>,
    facts: Vec<String>,
    diagnosis: Option<Diagnosis>,
}

pub struct Enricher {
    /// `None` with DIAGNOSIS_ENABLED=false: nothing is fetched, only redacted.
    client: Option<Client>,
    rules: Arc<RuleSet>,
    include_logs: bool,
    redact: Redact,
    /// The LLM's second opinion (`diagnosis.ai`).
    llm: Option<Opinion>,
    /// The OpsCtrl backend's analysis (`diagnosis.backend`).
    backend: Option<Opinion>,
    metrics: Arc<Metrics>,
    /// Told when enrichment changes the cause, summary or fix.
    rediagnosed: Option<Rediagnosed>,
    /// By incident id; the least recently used goes first when full.
    cache: Mutex<Lru<u64, Cached>>,
    /// Logs are forbidden (403 on pods/log): not asked for until then.
    logs_paused_until: Mutex<Option<Instant>>,
    /// The one warning about a missing pods/log grant was logged.
    logs_warned: AtomicBool,
}

impl Enricher {
    pub fn new(
        client: Option<Client>,
        rules: Arc<RuleSet>,
        include_logs: bool,
        redact: Redact,
        metrics: Arc<Metrics>,
    ) -> Enricher {
        Enricher {
            client,
            rules,
            include_logs,
            redact,
            llm: None,
            backend: None,
            metrics,
            rediagnosed: None,
            // Open incidents outlive any sensible TTL: only the size bounds it.
            cache: Mutex::new(Lru::new(MAX_CACHED, Duration::MAX)),
            logs_paused_until: Mutex::new(None),
            logs_warned: AtomicBool::new(false),
        }
    }

    /// Whether logs may be asked for now (not paused by a 403).
    fn logs_allowed(&self, now: Instant) -> bool {
        lock(&self.logs_paused_until).is_none_or(|until| now >= until)
    }

    /// A 403 on pods/log: one warning for the daemon's life, and a pause.
    /// The diagnosis goes on as without INCLUDE_LOGS.
    fn logs_forbidden(&self, now: Instant) {
        *lock(&self.logs_paused_until) = Some(now + LOGS_FORBIDDEN_PAUSE);
        if !self.logs_warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                "INCLUDE_LOGS: reading container logs is forbidden (RBAC: get on pods/log); \
                 diagnosing without logs. `opsctrl-daemon check` shows how to grant it, or set \
                 INCLUDE_LOGS=false"
            );
        }
    }

    pub fn with_llm(mut self, llm: Opinion) -> Enricher {
        self.llm = Some(llm);
        self
    }

    pub fn with_backend(mut self, backend: Opinion) -> Enricher {
        self.backend = Some(backend);
        self
    }

    /// `tell` hears of every diagnosis enrichment changes, so the record on
    /// stdout can say what the notification says.
    pub fn with_rediagnosed(mut self, tell: Rediagnosed) -> Enricher {
        self.rediagnosed = Some(tell);
        self
    }

    fn count(
        &self,
        ok: &std::sync::atomic::AtomicU64,
        failed: &std::sync::atomic::AtomicU64,
        r: bool,
    ) {
        ok.fetch_add(1, Ordering::Relaxed);
        if !r {
            failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events, pod object and logs, each allowed to fail on its own.
    /// Returns (events, logs, env names, notes on what could not be read).
    fn gather(
        &self,
        client: &Client,
        item: &Item,
        pod: &PodRecord,
    ) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
        let f = &item.incident.finding;
        let ns = &*pod.namespace;
        let mut notes = Vec::new();
        let why = |what: &str, e: &Error| match e.code() {
            Some(403) => format!("{what} unavailable: forbidden (RBAC: {})", rbac_hint(what)),
            Some(404) => format!("{what} unavailable: the pod was deleted meanwhile"),
            _ => format!("{what} unavailable: {e}"),
        };

        let c = &self.metrics.counters;
        let events = match events::fetch(client, ns, &pod.uid, CALL_TIMEOUT) {
            Ok(v) => {
                self.count(&c.enrich_events, &c.enrich_events_failed, true);
                v.iter().map(|l| (self.redact)(l)).collect()
            }
            Err(e) => {
                self.count(&c.enrich_events, &c.enrich_events_failed, false);
                log::warn!("enrichment: events of {}/{}: {e}", ns, pod.name);
                notes.push(why("events", &e));
                Vec::new()
            }
        };

        // An OOM kill: was it the node running out of memory rather than the
        // container over its own limit? The node's SystemOOM event tells.
        let mut events = events;
        if let (FailureType::OOMKilled, Some(node)) = (f.kind, pod.node.as_deref()) {
            let finished = f.termination.as_ref().map(|t| t.finished);
            match events::fetch_system_oom(client, node, finished, CALL_TIMEOUT) {
                Ok(v) => events
                    .splice(0..0, v.iter().map(|l| (self.redact)(l)))
                    .for_each(drop),
                // Namespaced installs cannot read node events: the pod's own
                // events still tell a limit OOM.
                Err(e) => log::debug!("enrichment: events of node {node}: {e}"),
            }
        }

        let mut env = Vec::new();
        let mut gone = false;
        if let Some(container) = &f.container {
            let path = format!("/api/v1/namespaces/{ns}/pods/{}", pod.name);
            match client
                .get_bounded(&path, &[], CALL_TIMEOUT, MAX_POD)
                .and_then(|b| {
                    serde_json::from_slice::<Value>(&b).map_err(|e| Error::Decode {
                        what: "pod",
                        detail: e.to_string(),
                    })
                }) {
                Ok(obj) => env = facts::env_names(&obj, container, f.init_container),
                Err(e) => {
                    gone = e.code() == Some(404);
                    log::debug!("enrichment: pod {}/{}: {e}", ns, pod.name);
                    notes.push(why("container environment", &e));
                }
            }
        }

        let mut logs = Vec::new();
        let allowed = self.include_logs && self.logs_allowed(Instant::now());
        if let (true, false, Some(container)) = (allowed, gone, &f.container) {
            let restarted = facts::container(pod, container, f.init_container)
                .is_some_and(|c| c.restart_count > 0 || c.last_terminated.is_some());
            let redact = self.redact;
            match logs::fetch(
                client,
                ns,
                &pod.name,
                container,
                restarted,
                CALL_TIMEOUT,
                &|l: &str| redact(l),
            ) {
                Ok(v) => {
                    self.count(&c.enrich_logs, &c.enrich_logs_failed, true);
                    logs = v;
                }
                Err(e) if e.code() == Some(403) => {
                    self.count(&c.enrich_logs, &c.enrich_logs_failed, false);
                    self.logs_forbidden(Instant::now());
                }
                Err(e) => {
                    self.count(&c.enrich_logs, &c.enrich_logs_failed, false);
                    log::warn!("enrichment: logs of {}/{} [{container}]: {e}", ns, pod.name);
                    notes.push(why("logs", &e));
                }
            }
        }
        (events, logs, env, notes)
    }

    /// Enriches one item in place.
    pub fn enrich(&self, item: &mut Item, subject: Option<&Subject>) {
        let pod = subject.map(|s| &s.pod);
        let rollout = subject.map_or(&Rollout::Steady, |s| &s.rollout);
        let id = item.incident.id;
        // What kubelet copied from the log tail must not leave unredacted.
        item.incident.finding.message = (self.redact)(&item.incident.finding.message);
        if item.incident.state == State::Resolved {
            let cached = self.lock().remove(&id);
            if let Some(c) = cached {
                item.events = c.events;
                item.logs = c.logs;
                item.facts = c.facts;
                if c.diagnosis.is_some() {
                    item.diagnosis = c.diagnosis;
                }
            }
            self.redact_diagnosis(item);
            return;
        }
        let fp = Fingerprint::of(&item.incident);
        if let Some(c) = self
            .lock()
            .get(&id, Instant::now())
            .filter(|c| c.fingerprint == fp)
        {
            item.events = c.events.clone();
            item.logs = c.logs.clone();
            item.facts = c.facts.clone();
            if c.diagnosis.is_some() {
                item.diagnosis = c.diagnosis.clone();
            }
            return;
        }
        let Some(client) = &self.client else {
            self.redact_diagnosis(item);
            return;
        };
        // What the record said, as it printed it (redacted).
        let recorded = item.diagnosis.clone().map(|mut d| {
            d.redact_with(self.redact);
            d
        });
        match pod {
            Some(pod) => {
                let (events, logs, env, notes) = self.gather(client, item, pod);
                let f = &item.incident.finding;
                let c = f
                    .container
                    .as_deref()
                    .and_then(|n| facts::container(pod, n, f.init_container));
                item.facts = facts::lines(pod, c, &env);
                let mut d = self.rules.diagnose(&Context {
                    finding: &item.incident.finding,
                    pod,
                    workload: &item.incident.workload,
                    events: &events,
                    logs: &logs,
                    rollout,
                });
                d.evidence.extend(notes);
                // What the classifier knew of the nodes (this worker does not).
                if let Some(old) = &item.diagnosis {
                    let fit = old.evidence.iter().filter(|e| e.starts_with(FIT_PREFIX));
                    d.evidence.extend(fit.cloned());
                }
                log::debug!(
                    "enriched incident {id}: {} event(s), {} log line(s), {} fact(s); cause {}",
                    events.len(),
                    logs.len(),
                    item.facts.len(),
                    d.cause
                );
                item.events = events;
                item.logs = logs;
                item.diagnosis = Some(d);
            }
            None => {
                // Gone before a worker got to it: the diagnosis made from
                // the record when the incident opened is all there is.
                if let Some(d) = item.diagnosis.as_mut() {
                    d.evidence.push(
                        "events and logs unavailable: the pod was deleted before enrichment".into(),
                    );
                }
            }
        }
        self.redact_diagnosis(item);
        if let Some(llm) = &self.llm {
            let ai = llm(item);
            if let Some(d) = item.diagnosis.as_mut() {
                d.ai = ai;
            }
        }
        if let Some(backend) = &self.backend {
            let answer = backend(item);
            if let Some(d) = item.diagnosis.as_mut() {
                d.backend = answer;
            }
        }
        if let (Some(tell), Some(before), Some(after)) =
            (&self.rediagnosed, &recorded, &item.diagnosis)
        {
            if !before.says_the_same(after) {
                tell(Rediagnosis {
                    incident: id,
                    finding: item.incident.finding.clone(),
                    diagnosis: after.clone(),
                });
            }
        }
        self.lock().insert(
            id,
            Cached {
                fingerprint: fp,
                events: item.events.clone(),
                logs: item.logs.clone(),
                facts: item.facts.clone(),
                diagnosis: item.diagnosis.clone(),
            },
            Instant::now(),
        );
    }

    fn redact_diagnosis(&self, item: &mut Item) {
        if let Some(d) = item.diagnosis.as_mut() {
            d.redact_with(self.redact);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<u64, Cached>> {
        lock(&self.cache)
    }
}

fn rbac_hint(what: &str) -> &'static str {
    match what {
        "logs" => "get on pods/log",
        "events" => "list on events",
        _ => "get on pods",
    }
}

impl Prepare for Enricher {
    fn prepare(&self, job: &mut Job) {
        let Job { alert, pods } = job;
        for (i, item) in alert.items_mut().iter_mut().enumerate() {
            if i < MAX_ENRICHED_PER_ALERT {
                let subject = pods.get(i).and_then(|p| p.as_deref());
                self.enrich(item, subject);
            } else {
                // A big start-up summary or storm: the message shows the
                // first few in detail; the rest keep the record's diagnosis.
                item.incident.finding.message = (self.redact)(&item.incident.finding.message);
                self.redact_diagnosis(item);
            }
        }
    }
}
