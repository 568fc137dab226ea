/*!
The validated settings, as the rest of the daemon uses them: typed, in the
units the code works in (durations, counts), with optional features as
`Option`s that are `Some` only when fully configured.
*/

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Severity;
use crate::secret::Secret;

pub use crate::logging::LogFormat;

/// Where the watches look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One cluster-wide watch; these namespaces are filtered out server-side.
    Cluster { exclude: Vec<String> },
    /// One watch per namespace.
    Namespaces(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reconnect {
    pub enabled: bool,
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    pub max_failures: u32,
}

/// The validated settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub scope: Scope,
    pub label_selector: Option<String>,
    pub page_size: u32,
    /// The shortest `timeoutSeconds` of a WATCH (the longest is twice it).
    pub watch_timeout_s: u64,
    /// `WATCH_IDLE_TIMEOUT_SECONDS`: a watch silent this long is dead.
    pub watch_idle: Duration,
    pub reconnect: Reconnect,
    /// `None` when the health endpoint is disabled.
    pub health_port: Option<u16>,
    /// `HEALTH_SHOW_CLAIM_URL`: /health shows the pending claim URL.
    pub health_claim_url: bool,
    /// `WATCHDOG_MS`: no progress this long makes /healthz fail (zero: off).
    pub watchdog: Duration,
    /// A level name, or an env_logger filter when it came from `RUST_LOG`.
    pub log_filter: String,
    pub log_format: LogFormat,
    /// `CLUSTER_NAME`, when set.
    pub cluster_name: Option<String>,
    pub output: Output,
    pub detect: Detect,
    pub diagnosis: DiagnosisSettings,
    /// `Some` when OPSCTRL_BACKEND_URL, CLUSTER_NAME and USER_EMAIL are set.
    pub backend: Option<Backend>,
    pub alerts: Alerts,
    /// `Some` when LEADER_ELECTION=true.
    pub leader: Option<Leader>,
}

/// Enrichment, rules and the optional LLM.
#[derive(Clone, Debug, PartialEq)]
pub struct DiagnosisSettings {
    pub enabled: bool,
    pub timeout: Duration,
    pub cache_ttl: Duration,
    pub cache_max_entries: usize,
    pub include_logs: bool,
    pub rules_file: Option<PathBuf>,
    pub llm: Option<Llm>,
}

/// An OpenAI-compatible chat-completions API.
#[derive(Clone, Debug, PartialEq)]
pub struct Llm {
    /// Without a trailing slash, e.g. `http://ollama:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
}

/// The OpsCtrl backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Backend {
    /// Without a trailing slash.
    pub url: String,
    pub frontend_url: String,
    pub user_email: String,
    pub cluster_name: String,
    pub state_dir: PathBuf,
}

/// Delivery: the worker pool, retries and the sinks.
#[derive(Clone, Debug, PartialEq)]
pub struct Alerts {
    pub workers: usize,
    pub queue_size: usize,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Severities that reach the notification sinks.
    pub severities: Vec<Severity>,
    pub slack_webhook: Option<Secret>,
    pub slack_bot: Option<SlackBot>,
    pub webhook: Option<Webhook>,
    /// A Teams Workflows webhook URL (the URL is the credential).
    pub teams: Option<Secret>,
    /// A Discord webhook URL (the URL is the credential).
    pub discord: Option<Secret>,
    pub telegram: Option<Telegram>,
    pub ntfy: Option<Ntfy>,
    pub pagerduty: Option<PagerDuty>,
    pub opsgenie: Option<Opsgenie>,
    pub alertmanager: Option<Alertmanager>,
    /// `ALERT_LINK_URL`: a link template per incident.
    pub link_url: Option<String>,
    pub emit_k8s_events: bool,
    /// `ROUTES_FILE`: read and checked at start-up (`routing::Routes::load`).
    pub routes_file: Option<PathBuf>,
    /// `SILENCES_FILE`: read and checked at start-up (`routing::Silences::load`).
    pub silences_file: Option<PathBuf>,
    pub shutdown_drain: Duration,
    /// `DASHBOARD_URL_TEMPLATE`: the workload's link in Slack.
    pub dashboard: Option<crate::util::url_template::UrlTemplate>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlackBot {
    pub token: Secret,
    /// Web API base, without a trailing slash (`https://slack.com/api`).
    pub api_url: String,
    /// The default channel.
    pub channel: String,
    /// (namespace, channel), first match wins.
    pub routes: Vec<(String, String)>,
}

impl SlackBot {
    /// The channel for an incident in this namespace.
    pub fn channel_for(&self, namespace: &str) -> &str {
        self.routes
            .iter()
            .find(|(ns, _)| ns == namespace)
            .map_or(self.channel.as_str(), |(_, ch)| ch.as_str())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// May carry a token in its path or query: never logged.
    pub url: Secret,
    pub auth_header: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Telegram {
    /// Part of every request's path: never logged.
    pub token: Secret,
    pub chat_id: String,
    /// Bot API base, without a trailing slash.
    pub api_url: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ntfy {
    /// The topic URL; the topic name is what lets anyone subscribe, so secret.
    pub url: Secret,
    pub token: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PagerDuty {
    pub routing_key: Secret,
    pub events_url: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpsgenieRegion {
    Us,
    Eu,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Opsgenie {
    pub api_key: Secret,
    /// API base, without a trailing slash (`https://api.opsgenie.com`).
    pub api_url: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alertmanager {
    /// Base URL, without a trailing slash; may carry credentials (user:pass@).
    pub url: Secret,
    pub auth_header: Option<Secret>,
    /// Open incidents are posted again this often (below resolve_timeout).
    pub repost: Duration,
}

/// Lease-based leader election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    pub namespace: String,
    pub name: String,
    /// This replica's holder identity (POD_NAME, else the host name).
    pub identity: String,
}

/// How incidents are printed on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Detection and incident settings, in the settings' units (milliseconds,
/// counts); `detect::tuning` converts them for each engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detect {
    pub min_restart: u32,
    pub max_pending_ms: i64,
    pub image_pull_grace_ms: i64,
    pub not_ready_grace_ms: i64,
    pub node_not_ready_grace_ms: i64,
    pub node_unschedulable_grace_ms: i64,
    pub resolve_after_ms: i64,
    pub rate_limit_ms: i64,
    pub renotify_ms: i64,
    pub batch_ms: i64,
    pub storm_threshold: usize,
}
