/*!
From raw values to `Settings`: each group of settings read by its
definitions, the rules between settings checked (a maximum not below its
minimum, a feature with all its parts or none), and every problem collected
before giving up, so a user fixing a manifest sees all of them at once (the
daemon then exits 2).

The same code builds the defaults: `defaults.rs` runs it on `Unset`.
*/

use std::path::PathBuf;
use std::time::Duration;

use super::defs::*;
use super::destinations::destinations;
use super::kinds::{Int, Setting, Text};
use super::read::{Problem, Reader, Source};
use super::types::{
    Alerts, Backend, Detect, DiagnosisSettings, Leader, Llm, Reconnect, Scope, Settings, SlackBot,
    Webhook,
};
use super::validate::{
    cluster_name, expand_home, is_dns_label, is_dns_name, is_slack_webhook, plausible_email,
    plausible_label_selector, slack_channel, token_like,
};
use crate::model::Severity;
use crate::secret::Secret;
use crate::util::url_template::UrlTemplate;

/// Reads and validates every setting, collecting all problems.
pub fn resolve(source: &dyn Source) -> Result<Settings, Vec<Problem>> {
    let mut r = Reader::new(source);
    let settings = settings(&mut r);
    if r.problems.is_empty() {
        Ok(settings)
    } else {
        Err(r.problems)
    }
}

/// Every setting, in the order problems are reported. Where a value is bad,
/// its default stands in (the caller looks at `r.problems`).
pub(super) fn settings(r: &mut Reader) -> Settings {
    let scope = scope(r);
    let label_selector = r
        .text(&WATCH_LABEL_SELECTOR, |v| {
            if v.is_empty() {
                Some(None)
            } else {
                plausible_label_selector(v).then(|| Some(v.to_string()))
            }
        })
        .flatten();
    let page_size = r.int(&LIST_PAGE_SIZE) as u32;
    let watch_timeout_s = r.int(&WATCH_TIMEOUT_SECONDS);
    let watch_idle = Duration::from_secs(r.int(&WATCH_IDLE_TIMEOUT_SECONDS));
    let reconnect = reconnect(r);
    let health_on = r.boolean(&ENABLE_HEALTH_CHECK);
    let health_claim_url = r.boolean(&HEALTH_SHOW_CLAIM_URL);
    let port = r.int_where(&HEALTH_CHECK_PORT, |p| {
        p == 0 || HEALTH_CHECK_PORT.kind.accepts(p)
    }) as u16;
    let watchdog = Duration::from_millis(r.int(&WATCHDOG_MS));
    let log_filter = log_filter(r);
    let cluster_name = {
        let (name, value) = r.raw(&CLUSTER_NAME);
        let v = value.trim();
        if v.is_empty() {
            None
        } else if cluster_name(v) {
            Some(v.to_string())
        } else {
            let why = format!("allowed: {}", CLUSTER_NAME.kind.allowed);
            r.bad(name, value.clone(), why);
            None
        }
    };
    let log_format = r.choice(&LOG_FORMAT);
    let output = r.choice(&OUTPUT);
    let detect = detect(r);
    let diagnosis = diagnosis(r);
    let backend = backend(r, cluster_name.as_deref());
    let alerts = alerts(r);
    let leader = leader(r);
    Settings {
        scope,
        label_selector,
        page_size,
        watch_timeout_s,
        watch_idle,
        reconnect,
        health_port: health_on.then_some(port),
        health_claim_url,
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
    }
}

/// `WATCH_NAMESPACES` (or `EXCLUDE_NAMESPACES`): names, deduplicated; `*` only
/// for the first.
fn namespaces(r: &mut Reader, s: &Setting<Text>) -> Vec<String> {
    let (name, value) = r.raw(s);
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "*" && s.env == WATCH_NAMESPACES.env {
            out.push(part.to_string());
        } else if is_dns_label(part) {
            if !out.iter().any(|o| o == part) {
                out.push(part.to_string());
            }
        } else {
            let why = format!(
                "{part:?} is not a namespace name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); allowed: {}",
                s.kind.allowed
            );
            r.bad(name.clone(), value.clone(), why);
        }
    }
    out
}

fn scope(r: &mut Reader) -> Scope {
    let watch = namespaces(r, &WATCH_NAMESPACES);
    let exclude = namespaces(r, &EXCLUDE_NAMESPACES);
    if watch.is_empty() || watch.iter().any(|n| n == "*") {
        if watch.len() > 1 {
            let (name, value) = r.raw(&WATCH_NAMESPACES);
            let why = format!(
                "* cannot be combined with namespace names; allowed: {}",
                WATCH_NAMESPACES.kind.allowed
            );
            r.bad(name, value, why);
        }
        return Scope::Cluster { exclude };
    }
    let kept: Vec<String> = watch.into_iter().filter(|n| !exclude.contains(n)).collect();
    if kept.is_empty() {
        let (name, value) = r.raw(&WATCH_NAMESPACES);
        r.bad(
            name,
            value,
            "every namespace listed is also in EXCLUDE_NAMESPACES, so nothing would be watched"
                .into(),
        );
    }
    Scope::Namespaces(kept)
}

pub(super) fn reconnect(r: &mut Reader) -> Reconnect {
    let enabled = r.boolean(&RECONNECTION_ENABLED);
    let initial = r.int(&RECONNECTION_INITIAL_BACKOFF_MS);
    let max = r.int(&RECONNECTION_MAX_BACKOFF_MS);
    if max < initial {
        let (name, value) = r.raw(&RECONNECTION_MAX_BACKOFF_MS);
        let why = format!(
            "is below {} ({initial})",
            RECONNECTION_INITIAL_BACKOFF_MS.env
        );
        r.bad(name, value, why);
    }
    Reconnect {
        enabled,
        initial: Duration::from_millis(initial),
        max: Duration::from_millis(max),
        multiplier: r.number(&RECONNECTION_BACKOFF_MULTIPLIER),
        max_failures: r.int(&RECONNECTION_MAX_FAILURES) as u32,
    }
}

/// A level name, or `RUST_LOG`'s filter when that is set (a flag beats both).
fn log_filter(r: &mut Reader) -> String {
    let level = r.choice(&LOG_LEVEL);
    // LOG_LEVEL is read (and so checked) either way: a typo must not pass silently.
    match (r.source.flag(LOG_LEVEL.flag), r.source.env("RUST_LOG")) {
        (None, Some(rust_log)) if !rust_log.trim().is_empty() => rust_log,
        _ => LOG_LEVEL.kind.name_of(level).to_string(),
    }
}

pub(super) fn detect(r: &mut Reader) -> Detect {
    let mut ms = |s: &Setting<Int>| r.int(s) as i64;
    Detect {
        min_restart: ms(&MIN_RESTART_THRESHOLD) as u32,
        max_pending_ms: ms(&MAX_PENDING_DURATION_MS),
        image_pull_grace_ms: ms(&IMAGE_PULL_GRACE_MS),
        not_ready_grace_ms: ms(&NOT_READY_GRACE_MS),
        node_not_ready_grace_ms: ms(&NODE_NOT_READY_GRACE_MS),
        node_unschedulable_grace_ms: ms(&NODE_UNSCHEDULABLE_GRACE_MS),
        resolve_after_ms: ms(&RESOLVE_AFTER_MS),
        rate_limit_ms: ms(&ALERT_RATE_LIMIT_WINDOW_MINUTES) * 60_000,
        renotify_ms: ms(&ALERT_RENOTIFY_MINUTES) * 60_000,
        batch_ms: ms(&NOTIFY_BATCH_MS),
        storm_threshold: ms(&STORM_THRESHOLD) as usize,
    }
}

/// A setting naming a file that must exist (its content is checked by
/// whoever reads it, at start-up).
fn file(r: &mut Reader, s: &Setting<Text>) -> Option<PathBuf> {
    r.optional(s)
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
        })
}

pub(super) fn diagnosis(r: &mut Reader) -> DiagnosisSettings {
    let enabled = r.boolean(&DIAGNOSIS_ENABLED);
    let timeout = r.int(&DIAGNOSIS_TIMEOUT_MS);
    let ttl = r.int(&DIAGNOSIS_CACHE_TTL_MS);
    let max = r.int(&DIAGNOSIS_CACHE_MAX_ENTRIES) as usize;
    let include_logs = r.boolean(&INCLUDE_LOGS);
    let rules_file = file(r, &RULES_FILE);
    let base_url = r.url(&LLM_BASE_URL, false);
    let model = r.checked(&LLM_MODEL, token_like);
    let api_key = r.secret(&LLM_API_KEY, &LLM_API_KEY_FILE, token_like);
    let llm = match (base_url, model) {
        (Some(base_url), Some(model)) => Some(Llm {
            base_url,
            model,
            api_key,
        }),
        (Some(_), None) => {
            let (name, v) = r.raw(&LLM_BASE_URL);
            r.bad(name, v, "needs LLM_MODEL too".into());
            None
        }
        (None, _) => {
            r.requires(&LLM_MODEL, &LLM_BASE_URL);
            if api_key.is_some() && !r.reported(&LLM_BASE_URL) {
                let name = if r.optional(&LLM_API_KEY).is_some() {
                    LLM_API_KEY.env
                } else {
                    LLM_API_KEY_FILE.env
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

fn backend(r: &mut Reader, cluster_name: Option<&str>) -> Option<Backend> {
    let url = r.url(&OPSCTRL_BACKEND_URL, false);
    let frontend_url = r
        .url(&OPSCTRL_FRONTEND_URL, false)
        .unwrap_or_else(|| OPSCTRL_FRONTEND_URL.kind.default.into());
    let email = r.checked(&USER_EMAIL, plausible_email);
    // Checked before the backend URL: a bad directory given explicitly is
    // reported even when the URL is missing or wrong too.
    let state_dir = {
        let (name, v) = r.raw(&OPSCTRL_STATE_DIR);
        let dir = expand_home(v.trim(), r.source.env("HOME"));
        if !dir.is_absolute() && (url.is_some() || r.is_given(&OPSCTRL_STATE_DIR)) {
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
            r.requires(&USER_EMAIL, &OPSCTRL_BACKEND_URL);
        }
        r.requires(&OPSCTRL_STATE_DIR, &OPSCTRL_BACKEND_URL);
        r.requires(&OPSCTRL_FRONTEND_URL, &OPSCTRL_BACKEND_URL);
        return None;
    };
    let missing: Vec<&str> = [
        (CLUSTER_NAME.env, cluster_name.is_none()),
        (USER_EMAIL.env, email.is_none()),
    ]
    .into_iter()
    .filter_map(|(n, m)| m.then_some(n))
    .collect();
    if !missing.is_empty() {
        let (name, v) = r.raw(&OPSCTRL_BACKEND_URL);
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

/// `ALERT_SEVERITY_FILTERS`: severity names, any case, deduplicated.
fn severities(v: &str) -> Option<Vec<Severity>> {
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
}

pub(super) fn alerts(r: &mut Reader) -> Alerts {
    let workers = r.int(&ALERT_WORKERS) as usize;
    let queue_size = r.int(&ALERT_QUEUE_SIZE) as usize;
    let max_attempts = r.int(&ALERT_MAX_ATTEMPTS) as u32;
    let backoff = r.int(&ALERT_BACKOFF_MS);
    let max_backoff = r.int(&ALERT_MAX_BACKOFF_MS);
    if max_backoff < backoff {
        let (name, value) = r.raw(&ALERT_MAX_BACKOFF_MS);
        let why = format!("is below {} ({backoff})", ALERT_BACKOFF_MS.env);
        r.bad(name, value, why);
    }
    // Bad: reported, and the (then unused) settings get none.
    let severities = r
        .text(&ALERT_SEVERITY_FILTERS, severities)
        .unwrap_or_default();
    let mut slack_webhook = r.url(&SLACK_WEBHOOK_URL, true).map(Secret::new);
    let mut webhook_url = r.url(&WEBHOOK_URL, true);
    if webhook_url.as_deref().is_some_and(is_slack_webhook) {
        if slack_webhook.is_some() {
            r.bad_secret(
                WEBHOOK_URL.env.into(),
                "is a Slack webhook and SLACK_WEBHOOK_URL is set too; allowed: one Slack webhook"
                    .into(),
            );
        } else {
            slack_webhook = webhook_url.take().map(Secret::new);
        }
    }
    let auth_header = r.secret(&WEBHOOK_AUTH_HEADER, &WEBHOOK_AUTH_HEADER_FILE, |v| {
        !v.is_empty() && !v.chars().any(char::is_control)
    });
    let webhook = match webhook_url {
        Some(url) => Some(Webhook {
            url: Secret::new(url),
            auth_header,
        }),
        None => {
            if auth_header.is_some() && !r.reported(&WEBHOOK_URL) {
                r.bad_secret(
                    WEBHOOK_AUTH_HEADER.env.into(),
                    "has no effect without a (non-Slack) WEBHOOK_URL".into(),
                );
            }
            None
        }
    };
    let slack_bot = slack_bot(r);
    let d = destinations(r);
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
        teams: d.teams,
        discord: d.discord,
        telegram: d.telegram,
        ntfy: d.ntfy,
        pagerduty: d.pagerduty,
        opsgenie: d.opsgenie,
        alertmanager: d.alertmanager,
        link_url: d.link_url,
        emit_k8s_events: r.boolean(&EMIT_K8S_EVENTS),
        routes_file: file(r, &ROUTES_FILE),
        silences_file: file(r, &SILENCES_FILE),
        shutdown_drain: Duration::from_millis(r.int(&SHUTDOWN_DRAIN_MS)),
        dashboard: dashboard(r),
    }
}

/// `DASHBOARD_URL_TEMPLATE`, checked: every problem reported.
fn dashboard(r: &mut Reader) -> Option<UrlTemplate> {
    let (name, v) = r.optional(&DASHBOARD_URL_TEMPLATE)?;
    match UrlTemplate::parse(&v) {
        Ok(t) => Some(t),
        Err(problems) => {
            let why = format!(
                "{}; allowed: {}",
                problems.join(", "),
                DASHBOARD_URL_TEMPLATE.kind.allowed
            );
            r.bad(name, v, why);
            None
        }
    }
}

fn slack_bot(r: &mut Reader) -> Option<SlackBot> {
    let token = r.secret(&SLACK_BOT_TOKEN, &SLACK_BOT_TOKEN_FILE, |v| {
        token_like(v) && v.starts_with("xox")
    });
    let channel = r.checked(&SLACK_CHANNEL, slack_channel);
    let routes = match r.optional(&SLACK_CHANNEL_ROUTES) {
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
                            SLACK_CHANNEL_ROUTES.kind.allowed
                        );
                        r.bad(name.clone(), v.clone(), why);
                    }
                }
            }
            out
        }
    };
    let api_url = r
        .url(&SLACK_API_URL, false)
        .unwrap_or_else(|| SLACK_API_URL.kind.default.into());
    match (token, channel) {
        (Some(token), Some(channel)) => Some(SlackBot {
            token,
            api_url,
            channel,
            routes,
        }),
        (Some(_), None) => {
            r.bad(
                SLACK_CHANNEL.env.into(),
                String::new(),
                "is required with a Slack bot token".into(),
            );
            None
        }
        (None, _) => {
            r.requires(&SLACK_CHANNEL, &SLACK_BOT_TOKEN);
            r.requires(&SLACK_CHANNEL_ROUTES, &SLACK_BOT_TOKEN);
            r.requires(&SLACK_API_URL, &SLACK_BOT_TOKEN);
            None
        }
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

fn leader(r: &mut Reader) -> Option<Leader> {
    let on = r.boolean(&LEADER_ELECTION);
    let ns = r.checked(&LEADER_ELECTION_NAMESPACE, is_dns_label);
    let (name_src, lease) = r.raw(&LEADER_ELECTION_NAME);
    let lease = lease.trim().to_string();
    if !is_dns_name(&lease) {
        let why = format!("allowed: {}", LEADER_ELECTION_NAME.kind.allowed);
        r.bad(name_src, lease.clone(), why);
    }
    if !on {
        return None;
    }
    let namespace = match ns.or_else(|| own_namespace(r.source)) {
        Some(ns) => ns,
        None => {
            r.bad(
                LEADER_ELECTION_NAMESPACE.env.into(),
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
    use crate::settings::read::tests::Fake;
    use crate::settings::types::Output;
    use std::time::Duration;

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
    fn a_dashboard_template_is_checked_and_every_problem_named() {
        let s = resolve(&env(&[(
            "DASHBOARD_URL_TEMPLATE",
            "https://headlamp.example/c/main/{kind}/{namespace}/{name}",
        )]))
        .unwrap();
        let t = s.alerts.dashboard.expect("a template");
        assert_eq!(
            t.fill("c", "shop", "Deployment", "web"),
            "https://headlamp.example/c/main/Deployment/shop/web"
        );
        assert_eq!(resolve(&env(&[])).unwrap().alerts.dashboard, None);
        let p = resolve(&env(&[("DASHBOARD_URL_TEMPLATE", "ftp://x/{pod}")])).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].why.contains("http or https") && p[0].why.contains("{pod}"),
            "{p:?}"
        );
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
    fn each_destination_needs_its_parts_and_says_which_is_missing() {
        let s = resolve(&env(&[
            (
                "TEAMS_WEBHOOK_URL",
                "https://prod.westeurope.logic.azure.com/workflows/x/",
            ),
            (
                "DISCORD_WEBHOOK_URL",
                "https://discord.com/api/webhooks/1/tok",
            ),
            ("TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("TELEGRAM_CHAT_ID", "-1001234"),
            ("NTFY_URL", "https://ntfy.sh/my-topic"),
            ("PAGERDUTY_ROUTING_KEY", "R0123456789abcdef0123456789abcde"),
            ("OPSGENIE_API_KEY", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
            ("OPSGENIE_REGION", "eu"),
            ("ALERTMANAGER_URL", "http://alertmanager:9093/"),
        ]))
        .unwrap();
        let a = &s.alerts;
        assert_eq!(
            a.teams.as_ref().map(|u| u.expose()),
            Some("https://prod.westeurope.logic.azure.com/workflows/x")
        );
        assert_eq!(
            a.telegram.as_ref().unwrap().api_url,
            "https://api.telegram.org"
        );
        assert_eq!(
            a.opsgenie.as_ref().unwrap().api_url,
            "https://api.eu.opsgenie.com"
        );
        let am = a.alertmanager.as_ref().unwrap();
        assert_eq!(am.url.expose(), "http://alertmanager:9093");
        assert_eq!(am.repost.as_secs(), 60);
        assert!(a.ntfy.is_some() && a.pagerduty.is_some() && a.discord.is_some());

        let bad = resolve(&env(&[
            ("TELEGRAM_BOT_TOKEN", "123:ABC"),
            ("NTFY_URL", "https://ntfy.sh/"),
            ("NTFY_TOKEN", "tk_x"),
            ("OPSGENIE_REGION", "mars"),
            ("ALERTMANAGER_REPOST_SECONDS", "30"),
            (
                "DISCORD_WEBHOOK_URL",
                "discord.com/api/webhooks/1/SECRETTOKEN",
            ),
        ]))
        .unwrap_err();
        let names: Vec<&str> = bad.iter().map(|p| p.name.as_str()).collect();
        for n in [
            "TELEGRAM_CHAT_ID",
            "NTFY_URL",
            "OPSGENIE_REGION",
            "ALERTMANAGER_REPOST_SECONDS",
            "DISCORD_WEBHOOK_URL",
        ] {
            assert!(names.contains(&n), "{n} not in {names:?}");
        }
        let all = format!("{bad:?}");
        assert!(!all.contains("SECRETTOKEN"), "{all}");
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
}

#[cfg(test)]
mod kind_tests {
    //! One test per kind of setting, as ripgrep tests each flag: the flag is
    //! read, the variable is read, the flag beats the variable, unset is the
    //! default, and a bad value is reported under the name it came from with
    //! what is allowed.

    use super::*;
    use crate::settings::kinds::Kind;
    use crate::settings::read::tests::Fake;
    use crate::settings::types::Output;
    use std::fmt;

    fn by_flag<K>(s: &Setting<K>, v: &str) -> Fake {
        let mut f = Fake::default();
        f.flags.insert(s.flag.into(), v.into());
        f
    }

    fn by_env<K>(s: &Setting<K>, v: &str) -> Fake {
        let mut f = Fake::default();
        f.env.insert(s.env.into(), v.into());
        f
    }

    /// The problem lines of resolving `source`.
    fn problems(source: &Fake) -> Vec<String> {
        match resolve(source) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    /// What every kind is checked for, through `resolve`: `field` picks the
    /// setting's value out of `Settings`; `good` and `other` are two valid
    /// values, as typed and as read; `bad` is invalid.
    fn check_kind<K: Kind, T: PartialEq + fmt::Debug>(
        s: &Setting<K>,
        field: impl Fn(&Settings) -> T,
        default: T,
        (good, good_is): (&str, T),
        (other, other_is): (&str, T),
        bad: &str,
    ) {
        let read = |f: &Fake| resolve(f).map(|s| field(&s)).map_err(|_| problems(f));
        assert_eq!(read(&Fake::default()), Ok(default), "{} unset", s.env);
        assert_eq!(read(&by_flag(s, good)), Ok(good_is), "{}", s.flag);
        let mut both = by_env(s, other);
        assert_eq!(read(&both), Ok(other_is), "{}", s.env);
        both.flags.insert(s.flag.into(), good.into());
        assert_eq!(read(&both), read(&by_flag(s, good)), "the flag wins");
        // One line, naming where the value came from and ending in what is allowed.
        let allowed = format!("allowed: {}", s.kind.allowed());
        for (name, f) in [(s.env, by_env(s, bad)), (s.flag, by_flag(s, bad))] {
            let p = problems(&f);
            let named = format!("{name}={bad:?}: ");
            assert!(
                p.len() == 1 && p[0].starts_with(&named) && p[0].ends_with(&allowed),
                "{name}={bad:?} gave {p:?}"
            );
        }
    }

    #[test]
    fn an_integer_setting() {
        let s = &HEALTH_CHECK_PORT;
        let port = |s: &Settings| s.health_port;
        check_kind(
            s,
            port,
            Some(3000),
            ("1024", Some(1024)),
            (" 65535 ", Some(65_535)),
            "80",
        );
        for bad in ["65536", "-1", "3000.0", "", "0x10"] {
            assert_eq!(problems(&by_env(s, bad)).len(), 1, "{bad:?}");
        }
        assert_eq!(
            problems(&by_env(s, "80")),
            [
                "HEALTH_CHECK_PORT=\"80\": allowed: an integer from 1024 to 65535, or 0 for any free port (logged at start)"
            ]
        );
        let s = &ALERT_RATE_LIMIT_WINDOW_MINUTES;
        let window = |s: &Settings| s.detect.rate_limit_ms;
        check_kind(
            s,
            window,
            5 * 60_000,
            ("0", 0),
            ("1440", 1440 * 60_000),
            "1441",
        );
        let s = &SHUTDOWN_DRAIN_MS;
        let drain = |s: &Settings| s.alerts.shutdown_drain;
        let ms = Duration::from_millis;
        check_kind(
            s,
            drain,
            ms(10_000),
            ("0", ms(0)),
            ("300000", ms(300_000)),
            "300001",
        );
    }

    #[test]
    fn a_number_setting() {
        let s = &RECONNECTION_BACKOFF_MULTIPLIER;
        let mult = |s: &Settings| s.reconnect.multiplier;
        check_kind(s, mult, 2.0, ("1.1", 1.1), ("10", 10.0), "1.0");
        for bad in ["NaN", "inf", "10.5", "two"] {
            assert_eq!(problems(&by_env(s, bad)).len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn a_boolean_setting() {
        let s = &INCLUDE_LOGS;
        let logs = |s: &Settings| s.diagnosis.include_logs;
        check_kind(s, logs, true, ("False", false), ("true", true), "1");
        let s = &ENABLE_HEALTH_CHECK;
        let on = |s: &Settings| s.health_port.is_some();
        check_kind(s, on, true, ("false", false), ("TRUE", true), "yes");
    }

    #[test]
    fn a_choice_setting() {
        let s = &OUTPUT;
        let output = |s: &Settings| s.output;
        check_kind(
            s,
            output,
            Output::Text,
            ("json", Output::Json),
            ("text", Output::Text),
            "yaml",
        );
        let s = &LOG_LEVEL;
        let level = |s: &Settings| s.log_filter.clone();
        check_kind(
            s,
            level,
            "info".into(),
            ("debug", "debug".into()),
            ("WARN", "warn".into()),
            "loud",
        );
    }

    #[test]
    fn a_text_setting() {
        let s = &CLUSTER_NAME;
        let name = |s: &Settings| s.cluster_name.clone();
        check_kind(
            s,
            name,
            None,
            ("edge-1", Some("edge-1".into())),
            (" a_b ", Some("a_b".into())),
            "has spaces",
        );
        let s = &EXCLUDE_NAMESPACES;
        let excluded = |s: &Settings| s.scope.clone();
        let cluster = |ns: &[&str]| crate::settings::Scope::Cluster {
            exclude: ns.iter().map(|n| n.to_string()).collect(),
        };
        let default = cluster(&["kube-system", "kube-public", "kube-node-lease"]);
        check_kind(
            s,
            excluded,
            default,
            ("", cluster(&[])),
            ("a,b", cluster(&["a", "b"])),
            "A",
        );
    }

    #[test]
    fn a_url_setting() {
        // Only meaningful with a bot token, which is therefore set throughout.
        let s = &SLACK_API_URL;
        let mut f = by_flag(s, "http://proxy/api/");
        f.env.insert("SLACK_BOT_TOKEN".into(), "xoxb-1".into());
        f.env.insert("SLACK_CHANNEL".into(), "#a".into());
        let api = |f: &Fake| resolve(f).map(|s| s.alerts.slack_bot.map(|b| b.api_url));
        assert_eq!(api(&f), Ok(Some("http://proxy/api".into())));
        f.flags.clear();
        assert_eq!(api(&f), Ok(Some("https://slack.com/api".into())));
        f.env.insert(s.env.into(), "https://x".into());
        assert_eq!(api(&f), Ok(Some("https://x".into())));
        f.env.insert(s.env.into(), "ftp://x".into());
        assert_eq!(
            problems(&f),
            ["SLACK_API_URL=\"ftp://x\": allowed: an http or https URL"]
        );
    }

    #[test]
    fn a_secret_is_named_but_never_echoed() {
        let s = &LLM_API_KEY;
        let with_llm = |mut f: Fake| {
            f.env
                .insert("LLM_BASE_URL".into(), "http://ollama/v1".into());
            f.env.insert("LLM_MODEL".into(), "llama3".into());
            f
        };
        let key = |f: &Fake| {
            resolve(f).map(|s| {
                s.diagnosis
                    .llm
                    .and_then(|l| l.api_key)
                    .map(|k| k.expose().to_string())
            })
        };
        assert_eq!(key(&with_llm(Fake::default())), Ok(None));
        assert_eq!(key(&with_llm(by_flag(s, "sk-1"))), Ok(Some("sk-1".into())));
        assert_eq!(key(&with_llm(by_env(s, " sk-2 "))), Ok(Some("sk-2".into())));
        assert_eq!(
            problems(&with_llm(by_env(s, "sk SECRET"))),
            [
                "LLM_API_KEY=\"<redacted>\": allowed: a key without spaces; not with LLM_API_KEY_FILE"
            ]
        );
    }
}
