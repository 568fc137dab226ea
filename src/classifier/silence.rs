/*!
Silences applied to the notifications the engine releases, on the
classification thread (no I/O: the store, the namespaces' annotations, the
`SILENCES_FILE` entries and the clock).

A silenced notification is counted and held back: its incident is still
printed, counted and in `/health`, only the sinks do not hear of it. When the
silence ends (the time passes, the annotation is removed) and the incident
is still open, one notification with its current state goes out at the next
tick. An incident resolved while silenced, that the sinks never heard of,
stays unheard of; the resolution of one they did hear of goes out, so a
thread they were told about is closed.
*/

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::kube::store::Store;
use crate::model::{Cause, Incident, Notification, SilenceUntil, State};
use crate::routing::{Facts, SILENCE_ANNOTATION, Silences};
use crate::util::time::format_millis;

#[derive(Default)]
pub struct Silencer {
    file: Silences,
    /// Namespaces annotated `opsctrl.dev/silence-until`.
    namespaces: HashMap<Box<str>, SilenceUntil>,
    /// Incidents with a notification held back, waiting for their silence to end.
    held: BTreeSet<u64>,
    /// Incidents the pool was handed a notification for, not yet resolved.
    told: HashSet<u64>,
    /// Incidents silenced before the pool heard of them, and not since: their
    /// resolution is not news either.
    unheard: HashSet<u64>,
}

/// What a step of the silencer gives: what goes on to the pool, and how
/// many notifications (one per incident) were held back.
#[derive(Default)]
pub struct Filtered {
    pub notifications: Vec<Notification>,
    pub silenced: u64,
}

impl Silencer {
    pub fn new(file: Silences) -> Silencer {
        Silencer {
            file,
            ..Silencer::default()
        }
    }

    /// A namespace's annotation, as listed or watched (`None`: not annotated, or deleted).
    pub fn set_namespace(&mut self, name: &str, until: Option<SilenceUntil>) {
        match until {
            Some(u) => {
                self.namespaces.insert(name.into(), u);
            }
            None => {
                self.namespaces.remove(name);
            }
        }
    }

    /// A fresh namespace list: these are all the annotated ones.
    pub fn set_namespaces(&mut self, all: HashMap<Box<str>, SilenceUntil>) {
        self.namespaces = all;
    }

    /// Why `i` is silenced at `now_ms`, for the log line; `None` when it is
    /// not. With `warn`, an annotation that is not a time is logged.
    pub fn why(
        &self,
        store: &Store,
        i: &Incident,
        cause: Option<Cause>,
        now_ms: i64,
        warn: bool,
    ) -> Option<String> {
        let mut invalid = Vec::new();
        for pod in &i.pods {
            let Some(p) = store.get(&format!("{}/{pod}", i.namespace)) else {
                continue;
            };
            match p.silence_until {
                Some(SilenceUntil::At(t)) if now_ms < t => {
                    return Some(format!(
                        "pod {pod} {SILENCE_ANNOTATION} until {}",
                        format_millis(t)
                    ));
                }
                Some(SilenceUntil::Invalid) => invalid.push(format!("pod {pod}")),
                _ => {}
            }
        }
        match self.namespaces.get(i.namespace.as_str()) {
            Some(SilenceUntil::At(t)) if now_ms < *t => {
                return Some(format!(
                    "namespace {} {SILENCE_ANNOTATION} until {}",
                    i.namespace,
                    format_millis(*t)
                ));
            }
            Some(SilenceUntil::Invalid) => invalid.push(format!("namespace {}", i.namespace)),
            _ => {}
        }
        for what in invalid.iter().filter(|_| warn) {
            log::warn!(
                "{what}: {SILENCE_ANNOTATION} is not an RFC 3339 time (such as 2026-12-03T02:00:00Z): not silenced"
            );
        }
        if self.file.is_empty() {
            return None;
        }
        let labels = store
            .get(&format!("{}/{}", i.namespace, i.finding.pod))
            .map_or(&[][..], |p| &p.labels);
        let s = Facts {
            namespace: &i.namespace,
            severity: i.severity(),
            kind: i.kind(),
            cause,
            workload_kind: &i.workload.kind,
            workload_name: &i.workload.name,
            labels,
        };
        self.file.active(&s, now_ms).map(|x| {
            format!(
                "SILENCES_FILE silence {} ({:?}) until {}",
                x.number,
                x.comment,
                format_millis(x.ends_ms)
            )
        })
    }

    /// Holds back what is silenced; passes the rest on.
    pub fn filter(
        &mut self,
        notifications: Vec<Notification>,
        store: &Store,
        cause_of: &dyn Fn(u64) -> Option<Cause>,
        now_ms: i64,
    ) -> Filtered {
        let mut out = Filtered::default();
        for n in notifications {
            match n {
                Notification::Single { incident, reminder } => {
                    if self.keep(&incident, store, cause_of, now_ms, &mut out.silenced) {
                        out.notifications
                            .push(Notification::Single { incident, reminder });
                    }
                }
                Notification::StartupSummary { incidents } => {
                    let incidents = self.keep_all(incidents, store, cause_of, now_ms, &mut out);
                    if !incidents.is_empty() {
                        out.notifications
                            .push(Notification::StartupSummary { incidents });
                    }
                }
                Notification::Storm { shared, incidents } => {
                    let incidents = self.keep_all(incidents, store, cause_of, now_ms, &mut out);
                    if !incidents.is_empty() {
                        out.notifications
                            .push(Notification::Storm { shared, incidents });
                    }
                }
            }
        }
        out
    }

    fn keep_all(
        &mut self,
        incidents: Vec<Incident>,
        store: &Store,
        cause_of: &dyn Fn(u64) -> Option<Cause>,
        now_ms: i64,
        out: &mut Filtered,
    ) -> Vec<Incident> {
        incidents
            .into_iter()
            .filter(|i| self.keep(i, store, cause_of, now_ms, &mut out.silenced))
            .collect()
    }

    /// Whether the sinks get this incident's notification now.
    fn keep(
        &mut self,
        i: &Incident,
        store: &Store,
        cause_of: &dyn Fn(u64) -> Option<Cause>,
        now_ms: i64,
        silenced: &mut u64,
    ) -> bool {
        let resolved = i.state == State::Resolved;
        if resolved {
            self.held.remove(&i.id);
            self.told.remove(&i.id);
            if self.unheard.remove(&i.id) {
                log::info!("incident id={} resolved while silenced: not notified", i.id);
                return false;
            }
            return true;
        }
        match self.why(store, i, cause_of(i.id), now_ms, true) {
            Some(why) => {
                log::info!(
                    "notification silenced ({why}): {} {}/{}/{} id={}",
                    i.kind(),
                    i.namespace,
                    i.workload.kind,
                    i.workload.name,
                    i.id
                );
                self.held.insert(i.id);
                if !self.told.contains(&i.id) {
                    self.unheard.insert(i.id);
                }
                *silenced += 1;
                false
            }
            None => {
                self.held.remove(&i.id);
                self.unheard.remove(&i.id);
                self.told.insert(i.id);
                true
            }
        }
    }

    /// At a tick: incidents whose silence is over and that are still open
    /// are notified now (as new, when the sinks never heard of them).
    pub fn release(
        &mut self,
        open: &dyn Fn(u64) -> Option<Incident>,
        store: &Store,
        cause_of: &dyn Fn(u64) -> Option<Cause>,
        now_ms: i64,
    ) -> Vec<Notification> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in self.held.clone() {
            let Some(mut incident) = open(id) else {
                // Resolved or resolving: its resolution decides.
                self.held.remove(&id);
                continue;
            };
            if self
                .why(store, &incident, cause_of(id), now_ms, false)
                .is_some()
            {
                continue;
            }
            self.held.remove(&id);
            self.unheard.remove(&id);
            if self.told.insert(id) {
                incident.state = State::Open;
            }
            log::info!("silence over: notifying incident id={id}");
            out.push(Notification::Single {
                incident,
                reminder: false,
            });
        }
        out
    }

    /// Incidents held back now (tests, metrics).
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
