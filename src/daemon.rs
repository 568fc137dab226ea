/*!
`run`: wires the threads together and applies what the classification step
asks for.

- the HTTP endpoint starts first, so probes answer while the rest starts;
- one blocking reader thread per watch stream (`kube::watch::Stream`);
- the delivery pool's workers (`notify::pool`), behind the leader gate;
- this thread becomes the classification thread: it alone owns the
  `Classifier` (the pod store and the incident engine), feeds it what the
  readers send and a tick once a second, hands the records it returns to
  stdout's writer thread (`printer`) and its jobs to the pool, neither of
  which ever blocks it, and beats the watchdog that `/healthz` reads.

Shutdown: the signal thread sets the flag and wakes this loop; readers stop
at their next check or are simply left behind when the process exits. The
whole shutdown is bounded (`SHUTDOWN_DRAIN_MS` + `SHUTDOWN_SLACK`) by a
backstop in `shutdown`, so a stuck writer or sink cannot hold the exit.
*/

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::classifier::{self, Classifier, Effects, Input};
use crate::diagnose::RuleSet;
use crate::diagnose::llm::LlmClient;
use crate::diagnose::redact::redact;
use crate::enrich::{Enricher, Opinion};
use crate::kube::client::Client;
use crate::kube::config::ClusterConfig;
use crate::kube::watch::{Msg, Namespaces, Nodes, Pods, Shared, Stream};
use crate::leader::{self, Elector, Leadership};
use crate::metrics::Metrics;
use crate::model::{Failure, Item, Rediagnosis};
use crate::notify::log::LogSink;
use crate::notify::pool::{self, Pool};
use crate::notify::{self, Sink};
use crate::output;
use crate::printer::Printer;
use crate::routing::Policy;
use crate::serve;
use crate::settings::{Alerts, Output, Settings};
use crate::shutdown;
use crate::streams::{namespace_stream, node_stream, plan_streams};
use crate::util::time::now_ms;

/// Events buffered between the readers and the classification thread; a
/// slow classifier makes readers wait (back-pressure) instead of growing memory.
const CHANNEL_CAPACITY: usize = 1024;
/// Better diagnoses waiting for the classification thread (one per notification at most).
const REDIAGNOSED_CAPACITY: usize = 256;
const TICK: Duration = Duration::from_secs(1);
/// Shutdown beyond the drain: the Lease release (at most 5 s) and the last
/// records; the process exits by then whatever is stuck.
pub const SHUTDOWN_SLACK: Duration = Duration::from_secs(7);
/// Time the writer gets to print the last records on the way out.
const LAST_RECORDS: Duration = Duration::from_secs(1);

/// How `run` ended.
pub enum Exit {
    /// SIGTERM/SIGINT: exit 0.
    Stopped,
    /// A stream failed with reconnection disabled: exit 1.
    Failed(String),
}

/// Applies a step's effects: counts, logs and prints the records (through
/// the writer thread: a stalled or closed stdout costs records, never
/// time), and hands the jobs to the pool.
struct Apply<'a> {
    metrics: &'a Metrics,
    pool: &'a Pool,
    json: bool,
    printer: Option<Printer>,
}

impl Apply<'_> {
    fn effects(&mut self, fx: Effects, cl: &Classifier) {
        let c = &self.metrics.counters;
        c.events_processed
            .fetch_add(fx.events_applied, Ordering::Relaxed);
        c.notifications_silenced
            .fetch_add(fx.silenced, Ordering::Relaxed);
        c.pods_tracked
            .store(cl.pods_tracked() as u64, Ordering::Relaxed);
        c.incidents_open
            .store(cl.open_incidents() as u64, Ordering::Relaxed);
        c.incidents_silenced
            .store(cl.silenced_incidents() as u64, Ordering::Relaxed);
        if !fx.records.is_empty() {
            c.incident_transitions
                .fetch_add(fx.records.len() as u64, Ordering::Relaxed);
            c.incidents_opened
                .fetch_add(classifier::opened(&fx.records), Ordering::Relaxed);
            for (t, d) in &fx.records {
                let i = &t.incident;
                log::info!(
                    "incident {} id={} {} {} pods={} cause={}",
                    i.state.as_str(),
                    i.id,
                    i.finding.kind,
                    output::subject(i),
                    i.pods.len(),
                    d.as_ref().map_or("-", |d| d.cause.as_str())
                );
            }
            if let Some(printer) = &mut self.printer {
                for r in &fx.records {
                    let mut line = Vec::new();
                    // Writing to memory cannot fail.
                    let _ =
                        output::print_transitions(&mut line, self.json, std::slice::from_ref(r));
                    printer.print(line);
                }
            }
        }
        for job in fx.jobs {
            self.pool.submit(job);
        }
    }
}

/// Enrichment's deadline beyond the LLM's budget (`DIAGNOSIS_TIMEOUT_MS`):
/// the events, the logs and the backend's analysis; past it the alert goes
/// out with the rules' diagnosis.
const PREPARE_SLACK: Duration = Duration::from_secs(5);

/// The notification sinks the settings ask for; the log always records.
fn sinks(settings: &Settings, client: &Client, leading: pool::Gate) -> Vec<Box<dyn Sink>> {
    let mut out: Vec<Box<dyn Sink>> = vec![Box::new(LogSink)];
    out.extend(notify::sinks::configured_with(
        settings,
        Some(client),
        leading,
    ));
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
                    // A Retry-After of days must not hold the alert: capped.
                    std::thread::sleep(retry.retry_delay(&mut backoff, after));
                }
            }
        }
        None
    })
}

pub fn run(
    settings: &Settings,
    cluster: &ClusterConfig,
    cluster_name: &str,
    rules: Arc<RuleSet>,
    policy: Policy,
) -> Result<Exit, String> {
    // Before any watch: labels are kept per pod only when something matches on them.
    crate::kube::types::keep_labels(policy.uses_labels());
    let streams = plan_streams(settings);
    let ns_stream = namespace_stream(settings, streams.len());
    let nodes_stream = node_stream(settings, streams.len() + usize::from(ns_stream.is_some()));
    let names: Vec<(String, Option<String>)> = streams
        .iter()
        .chain(ns_stream.iter())
        .chain(nodes_stream.iter())
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
    metrics.show_claim_url(settings.health_claim_url);

    if let Some(port) = settings.health_port {
        let addr = serve::start(port, metrics.clone())
            .map_err(|e| format!("cannot serve health endpoint on port {port}: {e}"))?;
        log::info!("health endpoint listening addr={addr}");
    }

    let client = Client::new(cluster).map_err(|e| format!("{}: {e}", cluster.origin))?;
    let d = &settings.diagnosis;
    // Enrichment's better diagnoses come back to the classification thread,
    // which prints them; a worker never waits for it (full: dropped, the
    // notification already went out with it).
    let (rediagnosed_tx, rediagnosed_rx) = sync_channel::<Rediagnosis>(REDIAGNOSED_CAPACITY);
    let mut enricher = Enricher::new(
        d.enabled.then(|| client.clone()),
        rules.clone(),
        d.include_logs,
        redact,
        metrics.clone(),
    )
    .with_rediagnosed(Box::new(move |r| {
        if rediagnosed_tx.try_send(r).is_err() {
            log::debug!("rediagnosis dropped: the classification thread is behind");
        }
    }));
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
    let leading: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || leadership.is_leader());
    let pool = Pool::start(
        pool::Config {
            prepare_deadline: d.timeout + PREPARE_SLACK,
            routes: policy.routes.map(Arc::new),
            ..pool::Config::from_settings(&settings.alerts)
        },
        sinks(settings, &client, leading.clone()),
        Box::new(enricher),
        leading,
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
    let stop = shutdown::install(
        waker(tx.clone()),
        pool.cutter(),
        settings.alerts.shutdown_drain + SHUTDOWN_SLACK,
    )
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let printer =
        Printer::stdout(metrics.clone()).map_err(|e| format!("cannot start stdout writer: {e}"))?;
    metrics.watchdog.set_limit(settings.watchdog);

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
    if nodes_stream.is_none() {
        log::info!(
            "node detection off: a namespaced install (WATCH_NAMESPACES) has no access to nodes, which are cluster-scoped; `opsctrl-daemon check` explains"
        );
    }

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
        })
        .and_then(|()| match nodes_stream.clone() {
            Some(spec) => Stream::<Nodes>::new(spec, shared.clone()).spawn(),
            None => Ok(()),
        });
    started.map_err(|e| format!("cannot start watch thread: {e}"))?;
    drop(shared);
    drop(tx);

    let mut cl = Classifier::new(classifier::Config {
        cluster: cluster_name.to_string(),
        detect: settings.detect.clone(),
        rules,
        stream_names: streams.iter().map(|s| s.name.clone()).collect(),
        namespaces_watched: ns_stream.is_some(),
        nodes_watched: nodes_stream.is_some(),
        silences: policy.silences,
    });
    let mut apply = Apply {
        metrics: &metrics,
        pool: &pool,
        json: settings.output == Output::Json,
        printer: Some(printer),
    };
    let finish = |cl: &mut Classifier, apply: &mut Apply| {
        // Shutting down: what the engine holds back goes to the pool, which
        // then gets `SHUTDOWN_DRAIN_MS` to deliver.
        let fx = cl.finish(now_ms());
        apply.effects(fx, cl);
        apply.pool.drain(settings.alerts.shutdown_drain);
        // What the drained notifications' enrichment changed is recorded too.
        while let Ok(r) = rediagnosed_rx.try_recv() {
            let fx = cl.handle(Input::Rediagnosed(Box::new(r)), now_ms());
            apply.effects(fx, cl);
        }
        if let Some(p) = apply.printer.take() {
            if !p.finish(LAST_RECORDS) {
                log::warn!("stdout is not draining: the last incident records were not printed");
            }
        }
    };
    let mut next_tick = Instant::now() + TICK;
    loop {
        metrics.watchdog.beat(now_ms());
        if stop.load(Ordering::Relaxed) {
            finish(&mut cl, &mut apply);
            return Ok(Exit::Stopped);
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        let input = match rx.recv_timeout(wait) {
            Ok(Msg::Store { stream, event }) => Some(Input::Store { stream, event }),
            Ok(Msg::Namespaces { event }) => Some(Input::Namespaces { event }),
            Ok(Msg::Nodes { event }) => Some(Input::Nodes { event }),
            Ok(Msg::Fatal(e)) => {
                finish(&mut cl, &mut apply);
                return Ok(Exit::Failed(e));
            }
            Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => {
                finish(&mut cl, &mut apply);
                return Ok(Exit::Stopped);
            }
            Err(RecvTimeoutError::Timeout) => None,
        };
        if let Some(input) = input {
            let fx = cl.handle(input, now_ms());
            apply.effects(fx, &cl);
        }
        while let Ok(r) = rediagnosed_rx.try_recv() {
            let fx = cl.handle(Input::Rediagnosed(Box::new(r)), now_ms());
            apply.effects(fx, &cl);
        }
        // The tick runs on time, busy or not.
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + TICK;
            let fx = cl.handle(Input::Tick, now_ms());
            apply.effects(fx, &cl);
        }
    }
}

/// The signal thread's way to wake the classification loop.
fn waker(tx: SyncSender<Msg>) -> impl Fn() + Send + 'static {
    move || {
        let _ = tx.send(Msg::Shutdown);
    }
}
