/*!
What the daemon knows about itself: counters (atomics, bumped from any
thread without locks) and the state of each watch stream (a small mutex,
written only on state changes, never per event). Rendered as Prometheus text
for `/metrics` and read by `/readyz` and `/health`.
*/

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::util::sync::lock;
use crate::util::time::{now_ms, unix_now};

#[derive(Default)]
pub struct Counters {
    /// Watch events and listed pods applied to the store.
    pub events_processed: AtomicU64,
    /// Watch lines that could not be decoded.
    pub malformed_lines: AtomicU64,
    /// Watch lines that were not UTF-8 (decoded lossily).
    pub invalid_utf8_lines: AtomicU64,
    /// Watches closed because nothing arrived for `WATCH_IDLE_TIMEOUT_SECONDS`.
    pub watch_idle_timeouts: AtomicU64,
    /// BOOKMARK events received.
    pub bookmarks: AtomicU64,
    /// WATCH requests opened after the first one of a stream (resumes and retries).
    pub watch_restarts: AtomicU64,
    /// LISTs started after a stream's first (after 410 Gone).
    pub relists: AtomicU64,
    /// LIST page requests.
    pub list_requests: AtomicU64,
    /// WATCH requests.
    pub watch_requests: AtomicU64,
    /// Failed LIST or WATCH attempts (connection errors, non-2xx answers).
    pub api_errors: AtomicU64,
    /// Pods in the store (a gauge, set by the classification thread).
    pub pods_tracked: AtomicU64,
    /// Incident transitions emitted (open, updated, resolved).
    pub incident_transitions: AtomicU64,
    /// Incidents opened since start.
    pub incidents_opened: AtomicU64,
    /// Incidents open now (a gauge).
    pub incidents_open: AtomicU64,
    /// Open incidents whose notification a silence holds back now (a gauge).
    pub incidents_silenced: AtomicU64,
    /// Notifications waiting for a delivery worker (a gauge).
    pub alert_queue_depth: AtomicU64,
    /// Notifications dropped from a full queue.
    pub alerts_dropped: AtomicU64,
    /// Notifications still queued when the shutdown drain ran out.
    pub alerts_abandoned: AtomicU64,
    /// Notifications held back by a silence (annotation or SILENCES_FILE).
    pub notifications_silenced: AtomicU64,
    /// Event lists fetched for enrichment, and those that failed (403, timeout…).
    pub enrich_events: AtomicU64,
    pub enrich_events_failed: AtomicU64,
    /// Previous-log reads for enrichment, and those that failed.
    pub enrich_logs: AtomicU64,
    pub enrich_logs_failed: AtomicU64,
    /// LLM requests sent, failed (timeout, error, bad answer), and cache hits/misses.
    pub llm_requests: AtomicU64,
    pub llm_failures: AtomicU64,
    pub llm_cache_hits: AtomicU64,
    pub llm_cache_misses: AtomicU64,
    /// LLM answers held in the cache (a gauge; an expired one counts until it is looked up or evicted).
    pub llm_cache_entries: AtomicU64,
    /// analyze-stack reports sent to the OpsCtrl backend, and failed.
    pub backend_reports: AtomicU64,
    pub backend_failures: AtomicU64,
    /// 1 while this replica holds the leader Lease (or leader election is off).
    pub leader: AtomicU64,
    /// Times this replica became leader.
    pub leader_acquired: AtomicU64,
    /// Records not printed because stdout was not draining (the buffer was full).
    pub records_dropped: AtomicU64,
}

/// Whether the classification thread is making progress: it beats once per
/// loop (at least once a second, for the tick); `/healthz` fails when the
/// last beat is older than the limit, so the kubelet restarts a stuck daemon.
pub struct Watchdog {
    /// Unix ms of the last beat.
    last_beat: AtomicI64,
    /// 0: off.
    limit_ms: AtomicU64,
}

impl Watchdog {
    fn new() -> Watchdog {
        Watchdog {
            last_beat: AtomicI64::new(now_ms()),
            limit_ms: AtomicU64::new(0),
        }
    }

    /// Stuck after `limit` without a beat (zero: never).
    pub fn set_limit(&self, limit: std::time::Duration) {
        self.limit_ms
            .store(limit.as_millis() as u64, Ordering::Relaxed);
    }

    /// The classification thread made progress.
    pub fn beat(&self, now_ms: i64) {
        self.last_beat.store(now_ms, Ordering::Relaxed);
    }

    /// Milliseconds since the last beat, when past the limit. The loop has a
    /// tick due every second, so a missing beat always means work waiting.
    pub fn stalled(&self, now_ms: i64) -> Option<i64> {
        let limit = self.limit_ms.load(Ordering::Relaxed) as i64;
        let since = now_ms - self.last_beat.load(Ordering::Relaxed);
        (limit > 0 && since > limit).then_some(since)
    }
}

/// What happened to one delivery attempt of one sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkOutcome {
    Sent,
    /// One attempt failed and will be retried.
    Retried,
    /// Given up on (attempts exhausted, or a 4xx that retrying cannot fix).
    Failed,
}

/// Per-sink delivery counters: sent, retried, failed.
#[derive(Default)]
pub struct SinkStats {
    by_sink: Mutex<Vec<(&'static str, [u64; 3])>>,
}

impl SinkStats {
    pub fn record(&self, sink: &'static str, outcome: SinkOutcome) {
        let mut v = lock(&self.by_sink);
        let i = match v.iter().position(|(n, _)| *n == sink) {
            Some(i) => i,
            None => {
                v.push((sink, [0; 3]));
                v.len() - 1
            }
        };
        v[i].1[outcome as usize] += 1;
    }

    /// (sink, [sent, retried, failed]), in first-seen order.
    pub fn snapshot(&self) -> Vec<(&'static str, [u64; 3])> {
        lock(&self.by_sink).clone()
    }

    pub fn get(&self, sink: &str, outcome: SinkOutcome) -> u64 {
        self.snapshot()
            .iter()
            .find(|(n, _)| *n == sink)
            .map_or(0, |(_, c)| c[outcome as usize])
    }
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Cache hits over lookups of the LLM's answer cache; `None` before the
    /// first lookup (and always when no LLM is configured).
    pub fn llm_cache_hit_rate(&self) -> Option<f64> {
        let hits = self.llm_cache_hits.load(Ordering::Relaxed);
        let lookups = hits + self.llm_cache_misses.load(Ordering::Relaxed);
        (lookups > 0).then(|| hits as f64 / lookups as f64)
    }
}

/// Where a watch stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// First LIST not finished yet.
    Listing,
    /// Watching (or resuming a watch that ended normally).
    Streaming,
    /// Waiting to retry after a failure.
    Retrying,
}

impl Phase {
    /// The name `/health` shows under `streams[].phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Listing => "listing",
            Phase::Streaming => "streaming",
            Phase::Retrying => "retrying",
        }
    }
}

/// The OpsCtrl backend's registration, for `/health` and the logs. Its
/// `Display` is the status line (`pending: claim at <url>`, `registered`…).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BackendStatus {
    /// Not configured.
    #[default]
    Off,
    /// The cluster id is not known yet.
    Starting,
    /// Not registered, and the last attempt failed (retrying).
    Failing(String),
    /// Waiting for the user to claim the cluster; `note` says more when the
    /// check itself had trouble.
    Pending {
        claim_url: String,
        note: Option<String>,
    },
    /// Registered; `tokens` says whether reports can be sent, `problem` why
    /// not (or why refreshing fails).
    Registered {
        tokens: bool,
        problem: Option<String>,
    },
}

impl BackendStatus {
    /// The state alone, without details: `off`, `starting`, `error`,
    /// `pending` or `registered`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendStatus::Off => "off",
            BackendStatus::Starting => "starting",
            BackendStatus::Failing(_) => "error",
            BackendStatus::Pending { .. } => "pending",
            BackendStatus::Registered { .. } => "registered",
        }
    }

    /// The URL where the user claims the cluster, while that is awaited.
    pub fn claim_url(&self) -> Option<&str> {
        match self {
            BackendStatus::Pending { claim_url, .. } => Some(claim_url),
            _ => None,
        }
    }
}

impl std::fmt::Display for BackendStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendStatus::Off | BackendStatus::Starting => f.write_str(self.as_str()),
            BackendStatus::Failing(why) => write!(f, "error: {why}"),
            BackendStatus::Pending { claim_url, note } => {
                write!(f, "pending: claim at {claim_url}")?;
                match note {
                    Some(n) => write!(f, " ({n})"),
                    None => Ok(()),
                }
            }
            BackendStatus::Registered {
                tokens: true,
                problem: None,
            } => f.write_str("registered"),
            BackendStatus::Registered {
                tokens: true,
                problem: Some(p),
            } => write!(f, "registered (token refresh failing: {p})"),
            BackendStatus::Registered {
                tokens: false,
                problem,
            } => write!(
                f,
                "registered, no tokens yet: {}",
                problem.as_deref().unwrap_or("fetching")
            ),
        }
    }
}

#[derive(Clone, Debug)]
pub struct StreamState {
    /// `all namespaces` or `namespace shop`.
    pub name: String,
    pub namespace: Option<String>,
    pub phase: Phase,
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// Unix seconds of the last successful LIST or WATCH response.
    pub last_success: Option<i64>,
    /// The delay before the next retry, when retrying.
    pub backoff_ms: u64,
}

pub struct Metrics {
    pub counters: Counters,
    pub watchdog: Watchdog,
    pub sinks: SinkStats,
    /// The OpsCtrl backend registration, for /health.
    backend_status: Mutex<BackendStatus>,
    streams: Mutex<Vec<StreamState>>,
    /// `RECONNECTION_MAX_FAILURES`: consecutive failures that make a stream unhealthy.
    max_failures: u32,
    /// `HEALTH_SHOW_CLAIM_URL`.
    claim_url_shown: AtomicBool,
    pub started: i64,
}

impl Metrics {
    pub fn new(stream_names: &[(String, Option<String>)], max_failures: u32) -> Metrics {
        Metrics {
            counters: Counters::default(),
            watchdog: Watchdog::new(),
            sinks: SinkStats::default(),
            backend_status: Mutex::new(BackendStatus::Off),
            streams: Mutex::new(
                stream_names
                    .iter()
                    .map(|(name, ns)| StreamState {
                        name: name.clone(),
                        namespace: ns.clone(),
                        phase: Phase::Listing,
                        consecutive_failures: 0,
                        last_error: None,
                        last_success: None,
                        backoff_ms: 0,
                    })
                    .collect(),
            ),
            max_failures,
            claim_url_shown: AtomicBool::new(false),
            started: unix_now(),
        }
    }

    pub fn backend_status(&self) -> BackendStatus {
        lock(&self.backend_status).clone()
    }

    pub fn set_backend_status(&self, status: BackendStatus) {
        *lock(&self.backend_status) = status;
    }

    pub fn streams(&self) -> Vec<StreamState> {
        lock(&self.streams).clone()
    }

    /// Whether /health may show the pending claim URL (`HEALTH_SHOW_CLAIM_URL`).
    pub fn show_claim_url(&self, on: bool) {
        self.claim_url_shown.store(on, Ordering::Relaxed);
    }

    pub fn claim_url_shown(&self) -> bool {
        self.claim_url_shown.load(Ordering::Relaxed)
    }

    /// Updates stream `i` in place.
    pub fn update_stream(&self, i: usize, f: impl FnOnce(&mut StreamState)) {
        if let Some(st) = lock(&self.streams).get_mut(i) {
            f(st);
        }
    }

    /// `Ok` when every stream has listed and is streaming; else why not.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let reasons: Vec<String> = self
            .streams()
            .iter()
            .filter(|s| s.phase != Phase::Streaming)
            .map(|s| match s.phase {
                Phase::Listing => format!("{}: initial list not finished", s.name),
                _ => format!(
                    "{}: retrying after {} failure(s): {}",
                    s.name,
                    s.consecutive_failures,
                    s.last_error.as_deref().unwrap_or("unknown error")
                ),
            })
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// A stream is unhealthy after `RECONNECTION_MAX_FAILURES` failures in a row.
    pub fn is_unhealthy(&self, s: &StreamState) -> bool {
        s.consecutive_failures >= self.max_failures
    }

    pub fn healthy(&self) -> bool {
        self.streams().iter().all(|s| !self.is_unhealthy(s))
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let c = &self.counters;
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric(
            "opsctrl_watch_events_processed_total",
            "counter",
            "Watch events and listed pods applied to the pod store.",
            get(&c.events_processed),
        );
        metric(
            "opsctrl_watch_malformed_lines_total",
            "counter",
            "Watch stream lines that could not be decoded.",
            get(&c.malformed_lines),
        );
        metric(
            "opsctrl_watch_invalid_utf8_lines_total",
            "counter",
            "Watch stream lines that were not UTF-8, decoded with U+FFFD in place of the bad bytes.",
            get(&c.invalid_utf8_lines),
        );
        metric(
            "opsctrl_watch_idle_timeouts_total",
            "counter",
            "Watches closed because no event or bookmark arrived for WATCH_IDLE_TIMEOUT_SECONDS.",
            get(&c.watch_idle_timeouts),
        );
        metric(
            "opsctrl_watch_bookmarks_total",
            "counter",
            "BOOKMARK events received.",
            get(&c.bookmarks),
        );
        metric(
            "opsctrl_watch_restarts_total",
            "counter",
            "WATCH requests reopened after a stream's first (resumes and retries).",
            get(&c.watch_restarts),
        );
        metric(
            "opsctrl_watch_relists_total",
            "counter",
            "LISTs repeated after a 410 Gone.",
            get(&c.relists),
        );
        metric(
            "opsctrl_api_list_requests_total",
            "counter",
            "LIST page requests sent to the API server.",
            get(&c.list_requests),
        );
        metric(
            "opsctrl_api_watch_requests_total",
            "counter",
            "WATCH requests sent to the API server.",
            get(&c.watch_requests),
        );
        metric(
            "opsctrl_api_errors_total",
            "counter",
            "Failed LIST or WATCH attempts.",
            get(&c.api_errors),
        );
        metric(
            "opsctrl_incident_transitions_total",
            "counter",
            "Incident transitions emitted (open, updated, resolved).",
            get(&c.incident_transitions),
        );
        metric(
            "opsctrl_incidents_opened_total",
            "counter",
            "Incidents opened since start.",
            get(&c.incidents_opened),
        );
        metric(
            "opsctrl_incidents_open",
            "gauge",
            "Incidents open now.",
            get(&c.incidents_open),
        );
        metric(
            "opsctrl_incidents_silenced",
            "gauge",
            "Open incidents whose notification a silence holds back now.",
            get(&c.incidents_silenced),
        );
        metric(
            "opsctrl_pods_tracked",
            "gauge",
            "Pods currently in the daemon's store.",
            get(&c.pods_tracked),
        );
        for (name, help, v) in [
            (
                "opsctrl_alert_queue_depth",
                "Notifications waiting for a delivery worker.",
                &c.alert_queue_depth,
            ),
            (
                "opsctrl_leader",
                "1 while this replica may send notifications (holds the Lease, or leader election is off).",
                &c.leader,
            ),
            (
                "opsctrl_llm_cache_entries",
                "LLM answers held in the cache.",
                &c.llm_cache_entries,
            ),
        ] {
            metric(name, "gauge", help, get(v));
        }
        for (name, help, v) in [
            (
                "opsctrl_alerts_dropped_total",
                "Notifications dropped from a full queue (the oldest of the lowest severity).",
                &c.alerts_dropped,
            ),
            (
                "opsctrl_alerts_abandoned_total",
                "Notifications still queued when the shutdown drain ran out.",
                &c.alerts_abandoned,
            ),
            (
                "opsctrl_notifications_silenced_total",
                "Notifications held back by a silence (the opsctrl.dev/silence-until annotation or SILENCES_FILE).",
                &c.notifications_silenced,
            ),
            (
                "opsctrl_enrich_events_total",
                "Event lists fetched to enrich an incident.",
                &c.enrich_events,
            ),
            (
                "opsctrl_enrich_events_failed_total",
                "Event lists that could not be fetched (the diagnosis went on without).",
                &c.enrich_events_failed,
            ),
            (
                "opsctrl_enrich_logs_total",
                "Previous-container logs read to enrich an incident.",
                &c.enrich_logs,
            ),
            (
                "opsctrl_enrich_logs_failed_total",
                "Log reads that failed (the diagnosis went on without).",
                &c.enrich_logs_failed,
            ),
            (
                "opsctrl_llm_requests_total",
                "Requests sent to the LLM.",
                &c.llm_requests,
            ),
            (
                "opsctrl_llm_failures_total",
                "LLM requests that failed or timed out (the rules' diagnosis stood).",
                &c.llm_failures,
            ),
            (
                "opsctrl_llm_cache_hits_total",
                "LLM answers reused from the cache.",
                &c.llm_cache_hits,
            ),
            (
                "opsctrl_llm_cache_misses_total",
                "LLM cache lookups that found nothing fresh.",
                &c.llm_cache_misses,
            ),
            (
                "opsctrl_backend_reports_total",
                "analyze-stack reports sent to the OpsCtrl backend.",
                &c.backend_reports,
            ),
            (
                "opsctrl_backend_failures_total",
                "OpsCtrl backend calls that failed.",
                &c.backend_failures,
            ),
            (
                "opsctrl_leader_acquired_total",
                "Times this replica became the leader.",
                &c.leader_acquired,
            ),
            (
                "opsctrl_records_dropped_total",
                "Incident records not printed because stdout was not draining.",
                &c.records_dropped,
            ),
        ] {
            metric(name, "counter", help, get(v));
        }
        let sinks = self.sinks.snapshot();
        for (i, (name, help)) in [
            (
                "opsctrl_alerts_sent_total",
                "Notifications delivered, per sink.",
            ),
            (
                "opsctrl_alerts_retried_total",
                "Delivery attempts that failed and were retried, per sink.",
            ),
            (
                "opsctrl_alerts_failed_total",
                "Notifications given up on, per sink.",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (sink, counts) in &sinks {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {}", counts[i]);
            }
        }
        let streams = self.streams();
        let _ = writeln!(
            out,
            "# HELP opsctrl_watch_stream_ready 1 when the stream has listed and is watching.\n# TYPE opsctrl_watch_stream_ready gauge"
        );
        for s in &streams {
            let _ = writeln!(
                out,
                "opsctrl_watch_stream_ready{{stream=\"{}\"}} {}",
                escape_label(&s.name),
                u8::from(s.phase == Phase::Streaming)
            );
        }
        let _ = writeln!(
            out,
            "# HELP opsctrl_watch_stream_consecutive_failures Failures in a row of each stream.\n# TYPE opsctrl_watch_stream_consecutive_failures gauge"
        );
        for s in &streams {
            let _ = writeln!(
                out,
                "opsctrl_watch_stream_consecutive_failures{{stream=\"{}\"}} {}",
                escape_label(&s.name),
                s.consecutive_failures
            );
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Metrics {
        Metrics::new(
            &[
                ("namespace a".into(), Some("a".into())),
                ("namespace b".into(), Some("b".into())),
            ],
            3,
        )
    }

    #[test]
    fn ready_only_when_every_stream_streams() {
        let m = two();
        assert_eq!(m.readiness().unwrap_err().len(), 2);
        m.update_stream(0, |s| s.phase = Phase::Streaming);
        let why = m.readiness().unwrap_err();
        assert_eq!(why, ["namespace b: initial list not finished"]);
        m.update_stream(1, |s| {
            s.phase = Phase::Retrying;
            s.consecutive_failures = 2;
            s.last_error = Some("500 Internal Server Error".into());
        });
        assert_eq!(
            m.readiness().unwrap_err(),
            ["namespace b: retrying after 2 failure(s): 500 Internal Server Error"]
        );
        m.update_stream(1, |s| s.phase = Phase::Streaming);
        assert!(m.readiness().is_ok());
    }

    #[test]
    fn unhealthy_after_max_failures_in_a_row() {
        let m = two();
        assert!(m.healthy());
        m.update_stream(1, |s| s.consecutive_failures = 3);
        assert!(!m.healthy());
    }

    #[test]
    fn prometheus_text_has_help_type_and_values() {
        let m = two();
        Counters::inc(&m.counters.relists);
        m.update_stream(0, |s| s.phase = Phase::Streaming);
        let text = m.render_prometheus();
        assert!(text.contains(
            "# TYPE opsctrl_watch_relists_total counter\nopsctrl_watch_relists_total 1\n"
        ));
        assert!(text.contains("opsctrl_watch_stream_ready{stream=\"namespace a\"} 1\n"));
        assert!(text.contains("opsctrl_watch_stream_ready{stream=\"namespace b\"} 0\n"));
        for line in text.lines() {
            let value = line.rsplit_once(' ').map(|(_, v)| v.parse::<f64>());
            assert!(
                line.starts_with('#') || matches!(value, Some(Ok(_))),
                "{line}"
            );
        }
    }
}
