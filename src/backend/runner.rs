/*!
The background thread: resolves the cluster id, registers, waits for the
claim, then keeps the tokens fresh, forever. Each `step` does one round of
I/O and says how long to sleep; the decisions come from `registration` and
`tokens`.

The thread holds only a weak reference to the `Backend` between steps, so
it ends once the daemon drops the `Backend`; it is never joined, so it can
never hold up process exit.
*/

use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use super::registration::{self, Claim, Identity, Registered, Start};
use super::state::{self, ClusterFile, PendingFile, TokensFile};
use super::tokens::Tokens;
use super::{Backend, ClusterIdSource, Phase, TokenError, cluster_id_from_uid, iso_ms, now_ms};
use crate::util::backoff::Backoff;
use crate::util::random::Rng;
use crate::util::sync::lock;

enum Step {
    /// Read the cluster id and the saved files.
    Resolve,
    /// `POST /clusters`.
    Register,
    /// Check the claim every `claim_check`.
    Pending(PendingFile),
    /// Keep the tokens fresh.
    Registered(ClusterFile),
}

struct Runner {
    source: Box<dyn ClusterIdSource>,
    me: Option<Identity>,
    step: Step,
    backoff: Backoff,
    /// When the claim URL was last logged at info.
    reminded: Option<Instant>,
    /// The last problem logged at warn, so a repeating one is logged once.
    last_warning: Option<String>,
}

pub(super) fn spawn(backend: &Arc<Backend>, source: Box<dyn ClusterIdSource>) {
    let weak = Arc::downgrade(backend);
    let wake = backend.wake.clone();
    let t = &backend.timing;
    let mut runner = Runner {
        source,
        me: None,
        step: Step::Resolve,
        backoff: Backoff::new(t.retry_initial, t.retry_max, 2.0, Rng::seeded(0xb4c)),
        reminded: None,
        last_warning: None,
    };
    let spawned = thread::Builder::new()
        .name("backend".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            loop {
                let delay = match Weak::upgrade(&weak) {
                    Some(b) => runner.step(&b),
                    None => return,
                };
                if !wake.sleep(delay) {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("backend: cannot start its thread: {e}");
        backend.update(|s| s.phase = Phase::Failing(format!("cannot start its thread: {e}")));
    }
}

impl Runner {
    fn step(&mut self, b: &Backend) -> Duration {
        match std::mem::replace(&mut self.step, Step::Resolve) {
            Step::Resolve => self.resolve(b),
            Step::Register => self.register(b),
            Step::Pending(p) => self.check_claim(b, p),
            Step::Registered(c) => self.keep_tokens(b, c),
        }
    }

    /// Logs `backend: <msg>; retrying in …` at warn, unless `msg` is the
    /// same as the last warning: a problem that persists is retried
    /// quietly, at debug (the delay is not part of the comparison).
    fn warn_retry(&mut self, msg: String, retry_in: Duration) {
        let line = format!("backend: {msg}; retrying in {:.1}s", retry_in.as_secs_f64());
        if self.last_warning.as_deref() == Some(msg.as_str()) {
            log::debug!("{line}");
        } else {
            log::warn!("{line}");
            self.last_warning = Some(msg);
        }
    }

    fn recovered(&mut self) {
        self.backoff.reset();
        self.last_warning = None;
    }

    fn retry_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        self.backoff.next_delay(retry_after)
    }

    fn resolve(&mut self, b: &Backend) -> Duration {
        let id = match self
            .source
            .kube_system_uid()
            .and_then(|uid| cluster_id_from_uid(&uid))
        {
            Ok(id) => id,
            Err(e) => {
                // Never a random id (the original's fallback): a made-up id
                // registers a new cluster and is lost at the next start.
                let why = format!("cannot read the cluster id (namespace kube-system): {e}");
                let d = self.retry_delay(None);
                self.warn_retry(why.clone(), d);
                b.update(|s| s.phase = Phase::Failing(format!("{why}; retrying")));
                self.step = Step::Resolve;
                return d;
            }
        };
        self.recovered();
        let me = Identity {
            cluster_id: id.clone(),
            cluster_name: b.settings.cluster_name.clone(),
            user_email: b.settings.user_email.clone(),
            frontend_url: b.settings.frontend_url.clone(),
        };
        let cluster = load::<ClusterFile>(b, state::CLUSTER);
        let pending = load::<PendingFile>(b, state::PENDING);
        self.step = match registration::start(cluster, pending, &id) {
            Start::Registered(c) => {
                log::info!(
                    "backend: found existing cluster registration cluster_id={}",
                    c.cluster_id
                );
                // A leftover from before the claim was confirmed.
                b.remove(state::PENDING);
                self.adopt(b, c, true)
            }
            Start::ClusterMismatch { saved } => {
                log::warn!(
                    "backend: cluster ID mismatch detected! saved cluster ID: {saved}, current cluster ID: {id}; \
                     deleting cluster.json and tokens.json and registering afresh"
                );
                b.remove(state::CLUSTER);
                b.remove(state::TOKENS);
                b.remove(state::PENDING);
                Step::Register
            }
            Start::Pending(p) => {
                log::info!(
                    "backend: found pending cluster registration cluster_id={}",
                    p.cluster_id
                );
                self.enter_pending(b, &me, None);
                Step::Pending(p)
            }
            Start::PendingMismatch { saved } => {
                log::warn!(
                    "backend: pending registration is for cluster {saved}, this is {id}; registering afresh"
                );
                b.remove(state::PENDING);
                Step::Register
            }
            Start::Register => {
                log::info!(
                    "backend: no existing cluster registration found; registering new cluster"
                );
                Step::Register
            }
        };
        self.me = Some(me);
        Duration::ZERO
    }

    fn register(&mut self, b: &Backend) -> Duration {
        let Some(me) = self.me.clone() else {
            self.step = Step::Resolve;
            return Duration::ZERO;
        };
        // Once at info; retries after a failure only at debug.
        let level = if self.last_warning.is_none() {
            log::Level::Info
        } else {
            log::Level::Debug
        };
        log::log!(
            level,
            "backend: registering cluster with backend url={} cluster_id={} cluster_name={} user_email={}",
            b.api.base(),
            me.cluster_id,
            me.cluster_name,
            me.user_email
        );
        let answer = b
            .api
            .register(&me.cluster_id, &me.cluster_name, &me.user_email)
            .map_err(|e| b.call_failed(e));
        let rec = match answer {
            Ok(rec) => rec,
            Err(e) => {
                let d = self.retry_delay(e.retry_after());
                self.warn_retry(format!("registration failed: {e}"), d);
                b.update(|s| s.phase = Phase::Failing(format!("registration failed: {e}")));
                self.step = Step::Register;
                return d;
            }
        };
        match registration::after_register(&rec, &me, &iso_ms(now_ms())) {
            Ok(Registered::Pending(p)) => {
                b.save(state::PENDING, &p);
                self.recovered();
                log::info!(
                    "backend: cluster pre-registered successfully, awaiting confirmation cluster_id={}",
                    me.cluster_id
                );
                self.enter_pending(b, &me, None);
                self.step = Step::Pending(p);
                b.timing.claim_check
            }
            Ok(Registered::Claimed(c)) => {
                b.save(state::CLUSTER, &c);
                b.remove(state::PENDING);
                self.recovered();
                log::info!(
                    "backend: cluster already registered and claimed cluster_id={} backend_id={}",
                    c.cluster_id,
                    c.cluster_foreign_id
                );
                self.step = self.adopt(b, c, false);
                Duration::ZERO
            }
            Err(why) => {
                b.count_failure();
                let d = self.retry_delay(None);
                self.warn_retry(format!("registration failed: {why}"), d);
                b.update(|s| s.phase = Phase::Failing(format!("registration failed: {why}")));
                self.step = Step::Register;
                d
            }
        }
    }

    /// Shows the claim URL in the status, and in the log at info now and
    /// then (the original repeated it every 10 s).
    fn enter_pending(&mut self, b: &Backend, me: &Identity, note: Option<String>) {
        let url = me.claim_url();
        let due = self
            .reminded
            .is_none_or(|t| t.elapsed() >= b.timing.claim_reminder);
        if due {
            log::info!("backend: complete your cluster registration: {url}");
            self.reminded = Some(Instant::now());
        }
        b.update(|s| {
            s.phase = Phase::Pending {
                claim_url: url,
                note,
            }
        });
    }

    fn check_claim(&mut self, b: &Backend, p: PendingFile) -> Duration {
        let Some(me) = self.me.clone() else {
            self.step = Step::Resolve;
            return Duration::ZERO;
        };
        let answer = b.api.cluster(&p.cluster_id).map_err(|e| b.call_failed(e));
        let rec = match answer {
            Ok(rec) => rec,
            Err(e) if e.code() == Some(404) => {
                log::warn!(
                    "backend: the backend does not know pending cluster {}; registering again",
                    p.cluster_id
                );
                b.remove(state::PENDING);
                self.step = Step::Register;
                return self.retry_delay(None).min(b.timing.claim_check);
            }
            Err(e) => {
                let d = self.retry_delay(e.retry_after()).max(b.timing.claim_check);
                self.warn_retry(format!("could not verify pending registration: {e}"), d);
                self.enter_pending(b, &me, Some(format!("claim check failed: {e}")));
                self.step = Step::Pending(p);
                return d;
            }
        };
        match registration::after_check(&rec, &me, &iso_ms(now_ms())) {
            Ok(Claim::Confirmed(c)) => {
                b.save(state::CLUSTER, &c);
                b.remove(state::PENDING);
                self.recovered();
                log::info!(
                    "backend: cluster registration confirmed by backend cluster_id={} backend_id={}",
                    c.cluster_id,
                    c.cluster_foreign_id
                );
                self.step = self.adopt(b, c, false);
                Duration::ZERO
            }
            Ok(Claim::Waiting) => {
                self.recovered();
                log::debug!("backend: cluster registration still pending user confirmation");
                self.enter_pending(b, &me, None);
                self.step = Step::Pending(p);
                b.timing.claim_check
            }
            Ok(Claim::OtherAccount(email)) => {
                self.warn_retry(
                    format!(
                        "the cluster was claimed by {email}, not USER_EMAIL {}; still pending",
                        me.user_email
                    ),
                    b.timing.claim_check,
                );
                self.enter_pending(b, &me, Some(format!("claimed by another account: {email}")));
                self.step = Step::Pending(p);
                b.timing.claim_check
            }
            Err(why) => {
                b.count_failure();
                let d = self.retry_delay(None).max(b.timing.claim_check);
                self.warn_retry(format!("could not verify pending registration: {why}"), d);
                self.enter_pending(b, &me, Some(format!("claim check failed: {why}")));
                self.step = Step::Pending(p);
                d
            }
        }
    }

    /// Registered: publishes it, with the saved tokens when they are this
    /// cluster's. `resumed` says the registration came from cluster.json.
    fn adopt(&mut self, b: &Backend, c: ClusterFile, resumed: bool) -> Step {
        let saved = if resumed {
            load::<TokensFile>(b, state::TOKENS).and_then(|f| Tokens::from_file(f, &c))
        } else {
            // A fresh registration: any tokens file predates it.
            b.remove(state::TOKENS);
            None
        };
        match &saved {
            Some(t) if t.valid(now_ms()) => {
                log::info!("backend: valid tokens already exist for cluster");
            }
            Some(_) => log::info!("backend: saved tokens are near expiry; refreshing them"),
            None if resumed => {
                log::info!("backend: no valid tokens found, fetching tokens for existing cluster")
            }
            None => {}
        }
        b.update(|s| {
            s.phase = Phase::Registered;
            s.cluster = Some(c.clone());
            s.tokens = saved;
            s.generation += 1;
            s.token_problem = None;
        });
        Step::Registered(c)
    }

    fn keep_tokens(&mut self, b: &Backend, c: ClusterFile) -> Duration {
        let delay = {
            let _one_at_a_time = lock(&b.token_lock);
            // Re-read under the lock: a worker may have renewed meanwhile.
            let (has, refresh_in) = {
                let s = lock(&b.shared);
                match &s.tokens {
                    Some(t) => (true, t.refresh_in_ms(now_ms())),
                    None => (false, 0),
                }
            };
            if has && refresh_in > 0 {
                Ok(Duration::from_millis(refresh_in).min(b.timing.idle_check))
            } else {
                if has {
                    log::debug!("backend: proactively refreshing tokens");
                }
                b.renew_locked(&c).map(|()| {
                    let next = lock(&b.shared)
                        .tokens
                        .as_ref()
                        .map_or(0, |t| t.refresh_in_ms(now_ms()));
                    Duration::from_millis(next)
                        .max(b.timing.min_refresh_gap)
                        .min(b.timing.idle_check)
                })
            }
        };
        self.step = Step::Registered(c);
        match delay {
            Ok(d) => {
                self.recovered();
                d
            }
            Err(TokenError::NoTokens) => {
                let d = self.retry_delay(None);
                self.warn_retry(
                    "no tokens found for cluster; the backend lists none yet".into(),
                    d,
                );
                d
            }
            Err(TokenError::Api(e)) => {
                let d = self.retry_delay(e.retry_after());
                self.warn_retry(format!("token refresh failed: {e}"), d);
                d
            }
        }
    }
}

/// A saved file, or `None` (logged) when it is missing or unusable.
fn load<T: serde::de::DeserializeOwned>(b: &Backend, name: &str) -> Option<T> {
    match b.store.load(name) {
        Ok(v) => v,
        Err(e) => {
            log::warn!("backend: ignoring unusable state file {e}");
            None
        }
    }
}
