/*!
Leader election on a `coordination.k8s.io/v1` Lease, with client-go's
semantics, so several replicas can run and exactly one sends notifications.

- The Lease names its holder (`holderIdentity`, the pod name), how long a
  claim lasts (`leaseDurationSeconds`, 15), when it was taken (`acquireTime`)
  and last renewed (`renewTime`, a MicroTime), and how often it changed hands
  (`leaseTransitions`).
- Every write is conditional on the `metadata.resourceVersion` that was read
  (PUT), or is a create (POST) when there is no Lease yet. A 409 (Conflict, or
  AlreadyExists) means someone else wrote first: read again, never overwrite.
- A candidate takes the Lease over only when the record it observed has not
  changed for the record's own `leaseDurationSeconds`, measured on **its own
  monotonic clock since it first saw that record**. Remote timestamps are
  never compared with the local clock: the replicas' clocks may disagree.
- The leader renews every 5 s. If it cannot renew for `renew_deadline` (10 s,
  counted from when its last successful renewal was *sent*), it stops sending
  before anyone can take over: a standby sees the last renewal no earlier than
  it was sent, then waits 15 s.
- On shutdown the leader releases the Lease (empty holder, duration 1 s) so a
  standby takes over at its next poll instead of 15 s later; best effort.

The decisions are a pure state machine ([`Candidate`]: lease observed + our
state + the clock in, an [`Action`] out), tested with a fake clock. The
[`Elector`] thread only does the HTTP and publishes the outcome through a
[`Leadership`] handle, which the notification path checks before sending.
*/

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::kube::client::{Client, Error};
use crate::metrics::Metrics;
use crate::settings;
use crate::util::random::Rng;
use crate::util::time::{format_micros, now_micros};

// ---------------------------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------------------------

/// How long things take. `Timing::default()` is client-go's recommended
/// set, stretched to a 5 s renewal (the daemon is not latency-critical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// `leaseDurationSeconds` written on the Lease: how long a standby waits
    /// after the record last changed before it takes over.
    pub lease_duration: Duration,
    /// The leader stops acting as leader this long after its last successful
    /// renewal was sent. Must be shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How often a standby looks at the Lease, and how soon a failed attempt
    /// is retried (jittered up to +20%).
    pub retry_period: Duration,
    /// Bound on one Lease request, so a hung connection cannot hold up a
    /// step-down. Must be shorter than `renew_deadline`.
    pub request_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
            request_timeout: Duration::from_secs(4),
        }
    }
}

impl Timing {
    /// The orderings that make the election safe (see the module doc).
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration.as_secs() < 1 {
            return Err(
                "the lease duration must be at least 1 s (it is written in seconds)".into(),
            );
        }
        // The Lease carries whole seconds: that is what standbys wait for.
        let written = Duration::from_secs(self.lease_duration.as_secs());
        if self.renew_deadline >= written {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                self.renew_deadline, written
            ));
        }
        if self.renew_period >= self.renew_deadline {
            return Err(format!(
                "the renew period ({:?}) must be shorter than the renew deadline ({:?})",
                self.renew_period, self.renew_deadline
            ));
        }
        if self.request_timeout >= self.renew_deadline || self.request_timeout.is_zero() {
            return Err(format!(
                "the request timeout ({:?}) must be positive and shorter than the renew deadline ({:?})",
                self.request_timeout, self.renew_deadline
            ));
        }
        if self.retry_period.is_zero() || self.renew_period.is_zero() {
            return Err("the renew and retry periods must be positive".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The Lease record
// ---------------------------------------------------------------------------------------------

/// The part of a Lease's `spec` leader election uses. Unknown spec fields
/// (`strategy`, `preferredHolder`) are kept by the thread when it writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LeaseSpec {
    pub holder_identity: Option<String>,
    pub lease_duration_seconds: Option<i64>,
    pub acquire_time: Option<String>,
    pub renew_time: Option<String>,
    pub lease_transitions: Option<i64>,
}

impl LeaseSpec {
    /// The holder; empty when nobody holds it (never taken, or released).
    pub fn holder(&self) -> &str {
        self.holder_identity.as_deref().unwrap_or("")
    }
}

/// A Lease as read or written: its version and its spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    pub resource_version: String,
    pub spec: LeaseSpec,
}

impl Lease {
    /// Reads a Lease object as the API server returns it.
    pub fn from_object(v: &Value) -> Result<Lease, String> {
        let resource_version = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|rv| !rv.is_empty())
            .ok_or("the Lease has no metadata.resourceVersion")?
            .to_string();
        let spec = match v.get("spec") {
            None | Some(Value::Null) => LeaseSpec::default(),
            Some(s) => LeaseSpec::deserialize(s).map_err(|e| format!("bad Lease spec: {e}"))?,
        };
        Ok(Lease {
            resource_version,
            spec,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The pure state machine
// ---------------------------------------------------------------------------------------------

/// The clock, passed in: the monotonic instant for every decision, the wall
/// clock only for the timestamps written on the Lease.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    pub mono: Instant,
    pub unix_micros: i64,
}

impl Now {
    pub fn current() -> Now {
        Now {
            mono: Instant::now(),
            unix_micros: now_micros(),
        }
    }
}

/// What the last read found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Nothing read since the last decision.
    Unread,
    /// 404: there is no Lease.
    Missing,
    Lease(Lease),
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// GET the Lease, then decide again with what it says.
    Read,
    /// POST a new Lease with this spec.
    Create(LeaseSpec),
    /// PUT this spec, conditional on `resource_version` (acquire, renew or release).
    Update {
        resource_version: String,
        spec: LeaseSpec,
    },
    /// Someone else holds a live Lease: look again after the retry period.
    Standby { holder: String },
}

/// A record, and when (on our clock) we first saw it in this form.
#[derive(Clone, Debug)]
struct Observation {
    lease: Lease,
    at: Instant,
}

/// One replica's view of the election. No I/O, no clock of its own.
#[derive(Clone, Debug)]
pub struct Candidate {
    identity: String,
    timing: Timing,
    observed: Option<Observation>,
    /// When our last successful acquire or renewal was sent.
    renewed_at: Option<Instant>,
    /// The cached record is the one we just wrote (its resourceVersion is
    /// current unless someone wrote since): the leader may renew without a GET.
    own_write: bool,
    /// Why leadership ended, when the Lease showed it was no longer ours.
    lost_because: Option<String>,
    /// The last failed request, for the step-down message.
    last_error: Option<String>,
}

impl Candidate {
    pub fn new(identity: impl Into<String>, timing: Timing) -> Candidate {
        Candidate {
            identity: identity.into(),
            timing,
            observed: None,
            renewed_at: None,
            own_write: false,
            lost_because: None,
            last_error: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// True while our last successful renewal is younger than the renew deadline.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.valid_until().is_some_and(|until| now < until)
    }

    /// Until when we may act as leader, if we hold the Lease.
    pub fn valid_until(&self) -> Option<Instant> {
        self.renewed_at.map(|t| t + self.timing.renew_deadline)
    }

    /// The holder of the last record seen (empty: nobody).
    pub fn observed_holder(&self) -> Option<&str> {
        self.observed.as_ref().map(|o| o.lease.spec.holder())
    }

    /// The record we would write to hold the Lease from `now`.
    fn claim(&self, previous: Option<&LeaseSpec>, now: Now) -> LeaseSpec {
        let stamp = format_micros(now.unix_micros);
        let (acquire, transitions) = match previous {
            // Renewal: the claim keeps its start and its count.
            Some(p) if p.holder() == self.identity => (
                p.acquire_time.clone().unwrap_or_else(|| stamp.clone()),
                p.lease_transitions.unwrap_or(0),
            ),
            // Take-over (from a holder, or of a released Lease): one more transition.
            Some(p) => (stamp.clone(), p.lease_transitions.unwrap_or(0) + 1),
            None => (stamp.clone(), 0),
        };
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.timing.lease_duration.as_secs() as i64),
            acquire_time: Some(acquire),
            renew_time: Some(stamp),
            lease_transitions: Some(transitions),
        }
    }

    /// Records a read. The observation time moves only when the record
    /// changes: that is what lets a dead leader's Lease expire on our clock.
    fn observe(&mut self, lease: Lease, now: Instant) {
        match &mut self.observed {
            Some(o) if o.lease.spec == lease.spec => o.lease = lease,
            _ => self.observed = Some(Observation { lease, at: now }),
        }
        self.own_write = false;
    }

    /// The next step, given what the last read found.
    pub fn decide(&mut self, seen: Seen, now: Now) -> Action {
        match seen {
            Seen::Unread => match &self.observed {
                // The leader renews on top of its own last write, skipping
                // the GET; a conflict (someone wrote since) sends it back to Read.
                Some(o) if self.own_write && self.is_leader(now.mono) => Action::Update {
                    resource_version: o.lease.resource_version.clone(),
                    spec: self.claim(Some(&o.lease.spec), now),
                },
                _ => Action::Read,
            },
            Seen::Missing => {
                self.observed = None;
                self.own_write = false;
                if self.renewed_at.take().is_some() {
                    self.lost_because = Some("the Lease was deleted".into());
                }
                Action::Create(self.claim(None, now))
            }
            Seen::Lease(lease) => {
                self.observe(lease, now.mono);
                let Some(o) = &self.observed else {
                    return Action::Read;
                };
                let holder = o.lease.spec.holder().to_string();
                if holder == self.identity {
                    return Action::Update {
                        resource_version: o.lease.resource_version.clone(),
                        spec: self.claim(Some(&o.lease.spec), now),
                    };
                }
                // The Lease names someone else (or nobody): whatever we
                // believed, we do not lead any more.
                if self.renewed_at.take().is_some() {
                    self.lost_because = Some(if holder.is_empty() {
                        "the Lease was released by someone else".into()
                    } else {
                        format!("the Lease is now held by {holder}")
                    });
                }
                // The record's own duration counts (a released Lease says 1 s);
                // a record without one gets ours.
                let secs = o
                    .lease
                    .spec
                    .lease_duration_seconds
                    .filter(|s| *s > 0)
                    .map_or(self.timing.lease_duration, |s| {
                        Duration::from_secs(s as u64)
                    });
                if !holder.is_empty() && now.mono < o.at + secs {
                    return Action::Standby { holder };
                }
                Action::Update {
                    resource_version: o.lease.resource_version.clone(),
                    spec: self.claim(Some(&o.lease.spec), now),
                }
            }
        }
    }

    /// A create or update succeeded; `sent` is when the request left.
    pub fn written(&mut self, lease: Lease, sent: Instant) {
        let ours = lease.spec.holder() == self.identity;
        self.observed = Some(Observation { lease, at: sent });
        self.own_write = ours;
        if ours {
            self.renewed_at = Some(sent);
            self.lost_because = None;
            self.last_error = None;
        }
    }

    /// Someone wrote first (409): forget the cached version, read again.
    pub fn conflict(&mut self) {
        self.own_write = false;
        self.last_error = Some("the Lease changed under us (409 Conflict)".into());
    }

    /// A request failed (connection, timeout, 5xx, 403…). Leadership lasts
    /// until the deadline; the outcome of a timed-out write is unknown, so
    /// the next round reads first.
    pub fn failed(&mut self, why: impl Into<String>) {
        self.own_write = false;
        self.last_error = Some(why.into());
    }

    /// Why leadership ended (call once `is_leader` turned false).
    pub fn loss_reason(&self) -> String {
        match (&self.lost_because, &self.renewed_at) {
            (Some(why), _) => why.clone(),
            (None, None) => "released".into(),
            (None, Some(_)) => format!(
                "could not renew the Lease within {}s ({})",
                self.timing.renew_deadline.as_secs_f64(),
                self.last_error.as_deref().unwrap_or("no answer")
            ),
        }
    }

    /// Stepping down for good (shutdown): stop leading now, and if the last
    /// record says we hold the Lease, the write that hands it on quickly.
    pub fn release(&mut self, now: Now) -> Option<Action> {
        self.renewed_at = None;
        self.lost_because = None;
        let o = self.observed.as_ref()?;
        if o.lease.spec.holder() != self.identity {
            return None;
        }
        let stamp = format_micros(now.unix_micros);
        Some(Action::Update {
            resource_version: o.lease.resource_version.clone(),
            spec: LeaseSpec {
                holder_identity: Some(String::new()),
                lease_duration_seconds: Some(1),
                acquire_time: Some(stamp.clone()),
                renew_time: Some(stamp),
                lease_transitions: o.lease.spec.lease_transitions,
            },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Leadership: what the rest of the daemon sees
// ---------------------------------------------------------------------------------------------

/// "May this replica send notifications now?" Cheap to clone and to ask
/// from any thread. It holds a deadline rather than a flag: even if the
/// election thread is stuck in a request, leadership lapses on time.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<LeadershipInner>,
}

struct LeadershipInner {
    epoch: Instant,
    /// Nanoseconds after `epoch` until which we lead; 0 = not leading,
    /// `u64::MAX` = always (leader election off).
    until: AtomicU64,
}

impl Leadership {
    /// Leader election is off: this replica always sends.
    pub fn always() -> Leadership {
        Leadership::with(u64::MAX)
    }

    /// A candidate that does not lead (yet).
    pub fn standby() -> Leadership {
        Leadership::with(0)
    }

    fn with(until: u64) -> Leadership {
        Leadership {
            inner: Arc::new(LeadershipInner {
                epoch: Instant::now(),
                until: AtomicU64::new(until),
            }),
        }
    }

    pub fn is_leader(&self) -> bool {
        let until = self.inner.until.load(Ordering::Acquire);
        until == u64::MAX || (until != 0 && self.nanos(Instant::now()) < until)
    }

    /// Lead until `until` (`None`: not leading).
    pub fn set_until(&self, until: Option<Instant>) {
        let v = until.map_or(0, |t| self.nanos(t).max(1));
        self.inner.until.store(v, Ordering::Release);
    }

    fn nanos(&self, t: Instant) -> u64 {
        let n = t.saturating_duration_since(self.inner.epoch).as_nanos();
        u64::try_from(n).unwrap_or(u64::MAX - 1).min(u64::MAX - 1)
    }
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Leadership(leader={})", self.is_leader())
    }
}

// ---------------------------------------------------------------------------------------------
// The election thread
// ---------------------------------------------------------------------------------------------

/// The running election; dropping it (or `stop`) releases the Lease.
pub struct Elector {
    leadership: Leadership,
    stop: Option<Sender<()>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    /// How long `stop` waits for the release.
    stop_wait: Duration,
}

impl Elector {
    /// Starts the election thread for `lease` (namespace, name, our identity).
    pub fn start(
        client: Client,
        lease: &settings::Leader,
        timing: Timing,
        metrics: Arc<Metrics>,
    ) -> io::Result<Elector> {
        timing
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let leadership = Leadership::standby();
        metrics.counters.leader.store(0, Ordering::Relaxed);
        let (stop_tx, stop_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let mut runner = Runner {
            client,
            item: format!(
                "/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}",
                lease.namespace, lease.name
            ),
            collection: format!(
                "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
                lease.namespace
            ),
            namespace: lease.namespace.clone(),
            name: lease.name.clone(),
            candidate: Candidate::new(lease.identity.clone(), timing),
            timing,
            object: None,
            leadership: leadership.clone(),
            metrics,
            leading: false,
            holder_seen: None,
            failures: 0,
            rng: Rng::seeded(0x1ea5e),
        };
        log::info!(
            "leader election: lease={}/{} identity={} lease_duration={}s renew_deadline={}s",
            lease.namespace,
            lease.name,
            lease.identity,
            timing.lease_duration.as_secs(),
            timing.renew_deadline.as_secs_f64()
        );
        let thread = thread::Builder::new()
            .name("leader-election".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                runner.run(&stop_rx);
                let _ = done_tx.send(());
            })?;
        Ok(Elector {
            leadership,
            stop: Some(stop_tx),
            done,
            thread: Some(thread),
            stop_wait: timing.request_timeout + Duration::from_secs(1),
        })
    }

    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// Stops the election: leadership ends at once, then the Lease is
    /// released (waits at most the request timeout plus a second).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Nobody may send past this point, whatever the release does.
        self.leadership.set_until(None);
        let Some(stop) = self.stop.take() else {
            return;
        };
        let _ = stop.send(());
        match self.done.recv_timeout(self.stop_wait) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            // Stuck in a request: leave it behind (the process is exiting).
            Err(RecvTimeoutError::Timeout) => {
                log::warn!("leader election: the Lease release did not finish in time")
            }
        }
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Runner {
    client: Client,
    item: String,
    collection: String,
    namespace: String,
    name: String,
    candidate: Candidate,
    timing: Timing,
    /// The last Lease object read or written, whole: updates start from it so
    /// labels, annotations and spec fields we do not know survive.
    object: Option<Value>,
    leadership: Leadership,
    metrics: Arc<Metrics>,
    leading: bool,
    /// The other holder last logged, so a standby logs each change once.
    holder_seen: Option<String>,
    failures: u32,
    rng: Rng,
}

/// What one request round leads to.
enum Next {
    /// Decide again at once with this.
    Again(Seen),
    /// Wait this long, then decide.
    Wait(Duration),
}

impl Runner {
    fn run(&mut self, stop: &mpsc::Receiver<()>) {
        let mut seen = Seen::Unread;
        loop {
            let action = self.candidate.decide(seen, Now::current());
            let next = self.act(action);
            self.publish();
            seen = Seen::Unread;
            let wait = match next {
                Next::Again(s) => {
                    seen = s;
                    Duration::ZERO
                }
                Next::Wait(d) => d,
            };
            // A leader wakes at its deadline, so a lapse is logged on time.
            let wait = match self.candidate.valid_until() {
                Some(until) if self.leading => {
                    wait.min(until.saturating_duration_since(Instant::now()))
                }
                _ => wait,
            };
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.release();
    }

    /// Carries out one action; says what comes next.
    fn act(&mut self, action: Action) -> Next {
        let t = self.timing;
        match action {
            Action::Read => match self
                .client
                .get::<Value>(&self.item, t.request_timeout, "Lease")
            {
                Ok(v) => match Lease::from_object(&v) {
                    Ok(lease) => {
                        self.object = Some(v);
                        Next::Again(Seen::Lease(lease))
                    }
                    Err(e) => self.fail(e),
                },
                Err(e) if e.code() == Some(404) => {
                    self.object = None;
                    Next::Again(Seen::Missing)
                }
                Err(e) => self.fail(describe(&e)),
            },
            Action::Create(spec) => {
                let body = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": spec,
                });
                let sent = Instant::now();
                match self
                    .client
                    .post::<Value>(&self.collection, &body, t.request_timeout, "Lease")
                {
                    Ok(v) => self.wrote(v, sent),
                    // Another replica created it first: read theirs.
                    Err(e) if e.code() == Some(409) => {
                        log::debug!("leader election: Lease created by another replica first");
                        self.candidate.conflict();
                        Next::Again(Seen::Unread)
                    }
                    Err(e) => self.fail(describe(&e)),
                }
            }
            Action::Update {
                resource_version,
                spec,
            } => {
                let sent = Instant::now();
                let body = self.update_body(&resource_version, &spec);
                match self
                    .client
                    .put::<Value>(&self.item, &body, t.request_timeout, "Lease")
                {
                    Ok(v) => self.wrote(v, sent),
                    Err(e) if e.code() == Some(409) => {
                        log::debug!("leader election: Lease changed since it was read (409)");
                        self.candidate.conflict();
                        Next::Wait(self.jittered(t.retry_period) / 2)
                    }
                    // Deleted meanwhile: create it again.
                    Err(e) if e.code() == Some(404) => {
                        self.object = None;
                        Next::Again(Seen::Missing)
                    }
                    Err(e) => self.fail(describe(&e)),
                }
            }
            Action::Standby { holder } => {
                if self.holder_seen.as_deref() != Some(holder.as_str()) {
                    log::info!(
                        "standby: Lease {}/{} held by {holder}",
                        self.namespace,
                        self.name
                    );
                    self.holder_seen = Some(holder);
                }
                self.failures = 0;
                Next::Wait(self.jittered(t.retry_period))
            }
        }
    }

    fn wrote(&mut self, v: Value, sent: Instant) -> Next {
        match Lease::from_object(&v) {
            Ok(lease) => {
                self.object = Some(v);
                self.candidate.written(lease, sent);
                self.failures = 0;
                self.holder_seen = None;
                Next::Wait(self.timing.renew_period)
            }
            Err(e) => self.fail(format!("the API server's answer: {e}")),
        }
    }

    fn fail(&mut self, why: String) -> Next {
        self.failures += 1;
        // The first failure of a run is worth a warning; the rest repeat it.
        if self.failures == 1 || self.failures % 30 == 0 {
            log::warn!(
                "leader election: Lease {}/{} request failed ({} in a row): {why}",
                self.namespace,
                self.name,
                self.failures
            );
        } else {
            log::debug!("leader election: Lease request failed: {why}");
        }
        self.candidate.failed(why);
        Next::Wait(self.jittered(self.timing.retry_period))
    }

    /// The last object read, with our spec and the version we read.
    fn update_body(&self, resource_version: &str, spec: &LeaseSpec) -> Value {
        let mut body = self.object.clone().unwrap_or_else(
            || json!({"metadata": {"name": self.name, "namespace": self.namespace}}),
        );
        body["apiVersion"] = json!("coordination.k8s.io/v1");
        body["kind"] = json!("Lease");
        if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            // The server fills these; sending them back only risks a stale copy.
            meta.remove("managedFields");
            meta.insert("resourceVersion".into(), json!(resource_version));
        }
        let ours = serde_json::to_value(spec).unwrap_or_else(|_| json!({}));
        match (body.get_mut("spec").and_then(Value::as_object_mut), ours) {
            (Some(existing), Value::Object(fields)) => {
                for (k, v) in fields {
                    existing.insert(k, v);
                }
            }
            (_, ours) => body["spec"] = ours,
        }
        body
    }

    /// Publishes leadership to the handle and the metrics; logs transitions.
    fn publish(&mut self) {
        let now = Instant::now();
        let leading = self.candidate.is_leader(now);
        self.leadership
            .set_until(self.candidate.valid_until().filter(|_| leading));
        let c = &self.metrics.counters;
        if leading && !self.leading {
            c.leader.store(1, Ordering::Relaxed);
            c.leader_acquired.fetch_add(1, Ordering::Relaxed);
            log::info!(
                "became leader: Lease {}/{} identity={}",
                self.namespace,
                self.name,
                self.candidate.identity()
            );
        } else if !leading && self.leading {
            c.leader.store(0, Ordering::Relaxed);
            log::warn!(
                "lost leadership: {}; notifications are not sent while on standby",
                self.candidate.loss_reason()
            );
        }
        self.leading = leading;
    }

    /// Shutdown: stop leading, then hand the Lease on if we hold it.
    fn release(&mut self) {
        self.leadership.set_until(None);
        self.metrics.counters.leader.store(0, Ordering::Relaxed);
        let was = self.leading;
        self.leading = false;
        let Some(Action::Update {
            resource_version,
            spec,
        }) = self.candidate.release(Now::current())
        else {
            return;
        };
        let body = self.update_body(&resource_version, &spec);
        match self
            .client
            .put::<Value>(&self.item, &body, self.timing.request_timeout, "Lease")
        {
            Ok(_) => log::info!(
                "released the Lease {}/{}{}",
                self.namespace,
                self.name,
                if was { " (was leader)" } else { "" }
            ),
            Err(e) => log::warn!(
                "could not release the Lease {}/{} (a standby takes over when it expires): {}",
                self.namespace,
                self.name,
                describe(&e)
            ),
        }
    }

    /// `d` stretched by up to 20%, so replicas do not poll in lockstep.
    fn jittered(&mut self, d: Duration) -> Duration {
        self.rng.stretch(d, 0.2)
    }
}

fn describe(e: &Error) -> String {
    match e.code() {
        Some(403) => format!(
            "{e} (grant get, create and update on leases.coordination.k8s.io in this namespace; see README, RBAC)"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing::default()
    }

    /// A fake clock: `t0` plus whole or fractional seconds.
    struct Clock {
        t0: Instant,
        wall0: i64,
    }

    impl Clock {
        fn new() -> Clock {
            Clock {
                t0: Instant::now(),
                wall0: 1_750_000_000_000_000,
            }
        }
        fn at(&self, secs: f64) -> Now {
            let d = Duration::from_secs_f64(secs);
            Now {
                mono: self.t0 + d,
                unix_micros: self.wall0 + d.as_micros() as i64,
            }
        }
    }

    fn held_by(holder: &str, rv: &str, renew: &str, transitions: i64) -> Lease {
        Lease {
            resource_version: rv.into(),
            spec: LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                acquire_time: Some("2025-01-01T00:00:00.000000Z".into()),
                renew_time: Some(renew.into()),
                lease_transitions: Some(transitions),
            },
        }
    }

    fn written_as(spec: LeaseSpec, rv: &str) -> Lease {
        Lease {
            resource_version: rv.into(),
            spec,
        }
    }

    #[test]
    fn default_timing_is_safe_and_bad_orderings_are_refused() {
        assert_eq!(timing().validate(), Ok(()));
        let t = Timing {
            renew_deadline: Duration::from_secs(15),
            ..timing()
        };
        assert!(t.validate().unwrap_err().contains("renew deadline"));
        // 15.9 s is written as 15: a 15.5 s deadline would outlive it.
        let t = Timing {
            lease_duration: Duration::from_millis(15_900),
            renew_deadline: Duration::from_millis(15_500),
            ..timing()
        };
        assert!(t.validate().unwrap_err().contains("renew deadline"));
        let t = Timing {
            request_timeout: Duration::from_secs(10),
            ..timing()
        };
        assert!(t.validate().unwrap_err().contains("request timeout"));
        let t = Timing {
            renew_period: Duration::from_secs(10),
            ..timing()
        };
        assert!(t.validate().is_err());
    }

    #[test]
    fn no_lease_means_create_with_our_claim() {
        let c0 = Clock::new();
        let mut c = Candidate::new("a", timing());
        assert_eq!(c.decide(Seen::Unread, c0.at(0.0)), Action::Read);
        let Action::Create(spec) = c.decide(Seen::Missing, c0.at(0.0)) else {
            panic!("expected a create");
        };
        assert_eq!(spec.holder(), "a");
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, spec.renew_time);
        assert_eq!(spec.renew_time.as_deref(), Some(&*format_micros(c0.wall0)));
        assert!(!c.is_leader(c0.at(0.0).mono), "not leader before the write");
        c.written(written_as(spec, "1"), c0.at(0.0).mono);
        assert!(c.is_leader(c0.at(0.1).mono));
    }

    #[test]
    fn the_leader_renews_on_its_own_write_keeping_acquire_time() {
        let c0 = Clock::new();
        let mut c = Candidate::new("a", timing());
        let Action::Create(spec) = c.decide(Seen::Missing, c0.at(0.0)) else {
            panic!()
        };
        let acquired = spec.acquire_time.clone();
        c.written(written_as(spec, "7"), c0.at(0.0).mono);
        // Five seconds later: no GET, a PUT on version 7.
        let Action::Update {
            resource_version,
            spec,
        } = c.decide(Seen::Unread, c0.at(5.0))
        else {
            panic!("expected a renewal")
        };
        assert_eq!(resource_version, "7");
        assert_eq!(spec.acquire_time, acquired);
        assert_eq!(
            spec.renew_time.as_deref(),
            Some(&*format_micros(c0.wall0 + 5_000_000))
        );
        assert_eq!(spec.lease_transitions, Some(0));
        c.written(written_as(spec, "8"), c0.at(5.0).mono);
        assert!(c.is_leader(c0.at(14.9).mono));
    }

    #[test]
    fn a_live_lease_of_another_is_left_alone_until_it_stops_changing_for_its_duration() {
        let c0 = Clock::new();
        let mut c = Candidate::new("b", timing());
        let l1 = held_by("a", "10", "2025-01-01T00:00:01.000000Z", 3);
        assert_eq!(
            c.decide(Seen::Lease(l1.clone()), c0.at(0.0)),
            Action::Standby { holder: "a".into() }
        );
        // Renewed at 5 s: the 15 s count starts again from when we saw it.
        let l2 = held_by("a", "11", "2025-01-01T00:00:06.000000Z", 3);
        assert!(matches!(
            c.decide(Seen::Lease(l2.clone()), c0.at(5.0)),
            Action::Standby { .. }
        ));
        // The same record again (a re-read) does not restart the count.
        assert!(matches!(
            c.decide(Seen::Lease(l2.clone()), c0.at(19.9)),
            Action::Standby { .. }
        ));
        assert!(!c.is_leader(c0.at(19.9).mono));
        let Action::Update {
            resource_version,
            spec,
        } = c.decide(Seen::Lease(l2), c0.at(20.0))
        else {
            panic!("expected a take-over at 5 + 15 s")
        };
        assert_eq!(resource_version, "11");
        assert_eq!(spec.holder(), "b");
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, spec.renew_time);
        assert!(
            !c.is_leader(c0.at(20.0).mono),
            "only once the write succeeds"
        );
        c.written(written_as(spec, "12"), c0.at(20.0).mono);
        assert!(c.is_leader(c0.at(20.1).mono));
    }

    #[test]
    fn remote_timestamps_are_not_trusted() {
        // A renewTime far in the past (a skewed clock) does not make the Lease
        // look expired: only our own observation time counts.
        let c0 = Clock::new();
        let mut c = Candidate::new("b", timing());
        let old = held_by("a", "5", "2001-01-01T00:00:00.000000Z", 0);
        assert!(matches!(
            c.decide(Seen::Lease(old.clone()), c0.at(0.0)),
            Action::Standby { .. }
        ));
        assert!(matches!(
            c.decide(Seen::Lease(old), c0.at(14.0)),
            Action::Standby { .. }
        ));
    }

    #[test]
    fn the_records_own_duration_counts_and_a_released_lease_is_taken_at_once() {
        let c0 = Clock::new();
        let mut c = Candidate::new("b", timing());
        let mut short = held_by("a", "5", "2025-01-01T00:00:00.000000Z", 2);
        short.spec.lease_duration_seconds = Some(1);
        assert!(matches!(
            c.decide(Seen::Lease(short.clone()), c0.at(0.0)),
            Action::Standby { .. }
        ));
        assert!(matches!(
            c.decide(Seen::Lease(short), c0.at(1.0)),
            Action::Update { .. }
        ));

        let mut c = Candidate::new("b", timing());
        let mut released = held_by("", "6", "2025-01-01T00:00:00.000000Z", 2);
        released.spec.lease_duration_seconds = Some(1);
        let Action::Update { spec, .. } = c.decide(Seen::Lease(released), c0.at(0.0)) else {
            panic!("a released Lease is free")
        };
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn a_failing_leader_steps_down_before_anyone_may_take_over() {
        let c0 = Clock::new();
        let t = timing();
        let mut a = Candidate::new("a", t);
        let Action::Create(spec) = a.decide(Seen::Missing, c0.at(0.0)) else {
            panic!()
        };
        a.written(written_as(spec.clone(), "1"), c0.at(0.0).mono);
        // b sees a's record right away (the earliest possible).
        let mut b = Candidate::new("b", t);
        let seen = Seen::Lease(written_as(spec, "1"));
        assert!(matches!(
            b.decide(seen.clone(), c0.at(0.0)),
            Action::Standby { .. }
        ));
        // a's renewals fail from here on.
        a.failed("connection refused");
        a.failed("timed out");
        assert!(a.is_leader(c0.at(9.99).mono));
        assert!(
            !a.is_leader(c0.at(10.0).mono),
            "a stops at the renew deadline"
        );
        assert!(a.loss_reason().contains("could not renew"));
        assert!(a.loss_reason().contains("timed out"));
        assert!(matches!(
            b.decide(seen.clone(), c0.at(14.99)),
            Action::Standby { .. }
        ));
        assert!(matches!(b.decide(seen, c0.at(15.0)), Action::Update { .. }));
        // The gap between the two is the safety margin.
        assert!(t.lease_duration - t.renew_deadline >= Duration::from_secs(5));
    }

    #[test]
    fn a_conflict_sends_the_leader_back_to_reading_and_never_overwrites() {
        let c0 = Clock::new();
        let mut a = Candidate::new("a", timing());
        let Action::Create(spec) = a.decide(Seen::Missing, c0.at(0.0)) else {
            panic!()
        };
        a.written(written_as(spec, "1"), c0.at(0.0).mono);
        assert!(matches!(
            a.decide(Seen::Unread, c0.at(5.0)),
            Action::Update { .. }
        ));
        a.conflict();
        assert_eq!(a.decide(Seen::Unread, c0.at(5.1)), Action::Read);
        // The re-read shows someone else: a steps down at once.
        let theirs = held_by("x", "9", "2025-01-01T00:00:05.000000Z", 1);
        assert_eq!(
            a.decide(Seen::Lease(theirs), c0.at(5.2)),
            Action::Standby { holder: "x".into() }
        );
        assert!(!a.is_leader(c0.at(5.2).mono));
        assert_eq!(a.loss_reason(), "the Lease is now held by x");
    }

    #[test]
    fn a_lease_naming_us_is_renewed_after_a_restart() {
        let c0 = Clock::new();
        let mut a = Candidate::new("a", timing());
        let mine = held_by("a", "3", "2025-01-01T00:00:00.000000Z", 6);
        let Action::Update {
            resource_version,
            spec,
        } = a.decide(Seen::Lease(mine.clone()), c0.at(0.0))
        else {
            panic!()
        };
        assert_eq!(resource_version, "3");
        assert_eq!(spec.acquire_time, mine.spec.acquire_time);
        assert_eq!(spec.lease_transitions, Some(6));
    }

    #[test]
    fn a_failed_write_is_not_renewed_blind() {
        let c0 = Clock::new();
        let mut a = Candidate::new("a", timing());
        let Action::Create(spec) = a.decide(Seen::Missing, c0.at(0.0)) else {
            panic!()
        };
        a.written(written_as(spec, "1"), c0.at(0.0).mono);
        a.failed("timed out");
        // The write may or may not have landed: read before writing again.
        assert_eq!(a.decide(Seen::Unread, c0.at(2.0)), Action::Read);
        assert!(a.is_leader(c0.at(2.0).mono));
    }

    #[test]
    fn release_stops_leading_first_and_hands_the_lease_on() {
        let c0 = Clock::new();
        let mut a = Candidate::new("a", timing());
        let Action::Create(spec) = a.decide(Seen::Missing, c0.at(0.0)) else {
            panic!()
        };
        a.written(written_as(spec, "4"), c0.at(0.0).mono);
        let Some(Action::Update {
            resource_version,
            spec,
        }) = a.release(c0.at(1.0))
        else {
            panic!("the holder releases")
        };
        assert!(!a.is_leader(c0.at(1.0).mono));
        assert_eq!(resource_version, "4");
        assert_eq!(spec.holder(), "");
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert_eq!(spec.lease_transitions, Some(0));
        // Not the holder: nothing to release.
        let mut b = Candidate::new("b", timing());
        let _ = b.decide(Seen::Lease(held_by("a", "4", "x", 0)), c0.at(0.0));
        assert_eq!(b.release(c0.at(1.0)), None);
    }

    #[test]
    fn leadership_lapses_by_itself_at_its_deadline() {
        assert!(Leadership::always().is_leader());
        let l = Leadership::standby();
        assert!(!l.is_leader());
        l.set_until(Some(Instant::now() + Duration::from_secs(60)));
        assert!(l.is_leader());
        l.set_until(Some(Instant::now() - Duration::from_millis(1)));
        assert!(!l.is_leader());
        l.set_until(None);
        assert!(!l.is_leader());
    }

    /// The election's promise, checked on a simulated API server with a fake
    /// clock: whatever the interleaving and whichever requests fail, two
    /// candidates never lead at the same instant, and someone leads again
    /// soon after the failures stop.
    #[test]
    fn simulation_never_two_leaders() {
        #[derive(Default)]
        struct Server {
            lease: Option<Lease>,
            rv: u64,
        }
        impl Server {
            fn create(&mut self, spec: LeaseSpec) -> Result<Lease, u16> {
                if self.lease.is_some() {
                    return Err(409);
                }
                self.rv += 1;
                let l = Lease {
                    resource_version: self.rv.to_string(),
                    spec,
                };
                self.lease = Some(l.clone());
                Ok(l)
            }
            fn update(&mut self, rv: &str, spec: LeaseSpec) -> Result<Lease, u16> {
                match &self.lease {
                    None => Err(404),
                    Some(l) if l.resource_version != rv => Err(409),
                    Some(_) => {
                        self.rv += 1;
                        let l = Lease {
                            resource_version: self.rv.to_string(),
                            spec,
                        };
                        self.lease = Some(l.clone());
                        Ok(l)
                    }
                }
            }
        }

        for seed in 1..=40u64 {
            let c0 = Clock::new();
            let t = timing();
            let mut server = Server::default();
            let mut cands = [
                Candidate::new("a", t),
                Candidate::new("b", t),
                Candidate::new("c", t),
            ];
            let mut next_at = [0.0f64, 0.05, 0.1];
            let mut pending = [Seen::Unread, Seen::Unread, Seen::Unread];
            let mut rng = Rng::new(seed);
            let mut rand = || rng.unit();
            let mut last_leader_at = 0.0f64;
            let mut step = 0.0f64;
            while step < 300.0 {
                let now = c0.at(step);
                // Partitions: each candidate loses the server in some windows.
                let down = |i: usize, s: f64| {
                    let w = ((s / 20.0) as u64 + i as u64 + seed) % 5;
                    w == 0 && s < 240.0
                };
                for i in 0..3 {
                    if step < next_at[i] {
                        continue;
                    }
                    let seen = std::mem::replace(&mut pending[i], Seen::Unread);
                    let action = cands[i].decide(seen, now);
                    let fails = down(i, step) || rand() < 0.05;
                    let mut wait = 2.0 + 0.4 * rand();
                    match action {
                        Action::Read if fails => cands[i].failed("down"),
                        Action::Read => {
                            pending[i] = match &server.lease {
                                Some(l) => Seen::Lease(l.clone()),
                                None => Seen::Missing,
                            };
                            wait = 0.0;
                        }
                        Action::Create(_) | Action::Update { .. } if fails => {
                            // Half the failed writes land anyway (the answer is lost).
                            if rand() < 0.5 {
                                if let Action::Update {
                                    resource_version,
                                    spec,
                                } = &action
                                {
                                    let _ = server.update(resource_version, spec.clone());
                                }
                            }
                            cands[i].failed("down");
                        }
                        Action::Create(spec) => match server.create(spec) {
                            Ok(l) => {
                                cands[i].written(l, now.mono);
                                wait = 5.0;
                            }
                            Err(_) => {
                                cands[i].conflict();
                                wait = 0.0;
                            }
                        },
                        Action::Update {
                            resource_version,
                            spec,
                        } => match server.update(&resource_version, spec) {
                            Ok(l) => {
                                cands[i].written(l, now.mono);
                                wait = 5.0;
                            }
                            Err(_) => cands[i].conflict(),
                        },
                        Action::Standby { .. } => {}
                    }
                    next_at[i] = step + wait;
                }
                let leaders: Vec<usize> =
                    (0..3).filter(|i| cands[*i].is_leader(now.mono)).collect();
                assert!(
                    leaders.len() <= 1,
                    "seed {seed}: {leaders:?} lead at once at {step:.2}s"
                );
                if !leaders.is_empty() {
                    last_leader_at = step;
                }
                // Lost write answers can make a holder think it failed while the
                // server says it holds the Lease; that only ever delays.
                step += 0.05;
            }
            assert!(
                last_leader_at > 280.0,
                "seed {seed}: nobody led after the partitions ended (last at {last_leader_at:.1}s)"
            );
        }
    }
}
