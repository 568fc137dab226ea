/*!
The optional OpsCtrl backend (on when `OPSCTRL_BACKEND_URL`, `CLUSTER_NAME`
and `USER_EMAIL` are set): the original daemon's cluster registration, claim
and token flow, and `POST /daemon/analyze-stack` for each incident (the
original sent it and discarded the answer).

The daemon calls three things:
- [`Backend::start`] once, with the settings, where the cluster id comes from
  (the kube `Client`: `clu_` + the UID of namespace `kube-system`) and the
  metrics. It returns at once; one background thread registers, waits for the
  claim and keeps the tokens fresh, forever, retrying with backoff.
- [`Backend::analyze`] from the delivery workers, per item. It answers
  `Ok(None)` at once while the cluster is not registered or has no tokens:
  monitoring never waits for the backend.
- [`Backend::status`] for logs; the same state is kept in
  `metrics.backend_status()` (a `BackendStatus`) for `/health`.

What is fixed compared with the original:
- registration never blocks monitoring and never gives up (the original
  retried for 5 minutes, then exited; the health server was not even up);
  a pending claim shows in `/health` and in the log with its claim URL;
- the cluster id is stable: when `kube-system` cannot be read the thread
  retries, and never makes up a random id (which made the next start
  discard the registration);
- one cluster id for tokens, the backend's `cluster_foreign_id` (see
  `tokens`);
- a refresh answered 401/403 fetches tokens again (#3, then an exchange)
  instead of deleting them and silently stopping all reports until restart;
  a failed first exchange is retried rather than exiting the process;
- state files are written atomically, mode 0600;
- the analysis the backend returns is handed back for the alert, not dropped;
- the payload is capped (`report::MAX_PAYLOAD_BYTES`).

Submodules: `state` (the files), `tokens` (validity, pure), `registration`
(the state machine's decisions, pure), `api` (the HTTP calls), `report` (the
payload, pure), `runner` (the background thread).

Tokens never reach a log line, a status or an error: they are `Secret`s in
memory, and backend error bodies are scrubbed of them.
*/

pub mod api;
pub mod registration;
pub mod report;
mod runner;
pub mod state;
pub mod tokens;

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::Value;

use self::api::{Api, ApiError};
use self::state::{ClusterFile, Store};
use self::tokens::Tokens;
use crate::metrics::{BackendStatus, Counters, Metrics};
use crate::model::State;
use crate::model::{Failure, Item};
use crate::secret::Secret;
use crate::settings;
use crate::util::sync::{lock, wait_timeout_while};

/// Where the cluster id comes from: the UID of namespace `kube-system`.
/// The kube `Client` is one; tests pass a closure.
pub trait ClusterIdSource: Send + 'static {
    fn kube_system_uid(&mut self) -> Result<String, String>;
}

impl<F> ClusterIdSource for F
where
    F: FnMut() -> Result<String, String> + Send + 'static,
{
    fn kube_system_uid(&mut self) -> Result<String, String> {
        self()
    }
}

impl ClusterIdSource for crate::kube::client::Client {
    /// `GET /api/v1/namespaces/kube-system` (RBAC: get on namespaces).
    fn kube_system_uid(&mut self) -> Result<String, String> {
        let ns = self
            .get_json_value("/api/v1/namespaces/kube-system")
            .map_err(|e| e.to_string())?;
        ns.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "the kube-system namespace has no metadata.uid".to_string())
    }
}

/// `clu_<uid>`, once the UID looks like one (it goes into URLs and files).
pub fn cluster_id_from_uid(uid: &str) -> Result<String, String> {
    let uid = uid.trim();
    let plausible = !uid.is_empty()
        && uid.len() <= 128
        && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !plausible {
        let shown: String = uid.chars().take(64).collect();
        return Err(format!("unusable kube-system UID {shown:?}"));
    }
    Ok(format!("clu_{uid}"))
}

/// The background thread's pace. `Default` is production; tests shorten it.
#[derive(Clone, Debug)]
pub struct Timing {
    /// How often a pending claim is checked (the original: 10 s).
    pub claim_check: Duration,
    /// How often the claim URL is repeated in the log while pending.
    pub claim_reminder: Duration,
    /// First delay after a failure; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Longest sleep while the tokens need nothing (re-checks are cheap).
    pub idle_check: Duration,
    /// Least time between two proactive refreshes, whatever `expiresIn` says.
    pub min_refresh_gap: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            claim_check: Duration::from_secs(15),
            claim_reminder: Duration::from_secs(600),
            retry_initial: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            idle_check: Duration::from_secs(60),
            min_refresh_gap: Duration::from_secs(5),
        }
    }
}

/// Where registration stands, for the status line.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// The cluster id is not known yet.
    Starting,
    /// Not registered, and the last attempt failed (retrying).
    Failing(String),
    /// Waiting for the user to claim the cluster; `note` says more when
    /// the check itself had trouble.
    Pending {
        claim_url: String,
        note: Option<String>,
    },
    Registered,
}

struct Shared {
    phase: Phase,
    cluster: Option<ClusterFile>,
    tokens: Option<Tokens>,
    /// Bumped on every change of `tokens`: a worker that saw a 401 with
    /// generation g renews only if nobody has since.
    generation: u64,
    /// Why there are no tokens, or why refreshing them fails.
    token_problem: Option<String>,
}

/// What `/health` and the logs show for the shared state.
fn status_of(s: &Shared) -> BackendStatus {
    match &s.phase {
        Phase::Starting => BackendStatus::Starting,
        Phase::Failing(why) => BackendStatus::Failing(why.clone()),
        Phase::Pending { claim_url, note } => BackendStatus::Pending {
            claim_url: claim_url.clone(),
            note: note.clone(),
        },
        Phase::Registered => BackendStatus::Registered {
            tokens: s.tokens.is_some(),
            problem: s.token_problem.clone(),
        },
    }
}

/// Wakes the background thread early, and tells it to stop.
struct Wake {
    /// (poked, closed)
    flags: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Wake {
    fn poke(&self) {
        lock(&self.flags).0 = true;
        self.cv.notify_all();
    }

    fn close(&self) {
        lock(&self.flags).1 = true;
        self.cv.notify_all();
    }

    /// Sleeps `d` or until poked; false once closed.
    fn sleep(&self, d: Duration) -> bool {
        let mut g = lock(&self.flags);
        if !g.0 && !g.1 && !d.is_zero() {
            g = wait_timeout_while(&self.cv, g, d, |f| !f.0 && !f.1);
        }
        g.0 = false;
        !g.1
    }
}

/// Why no tokens could be had.
#[derive(Debug)]
enum TokenError {
    /// The backend lists none for this cluster (yet).
    NoTokens,
    Api(ApiError),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::NoTokens => f.write_str("the backend lists no tokens for this cluster"),
            TokenError::Api(e) => write!(f, "{e}"),
        }
    }
}

/// An access token to send, with the generation it belongs to.
struct Credentials {
    access: Secret,
    generation: u64,
    expired: bool,
}

/// The backend client: thread-safe, shared through `Arc`.
pub struct Backend {
    api: Api,
    store: Store,
    settings: settings::Backend,
    metrics: Arc<Metrics>,
    timing: Timing,
    shared: Mutex<Shared>,
    /// Held across every token exchange and fetch, so two threads never
    /// spend the same (rotating) refresh token.
    token_lock: Mutex<()>,
    wake: Arc<Wake>,
}

impl Backend {
    /// Starts the background thread and returns at once.
    pub fn start(
        settings: &settings::Backend,
        cluster_id: impl ClusterIdSource,
        metrics: Arc<Metrics>,
    ) -> Arc<Backend> {
        Backend::start_with(settings, cluster_id, metrics, Timing::default())
    }

    /// `start` with another pace (tests).
    pub fn start_with(
        settings: &settings::Backend,
        cluster_id: impl ClusterIdSource,
        metrics: Arc<Metrics>,
        timing: Timing,
    ) -> Arc<Backend> {
        let backend = Arc::new(Backend {
            api: Api::new(&settings.url),
            store: Store::new(&settings.state_dir),
            settings: settings.clone(),
            metrics,
            timing,
            shared: Mutex::new(Shared {
                phase: Phase::Starting,
                cluster: None,
                tokens: None,
                generation: 0,
                token_problem: None,
            }),
            token_lock: Mutex::new(()),
            wake: Arc::new(Wake {
                flags: Mutex::new((false, false)),
                cv: Condvar::new(),
            }),
        });
        backend.update(|_| {});
        log::info!(
            "backend: on url={} state_dir={}",
            backend.api.base(),
            backend.store.dir().display()
        );
        runner::spawn(&backend, Box::new(cluster_id));
        backend
    }

    /// One line for logs and `/health` (see `status_line`). Never holds a token.
    pub fn status(&self) -> String {
        status_of(&lock(&self.shared)).to_string()
    }

    /// Registered, with tokens: `analyze` will send.
    pub fn ready(&self) -> bool {
        let s = lock(&self.shared);
        s.phase == Phase::Registered && s.tokens.is_some()
    }

    /// Sends one item to `POST /daemon/analyze-stack` and returns the
    /// backend's analysis, for the caller to attach as `diagnosis.backend`.
    ///
    /// - `Ok(None)` at once, with nothing sent, while the cluster is not
    ///   registered or has no tokens, and for resolved incidents (nothing
    ///   to analyse); also when the backend answers an empty body.
    /// - A 401 renews the tokens once (refresh, or a fresh fetch when the
    ///   refresh is refused) and sends again.
    /// - `Err(Failure::Retry)` for timeouts, connection errors, 408, 429
    ///   and 5xx: the caller may try again later. `Err(Failure::Permanent)`
    ///   otherwise. Either way the alert can go without the analysis.
    ///
    /// The caller passes events and logs already redacted; the payload is
    /// capped at `report::MAX_PAYLOAD_BYTES`. One call takes at most the
    /// request timeout (60 s) twice, plus a token renewal when one is
    /// needed or already in progress (15 s per token call).
    pub fn analyze(&self, item: &Item) -> Result<Option<Value>, Failure> {
        if item.incident.state == State::Resolved {
            return Ok(None);
        }
        let Some(mut cred) = self.credentials() else {
            return Ok(None);
        };
        if cred.expired {
            // Sending it would only earn a 401: renew first.
            self.renew(cred.generation)?;
            cred = match self.credentials() {
                Some(c) => c,
                None => return Ok(None),
            };
        }
        let payload = report::payload(item, report::MAX_PAYLOAD_BYTES);
        let result = match self.api.analyze_stack(&cred.access, &payload) {
            Err(e) if e.code() == Some(401) => {
                self.count_failure();
                log::info!(
                    "backend: analyze-stack answered 401; renewing the tokens and sending again"
                );
                self.renew(cred.generation)?;
                match self.credentials() {
                    Some(c) => self.api.analyze_stack(&c.access, &payload),
                    None => Err(ApiError::Status {
                        code: 401,
                        message: "no tokens after renewal".into(),
                        retry_after: None,
                    }),
                }
            }
            other => other,
        };
        let f = &item.incident.finding;
        match result {
            Ok(analysis) => {
                Counters::inc(&self.metrics.counters.backend_reports);
                log::debug!(
                    "backend: analyze-stack sent pod={}/{} analysis={}",
                    f.namespace,
                    f.pod,
                    analysis.is_some()
                );
                Ok(analysis)
            }
            Err(e) => {
                self.count_failure();
                log::warn!(
                    "backend: failed to analyze stack pod={}/{}: {e}",
                    f.namespace,
                    f.pod
                );
                Err(e.to_failure())
            }
        }
    }

    fn credentials(&self) -> Option<Credentials> {
        let s = lock(&self.shared);
        if s.phase != Phase::Registered {
            return None;
        }
        let t = s.tokens.as_ref()?;
        Some(Credentials {
            access: t.access.clone(),
            generation: s.generation,
            expired: t.expired(now_ms()),
        })
    }

    /// After a 401 (or with an expired token) seen at `generation`: gets
    /// new tokens unless another thread already did.
    fn renew(&self, generation: u64) -> Result<(), Failure> {
        let _one_at_a_time = lock(&self.token_lock);
        let (current, cluster) = {
            let s = lock(&self.shared);
            (s.generation, s.cluster.clone())
        };
        if current != generation {
            return Ok(());
        }
        let Some(cluster) = cluster else {
            return Err(Failure::Permanent("the cluster is not registered".into()));
        };
        match self.renew_locked(&cluster) {
            Ok(()) => Ok(()),
            Err(e) => {
                log::warn!("backend: could not renew the tokens ({e})");
                // The background thread owns retrying; let it start now.
                self.wake.poke();
                match e {
                    TokenError::NoTokens => Err(Failure::Permanent(e.to_string())),
                    TokenError::Api(e) => Err(e.to_failure()),
                }
            }
        }
    }

    /// Refreshes the tokens, or fetches new ones when there are none or the
    /// backend refuses the refresh. The caller holds `token_lock`.
    fn renew_locked(&self, cluster: &ClusterFile) -> Result<(), TokenError> {
        let refresh = lock(&self.shared)
            .tokens
            .as_ref()
            .map(|t| t.refresh.clone());
        if let Some(refresh) = refresh {
            match self.exchange(cluster, &refresh) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => {
                    log::warn!(
                        "backend: tokens refreshed but not stored ({}: {e}); they last until restart",
                        self.store.path(state::TOKENS).display()
                    );
                    return Ok(());
                }
                Err(e) if e.rejected() => {
                    // The original deleted tokens.json here and stopped
                    // reporting until a restart; fetch new ones instead.
                    log::warn!("backend: token refresh refused ({e}); fetching tokens again");
                    self.drop_tokens(&format!("refresh refused: {e}"));
                }
                Err(e) => {
                    self.note_token_problem(&e.to_string());
                    return Err(TokenError::Api(e));
                }
            }
        }
        let fetched = self.fetch_tokens(cluster);
        if let Err(e) = &fetched {
            self.note_token_problem(&e.to_string());
        }
        fetched
    }

    /// #3 then #4: the first listed refresh token, exchanged for a pair.
    fn fetch_tokens(&self, cluster: &ClusterFile) -> Result<(), TokenError> {
        log::info!(
            "backend: fetching authentication tokens cluster_id={}",
            cluster.cluster_foreign_id
        );
        let listed = self
            .api
            .cluster_tokens(&cluster.cluster_foreign_id, cluster.org_id.as_deref())
            .map_err(|e| TokenError::Api(self.call_failed(e)))?;
        let Some(refresh) = listed else {
            return Err(TokenError::NoTokens);
        };
        // Say what really happened: after a failed write (ENOSPC, a
        // read-only volume) the tokens live in memory only.
        match self.exchange(cluster, &refresh).map_err(TokenError::Api)? {
            Ok(()) => log::info!("backend: authentication tokens received and stored"),
            Err(e) => log::warn!(
                "backend: authentication tokens received but not stored ({}: {e}); they last until restart",
                self.store.path(state::TOKENS).display()
            ),
        }
        Ok(())
    }

    /// #4 with `refresh` and the backend id; keeps and saves the new pair.
    /// The inner result is the save's: the tokens are in use either way.
    fn exchange(
        &self,
        cluster: &ClusterFile,
        refresh: &Secret,
    ) -> Result<std::io::Result<()>, ApiError> {
        let x = self
            .api
            .refresh(refresh, &cluster.cluster_foreign_id)
            .map_err(|e| self.call_failed(e))?;
        let t = Tokens::issued(x, refresh, cluster, now_ms());
        let saved = self.store.save(state::TOKENS, &t.to_file());
        log::debug!(
            "backend: tokens refreshed expires_in_s={} cluster_id={}",
            t.expires_in,
            t.cluster_id
        );
        self.update(|s| {
            s.tokens = Some(t);
            s.generation += 1;
            s.token_problem = None;
        });
        Ok(saved)
    }

    /// Forgets tokens the backend no longer accepts (memory and file).
    fn drop_tokens(&self, why: &str) {
        if let Err(e) = self.store.remove(state::TOKENS) {
            log::warn!("backend: cannot remove tokens.json: {e}");
        }
        self.update(|s| {
            s.tokens = None;
            s.generation += 1;
            s.token_problem = Some(why.to_string());
        });
    }

    fn note_token_problem(&self, why: &str) {
        self.update(|s| s.token_problem = Some(why.to_string()));
    }

    fn count_failure(&self) {
        Counters::inc(&self.metrics.counters.backend_failures);
    }

    /// Counts a failed backend call and hands the error on.
    fn call_failed(&self, e: ApiError) -> ApiError {
        self.count_failure();
        e
    }

    /// Changes the shared state and republishes the status line.
    fn update(&self, f: impl FnOnce(&mut Shared)) {
        let status = {
            let mut s = lock(&self.shared);
            f(&mut s);
            status_of(&s)
        };
        self.metrics.set_backend_status(status);
    }

    /// Saves a state file; a failure is logged, not fatal (the state then
    /// lasts until restart, and registering again is harmless).
    fn save<T: serde::Serialize>(&self, name: &str, value: &T) {
        if let Err(e) = self.store.save(name, value) {
            log::warn!(
                "backend: cannot save {}: {e}; it lasts until restart",
                self.store.path(name).display()
            );
        }
    }

    fn remove(&self, name: &str) {
        if let Err(e) = self.store.remove(name) {
            log::warn!(
                "backend: cannot remove {}: {e}",
                self.store.path(name).display()
            );
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        // Lets the background thread end at its next wake-up.
        self.wake.close();
    }
}

/// Unix milliseconds now.
pub use crate::util::time::{format_millis as iso_ms, now_ms};

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(phase: Phase, tokens: bool, problem: Option<&str>) -> Shared {
        let c = ClusterFile {
            cluster_id: "clu_1".into(),
            cluster_name: "n".into(),
            user_email: "e@x.io".into(),
            registered_at: String::new(),
            is_claimed: true,
            org_id: None,
            cluster_foreign_id: "c-1".into(),
        };
        Shared {
            phase,
            tokens: tokens.then(|| {
                Tokens::issued(
                    tokens::Exchange {
                        access: Secret::new("access-secret"),
                        refresh: Some(Secret::new("refresh-secret")),
                        expires_in: 60,
                    },
                    &Secret::new("x"),
                    &c,
                    0,
                )
            }),
            cluster: Some(c),
            generation: 0,
            token_problem: problem.map(str::to_string),
        }
    }

    #[test]
    fn status_lines() {
        let url = "https://app.opsctrl.dev/claim?cluster=clu_1".to_string();
        let cases = [
            (shared(Phase::Starting, false, None), "starting".to_string()),
            (
                shared(Phase::Failing("HTTP 500".into()), false, None),
                "error: HTTP 500".into(),
            ),
            (
                shared(
                    Phase::Pending {
                        claim_url: url.clone(),
                        note: None,
                    },
                    false,
                    None,
                ),
                format!("pending: claim at {url}"),
            ),
            (shared(Phase::Registered, true, None), "registered".into()),
            (
                shared(Phase::Registered, true, Some("HTTP 502")),
                "registered (token refresh failing: HTTP 502)".into(),
            ),
            (
                shared(Phase::Registered, false, None),
                "registered, no tokens yet: fetching".into(),
            ),
        ];
        for (s, want) in cases {
            let line = status_of(&s).to_string();
            assert_eq!(line, want);
            assert!(!line.contains("secret"));
        }
        let pending = status_of(&shared(
            Phase::Pending {
                claim_url: url.clone(),
                note: Some("check failed: HTTP 503".into()),
            },
            false,
            None,
        ));
        assert_eq!(pending.claim_url(), Some(url.as_str()));
        assert_eq!(pending.as_str(), "pending");
        assert_eq!(
            pending.to_string(),
            format!("pending: claim at {url} (check failed: HTTP 503)")
        );
        assert_eq!(
            status_of(&shared(Phase::Registered, true, None)).claim_url(),
            None
        );
    }

    #[test]
    fn cluster_ids_come_only_from_a_real_uid() {
        assert_eq!(
            cluster_id_from_uid(" 0f6e8d2a-1b2c-4d5e-9f00-123456789abc\n"),
            Ok("clu_0f6e8d2a-1b2c-4d5e-9f00-123456789abc".into())
        );
        for bad in ["", "  ", "../etc", "a b", &"a".repeat(200)] {
            assert!(cluster_id_from_uid(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_have_milliseconds_like_javascript() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_709_296_205_042), "2024-03-01T12:30:05.042Z");
    }

    #[test]
    fn the_wake_ends_sleeps_early_and_reports_closing() {
        let w = Wake {
            flags: Mutex::new((false, false)),
            cv: Condvar::new(),
        };
        w.poke();
        let t = std::time::Instant::now();
        assert!(w.sleep(Duration::from_secs(30)));
        assert!(t.elapsed() < Duration::from_secs(5));
        w.close();
        assert!(!w.sleep(Duration::from_secs(30)));
    }
}
