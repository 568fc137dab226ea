/*!
Every setting the daemon accepts, in one table, and their validation.

`SETTINGS` drives `--help`, environment parsing and the README's settings
table, so a setting cannot be documented but not parsed (or the reverse).
Each setting is read from its `--flag` first, then its environment variable,
then its default. Validation collects *every* problem before giving up, so a
user fixing a manifest sees all of them at once (the daemon then exits 2).

The names, defaults and ranges are the original OpsCtrl daemon's, except that
`WATCH_NAMESPACES` is optional (default: all namespaces) and the health
endpoint is on by default. Settings that belong to features not built yet are
not accepted at all: an accepted setting always has an effect.
*/

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::logging::LogFormat;
use crate::model::Severity;
use crate::secret::Secret;

/// One setting: its names, default, allowed values and one-line doc.
#[derive(Debug)]
pub struct Spec {
    pub env: &'static str,
    /// Long flag, with its leading `--`.
    pub flag: &'static str,
    pub value: &'static str,
    pub default: &'static str,
    pub allowed: &'static str,
    pub doc: &'static str,
}

pub const SETTINGS: &[Spec] = &[
    Spec {
        env: "WATCH_NAMESPACES",
        flag: "--watch-namespaces",
        value: "NS,NS",
        default: "*",
        allowed: "comma-separated namespace names, or * for all namespaces",
        doc: "Namespaces to watch. * (or unset) is one cluster-wide watch; a list is one watch per namespace, so a namespaced Role is enough.",
    },
    Spec {
        env: "EXCLUDE_NAMESPACES",
        flag: "--exclude-namespaces",
        value: "NS,NS",
        default: "kube-system,kube-public,kube-node-lease",
        allowed: "comma-separated namespace names, or empty for none",
        doc: "Namespaces never watched. Cluster-wide, they are filtered by the API server with a field selector.",
    },
    Spec {
        env: "WATCH_LABEL_SELECTOR",
        flag: "--label-selector",
        value: "SELECTOR",
        default: "",
        allowed: "a Kubernetes label selector, e.g. app=web,tier!=cache",
        doc: "Only watch pods matching this label selector (passed to the API server).",
    },
    Spec {
        env: "LIST_PAGE_SIZE",
        flag: "--list-page-size",
        value: "N",
        default: "500",
        allowed: "an integer from 1 to 10000",
        doc: "Pods per LIST page (limit + continue), which bounds memory while listing.",
    },
    Spec {
        env: "WATCH_TIMEOUT_SECONDS",
        flag: "--watch-timeout-seconds",
        value: "N",
        default: "300",
        allowed: "an integer from 5 to 3600",
        doc: "Each WATCH asks the API server to end it after N to 2N seconds (jittered), and then resumes from where it was without relisting. Lower it when a proxy or load balancer between the daemon and the API server cuts long requests sooner.",
    },
    Spec {
        env: "RECONNECTION_ENABLED",
        flag: "--reconnection-enabled",
        value: "BOOL",
        default: "true",
        allowed: "true or false",
        doc: "Reconnect failed watches forever with backoff. false: the first failed LIST or WATCH stops the daemon with exit 1, for supervisors that prefer to restart it.",
    },
    Spec {
        env: "RECONNECTION_INITIAL_BACKOFF_MS",
        flag: "--reconnection-initial-backoff-ms",
        value: "MS",
        default: "1000",
        allowed: "an integer from 100 to 60000",
        doc: "First delay after a failed LIST or WATCH (jittered).",
    },
    Spec {
        env: "RECONNECTION_MAX_BACKOFF_MS",
        flag: "--reconnection-max-backoff-ms",
        value: "MS",
        default: "30000",
        allowed: "an integer from 1000 to 600000, not below RECONNECTION_INITIAL_BACKOFF_MS",
        doc: "Cap on the delay between retries.",
    },
    Spec {
        env: "RECONNECTION_BACKOFF_MULTIPLIER",
        flag: "--reconnection-backoff-multiplier",
        value: "X",
        default: "2",
        allowed: "a number from 1.1 to 10",
        doc: "Growth factor of the delay after each consecutive failure.",
    },
    Spec {
        env: "RECONNECTION_MAX_FAILURES",
        flag: "--reconnection-max-failures",
        value: "N",
        default: "5",
        allowed: "an integer from 1 to 100",
        doc: "Consecutive failures after which a watch is reported unhealthy (/health answers 503 with isHealthy false, and an error is logged). Retrying never stops.",
    },
    Spec {
        env: "ENABLE_HEALTH_CHECK",
        flag: "--enable-health-check",
        value: "BOOL",
        default: "true",
        allowed: "true or false",
        doc: "Serve /healthz, /readyz, /health and /metrics.",
    },
    Spec {
        env: "HEALTH_CHECK_PORT",
        flag: "--health-check-port",
        value: "PORT",
        default: "3000",
        allowed: "an integer from 1024 to 65535, or 0 for any free port (logged at start)",
        doc: "Port of the health and metrics endpoint (all interfaces).",
    },
    Spec {
        env: "WATCHDOG_MS",
        flag: "--watchdog-ms",
        value: "MS",
        default: "60000",
        allowed: "an integer from 0 to 3600000 (0: off)",
        doc: "/healthz answers 503 when the classification thread has made no progress for this long, so the kubelet restarts a stuck daemon.",
    },
    Spec {
        env: "CLUSTER_NAME",
        flag: "--cluster-name",
        value: "NAME",
        default: "",
        allowed: "1 to 64 letters, digits, '-' or '_'",
        doc: "Cluster name carried by every incident (the `cluster` field). Unset: the kubeconfig context name, or `in-cluster`.",
    },
    Spec {
        env: "OUTPUT",
        flag: "--output",
        value: "FORMAT",
        default: "text",
        allowed: "text or json",
        doc: "How incidents are printed on stdout: readable lines, or one JSON object per line (`scan`: a table or a JSON array). Also `-o`.",
    },
    Spec {
        env: "MIN_RESTART_THRESHOLD",
        flag: "--min-restart-threshold",
        value: "N",
        default: "3",
        allowed: "an integer from 1 to 100",
        doc: "Restarts at which a running container with a recent, uncounted termination is reported as HighRestartCount.",
    },
    Spec {
        env: "MAX_PENDING_DURATION_MS",
        flag: "--max-pending-duration-ms",
        value: "MS",
        default: "600000",
        allowed: "an integer from 30000 to 3600000",
        doc: "How long a pod may stay Pending (Unschedulable: since the scheduler said so; otherwise since creation) before it is reported.",
    },
    Spec {
        env: "IMAGE_PULL_GRACE_MS",
        flag: "--image-pull-grace-ms",
        value: "MS",
        default: "60000",
        allowed: "an integer from 0 to 3600000",
        doc: "How long ErrImagePull alone is tolerated (first pulls fail transiently); ImagePullBackOff is reported at once.",
    },
    Spec {
        env: "NOT_READY_GRACE_MS",
        flag: "--not-ready-grace-ms",
        value: "MS",
        default: "300000",
        allowed: "an integer from 1000 to 86400000",
        doc: "How long a Running pod may be not Ready (since its Ready condition changed) before it is reported as NotReady.",
    },
    Spec {
        env: "RESOLVE_AFTER_MS",
        flag: "--resolve-after-ms",
        value: "MS",
        default: "120000",
        allowed: "an integer from 0 to 86400000",
        doc: "How long every pod of an incident must be healthy (Running and Ready, or Succeeded) before it is resolved; also how long an incident whose pods were all deleted waits for a failing replacement.",
    },
    Spec {
        env: "ALERT_RATE_LIMIT_WINDOW_MINUTES",
        flag: "--alert-rate-limit-window-minutes",
        value: "MIN",
        default: "5",
        allowed: "an integer from 0 to 1440",
        doc: "Minimum gap between two notifications of one incident; updates in between are folded into the next one. A resolution or an escalation is never held back.",
    },
    Spec {
        env: "ALERT_RENOTIFY_MINUTES",
        flag: "--alert-renotify-minutes",
        value: "MIN",
        default: "240",
        allowed: "an integer from 0 to 10080 (0 = never)",
        doc: "Re-announce a still-open incident this often.",
    },
    Spec {
        env: "NOTIFY_BATCH_MS",
        flag: "--notify-batch-ms",
        value: "MS",
        default: "5000",
        allowed: "an integer from 0 to 60000",
        doc: "How long the first new incident waits for others, so a burst is notified together.",
    },
    Spec {
        env: "STORM_THRESHOLD",
        flag: "--storm-threshold",
        value: "N",
        default: "10",
        allowed: "an integer from 1 to 100000",
        doc: "A batch of more new incidents than this is notified as one grouped message naming what they share (node, image registry, namespace).",
    },
    Spec {
        env: "LOG_LEVEL",
        flag: "--log-level",
        value: "LEVEL",
        default: "info",
        allowed: "error, warn, info, debug or trace",
        doc: "Log verbosity. RUST_LOG, when set, overrides it with env_logger's filter syntax (a flag beats both).",
    },
    Spec {
        env: "LOG_FORMAT",
        flag: "--log-format",
        value: "FORMAT",
        default: "text",
        allowed: "text or json",
        doc: "Log lines on stderr: text (an RFC 3339 UTC timestamp, the level, the module, the message) or json (one object per line: ts, level, target, msg, and record=log, which tells them from OUTPUT=json's record=incident lines on stdout).",
    },
    Spec {
        env: "DIAGNOSIS_ENABLED",
        flag: "--diagnosis-enabled",
        value: "BOOL",
        default: "true",
        allowed: "true or false",
        doc: "Enrich incidents (events, logs) and diagnose them with the rules (and the LLM when configured). false: the rules still name a cause from the pod alone, with no API calls and no LLM.",
    },
    Spec {
        env: "DIAGNOSIS_TIMEOUT_MS",
        flag: "--diagnosis-timeout-ms",
        value: "MS",
        default: "30000",
        allowed: "an integer from 5000 to 300000",
        doc: "Time budget of one LLM answer; past it the rules' diagnosis stands.",
    },
    Spec {
        env: "DIAGNOSIS_CACHE_TTL_MS",
        flag: "--diagnosis-cache-ttl-ms",
        value: "MS",
        default: "300000",
        allowed: "an integer from 60000 to 86400000",
        doc: "How long an LLM answer is reused for the same incident fingerprint.",
    },
    Spec {
        env: "DIAGNOSIS_CACHE_MAX_ENTRIES",
        flag: "--diagnosis-cache-max-entries",
        value: "N",
        default: "1000",
        allowed: "an integer from 10 to 50000",
        doc: "LLM answers kept (least recently used evicted first).",
    },
    Spec {
        env: "INCLUDE_LOGS",
        flag: "--include-logs",
        value: "BOOL",
        default: "false",
        allowed: "true or false",
        doc: "Read the failing container's previous logs (last 50 lines, 16 KiB, redacted) for the diagnosis and the alert. Needs get on pods/log.",
    },
    Spec {
        env: "RULES_FILE",
        flag: "--rules-file",
        value: "PATH",
        default: "",
        allowed: "a readable JSON file of rules (see Diagnosis)",
        doc: "Your own diagnosis rules, tried before the built-in ones; a rule with a built-in rule's id replaces it.",
    },
    Spec {
        env: "LLM_BASE_URL",
        flag: "--llm-base-url",
        value: "URL",
        default: "",
        allowed: "an http or https URL of an OpenAI-compatible API (…/v1)",
        doc: "Ask an LLM (OpenAI, Ollama, vLLM, LM Studio) for a second opinion, attached as diagnosis.ai. Needs LLM_MODEL.",
    },
    Spec {
        env: "LLM_MODEL",
        flag: "--llm-model",
        value: "NAME",
        default: "",
        allowed: "a model name without spaces",
        doc: "The model to ask, e.g. gpt-4o-mini or llama3.1:8b.",
    },
    Spec {
        env: "LLM_API_KEY",
        flag: "--llm-api-key",
        value: "KEY",
        default: "",
        allowed: "a key without spaces; not with LLM_API_KEY_FILE",
        doc: "Bearer key for the LLM API (none for a local Ollama). Prefer LLM_API_KEY_FILE.",
    },
    Spec {
        env: "LLM_API_KEY_FILE",
        flag: "--llm-api-key-file",
        value: "PATH",
        default: "",
        allowed: "a readable file holding the key",
        doc: "File holding the LLM key (a mounted Secret).",
    },
    Spec {
        env: "OPSCTRL_BACKEND_URL",
        flag: "--opsctrl-backend-url",
        value: "URL",
        default: "",
        allowed: "an http or https URL",
        doc: "The OpsCtrl backend. With CLUSTER_NAME and USER_EMAIL, the cluster registers and failures are sent to /daemon/analyze-stack.",
    },
    Spec {
        env: "OPSCTRL_FRONTEND_URL",
        flag: "--opsctrl-frontend-url",
        value: "URL",
        default: "https://app.opsctrl.dev",
        allowed: "an http or https URL",
        doc: "Where the claim link of a pending registration points.",
    },
    Spec {
        env: "USER_EMAIL",
        flag: "--user-email",
        value: "EMAIL",
        default: "",
        allowed: "an email address; only with OPSCTRL_BACKEND_URL",
        doc: "The OpsCtrl account that claims this cluster.",
    },
    Spec {
        env: "OPSCTRL_STATE_DIR",
        flag: "--opsctrl-state-dir",
        value: "DIR",
        default: "~/.opsctrl",
        allowed: "an absolute directory path, or ~/…",
        doc: "Where cluster.json, pending.json and tokens.json are kept (mode 0600).",
    },
    Spec {
        env: "ALERT_WORKERS",
        flag: "--alert-workers",
        value: "N",
        default: "2",
        allowed: "an integer from 1 to 16",
        doc: "Threads that enrich notifications (each sink also has its own delivery thread).",
    },
    Spec {
        env: "ALERT_QUEUE_SIZE",
        flag: "--alert-queue-size",
        value: "N",
        default: "1000",
        allowed: "an integer from 10 to 100000",
        doc: "Notifications waiting for a worker; when full, the oldest of the lowest severity is dropped (logged and counted).",
    },
    Spec {
        env: "ALERT_MAX_ATTEMPTS",
        flag: "--alert-max-attempts",
        value: "N",
        default: "3",
        allowed: "an integer from 1 to 10",
        doc: "Tries per sink and message (429 and 5xx and network errors are retried; other 4xx are not).",
    },
    Spec {
        env: "ALERT_BACKOFF_MS",
        flag: "--alert-backoff-ms",
        value: "MS",
        default: "1000",
        allowed: "an integer from 100 to 60000",
        doc: "First delay between tries (doubled each time, jittered; a 429's Retry-After wins).",
    },
    Spec {
        env: "ALERT_MAX_BACKOFF_MS",
        flag: "--alert-max-backoff-ms",
        value: "MS",
        default: "30000",
        allowed: "an integer from 1000 to 300000, not below ALERT_BACKOFF_MS",
        doc: "Longest delay between tries.",
    },
    Spec {
        env: "ALERT_SEVERITY_FILTERS",
        flag: "--alert-severity-filters",
        value: "LIST",
        default: "medium,high,critical",
        allowed: "a comma list of informational, low, medium, high, critical",
        doc: "Severities that reach Slack, webhooks and Kubernetes Events (stdout gets everything). A resolution follows its incident.",
    },
    Spec {
        env: "SLACK_WEBHOOK_URL",
        flag: "--slack-webhook-url",
        value: "URL",
        default: "",
        allowed: "an http or https URL (a Slack incoming webhook)",
        doc: "Post Block Kit alerts to this Slack (or Slack-compatible, e.g. Mattermost) incoming webhook.",
    },
    Spec {
        env: "SLACK_BOT_TOKEN",
        flag: "--slack-bot-token",
        value: "TOKEN",
        default: "",
        allowed: "a Slack bot token (xoxb-…); not with SLACK_BOT_TOKEN_FILE",
        doc: "Post with a Slack app instead: one message per incident, updates and the resolution in its thread. Needs SLACK_CHANNEL.",
    },
    Spec {
        env: "SLACK_BOT_TOKEN_FILE",
        flag: "--slack-bot-token-file",
        value: "PATH",
        default: "",
        allowed: "a readable file holding the token",
        doc: "File holding the Slack bot token (a mounted Secret).",
    },
    Spec {
        env: "SLACK_API_URL",
        flag: "--slack-api-url",
        value: "URL",
        default: "https://slack.com/api",
        allowed: "an http or https URL",
        doc: "Base URL of the Slack Web API the bot calls (for a proxy or a Slack-compatible server).",
    },
    Spec {
        env: "SLACK_CHANNEL",
        flag: "--slack-channel",
        value: "CHANNEL",
        default: "",
        allowed: "a channel name (#alerts) or id (C0123…); only with a bot token",
        doc: "The bot's default channel.",
    },
    Spec {
        env: "SLACK_CHANNEL_ROUTES",
        flag: "--slack-channel-routes",
        value: "NS=CH,…",
        default: "",
        allowed: "comma-separated namespace=channel pairs; only with a bot token",
        doc: "Per-namespace channels for the bot, e.g. payments=#pay-alerts,staging=#staging.",
    },
    Spec {
        env: "WEBHOOK_URL",
        flag: "--webhook-url",
        value: "URL",
        default: "",
        allowed: "an http or https URL",
        doc: "POST each notification as JSON (the stable schema plus the original daemon's alert fields). A hooks.slack.com URL is treated as SLACK_WEBHOOK_URL.",
    },
    Spec {
        env: "WEBHOOK_AUTH_HEADER",
        flag: "--webhook-auth-header",
        value: "VALUE",
        default: "",
        allowed: "a header value (e.g. Bearer abc); not with WEBHOOK_AUTH_HEADER_FILE",
        doc: "Sent as the Authorization header of WEBHOOK_URL requests.",
    },
    Spec {
        env: "WEBHOOK_AUTH_HEADER_FILE",
        flag: "--webhook-auth-header-file",
        value: "PATH",
        default: "",
        allowed: "a readable file holding the header value",
        doc: "File holding the Authorization header value (a mounted Secret).",
    },
    Spec {
        env: "EMIT_K8S_EVENTS",
        flag: "--emit-k8s-events",
        value: "BOOL",
        default: "false",
        allowed: "true or false",
        doc: "Write an Event (reason OpsctrlDiagnosis) on the failing pod with the cause and fix, so kubectl describe pod shows it. Needs create on events.",
    },
    Spec {
        env: "SHUTDOWN_DRAIN_MS",
        flag: "--shutdown-drain-ms",
        value: "MS",
        default: "10000",
        allowed: "an integer from 0 to 300000",
        doc: "On SIGTERM, time left to deliver queued notifications; what is still queued is logged, one line each.",
    },
    Spec {
        env: "LEADER_ELECTION",
        flag: "--leader-election",
        value: "BOOL",
        default: "false",
        allowed: "true or false",
        doc: "Run several replicas: a coordination.k8s.io Lease picks the one that sends notifications; the others watch and stay warm. Needs leases in its namespace.",
    },
    Spec {
        env: "LEADER_ELECTION_NAMESPACE",
        flag: "--leader-election-namespace",
        value: "NS",
        default: "",
        allowed: "a namespace name (default: the pod's own namespace)",
        doc: "Namespace of the Lease.",
    },
    Spec {
        env: "LEADER_ELECTION_NAME",
        flag: "--leader-election-name",
        value: "NAME",
        default: "opsctrl-daemon",
        allowed: "a lowercase DNS name",
        doc: "Name of the Lease.",
    },
];

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
    pub reconnect: Reconnect,
    /// `None` when the health endpoint is disabled.
    pub health_port: Option<u16>,
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

impl Default for DiagnosisSettings {
    fn default() -> Self {
        DiagnosisSettings {
            enabled: true,
            timeout: Duration::from_millis(30_000),
            cache_ttl: Duration::from_millis(300_000),
            cache_max_entries: 1000,
            include_logs: false,
            rules_file: None,
            llm: None,
        }
    }
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
    pub emit_k8s_events: bool,
    pub shutdown_drain: Duration,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            workers: 2,
            queue_size: 1000,
            max_attempts: 3,
            backoff: Duration::from_millis(1000),
            max_backoff: Duration::from_millis(30_000),
            severities: vec![Severity::Medium, Severity::High, Severity::Critical],
            slack_webhook: None,
            slack_bot: None,
            webhook: None,
            emit_k8s_events: false,
            shutdown_drain: Duration::from_millis(10_000),
        }
    }
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

/// Detection and incident settings, in the units the engines use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detect {
    pub min_restart: u32,
    pub max_pending_ms: i64,
    pub image_pull_grace_ms: i64,
    pub not_ready_grace_ms: i64,
    pub resolve_after_ms: i64,
    pub rate_limit_ms: i64,
    pub renotify_ms: i64,
    pub batch_ms: i64,
    pub storm_threshold: usize,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            min_restart: 3,
            max_pending_ms: 600_000,
            image_pull_grace_ms: 60_000,
            not_ready_grace_ms: 300_000,
            resolve_after_ms: 120_000,
            rate_limit_ms: 5 * 60_000,
            renotify_ms: 240 * 60_000,
            batch_ms: 5000,
            storm_threshold: 10,
        }
    }
}

/// One bad setting: which one, the value given, and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `WATCH_NAMESPACES` or `--watch-namespaces`, whichever the value came from.
    pub name: String,
    pub value: String,
    pub why: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.name, self.value, self.why)
    }
}

/// Raw values as given: a flag value if the flag was passed, else the env var.
pub trait Source {
    fn flag(&self, flag: &str) -> Option<String>;
    fn env(&self, env: &str) -> Option<String>;
}

struct Reader<'a> {
    source: &'a dyn Source,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn spec(env: &str) -> &'static Spec {
        SETTINGS
            .iter()
            .find(|s| s.env == env)
            .expect("every setting read is in SETTINGS")
    }

    /// The raw value and the name it came under.
    fn raw(&self, env: &str) -> (String, String) {
        let spec = Self::spec(env);
        if let Some(v) = self.source.flag(spec.flag) {
            return (spec.flag.to_string(), v);
        }
        if let Some(v) = self.source.env(spec.env) {
            return (spec.env.to_string(), v);
        }
        (spec.env.to_string(), spec.default.to_string())
    }

    fn bad(&mut self, name: String, value: String, why: String) {
        self.problems.push(Problem { name, value, why });
    }

    fn parse<T>(&mut self, env: &str, default: T, f: impl FnOnce(&str) -> Option<T>) -> T {
        let (name, value) = self.raw(env);
        match f(value.trim()) {
            Some(v) => v,
            None => {
                let why = format!("allowed: {}", Self::spec(env).allowed);
                self.bad(name, value, why);
                default
            }
        }
    }

    fn int(&mut self, env: &str, default: u64, min: u64, max: u64) -> u64 {
        self.parse(env, default, |v| {
            v.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
        })
    }

    fn boolean(&mut self, env: &str, default: bool) -> bool {
        // The original accepted exactly true/false, case-insensitively.
        self.parse(env, default, |v| match v.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
    }

    fn namespaces(&mut self, env: &str) -> Vec<String> {
        let (name, value) = self.raw(env);
        let mut out = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "*" && env == "WATCH_NAMESPACES" {
                out.push(part.to_string());
            } else if is_dns_label(part) {
                if !out.iter().any(|o| o == part) {
                    out.push(part.to_string());
                }
            } else {
                let why = format!(
                    "{part:?} is not a namespace name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); allowed: {}",
                    Self::spec(env).allowed
                );
                self.bad(name.clone(), value.clone(), why);
            }
        }
        out
    }
}

/// RFC 1123 label, which is what a namespace name must be.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Characters a label selector can contain; the API server does the real
/// validation, this only catches obvious mistakes (quotes, spaces in keys…)
/// before any request is made.
fn plausible_label_selector(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-_/=!,()".contains(c))
        && !s.contains("===")
}

/// Reads and validates every setting, collecting all problems.
pub fn resolve(source: &dyn Source) -> Result<Settings, Vec<Problem>> {
    let mut r = Reader {
        source,
        problems: Vec::new(),
    };

    let watch = r.namespaces("WATCH_NAMESPACES");
    let exclude = r.namespaces("EXCLUDE_NAMESPACES");
    let scope = if watch.is_empty() || watch.iter().any(|n| n == "*") {
        if watch.len() > 1 {
            let (name, value) = r.raw("WATCH_NAMESPACES");
            r.bad(
                name,
                value,
                "* cannot be combined with namespace names; allowed: comma-separated namespace names, or * for all namespaces".into(),
            );
        }
        Scope::Cluster { exclude }
    } else {
        let kept: Vec<String> = watch.into_iter().filter(|n| !exclude.contains(n)).collect();
        if kept.is_empty() {
            let (name, value) = r.raw("WATCH_NAMESPACES");
            r.bad(
                name,
                value,
                "every namespace listed is also in EXCLUDE_NAMESPACES, so nothing would be watched"
                    .into(),
            );
        }
        Scope::Namespaces(kept)
    };

    let label_selector = {
        let (name, value) = r.raw("WATCH_LABEL_SELECTOR");
        let v = value.trim();
        if v.is_empty() {
            None
        } else if plausible_label_selector(v) {
            Some(v.to_string())
        } else {
            r.bad(
                name,
                value.clone(),
                format!("allowed: {}", Reader::spec("WATCH_LABEL_SELECTOR").allowed),
            );
            None
        }
    };

    let page_size = r.int("LIST_PAGE_SIZE", 500, 1, 10_000) as u32;
    let watch_timeout_s = r.int("WATCH_TIMEOUT_SECONDS", 300, 5, 3600);
    let enabled = r.boolean("RECONNECTION_ENABLED", true);
    let initial = r.int("RECONNECTION_INITIAL_BACKOFF_MS", 1000, 100, 60_000);
    let max = r.int("RECONNECTION_MAX_BACKOFF_MS", 30_000, 1000, 600_000);
    if max < initial {
        let (name, value) = r.raw("RECONNECTION_MAX_BACKOFF_MS");
        r.bad(
            name,
            value,
            format!("is below RECONNECTION_INITIAL_BACKOFF_MS ({initial})"),
        );
    }
    let multiplier = r.parse("RECONNECTION_BACKOFF_MULTIPLIER", 2.0, |v| {
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && (1.1..=10.0).contains(x))
    });
    let max_failures = r.int("RECONNECTION_MAX_FAILURES", 5, 1, 100) as u32;
    let health_on = r.boolean("ENABLE_HEALTH_CHECK", true);
    let port = r.parse("HEALTH_CHECK_PORT", 3000, |v| {
        v.parse().ok().filter(|p| *p == 0 || *p >= 1024)
    });
    let watchdog = Duration::from_millis(r.int("WATCHDOG_MS", 60_000, 0, 3_600_000));

    let log_filter = {
        let spec = Reader::spec("LOG_LEVEL");
        let level = |v: &str| {
            let v = v.to_ascii_lowercase();
            ["error", "warn", "info", "debug", "trace"]
                .contains(&v.as_str())
                .then_some(v)
        };
        match (source.flag(spec.flag), source.env("RUST_LOG")) {
            (None, Some(rust_log)) if !rust_log.trim().is_empty() => {
                // Still validate LOG_LEVEL if it is set: a typo must not pass silently.
                r.parse("LOG_LEVEL", String::new(), level);
                rust_log
            }
            _ => r.parse("LOG_LEVEL", "info".to_string(), level),
        }
    };

    let cluster_name = {
        let (name, value) = r.raw("CLUSTER_NAME");
        let v = value.trim();
        let ok = |v: &str| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        };
        if v.is_empty() {
            None
        } else if ok(v) {
            Some(v.to_string())
        } else {
            let why = format!("allowed: {}", Reader::spec("CLUSTER_NAME").allowed);
            r.bad(name, value.clone(), why);
            None
        }
    };
    let log_format = r.parse("LOG_FORMAT", LogFormat::Text, |v| match v {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    });
    let output = r.parse("OUTPUT", Output::Text, |v| match v {
        "text" => Some(Output::Text),
        "json" => Some(Output::Json),
        _ => None,
    });
    let ms = |v: u64| v as i64;
    let detect = Detect {
        min_restart: r.int("MIN_RESTART_THRESHOLD", 3, 1, 100) as u32,
        max_pending_ms: ms(r.int("MAX_PENDING_DURATION_MS", 600_000, 30_000, 3_600_000)),
        image_pull_grace_ms: ms(r.int("IMAGE_PULL_GRACE_MS", 60_000, 0, 3_600_000)),
        not_ready_grace_ms: ms(r.int("NOT_READY_GRACE_MS", 300_000, 1000, 86_400_000)),
        resolve_after_ms: ms(r.int("RESOLVE_AFTER_MS", 120_000, 0, 86_400_000)),
        rate_limit_ms: ms(r.int("ALERT_RATE_LIMIT_WINDOW_MINUTES", 5, 0, 1440)) * 60_000,
        renotify_ms: ms(r.int("ALERT_RENOTIFY_MINUTES", 240, 0, 10_080)) * 60_000,
        batch_ms: ms(r.int("NOTIFY_BATCH_MS", 5000, 0, 60_000)),
        storm_threshold: r.int("STORM_THRESHOLD", 10, 1, 100_000) as usize,
    };

    let diagnosis = diagnosis_settings(&mut r);
    let backend = backend_settings(&mut r, cluster_name.as_deref());
    let alerts = alert_settings(&mut r);
    let leader = leader_settings(&mut r);

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Settings {
        scope,
        label_selector,
        page_size,
        watch_timeout_s,
        reconnect: Reconnect {
            enabled,
            initial: Duration::from_millis(initial),
            max: Duration::from_millis(max),
            multiplier,
            max_failures,
        },
        health_port: health_on.then_some(port),
        watchdog,
        log_filter,
        log_format,
        cluster_name,
        output,
        detect,
        diagnosis,
        backend,
        alerts,
        leader,
    })
}

/// A URL we will POST to: http(s), with a host. Trailing slashes dropped.
fn http_url(v: &str) -> Option<String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let ok = !host.is_empty()
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !host.starts_with(':');
    ok.then(|| v.trim_end_matches('/').to_string())
}

/// Whether a URL's host is Slack's incoming-webhook host.
pub fn is_slack_webhook(url: &str) -> bool {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .and_then(|r| r.split(['/', '?', '#', ':']).next())
        .is_some_and(|h| h.eq_ignore_ascii_case("hooks.slack.com"))
}

fn plausible_email(v: &str) -> bool {
    let Some((user, domain)) = v.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

fn token_like(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Most bytes read from a `*_FILE` secret: keys and tokens are far smaller,
/// and a path to a device (`/dev/zero`) must fail, not be read forever.
const MAX_SECRET_FILE: u64 = 64 * 1024;

fn read_secret_file(path: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_SECRET_FILE} bytes"
        )));
    }
    Ok(text)
}

fn slack_channel(v: &str) -> bool {
    let name = v.strip_prefix('#').unwrap_or(v);
    (1..=80).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl Reader<'_> {
    /// A set, non-empty value (trimmed), or `None` when unset or empty.
    fn optional(&self, env: &str) -> Option<(String, String)> {
        let (name, value) = self.raw(env);
        let v = value.trim();
        (!v.is_empty()).then(|| (name, v.to_string()))
    }

    /// A problem whose value must not be echoed (a key, a token, a URL with a token).
    fn bad_secret(&mut self, name: String, why: String) {
        self.bad(name, "<redacted>".into(), why);
    }

    /// `ENV` or `ENV_FILE` (never both): the secret, read and trimmed.
    fn secret(&mut self, env: &str, file_env: &str, check: fn(&str) -> bool) -> Option<Secret> {
        let direct = self.optional(env);
        let file = self.optional(file_env);
        match (direct, file) {
            (Some((name, _)), Some((fname, _))) => {
                self.bad_secret(
                    name,
                    format!("set both this and {fname}; allowed: one of them"),
                );
                None
            }
            (Some((name, v)), None) => {
                if check(&v) {
                    Some(Secret::new(v))
                } else {
                    let why = format!("allowed: {}", Self::spec(env).allowed);
                    self.bad_secret(name, why);
                    None
                }
            }
            (None, Some((name, path))) => match read_secret_file(&path) {
                Ok(text) if check(text.trim()) => Some(Secret::new(text.trim())),
                Ok(_) => {
                    let why = format!(
                        "the file holds no usable value; allowed: {}",
                        Self::spec(env).allowed
                    );
                    self.bad(name, path, why);
                    None
                }
                Err(e) => {
                    self.bad(name, path, format!("cannot read it: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn url(&mut self, env: &str, secret: bool) -> Option<String> {
        let (name, v) = self.optional(env)?;
        match http_url(&v) {
            Some(u) => Some(u),
            None => {
                let why = format!("allowed: {}", Self::spec(env).allowed);
                if secret {
                    self.bad_secret(name, why);
                } else {
                    self.bad(name, v, why);
                }
                None
            }
        }
    }

    /// Whether a problem was already reported for this setting, or for its
    /// `_FILE` form, under its variable or its flag.
    fn reported(&self, env: &str) -> bool {
        SETTINGS
            .iter()
            .filter(|s| s.env == env || s.env.strip_suffix("_FILE") == Some(env))
            .any(|s| {
                self.problems
                    .iter()
                    .any(|p| p.name == s.env || p.name == s.flag)
            })
    }

    /// A setting that only means something with another one.
    fn requires(&mut self, env: &str, other: &str) {
        let spec = Self::spec(env);
        let given = self
            .source
            .flag(spec.flag)
            .map(|v| (spec.flag.to_string(), v))
            .or_else(|| self.source.env(spec.env).map(|v| (spec.env.to_string(), v)))
            .filter(|(_, v)| !v.trim().is_empty());
        // One line per mistake: a value already reported as invalid gets no
        // "has no effect" line on top, and neither does a setting whose partner
        // was given but is invalid (it is not missing, it is wrong).
        if self.reported(env) || self.reported(other) {
            return;
        }
        if let Some((name, v)) = given {
            self.bad(
                name,
                v,
                format!("has no effect without {other}; set both or neither"),
            );
        }
    }
}

fn diagnosis_settings(r: &mut Reader) -> DiagnosisSettings {
    let enabled = r.boolean("DIAGNOSIS_ENABLED", true);
    let timeout = r.int("DIAGNOSIS_TIMEOUT_MS", 30_000, 5000, 300_000);
    let ttl = r.int("DIAGNOSIS_CACHE_TTL_MS", 300_000, 60_000, 86_400_000);
    let max = r.int("DIAGNOSIS_CACHE_MAX_ENTRIES", 1000, 10, 50_000) as usize;
    let include_logs = r.boolean("INCLUDE_LOGS", false);
    let rules_file =
        r.optional("RULES_FILE")
            .and_then(|(name, path)| match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => Some(PathBuf::from(path)),
                Ok(_) => {
                    r.bad(name, path, "is not a file".into());
                    None
                }
                Err(e) => {
                    r.bad(name, path, format!("cannot read it: {e}"));
                    None
                }
            });
    let base_url = r.url("LLM_BASE_URL", false);
    let model = match r.optional("LLM_MODEL") {
        Some((name, v)) if !token_like(&v) => {
            let why = format!("allowed: {}", Reader::spec("LLM_MODEL").allowed);
            r.bad(name, v, why);
            None
        }
        other => other.map(|(_, v)| v),
    };
    let api_key = r.secret("LLM_API_KEY", "LLM_API_KEY_FILE", token_like);
    let llm = match (base_url, model) {
        (Some(base_url), Some(model)) => Some(Llm {
            base_url,
            model,
            api_key,
        }),
        (Some(_), None) => {
            let (name, v) = r.raw("LLM_BASE_URL");
            r.bad(name, v, "needs LLM_MODEL too".into());
            None
        }
        (None, _) => {
            r.requires("LLM_MODEL", "LLM_BASE_URL");
            if api_key.is_some() && !r.reported("LLM_BASE_URL") {
                let name = if r.optional("LLM_API_KEY").is_some() {
                    "LLM_API_KEY"
                } else {
                    "LLM_API_KEY_FILE"
                };
                r.bad_secret(
                    name.into(),
                    "has no effect without LLM_BASE_URL; set both or neither".into(),
                );
            }
            None
        }
    };
    DiagnosisSettings {
        enabled,
        timeout: Duration::from_millis(timeout),
        cache_ttl: Duration::from_millis(ttl),
        cache_max_entries: max,
        include_logs,
        rules_file,
        llm,
    }
}

/// `~` at the start of a path is the home directory, as in the original.
fn expand_home(path: &str, home: Option<String>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(path),
    }
}

fn backend_settings(r: &mut Reader, cluster_name: Option<&str>) -> Option<Backend> {
    let url = r.url("OPSCTRL_BACKEND_URL", false);
    let frontend_url = r
        .url("OPSCTRL_FRONTEND_URL", false)
        .unwrap_or_else(|| "https://app.opsctrl.dev".into());
    let email = match r.optional("USER_EMAIL") {
        Some((name, v)) if !plausible_email(&v) => {
            let why = format!("allowed: {}", Reader::spec("USER_EMAIL").allowed);
            r.bad(name, v, why);
            None
        }
        other => other.map(|(_, v)| v),
    };
    // Checked before the backend URL: a bad directory given explicitly is
    // reported even when the URL is missing or wrong too.
    let state_dir = {
        let (name, v) = r.raw("OPSCTRL_STATE_DIR");
        let dir = expand_home(v.trim(), r.source.env("HOME"));
        let spec = Reader::spec("OPSCTRL_STATE_DIR");
        let given = r
            .source
            .flag(spec.flag)
            .or_else(|| r.source.env(spec.env))
            .is_some_and(|v| !v.trim().is_empty());
        if !dir.is_absolute() && (url.is_some() || given) {
            r.bad(
                name,
                v,
                "allowed: an absolute directory path, or one starting with ~/ (with HOME set)"
                    .into(),
            );
        }
        dir
    };
    let Some(url) = url else {
        if email.is_some() {
            r.requires("USER_EMAIL", "OPSCTRL_BACKEND_URL");
        }
        r.requires("OPSCTRL_STATE_DIR", "OPSCTRL_BACKEND_URL");
        r.requires("OPSCTRL_FRONTEND_URL", "OPSCTRL_BACKEND_URL");
        return None;
    };
    let missing: Vec<&str> = [
        ("CLUSTER_NAME", cluster_name.is_none()),
        ("USER_EMAIL", email.is_none()),
    ]
    .into_iter()
    .filter_map(|(n, m)| m.then_some(n))
    .collect();
    if !missing.is_empty() {
        let (name, v) = r.raw("OPSCTRL_BACKEND_URL");
        r.bad(
            name,
            v,
            format!("the backend also needs {} set", missing.join(" and ")),
        );
        return None;
    }
    Some(Backend {
        url,
        frontend_url,
        user_email: email.unwrap_or_default(),
        cluster_name: cluster_name.unwrap_or_default().to_string(),
        state_dir,
    })
}

fn alert_settings(r: &mut Reader) -> Alerts {
    let workers = r.int("ALERT_WORKERS", 2, 1, 16) as usize;
    let queue_size = r.int("ALERT_QUEUE_SIZE", 1000, 10, 100_000) as usize;
    let max_attempts = r.int("ALERT_MAX_ATTEMPTS", 3, 1, 10) as u32;
    let backoff = r.int("ALERT_BACKOFF_MS", 1000, 100, 60_000);
    let max_backoff = r.int("ALERT_MAX_BACKOFF_MS", 30_000, 1000, 300_000);
    if max_backoff < backoff {
        let (name, value) = r.raw("ALERT_MAX_BACKOFF_MS");
        r.bad(
            name,
            value,
            format!("is below ALERT_BACKOFF_MS ({backoff})"),
        );
    }
    let severities = r.parse(
        "ALERT_SEVERITY_FILTERS",
        Alerts::default().severities,
        |v| {
            let mut out = Vec::new();
            for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let s = Severity::ALL
                    .into_iter()
                    .find(|s| s.as_str().eq_ignore_ascii_case(part))?;
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            (!out.is_empty()).then_some(out)
        },
    );
    let mut slack_webhook = r.url("SLACK_WEBHOOK_URL", true).map(Secret::new);
    let mut webhook_url = r.url("WEBHOOK_URL", true);
    if webhook_url.as_deref().is_some_and(is_slack_webhook) {
        if slack_webhook.is_some() {
            r.bad_secret(
                "WEBHOOK_URL".into(),
                "is a Slack webhook and SLACK_WEBHOOK_URL is set too; allowed: one Slack webhook"
                    .into(),
            );
        } else {
            slack_webhook = webhook_url.take().map(Secret::new);
        }
    }
    let auth_header = r.secret("WEBHOOK_AUTH_HEADER", "WEBHOOK_AUTH_HEADER_FILE", |v| {
        !v.is_empty() && !v.chars().any(char::is_control)
    });
    let webhook = match webhook_url {
        Some(url) => Some(Webhook {
            url: Secret::new(url),
            auth_header,
        }),
        None => {
            if auth_header.is_some() && !r.reported("WEBHOOK_URL") {
                r.bad_secret(
                    "WEBHOOK_AUTH_HEADER".into(),
                    "has no effect without a (non-Slack) WEBHOOK_URL".into(),
                );
            }
            None
        }
    };
    let token = r.secret("SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN_FILE", |v| {
        token_like(v) && v.starts_with("xox")
    });
    let channel = match r.optional("SLACK_CHANNEL") {
        Some((name, v)) if !slack_channel(&v) => {
            let why = format!("allowed: {}", Reader::spec("SLACK_CHANNEL").allowed);
            r.bad(name, v, why);
            None
        }
        other => other.map(|(_, v)| v),
    };
    let routes = match r.optional("SLACK_CHANNEL_ROUTES") {
        None => Vec::new(),
        Some((name, v)) => {
            let mut out = Vec::new();
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match pair.split_once('=').map(|(a, b)| (a.trim(), b.trim())) {
                    Some((ns, ch)) if is_dns_label(ns) && slack_channel(ch) => {
                        out.push((ns.to_string(), ch.to_string()));
                    }
                    _ => {
                        let why = format!(
                            "{pair:?} is not namespace=channel; allowed: {}",
                            Reader::spec("SLACK_CHANNEL_ROUTES").allowed
                        );
                        r.bad(name.clone(), v.clone(), why);
                    }
                }
            }
            out
        }
    };
    let api_url = r
        .url("SLACK_API_URL", false)
        .unwrap_or_else(|| "https://slack.com/api".into());
    let slack_bot = match (token, channel) {
        (Some(token), Some(channel)) => Some(SlackBot {
            token,
            api_url,
            channel,
            routes,
        }),
        (Some(_), None) => {
            r.bad(
                "SLACK_CHANNEL".into(),
                String::new(),
                "is required with a Slack bot token".into(),
            );
            None
        }
        (None, _) => {
            r.requires("SLACK_CHANNEL", "SLACK_BOT_TOKEN");
            r.requires("SLACK_CHANNEL_ROUTES", "SLACK_BOT_TOKEN");
            r.requires("SLACK_API_URL", "SLACK_BOT_TOKEN");
            None
        }
    };
    let emit_k8s_events = r.boolean("EMIT_K8S_EVENTS", false);
    let drain = r.int("SHUTDOWN_DRAIN_MS", 10_000, 0, 300_000);
    Alerts {
        workers,
        queue_size,
        max_attempts,
        backoff: Duration::from_millis(backoff),
        max_backoff: Duration::from_millis(max_backoff),
        severities,
        slack_webhook,
        slack_bot,
        webhook,
        emit_k8s_events,
        shutdown_drain: Duration::from_millis(drain),
    }
}

/// The namespace a pod runs in, from the downward API or the service account.
fn own_namespace(source: &dyn Source) -> Option<String> {
    source
        .env("POD_NAMESPACE")
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        })
        .map(|s| s.trim().to_string())
        .filter(|s| is_dns_label(s))
}

fn leader_settings(r: &mut Reader) -> Option<Leader> {
    let on = r.boolean("LEADER_ELECTION", false);
    let ns = match r.optional("LEADER_ELECTION_NAMESPACE") {
        Some((name, v)) if !is_dns_label(&v) => {
            let why = format!(
                "allowed: {}",
                Reader::spec("LEADER_ELECTION_NAMESPACE").allowed
            );
            r.bad(name, v, why);
            None
        }
        other => other.map(|(_, v)| v),
    };
    let (name_src, lease) = r.raw("LEADER_ELECTION_NAME");
    let lease = lease.trim().to_string();
    let dns_name = !lease.is_empty() && lease.len() <= 253 && lease.split('.').all(is_dns_label);
    if !dns_name {
        let why = format!("allowed: {}", Reader::spec("LEADER_ELECTION_NAME").allowed);
        r.bad(name_src, lease.clone(), why);
    }
    if !on {
        return None;
    }
    let namespace = match ns.or_else(|| own_namespace(r.source)) {
        Some(ns) => ns,
        None => {
            r.bad(
                "LEADER_ELECTION_NAMESPACE".into(),
                String::new(),
                "is required outside a pod (no POD_NAMESPACE and no service-account namespace file)".into(),
            );
            return None;
        }
    };
    let identity = r
        .source
        .env("POD_NAME")
        .or_else(|| r.source.env("HOSTNAME"))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("opsctrl-daemon-{}", std::process::id()));
    Some(Leader {
        namespace,
        name: lease,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        flags: HashMap<String, String>,
        env: HashMap<String, String>,
    }
    impl Source for Fake {
        fn flag(&self, flag: &str) -> Option<String> {
            self.flags.get(flag).cloned()
        }
        fn env(&self, env: &str) -> Option<String> {
            self.env.get(env).cloned()
        }
    }
    fn env(pairs: &[(&str, &str)]) -> Fake {
        Fake {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Fake::default()
        }
    }

    #[test]
    fn defaults_watch_the_whole_cluster_minus_system_namespaces() {
        let s = resolve(&Fake::default()).unwrap();
        assert_eq!(
            s.scope,
            Scope::Cluster {
                exclude: vec![
                    "kube-system".into(),
                    "kube-public".into(),
                    "kube-node-lease".into()
                ]
            }
        );
        assert_eq!(s.health_port, Some(3000));
        assert_eq!(s.page_size, 500);
        assert_eq!(s.watch_timeout_s, 300);
        assert_eq!(s.reconnect.initial, Duration::from_millis(1000));
        assert_eq!(s.reconnect.max, Duration::from_secs(30));
        assert_eq!(s.reconnect.multiplier, 2.0);
        assert_eq!(s.reconnect.max_failures, 5);
        assert!(s.reconnect.enabled);
        assert_eq!(s.log_filter, "info");
    }

    #[test]
    fn a_namespace_list_drops_excluded_ones_and_duplicates() {
        let s = resolve(&env(&[
            ("WATCH_NAMESPACES", "a, b,a,kube-system"),
            ("EXCLUDE_NAMESPACES", "kube-system"),
        ]))
        .unwrap();
        assert_eq!(s.scope, Scope::Namespaces(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn empty_watch_namespaces_means_all() {
        let s = resolve(&env(&[
            ("WATCH_NAMESPACES", ""),
            ("EXCLUDE_NAMESPACES", ""),
        ]))
        .unwrap();
        assert_eq!(s.scope, Scope::Cluster { exclude: vec![] });
    }

    #[test]
    fn detection_settings_convert_to_engine_units() {
        let s = resolve(&env(&[
            ("ALERT_RATE_LIMIT_WINDOW_MINUTES", "0"),
            ("ALERT_RENOTIFY_MINUTES", "60"),
            ("MAX_PENDING_DURATION_MS", "30000"),
            ("CLUSTER_NAME", "edge_1"),
            ("OUTPUT", "json"),
        ]))
        .unwrap();
        assert_eq!(s.detect.rate_limit_ms, 0);
        assert_eq!(s.detect.renotify_ms, 3_600_000);
        assert_eq!(s.detect.max_pending_ms, 30_000);
        assert_eq!(s.detect.image_pull_grace_ms, 60_000);
        assert_eq!(s.cluster_name.as_deref(), Some("edge_1"));
        assert_eq!(s.output, Output::Json);
        assert_eq!(resolve(&Fake::default()).unwrap().detect, Detect::default());
    }

    #[test]
    fn flags_beat_environment() {
        let mut f = env(&[("HEALTH_CHECK_PORT", "4000")]);
        f.flags.insert("--health-check-port".into(), "5000".into());
        assert_eq!(resolve(&f).unwrap().health_port, Some(5000));
    }

    #[test]
    fn health_endpoint_can_be_disabled() {
        let s = resolve(&env(&[("ENABLE_HEALTH_CHECK", "FALSE")])).unwrap();
        assert_eq!(s.health_port, None);
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let problems = resolve(&env(&[
            ("WATCH_NAMESPACES", "Prod_1"),
            ("HEALTH_CHECK_PORT", "80"),
            ("RECONNECTION_ENABLED", "yes"),
            ("RECONNECTION_BACKOFF_MULTIPLIER", "1.0"),
            ("LOG_LEVEL", "verbose"),
            ("LIST_PAGE_SIZE", "0"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WATCH_NAMESPACES",
                "LIST_PAGE_SIZE",
                "RECONNECTION_ENABLED",
                "RECONNECTION_BACKOFF_MULTIPLIER",
                "HEALTH_CHECK_PORT",
                "LOG_LEVEL"
            ]
        );
        assert_eq!(
            problems[4].to_string(),
            "HEALTH_CHECK_PORT=\"80\": allowed: an integer from 1024 to 65535, or 0 for any free port (logged at start)"
        );
    }

    #[test]
    fn a_bad_flag_is_named_as_the_flag() {
        let mut f = Fake::default();
        f.flags
            .insert("--reconnection-max-failures".into(), "0".into());
        let p = resolve(&f).unwrap_err();
        assert_eq!(p[0].name, "--reconnection-max-failures");
    }

    #[test]
    fn max_backoff_below_initial_is_rejected() {
        let p = resolve(&env(&[
            ("RECONNECTION_INITIAL_BACKOFF_MS", "5000"),
            ("RECONNECTION_MAX_BACKOFF_MS", "2000"),
        ]))
        .unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0].why.contains("below RECONNECTION_INITIAL_BACKOFF_MS"));
    }

    #[test]
    fn star_cannot_be_mixed_with_names() {
        let p = resolve(&env(&[("WATCH_NAMESPACES", "*,default")])).unwrap_err();
        assert_eq!(p[0].name, "WATCH_NAMESPACES");
    }

    #[test]
    fn watching_only_excluded_namespaces_is_an_error() {
        let p = resolve(&env(&[("WATCH_NAMESPACES", "kube-system")])).unwrap_err();
        assert!(p[0].why.contains("EXCLUDE_NAMESPACES"));
    }

    #[test]
    fn rust_log_overrides_log_level_but_a_bad_log_level_still_fails() {
        let s = resolve(&env(&[("RUST_LOG", "opsctrl_daemon=debug")])).unwrap();
        assert_eq!(s.log_filter, "opsctrl_daemon=debug");
        let p = resolve(&env(&[("RUST_LOG", "debug"), ("LOG_LEVEL", "loud")])).unwrap_err();
        assert_eq!(p[0].name, "LOG_LEVEL");
    }

    #[test]
    fn label_selector_with_quotes_is_rejected() {
        let s = resolve(&env(&[(
            "WATCH_LABEL_SELECTOR",
            "app in (web, api),tier!=db",
        )]))
        .unwrap();
        assert_eq!(
            s.label_selector.as_deref(),
            Some("app in (web, api),tier!=db")
        );
        let p = resolve(&env(&[("WATCH_LABEL_SELECTOR", "app=\"web\"")])).unwrap_err();
        assert_eq!(p[0].name, "WATCH_LABEL_SELECTOR");
    }

    #[test]
    fn a_slack_webhook_url_in_webhook_url_counts_as_slack() {
        let s = resolve(&env(&[(
            "WEBHOOK_URL",
            "https://hooks.slack.com/services/T/B/x",
        )]))
        .unwrap();
        assert!(s.alerts.webhook.is_none());
        assert_eq!(
            s.alerts.slack_webhook.as_ref().map(Secret::expose),
            Some("https://hooks.slack.com/services/T/B/x")
        );
        let s = resolve(&env(&[("WEBHOOK_URL", "http://receiver:8080/hook/")])).unwrap();
        assert_eq!(
            s.alerts.webhook.as_ref().map(|w| w.url.expose()),
            Some("http://receiver:8080/hook")
        );
    }

    #[test]
    fn bad_secrets_are_named_but_never_echoed() {
        let p = resolve(&env(&[
            ("SLACK_WEBHOOK_URL", "ftp://hooks.slack.com/services/SECRET"),
            ("LLM_API_KEY", "sk-SECRET with space"),
        ]))
        .unwrap_err();
        let text: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.starts_with("SLACK_WEBHOOK_URL=")));
        assert!(text.iter().any(|t| t.starts_with("LLM_API_KEY=")));
        assert!(text.iter().all(|t| !t.contains("SECRET")), "{text:?}");
    }

    #[test]
    fn half_configured_features_are_errors_not_silently_off() {
        let p = resolve(&env(&[("OPSCTRL_BACKEND_URL", "https://api.example")])).unwrap_err();
        assert!(
            p.iter()
                .any(|p| p.why.contains("CLUSTER_NAME and USER_EMAIL")),
            "{p:?}"
        );
        let p = resolve(&env(&[("SLACK_CHANNEL", "#alerts")])).unwrap_err();
        assert!(p[0].why.contains("SLACK_BOT_TOKEN"));
        let p = resolve(&env(&[("LLM_BASE_URL", "http://ollama:11434/v1")])).unwrap_err();
        assert!(p[0].why.contains("LLM_MODEL"));
        let s = resolve(&env(&[
            ("OPSCTRL_BACKEND_URL", "https://api.example/api/v1/"),
            ("CLUSTER_NAME", "edge"),
            ("USER_EMAIL", "ops@example.com"),
            ("HOME", "/home/me"),
        ]))
        .unwrap();
        let b = s.backend.unwrap();
        assert_eq!(b.url, "https://api.example/api/v1");
        assert_eq!(b.state_dir, PathBuf::from("/home/me/.opsctrl"));
    }

    #[test]
    fn slack_bot_routes_pick_a_channel_per_namespace() {
        let s = resolve(&env(&[
            ("SLACK_BOT_TOKEN", "xoxb-1-2"),
            ("SLACK_CHANNEL", "#alerts"),
            (
                "SLACK_CHANNEL_ROUTES",
                "payments=#pay-alerts, staging=C0123",
            ),
            ("ALERT_SEVERITY_FILTERS", "critical,HIGH"),
        ]))
        .unwrap();
        let bot = s.alerts.slack_bot.unwrap();
        assert_eq!(bot.channel_for("payments"), "#pay-alerts");
        assert_eq!(bot.channel_for("staging"), "C0123");
        assert_eq!(bot.channel_for("web"), "#alerts");
        assert_eq!(s.alerts.severities, [Severity::Critical, Severity::High]);
    }

    #[test]
    fn every_setting_has_a_unique_env_and_flag() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.env, b.env);
                assert_ne!(a.flag, b.flag);
            }
        }
    }

    #[test]
    fn an_invalid_value_is_not_also_reported_as_having_no_effect() {
        // Regression: each of these gave two lines for one mistake.
        for (name, bad) in [
            ("LLM_MODEL", "has spaces"),
            ("SLACK_CHANNEL", "has spaces"),
            ("SLACK_CHANNEL_ROUTES", "no-equals-sign"),
            ("SLACK_API_URL", "ftp://x"),
            ("OPSCTRL_FRONTEND_URL", "ftp://x"),
            ("OPSCTRL_STATE_DIR", "relative/dir"),
        ] {
            let p = resolve(&env(&[(name, bad)])).unwrap_err();
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(p[0].why.contains("allowed"), "{p:?}");
        }
        // Nor is a setting whose partner was given but is invalid.
        for pair in [
            [
                ("SLACK_BOT_TOKEN_FILE", "/nonexistent"),
                ("SLACK_CHANNEL", "#a"),
            ],
            [("LLM_BASE_URL", "ftp://x"), ("LLM_API_KEY", "sk-1")],
            [("LLM_BASE_URL", "ftp://x"), ("LLM_MODEL", "llama3")],
            [
                ("WEBHOOK_URL", "ftp://x"),
                ("WEBHOOK_AUTH_HEADER", "Bearer 1"),
            ],
            [("OPSCTRL_BACKEND_URL", "ftp://x"), ("USER_EMAIL", "a@b.c")],
        ] {
            let p = resolve(&env(&pair)).unwrap_err();
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].name, pair[0].0, "{p:?}");
        }
    }

    #[test]
    fn each_setting_rejects_a_bad_value_by_name() {
        // One obviously wrong value per setting; each must be reported under its own name.
        for spec in SETTINGS {
            let bad = match spec.env {
                "WATCH_NAMESPACES"
                | "EXCLUDE_NAMESPACES"
                | "LEADER_ELECTION_NAMESPACE"
                | "LEADER_ELECTION_NAME" => "UPPER",
                "WATCH_LABEL_SELECTOR" => "a=\"b\"",
                "CLUSTER_NAME" | "LLM_MODEL" | "SLACK_CHANNEL" | "LLM_API_KEY" => "has spaces",
                "RULES_FILE" | "LLM_API_KEY_FILE" | "SLACK_BOT_TOKEN_FILE" => "/nonexistent/file",
                "WEBHOOK_AUTH_HEADER_FILE" => "/nonexistent/file",
                "WEBHOOK_AUTH_HEADER" => "a\u{1}b",
                "SLACK_BOT_TOKEN" => "not-a-slack-token",
                "SLACK_CHANNEL_ROUTES" => "no-equals-sign",
                _ => "not-a-value",
            };
            let p = resolve(&env(&[(spec.env, bad)]))
                .map(|_| ())
                .expect_err(spec.env);
            assert!(
                p.iter().any(|p| p.name == spec.env),
                "{} accepted {bad:?}",
                spec.env
            );
        }
    }

    #[test]
    fn the_readme_documents_every_setting_as_the_code_does() {
        let readme = include_str!("../README.md");
        for spec in SETTINGS {
            let default = if spec.default.is_empty() {
                "(none)".to_string()
            } else {
                format!("`{}`", spec.default)
            };
            let row = format!(
                "| `{}` | `{} {}` | {} | {} | {} |",
                spec.env, spec.flag, spec.value, default, spec.allowed, spec.doc
            );
            assert!(readme.contains(&row), "README lacks or misstates:\n{row}");
        }
    }
}
