/*!
Template variables for diagnosis summaries, fixes and commands: the real
names (namespace, workload, container, image, limits, probe timings) and the
names parsed out of kubelet and scheduler messages (`configmap "x" not found`,
`untolerated taint {k: v}`, `lookup db on …: no such host`).

Kept apart from the rule table so the table stays declarative: a rule names
`{{mem_new}}`, and this module knows how to compute it. Values are computed
on demand, only for the rule that matched.

Anything parsed from free text must pass `safe` before it goes into a shell
command: a message is outside data, and a pasted command must not run more
than it says.
*/

use std::borrow::Cow;

use super::context::{Context, ProbeSlot};
use super::quantity;
use crate::model::{ContainerRecord, ContainerState, Probe, ProbeKind};

/// Longest quoted text (message, event, log line) put into a summary or evidence.
pub const MAX_QUOTE: usize = 300;

/// Cuts `s` to `max` bytes on a char boundary, marking the cut.
pub fn cap(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Fills `{{name}}` placeholders; an unknown or unavailable one becomes `<name>`,
/// a visible placeholder rather than a silently wrong value.
pub fn fill(template: &str, vars: &Vars) -> String {
    fill_with(template, vars, true).unwrap_or_default()
}

/// Like `fill`, but `None` if any variable is unavailable (for optional evidence lines).
pub fn fill_all(template: &str, vars: &Vars) -> Option<String> {
    fill_with(template, vars, false)
}

fn fill_with(template: &str, vars: &Vars, placeholders: bool) -> Option<String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(mut i) = rest.find("{{") {
        // `{{{x}}}`: a literal brace (jsonpath) around a variable.
        while rest[i + 2..].starts_with('{') {
            i += 1;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let key = &after[..j];
        match vars.get(key) {
            Some(v) => out.push_str(&v),
            None if placeholders => {
                out.push('<');
                out.push_str(key);
                out.push('>');
            }
            None => return None,
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// A token fit for a shell command: Kubernetes names, keys, images, host:port.
pub fn safe(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/:@".contains(&b));
    ok.then_some(s)
}

/// Byte offset of `needle` (lowercase) in `hay`, ignoring ASCII case.
fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.to_ascii_lowercase().find(needle)
}

/// The text right after `prefix` up to whitespace or punctuation that ends a
/// name, with a trailing `:`/`.`/`,` trimmed.
fn word_after<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let start = find_ci(text, prefix)? + prefix.len();
    let rest = text.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || "\"'(),;[]{}".contains(c))
        .unwrap_or(rest.len());
    safe(rest[..end].trim_end_matches([':', '.', ',']))
}

/// The double-quoted name after `word` (`configmap "app-config"`,
/// `secrets "db"`, `exec: "/app/server"`), trying every occurrence.
fn quoted_after<'t>(text: &'t str, word: &str) -> Option<&'t str> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|l| l.find(word)) {
        let after = &text[from + i + word.len()..];
        let after = after.trim_start_matches(['s', ':', ' ']);
        if let Some(q) = after.strip_prefix('"') {
            if let Some(end) = q.find('"') {
                if let Some(name) = safe(&q[..end]) {
                    return Some(name);
                }
            }
        }
        from += i + word.len();
    }
    None
}

/// `registry.example.com/shop/web:1.4` → `registry.example.com`; Docker Hub
/// for short names (`nginx`, `library/nginx`).
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The image without its tag or digest.
pub fn repository_of(image: &str) -> &str {
    let image = image.split_once('@').map_or(image, |(r, _)| r);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// The workload as `kubectl` names it: `deployment/web`.
fn kubectl_kind(kind: &str) -> Cow<'static, str> {
    match kind {
        "Deployment" => "deployment".into(),
        "StatefulSet" => "statefulset".into(),
        "DaemonSet" => "daemonset".into(),
        "ReplicaSet" => "replicaset".into(),
        "Job" => "job".into(),
        "CronJob" => "cronjob".into(),
        "Pod" => "pod".into(),
        other => other.to_ascii_lowercase().into(),
    }
}

/// Where the pod spec sits in the workload, as a JSON-patch path.
fn template_path(kind: &str) -> &'static str {
    match kind {
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        "Pod" => "/spec",
        _ => "/spec/template/spec",
    }
}

fn describe_probe(p: &Probe) -> String {
    let target = match (&p.port, &p.path) {
        (Some(port), Some(path)) => format!(" :{port}{path}"),
        (Some(port), None) => format!(" :{port}"),
        _ => String::new(),
    };
    let kind = match p.kind {
        ProbeKind::Http => "HTTP GET",
        ProbeKind::Tcp => "TCP",
        ProbeKind::Grpc => "gRPC",
        ProbeKind::Exec => "exec",
        ProbeKind::Other => "probe",
    };
    format!(
        "{kind}{target}, timeout {}s, every {}s, {} failures allowed",
        p.timeout_seconds, p.period_seconds, p.failure_threshold
    )
}

/// What a rule's templates can name, for one matched diagnosis.
pub struct Vars<'a> {
    pub ctx: &'a Context<'a>,
    /// The container the diagnosis is about (the finding's, else the one the
    /// message names, else the first).
    pub container: Option<&'a ContainerRecord>,
    pub probe: Option<ProbeSlot>,
    /// Free text to parse names from, the line that matched first.
    pub texts: Vec<&'a str>,
}

impl<'a> Vars<'a> {
    fn first<T>(&self, f: impl Fn(&'a str) -> Option<T>) -> Option<T> {
        self.texts.iter().find_map(|t| f(t))
    }

    fn containers(&self) -> impl Iterator<Item = &'a ContainerRecord> {
        self.ctx.pod.containers.iter()
    }

    /// The main container with the largest request of a resource (what keeps the pod from fitting).
    fn biggest_request(
        &self,
        req: impl Fn(&ContainerRecord) -> Option<u128>,
    ) -> Option<&'a ContainerRecord> {
        self.containers()
            .filter_map(|c| req(c).map(|r| (r, c)))
            .max_by_key(|(r, _)| *r)
            .map(|(_, c)| c)
    }

    fn cpu_container(&self) -> Option<&'a ContainerRecord> {
        self.biggest_request(|c| c.cpu_request.as_deref().and_then(quantity::millicores))
    }

    fn mem_container(&self) -> Option<&'a ContainerRecord> {
        self.biggest_request(|c| c.memory_request.as_deref().and_then(quantity::bytes))
    }

    fn probe_record(&self) -> Option<&'a Probe> {
        let c = self.container?;
        match self.probe? {
            ProbeSlot::Liveness => c.liveness.as_deref(),
            ProbeSlot::Readiness => c.readiness.as_deref(),
            ProbeSlot::Startup => c.startup.as_deref(),
        }
    }

    fn kind(&self) -> &str {
        &self.ctx.workload.kind
    }

    fn lowercase_hint(&self) -> bool {
        self.texts
            .iter()
            .any(|t| t.to_ascii_lowercase().contains("must be lowercase"))
    }

    /// Seconds from pod creation to the end of its run, if both are known.
    fn ran_secs(&self) -> Option<i64> {
        let created = self.ctx.pod.created?;
        let finished = self
            .ctx
            .finding
            .since
            .or_else(|| match &self.container?.state {
                ContainerState::Terminated(t) => t.finished,
                _ => None,
            })?;
        (finished > created).then_some(finished - created)
    }
}

/// One definition per template variable: `NAMES` (what user rules are
/// checked against) and `Vars::get` come from this single list.
macro_rules! variables {
    ($v:ident, $f:ident, $c:ident, $own:ident, $b:ident; $($name:literal => $value:expr,)*) => {
        /// Every `{{name}}` a template may use (user rules are checked against it).
        pub const NAMES: &[&str] = &[$($name),*];

        impl<'a> Vars<'a> {
            /// The value of `{{key}}`, or `None` when unknown or not available here.
            pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
                let $v = self;
                let $f = $v.ctx.finding;
                let $c = $v.container;
                let $own = |s: String| Some(Cow::Owned(s));
                let $b = |s: &'a str| Some(Cow::Borrowed(s));
                match key {
                    $($name => $value,)*
                    _ => None,
                }
            }
        }
    };
}

variables! { v, f, c, own, b;
            "ns" => b(&v.ctx.pod.namespace)
                .filter(|s| !s.is_empty())
                .or(b(&f.namespace)),
            "pod" => b(&f.pod),
            "node" => f
                .node
                .as_deref()
                .or(v.ctx.pod.node.as_deref())
                .and_then(b),
            "container" => c.map(|c| Cow::Borrowed(&*c.name)),
            "image" => f
                .image
                .as_deref()
                .or(c.map(|c| &*c.image))
                .filter(|s| !s.is_empty())
                .and_then(b),
            "registry" => v.get("image").map(|i| registry_of(&i).to_owned().into()),
            "image_repo" => v
                .get("image")
                .map(|i| repository_of(&i).to_owned().into()),
            "image_fixed" => {
                let image = v.get("image")?;
                if v.lowercase_hint() {
                    let repo = repository_of(&image);
                    own(format!(
                        "{}{}",
                        repo.to_ascii_lowercase(),
                        &image[repo.len()..]
                    ))
                } else {
                    Some("<corrected-image-reference>".into())
                }
            },
            "kind" => b(f.kind.as_str()),
            "reason" => b(&f.reason).filter(|s| !s.is_empty()),
            "exit_code" => f.exit_code.map(|e| e.to_string().into()),
            // One line for a summary: the first non-empty line of what matched.
            "message" => v
                .texts
                .first()
                .copied()
                .or(Some(f.message.as_str()))
                .and_then(|m| m.lines().map(str::trim).find(|l| !l.is_empty()))
                .map(|l| cap(l, 200).into()),
            "workload" => b(&v.ctx.workload.name),
            "ref" => own(format!(
                "{}/{}",
                kubectl_kind(v.kind()),
                v.ctx.workload.name
            )),
            "tpl" => b(template_path(v.kind())),
            "tpl_jp" => own(template_path(v.kind()).replace('/', ".")),
            "cpath" => {
                let list = if f.init_container {
                    "initContainers"
                } else {
                    "containers"
                };
                let index = c?.index?;
                own(format!("{}/{list}/{index}", template_path(v.kind())))
            },
            "container_jp" => {
                let list = if f.init_container {
                    "initContainers"
                } else {
                    "containers"
                };
                let index = c?.index?;
                own(format!(
                    "{}.{list}[{index}]",
                    template_path(v.kind()).replace('/', ".")
                ))
            },

            // Memory limits (OOM).
            "mem_limit" => c?.memory_limit.as_deref().and_then(b),
            "mem_request" => c?.memory_request.as_deref().and_then(b),
            "mem_new" => {
                let c = c?;
                match (&c.memory_limit, &c.memory_request) {
                    (Some(l), _) => quantity::double_memory(l).map(Cow::Owned),
                    (None, Some(r)) => quantity::double_memory(r).map(Cow::Owned),
                    (None, None) => Some("512Mi".into()),
                }
            },
            "mem_fix" => {
                let c = c?;
                let new = v.get("mem_new")?;
                own(match (&c.memory_limit, &c.memory_request) {
                    (Some(l), _) => {
                        format!(
                            "Raise the memory limit of {} from {l} to {new} (double).",
                            c.name
                        )
                    }
                    (None, Some(r)) => format!(
                        "{} has no memory limit, so the node's OOM killer picked it: set one, \
                         {new} (twice its {r} request) as a start.",
                        c.name
                    ),
                    (None, None) => format!(
                        "{} has no memory request or limit: set one, {new} as a start, and \
                         adjust to what `kubectl top` shows.",
                        c.name
                    ),
                })
            },
            "mem_limit_phrase" => own(match c?.memory_limit.as_deref() {
                Some(l) => format!("its {l} memory limit"),
                None => "node memory (no memory limit is set)".to_owned(),
            }),

            // Requests (unschedulable).
            "cpu_container" => v.cpu_container().map(|c| Cow::Borrowed(&*c.name)),
            "cpu_request" => v.cpu_container()?.cpu_request.as_deref().and_then(b),
            "cpu_new" => {
                quantity::halve_cpu(v.cpu_container()?.cpu_request.as_deref()?).map(Cow::Owned)
            },
            "memreq_container" => v.mem_container().map(|c| Cow::Borrowed(&*c.name)),
            "memreq_request" => v.mem_container()?.memory_request.as_deref().and_then(b),
            "memreq_new" => {
                quantity::scale_memory(v.mem_container()?.memory_request.as_deref()?, 1, 2)
                    .map(Cow::Owned)
            },

            // Eviction for memory: the usage the kubelet reported.
            "mem_usage" => v
                .first(|t| word_after(t, "was using "))
                .and_then(|u| quantity::scale_memory(u, 1, 1))
                .map(Cow::Owned),
            "evict_mem_args" => {
                let usage = v.get("mem_usage")?;
                let c = c?;
                // A request above the limit is rejected: raise the limit with it.
                let over = match (
                    quantity::bytes(&usage),
                    c.memory_limit.as_deref().and_then(quantity::bytes),
                ) {
                    (Some(u), Some(l)) => u > l,
                    _ => false,
                };
                own(if over {
                    format!("--requests=memory={usage} --limits=memory={usage}")
                } else {
                    format!("--requests=memory={usage}")
                })
            },

            // Probes.
            "probe" => v.probe.map(|p| Cow::Borrowed(p.name())),
            "probe_field" => v.probe.map(|p| Cow::Borrowed(p.field())),
            "probe_desc" => v.probe_record().map(|p| describe_probe(p).into()),
            "probe_timeout" => own(v.probe_record()?.timeout_seconds.to_string()),
            "probe_timeout_new" => own(v
                .probe_record()
                .map_or(5, |p| p.timeout_seconds.saturating_mul(2).max(2))
                .to_string()),
            "probe_threshold" => own(v.probe_record()?.failure_threshold.to_string()),
            "probe_threshold_new" => own(v
                .probe_record()
                .map_or(6, |p| p.failure_threshold.saturating_mul(2).max(2))
                .to_string()),
            "probe_budget" => {
                let p = v.probe_record()?;
                own((p.failure_threshold.saturating_mul(p.period_seconds)).to_string())
            },

            // Image pull credentials.
            "pull_secret" => own(v
                .ctx
                .pod
                .image_pull_secrets
                .first()
                .map_or_else(|| "regcred".to_owned(), |s| s.to_string())),
            "pull_note" => own(if v.ctx.pod.image_pull_secrets.is_empty() {
                "The pod has no imagePullSecrets.".to_owned()
            } else {
                format!(
                    "The pod uses imagePullSecrets {}: they are missing from the namespace or \
                     hold no valid credentials for this registry, so recreate them.",
                    v.ctx.pod.image_pull_secrets.join(", ")
                )
            }),
            "service_account" => own(v
                .ctx
                .pod
                .service_account
                .as_deref()
                .unwrap_or("default")
                .to_owned()),

            // Names parsed from messages.
            "configmap" => v.first(|t| quoted_after(t, "configmap")).and_then(b),
            "secret" => v.first(|t| quoted_after(t, "secret")).and_then(b),
            "pvc" => v
                .first(|t| quoted_after(t, "persistentvolumeclaim"))
                .and_then(b),
            "exec" => v.first(|t| quoted_after(t, "exec")).and_then(b),
            "config_key" => v
                .first(|t| word_after(t, "couldn't find key "))
                .and_then(b),
            "config_kind" => v.first(config_ref).map(|(k, _)| Cow::Borrowed(k)),
            // stringData takes plain text for a Secret (data wants base64).
            "config_data" => v
                .first(config_ref)
                .map(|(k, _)| Cow::Borrowed(if k == "secret" { "stringData" } else { "data" })),
            "config_name" => v.first(config_ref).and_then(|(_, n)| b(n)),
            "taint" => v.first(taint).map(|(k, v)| own_taint(k, v)),
            "taint_key" => v.first(taint).and_then(|(k, _)| b(k)),
            "host" => v.first(host).and_then(b),
            "target" => v.first(target).and_then(b),
            "tls_host" => v
                .first(|t| word_after(t, "https://"))
                .and_then(|h| h.split(['/', ':']).next())
                .and_then(safe)
                .map(Cow::Borrowed),

            // Deadlines.
            "deadline_path" => b(match v.kind() {
                "CronJob" => "/spec/jobTemplate/spec/activeDeadlineSeconds",
                _ => "/spec/activeDeadlineSeconds",
            }),
            "deadline_jsonpath" => b(match v.kind() {
                "CronJob" => "{.spec.jobTemplate.spec.activeDeadlineSeconds}",
                _ => "{.spec.activeDeadlineSeconds}",
            }),
            "ran_for" => v.ran_secs().map(|s| {
                if s >= 120 {
                    format!("{}m", s / 60).into()
                } else {
                    format!("{s}s").into()
                }
            }),
            "deadline_new" => {
                // Twice the observed run time, in whole minutes: room without a guess.
                let s = v.ran_secs()?.saturating_mul(2);
                own(((s + 59) / 60 * 60).to_string())
            },
}

fn own_taint<'a>(key: &str, value: &str) -> Cow<'a, str> {
    if value.is_empty() {
        key.to_owned().into()
    } else {
        format!("{key}={value}").into()
    }
}

/// `couldn't find key K in ConfigMap ns/name` → (`configmap`, `name`).
fn config_ref(t: &str) -> Option<(&'static str, &str)> {
    let i = find_ci(t, "couldn't find key ")?;
    let rest = &t[i..];
    let j = find_ci(rest, " in ")?;
    let rest = &rest[j + 4..];
    let (kind, obj) = rest.trim_start().split_once(' ')?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "configmap" => "configmap",
        "secret" => "secret",
        _ => return None,
    };
    let obj = obj.split_whitespace().next()?;
    let name = obj.rsplit_once('/').map_or(obj, |(_, n)| n);
    safe(name.trim_end_matches(['.', ','])).map(|n| (kind, n))
}

/// `had untolerated taint {node-role.kubernetes.io/control-plane: }` → (key, value).
fn taint(t: &str) -> Option<(&str, &str)> {
    let i = find_ci(t, "taint")?;
    let rest = &t[i..];
    let open = rest.find('{')?;
    let close = open + rest[open..].find('}')?;
    let inner = &rest[open + 1..close];
    let (k, v) = inner.split_once(':').unwrap_or((inner, ""));
    let v = v.trim();
    Some((safe(k.trim())?, if v.is_empty() { "" } else { safe(v)? }))
}

/// The name a failed DNS lookup was for.
fn host(t: &str) -> Option<&str> {
    [
        "lookup ",
        "could not resolve host: ",
        "getaddrinfo enotfound ",
        "unknownhostexception: ",
        "failed to resolve '",
    ]
    .iter()
    .find_map(|p| word_after(t, p))
}

/// The address a refused connection was to.
fn target(t: &str) -> Option<&str> {
    ["dial tcp ", "econnrefused ", "connect to "]
        .iter()
        .find_map(|p| word_after(t, p))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_lists_exactly_the_keys_get_knows() {
        // Read the match arms of `get` from this very file, so adding a
        // variable without listing it (or the reverse) fails here.
        let src = include_str!("vars.rs");
        let body = &src[src.find("pub fn get(&self, key: &str)").unwrap()..];
        let body = &body[..body.find("\n    }\n").unwrap()];
        let mut arms: Vec<&str> = Vec::new();
        for line in body.lines() {
            // Arms of the outer match only (nested matches are indented deeper).
            let Some(l) = line.strip_prefix("            ") else {
                continue;
            };
            if !l.starts_with('"') || !l.contains("=>") {
                continue;
            }
            let head = &l[..l.find("=>").unwrap()];
            for part in head.split('|') {
                let k = part.trim().trim_matches('"');
                if !k.is_empty() && !arms.contains(&k) {
                    arms.push(k);
                }
            }
        }
        assert_eq!(arms, NAMES);
    }

    use super::*;

    #[test]
    fn names_are_parsed_from_kubelet_and_scheduler_messages() {
        assert_eq!(
            quoted_after("configmap \"app-config\" not found", "configmap"),
            Some("app-config")
        );
        assert_eq!(
            quoted_after(
                "MountVolume.SetUp failed for volume \"creds\" : secrets \"db-creds\" not found",
                "secret"
            ),
            Some("db-creds")
        );
        assert_eq!(
            quoted_after(
                "exec: \"/app/server\": stat /app/server: no such file",
                "exec"
            ),
            Some("/app/server")
        );
        assert_eq!(
            config_ref("couldn't find key DB_URL in ConfigMap shop/app-config"),
            Some(("configmap", "app-config"))
        );
        assert_eq!(
            taint(
                "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu."
            ),
            Some(("node-role.kubernetes.io/control-plane", ""))
        );
        assert_eq!(
            taint("had untolerated taint {dedicated: gpu}"),
            Some(("dedicated", "gpu"))
        );
        assert_eq!(
            host("dial tcp: lookup postgres.shop.svc.cluster.local on 10.96.0.10:53: no such host"),
            Some("postgres.shop.svc.cluster.local")
        );
        assert_eq!(
            target("dial tcp 10.0.3.7:5432: connect: connection refused"),
            Some("10.0.3.7:5432")
        );
        // Shell metacharacters never make it into a command.
        assert_eq!(
            quoted_after("configmap \"a;rm -rf /\" not found", "configmap"),
            None
        );
    }

    #[test]
    fn images_split_into_registry_and_repository() {
        let r = |i| (registry_of(i), repository_of(i));
        assert_eq!(
            r("registry.example.com/shop/web:1.4.4"),
            ("registry.example.com", "registry.example.com/shop/web")
        );
        assert_eq!(r("nginx"), ("docker.io", "nginx"));
        assert_eq!(r("library/nginx:1.25"), ("docker.io", "library/nginx"));
        assert_eq!(
            r("localhost:5000/app@sha256:abc"),
            ("localhost:5000", "localhost:5000/app")
        );
    }

    #[test]
    fn long_quotes_are_capped_on_a_char_boundary() {
        let s = "é".repeat(400);
        let c = cap(&s, MAX_QUOTE);
        assert!(c.len() <= MAX_QUOTE + 3 && c.ends_with('…'));
    }
}
