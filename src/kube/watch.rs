/*!
The list+watch engine (a reflector), one blocking thread per stream.

The protocol is an explicit state machine with a pure transition, `step`:
it gets the outcome of the last request and returns the next state and how
long to wait. The reader loop (`Stream::run`) performs the request each state
asks for and sends what it read down the channel to the classification
thread, which owns the pod store.

- LIST pages with `limit` + `continue`, then WATCH from the list's
  `resourceVersion` with bookmarks and a jittered `timeoutSeconds`.
- A watch the server ends normally resumes from the last seen
  resourceVersion (bookmarks advance it): no relist.
- 410 Gone (HTTP, an `ERROR` event, or an expired continue token) relists;
  the store turns the new list into updates and deletions.
- Anything else is retried with backoff, forever unless
  `RECONNECTION_ENABLED=false`. A malformed line is counted and the watch is
  reopened from the last good resourceVersion, so the event it carried is
  sent again rather than lost.
*/

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use super::client::{Client, Error};
use super::node_types::{Node, decode_node_watch_line};
use super::store::{Event, StreamId};
use super::types::{
    DecodeError, ListMeta, NamespaceRecord, Pod, PodRecord, WatchEvent, decode_watch_line,
};
use crate::metrics::{Counters, Metrics, Phase};
use crate::model::NodeRecord;
use crate::settings::Reconnect;
use crate::util::backoff::Backoff;
use crate::util::random::Rng;
use crate::util::time::unix_now;

/// A watch that lasted this long, or delivered anything, was productive.
const PRODUCTIVE_AFTER: Duration = Duration::from_secs(10);

/// Where the stream is in the list+watch protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Nothing listed: LIST from the first page next.
    Empty,
    /// In the middle of a LIST: fetch the page after this token.
    Listing { continue_token: String },
    /// Listed: (re)open a WATCH from this resourceVersion.
    Watching { resource_version: String },
}

/// What the last request came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A LIST page arrived (its pods were already sent).
    Page {
        resource_version: String,
        continue_token: Option<String>,
    },
    /// The server ended the watch normally.
    Closed {
        resource_version: String,
        productive: bool,
    },
    /// 410 Gone: the resourceVersion or continue token is too old.
    Gone,
    /// A retryable failure; `resource_version` is the last one seen, if any.
    Failed {
        error: String,
        retry_after: Option<Duration>,
        resource_version: Option<String>,
        productive: bool,
    },
}

#[derive(Debug, PartialEq)]
pub struct Step {
    pub next: State,
    /// Wait this long before the next request.
    pub wait: Option<Duration>,
    /// The LIST finished: the store should swap it in.
    pub list_done: bool,
}

/// The pure transition of the protocol.
pub fn step(state: State, outcome: Outcome, backoff: &mut Backoff) -> Step {
    let go = |next, wait| Step {
        next,
        wait,
        list_done: false,
    };
    match (state, outcome) {
        (_, Outcome::Gone) => {
            // Relist at once the first time; a second 410 before any
            // productive watch means something is off: back off.
            let wait = if backoff.failures() == 0 {
                backoff.bump();
                None
            } else {
                Some(backoff.next_delay(None))
            };
            go(State::Empty, wait)
        }
        (
            State::Empty | State::Listing { .. },
            Outcome::Page {
                continue_token: Some(t),
                ..
            },
        ) if !t.is_empty() => go(State::Listing { continue_token: t }, None),
        (
            State::Empty | State::Listing { .. },
            Outcome::Page {
                resource_version, ..
            },
        ) => Step {
            next: State::Watching { resource_version },
            wait: None,
            list_done: true,
        },
        (
            State::Watching { .. },
            Outcome::Closed {
                resource_version,
                productive,
            },
        ) => {
            let wait = if productive {
                backoff.reset();
                None
            } else {
                // Closed at once with nothing to show: do not spin.
                Some(backoff.next_delay(None))
            };
            go(State::Watching { resource_version }, wait)
        }
        (
            State::Watching { resource_version },
            Outcome::Failed {
                retry_after,
                resource_version: seen,
                productive,
                ..
            },
        ) => {
            if productive {
                backoff.reset();
            }
            let wait = backoff.next_delay(retry_after);
            go(
                State::Watching {
                    resource_version: seen.unwrap_or(resource_version),
                },
                Some(wait),
            )
        }
        // A failed page is retried with the same token; an expired token
        // comes back as Gone and restarts the list.
        (s @ (State::Empty | State::Listing { .. }), Outcome::Failed { retry_after, .. }) => {
            let wait = backoff.next_delay(retry_after);
            go(s, Some(wait))
        }
        // Outcomes that cannot follow these states: start over, safely.
        (State::Watching { .. }, Outcome::Page { .. })
        | (State::Empty | State::Listing { .. }, Outcome::Closed { .. }) => {
            go(State::Empty, Some(backoff.next_delay(None)))
        }
    }
}

/// What reader threads send to the classification thread.
#[derive(Debug)]
pub enum Msg {
    Store {
        stream: StreamId,
        event: Event,
    },
    /// From the namespace stream (for `opsctrl.dev/ignore` on namespaces).
    Namespaces {
        event: Event<NamespaceRecord>,
    },
    /// From the node stream.
    Nodes {
        event: Event<NodeRecord>,
    },
    /// A stream failed and reconnection is disabled: stop with exit 1.
    Fatal(String),
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// One LIST+WATCH stream: cluster-wide or one namespace.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub id: StreamId,
    /// For logs: `all namespaces` or `namespace shop`.
    pub name: String,
    /// `/api/v1/pods` or `/api/v1/namespaces/{ns}/pods`.
    pub path: String,
    pub field_selector: Option<String>,
    pub label_selector: Option<String>,
    pub page_size: u32,
    /// `timeoutSeconds` of each WATCH is jittered between this and twice it.
    pub watch_timeout_s: u64,
    /// A watch that delivers nothing (no event, no bookmark) this long is dead.
    pub watch_idle: Duration,
}

/// What a stream watches: how a LIST page decodes, what is kept per object,
/// and how its events travel. The protocol is the same for every kind.
pub trait Kind: Send + 'static {
    /// The wire form of one watched object (only the fields kept).
    type Object;
    type Record: Send + 'static;
    fn list(
        client: &Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(ListMeta, Vec<Self::Record>), Error>;
    fn decode(line: &[u8]) -> Result<WatchEvent<Self::Object>, DecodeError>;
    fn resource_version(object: &Self::Object) -> &str;
    /// The compact record of a decoded watch object.
    fn record(object: Self::Object) -> Self::Record;
    fn msg(stream: StreamId, event: Event<Self::Record>) -> Msg;
}

/// Pods: LIST pages decode straight into compact records.
pub struct Pods;

impl Kind for Pods {
    type Object = Pod;
    type Record = PodRecord;
    fn list(
        client: &Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(ListMeta, Vec<PodRecord>), Error> {
        client.list_pods(path, query).map(|l| (l.metadata, l.items))
    }
    fn decode(line: &[u8]) -> Result<WatchEvent<Pod>, DecodeError> {
        decode_watch_line(line)
    }
    fn resource_version(object: &Pod) -> &str {
        &object.metadata.resource_version
    }
    fn record(object: Pod) -> PodRecord {
        PodRecord::from(object)
    }
    fn msg(stream: StreamId, event: Event<PodRecord>) -> Msg {
        Msg::Store { stream, event }
    }
}

/// Namespaces: only their name and ignore annotation.
pub struct Namespaces;

impl Kind for Namespaces {
    type Object = Pod;
    type Record = NamespaceRecord;
    fn list(
        client: &Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(ListMeta, Vec<NamespaceRecord>), Error> {
        client.list_objects(path, query).map(|l| {
            let items = l.items.into_iter().map(NamespaceRecord::from).collect();
            (l.metadata, items)
        })
    }
    fn decode(line: &[u8]) -> Result<WatchEvent<Pod>, DecodeError> {
        decode_watch_line(line)
    }
    fn resource_version(object: &Pod) -> &str {
        &object.metadata.resource_version
    }
    fn record(object: Pod) -> NamespaceRecord {
        NamespaceRecord::from(object)
    }
    fn msg(_: StreamId, event: Event<NamespaceRecord>) -> Msg {
        Msg::Namespaces { event }
    }
}

/// Nodes: conditions, cordon, taints, allocatable; never their images.
pub struct Nodes;

impl Kind for Nodes {
    type Object = Node;
    type Record = NodeRecord;
    fn list(
        client: &Client,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(ListMeta, Vec<NodeRecord>), Error> {
        client.list_nodes(path, query).map(|l| {
            let items = l.items.into_iter().map(NodeRecord::from).collect();
            (l.metadata, items)
        })
    }
    fn decode(line: &[u8]) -> Result<WatchEvent<Node>, DecodeError> {
        decode_node_watch_line(line)
    }
    fn resource_version(object: &Node) -> &str {
        &object.metadata.resource_version
    }
    fn record(object: Node) -> NodeRecord {
        NodeRecord::from(object)
    }
    fn msg(_: StreamId, event: Event<NodeRecord>) -> Msg {
        Msg::Nodes { event }
    }
}

pub struct Stream<K: Kind = Pods> {
    pub kind: PhantomData<K>,
    pub spec: StreamSpec,
    pub client: Client,
    pub tx: SyncSender<Msg>,
    pub metrics: Arc<Metrics>,
    pub reconnect: Reconnect,
    pub shutdown: Arc<AtomicBool>,
}

/// What every stream shares with the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    pub client: Client,
    pub tx: SyncSender<Msg>,
    pub metrics: Arc<Metrics>,
    pub reconnect: Reconnect,
    pub shutdown: Arc<AtomicBool>,
}

impl<K: Kind> Stream<K> {
    pub fn new(spec: StreamSpec, shared: Shared) -> Stream<K> {
        Stream {
            kind: PhantomData,
            spec,
            client: shared.client,
            tx: shared.tx,
            metrics: shared.metrics,
            reconnect: shared.reconnect,
            shutdown: shared.shutdown,
        }
    }

    /// Runs the stream on its own (small-stacked) thread.
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(format!("watch-{}", self.spec.id))
            .stack_size(256 * 1024)
            .spawn(move || self.run())
            .map(drop)
    }

    fn selectors(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(f) = &self.spec.field_selector {
            q.push(("fieldSelector", f.clone()));
        }
        if let Some(l) = &self.spec.label_selector {
            q.push(("labelSelector", l.clone()));
        }
        q
    }

    fn send(&self, event: Event<K::Record>) -> bool {
        self.tx.send(K::msg(self.spec.id, event)).is_ok()
    }

    fn counters(&self) -> &Counters {
        &self.metrics.counters
    }

    /// Runs the stream until shutdown (or a failure, when reconnection is off).
    pub fn run(self) {
        let r = &self.reconnect;
        let rng = Rng::seeded(u64::from(self.spec.id));
        let mut backoff = Backoff::new(r.initial, r.max, r.multiplier, rng);
        let mut state = State::Empty;
        let mut gone = false;
        let mut watches = 0u64;
        let mut failures = 0u32;
        // The continue tokens of the LIST in progress, to catch a repeat.
        let mut tokens: HashSet<String> = HashSet::new();
        while !self.shutdown.load(Ordering::Relaxed) {
            let outcome = match &state {
                State::Empty | State::Listing { .. } => {
                    let token = match &state {
                        State::Listing { continue_token } => Some(continue_token.as_str()),
                        _ => None,
                    };
                    if token.is_none() {
                        if std::mem::take(&mut gone) {
                            Counters::inc(&self.counters().relists);
                            log::info!("relisting stream={} after 410 Gone", self.spec.name);
                        }
                        if !self.send(Event::Init) {
                            return;
                        }
                    }
                    self.list_page(token)
                }
                State::Watching { resource_version } => {
                    if watches > 0 {
                        Counters::inc(&self.counters().watch_restarts);
                    }
                    watches += 1;
                    let low = self.spec.watch_timeout_s;
                    let timeout = backoff.between(low, low.saturating_mul(2));
                    self.watch(resource_version, timeout, &mut failures)
                }
            };
            let (current, outcome) = repeated_token(state, outcome, &mut tokens);
            state = current;
            gone |= outcome == Outcome::Gone;
            let failed = match &outcome {
                Outcome::Failed { error, .. } => Some(error.clone()),
                // A watch the server ends at once with nothing delivered is
                // a failure too, or a flapping server would look healthy.
                Outcome::Closed {
                    productive: false, ..
                } => Some("watch ended at once without an event or bookmark".to_string()),
                _ => None,
            };
            let step = step(state, outcome, &mut backoff);
            if step.list_done {
                if !self.send(Event::InitDone) {
                    return;
                }
                // A whole LIST is proof the API works; a watch that then
                // breaks at once starts counting again from here.
                failures = 0;
                self.metrics.update_stream(self.spec.id as usize, |s| {
                    s.consecutive_failures = 0;
                    s.last_success = Some(unix_now());
                });
            }
            if let Some(error) = failed {
                Counters::inc(&self.counters().api_errors);
                failures += 1;
                if !self.reconnect.enabled {
                    let _ = self.tx.send(Msg::Fatal(format!(
                        "watch of {} failed and RECONNECTION_ENABLED=false: {error}",
                        self.spec.name
                    )));
                    return;
                }
                self.note_failure(&error, failures, step.wait);
            }
            state = step.next;
            if let Some(wait) = step.wait {
                self.sleep(wait);
            }
        }
    }

    fn note_failure(&self, error: &str, failures: u32, wait: Option<Duration>) {
        let wait_ms = wait.map_or(0, |w| w.as_millis() as u64);
        self.metrics.update_stream(self.spec.id as usize, |s| {
            s.phase = Phase::Retrying;
            s.consecutive_failures = failures;
            s.last_error = Some(error.to_string());
            s.backoff_ms = wait_ms;
        });
        let name = &self.spec.name;
        if failures == self.reconnect.max_failures {
            log::error!(
                "watch unhealthy stream={name} failures={failures}: {error}; still retrying (next in {wait_ms} ms)"
            );
        } else if failures > 1 || error.contains("403") {
            log::warn!(
                "watch failed stream={name} failures={failures} retry_in_ms={wait_ms}: {error}"
            );
        } else {
            log::info!("watch failed stream={name} retry_in_ms={wait_ms}: {error}");
        }
    }

    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.shutdown.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(100)));
        }
    }

    fn failed(error: &Error, resource_version: Option<String>, productive: bool) -> Outcome {
        if error.is_gone() {
            return Outcome::Gone;
        }
        let mut text = error.to_string();
        if error.code() == Some(403) {
            text.push_str(" (RBAC: run `opsctrl-daemon check` to see which permission is missing)");
        }
        Outcome::Failed {
            error: text,
            retry_after: error.retry_after(),
            resource_version,
            productive,
        }
    }

    fn list_page(&self, continue_token: Option<&str>) -> Outcome {
        let limit = self.spec.page_size.to_string();
        let sel = self.selectors();
        let mut query: Vec<(&str, &str)> = vec![("limit", &limit)];
        if let Some(t) = continue_token {
            query.push(("continue", t));
        }
        query.extend(sel.iter().map(|(k, v)| (*k, v.as_str())));
        Counters::inc(&self.counters().list_requests);
        let (metadata, items) = match K::list(&self.client, &self.spec.path, &query) {
            Ok(l) => l,
            Err(e) => return Self::failed(&e, None, false),
        };
        log::debug!(
            "listed stream={} objects={} rv={} more={}",
            self.spec.name,
            items.len(),
            metadata.resource_version,
            metadata
                .continue_token
                .as_deref()
                .is_some_and(|t| !t.is_empty())
        );
        if metadata.resource_version.is_empty() {
            return Outcome::Failed {
                error: "LIST answer has no resourceVersion".into(),
                retry_after: None,
                resource_version: None,
                productive: false,
            };
        }
        if !self.send(Event::Page(items)) {
            return Outcome::Failed {
                error: "classification thread stopped".into(),
                retry_after: None,
                resource_version: None,
                productive: false,
            };
        }
        Outcome::Page {
            resource_version: metadata.resource_version,
            continue_token: metadata.continue_token,
        }
    }

    /// Opens a WATCH from `from` for `timeout` seconds and reads it to its end.
    fn watch(&self, from: &str, timeout: u64, failures: &mut u32) -> Outcome {
        let mut rv = from.to_string();
        let timeout_s = timeout.to_string();
        let sel = self.selectors();
        let mut query: Vec<(&str, &str)> = vec![
            ("watch", "true"),
            ("resourceVersion", from),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", &timeout_s),
        ];
        query.extend(sel.iter().map(|(k, v)| (*k, v.as_str())));
        Counters::inc(&self.counters().watch_requests);
        let started = Instant::now();
        // The server ends the watch after `timeout`; a stream alive much
        // longer than that is a dead connection nobody told us about.
        let idle = self.spec.watch_idle;
        let mut body = match self.client.watch(
            &self.spec.path,
            &query,
            Duration::from_secs(timeout + 30),
            idle,
        ) {
            Ok(b) => b,
            Err(e) => return Self::failed(&e, Some(rv), false),
        };
        self.metrics.update_stream(self.spec.id as usize, |s| {
            if s.phase != Phase::Streaming {
                log::info!("watch streaming stream={} rv={rv}", s.name);
            }
            s.phase = Phase::Streaming;
            s.backoff_ms = 0;
        });
        let mut events = 0u64;
        let mut line = Vec::with_capacity(16 * 1024);
        loop {
            let productive = events > 0 || started.elapsed() >= PRODUCTIVE_AFTER;
            match body.next_line(&mut line) {
                Ok(false) => {
                    log::debug!(
                        "watch ended stream={} rv={rv} events={events}",
                        self.spec.name
                    );
                    return Outcome::Closed {
                        resource_version: rv,
                        productive,
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    Counters::inc(&self.counters().watch_idle_timeouts);
                    return Outcome::Failed {
                        error: format!(
                            "no event or bookmark for {} s: watch presumed dead, resuming from rv {rv}",
                            idle.as_secs()
                        ),
                        retry_after: None,
                        resource_version: Some(rv),
                        productive,
                    };
                }
                Err(e) => {
                    return Outcome::Failed {
                        error: format!("watch stream broken: {e}"),
                        retry_after: None,
                        resource_version: Some(rv),
                        productive,
                    };
                }
                Ok(true) => {}
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if events == 0 {
                // Only a watch that delivers something proves the stream
                // works: one that opens and then breaks keeps counting.
                *failures = 0;
                self.metrics.update_stream(self.spec.id as usize, |s| {
                    s.consecutive_failures = 0;
                    s.last_success = Some(unix_now());
                });
            }
            // A line that is not UTF-8 would fail to decode every time the
            // watch is reopened at it: decode it lossily (U+FFFD) instead.
            if std::str::from_utf8(&line).is_err() {
                Counters::inc(&self.counters().invalid_utf8_lines);
                line = String::from_utf8_lossy(&line).into_owned().into_bytes();
            }
            let event = match K::decode(&line) {
                Ok(ev) => ev,
                Err(e) => {
                    Counters::inc(&self.counters().malformed_lines);
                    let shown: String = String::from_utf8_lossy(&line).chars().take(120).collect();
                    log::warn!(
                        "malformed watch line stream={} rv={rv}: {e}; reopening from the last good resourceVersion (line starts {shown:?})",
                        self.spec.name
                    );
                    return Outcome::Failed {
                        error: format!("malformed watch line: {e}"),
                        retry_after: None,
                        resource_version: Some(rv),
                        productive,
                    };
                }
            };
            events += 1;
            let sent = match event {
                WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                    rv = advance(rv, K::resource_version(&p));
                    self.send(Event::Apply(Box::new(K::record(p))))
                }
                WatchEvent::Deleted(p) => {
                    rv = advance(rv, K::resource_version(&p));
                    self.send(Event::Delete(Box::new(K::record(p))))
                }
                WatchEvent::Bookmark { resource_version } => {
                    Counters::inc(&self.counters().bookmarks);
                    rv = advance(rv, &resource_version);
                    true
                }
                WatchEvent::Error(status) if status.code == 410 => {
                    log::info!(
                        "watch expired stream={} rv={rv}: {} {}",
                        self.spec.name,
                        status.reason,
                        status.message
                    );
                    return Outcome::Gone;
                }
                WatchEvent::Error(status) => {
                    return Outcome::Failed {
                        error: format!(
                            "watch ERROR event {} {}: {}",
                            status.code, status.reason, status.message
                        ),
                        retry_after: None,
                        resource_version: Some(rv),
                        productive,
                    };
                }
            };
            if !sent {
                return Outcome::Failed {
                    error: "classification thread stopped".into(),
                    retry_after: None,
                    resource_version: Some(rv),
                    productive,
                };
            }
        }
    }
}

/// A LIST page whose continue token was already seen in this LIST would
/// make the list loop forever: it becomes a failure (with backoff), and the
/// list starts over (the state becomes `Empty`). `tokens` holds the tokens
/// of the LIST in progress.
pub fn repeated_token(
    state: State,
    outcome: Outcome,
    tokens: &mut HashSet<String>,
) -> (State, Outcome) {
    if matches!(state, State::Empty) {
        tokens.clear();
    }
    match outcome {
        Outcome::Page {
            continue_token: Some(t),
            ..
        } if !t.is_empty() && !tokens.insert(t.clone()) => {
            let pages = tokens.len() + 1;
            tokens.clear();
            let failed = Outcome::Failed {
                error: format!(
                    "LIST continue token repeated after {pages} page(s); starting the list over"
                ),
                retry_after: None,
                resource_version: None,
                productive: false,
            };
            (State::Empty, failed)
        }
        other => (state, other),
    }
}

/// resourceVersions are opaque; an empty one (never sent by a real server)
/// must not erase the last known one.
fn advance(current: String, seen: &str) -> String {
    if seen.is_empty() {
        current
    } else {
        seen.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            2.0,
            Rng::new(42),
        )
    }
    fn watching(rv: &str) -> State {
        State::Watching {
            resource_version: rv.into(),
        }
    }
    fn failed(rv: Option<&str>, productive: bool) -> Outcome {
        Outcome::Failed {
            error: "boom".into(),
            retry_after: None,
            resource_version: rv.map(Into::into),
            productive,
        }
    }

    #[test]
    fn list_pages_follow_the_continue_token_then_watch_from_the_list_rv() {
        let mut b = backoff();
        let s = step(
            State::Empty,
            Outcome::Page {
                resource_version: "10".into(),
                continue_token: Some("tok".into()),
            },
            &mut b,
        );
        assert_eq!(
            s,
            Step {
                next: State::Listing {
                    continue_token: "tok".into()
                },
                wait: None,
                list_done: false
            }
        );
        let s = step(
            s.next,
            Outcome::Page {
                resource_version: "10".into(),
                continue_token: None,
            },
            &mut b,
        );
        assert_eq!(
            s,
            Step {
                next: watching("10"),
                wait: None,
                list_done: true
            }
        );
    }

    #[test]
    fn an_empty_continue_token_ends_the_list() {
        let s = step(
            State::Empty,
            Outcome::Page {
                resource_version: "7".into(),
                continue_token: Some(String::new()),
            },
            &mut backoff(),
        );
        assert!(s.list_done);
        assert_eq!(s.next, watching("7"));
    }

    #[test]
    fn closed_stream_resumes_without_relist() {
        let s = step(
            watching("10"),
            Outcome::Closed {
                resource_version: "15".into(),
                productive: true,
            },
            &mut backoff(),
        );
        assert_eq!(s.next, watching("15"));
        assert_eq!(s.wait, None);
        assert!(!s.list_done);
    }

    #[test]
    fn a_watch_closed_at_once_with_nothing_backs_off() {
        let s = step(
            watching("10"),
            Outcome::Closed {
                resource_version: "10".into(),
                productive: false,
            },
            &mut backoff(),
        );
        assert_eq!(s.next, watching("10"));
        assert!(s.wait.is_some());
    }

    #[test]
    fn gone_relists_at_once_and_backs_off_if_it_repeats() {
        let mut b = backoff();
        let s = step(watching("10"), Outcome::Gone, &mut b);
        assert_eq!((s.next, s.wait), (State::Empty, None));
        let s = step(watching("11"), Outcome::Gone, &mut b);
        assert_eq!(s.next, State::Empty);
        assert!(s.wait.is_some());
        // An expired continue token also relists from scratch.
        let mut b = backoff();
        let s = step(
            State::Listing {
                continue_token: "old".into(),
            },
            Outcome::Gone,
            &mut b,
        );
        assert_eq!(s.next, State::Empty);
    }

    #[test]
    fn failures_resume_from_the_last_seen_rv_with_growing_backoff() {
        let mut b = backoff();
        let s1 = step(watching("10"), failed(Some("12"), false), &mut b);
        assert_eq!(s1.next, watching("12"));
        let s2 = step(watching("12"), failed(None, false), &mut b);
        assert_eq!(s2.next, watching("12"));
        assert!(s2.wait.unwrap() > Duration::from_millis(999));
        assert_eq!(b.failures(), 2);
    }

    #[test]
    fn a_productive_watch_resets_the_backoff_before_waiting() {
        let mut b = backoff();
        for _ in 0..5 {
            step(watching("1"), failed(None, false), &mut b);
        }
        let s = step(watching("1"), failed(Some("9"), true), &mut b);
        assert!(s.wait.unwrap() <= Duration::from_secs(1));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut b = backoff();
        let s = step(
            watching("1"),
            Outcome::Failed {
                error: "429".into(),
                retry_after: Some(Duration::from_secs(12)),
                resource_version: None,
                productive: false,
            },
            &mut b,
        );
        assert_eq!(s.wait, Some(Duration::from_secs(12)));
    }

    #[test]
    fn a_failed_page_is_retried_with_the_same_token() {
        let st = State::Listing {
            continue_token: "t2".into(),
        };
        let s = step(st.clone(), failed(None, false), &mut backoff());
        assert_eq!(s.next, st);
        assert!(s.wait.is_some());
        let s = step(State::Empty, failed(None, false), &mut backoff());
        assert_eq!(s.next, State::Empty);
    }

    #[test]
    fn a_continue_token_seen_before_in_the_list_fails_and_starts_over() {
        let page = |t: &str| Outcome::Page {
            resource_version: "5".into(),
            continue_token: Some(t.into()),
        };
        let listing = |t: &str| State::Listing {
            continue_token: t.into(),
        };
        let mut seen = HashSet::new();
        let (s, o) = repeated_token(State::Empty, page("a"), &mut seen);
        assert_eq!((s, o), (State::Empty, page("a")));
        let (s, o) = repeated_token(listing("a"), page("b"), &mut seen);
        assert_eq!((s, o), (listing("a"), page("b")));
        // b → a: a cycle of two pages.
        let (s, o) = repeated_token(listing("b"), page("a"), &mut seen);
        assert_eq!(s, State::Empty);
        assert!(matches!(o, Outcome::Failed { ref error, .. } if error.contains("repeated")));
        // A new list forgets the old tokens.
        let (_, o) = repeated_token(State::Empty, page("a"), &mut seen);
        assert_eq!(o, page("a"));
    }
}
