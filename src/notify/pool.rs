/*!
The delivery pool. The classification thread only ever calls `submit`,
which never blocks on the network (a full queue drops, it does not wait).

Two stages, so that no receiver can hold up another:

- `ALERT_WORKERS` *prepare* workers take the oldest ready job from the
  shared queue (`queue.rs`), have it prepared (enrichment, diagnosis, LLM,
  backend: `Prepare`) within `Config::prepare_deadline`, and hand it to every
  sink's own lane. Past the deadline the job goes out as it was, with the
  rules' diagnosis, and the late preparation is left to finish on its own
  (at most `workers` of them at a time; beyond that, jobs are not prepared).
- With `ROUTES_FILE`, each job goes only to the lanes of the sinks its
  incidents are routed to (a grouped alert is split per sink and channel);
  an incident's updates and resolution follow it where it went before.
- Each sink has its own lane: a bounded queue, ordered per incident, and one
  worker that delivers with retries, jittered exponential backoff
  (`Retry-After` wins, but never past `max_backoff`) and at most
  `ALERT_MAX_ATTEMPTS` attempts; past them the job is dropped for that sink,
  logged and counted. A sink that hangs, answers 429 with any Retry-After,
  or fails for an hour only delays its own lane.

Shutdown (`drain`): no new jobs; the workers finish what is queued until
`SHUTDOWN_DRAIN_MS` (or a `cutter` call); whatever is left, queued or
mid-retry, is logged one line each per sink and counted, so nothing
vanishes without a trace.
*/

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::queue::{Keyed, Queue};
use super::{Alert, Failure, Job, Override, Sink};
use crate::metrics::{Metrics, SinkOutcome};
use crate::model::Severity;
use crate::output;
use crate::routing::{Facts, Routes, Target};
use crate::settings::Alerts;
use crate::util::backoff::Backoff;
use crate::util::random::Rng;
use crate::util::sync::{lock, wait_timeout};

impl Keyed for Job {
    fn keys(&self) -> Vec<u64> {
        self.alert.items().iter().map(|i| i.incident.id).collect()
    }
    fn severity(&self) -> Severity {
        self.alert.severity()
    }
}

impl Keyed for Arc<Job> {
    fn keys(&self) -> Vec<u64> {
        self.as_ref().keys()
    }
    fn severity(&self) -> Severity {
        self.as_ref().severity()
    }
}

/// One line saying what a job was, for logs about it.
fn summary(job: &Job) -> String {
    output::alert_text(&job.alert)
}

/// Work done on a job before delivery (enrichment and diagnosis). Runs on
/// a thread of its own, so it may call the network; past the pool's
/// deadline its result is not waited for.
pub trait Prepare: Send + Sync {
    fn prepare(&self, job: &mut Job);
}

/// Nothing to prepare (diagnosis disabled, or tests).
pub struct AsIs;
impl Prepare for AsIs {
    fn prepare(&self, _: &mut Job) {}
}

/// Whether this replica may send now (leader election).
pub type Gate = Arc<dyn Fn() -> bool + Send + Sync>;

pub struct Config {
    pub workers: usize,
    pub queue_size: usize,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Severities the sinks get.
    pub severities: Vec<Severity>,
    /// Longest wait for `Prepare`; past it the job goes out unprepared.
    pub prepare_deadline: Duration,
    /// `ROUTES_FILE`; `None`: every sink gets every job.
    pub routes: Option<Arc<Routes>>,
}

impl Config {
    /// Delays between attempts: `backoff` doubled up to `max_backoff`,
    /// jittered, a `Retry-After` as the floor.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff, self.max_backoff, 2.0, Rng::seeded(0x9007))
    }

    /// The next delay, `Retry-After` included, never past `max_backoff`: a
    /// receiver asking for 999999 s must not park its lane for days.
    pub fn retry_delay(&self, backoff: &mut Backoff, after: Option<Duration>) -> Duration {
        backoff.next_delay(after).min(self.max_backoff)
    }

    pub fn from_settings(a: &Alerts) -> Config {
        Config {
            workers: a.workers,
            queue_size: a.queue_size,
            max_attempts: a.max_attempts,
            backoff: a.backoff,
            max_backoff: a.max_backoff,
            severities: a.severities.clone(),
            prepare_deadline: Duration::from_secs(60),
            routes: None,
        }
    }
}

/// A job for one sink, and where within it a route sends it.
struct Routed {
    job: Arc<Job>,
    to: Option<Override>,
}

impl Keyed for Routed {
    fn keys(&self) -> Vec<u64> {
        self.job.keys()
    }
    fn severity(&self) -> Severity {
        self.job.severity()
    }
}

/// Where an incident's alerts went: these targets, or (`None`) every sink.
type Dest = Option<Vec<Target>>;

/// Incidents whose destinations are remembered at most (past this, the
/// oldest are forgotten and their later alerts go where the routes say now).
const MAX_ROUTED: usize = 10_000;

/// One sink's own queue and what its worker is delivering.
struct Lane {
    queue: Queue<Routed>,
    working: Option<String>,
}

struct State {
    /// Jobs waiting to be prepared.
    queue: Queue<Job>,
    /// Per sink, in the order of `Shared::sinks`.
    lanes: Vec<Lane>,
    /// No new jobs (shutting down).
    closed: bool,
    /// Workers stop once past this (the drain ran out).
    deadline: Option<Instant>,
    /// What each busy prepare worker is doing, for the shutdown report.
    working: HashMap<usize, String>,
    /// A second signal: the drain ends now.
    cut: bool,
    /// Incidents the sinks were told about and not yet told resolved.
    announced: HashSet<u64>,
    /// With routes: where each incident's alerts went, so that its updates
    /// and resolution follow it there even when its severity or type changed.
    routed: BTreeMap<u64, Dest>,
}

impl State {
    /// Nothing queued or in hand anywhere.
    fn idle(&self) -> bool {
        self.queue.is_empty()
            && self.working.is_empty()
            && self
                .lanes
                .iter()
                .all(|l| l.queue.is_empty() && l.working.is_none())
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes workers (a job, or closing) and the drain (a job done).
    cv: Condvar,
    cfg: Config,
    sinks: Vec<Box<dyn Sink>>,
    prepare: Arc<dyn Prepare>,
    /// Preparations past their deadline still running.
    late: Arc<AtomicUsize>,
    gate: Gate,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>, d: Duration) -> MutexGuard<'a, State> {
        wait_timeout(&self.cv, st, d)
    }

    fn set_depth(&self, st: &State) {
        let lanes: usize = st.lanes.iter().map(|l| l.queue.len()).sum();
        self.metrics
            .counters
            .alert_queue_depth
            .store((st.queue.len() + lanes) as u64, Ordering::Relaxed);
    }
}

pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts the prepare workers and one delivery worker per sink.
    pub fn start(
        cfg: Config,
        sinks: Vec<Box<dyn Sink>>,
        prepare: Box<dyn Prepare>,
        gate: Gate,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Pool> {
        let workers = cfg.workers.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: Queue::new(cfg.queue_size),
                lanes: sinks
                    .iter()
                    .map(|_| Lane {
                        queue: Queue::new(cfg.queue_size),
                        working: None,
                    })
                    .collect(),
                closed: false,
                deadline: None,
                working: HashMap::new(),
                cut: false,
                announced: HashSet::new(),
                routed: BTreeMap::new(),
            }),
            cv: Condvar::new(),
            cfg,
            sinks,
            prepare: Arc::from(prepare),
            late: Arc::new(AtomicUsize::new(0)),
            gate,
            metrics,
        });
        for id in 0..workers {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("prepare-{id}"))
                .spawn(move || prepare_worker(&s, id))?;
        }
        for lane in 0..shared.sinks.len() {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("deliver-{}", s.sinks[lane].name()))
                .spawn(move || lane_worker(&s, lane))?;
        }
        Ok(Pool { shared })
    }

    /// Names of the sinks, for the start-up log.
    pub fn sink_names(&self) -> Vec<&'static str> {
        self.shared.sinks.iter().map(|s| s.name()).collect()
    }

    /// Queues a notification. Never blocks on the network; a full queue
    /// drops the oldest lowest-severity job, logged and counted.
    pub fn submit(&self, job: Job) {
        let s = &self.shared;
        let mut st = s.lock();
        if !admit(&mut st.announced, &s.cfg.severities, &job.alert) {
            drop(st);
            log::debug!(
                "notification below ALERT_SEVERITY_FILTERS, not sent: {}",
                summary(&job)
            );
            return;
        }
        if st.closed {
            log::warn!(
                "notification after shutdown began, not sent: {}",
                summary(&job)
            );
            s.metrics
                .counters
                .alerts_abandoned
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(dropped) = st.queue.push(job) {
            s.metrics
                .counters
                .alerts_dropped
                .fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "alert queue full ({} queued, ALERT_QUEUE_SIZE): dropped the oldest of the lowest severity: {}",
                st.queue.len(),
                summary(&dropped)
            );
        }
        s.set_depth(&st);
        drop(st);
        s.cv.notify_all();
    }

    /// Stops taking jobs and lets the workers deliver what is queued for at
    /// most `within`; what is left is logged one line each (per sink).
    /// Returns how many deliveries were left undone.
    pub fn drain(&self, within: Duration) -> usize {
        let s = &self.shared;
        let mut st = s.lock();
        let deadline = if st.cut {
            Instant::now()
        } else {
            Instant::now() + within
        };
        st.closed = true;
        st.deadline = Some(deadline);
        s.cv.notify_all();
        if !st.idle() {
            log::info!(
                "shutting down: delivering queued notifications (up to {} ms)",
                within.as_millis()
            );
        }
        while !st.idle() {
            let left = match st.deadline {
                Some(d) => d.min(deadline),
                None => deadline,
            }
            .saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = s.wait(st, left);
        }
        let mut lost: Vec<String> = st.working.values().cloned().collect();
        lost.extend(st.queue.take_all().iter().map(summary));
        for (lane, sink) in st.lanes.iter_mut().zip(&s.sinks) {
            let name = sink.name();
            let mut left: Vec<String> = lane.working.take().into_iter().collect();
            left.extend(lane.queue.take_all().iter().map(|j| summary(&j.job)));
            lost.extend(left.into_iter().map(|l| format!("{name}: {l}")));
        }
        s.set_depth(&st);
        drop(st);
        for l in &lost {
            log::error!("not delivered (shutdown drain ran out): {l}");
        }
        s.metrics
            .counters
            .alerts_abandoned
            .fetch_add(lost.len() as u64, Ordering::Relaxed);
        lost.len()
    }

    /// Ends the drain now, before or while it runs (a second SIGTERM): what
    /// is undelivered is reported as when the drain runs out.
    pub fn cutter(&self) -> impl Fn() + Send + Sync + 'static {
        let s = self.shared.clone();
        move || {
            let mut st = s.lock();
            st.cut = true;
            st.closed = true;
            st.deadline = Some(Instant::now());
            drop(st);
            s.cv.notify_all();
        }
    }
}

/// Whether the sinks get `alert`: its severity is in ALERT_SEVERITY_FILTERS,
/// or it resolves an incident they were told about (an incident's type, and
/// so its severity, may have changed since it was announced). Keeps
/// `announced` up to date.
fn admit(announced: &mut HashSet<u64>, severities: &[Severity], alert: &Alert) -> bool {
    let wanted = severities.contains(&alert.severity());
    if alert.is_resolution() {
        let mut told = false;
        for item in alert.items() {
            told |= announced.remove(&item.incident.id);
        }
        return told || wanted;
    }
    if wanted {
        announced.extend(alert.items().iter().map(|i| i.incident.id));
    }
    wanted
}

/// Prepares `job` on a thread of its own, waiting at most the deadline;
/// past it, the job goes on as it was (the rules' diagnosis).
fn prepare_within(s: &Shared, job: Job) -> Job {
    let workers = s.cfg.workers.max(1);
    if s.late.load(Ordering::SeqCst) >= workers {
        log::warn!(
            "enrichment is not answering ({workers} still running past their deadline): sending with the rules' diagnosis: {}",
            summary(&job)
        );
        return job;
    }
    let (tx, rx) = sync_channel::<Job>(1);
    let (prepare, late) = (s.prepare.clone(), s.late.clone());
    let mut copy = job.clone();
    let started = std::thread::Builder::new()
        .name("enrich".into())
        .spawn(move || {
            prepare.prepare(&mut copy);
            if tx.send(copy).is_err() {
                // Nobody waited: this one was late.
                late.fetch_sub(1, Ordering::SeqCst);
            }
        });
    if started.is_err() {
        return job;
    }
    match rx.recv_timeout(s.cfg.prepare_deadline) {
        Ok(prepared) => prepared,
        Err(_) => {
            s.late.fetch_add(1, Ordering::SeqCst);
            drop(rx);
            log::warn!(
                "enrichment took longer than {} ms: sending with the rules' diagnosis: {}",
                s.cfg.prepare_deadline.as_millis(),
                summary(&job)
            );
            job
        }
    }
}

fn prepare_worker(s: &Shared, id: usize) {
    loop {
        let job = {
            let mut st = s.lock();
            loop {
                if st.past_deadline() {
                    return;
                }
                if let Some(job) = st.queue.pop_ready() {
                    st.working.insert(id, summary(&job));
                    s.set_depth(&st);
                    break job;
                }
                if st.closed && st.queue.is_empty() {
                    return;
                }
                st = s.wait(st, Duration::from_millis(500));
            }
        };
        let keys = job.keys();
        let ready = if (s.gate)() {
            Some(Arc::new(prepare_within(s, job)))
        } else {
            log::info!("notification (standby, not sent): {}", summary(&job));
            None
        };
        // Matching is done outside the lock; only remembering is inside.
        let plans = ready
            .as_ref()
            .and_then(|job| s.cfg.routes.as_ref().map(|r| plans(r, job)));
        let mut st = s.lock();
        if let Some(job) = ready {
            let st = &mut *st;
            let dests = match plans {
                Some(p) => follow(&mut st.routed, &job.alert, p),
                None => vec![None; job.alert.items().len()],
            };
            let names: Vec<&str> = s.sinks.iter().map(|x| x.name()).collect();
            let mut out = fan_out(&job, &dests, &names);
            for ((lane, sink), routed) in st.lanes.iter_mut().zip(&s.sinks).zip(out.drain(..)) {
                for r in routed {
                    push(s, lane, sink.as_ref(), r);
                }
            }
        }
        st.queue.done(&keys);
        st.working.remove(&id);
        s.set_depth(&st);
        drop(st);
        s.cv.notify_all();
    }
}

/// Queues `r` on a sink's lane; a full lane drops its oldest lowest-severity job.
fn push(s: &Shared, lane: &mut Lane, sink: &dyn Sink, r: Routed) {
    if let Some(dropped) = lane.queue.push(r) {
        s.metrics.sinks.record(sink.name(), SinkOutcome::Failed);
        s.metrics
            .counters
            .alerts_dropped
            .fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "{}: its queue is full ({} queued, ALERT_QUEUE_SIZE): dropped the oldest of the lowest severity: {}",
            sink.name(),
            lane.queue.len(),
            summary(&dropped.job)
        );
    }
}

/// What the routes say for each item of `job`.
fn plans(routes: &Routes, job: &Job) -> Vec<Dest> {
    job.alert
        .items()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let inc = &item.incident;
            let labels = job
                .pods
                .get(i)
                .and_then(|p| p.as_deref())
                .map_or(&[][..], |p| &p.pod.labels);
            let subject = Facts {
                namespace: &inc.namespace,
                severity: inc.severity(),
                kind: inc.kind(),
                cause: item.diagnosis.as_ref().map(|d| d.cause),
                workload_kind: &inc.workload.kind,
                workload_name: &inc.workload.name,
                labels,
            };
            routes.plan(&subject).targets
        })
        .collect()
}

/// Everything in `a` and `b`, once (`None` is every sink).
fn union(a: Dest, b: &Dest) -> Dest {
    let (mut a, b) = (a?, b.as_ref()?);
    for t in b {
        if !a.contains(t) {
            a.push(t.clone());
        }
    }
    Some(a)
}

/// An incident's later alerts go where the routes say now and wherever its
/// earlier ones went; its resolution only where they went (when known), so
/// every thread that was opened is closed and no sink hears of an end
/// without a beginning. Remembers, and forgets once resolved.
fn follow(routed: &mut BTreeMap<u64, Dest>, alert: &Alert, plans: Vec<Dest>) -> Vec<Dest> {
    let resolution = alert.is_resolution();
    let mut out = Vec::with_capacity(plans.len());
    for (item, plan) in alert.items().iter().zip(plans) {
        let id = item.incident.id;
        let dest = match routed.remove(&id) {
            Some(before) if resolution => before,
            Some(before) => union(plan, &before),
            None => plan,
        };
        if !resolution {
            routed.insert(id, dest.clone());
            while routed.len() > MAX_ROUTED {
                routed.pop_first();
            }
        }
        out.push(dest);
    }
    out
}

/// Per sink (in `names`' order), what it gets of `job`: the whole job when
/// every item goes to it as it is, else one job per override with the items
/// routed there (a storm split by channel). The log sink gets everything.
fn fan_out(job: &Arc<Job>, dests: &[Dest], names: &[&str]) -> Vec<Vec<Routed>> {
    let items = job.alert.items();
    names
        .iter()
        .map(|name| {
            if *name == "log" || dests.iter().all(Option::is_none) {
                return vec![Routed {
                    job: job.clone(),
                    to: None,
                }];
            }
            // (override, item indexes), in order of first appearance.
            let mut groups: Vec<(Option<&Override>, Vec<usize>)> = Vec::new();
            for (i, dest) in dests.iter().enumerate().take(items.len()) {
                let overs: Vec<Option<&Override>> = match dest {
                    None => vec![None],
                    Some(t) => t
                        .iter()
                        .filter(|t| t.sink == *name)
                        .map(|t| t.over.as_ref())
                        .collect(),
                };
                for o in overs {
                    match groups.iter_mut().find(|(g, _)| *g == o) {
                        Some((_, idx)) => idx.push(i),
                        None => groups.push((o, vec![i])),
                    }
                }
            }
            groups
                .into_iter()
                .map(|(over, idx)| Routed {
                    job: if idx.len() == items.len() {
                        job.clone()
                    } else {
                        Arc::new(subset(job, &idx))
                    },
                    to: over.cloned(),
                })
                .collect()
        })
        .collect()
}

/// The same kind of alert with only the items at `idx`.
fn subset(job: &Job, idx: &[usize]) -> Job {
    let all = job.alert.items();
    let items: Vec<_> = idx.iter().filter_map(|&i| all.get(i).cloned()).collect();
    let pods = idx
        .iter()
        .map(|&i| job.pods.get(i).cloned().flatten())
        .collect();
    let alert = match &job.alert {
        // One item: a subset of it is all of it.
        Alert::Incident { .. } => job.alert.clone(),
        Alert::StartupSummary { .. } => Alert::StartupSummary { items },
        Alert::Storm { shared, .. } => Alert::Storm {
            shared: shared.clone(),
            items,
        },
    };
    Job { alert, pods }
}

fn lane_worker(s: &Shared, lane: usize) {
    let sink = s.sinks[lane].as_ref();
    loop {
        let job = {
            let mut st = s.lock();
            loop {
                if st.past_deadline() {
                    return;
                }
                if let Some(job) = st.lanes[lane].queue.pop_ready() {
                    st.lanes[lane].working = Some(summary(&job.job));
                    s.set_depth(&st);
                    break job;
                }
                let upstream_done = st.queue.is_empty() && st.working.is_empty();
                if st.closed && upstream_done && st.lanes[lane].queue.is_empty() {
                    return;
                }
                st = s.wait(st, Duration::from_millis(500));
            }
        };
        let keys = job.keys();
        let delivered = deliver_one(s, sink, &job.job.alert, job.to.as_ref(), &summary(&job.job));
        let mut st = s.lock();
        st.lanes[lane].queue.done(&keys);
        // Given up mid-retry because the drain ran out: drain() reports it.
        if delivered {
            st.lanes[lane].working = None;
        }
        s.set_depth(&st);
        drop(st);
        s.cv.notify_all();
    }
}

/// Delivers to one sink with retries; false when cut short by the deadline.
fn deliver_one(
    s: &Shared,
    sink: &dyn Sink,
    alert: &Alert,
    to: Option<&Override>,
    summary: &str,
) -> bool {
    let name = sink.name();
    let mut backoff = s.cfg.backoff();
    let max = s.cfg.max_attempts.max(1);
    for attempt in 1..=max {
        let result = match to {
            Some(to) => sink.deliver_to(alert, to),
            None => sink.deliver(alert),
        };
        match result {
            Ok(()) => {
                s.metrics.sinks.record(name, SinkOutcome::Sent);
                log::debug!("{name}: sent: {summary}");
                return true;
            }
            Err(Failure::Permanent(why)) => {
                s.metrics.sinks.record(name, SinkOutcome::Failed);
                log::error!("{name}: rejected, not retried: {why}: {summary}");
                return true;
            }
            Err(Failure::Retry { why, after }) => {
                if attempt == max {
                    s.metrics.sinks.record(name, SinkOutcome::Failed);
                    log::error!(
                        "{name}: gave up after {max} attempt(s), dropped: {why}: {summary}"
                    );
                    return true;
                }
                s.metrics.sinks.record(name, SinkOutcome::Retried);
                let delay = s.cfg.retry_delay(&mut backoff, after);
                let capped = if after.is_some_and(|a| a > delay) {
                    " (its Retry-After is past ALERT_MAX_BACKOFF_MS)"
                } else {
                    ""
                };
                log::warn!(
                    "{name}: attempt {attempt}/{max} failed: {why}; retrying in {} ms{capped}",
                    delay.as_millis()
                );
                if !pause(s, delay) {
                    s.metrics.sinks.record(name, SinkOutcome::Failed);
                    return false;
                }
            }
        }
    }
    true
}

/// Sleeps `d`, unless the drain deadline comes first (false then).
fn pause(s: &Shared, d: Duration) -> bool {
    let until = Instant::now() + d;
    let mut st = s.lock();
    loop {
        let now = Instant::now();
        if st.deadline.is_some_and(|dl| dl <= until && now >= dl) {
            return false;
        }
        if now >= until {
            return true;
        }
        let wake = match st.deadline {
            Some(dl) => until.min(dl),
            None => until,
        };
        st = s.wait(st, wake.saturating_duration_since(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureType, Finding, Workload};
    use crate::model::{Incident, State as IState};
    use crate::notify::Item;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    fn incident(id: u64, kind: FailureType) -> Incident {
        Incident {
            id,
            workload: Workload {
                kind: "Deployment".into(),
                name: format!("web{id}"),
            },
            ..Incident::test(Finding::test(kind, &format!("web{id}-1")), IState::Open)
        }
    }

    fn job(id: u64, kind: FailureType) -> Job {
        Job {
            alert: Alert::Incident {
                item: Box::new(Item::new(incident(id, kind), None)),
                reminder: false,
            },
            pods: vec![None],
        }
    }

    /// Records deliveries; fails the first `fail` attempts with `Retry`.
    struct Flaky {
        fail: AtomicUsize,
        got: Mutex<Vec<u64>>,
        permanent: bool,
    }
    impl Sink for Arc<Flaky> {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(if self.permanent {
                    Failure::Permanent("HTTP 400: invalid_blocks".into())
                } else {
                    Failure::Retry {
                        why: "HTTP 500".into(),
                        after: None,
                    }
                });
            }
            let mut g = self.got.lock().unwrap();
            g.extend(alert.items().iter().map(|i| i.incident.id));
            Ok(())
        }
    }

    fn cfg(attempts: u32) -> Config {
        Config {
            workers: 2,
            queue_size: 100,
            max_attempts: attempts,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            severities: Severity::ALL.to_vec(),
            prepare_deadline: Duration::from_secs(5),
            routes: None,
        }
    }

    fn pool(sink: &Arc<Flaky>, c: Config, gate: bool) -> (Pool, Arc<Metrics>) {
        let m = Arc::new(Metrics::new(&[], 5));
        let open = Arc::new(AtomicBool::new(gate));
        let p = Pool::start(
            c,
            vec![Box::new(sink.clone())],
            Box::new(AsIs),
            Arc::new(move || open.load(Ordering::SeqCst)),
            m.clone(),
        )
        .unwrap();
        (p, m)
    }

    fn flaky(fail: usize, permanent: bool) -> Arc<Flaky> {
        Arc::new(Flaky {
            fail: AtomicUsize::new(fail),
            got: Mutex::new(vec![]),
            permanent,
        })
    }

    #[test]
    fn retries_until_delivered_and_counts_each_outcome() {
        let sink = flaky(2, false);
        let (p, m) = pool(&sink, cfg(3), true);
        p.submit(job(1, FailureType::CrashLoopBackOff));
        assert_eq!(p.drain(Duration::from_secs(5)), 0);
        assert_eq!(*sink.got.lock().unwrap(), [1]);
        assert_eq!(m.sinks.get("flaky", SinkOutcome::Retried), 2);
        assert_eq!(m.sinks.get("flaky", SinkOutcome::Sent), 1);
    }

    #[test]
    fn a_permanent_failure_is_not_retried() {
        let sink = flaky(1, true);
        let (p, m) = pool(&sink, cfg(5), true);
        p.submit(job(1, FailureType::CrashLoopBackOff));
        p.drain(Duration::from_secs(5));
        assert!(sink.got.lock().unwrap().is_empty());
        assert_eq!(m.sinks.get("flaky", SinkOutcome::Failed), 1);
        assert_eq!(m.sinks.get("flaky", SinkOutcome::Retried), 0);
    }

    #[test]
    fn severity_filter_and_standby_send_nothing() {
        let sink = flaky(0, false);
        let mut c = cfg(1);
        c.severities = vec![Severity::Critical];
        let (p, _) = pool(&sink, c, true);
        p.submit(job(1, FailureType::NotReady)); // medium
        p.submit(job(2, FailureType::CrashLoopBackOff)); // critical
        p.drain(Duration::from_secs(5));
        assert_eq!(*sink.got.lock().unwrap(), [2]);

        let sink = flaky(0, false);
        let (p, _) = pool(&sink, cfg(1), false);
        p.submit(job(3, FailureType::CrashLoopBackOff));
        p.drain(Duration::from_secs(5));
        assert!(sink.got.lock().unwrap().is_empty());
    }

    fn resolution(id: u64, kind: FailureType) -> Alert {
        let mut inc = incident(id, kind);
        inc.state = IState::Resolved;
        Alert::Incident {
            item: Box::new(Item::new(inc, None)),
            reminder: false,
        }
    }

    #[test]
    fn a_resolution_follows_its_incident_whatever_its_severity_now() {
        let critical_only = [Severity::Critical];
        let mut told = HashSet::new();
        // Announced as a crash loop, resolved as NotReady (medium): sent.
        assert!(admit(
            &mut told,
            &critical_only,
            &job(1, FailureType::CrashLoopBackOff).alert
        ));
        assert!(!admit(
            &mut told,
            &critical_only,
            &job(1, FailureType::NotReady).alert
        ));
        assert!(admit(
            &mut told,
            &critical_only,
            &resolution(1, FailureType::NotReady)
        ));
        assert!(told.is_empty(), "forgotten once resolved");
        // Never announced (filtered out): its resolution is filtered out too.
        assert!(!admit(
            &mut told,
            &critical_only,
            &job(2, FailureType::NotReady).alert
        ));
        assert!(!admit(
            &mut told,
            &critical_only,
            &resolution(2, FailureType::NotReady)
        ));
        // Part of a storm that went out counts as announced.
        let storm = Alert::Storm {
            shared: String::new(),
            items: vec![
                Item::new(incident(3, FailureType::CrashLoopBackOff), None),
                Item::new(incident(4, FailureType::NotReady), None),
            ],
        };
        assert!(admit(&mut told, &critical_only, &storm));
        assert!(admit(
            &mut told,
            &critical_only,
            &resolution(4, FailureType::NotReady)
        ));
        // A wanted severity needs no announcement.
        assert!(admit(
            &mut told,
            &critical_only,
            &resolution(5, FailureType::OOMKilled)
        ));
    }

    /// Records what it is given: (incident ids, the channel a route named).
    struct Named {
        name: &'static str,
        got: Mutex<Vec<(Vec<u64>, Option<String>)>>,
    }
    impl Sink for Arc<Named> {
        fn name(&self) -> &'static str {
            self.name
        }
        fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
            let ids = alert.items().iter().map(|i| i.incident.id).collect();
            self.got.lock().unwrap().push((ids, None));
            Ok(())
        }
        fn deliver_to(&self, alert: &Alert, to: &Override) -> Result<(), Failure> {
            let ids = alert.items().iter().map(|i| i.incident.id).collect();
            let Override::Channel(c) = to else {
                panic!("{to:?}")
            };
            self.got.lock().unwrap().push((ids, Some(c.clone())));
            Ok(())
        }
    }

    fn in_namespace(mut job: Job, ns: &str) -> Job {
        for i in job.alert.items_mut() {
            i.incident.namespace = ns.into();
        }
        job
    }

    #[test]
    fn routes_pick_the_sinks_split_a_storm_and_a_resolution_follows_its_incident() {
        use crate::routing::{OverrideKind, SinkInfo};
        let infos = [
            SinkInfo {
                name: "chat",
                accepts: &[OverrideKind::Channel],
                channel: None,
            },
            SinkInfo {
                name: "hook",
                accepts: &[],
                channel: None,
            },
        ];
        let routes = Routes::parse(
            &serde_json::json!({
                "routes": [
                    {"match": {"namespace": "shop"}, "sinks": [{"sink": "chat", "channel": "#shop"}]},
                    {"match": {"min_severity": "critical"}, "sinks": ["hook"]}
                ],
                "default": []
            }),
            &infos,
            &|_| Err("no files".into()),
        )
        .unwrap();
        let chat = Arc::new(Named {
            name: "chat",
            got: Mutex::new(vec![]),
        });
        let hook = Arc::new(Named {
            name: "hook",
            got: Mutex::new(vec![]),
        });
        let mut c = cfg(1);
        c.routes = Some(Arc::new(routes));
        let p = Pool::start(
            c,
            vec![Box::new(chat.clone()), Box::new(hook.clone())],
            Box::new(AsIs),
            Arc::new(|| true),
            Arc::new(Metrics::new(&[], 5)),
        )
        .unwrap();
        let item = |id, kind, ns: &str| {
            let mut i = Item::new(incident(id, kind), None);
            i.incident.namespace = ns.into();
            i
        };
        p.submit(Job {
            alert: Alert::Storm {
                shared: String::new(),
                items: vec![
                    item(1, FailureType::CrashLoopBackOff, "shop"),
                    item(2, FailureType::CrashLoopBackOff, "web"),
                    item(3, FailureType::NotReady, "web"),
                ],
            },
            pods: vec![None, None, None],
        });
        // Opens critical (to hook), resolves as NotReady (medium): still to hook.
        p.submit(in_namespace(job(4, FailureType::CrashLoopBackOff), "web"));
        p.submit(Job {
            alert: resolution(4, FailureType::NotReady),
            pods: vec![None],
        });
        assert_eq!(p.drain(Duration::from_secs(5)), 0);
        assert_eq!(*chat.got.lock().unwrap(), [(vec![1], Some("#shop".into()))]);
        let mut got = hook.got.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, [(vec![2], None), (vec![4], None), (vec![4], None)]);
    }

    /// Always asks to come back in 999999 s.
    struct RateLimited(AtomicUsize);
    impl Sink for Arc<RateLimited> {
        fn name(&self) -> &'static str {
            "limited"
        }
        fn deliver(&self, _: &Alert) -> Result<(), Failure> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(Failure::Retry {
                why: "HTTP 429".into(),
                after: Some(Duration::from_secs(999_999)),
            })
        }
    }

    #[test]
    fn a_rate_limited_sink_delays_only_itself_and_its_retries_are_capped() {
        let limited = Arc::new(RateLimited(AtomicUsize::new(0)));
        let healthy = flaky(0, false);
        let m = Arc::new(Metrics::new(&[], 5));
        let p = Pool::start(
            cfg(3),
            vec![Box::new(limited.clone()), Box::new(healthy.clone())],
            Box::new(AsIs),
            Arc::new(|| true),
            m.clone(),
        )
        .unwrap();
        for id in 1..=5 {
            p.submit(job(id, FailureType::CrashLoopBackOff));
        }
        assert!(
            (0..200).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                healthy.got.lock().unwrap().len() == 5
            }),
            "the healthy sink got every alert at once"
        );
        assert_eq!(p.drain(Duration::from_secs(10)), 0);
        // 3 attempts each, 20 ms apart (ALERT_MAX_BACKOFF), then dropped and counted.
        assert_eq!(limited.0.load(Ordering::SeqCst), 15);
        assert_eq!(m.sinks.get("limited", SinkOutcome::Failed), 5);
        // Different incidents may be prepared in parallel: any order.
        let mut got = healthy.got.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, [1, 2, 3, 4, 5]);
    }

    /// Enrichment that never comes back in time.
    struct Slow;
    impl Prepare for Slow {
        fn prepare(&self, job: &mut Job) {
            std::thread::sleep(Duration::from_secs(3));
            job.pods.clear();
        }
    }

    #[test]
    fn past_the_deadline_the_alert_goes_out_unprepared() {
        let sink = flaky(0, false);
        let m = Arc::new(Metrics::new(&[], 5));
        let mut c = cfg(1);
        c.prepare_deadline = Duration::from_millis(100);
        let p = Pool::start(
            c,
            vec![Box::new(sink.clone())],
            Box::new(Slow),
            Arc::new(|| true),
            m,
        )
        .unwrap();
        let t = Instant::now();
        p.submit(job(1, FailureType::CrashLoopBackOff));
        assert_eq!(p.drain(Duration::from_secs(10)), 0);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(*sink.got.lock().unwrap(), [1]);
    }

    #[test]
    fn a_cut_ends_the_drain_at_once() {
        let sink = flaky(usize::MAX, false);
        let mut c = cfg(10);
        c.workers = 1;
        c.backoff = Duration::from_secs(30);
        c.max_backoff = Duration::from_secs(30);
        let (p, m) = pool(&sink, c, true);
        p.submit(job(1, FailureType::CrashLoopBackOff));
        let cut = p.cutter();
        let t = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            cut();
        });
        assert_eq!(p.drain(Duration::from_secs(60)), 1);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert_eq!(m.counters.alerts_abandoned.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn drain_reports_what_it_could_not_send() {
        // Always failing, long backoff: the drain runs out mid-retry.
        let sink = flaky(usize::MAX, false);
        let mut c = cfg(10);
        c.workers = 1;
        c.backoff = Duration::from_secs(30);
        c.max_backoff = Duration::from_secs(30);
        let (p, m) = pool(&sink, c, true);
        p.submit(job(1, FailureType::CrashLoopBackOff));
        p.submit(job(2, FailureType::CrashLoopBackOff));
        let t = Instant::now();
        assert_eq!(p.drain(Duration::from_millis(300)), 2);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert_eq!(m.counters.alerts_abandoned.load(Ordering::Relaxed), 2);
    }
}
