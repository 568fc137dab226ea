/*!
Every setting the daemon accepts, defined once: its variable, flag, kind
(type, default, bounds) and doc. `SETTINGS` lists them in the order of
`--help` and the README's table; `resolve` reads each by its definition, and
every `Default` of the settings types (`defaults.rs`) is what resolving an
empty environment gives, so no default is written twice.

The names, defaults and ranges are the original OpsCtrl daemon's, except that
`WATCH_NAMESPACES` is optional (default: all namespaces) and the health
endpoint is on by default. Settings that belong to features not built yet are
not accepted at all: an accepted setting always has an effect.
*/

use log::LevelFilter;

use super::kinds::{Bool, Choice, Int, Number, Setting, Spec, Text};
use super::types::{LogFormat, OpsgenieRegion, Output};

/// Every setting, in the order `--help` and the README show them.
pub static SETTINGS: &[Spec] = &[
    WATCH_NAMESPACES.spec(),
    EXCLUDE_NAMESPACES.spec(),
    WATCH_LABEL_SELECTOR.spec(),
    LIST_PAGE_SIZE.spec(),
    WATCH_TIMEOUT_SECONDS.spec(),
    WATCH_IDLE_TIMEOUT_SECONDS.spec(),
    RECONNECTION_ENABLED.spec(),
    RECONNECTION_INITIAL_BACKOFF_MS.spec(),
    RECONNECTION_MAX_BACKOFF_MS.spec(),
    RECONNECTION_BACKOFF_MULTIPLIER.spec(),
    RECONNECTION_MAX_FAILURES.spec(),
    ENABLE_HEALTH_CHECK.spec(),
    HEALTH_CHECK_PORT.spec(),
    HEALTH_SHOW_CLAIM_URL.spec(),
    WATCHDOG_MS.spec(),
    CLUSTER_NAME.spec(),
    OUTPUT.spec(),
    MIN_RESTART_THRESHOLD.spec(),
    MAX_PENDING_DURATION_MS.spec(),
    IMAGE_PULL_GRACE_MS.spec(),
    NOT_READY_GRACE_MS.spec(),
    NODE_NOT_READY_GRACE_MS.spec(),
    NODE_UNSCHEDULABLE_GRACE_MS.spec(),
    RESOLVE_AFTER_MS.spec(),
    ALERT_RATE_LIMIT_WINDOW_MINUTES.spec(),
    ALERT_RENOTIFY_MINUTES.spec(),
    NOTIFY_BATCH_MS.spec(),
    STORM_THRESHOLD.spec(),
    LOG_LEVEL.spec(),
    LOG_FORMAT.spec(),
    DIAGNOSIS_ENABLED.spec(),
    DIAGNOSIS_TIMEOUT_MS.spec(),
    DIAGNOSIS_CACHE_TTL_MS.spec(),
    DIAGNOSIS_CACHE_MAX_ENTRIES.spec(),
    INCLUDE_LOGS.spec(),
    RULES_FILE.spec(),
    LLM_BASE_URL.spec(),
    LLM_MODEL.spec(),
    LLM_API_KEY.spec(),
    LLM_API_KEY_FILE.spec(),
    OPSCTRL_BACKEND_URL.spec(),
    OPSCTRL_FRONTEND_URL.spec(),
    USER_EMAIL.spec(),
    OPSCTRL_STATE_DIR.spec(),
    ALERT_WORKERS.spec(),
    ALERT_QUEUE_SIZE.spec(),
    ALERT_MAX_ATTEMPTS.spec(),
    ALERT_BACKOFF_MS.spec(),
    ALERT_MAX_BACKOFF_MS.spec(),
    ALERT_SEVERITY_FILTERS.spec(),
    SLACK_WEBHOOK_URL.spec(),
    SLACK_BOT_TOKEN.spec(),
    SLACK_BOT_TOKEN_FILE.spec(),
    SLACK_API_URL.spec(),
    SLACK_CHANNEL.spec(),
    SLACK_CHANNEL_ROUTES.spec(),
    DASHBOARD_URL_TEMPLATE.spec(),
    WEBHOOK_URL.spec(),
    WEBHOOK_AUTH_HEADER.spec(),
    WEBHOOK_AUTH_HEADER_FILE.spec(),
    TEAMS_WEBHOOK_URL.spec(),
    TEAMS_WEBHOOK_URL_FILE.spec(),
    DISCORD_WEBHOOK_URL.spec(),
    DISCORD_WEBHOOK_URL_FILE.spec(),
    TELEGRAM_BOT_TOKEN.spec(),
    TELEGRAM_BOT_TOKEN_FILE.spec(),
    TELEGRAM_CHAT_ID.spec(),
    TELEGRAM_API_URL.spec(),
    NTFY_URL.spec(),
    NTFY_URL_FILE.spec(),
    NTFY_TOKEN.spec(),
    NTFY_TOKEN_FILE.spec(),
    PAGERDUTY_ROUTING_KEY.spec(),
    PAGERDUTY_ROUTING_KEY_FILE.spec(),
    PAGERDUTY_EVENTS_URL.spec(),
    OPSGENIE_API_KEY.spec(),
    OPSGENIE_API_KEY_FILE.spec(),
    OPSGENIE_REGION.spec(),
    OPSGENIE_API_URL.spec(),
    ALERTMANAGER_URL.spec(),
    ALERTMANAGER_AUTH_HEADER.spec(),
    ALERTMANAGER_AUTH_HEADER_FILE.spec(),
    ALERTMANAGER_REPOST_SECONDS.spec(),
    ALERT_LINK_URL.spec(),
    EMIT_K8S_EVENTS.spec(),
    ROUTES_FILE.spec(),
    SILENCES_FILE.spec(),
    SHUTDOWN_DRAIN_MS.spec(),
    LEADER_ELECTION.spec(),
    LEADER_ELECTION_NAMESPACE.spec(),
    LEADER_ELECTION_NAME.spec(),
];

pub static WATCH_NAMESPACES: Setting<Text> = Setting {
    env: "WATCH_NAMESPACES",
    flag: "--watch-namespaces",
    value: "NS,NS",
    kind: Text {
        default: "*",
        allowed: "comma-separated namespace names, or * for all namespaces",
    },
    doc: "Namespaces to watch. * (or unset) is one cluster-wide watch; a list is one watch per namespace, so a namespaced Role is enough.",
};

pub static EXCLUDE_NAMESPACES: Setting<Text> = Setting {
    env: "EXCLUDE_NAMESPACES",
    flag: "--exclude-namespaces",
    value: "NS,NS",
    kind: Text {
        default: "kube-system,kube-public,kube-node-lease",
        allowed: "comma-separated namespace names, or empty for none",
    },
    doc: "Namespaces never watched. Cluster-wide, they are filtered by the API server with a field selector.",
};

pub static WATCH_LABEL_SELECTOR: Setting<Text> = Setting {
    env: "WATCH_LABEL_SELECTOR",
    flag: "--label-selector",
    value: "SELECTOR",
    kind: Text {
        default: "",
        allowed: "a Kubernetes label selector, e.g. app=web,tier!=cache",
    },
    doc: "Only watch pods matching this label selector (passed to the API server).",
};

pub static LIST_PAGE_SIZE: Setting<Int> = Setting {
    env: "LIST_PAGE_SIZE",
    flag: "--list-page-size",
    value: "N",
    kind: Int {
        default: 500,
        min: 1,
        max: 10_000,
        note: "",
    },
    doc: "Pods per LIST page (limit + continue), which bounds memory while listing.",
};

pub static WATCH_TIMEOUT_SECONDS: Setting<Int> = Setting {
    env: "WATCH_TIMEOUT_SECONDS",
    flag: "--watch-timeout-seconds",
    value: "N",
    kind: Int {
        default: 300,
        min: 5,
        max: 3600,
        note: "",
    },
    doc: "Each WATCH asks the API server to end it after N to 2N seconds (jittered), and then resumes from where it was without relisting. Lower it when a proxy or load balancer between the daemon and the API server cuts long requests sooner.",
};

pub static WATCH_IDLE_TIMEOUT_SECONDS: Setting<Int> = Setting {
    env: "WATCH_IDLE_TIMEOUT_SECONDS",
    flag: "--watch-idle-timeout-seconds",
    value: "N",
    kind: Int {
        default: 150,
        min: 1,
        max: 180,
        note: "",
    },
    doc: "A WATCH from which nothing arrives for N seconds (no event, no bookmark; the API server sends a bookmark about once a minute) is presumed dead: it is closed, counted as a failure, and resumed from its resourceVersion.",
};

pub static RECONNECTION_ENABLED: Setting<Bool> = Setting {
    env: "RECONNECTION_ENABLED",
    flag: "--reconnection-enabled",
    value: "BOOL",
    kind: Bool { default: true },
    doc: "Reconnect failed watches forever with backoff. false: the first failed LIST or WATCH stops the daemon with exit 1, for supervisors that prefer to restart it.",
};

pub static RECONNECTION_INITIAL_BACKOFF_MS: Setting<Int> = Setting {
    env: "RECONNECTION_INITIAL_BACKOFF_MS",
    flag: "--reconnection-initial-backoff-ms",
    value: "MS",
    kind: Int {
        default: 1000,
        min: 100,
        max: 60_000,
        note: "",
    },
    doc: "First delay after a failed LIST or WATCH (jittered).",
};

pub static RECONNECTION_MAX_BACKOFF_MS: Setting<Int> = Setting {
    env: "RECONNECTION_MAX_BACKOFF_MS",
    flag: "--reconnection-max-backoff-ms",
    value: "MS",
    kind: Int {
        default: 30_000,
        min: 1000,
        max: 600_000,
        note: ", not below RECONNECTION_INITIAL_BACKOFF_MS",
    },
    doc: "Cap on the delay between retries.",
};

pub static RECONNECTION_BACKOFF_MULTIPLIER: Setting<Number> = Setting {
    env: "RECONNECTION_BACKOFF_MULTIPLIER",
    flag: "--reconnection-backoff-multiplier",
    value: "X",
    kind: Number {
        default: 2.0,
        min: 1.1,
        max: 10.0,
    },
    doc: "Growth factor of the delay after each consecutive failure.",
};

pub static RECONNECTION_MAX_FAILURES: Setting<Int> = Setting {
    env: "RECONNECTION_MAX_FAILURES",
    flag: "--reconnection-max-failures",
    value: "N",
    kind: Int {
        default: 5,
        min: 1,
        max: 100,
        note: "",
    },
    doc: "Consecutive failures after which a watch is reported unhealthy (/health answers 503 with isHealthy false, and an error is logged). Retrying never stops.",
};

pub static HEALTH_SHOW_CLAIM_URL: Setting<Bool> = Setting {
    env: "HEALTH_SHOW_CLAIM_URL",
    flag: "--health-show-claim-url",
    value: "BOOL",
    kind: Bool { default: false },
    doc: "Show the OpsCtrl claim URL (it carries the cluster's id) in /health while the claim is pending. Off, /health says only `pending` and the URL is in the log.",
};

pub static ENABLE_HEALTH_CHECK: Setting<Bool> = Setting {
    env: "ENABLE_HEALTH_CHECK",
    flag: "--enable-health-check",
    value: "BOOL",
    kind: Bool { default: true },
    doc: "Serve /healthz, /readyz, /health and /metrics.",
};

pub static HEALTH_CHECK_PORT: Setting<Int> = Setting {
    env: "HEALTH_CHECK_PORT",
    flag: "--health-check-port",
    value: "PORT",
    kind: Int {
        default: 3000,
        min: 1024,
        max: 65_535,
        note: ", or 0 for any free port (logged at start)",
    },
    doc: "Port of the health and metrics endpoint (all interfaces).",
};

pub static WATCHDOG_MS: Setting<Int> = Setting {
    env: "WATCHDOG_MS",
    flag: "--watchdog-ms",
    value: "MS",
    kind: Int {
        default: 60_000,
        min: 0,
        max: 3_600_000,
        note: " (0: off)",
    },
    doc: "/healthz answers 503 when the classification thread has made no progress for this long, so the kubelet restarts a stuck daemon.",
};

pub static CLUSTER_NAME: Setting<Text> = Setting {
    env: "CLUSTER_NAME",
    flag: "--cluster-name",
    value: "NAME",
    kind: Text {
        default: "",
        allowed: "1 to 64 letters, digits, '-' or '_'",
    },
    doc: "Cluster name carried by every incident (the `cluster` field). Unset: the kubeconfig context name, or `in-cluster`.",
};

pub static OUTPUT: Setting<Choice<Output>> = Setting {
    env: "OUTPUT",
    flag: "--output",
    value: "FORMAT",
    kind: Choice {
        default: Output::Text,
        choices: &[("text", Output::Text), ("json", Output::Json)],
    },
    doc: "How incidents are printed on stdout: readable lines, or one JSON object per line (`scan`: a table or a JSON array). Also `-o`.",
};

pub static MIN_RESTART_THRESHOLD: Setting<Int> = Setting {
    env: "MIN_RESTART_THRESHOLD",
    flag: "--min-restart-threshold",
    value: "N",
    kind: Int {
        default: 3,
        min: 1,
        max: 100,
        note: "",
    },
    doc: "Restarts at which a running container with a recent, uncounted termination is reported as HighRestartCount.",
};

pub static MAX_PENDING_DURATION_MS: Setting<Int> = Setting {
    env: "MAX_PENDING_DURATION_MS",
    flag: "--max-pending-duration-ms",
    value: "MS",
    kind: Int {
        default: 600_000,
        min: 30_000,
        max: 3_600_000,
        note: "",
    },
    doc: "How long a pod may stay Pending (Unschedulable: since the scheduler said so; otherwise since creation) before it is reported.",
};

pub static IMAGE_PULL_GRACE_MS: Setting<Int> = Setting {
    env: "IMAGE_PULL_GRACE_MS",
    flag: "--image-pull-grace-ms",
    value: "MS",
    kind: Int {
        default: 60_000,
        min: 0,
        max: 3_600_000,
        note: "",
    },
    doc: "How long ErrImagePull alone is tolerated (first pulls fail transiently); ImagePullBackOff is reported at once.",
};

pub static NOT_READY_GRACE_MS: Setting<Int> = Setting {
    env: "NOT_READY_GRACE_MS",
    flag: "--not-ready-grace-ms",
    value: "MS",
    kind: Int {
        default: 300_000,
        min: 1000,
        max: 86_400_000,
        note: "",
    },
    doc: "How long a Running pod may be not Ready (since its Ready condition changed) before it is reported as NotReady.",
};

pub static NODE_NOT_READY_GRACE_MS: Setting<Int> = Setting {
    env: "NODE_NOT_READY_GRACE_MS",
    flag: "--node-not-ready-grace-ms",
    value: "MS",
    kind: Int {
        default: 60_000,
        min: 0,
        max: 86_400_000,
        note: "",
    },
    doc: "How long a node's Ready condition may be False or Unknown (since it changed) before it is reported as NodeNotReady (cluster-wide installs only).",
};

pub static NODE_UNSCHEDULABLE_GRACE_MS: Setting<Int> = Setting {
    env: "NODE_UNSCHEDULABLE_GRACE_MS",
    flag: "--node-unschedulable-grace-ms",
    value: "MS",
    kind: Int {
        default: 1_800_000,
        min: 0,
        max: 604_800_000,
        note: "",
    },
    doc: "How long a node may stay cordoned (spec.unschedulable, since the daemon saw it) before an informational NodeUnschedulable incident (a drain is routine; a forgotten cordon is not).",
};

pub static RESOLVE_AFTER_MS: Setting<Int> = Setting {
    env: "RESOLVE_AFTER_MS",
    flag: "--resolve-after-ms",
    value: "MS",
    kind: Int {
        default: 120_000,
        min: 0,
        max: 86_400_000,
        note: "",
    },
    doc: "How long every pod of an incident must be healthy (Running and Ready, or Succeeded) before it is resolved; also how long an incident whose pods were all deleted waits for a failing replacement.",
};

pub static ALERT_RATE_LIMIT_WINDOW_MINUTES: Setting<Int> = Setting {
    env: "ALERT_RATE_LIMIT_WINDOW_MINUTES",
    flag: "--alert-rate-limit-window-minutes",
    value: "MIN",
    kind: Int {
        default: 5,
        min: 0,
        max: 1440,
        note: "",
    },
    doc: "Minimum gap between two notifications of one incident; updates in between are folded into the next one. A resolution or an escalation is never held back.",
};

pub static ALERT_RENOTIFY_MINUTES: Setting<Int> = Setting {
    env: "ALERT_RENOTIFY_MINUTES",
    flag: "--alert-renotify-minutes",
    value: "MIN",
    kind: Int {
        default: 240,
        min: 0,
        max: 10_080,
        note: " (0 = never)",
    },
    doc: "Re-announce a still-open incident this often.",
};

pub static NOTIFY_BATCH_MS: Setting<Int> = Setting {
    env: "NOTIFY_BATCH_MS",
    flag: "--notify-batch-ms",
    value: "MS",
    kind: Int {
        default: 5000,
        min: 0,
        max: 60_000,
        note: "",
    },
    doc: "How long the first new incident waits for others, so a burst is notified together.",
};

pub static STORM_THRESHOLD: Setting<Int> = Setting {
    env: "STORM_THRESHOLD",
    flag: "--storm-threshold",
    value: "N",
    kind: Int {
        default: 10,
        min: 1,
        max: 100_000,
        note: "",
    },
    doc: "A batch of more new incidents than this is notified as one grouped message naming what they share (node, image registry, namespace).",
};

pub static LOG_LEVEL: Setting<Choice<LevelFilter>> = Setting {
    env: "LOG_LEVEL",
    flag: "--log-level",
    value: "LEVEL",
    kind: Choice {
        default: LevelFilter::Info,
        choices: &[
            ("error", LevelFilter::Error),
            ("warn", LevelFilter::Warn),
            ("info", LevelFilter::Info),
            ("debug", LevelFilter::Debug),
            ("trace", LevelFilter::Trace),
        ],
    },
    doc: "Log verbosity. RUST_LOG, when set, overrides it with env_logger's filter syntax (a flag beats both). The HTTP and TLS libraries' wire logging stays off unless RUST_LOG names them (unsafe: it logs credentials).",
};

pub static LOG_FORMAT: Setting<Choice<LogFormat>> = Setting {
    env: "LOG_FORMAT",
    flag: "--log-format",
    value: "FORMAT",
    kind: Choice {
        default: LogFormat::Text,
        choices: &[("text", LogFormat::Text), ("json", LogFormat::Json)],
    },
    doc: "Log lines on stderr: text (an RFC 3339 UTC timestamp, the level, the module, the message) or json (one object per line: ts, level, target, msg, and record=log, which tells them from OUTPUT=json's record=incident lines on stdout).",
};

pub static DIAGNOSIS_ENABLED: Setting<Bool> = Setting {
    env: "DIAGNOSIS_ENABLED",
    flag: "--diagnosis-enabled",
    value: "BOOL",
    kind: Bool { default: true },
    doc: "Enrich incidents (events, logs) and diagnose them with the rules (and the LLM when configured). false: the rules still name a cause from the pod alone, with no API calls and no LLM.",
};

pub static DIAGNOSIS_TIMEOUT_MS: Setting<Int> = Setting {
    env: "DIAGNOSIS_TIMEOUT_MS",
    flag: "--diagnosis-timeout-ms",
    value: "MS",
    kind: Int {
        default: 30_000,
        min: 5000,
        max: 300_000,
        note: "",
    },
    doc: "Time budget of one LLM answer; past it the rules' diagnosis stands.",
};

pub static DIAGNOSIS_CACHE_TTL_MS: Setting<Int> = Setting {
    env: "DIAGNOSIS_CACHE_TTL_MS",
    flag: "--diagnosis-cache-ttl-ms",
    value: "MS",
    kind: Int {
        default: 300_000,
        min: 60_000,
        max: 86_400_000,
        note: "",
    },
    doc: "How long an LLM answer is reused for the same incident fingerprint.",
};

pub static DIAGNOSIS_CACHE_MAX_ENTRIES: Setting<Int> = Setting {
    env: "DIAGNOSIS_CACHE_MAX_ENTRIES",
    flag: "--diagnosis-cache-max-entries",
    value: "N",
    kind: Int {
        default: 1000,
        min: 10,
        max: 50_000,
        note: "",
    },
    doc: "LLM answers kept (least recently used evicted first).",
};

pub static INCLUDE_LOGS: Setting<Bool> = Setting {
    env: "INCLUDE_LOGS",
    flag: "--include-logs",
    value: "BOOL",
    kind: Bool { default: true },
    doc: "Read the failing container's previous logs (last 50 lines, 16 KiB, redacted) for the diagnosis and the alert. Needs get on pods/log (the default manifests grant it); without it, one warning and the diagnosis goes on without logs.",
};

pub static RULES_FILE: Setting<Text> = Setting {
    env: "RULES_FILE",
    flag: "--rules-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable JSON file of rules (see Diagnosis)",
    },
    doc: "Your own diagnosis rules, tried before the built-in ones; a rule with a built-in rule's id replaces it.",
};

pub static LLM_BASE_URL: Setting<Text> = Setting {
    env: "LLM_BASE_URL",
    flag: "--llm-base-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL of an OpenAI-compatible API (…/v1)",
    },
    doc: "Ask an LLM (OpenAI, Ollama, vLLM, LM Studio) for a second opinion, attached as diagnosis.ai. Needs LLM_MODEL.",
};

pub static LLM_MODEL: Setting<Text> = Setting {
    env: "LLM_MODEL",
    flag: "--llm-model",
    value: "NAME",
    kind: Text {
        default: "",
        allowed: "a model name without spaces",
    },
    doc: "The model to ask, e.g. gpt-4o-mini or llama3.1:8b.",
};

pub static LLM_API_KEY: Setting<Text> = Setting {
    env: "LLM_API_KEY",
    flag: "--llm-api-key",
    value: "KEY",
    kind: Text {
        default: "",
        allowed: "a key without spaces; not with LLM_API_KEY_FILE",
    },
    doc: "Bearer key for the LLM API (none for a local Ollama). Prefer LLM_API_KEY_FILE.",
};

pub static LLM_API_KEY_FILE: Setting<Text> = Setting {
    env: "LLM_API_KEY_FILE",
    flag: "--llm-api-key-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the key",
    },
    doc: "File holding the LLM key (a mounted Secret).",
};

pub static OPSCTRL_BACKEND_URL: Setting<Text> = Setting {
    env: "OPSCTRL_BACKEND_URL",
    flag: "--opsctrl-backend-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL",
    },
    doc: "The OpsCtrl backend. With CLUSTER_NAME and USER_EMAIL, the cluster registers and failures are sent to /daemon/analyze-stack.",
};

pub static OPSCTRL_FRONTEND_URL: Setting<Text> = Setting {
    env: "OPSCTRL_FRONTEND_URL",
    flag: "--opsctrl-frontend-url",
    value: "URL",
    kind: Text {
        default: "https://app.opsctrl.dev",
        allowed: "an http or https URL",
    },
    doc: "Where the claim link of a pending registration points.",
};

pub static USER_EMAIL: Setting<Text> = Setting {
    env: "USER_EMAIL",
    flag: "--user-email",
    value: "EMAIL",
    kind: Text {
        default: "",
        allowed: "an email address; only with OPSCTRL_BACKEND_URL",
    },
    doc: "The OpsCtrl account that claims this cluster.",
};

pub static OPSCTRL_STATE_DIR: Setting<Text> = Setting {
    env: "OPSCTRL_STATE_DIR",
    flag: "--opsctrl-state-dir",
    value: "DIR",
    kind: Text {
        default: "~/.opsctrl",
        allowed: "an absolute directory path, or ~/…",
    },
    doc: "Where cluster.json, pending.json and tokens.json are kept (mode 0600).",
};

pub static ALERT_WORKERS: Setting<Int> = Setting {
    env: "ALERT_WORKERS",
    flag: "--alert-workers",
    value: "N",
    kind: Int {
        default: 2,
        min: 1,
        max: 16,
        note: "",
    },
    doc: "Threads that enrich notifications (each sink also has its own delivery thread).",
};

pub static ALERT_QUEUE_SIZE: Setting<Int> = Setting {
    env: "ALERT_QUEUE_SIZE",
    flag: "--alert-queue-size",
    value: "N",
    kind: Int {
        default: 1000,
        min: 10,
        max: 100_000,
        note: "",
    },
    doc: "Notifications waiting for a worker; when full, the oldest of the lowest severity is dropped (logged and counted).",
};

pub static ALERT_MAX_ATTEMPTS: Setting<Int> = Setting {
    env: "ALERT_MAX_ATTEMPTS",
    flag: "--alert-max-attempts",
    value: "N",
    kind: Int {
        default: 3,
        min: 1,
        max: 10,
        note: "",
    },
    doc: "Tries per sink and message (429 and 5xx and network errors are retried; other 4xx are not).",
};

pub static ALERT_BACKOFF_MS: Setting<Int> = Setting {
    env: "ALERT_BACKOFF_MS",
    flag: "--alert-backoff-ms",
    value: "MS",
    kind: Int {
        default: 1000,
        min: 100,
        max: 60_000,
        note: "",
    },
    doc: "First delay between tries (doubled each time, jittered; a 429's Retry-After wins).",
};

pub static ALERT_MAX_BACKOFF_MS: Setting<Int> = Setting {
    env: "ALERT_MAX_BACKOFF_MS",
    flag: "--alert-max-backoff-ms",
    value: "MS",
    kind: Int {
        default: 30_000,
        min: 1000,
        max: 300_000,
        note: ", not below ALERT_BACKOFF_MS",
    },
    doc: "Longest delay between tries.",
};

pub static ALERT_SEVERITY_FILTERS: Setting<Text> = Setting {
    env: "ALERT_SEVERITY_FILTERS",
    flag: "--alert-severity-filters",
    value: "LIST",
    kind: Text {
        default: "medium,high,critical",
        allowed: "a comma list of informational, low, medium, high, critical",
    },
    doc: "Severities that reach the notification sinks (stdout gets everything). A resolution follows its incident.",
};

pub static SLACK_WEBHOOK_URL: Setting<Text> = Setting {
    env: "SLACK_WEBHOOK_URL",
    flag: "--slack-webhook-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL (a Slack incoming webhook)",
    },
    doc: "Post Block Kit alerts to this Slack (or Slack-compatible, e.g. Mattermost) incoming webhook.",
};

pub static SLACK_BOT_TOKEN: Setting<Text> = Setting {
    env: "SLACK_BOT_TOKEN",
    flag: "--slack-bot-token",
    value: "TOKEN",
    kind: Text {
        default: "",
        allowed: "a Slack bot token (xoxb-…); not with SLACK_BOT_TOKEN_FILE",
    },
    doc: "Post with a Slack app instead: one message per incident, updates and the resolution in its thread. Needs SLACK_CHANNEL.",
};

pub static SLACK_BOT_TOKEN_FILE: Setting<Text> = Setting {
    env: "SLACK_BOT_TOKEN_FILE",
    flag: "--slack-bot-token-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the token",
    },
    doc: "File holding the Slack bot token (a mounted Secret).",
};

pub static SLACK_API_URL: Setting<Text> = Setting {
    env: "SLACK_API_URL",
    flag: "--slack-api-url",
    value: "URL",
    kind: Text {
        default: "https://slack.com/api",
        allowed: "an http or https URL",
    },
    doc: "Base URL of the Slack Web API the bot calls (for a proxy or a Slack-compatible server).",
};

pub static SLACK_CHANNEL: Setting<Text> = Setting {
    env: "SLACK_CHANNEL",
    flag: "--slack-channel",
    value: "CHANNEL",
    kind: Text {
        default: "",
        allowed: "a channel name (#alerts) or id (C0123…); only with a bot token",
    },
    doc: "The bot's default channel.",
};

pub static SLACK_CHANNEL_ROUTES: Setting<Text> = Setting {
    env: "SLACK_CHANNEL_ROUTES",
    flag: "--slack-channel-routes",
    value: "NS=CH,…",
    kind: Text {
        default: "",
        allowed: "comma-separated namespace=channel pairs; only with a bot token",
    },
    doc: "Per-namespace channels for the bot, e.g. payments=#pay-alerts,staging=#staging.",
};

pub static DASHBOARD_URL_TEMPLATE: Setting<Text> = Setting {
    env: "DASHBOARD_URL_TEMPLATE",
    flag: "--dashboard-url-template",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL with {cluster}, {namespace}, {kind} or {name} placeholders",
    },
    doc: "A link to the failing workload in your dashboard, shown in Slack, e.g. https://headlamp.example/c/main/{kind}/{namespace}/{name}. Values are URL-encoded.",
};

pub static WEBHOOK_URL: Setting<Text> = Setting {
    env: "WEBHOOK_URL",
    flag: "--webhook-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL",
    },
    doc: "POST each notification as JSON (the stable schema plus the original daemon's alert fields). A hooks.slack.com URL is treated as SLACK_WEBHOOK_URL.",
};

pub static WEBHOOK_AUTH_HEADER: Setting<Text> = Setting {
    env: "WEBHOOK_AUTH_HEADER",
    flag: "--webhook-auth-header",
    value: "VALUE",
    kind: Text {
        default: "",
        allowed: "a header value (e.g. Bearer abc); not with WEBHOOK_AUTH_HEADER_FILE",
    },
    doc: "Sent as the Authorization header of WEBHOOK_URL requests.",
};

pub static WEBHOOK_AUTH_HEADER_FILE: Setting<Text> = Setting {
    env: "WEBHOOK_AUTH_HEADER_FILE",
    flag: "--webhook-auth-header-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the header value",
    },
    doc: "File holding the Authorization header value (a mounted Secret).",
};

pub static TEAMS_WEBHOOK_URL: Setting<Text> = Setting {
    env: "TEAMS_WEBHOOK_URL",
    flag: "--teams-webhook-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL (a Teams Workflows webhook); not with TEAMS_WEBHOOK_URL_FILE",
    },
    doc: "Post each notification to Microsoft Teams as an Adaptive Card, through a Workflows (Power Automate) webhook.",
};

pub static TEAMS_WEBHOOK_URL_FILE: Setting<Text> = Setting {
    env: "TEAMS_WEBHOOK_URL_FILE",
    flag: "--teams-webhook-url-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the Teams webhook URL",
    },
    doc: "File holding the Teams webhook URL (a mounted Secret).",
};

pub static DISCORD_WEBHOOK_URL: Setting<Text> = Setting {
    env: "DISCORD_WEBHOOK_URL",
    flag: "--discord-webhook-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "a Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN); not with DISCORD_WEBHOOK_URL_FILE",
    },
    doc: "Post each incident to Discord as an embed; updates and the resolution edit that message.",
};

pub static DISCORD_WEBHOOK_URL_FILE: Setting<Text> = Setting {
    env: "DISCORD_WEBHOOK_URL_FILE",
    flag: "--discord-webhook-url-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the Discord webhook URL",
    },
    doc: "File holding the Discord webhook URL (a mounted Secret).",
};

pub static TELEGRAM_BOT_TOKEN: Setting<Text> = Setting {
    env: "TELEGRAM_BOT_TOKEN",
    flag: "--telegram-bot-token",
    value: "TOKEN",
    kind: Text {
        default: "",
        allowed: "a bot token from @BotFather (123456:ABC…); not with TELEGRAM_BOT_TOKEN_FILE",
    },
    doc: "Send each incident to a Telegram chat through this bot; updates and the resolution are replies to its first message. Needs TELEGRAM_CHAT_ID.",
};

pub static TELEGRAM_BOT_TOKEN_FILE: Setting<Text> = Setting {
    env: "TELEGRAM_BOT_TOKEN_FILE",
    flag: "--telegram-bot-token-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the Telegram bot token",
    },
    doc: "File holding the Telegram bot token (a mounted Secret).",
};

pub static TELEGRAM_CHAT_ID: Setting<Text> = Setting {
    env: "TELEGRAM_CHAT_ID",
    flag: "--telegram-chat-id",
    value: "ID",
    kind: Text {
        default: "",
        allowed: "a chat id (-1001234567890) or @channelusername; only with a bot token",
    },
    doc: "The Telegram chat, group or channel the bot writes to.",
};

pub static TELEGRAM_API_URL: Setting<Text> = Setting {
    env: "TELEGRAM_API_URL",
    flag: "--telegram-api-url",
    value: "URL",
    kind: Text {
        default: "https://api.telegram.org",
        allowed: "an http or https URL",
    },
    doc: "Base URL of the Telegram Bot API (for a proxy or a local Bot API server).",
};

pub static NTFY_URL: Setting<Text> = Setting {
    env: "NTFY_URL",
    flag: "--ntfy-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https topic URL (https://ntfy.sh/mytopic); not with NTFY_URL_FILE",
    },
    doc: "Publish each notification to this ntfy topic, with its title, a priority from the severity, tags and ALERT_LINK_URL as the click action.",
};

pub static NTFY_URL_FILE: Setting<Text> = Setting {
    env: "NTFY_URL_FILE",
    flag: "--ntfy-url-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the ntfy topic URL",
    },
    doc: "File holding the ntfy topic URL (a mounted Secret).",
};

pub static NTFY_TOKEN: Setting<Text> = Setting {
    env: "NTFY_TOKEN",
    flag: "--ntfy-token",
    value: "TOKEN",
    kind: Text {
        default: "",
        allowed: "an ntfy access token (tk_…); not with NTFY_TOKEN_FILE",
    },
    doc: "Access token for a protected ntfy topic (sent as a Bearer token).",
};

pub static NTFY_TOKEN_FILE: Setting<Text> = Setting {
    env: "NTFY_TOKEN_FILE",
    flag: "--ntfy-token-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the ntfy access token",
    },
    doc: "File holding the ntfy access token (a mounted Secret).",
};

pub static PAGERDUTY_ROUTING_KEY: Setting<Text> = Setting {
    env: "PAGERDUTY_ROUTING_KEY",
    flag: "--pagerduty-routing-key",
    value: "KEY",
    kind: Text {
        default: "",
        allowed: "a 32-character Events API v2 integration key (letters and digits); not with PAGERDUTY_ROUTING_KEY_FILE",
    },
    doc: "Trigger a PagerDuty alert per incident (Events API v2, deduplicated per incident) and resolve it on resolution.",
};

pub static PAGERDUTY_ROUTING_KEY_FILE: Setting<Text> = Setting {
    env: "PAGERDUTY_ROUTING_KEY_FILE",
    flag: "--pagerduty-routing-key-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the PagerDuty routing key",
    },
    doc: "File holding the PagerDuty routing key (a mounted Secret).",
};

pub static PAGERDUTY_EVENTS_URL: Setting<Text> = Setting {
    env: "PAGERDUTY_EVENTS_URL",
    flag: "--pagerduty-events-url",
    value: "URL",
    kind: Text {
        default: "https://events.pagerduty.com/v2/enqueue",
        allowed: "an http or https URL",
    },
    doc: "The Events API v2 endpoint (events.eu.pagerduty.com for an EU account, or a proxy).",
};

pub static OPSGENIE_API_KEY: Setting<Text> = Setting {
    env: "OPSGENIE_API_KEY",
    flag: "--opsgenie-api-key",
    value: "KEY",
    kind: Text {
        default: "",
        allowed: "an Opsgenie API integration key (a UUID); not with OPSGENIE_API_KEY_FILE",
    },
    doc: "Create an Opsgenie alert per incident (alias = the incident key), add updates as notes, close it on resolution.",
};

pub static OPSGENIE_API_KEY_FILE: Setting<Text> = Setting {
    env: "OPSGENIE_API_KEY_FILE",
    flag: "--opsgenie-api-key-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the Opsgenie API key",
    },
    doc: "File holding the Opsgenie API key (a mounted Secret).",
};

pub static OPSGENIE_API_URL: Setting<Text> = Setting {
    env: "OPSGENIE_API_URL",
    flag: "--opsgenie-api-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL (default: the OPSGENIE_REGION endpoint)",
    },
    doc: "Base URL of the Opsgenie API, for a proxy; overrides OPSGENIE_REGION.",
};

pub static ALERTMANAGER_URL: Setting<Text> = Setting {
    env: "ALERTMANAGER_URL",
    flag: "--alertmanager-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "the http or https base URL of an Alertmanager (http://alertmanager:9093)",
    },
    doc: "Post each open incident to this Alertmanager (API v2) as a firing alert, re-posted while it lasts, ended on resolution.",
};

pub static ALERTMANAGER_AUTH_HEADER: Setting<Text> = Setting {
    env: "ALERTMANAGER_AUTH_HEADER",
    flag: "--alertmanager-auth-header",
    value: "VALUE",
    kind: Text {
        default: "",
        allowed: "a header value (e.g. Basic dXNlcjpwYXNz); not with ALERTMANAGER_AUTH_HEADER_FILE",
    },
    doc: "Sent as the Authorization header of Alertmanager requests.",
};

pub static ALERTMANAGER_AUTH_HEADER_FILE: Setting<Text> = Setting {
    env: "ALERTMANAGER_AUTH_HEADER_FILE",
    flag: "--alertmanager-auth-header-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable file holding the Alertmanager Authorization header value",
    },
    doc: "File holding the Alertmanager Authorization header value (a mounted Secret).",
};

pub static ALERT_LINK_URL: Setting<Text> = Setting {
    env: "ALERT_LINK_URL",
    flag: "--alert-link-url",
    value: "URL",
    kind: Text {
        default: "",
        allowed: "an http or https URL; {namespace}, {workload}, {pod} and {cluster} are replaced",
    },
    doc: "A link for each incident (a dashboard, logs): ntfy's click action, Alertmanager's generatorURL, PagerDuty's and Opsgenie's link.",
};

pub static OPSGENIE_REGION: Setting<Choice<OpsgenieRegion>> = Setting {
    env: "OPSGENIE_REGION",
    flag: "--opsgenie-region",
    value: "REGION",
    kind: Choice {
        default: OpsgenieRegion::Us,
        choices: &[("us", OpsgenieRegion::Us), ("eu", OpsgenieRegion::Eu)],
    },
    doc: "Where the Opsgenie account lives: us (api.opsgenie.com) or eu (api.eu.opsgenie.com).",
};

pub static ALERTMANAGER_REPOST_SECONDS: Setting<Int> = Setting {
    env: "ALERTMANAGER_REPOST_SECONDS",
    flag: "--alertmanager-repost-seconds",
    value: "S",
    kind: Int {
        default: 60,
        min: 10,
        max: 3600,
        note: ", below the Alertmanager's resolve_timeout (5m by default)",
    },
    doc: "How often open incidents are posted to Alertmanager again, so it does not resolve them on its own.",
};

pub static EMIT_K8S_EVENTS: Setting<Bool> = Setting {
    env: "EMIT_K8S_EVENTS",
    flag: "--emit-k8s-events",
    value: "BOOL",
    kind: Bool { default: false },
    doc: "Write an Event (reason OpsctrlDiagnosis) on the failing pod with the cause and fix, so kubectl describe pod shows it. Needs create on events.",
};

pub static ROUTES_FILE: Setting<Text> = Setting {
    env: "ROUTES_FILE",
    flag: "--routes-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable JSON or YAML file of routes (see Routing)",
    },
    doc: "Which sinks (and which channel or webhook of a sink) receive which incidents, by namespace, severity, type, cause, workload and pod labels. Unset: every sink receives every incident.",
};

pub static SILENCES_FILE: Setting<Text> = Setting {
    env: "SILENCES_FILE",
    flag: "--silences-file",
    value: "PATH",
    kind: Text {
        default: "",
        allowed: "a readable JSON or YAML file of silences (see Silences)",
    },
    doc: "Maintenance windows: incidents matching a silence between its starts_at and ends_at are detected and printed but not notified until it ends.",
};

pub static SHUTDOWN_DRAIN_MS: Setting<Int> = Setting {
    env: "SHUTDOWN_DRAIN_MS",
    flag: "--shutdown-drain-ms",
    value: "MS",
    kind: Int {
        default: 10_000,
        min: 0,
        max: 300_000,
        note: "",
    },
    doc: "On SIGTERM, time left to deliver queued notifications; what is still queued is logged, one line each.",
};

pub static LEADER_ELECTION: Setting<Bool> = Setting {
    env: "LEADER_ELECTION",
    flag: "--leader-election",
    value: "BOOL",
    kind: Bool { default: false },
    doc: "Run several replicas: a coordination.k8s.io Lease picks the one that sends notifications; the others watch and stay warm. Needs leases in its namespace.",
};

pub static LEADER_ELECTION_NAMESPACE: Setting<Text> = Setting {
    env: "LEADER_ELECTION_NAMESPACE",
    flag: "--leader-election-namespace",
    value: "NS",
    kind: Text {
        default: "",
        allowed: "a namespace name (default: the pod's own namespace)",
    },
    doc: "Namespace of the Lease.",
};

pub static LEADER_ELECTION_NAME: Setting<Text> = Setting {
    env: "LEADER_ELECTION_NAME",
    flag: "--leader-election-name",
    value: "NAME",
    kind: Text {
        default: "opsctrl-daemon",
        allowed: "a lowercase DNS name",
    },
    doc: "Name of the Lease.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_unique_env_and_flag() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.env, b.env);
                assert_ne!(a.flag, b.flag);
            }
            assert!(a.flag.starts_with("--") && !a.doc.is_empty(), "{}", a.env);
        }
    }

    /// The README's row for a setting, as the definitions say it.
    fn row(s: &Spec) -> String {
        let default = s.kind.default_text();
        let default = if default.is_empty() {
            "(none)".to_string()
        } else {
            format!("`{default}`")
        };
        format!(
            "| `{}` | `{} {}` | {default} | {} | {} |",
            s.env,
            s.flag,
            s.value,
            s.kind.allowed(),
            s.doc
        )
    }

    #[test]
    fn the_readme_settings_table_is_the_definitions() {
        let readme = include_str!("../../README.md");
        let header = "| Variable | Flag | Default | Allowed | What it does |";
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| *l != header)
            .skip(2) // the header and its |---| line
            .take_while(|l| l.starts_with('|'))
            .collect();
        let want: Vec<String> = SETTINGS.iter().map(row).collect();
        let missing: Vec<&String> = want
            .iter()
            .filter(|r| !table.contains(&r.as_str()))
            .collect();
        let extra: Vec<&&str> = table
            .iter()
            .filter(|r| !want.iter().any(|w| w == **r))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "README's settings table disagrees with src/settings/defs.rs\n\
             rows the definitions give but the README lacks:\n{}\n\
             rows the README has that no definition gives:\n{}",
            missing
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            extra.iter().map(|r| **r).collect::<Vec<_>>().join("\n"),
        );
        assert_eq!(table, want, "same rows, different order");
    }
}
