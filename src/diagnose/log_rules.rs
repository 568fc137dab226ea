/*!
Causes read from the crashed run's log tail (`INCLUDE_LOGS`, on by default):
a refused connection to a host:port, a DNS failure, a missing environment
variable or file, a runtime out of memory (JVM, Node, Go), a port already in
use, a failed database migration, a denied permission, and last an unhandled
panic or exception (Go, Rust, Java, Python, Node).

Kept apart from the rule table (`rules`) because a log cause needs names
parsed out of the line (the host and port, the variable, the path) that the
table's substring patterns cannot carry, and because it is consulted in one
place only: the table's matcher asks `replaces` whether the log tail
names the cause better than the table rule that matched. It does when that
rule only hints at the cause (a probe failing, a generic exit, a crash loop,
or one of the table's own quoted-output rules that a log rule covers); it
does not when the pod's status already pins the cause down (evictions,
images, configuration, OOMKilled, exit 127/126/139), nor over a user rule.

Order matters, as in the table: the specific causes come first, so that
`panic: dial tcp 10.0.0.5:5432: connect: connection refused` is a refused
connection, not a panic. Lines are already redacted when they get here
(`enrich`); names parsed from them pass `vars::safe` before they go into a
command.
*/

use super::context::Context;
use super::vars::{MAX_QUOTE, Vars, cap, fill, safe};
use crate::model::diagnosis::{Cause, Diagnosis, Fix};
use crate::model::{ContainerRecord, ContainerState};

/// What one log rule parsed out of its line: `{{key}}` values for its texts.
type Names = Vec<(&'static str, String)>;

pub struct LogRule {
    pub id: &'static str,
    pub cause: Cause,
    pub confidence: f64,
    /// The matcher: given a line (and its lowercase form), the names it
    /// parsed, or `None` when the line is not this cause.
    matches: fn(&str, &str) -> Option<Names>,
    summary: &'static str,
    fix: &'static str,
    /// `kubectl set …` commands change the pod template: only given for
    /// kinds whose template can be changed in place.
    commands: &'static [&'static str],
}

/// Whether the log tail's cause replaces the table rule `id` found at
/// `position` of the built-in table, whose quoted-output rules start at
/// `quoted`. A user rule (`None`) stands, and so does a rule that the pod's
/// status pins down (before `quoted`). Of the quoted-output rules, a full
/// disk and a TLS error stand too: they name the root cause better than the
/// panic or refused connection they cause, and no log rule covers them.
pub fn replaces(id: &str, position: Option<usize>, quoted: usize) -> bool {
    match position {
        None => false,
        Some(p) if p < quoted => false,
        Some(_) => !matches!(id, "disk-full" | "x509-certificate-error"),
    }
}

/// The first log rule with a matching line, as a diagnosis with the real
/// names filled in; `None` when no log line names a cause.
pub fn diagnose(ctx: &Context, container: Option<&ContainerRecord>) -> Option<Diagnosis> {
    let (rule, at, mut names) = find(ctx.logs)?;
    let has = |names: &Names, key| names.iter().any(|(k, _)| *k == key);
    if has(&names, "service") && !has(&names, "service_ns") {
        // A bare Service name resolves in the pod's own namespace.
        let ns: &str = if ctx.pod.namespace.is_empty() {
            &ctx.finding.namespace
        } else {
            &ctx.pod.namespace
        };
        names.push(("service_ns", ns.to_string()));
    }
    let line = quoted_line(ctx.logs, at);
    let vars = Vars {
        ctx,
        container,
        probe: None,
        texts: vec![line.as_str()],
    };
    let restarted = container.is_some_and(|c| c.restart_count > 0 || c.last_terminated.is_some());
    let text = |t: &str| fill(&put(t, &names, restarted, false).unwrap_or_default(), &vars);
    let kind = ctx.workload.kind.as_str();
    let mut evidence = Vec::new();
    if let Some(code) = ctx.finding.exit_code {
        // The run's own termination reason (`Error`), as the table's evidence gives it.
        let reason = container
            .and_then(|c| match &c.state {
                ContainerState::Terminated(t) => Some(t),
                _ => c.last_terminated.as_ref(),
            })
            .and_then(|t| t.reason.as_deref())
            .filter(|r| !r.is_empty())
            .unwrap_or(&ctx.finding.reason);
        evidence.push(format!("exit code {code}, reason {}", cap(reason, 80)));
    }
    evidence.push(format!("log: {}", quote(&line)));
    // What the line names, once: not the template helpers (`on_port` is
    // " on port 5432"), nor a value an earlier one already shows (the port
    // of an address).
    let mut shown: Vec<&str> = Vec::new();
    for (k, v) in names.iter() {
        if k.starts_with("on_") || shown.iter().any(|s| s.contains(v.as_str())) {
            continue;
        }
        shown.push(v);
        evidence.push(format!("{} {v}", k.replace('_', " ")));
    }
    let mut fix = text(rule.fix);
    if !editable(kind) && rule.commands.iter().any(|c| c.starts_with("kubectl set ")) {
        fix.push_str(&text(match kind {
            "Job" => " A Job's pod template cannot be changed: export it (kubectl get {{ref}} -n {{ns}} -o yaml), change it and recreate it (kubectl replace --force -f <file>), or change the CronJob that creates it.",
            _ => " This is a bare pod: its spec cannot be changed in place, so change its manifest and recreate it.",
        }));
    }
    let commands = rule
        .commands
        .iter()
        .filter(|c| editable(kind) || !c.starts_with("kubectl set env {{ref}}"))
        .filter(|c| rolls(kind) || !c.starts_with("kubectl rollout "))
        .filter_map(|c| put(c, &names, restarted, true))
        .map(|c| fill(&c, &vars))
        .collect();
    Some(Diagnosis {
        cause: rule.cause,
        summary: text(rule.summary),
        confidence: rule.confidence,
        evidence,
        fix: Fix {
            text: fix,
            commands,
        },
        rule: rule.id,
        ai: None,
        backend: None,
        node_incident: None,
    })
}

/// The first rule (in table order) with a matching line, the line's index
/// and the names parsed from it.
pub fn find(logs: &[String]) -> Option<(&'static LogRule, usize, Names)> {
    let lower: Vec<String> = logs.iter().map(|l| l.to_ascii_lowercase()).collect();
    LOG_RULES.iter().find_map(|rule| {
        logs.iter()
            .zip(&lower)
            .enumerate()
            .find_map(|(i, (l, low))| (rule.matches)(l, low).map(|n| (rule, i, n)))
    })
}

/// Kinds whose pod template `kubectl set env` changes in place.
fn editable(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "CronJob"
    )
}

fn rolls(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet")
}

/// Puts the parsed names (and `{{logs_flags}}`) into a template; `vars`
/// fills the rest. A name the line did not give becomes a few words in a
/// text, and drops a command (`None`): a command with a guessed name would
/// not work.
fn put(template: &str, names: &Names, restarted: bool, command: bool) -> Option<String> {
    let mut out = template.replace(
        "{{logs_flags}}",
        // `--previous` only for a container that has a previous run.
        if restarted { " --previous" } else { "" },
    );
    for (key, words) in KEYS {
        let slot = format!("{{{{{key}}}}}");
        if out.contains(&slot) {
            let value = match names.iter().find(|(k, _)| k == key) {
                Some((_, v)) => v.as_str(),
                None if command => return None,
                None => words,
            };
            out = out.replace(&slot, value);
        }
    }
    Some(out)
}

/// The names a log rule may parse (each a `{{key}}` in its texts), and the
/// words a text says when the line did not give it.
const KEYS: &[(&str, &str)] = &[
    ("address", "a dependency"),
    ("service", "the Service"),
    ("service_ns", "its namespace"),
    ("port", "its port"),
    ("on_port", ""),
    ("host", "a host name"),
    ("variable", "a required variable"),
    ("path", "a file it needs"),
    ("dir", "the path the app expects"),
    ("runtime", "runtime"),
];

/// The line to quote: the line itself, or for a Python traceback or a Rust
/// panic, the line that says what went wrong.
fn quoted_line(logs: &[String], at: usize) -> String {
    let line = logs[at].trim();
    let lower = line.to_ascii_lowercase();
    if lower.starts_with("traceback (most recent call last)") {
        // The exception is the first unindented line after the frames.
        if let Some(e) = logs[at + 1..]
            .iter()
            .find(|l| !l.starts_with([' ', '\t']) && !l.trim().is_empty())
        {
            return format!("{line} … {}", e.trim());
        }
    }
    if node_frame(&logs[at]) {
        // The error is the unindented line above the first frame.
        if let Some(e) = logs[..at]
            .iter()
            .rev()
            .find(|l| !l.starts_with([' ', '\t']) && !l.trim().is_empty())
        {
            return e.trim().to_string();
        }
    }
    if lower.contains("panicked at") && lower.trim_end().ends_with(':') {
        // Rust ≥ 1.73 prints the message on the next line.
        if let Some(next) = logs.get(at + 1) {
            return format!("{line} {}", next.trim());
        }
    }
    line.to_string()
}

fn quote(line: &str) -> String {
    let flat: Vec<&str> = line.split_whitespace().collect();
    cap(&flat.join(" "), MAX_QUOTE)
}

/// Words of a line, split at whitespace and quoting punctuation, with a
/// trailing `:`/`.`/`,` trimmed.
fn words(line: &str) -> impl Iterator<Item = &str> {
    // Square brackets are split off inside the word, so that a redacted
    // address (`[REDACTED:ip]:5432`) stays one word.
    line.split(|c: char| c.is_whitespace() || "\"'`(),;{}<>=".contains(c))
        .map(|w| {
            let w = w.trim_end_matches([':', '.', ',']);
            if w.starts_with("[REDACTED") {
                w
            } else {
                w.trim_matches(['[', ']']).trim_end_matches([':', '.', ','])
            }
        })
        .filter(|w| !w.is_empty())
}

/// `host:port` (a name or IPv4 address and a port) → (host, port).
fn host_port(word: &str) -> Option<(&str, &str)> {
    let (host, port) = word.rsplit_once(':')?;
    let host = host.rsplit_once("//").map_or(host, |(_, h)| h);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        && host.bytes().any(|b| b.is_ascii_alphabetic() || b == b'.');
    (port_ok && host_ok).then_some((host, port))
}

/// `[REDACTED:ip]:5432`: an address `redact` took, and its port.
fn redacted_port(word: &str) -> Option<(&str, &str)> {
    let (host, port) = word.rsplit_once("]:")?;
    let ok = host.starts_with("[REDACTED")
        && (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| (&word[..host.len() + 1], port))
}

/// The address a refused connection was to: the word after a dialer's
/// prefix when there is one (`dial tcp A`, `ECONNREFUSED A`, `connect to A`,
/// `Connection to A refused`), else the first host:port of the line. For
/// Go's `dial tcp 10.0.0.1:45678->10.96.0.5:5432` the remote side.
fn refused_address(line: &str, lower: &str) -> Option<(String, String)> {
    let after = [
        "dial tcp ",
        "econnrefused ",
        "connect to ",
        "connection to ",
    ]
    .iter()
    .find_map(|p| lower.find(p).map(|i| &line[i + p.len()..]));
    let pick = |w: &str| {
        let w = w.rsplit_once("->").map_or(w, |(_, r)| r);
        host_port(w)
            .or_else(|| redacted_port(w))
            .map(|(h, p)| (h.to_string(), p.to_string()))
    };
    after
        .and_then(|rest| words(rest).next().and_then(pick))
        .or_else(|| words(line).find_map(pick))
}

/// A Service name from a host: `db`, `db.shop`, `db.shop.svc`,
/// `db.shop.svc.cluster.local` → (`db`, namespace if named). `None` for an
/// IP address or an outside name (`api.example.com`).
fn service_of(host: &str) -> Option<(String, Option<String>)> {
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let dns1035 = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && s.as_bytes()[0].is_ascii_lowercase()
    };
    let in_cluster = match labels.as_slice() {
        [_] | [_, _] => true,
        [_, _, "svc", rest @ ..] => {
            rest.is_empty() || rest.ends_with(&["local"]) || rest.len() <= 2
        }
        _ => false,
    };
    if !in_cluster || !labels.iter().take(2).all(|l| dns1035(l)) {
        return None;
    }
    Some((labels[0].to_string(), labels.get(1).map(|s| s.to_string())))
}

fn any(lower: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| lower.contains(n))
}

// ------------------------------------------------------------ the matchers

fn runtime_oom(_: &str, lower: &str) -> Option<Names> {
    let runtime =
        if lower.contains("java.lang.outofmemoryerror") || lower.contains("outofmemoryerror:") {
            "JVM"
        } else if any(
            lower,
            &[
                "javascript heap out of memory",
                "reached heap limit allocation failed",
                "ineffective mark-compacts near heap limit",
            ],
        ) {
            "Node.js"
        } else if lower.contains("fatal error: runtime: out of memory") {
            "Go"
        } else if lower.contains("memory allocation of") && lower.contains("failed") {
            "Rust"
        } else if lower.trim_start().starts_with("memoryerror") {
            "Python"
        } else {
            return None;
        };
    Some(vec![("runtime", runtime.to_string())])
}

fn port_in_use(line: &str, lower: &str) -> Option<Names> {
    if !any(
        lower,
        &[
            "address already in use",
            "eaddrinuse",
            "port is already allocated",
            "address in use",
            "bindexception",
        ],
    ) {
        return None;
    }
    // `listen tcp :8080: bind: …`, `EADDRINUSE: address already in use :::3000`
    let port = words(line)
        .filter_map(|w| w.rsplit_once(':').map(|(_, p)| p))
        .find(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string);
    Some(port.into_iter().map(|p| ("port", p)).collect())
}

/// `UPPER_SNAKE` words that look like an environment variable's name.
fn env_name(w: &str) -> Option<&str> {
    let w = w.trim_start_matches('$');
    let ok = w.len() >= 3
        && w.len() <= 128
        && w.as_bytes()[0].is_ascii_uppercase()
        && w.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && (w.contains('_') || w.len() >= 4);
    ok.then_some(w)
}

fn missing_env(line: &str, lower: &str) -> Option<Names> {
    let about_env = any(
        lower,
        &[
            "environment variable",
            "env var",
            "envvar",
            "env variable",
            "required key",
            "keyerror:",
        ],
    );
    let missing = any(
        lower,
        &[
            "not set",
            "missing",
            "required",
            "undefined",
            "is empty",
            "not defined",
            "not found",
            "must be set",
            "must be provided",
            "keyerror:",
        ],
    );
    let bare = any(lower, &["must be set", "is not set", "must be provided"]);
    if !(about_env && missing || bare) {
        return None;
    }
    // Skip words the message itself shouts (ERROR, FATAL) and log levels.
    let name = words(line).filter_map(env_name).find(|w| {
        !matches!(
            *w,
            "ERROR"
                | "FATAL"
                | "WARN"
                | "WARNING"
                | "INFO"
                | "DEBUG"
                | "PANIC"
                | "CRITICAL"
                | "KEYERROR"
        )
    })?;
    Some(vec![("variable", name.to_string())])
}

fn missing_file(line: &str, lower: &str) -> Option<Names> {
    if !any(
        lower,
        &[
            "no such file or directory",
            "enoent",
            "filenotfounderror",
            "filenotfoundexception",
            "file not found",
            "does not exist",
            "cannot find the file",
        ],
    ) || any(
        lower,
        &["exec:", "executable file not found", "exec format"],
    ) {
        return None;
    }
    let path = words(line)
        .map(|w| w.trim_end_matches(':'))
        .find(|w| w.starts_with('/') && w.len() > 1 && safe(w).is_some())?;
    let dir = match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((d, _)) => d.to_string(),
    };
    Some(vec![("path", path.to_string()), ("dir", dir)])
}

fn migration(_: &str, lower: &str) -> Option<Names> {
    let tool = any(
        lower,
        &[
            "migration",
            "migrate",
            "flyway",
            "liquibase",
            "alembic",
            "schema_migrations",
            "dirty database",
        ],
    );
    let failed = any(
        lower,
        &[
            "fail",
            "error",
            "dirty",
            "could not",
            "cannot",
            "exception",
            "rollback",
            "checksum mismatch",
        ],
    );
    // "no migrations to apply" and "migrations complete" are good news.
    let fine = any(lower, &["no migrations", "migrations complete", "0 errors"]);
    (tool && failed && !fine).then(Vec::new)
}

fn dns(line: &str, lower: &str) -> Option<Names> {
    if !any(
        lower,
        &[
            "no such host",
            "name or service not known",
            "nxdomain",
            "temporary failure in name resolution",
            "could not resolve host",
            "could not translate host name",
            "getaddrinfo enotfound",
            "unknownhostexception",
            "nodename nor servname provided",
            "failed to resolve",
            "name resolution failed",
            "server misbehaving",
        ],
    ) {
        return None;
    }
    let host = [
        "lookup ",
        "could not resolve host: ",
        "getaddrinfo enotfound ",
        "unknownhostexception: ",
        "failed to resolve '",
        "could not translate host name \"",
    ]
    .iter()
    .find_map(|p| {
        let i = lower.find(p)?;
        words(&line[i + p.len()..]).next()
    })
    .or_else(|| {
        // `db.shop.svc.cluster.local: NXDOMAIN`: the name just before.
        let i = lower.find("nxdomain")?;
        words(&line[..i]).last()
    })
    .map(|h| h.split(':').next().unwrap_or(h))
    .filter(|h| h.contains(|c: char| c.is_ascii_alphabetic()))
    .and_then(safe);
    let mut names = Vec::new();
    if let Some(h) = host {
        names.push(("host", h.to_string()));
        if let Some((svc, ns)) = service_of(h) {
            names.push(("service", svc));
            if let Some(ns) = ns {
                names.push(("service_ns", ns));
            }
        }
    }
    Some(names)
}

fn refused(line: &str, lower: &str) -> Option<Names> {
    let said = any(
        lower,
        &["connection refused", "econnrefused", "actively refused"],
    ) || (lower.contains("connection to ") && lower.contains(" refused"));
    if !said {
        return None;
    }
    let mut names = Vec::new();
    if let Some((host, port)) = refused_address(line, lower) {
        names.push(("address", format!("{host}:{port}")));
        names.push(("on_port", format!(" on port {port}")));
        names.push(("port", port.clone()));
        if host.starts_with("[REDACTED") {
            // Redaction took the address (an IP): only the port is left to name.
            return Some(names);
        }
        if let Some((svc, ns)) = service_of(&host) {
            names.push(("service", svc));
            if let Some(ns) = ns {
                names.push(("service_ns", ns));
            }
        }
        names.push(("host", host));
    }
    Some(names)
}

fn permission(line: &str, lower: &str) -> Option<Names> {
    if !any(
        lower,
        &[
            "permission denied",
            "eacces",
            "operation not permitted",
            "read-only file system",
            "accessdeniedexception",
        ],
    ) {
        return None;
    }
    let path = words(line)
        .map(|w| w.trim_end_matches(':'))
        .find(|w| w.starts_with('/') && w.len() > 1 && safe(w).is_some());
    Some(path.into_iter().map(|p| ("path", p.to_string())).collect())
}

/// `java.lang.IllegalStateException: …`, `Caused by: org.x.YException: …`
/// at the start of a line (`t` lowercase): a Java exception a framework
/// logged before exiting.
fn java_exception(t: &str) -> bool {
    let t = t.strip_prefix("caused by: ").unwrap_or(t);
    let name = t.split(':').next().unwrap_or("");
    let qualified = name.contains('.') && !name.contains(char::is_whitespace);
    qualified
        && ["java.", "javax.", "org.", "com.", "io.", "net."]
            .iter()
            .any(|p| t.starts_with(p))
        && (name.ends_with("exception") || name.ends_with("error"))
}

/// A Node.js stack frame (`    at main (/app/index.js:3:9)`): the error is
/// the line above it (see `quoted_line`).
fn node_frame(line: &str) -> bool {
    let t = line.trim_start();
    line.len() > t.len()
        && t.starts_with("at ")
        && [".js:", ".mjs:", ".cjs:", ".ts:", "node:internal"]
            .iter()
            .any(|p| t.contains(p))
}

fn panic(line: &str, lower: &str) -> Option<Names> {
    let t = lower.trim_start();
    let node = [
        "uncaught exception",
        "unhandledpromiserejection",
        "unhandled 'error' event",
        "uncaughtexception",
        "unhandled promise rejection",
    ];
    let runtime =
        if t.starts_with("panic:") || t.starts_with("goroutine ") && t.contains("[running]") {
            "Go"
        } else if lower.contains("thread '") && lower.contains("panicked at") {
            "Rust"
        } else if lower.contains("exception in thread") || java_exception(t) {
            "Java"
        } else if t.starts_with("traceback (most recent call last)") {
            "Python"
        } else if node_frame(line) || any(lower, &node) {
            "Node.js"
        } else if t.starts_with("fatal error:") || lower.contains("unhandled exception") {
            // Go's runtime (`fatal error: concurrent map writes`), .NET.
            if line.contains("System.") {
                ".NET"
            } else {
                "the runtime"
            }
        } else {
            return None;
        };
    Some(vec![("runtime", runtime.to_string())])
}

// -------------------------------------------------------------- the table

const PREVIOUS: &str = "kubectl logs {{pod}} -n {{ns}} -c {{container}}{{logs_flags}} --tail=100";
const RESOURCES: &str = "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.resources}'";

pub static LOG_RULES: &[LogRule] = &[
    LogRule {
        id: "log-runtime-out-of-memory",
        cause: Cause::RuntimeOutOfMemory,
        confidence: 0.9,
        matches: runtime_oom,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) runs out of memory inside its {{runtime}} runtime (a heap limit, not the container's memory limit).",
        fix: "Give the runtime's heap room within the container's limit (memory limit {{mem_limit}}): JVM -XX:MaxRAMPercentage=75 (or -Xmx), Node --max-old-space-size=<MiB, about 75% of the limit>; raise the limit too if the heap really needs more, and look for a leak if it keeps growing.",
        commands: &[
            RESOURCES,
            "kubectl top pod {{pod}} -n {{ns}} --containers",
            "kubectl set env {{ref}} -n {{ns}} -c {{container}} --list",
            PREVIOUS,
        ],
    },
    LogRule {
        id: "log-port-in-use",
        cause: Cause::PortInUse,
        confidence: 0.9,
        matches: port_in_use,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot listen on port {{port}}: another process already uses it (another container of the pod, a second process in this one, or hostNetwork/hostPort on the node).",
        fix: "Give each container of the pod its own port (check the sidecars), and avoid hostNetwork/hostPort unless needed: two replicas on one node then collide.",
        commands: &[
            "kubectl get pod {{pod}} -n {{ns}} -o jsonpath='{range .spec.containers[*]}{.name}{\" \"}{.ports}{\"\\n\"}{end}'",
            "kubectl get pod {{pod}} -n {{ns}} -o jsonpath='{.spec.hostNetwork}'",
            PREVIOUS,
        ],
    },
    LogRule {
        id: "log-missing-env-var",
        cause: Cause::MissingEnvVar,
        confidence: 0.88,
        matches: missing_env,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) stops because environment variable {{variable}} is not set.",
        fix: "Set {{variable}} in the container's env (a value, or valueFrom a ConfigMap or Secret key), and check the envFrom sources exist.",
        commands: &[
            "kubectl set env {{ref}} -n {{ns}} -c {{container}} --list",
            "kubectl set env {{ref}} -n {{ns}} -c {{container}} {{variable}}=<value>",
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.envFrom}'",
        ],
    },
    LogRule {
        id: "log-missing-file",
        cause: Cause::MissingConfigFile,
        confidence: 0.8,
        matches: missing_file,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) stops because {{path}} does not exist: a config file that is not mounted, or mounted elsewhere.",
        fix: "Mount the ConfigMap or Secret that holds it at {{dir}} (check the volumeMounts' mountPath and subPath, and the key names), or point the app at where it is.",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.volumeMounts}'",
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{tpl_jp}}.volumes}'",
            "kubectl get configmaps -n {{ns}}",
        ],
    },
    LogRule {
        id: "log-dns-failure",
        cause: Cause::DnsResolutionFailed,
        confidence: 0.9,
        matches: dns,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot resolve {{host}}: the name does not exist (a Service missing or in another namespace, a typo) or cluster DNS does not answer.",
        fix: "Check that {{host}} is spelled as the Service is named, in the right namespace (from another namespace: <service>.<namespace>), and that CoreDNS is healthy.",
        commands: &[
            "kubectl run dns-check-{{workload}} -n {{ns}} --rm -i --restart=Never --image=busybox:1.36 -- nslookup {{host}}",
            "kubectl get svc -n {{service_ns}}",
            "kubectl get pods -n kube-system -l k8s-app=kube-dns",
        ],
    },
    LogRule {
        id: "log-connection-refused",
        cause: Cause::ConnectionRefused,
        confidence: 0.88,
        matches: refused,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) cannot connect to {{address}}: nothing accepts connections there (the dependency is down, not ready, or listens on another port).",
        fix: "Check that the dependency runs and that its Service has ready endpoints{{on_port}}; make the app retry at start-up instead of exiting.",
        commands: &[
            // Lists, not gets: the Service may be the thing missing.
            "kubectl get endpointslices -n {{service_ns}} -l kubernetes.io/service-name={{service}}",
            "kubectl get svc,pods -n {{ns}} -o wide",
            "kubectl run conn-check-{{workload}} -n {{ns}} --rm -i --restart=Never --image=busybox:1.36 -- nc -zv -w 3 {{host}} {{port}}",
        ],
    },
    LogRule {
        id: "log-migration-failed",
        cause: Cause::MigrationFailed,
        confidence: 0.8,
        matches: migration,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) stops because a database migration fails: {{message}}",
        fix: "Fix the migration or the schema it trips on (a dirty version left by an interrupted run must be repaired by hand); rolling the app back does not undo a migration that already ran.",
        commands: &[
            PREVIOUS,
            "kubectl get jobs -n {{ns}}",
            "kubectl rollout history {{ref}} -n {{ns}}",
        ],
    },
    LogRule {
        id: "log-permission-denied",
        cause: Cause::PermissionDenied,
        confidence: 0.82,
        matches: permission,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) is denied access to {{path}}: the user it runs as may not read or write it.",
        fix: "Match the user to the files: set securityContext runAsUser/fsGroup to the volume's owner, or make the path writable in the image (with readOnlyRootFilesystem, mount an emptyDir there).",
        commands: &[
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{tpl_jp}}.securityContext}{\" \"}{{{container_jp}}.securityContext}'",
            "kubectl get {{ref}} -n {{ns}} -o jsonpath='{{{container_jp}}.volumeMounts}'",
            PREVIOUS,
        ],
    },
    LogRule {
        id: "log-panic",
        cause: Cause::AppPanic,
        confidence: 0.8,
        matches: panic,
        summary: "Container {{container}} of {{ref}} (namespace {{ns}}) crashes with an unhandled {{runtime}} error: {{message}}",
        fix: "The quoted error and the stack trace under it name the failing code; fix it, or, if the last rollout brought it, roll back to the revision before (kubectl rollout undo {{ref}} -n {{ns}}, once the history shows one).",
        // No `rollout undo` command: with a single revision it fails.
        commands: &[PREVIOUS, "kubectl rollout history {{ref}} -n {{ns}}"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::classify::{NothingKnown, Thresholds, classify};
    use crate::detect::workload::workload_of;
    use crate::kube::types::Pod;
    use crate::model::PodRecord;
    use crate::util::time::parse_rfc3339;

    /// Deployment shop/api, container api, restarted, exit 2.
    const DEPLOY: &str = include_str!("../../tests/fixtures/pods/crashloop-error.json");
    /// Job shop/db-migrate-v41, container migrate.
    const JOB: &str = include_str!("../../tests/fixtures/pods/job-failed-error.json");

    /// The log diagnosis of the pod's first finding with these log lines (the
    /// hand-over from the table is tested in `rules`).
    fn diagnosis(json: &str, logs: &[&str]) -> Diagnosis {
        let pod = PodRecord::from(serde_json::from_str::<Pod>(json).unwrap());
        let now = parse_rfc3339("2024-05-14T10:00:00Z").unwrap();
        let finding = classify(&pod, &NothingKnown, now, &Thresholds::default())
            .into_iter()
            .next()
            .expect("a finding");
        let workload = workload_of(&pod);
        let logs: Vec<String> = logs.iter().map(|s| s.to_string()).collect();
        let ctx = Context {
            finding: &finding,
            pod: &pod,
            workload: &workload,
            events: &[],
            logs: &logs,
            rollout: &crate::model::Rollout::default(),
        };
        diagnose(&ctx, pod.containers.first()).expect("a log cause")
    }

    fn cause_of(line: &str) -> Option<(&'static str, Names)> {
        find(&[line.to_string()]).map(|(r, _, n)| (r.cause.as_str(), n))
    }

    fn name(n: &Names, key: &str) -> Option<String> {
        n.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_refused_connection_names_host_and_port() {
        for (line, address) in [
            (
                "dial tcp 10.96.0.5:5432: connect: connection refused",
                "10.96.0.5:5432",
            ),
            (
                "panic: dial tcp 10.0.0.1:45678->10.96.0.5:5432: connect: connection refused",
                "10.96.0.5:5432",
            ),
            ("Error: connect ECONNREFUSED 10.0.0.7:6379", "10.0.0.7:6379"),
            (
                "psycopg2.OperationalError: connection to server at \"postgres.shop.svc.cluster.local\" (10.96.3.4), port 5432 failed: Connection refused",
                "",
            ),
            (
                "org.postgresql.util.PSQLException: Connection to db:5432 refused.",
                "db:5432",
            ),
            (
                "redis: connect to redis-master.cache:6379 failed: Connection refused",
                "redis-master.cache:6379",
            ),
        ] {
            let (cause, n) = cause_of(line).expect(line);
            assert_eq!(cause, "connection_refused", "{line}");
            assert_eq!(name(&n, "address").unwrap_or_default(), address, "{line}");
        }
        let (_, n) =
            cause_of("redis: connect to redis-master.cache:6379 failed: Connection refused")
                .unwrap();
        assert_eq!(name(&n, "service").as_deref(), Some("redis-master"));
        assert_eq!(name(&n, "service_ns").as_deref(), Some("cache"));
    }

    #[test]
    fn a_dns_failure_names_the_host() {
        for (line, host) in [
            (
                "dial tcp: lookup postgres.shop.svc on 10.96.0.10:53: no such host",
                Some("postgres.shop.svc"),
            ),
            (
                "socket.gaierror: [Errno -2] Name or service not known",
                None,
            ),
            (
                "** server can't find db.shop.svc.cluster.local: NXDOMAIN",
                Some("db.shop.svc.cluster.local"),
            ),
            (
                "Error: getaddrinfo ENOTFOUND redis-master",
                Some("redis-master"),
            ),
            (
                "java.net.UnknownHostException: kafka-0.kafka",
                Some("kafka-0.kafka"),
            ),
            (
                "psql: error: could not translate host name \"pg\" to address: Name or service not known",
                Some("pg"),
            ),
        ] {
            let (cause, n) = cause_of(line).expect(line);
            assert_eq!(cause, "dns_resolution_failed", "{line}");
            assert_eq!(name(&n, "host").as_deref(), host, "{line}");
        }
    }

    #[test]
    fn a_missing_env_var_or_file_is_named() {
        for (line, var) in [
            (
                "panic: environment variable DATABASE_URL is not set",
                "DATABASE_URL",
            ),
            (
                "Error: Missing required environment variable: STRIPE_KEY",
                "STRIPE_KEY",
            ),
            ("ERROR config: REDIS_URL must be set", "REDIS_URL"),
            (
                "envconfig: required key API_TOKEN missing value",
                "API_TOKEN",
            ),
            ("KeyError: 'SECRET_KEY_BASE'", "SECRET_KEY_BASE"),
        ] {
            let (cause, n) = cause_of(line).expect(line);
            assert_eq!(cause, "missing_env_var", "{line}");
            assert_eq!(name(&n, "variable").as_deref(), Some(var), "{line}");
        }
        // Only an environment variable's name: a sentence is not enough.
        assert!(cause_of("the value must be set").is_none());
        for (line, path) in [
            (
                "panic: open /etc/api/config.yaml: no such file or directory",
                "/etc/api/config.yaml",
            ),
            (
                "Error: ENOENT: no such file or directory, open '/app/config/production.json'",
                "/app/config/production.json",
            ),
            (
                "FileNotFoundError: [Errno 2] No such file or directory: '/etc/app/settings.toml'",
                "/etc/app/settings.toml",
            ),
        ] {
            let (cause, n) = cause_of(line).expect(line);
            assert_eq!(cause, "missing_config_file", "{line}");
            assert_eq!(name(&n, "path").as_deref(), Some(path), "{line}");
        }
        assert_eq!(
            name(
                &cause_of("open /etc/api/config.yaml: no such file or directory")
                    .unwrap()
                    .1,
                "dir"
            )
            .as_deref(),
            Some("/etc/api")
        );
    }

    #[test]
    fn panics_and_stack_traces_of_each_runtime() {
        for (line, runtime) in [
            (
                "panic: runtime error: invalid memory address or nil pointer dereference",
                "Go",
            ),
            ("thread 'main' panicked at src/main.rs:12:5:", "Rust"),
            (
                "Exception in thread \"main\" java.lang.IllegalStateException: no profile",
                "Java",
            ),
            ("Traceback (most recent call last):", "Python"),
            (
                "process.on uncaughtException: TypeError: Cannot read properties of undefined",
                "Node.js",
            ),
            ("fatal error: concurrent map writes", "the runtime"),
            (
                "java.lang.IllegalStateException: Failed to load ApplicationContext",
                "Java",
            ),
            (
                "Caused by: org.postgresql.util.PSQLException: FATAL: role \"app\" does not exist",
                "Java",
            ),
            ("    at Object.<anonymous> (/app/index.js:3:9)", "Node.js"),
        ] {
            let (cause, n) = cause_of(line).expect(line);
            assert_eq!(cause, "app_panic", "{line}");
            assert_eq!(name(&n, "runtime").as_deref(), Some(runtime), "{line}");
        }
    }

    #[test]
    fn ports_permissions_migrations_and_runtime_oom() {
        let (c, n) = cause_of("listen tcp :8080: bind: address already in use").unwrap();
        assert_eq!(
            (c, name(&n, "port").as_deref()),
            ("port_in_use", Some("8080"))
        );
        let (c, n) = cause_of("Error: listen EADDRINUSE: address already in use :::3000").unwrap();
        assert_eq!(
            (c, name(&n, "port").as_deref()),
            ("port_in_use", Some("3000"))
        );
        let (c, n) = cause_of("open /data/cache.db: permission denied").unwrap();
        assert_eq!(
            (c, name(&n, "path").as_deref()),
            ("permission_denied", Some("/data/cache.db"))
        );
        for line in [
            "error: migration 20240514_add_orders failed: relation \"orders\" already exists",
            "ERROR: Dirty database version 42. Fix and force version.",
            "org.flywaydb.core.api.FlywayException: Validate failed: Migrations have failed validation",
            "alembic.util.exc.CommandError: Can't locate revision identified by 'abc123'",
        ] {
            assert_eq!(
                cause_of(line).map(|c| c.0),
                Some("migration_failed"),
                "{line}"
            );
        }
        assert!(cause_of("No migrations to apply.").is_none());
        for (line, runtime) in [
            (
                "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space",
                "JVM",
            ),
            (
                "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
                "Node.js",
            ),
            ("fatal error: runtime: out of memory", "Go"),
            ("memory allocation of 1073741824 bytes failed", "Rust"),
        ] {
            let (c, n) = cause_of(line).expect(line);
            assert_eq!(
                (c, name(&n, "runtime").as_deref()),
                ("runtime_out_of_memory", Some(runtime)),
                "{line}"
            );
        }
        assert!(cause_of("INFO server listening on :8080").is_none());
    }

    #[test]
    fn specific_causes_beat_the_panic_they_cause() {
        let logs = [
            "starting api 2.8.0",
            "panic: dial tcp 10.96.0.5:5432: connect: connection refused",
            "",
            "goroutine 1 [running]:",
        ];
        let d = diagnosis(DEPLOY, &logs);
        assert_eq!(d.cause, "connection_refused");
        assert_eq!(d.rule, "log-connection-refused");
        assert!(
            d.summary.contains("cannot connect to 10.96.0.5:5432"),
            "{}",
            d.summary
        );
        // The (redacted) line is quoted as the evidence.
        assert!(
            d.evidence
                .iter()
                .any(|e| e == "log: panic: dial tcp 10.96.0.5:5432: connect: connection refused"),
            "{:?}",
            d.evidence
        );
        assert!(
            d.evidence.iter().any(|e| e.starts_with("exit code 2")),
            "{:?}",
            d.evidence
        );
        assert!(
            d.fix
                .commands
                .iter()
                .any(|c| c.ends_with("-- nc -zv -w 3 10.96.0.5 5432")),
            "{:?}",
            d.fix.commands
        );
    }

    #[test]
    fn diagnoses_name_the_real_objects_and_work_for_the_kind() {
        let d = diagnosis(
            DEPLOY,
            &["panic: environment variable DATABASE_URL is not set"],
        );
        assert_eq!(d.cause, "missing_env_var");
        assert!(d.summary.contains("DATABASE_URL"), "{}", d.summary);
        assert!(
            d.fix.commands.contains(
                &"kubectl set env deployment/api -n shop -c api DATABASE_URL=<value>".to_string()
            ),
            "{:?}",
            d.fix.commands
        );
        // A Job's template cannot be changed: no `kubectl set env` on it, and the text says so.
        let d = diagnosis(
            JOB,
            &["panic: environment variable DATABASE_URL is not set"],
        );
        assert_eq!(d.cause, "missing_env_var");
        assert!(
            !d.fix
                .commands
                .iter()
                .any(|c| c.starts_with("kubectl set env job/")),
            "{:?}",
            d.fix.commands
        );
        assert!(d.fix.text.contains("recreate"), "{}", d.fix.text);

        let d = diagnosis(
            DEPLOY,
            &[
                "Traceback (most recent call last):",
                "  File \"/app/main.py\", line 3, in <module>",
                "ValueError: bad port",
            ],
        );
        assert_eq!(d.cause, "app_panic");
        assert!(d.summary.contains("ValueError: bad port"), "{}", d.summary);
        assert!(
            d.fix
                .commands
                .contains(&"kubectl rollout history deployment/api -n shop".to_string()),
            "{:?}",
            d.fix.commands
        );
        let d = diagnosis(
            DEPLOY,
            &[
                "/app/index.js:3",
                "TypeError: Cannot read properties of undefined (reading 'port')",
                "    at Object.<anonymous> (/app/index.js:3:9)",
                "    at node:internal/main:23:47",
            ],
        );
        assert_eq!(d.cause, "app_panic");
        assert!(
            d.summary
                .contains("unhandled Node.js error: TypeError: Cannot read"),
            "{}",
            d.summary
        );
        let d = diagnosis(JOB, &["panic: boom"]);
        assert!(
            !d.fix
                .commands
                .iter()
                .any(|c| c.starts_with("kubectl rollout")),
            "{:?}",
            d.fix.commands
        );

        // No name parsed: no command with a guessed one, and words in the text.
        let d = diagnosis(
            DEPLOY,
            &["socket.gaierror: [Errno -2] Name or service not known"],
        );
        assert_eq!(d.cause, "dns_resolution_failed");
        assert!(
            !d.fix.commands.iter().any(|c| c.contains('<')),
            "{:?}",
            d.fix.commands
        );
        assert!(
            d.summary.contains("cannot resolve a host name"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn the_status_and_user_rules_stand_over_the_logs() {
        assert!(!replaces("oomkilled-container", Some(3), 10));
        assert!(!replaces("payments-db", None, 10));
        assert!(!replaces("disk-full", Some(10), 10));
        assert!(replaces("crashloop-generic", Some(40), 10));
        assert!(replaces("dns-resolution-error", Some(12), 10));
        // Without logs there is no log cause: the table's diagnosis stands.
        assert!(find(&[]).is_none());
    }

    #[test]
    fn every_log_rule_is_well_formed() {
        let mut ids = std::collections::HashSet::new();
        for r in LOG_RULES {
            // The table's ids never start with `log-`, so these cannot clash.
            assert!(ids.insert(r.id) && r.id.starts_with("log-"), "{}", r.id);
            assert!((0.0..=1.0).contains(&r.confidence));
            assert!(!r.commands.is_empty());
            for t in [r.summary, r.fix].iter().chain(r.commands) {
                for (i, _) in t.match_indices("{{") {
                    let key = &t[i + 2..][..t[i + 2..].find("}}").unwrap()];
                    let key = key.trim_start_matches('{');
                    assert!(
                        KEYS.iter().any(|(k, _)| *k == key)
                            || key == "logs_flags"
                            || super::super::vars::NAMES.contains(&key),
                        "{}: unknown {{{{{key}}}}}",
                        r.id
                    );
                }
            }
        }
    }
}
