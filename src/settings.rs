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
use std::time::Duration;

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
        allowed: "an integer from 1024 to 65535",
        doc: "Port of the health and metrics endpoint (all interfaces).",
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
        doc: "How long every pod of an incident must be healthy (Running and Ready, or Succeeded) before it is resolved.",
    },
    Spec {
        env: "ALERT_RATE_LIMIT_WINDOW_MINUTES",
        flag: "--alert-rate-limit-window-minutes",
        value: "MIN",
        default: "5",
        allowed: "an integer from 0 to 1440",
        doc: "Minimum gap between two notifications of one incident; updates in between are folded into the next one. A resolution is never held back.",
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
    pub reconnect: Reconnect,
    /// `None` when the health endpoint is disabled.
    pub health_port: Option<u16>,
    /// A level name, or an env_logger filter when it came from `RUST_LOG`.
    pub log_filter: String,
    /// `CLUSTER_NAME`, when set.
    pub cluster_name: Option<String>,
    pub output: Output,
    pub detect: Detect,
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
    let port = r.int("HEALTH_CHECK_PORT", 3000, 1024, 65_535) as u16;

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

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Settings {
        scope,
        label_selector,
        page_size,
        reconnect: Reconnect {
            enabled,
            initial: Duration::from_millis(initial),
            max: Duration::from_millis(max),
            multiplier,
            max_failures,
        },
        health_port: health_on.then_some(port),
        log_filter,
        cluster_name,
        output,
        detect,
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
            "HEALTH_CHECK_PORT=\"80\": allowed: an integer from 1024 to 65535"
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
    fn every_setting_has_a_unique_env_and_flag() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.env, b.env);
                assert_ne!(a.flag, b.flag);
            }
        }
    }

    #[test]
    fn each_setting_rejects_a_bad_value_by_name() {
        // One obviously wrong value per setting; each must be reported under its own name.
        for spec in SETTINGS {
            let bad = match spec.env {
                "WATCH_NAMESPACES" | "EXCLUDE_NAMESPACES" => "UPPER",
                "WATCH_LABEL_SELECTOR" => "a=\"b\"",
                "CLUSTER_NAME" => "has spaces",
                _ => "not-a-value",
            };
            let p = resolve(&env(&[(spec.env, bad)])).unwrap_err();
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
