/*!
The delivery pool: `ALERT_WORKERS` threads behind the bounded queue of
`queue.rs`. The classification thread only ever calls `submit`, which
never blocks on the network (a full queue drops, it does not wait).

Each worker takes the oldest ready job, has it prepared (enrichment,
diagnosis, LLM, backend: `Prepare`), then offers it to every sink in turn,
retrying a sink's `Failure::Retry` with jittered exponential backoff
(`Retry-After` wins) up to `ALERT_MAX_ATTEMPTS`. A sink failing does not
hold back the others.

Shutdown (`drain`): no new jobs; workers finish the queue until
`SHUTDOWN_DRAIN_MS`; whatever is left, queued or mid-retry, is logged one
line each and counted, so nothing vanishes without a trace.
*/

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::queue::{Keyed, Queue};
use super::{Alert, Failure, Job, Sink};
use crate::metrics::{Metrics, SinkOutcome};
use crate::model::Severity;
use crate::output;
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

/// One line saying what a job was, for logs about it.
fn summary(job: &Job) -> String {
    output::alert_text(&job.alert)
}

/// Work done on a job before delivery (enrichment and diagnosis). Runs on
/// a worker, so it may call the network; it must bound its own time.
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
}

impl Config {
    /// Delays between attempts: `backoff` doubled up to `max_backoff`,
    /// jittered, a `Retry-After` as the floor.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff, self.max_backoff, 2.0, Rng::seeded(0x9007))
    }

    pub fn from_settings(a: &Alerts) -> Config {
        Config {
            workers: a.workers,
            queue_size: a.queue_size,
            max_attempts: a.max_attempts,
            backoff: a.backoff,
            max_backoff: a.max_backoff,
            severities: a.severities.clone(),
        }
    }
}

struct State {
    queue: Queue<Job>,
    /// No new jobs (shutting down).
    closed: bool,
    /// Workers stop once past this (the drain ran out).
    deadline: Option<Instant>,
    /// What each busy worker is doing, for the shutdown report.
    working: HashMap<usize, String>,
    /// Incidents the sinks were told about and not yet told resolved.
    announced: HashSet<u64>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes workers (a job, or closing) and the drain (a job done).
    cv: Condvar,
    cfg: Config,
    sinks: Vec<Box<dyn Sink>>,
    prepare: Box<dyn Prepare>,
    gate: Gate,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn set_depth(&self, st: &State) {
        self.metrics
            .counters
            .alert_queue_depth
            .store(st.queue.len() as u64, Ordering::Relaxed);
    }
}

pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts the workers.
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
                closed: false,
                deadline: None,
                working: HashMap::new(),
                announced: HashSet::new(),
            }),
            cv: Condvar::new(),
            cfg,
            sinks,
            prepare,
            gate,
            metrics,
        });
        for id in 0..workers {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("deliver-{id}"))
                .spawn(move || worker(&s, id))?;
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
    /// most `within`; what is left is logged one line each. Returns how
    /// many were left undelivered.
    pub fn drain(&self, within: Duration) -> usize {
        let s = &self.shared;
        let deadline = Instant::now() + within;
        let mut st = s.lock();
        st.closed = true;
        st.deadline = Some(deadline);
        s.cv.notify_all();
        let pending = st.queue.len() + st.working.len();
        if pending > 0 {
            log::info!(
                "shutting down: delivering {pending} queued notification(s) (up to {} ms)",
                within.as_millis()
            );
        }
        while !(st.queue.is_empty() && st.working.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = wait_timeout(&s.cv, st, left);
        }
        let mut lost: Vec<String> = st.working.values().cloned().collect();
        lost.extend(st.queue.take_all().iter().map(summary));
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

fn worker(s: &Shared, id: usize) {
    loop {
        let mut job = {
            let mut st = s.lock();
            loop {
                if st.deadline.is_some_and(|d| Instant::now() >= d) {
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
                st = wait_timeout(&s.cv, st, Duration::from_millis(500));
            }
        };
        let keys = job.keys();
        let delivered = if (s.gate)() {
            s.prepare.prepare(&mut job);
            deliver_all(s, &job)
        } else {
            log::info!("notification (standby, not sent): {}", summary(&job));
            true
        };
        let mut st = s.lock();
        st.queue.done(&keys);
        // Given up mid-retry because the drain ran out: drain() reports it.
        if delivered {
            st.working.remove(&id);
        }
        s.set_depth(&st);
        drop(st);
        s.cv.notify_all();
    }
}

/// Offers the job to every sink; false when the drain deadline cut it short.
fn deliver_all(s: &Shared, job: &Job) -> bool {
    let summary = summary(job);
    s.sinks
        .iter()
        .all(|sink| deliver_one(s, sink.as_ref(), &job.alert, &summary))
}

/// Delivers to one sink with retries; false when cut short by the deadline.
fn deliver_one(s: &Shared, sink: &dyn Sink, alert: &Alert, summary: &str) -> bool {
    let name = sink.name();
    let mut backoff = s.cfg.backoff();
    let max = s.cfg.max_attempts.max(1);
    for attempt in 1..=max {
        match sink.deliver(alert) {
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
                    log::error!("{name}: gave up after {max} attempt(s): {why}: {summary}");
                    return true;
                }
                s.metrics.sinks.record(name, SinkOutcome::Retried);
                let delay = backoff.next_delay(after);
                log::warn!(
                    "{name}: attempt {attempt}/{max} failed: {why}; retrying in {} ms",
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
        st = wait_timeout(&s.cv, st, wake.saturating_duration_since(now));
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

    #[test]
    fn the_pool_delivers_a_resolution_below_the_filter() {
        let sink = flaky(0, false);
        let mut c = cfg(1);
        c.severities = vec![Severity::Critical];
        c.workers = 1;
        let (p, _) = pool(&sink, c, true);
        p.submit(job(1, FailureType::CrashLoopBackOff));
        p.submit(job(1, FailureType::NotReady)); // an update, medium: filtered
        p.submit(Job {
            alert: resolution(1, FailureType::NotReady),
            pods: vec![None],
        });
        p.drain(Duration::from_secs(5));
        assert_eq!(*sink.got.lock().unwrap(), [1, 1]);
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
