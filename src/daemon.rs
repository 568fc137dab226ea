/*!
`run`: wires the threads together.

- the HTTP endpoint starts first, so probes answer while the rest starts;
- one blocking reader thread per watch stream (`kube::watch::Stream`);
- this thread becomes the classification thread: it alone owns the pod
  store and applies what the readers send, ticking once a second so time-based
  checks do not depend on events arriving.

Shutdown: the signal thread sets the flag and wakes this loop; readers stop
at their next check or are simply left behind when the process exits.
*/

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::detect::detector::Detector;
use crate::detect::incident::{Incident, Notification, Transition};
use crate::diagnose::RuleSet;
use crate::diagnose::llm::LlmClient;
use crate::diagnose::redact::redact;
use crate::enrich::{Enricher, Opinion, redact_diagnosis};
use crate::kube::client::Client;
use crate::kube::config::ClusterConfig;
use crate::kube::store::{Change, Event, Store};
use crate::kube::types::NamespaceRecord;
use crate::kube::types::PodRecord;
use crate::kube::watch::{Msg, Namespaces, Pods, Shared, Stream, StreamSpec};
use crate::leader::{self, Elector, Leadership};
use crate::metrics::Metrics;
use crate::net::http;
use crate::notify::Job;
use crate::notify::k8s_event::K8sEvents;
use crate::notify::log::LogSink;
use crate::notify::pool::{self, Pool};
use crate::notify::slack_bot::SlackBot;
use crate::notify::slack_webhook::SlackWebhook;
use crate::notify::webhook::Webhook;
use crate::notify::{Alert, Failure, Item, Sink};
use crate::output;
use crate::serve;
use crate::settings::{Alerts, Output, Scope, Settings};
use crate::shutdown;
use crate::util::time::now_ms;

/// Events buffered between the readers and the classification thread; a
/// slow classifier makes readers wait (back-pressure) instead of growing memory.
const CHANNEL_CAPACITY: usize = 1024;
const TICK: Duration = Duration::from_secs(1);
/// How long detection waits for the namespace list once the pods are listed.
const NAMESPACE_WAIT: Duration = Duration::from_secs(10);

/// The streams the settings ask for.
pub fn plan_streams(settings: &Settings) -> Vec<StreamSpec> {
    let spec = |id: usize, name: String, path: String, field_selector: Option<String>| StreamSpec {
        id: id as u16,
        name,
        path,
        field_selector,
        label_selector: settings.label_selector.clone(),
        page_size: settings.page_size,
    };
    match &settings.scope {
        Scope::Cluster { exclude } => {
            let fs = (!exclude.is_empty()).then(|| {
                exclude
                    .iter()
                    .map(|n| format!("metadata.namespace!={n}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            vec![spec(0, "all namespaces".into(), "/api/v1/pods".into(), fs)]
        }
        Scope::Namespaces(list) => list
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                spec(
                    i,
                    format!("namespace {ns}"),
                    format!("/api/v1/namespaces/{ns}/pods"),
                    None,
                )
            })
            .collect(),
    }
}

/// How `run` ended.
pub enum Exit {
    /// SIGTERM/SIGINT: exit 0.
    Stopped,
    /// A stream failed with reconnection disabled: exit 1.
    Failed(String),
}

/// What the classification thread owns: the pod store, the detector, and
/// where detection stands at start-up.
struct Classifier<'a> {
    settings: &'a Settings,
    metrics: &'a Metrics,
    pool: &'a Pool,
    store: Store,
    detector: Detector,
    /// Per pod stream: its first LIST is done.
    listed: Vec<bool>,
    ns: NamespaceView,
    /// Detection runs (namespaces known, or given up waiting for them).
    detecting: bool,
    /// The start-up summary went out.
    announced: bool,
    stdout_ok: bool,
}

impl Classifier<'_> {
    /// Prints the record (with each transition's diagnosis); a closed stdout
    /// is logged once, not fatal.
    fn emit(&mut self, transitions: Vec<Transition>) {
        if transitions.is_empty() {
            return;
        }
        let c = &self.metrics.counters;
        let mut records = Vec::with_capacity(transitions.len());
        for mut t in transitions {
            c.incident_transitions.fetch_add(1, Ordering::Relaxed);
            // The record may be shipped off the node by a log collector:
            // kubelet copies log tails into messages, so redact them.
            t.incident.finding.message = redact(&t.incident.finding.message);
            if t.incident.state.as_str() == "open" {
                c.incidents_opened.fetch_add(1, Ordering::Relaxed);
            }
            let d = self.detector.diagnose(&self.store, &t).map(|mut d| {
                redact_diagnosis(&mut d, redact);
                d
            });
            log::info!(
                "incident {} id={} {} {}/{}/{} pods={} cause={}",
                t.incident.state.as_str(),
                t.incident.id,
                t.incident.finding.kind,
                t.incident.namespace,
                t.incident.workload.kind,
                t.incident.workload.name,
                t.incident.pods.len(),
                d.as_ref().map_or("-", |d| d.cause.as_str())
            );
            records.push((t, d));
        }
        if !self.stdout_ok {
            return;
        }
        let mut out = std::io::stdout().lock();
        let json = self.settings.output == Output::Json;
        if let Err(e) = output::print_transitions(&mut out, json, &records) {
            log::error!("cannot write incidents to stdout: {e}; further incidents are only logged");
            self.stdout_ok = false;
        }
        let _ = out.flush();
    }

    /// Detection begins over everything in the store (once, at start-up).
    fn start_detection(&mut self, now: i64) {
        if std::mem::replace(&mut self.detecting, true) {
            return;
        }
        let t = self.detector.observe_all(&self.store, now);
        self.emit(t);
        self.announce_if_ready(now);
    }

    /// Once detection runs and every pod stream has listed, what is open was
    /// already broken at start-up: one summary.
    fn announce_if_ready(&mut self, now: i64) {
        if self.detecting && !self.announced && self.listed.iter().all(|l| *l) {
            self.announced = true;
            let n = self.detector.startup_done(now);
            self.notify(n);
        }
    }

    /// Hands notifications to the delivery pool (never blocks on the network).
    fn notify(&self, notifications: Vec<Notification>) {
        for n in notifications {
            self.pool.submit(self.job(n));
        }
    }

    /// An incident with its diagnosis, and a copy of its pod for enrichment.
    fn item(&self, incident: Incident) -> (Item, Option<Box<PodRecord>>) {
        let diagnosis = self.detector.diagnosis_of(incident.id).cloned();
        let key = format!("{}/{}", incident.namespace, incident.finding.pod);
        let pod = self.store.get(&key).map(|p| Box::new(p.clone()));
        (Item::new(incident, diagnosis), pod)
    }

    fn job(&self, n: Notification) -> Job {
        let group = |incidents: Vec<Incident>| -> (Vec<Item>, Vec<Option<Box<PodRecord>>>) {
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

    /// Shutting down: what the engine holds back goes to the pool, which
    /// then gets `SHUTDOWN_DRAIN_MS` to deliver.
    fn finish(&mut self) {
        let (t, n) = self.detector.flush(now_ms());
        self.emit(t);
        self.notify(n);
        self.pool.drain(self.settings.alerts.shutdown_drain);
    }
}

/// Deadline of one delivery attempt (connect included); a hung receiver
/// costs one attempt, not a worker.
const SINK_TIMEOUT: Duration = Duration::from_secs(10);

/// The notification sinks the settings ask for; the log always records.
fn sinks(settings: &Settings, client: &Client) -> Vec<Box<dyn Sink>> {
    let a = &settings.alerts;
    let agent = || http::agent(SINK_TIMEOUT);
    let mut out: Vec<Box<dyn Sink>> = vec![Box::new(LogSink)];
    if let Some(url) = &a.slack_webhook {
        out.push(Box::new(SlackWebhook::new(url.clone(), agent())));
    }
    if let Some(bot) = &a.slack_bot {
        out.push(Box::new(SlackBot::new(bot.clone(), agent())));
    }
    if let Some(w) = &a.webhook {
        out.push(Box::new(Webhook::new(w.clone(), agent())));
    }
    if a.emit_k8s_events {
        let identity = settings
            .leader
            .as_ref()
            .map_or_else(|| "opsctrl-daemon".to_string(), |l| l.identity.clone());
        out.push(Box::new(K8sEvents::new(client.clone(), identity)));
    }
    out
}

/// The backend's analysis for the enricher: `analyze` with the alert
/// retries (a failure leaves the alert without it, logged).
fn backend_opinion(be: Arc<Backend>, a: &Alerts) -> Opinion {
    let retry = pool::Config::from_settings(a);
    Box::new(move |item: &Item| {
        let mut backoff = retry.backoff();
        let attempts = retry.max_attempts.max(1);
        for attempt in 1..=attempts {
            match be.analyze(item) {
                Ok(v) => return v,
                Err(Failure::Permanent(why)) => {
                    log::warn!("backend analysis refused, alert goes without it: {why}");
                    return None;
                }
                Err(Failure::Retry { why, after }) => {
                    if attempt == attempts {
                        log::warn!(
                            "backend analysis failed after {attempts} attempt(s), alert goes without it: {why}"
                        );
                        return None;
                    }
                    std::thread::sleep(backoff.next_delay(after));
                }
            }
        }
        None
    })
}

/// Cluster-wide, namespaces are watched too, for their ignore annotation
/// (a namespaced Role cannot read namespace objects, so not in list mode).
pub fn namespace_stream(settings: &Settings, id: usize) -> Option<StreamSpec> {
    matches!(settings.scope, Scope::Cluster { .. }).then(|| StreamSpec {
        id: id as u16,
        name: "namespaces".into(),
        path: "/api/v1/namespaces".into(),
        field_selector: None,
        label_selector: None,
        page_size: settings.page_size,
    })
}

/// The namespace stream's view: ignored names, rebuilt at each list.
#[derive(Default)]
struct NamespaceView {
    listing: Option<HashSet<Box<str>>>,
}

pub fn run(
    settings: &Settings,
    cluster: &ClusterConfig,
    cluster_name: &str,
    rules: Arc<RuleSet>,
) -> Result<Exit, String> {
    let streams = plan_streams(settings);
    let ns_stream = namespace_stream(settings, streams.len());
    let names: Vec<(String, Option<String>)> = streams
        .iter()
        .chain(ns_stream.iter())
        .map(|s| {
            let ns = s
                .path
                .strip_prefix("/api/v1/namespaces/")
                .and_then(|r| r.strip_suffix("/pods"))
                .map(String::from);
            (s.name.clone(), ns)
        })
        .collect();
    let metrics = Arc::new(Metrics::new(&names, settings.reconnect.max_failures));

    if let Some(port) = settings.health_port {
        let addr = serve::start(port, metrics.clone())
            .map_err(|e| format!("cannot serve health endpoint on port {port}: {e}"))?;
        log::info!("health endpoint listening addr={addr}");
    }

    let client = Client::new(cluster).map_err(|e| format!("{}: {e}", cluster.origin))?;
    let d = &settings.diagnosis;
    let mut enricher = Enricher::new(
        d.enabled.then(|| client.clone()),
        rules.clone(),
        d.include_logs,
        redact,
        metrics.clone(),
    );
    if let Some(llm) = LlmClient::from_settings(d, metrics.clone()) {
        enricher = enricher.with_llm(Box::new(move |item: &Item| llm.second_opinion(item)));
    }
    if let Some(b) = &settings.backend {
        // Registration runs on its own thread from now on; monitoring never waits for it.
        let be = Backend::start(b, client.clone(), metrics.clone());
        if d.enabled {
            enricher = enricher.with_backend(backend_opinion(be, &settings.alerts));
        }
    }
    // Dropped when `run` returns, which releases the Lease on the way out.
    let elector = match &settings.leader {
        Some(lease) => Some(
            Elector::start(
                client.clone(),
                lease,
                leader::Timing::default(),
                metrics.clone(),
            )
            .map_err(|e| format!("cannot start leader election: {e}"))?,
        ),
        None => {
            metrics.counters.leader.store(1, Ordering::Relaxed);
            None
        }
    };
    // The standby watches and classifies but sends nothing.
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::always, Elector::leadership);
    let pool = Pool::start(
        pool::Config::from_settings(&settings.alerts),
        sinks(settings, &client),
        Box::new(enricher),
        Arc::new(move || leadership.is_leader()),
        metrics.clone(),
    )
    .map_err(|e| format!("cannot start delivery workers: {e}"))?;
    log::info!(
        "delivery: {} worker(s), sinks: {}; diagnosis: {}{}",
        settings.alerts.workers,
        pool.sink_names().join(", "),
        if d.enabled {
            "enriched"
        } else {
            "rules only, no API calls"
        },
        if d.include_logs { ", with logs" } else { "" },
    );
    let (tx, rx) = sync_channel::<Msg>(CHANNEL_CAPACITY);
    let stop = shutdown::install(tx.clone())
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    log::info!(
        "starting opsctrl-daemon {} server={} via {} streams={} label_selector={}",
        env!("CARGO_PKG_VERSION"),
        client.server(),
        cluster.origin,
        streams
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        settings.label_selector.as_deref().unwrap_or("-"),
    );

    let shared = Shared {
        client: client.clone(),
        tx: tx.clone(),
        metrics: metrics.clone(),
        reconnect: settings.reconnect.clone(),
        shutdown: stop.clone(),
    };
    let started: std::io::Result<()> = streams
        .iter()
        .cloned()
        .try_for_each(|spec| Stream::<Pods>::new(spec, shared.clone()).spawn())
        .and_then(|()| match ns_stream.clone() {
            Some(spec) => Stream::<Namespaces>::new(spec, shared.clone()).spawn(),
            None => Ok(()),
        });
    started.map_err(|e| format!("cannot start watch thread: {e}"))?;
    drop(shared);
    drop(tx);

    let mut cl = Classifier {
        settings,
        metrics: &metrics,
        store: Store::new(),
        detector: Detector::with_rules(cluster_name.to_string(), &settings.detect, rules),
        pool: &pool,
        listed: vec![false; streams.len()],
        ns: NamespaceView::default(),
        // Detection waits for the namespaces, so a pod in an ignored
        // namespace never opens an incident at start-up.
        detecting: ns_stream.is_none(),
        announced: false,
        stdout_ok: true,
    };
    let mut next_tick = Instant::now() + TICK;
    // When the pods are listed but namespaces cannot be read (RBAC without
    // namespaces), detection must not wait forever: it starts without the
    // namespace annotation after NAMESPACE_WAIT.
    let mut pods_listed_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            cl.finish();
            return Ok(Exit::Stopped);
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Msg::Store { stream, event }) => {
                let n = match &event {
                    Event::Page(p) => p.len() as u64,
                    Event::Apply(_) | Event::Delete(_) => 1,
                    Event::Init | Event::InitDone => 0,
                };
                let done = matches!(event, Event::InitDone);
                let changes = cl.store.apply(stream, event);
                metrics
                    .counters
                    .events_processed
                    .fetch_add(n, Ordering::Relaxed);
                metrics
                    .counters
                    .pods_tracked
                    .store(cl.store.len() as u64, Ordering::Relaxed);
                let now = now_ms();
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
                    if cl.detecting {
                        transitions.extend(cl.detector.on_change(&cl.store, c, now));
                    }
                }
                cl.emit(transitions);
                if done {
                    let first = !std::mem::replace(&mut cl.listed[stream as usize], true);
                    let name = &streams[stream as usize].name;
                    let pods = cl.store.len();
                    if first {
                        log::info!("initial list done stream={name} pods_tracked={pods}");
                        cl.announce_if_ready(now);
                    } else {
                        log::info!("relist done stream={name} pods_tracked={pods}");
                    }
                }
            }
            Ok(Msg::Namespaces { event }) => {
                let now = now_ms();
                match event {
                    Event::Init => cl.ns.listing = Some(HashSet::new()),
                    Event::Page(page) => {
                        let set = cl.ns.listing.get_or_insert_with(HashSet::new);
                        set.extend(page.into_iter().filter(|n| n.ignore).map(|n| n.name));
                    }
                    Event::InitDone => {
                        let names = cl.ns.listing.take().unwrap_or_default();
                        log::info!("namespaces listed ignored={}", names.len());
                        let t = cl.detector.set_ignored_namespaces(&cl.store, names, now);
                        cl.emit(t);
                        cl.start_detection(now);
                    }
                    Event::Apply(n) => {
                        let NamespaceRecord { name, ignore } = *n;
                        let t = cl
                            .detector
                            .set_namespace_ignored(&cl.store, &name, ignore, now);
                        cl.emit(t);
                    }
                    Event::Delete(n) => {
                        let t = cl
                            .detector
                            .set_namespace_ignored(&cl.store, &n.name, false, now);
                        cl.emit(t);
                    }
                }
            }
            Ok(Msg::Fatal(e)) => {
                cl.finish();
                return Ok(Exit::Failed(e));
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                cl.finish();
                return Ok(Exit::Stopped);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if pods_listed_at.is_none() && cl.listed.iter().all(|l| *l) {
            pods_listed_at = Some(Instant::now());
        }
        if !cl.detecting && pods_listed_at.is_some_and(|t| t.elapsed() >= NAMESPACE_WAIT) {
            log::warn!(
                "namespaces cannot be listed yet ({}s after the pods): detecting without the namespace opsctrl.dev/ignore annotation until they can",
                NAMESPACE_WAIT.as_secs()
            );
            cl.start_detection(now_ms());
        }
        // The tick runs on time, busy or not: thresholds, graces and
        // hold-downs must not wait for an event to arrive.
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + TICK;
            let (transitions, notifications) = cl.detector.tick(&cl.store, now_ms());
            cl.emit(transitions);
            cl.notify(notifications);
            metrics.counters.incidents_open.store(
                cl.detector.engine().open_incidents().count() as u64,
                Ordering::Relaxed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Reconnect, Settings};

    fn settings(scope: Scope) -> Settings {
        Settings {
            scope,
            label_selector: Some("app=web".into()),
            page_size: 100,
            reconnect: Reconnect {
                enabled: true,
                initial: Duration::from_secs(1),
                max: Duration::from_secs(30),
                multiplier: 2.0,
                max_failures: 5,
            },
            health_port: None,
            log_filter: "info".into(),
            cluster_name: None,
            output: crate::settings::Output::Text,
            detect: crate::settings::Detect::default(),
            diagnosis: Default::default(),
            backend: None,
            alerts: Default::default(),
            leader: None,
        }
    }

    #[test]
    fn cluster_scope_is_one_stream_with_exclusions_as_a_field_selector() {
        let s = plan_streams(&settings(Scope::Cluster {
            exclude: vec!["kube-system".into(), "kube-public".into()],
        }));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].path, "/api/v1/pods");
        assert_eq!(
            s[0].field_selector.as_deref(),
            Some("metadata.namespace!=kube-system,metadata.namespace!=kube-public")
        );
        assert_eq!(s[0].label_selector.as_deref(), Some("app=web"));
        let s = plan_streams(&settings(Scope::Cluster { exclude: vec![] }));
        assert_eq!(s[0].field_selector, None);
    }

    #[test]
    fn a_namespace_list_is_one_stream_each() {
        let s = plan_streams(&settings(Scope::Namespaces(vec!["a".into(), "b".into()])));
        let paths: Vec<&str> = s.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/api/v1/namespaces/a/pods", "/api/v1/namespaces/b/pods"]
        );
        assert_eq!((s[0].id, s[1].id), (0, 1));
    }
}
