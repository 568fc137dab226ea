/*!
What the daemon knows about itself: counters (atomics, bumped from any
thread without locks) and the state of each watch stream (a small mutex,
written only on state changes, never per event). Rendered as Prometheus text
for `/metrics` and read by `/readyz` and `/health`.
*/

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::time::unix_now;

#[derive(Default)]
pub struct Counters {
    /// Watch events and listed pods applied to the store.
    pub events_processed: AtomicU64,
    /// Watch lines that could not be decoded.
    pub malformed_lines: AtomicU64,
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
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// First LIST not finished yet.
    Listing,
    /// Watching (or resuming a watch that ended normally).
    Streaming,
    /// Waiting to retry after a failure.
    Retrying,
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
    streams: Mutex<Vec<StreamState>>,
    /// `RECONNECTION_MAX_FAILURES`: consecutive failures that make a stream unhealthy.
    max_failures: u32,
    pub started: i64,
}

impl Metrics {
    pub fn new(stream_names: &[(String, Option<String>)], max_failures: u32) -> Metrics {
        Metrics {
            counters: Counters::default(),
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
            started: unix_now(),
        }
    }

    pub fn streams(&self) -> Vec<StreamState> {
        self.streams.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Updates stream `i` in place.
    pub fn update_stream(&self, i: usize, f: impl FnOnce(&mut StreamState)) {
        if let Ok(mut s) = self.streams.lock() {
            if let Some(st) = s.get_mut(i) {
                f(st);
            }
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
            "opsctrl_pods_tracked",
            "gauge",
            "Pods currently in the daemon's store.",
            get(&c.pods_tracked),
        );
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
