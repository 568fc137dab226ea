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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::detect::detector::Detector;
use crate::detect::incident::{Notification, Transition};
use crate::diagnose::RuleSet;
use crate::kube::client::Client;
use crate::kube::config::ClusterConfig;
use crate::kube::store::{Change, Event, Store};
use crate::kube::types::NamespaceRecord;
use crate::kube::watch::{Msg, Namespaces, Pods, Shared, Stream, StreamSpec};
use crate::leader::{self, Elector, Leadership};
use crate::metrics::Metrics;
use crate::output;
use crate::serve;
use crate::settings::{Output, Scope, Settings};
use crate::shutdown;

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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What the classification thread owns: the pod store, the detector, and
/// where detection stands at start-up.
struct Classifier<'a> {
    settings: &'a Settings,
    metrics: &'a Metrics,
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
    /// Whether this replica sends notifications (always, without leader election).
    leadership: Leadership,
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
        for t in transitions {
            c.incident_transitions.fetch_add(1, Ordering::Relaxed);
            if t.incident.state.as_str() == "open" {
                c.incidents_opened.fetch_add(1, Ordering::Relaxed);
            }
            let d = self.detector.diagnose(&self.store, &t);
            log::info!(
                "incident {} id={} {} {}/{}/{} pods={} cause={}",
                t.incident.state.as_str(),
                t.incident.id,
                t.incident.finding.kind,
                t.incident.namespace,
                t.incident.workload.kind,
                t.incident.workload.name,
                t.incident.pods.len(),
                d.as_ref().map_or("-", |d| d.cause)
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
            notify(&self.detector.startup_done(now), &self.leadership);
        }
    }
}

/// Notifications have no sink yet but the log: say what would be sent, and
/// that a standby (leader election on, Lease held elsewhere) sends nothing.
fn notify(notifications: &[Notification], leadership: &Leadership) {
    for n in notifications {
        if leadership.is_leader() {
            log::info!("notification: {}", output::notification_text(n));
        } else {
            log::info!(
                "notification (standby, not sent): {}",
                output::notification_text(n)
            );
        }
    }
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
    let (tx, rx) = sync_channel::<Msg>(CHANNEL_CAPACITY);
    let stop = shutdown::install(tx.clone())
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
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
    let leadership = elector
        .as_ref()
        .map_or_else(Leadership::always, Elector::leadership);

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
        listed: vec![false; streams.len()],
        ns: NamespaceView::default(),
        // Detection waits for the namespaces, so a pod in an ignored
        // namespace never opens an incident at start-up.
        detecting: ns_stream.is_none(),
        announced: false,
        stdout_ok: true,
        leadership,
    };
    let mut next_tick = Instant::now() + TICK;
    // When the pods are listed but namespaces cannot be read (RBAC without
    // namespaces), detection must not wait forever: it starts without the
    // namespace annotation after NAMESPACE_WAIT.
    let mut pods_listed_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
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
            Ok(Msg::Fatal(e)) => return Ok(Exit::Failed(e)),
            Ok(Msg::Shutdown) => return Ok(Exit::Stopped),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(Exit::Stopped),
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
            notify(&notifications, &cl.leadership);
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
