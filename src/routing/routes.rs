/*!
`ROUTES_FILE`: which sinks receive an incident. Routes are tried in order;
the first that matches decides, unless it says `continue: true`, in which
case the routes after it are tried too and every match adds its sinks. When
none matches, the `default` sinks receive it (every configured sink when
there is no `default`).

```yaml
routes:
  - name: shop                      # optional, for messages
    match: {namespace: shop}        # see `matcher`
    sinks: [webhook]
  - name: payments-critical
    match: {namespace: "pay-*", min_severity: critical}
    sinks:
      - {sink: slack-bot, channel: "#pay-oncall"}
      - {sink: slack, webhook_file: /etc/opsctrl/routes/pay-webhook}
    continue: true
default: [slack]
```

A sink is named as its `Sink::name()` says (`slack`, `slack-bot`, `webhook`,
`k8s-events`, …) and must be configured; what it may be told besides (a
channel, a webhook) is its `SinkInfo`. A webhook is a credential, so it is
read from a file and never shown. A bare list is read as the routes.
*/

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::file;
use super::matcher::{Facts, Matcher};
use crate::secret::Secret;

/// What a route may tell a sink besides "send it".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverrideKind {
    /// `channel`: a Slack channel name or id, a Telegram chat.
    Channel,
    /// `webhook_file`: a file holding another webhook URL for this sink.
    WebhookFile,
}

impl OverrideKind {
    fn field(self) -> &'static str {
        match self {
            OverrideKind::Channel => "channel",
            OverrideKind::WebhookFile => "webhook_file",
        }
    }
}

/// A configured sink that routes may name.
#[derive(Clone, Debug)]
pub struct SinkInfo {
    pub name: &'static str,
    pub accepts: &'static [OverrideKind],
    /// What its `channel` must look like; `None`: any non-empty name.
    pub channel: Option<ChannelRule>,
}

/// A sink's own rule for a route's `channel`, checked at start-up as its
/// setting is.
#[derive(Clone, Copy, Debug)]
pub struct ChannelRule {
    pub valid: fn(&str) -> bool,
    /// What is allowed, for the problem: `a chat id (-1001234567890) or …`.
    pub allowed: &'static str,
}

/// Where, within a sink, a route sends it.
#[derive(Clone, Debug, PartialEq)]
pub enum Override {
    Channel(String),
    /// `url` read from `file`; only the file is ever shown.
    Webhook {
        file: PathBuf,
        url: Secret,
    },
}

/// One sink (and, maybe, where within it).
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub sink: String,
    pub over: Option<Override>,
}

impl Target {
    pub fn plain(sink: &str) -> Target {
        Target {
            sink: sink.to_string(),
            over: None,
        }
    }

    /// `slack-bot channel #shop`, `slack webhook from /path`: for people.
    pub fn describe(&self) -> String {
        match &self.over {
            None => self.sink.clone(),
            Some(Override::Channel(c)) => format!("{} channel {c}", self.sink),
            Some(Override::Webhook { file, .. }) => {
                format!("{} webhook from {}", self.sink, file.display())
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct Route {
    pub name: Option<String>,
    matcher: Matcher,
    targets: Vec<Target>,
    cont: bool,
}

#[derive(Clone, Debug)]
pub struct Routes {
    routes: Vec<Route>,
    /// `None`: every configured sink.
    default: Option<Vec<Target>>,
}

/// What the routes decide for one incident.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Indexes of the routes that matched, in order.
    pub matched: Vec<usize>,
    /// No route matched: these are the default route's.
    pub by_default: bool,
    /// `None`: every configured sink (no route matched and there is no `default`).
    pub targets: Option<Vec<Target>>,
}

impl Plan {
    /// Whether `sink` gets it, and with which overrides (several routes
    /// may name one sink with different channels).
    pub fn for_sink(&self, sink: &str) -> Vec<Option<&Override>> {
        match &self.targets {
            None => vec![None],
            Some(t) => t
                .iter()
                .filter(|t| t.sink == sink)
                .map(|t| t.over.as_ref())
                .collect(),
        }
    }
}

const FIELDS: &str = "name, match, sinks, continue";

fn push_unique(out: &mut Vec<Target>, t: &Target) {
    if !out.contains(t) {
        out.push(t.clone());
    }
}

impl Routes {
    /// Reads and checks the file; every problem names the route and field.
    pub fn load(path: &Path, sinks: &[SinkInfo]) -> Result<Routes, Vec<String>> {
        let v = file::read(path).map_err(|e| vec![format!("ROUTES_FILE {e}")])?;
        // A webhook URL is a line: 64 KiB is far more than any needs.
        Routes::parse(&v, sinks, &|p| {
            file::read_text(p, 64 * 1024).map_err(|e| format!("{}: {e}", p.display()))
        })
        .map_err(|ps| {
            ps.into_iter()
                .map(|p| format!("ROUTES_FILE {}: {p}", path.display()))
                .collect()
        })
    }

    /// `read` reads a `webhook_file` (a parameter, for tests).
    pub fn parse(
        v: &Value,
        sinks: &[SinkInfo],
        read: &dyn Fn(&Path) -> Result<String, String>,
    ) -> Result<Routes, Vec<String>> {
        let mut problems = Vec::new();
        let (list, default) = match v {
            Value::Array(a) => (a.as_slice(), None),
            Value::Object(o) => {
                for k in o.keys().filter(|k| *k != "routes" && *k != "default") {
                    problems.push(format!("{k}: unknown field (allowed: routes, default)"));
                }
                let list = match o.get("routes") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(a)) => a.as_slice(),
                    Some(_) => {
                        problems.push("routes: must be a list of routes".into());
                        &[][..]
                    }
                };
                (list, o.get("default"))
            }
            _ => {
                return Err(vec![
                    "must be a mapping with routes (and default), or a list of routes".into(),
                ]);
            }
        };
        let mut routes = Vec::new();
        for (i, r) in list.iter().enumerate() {
            let name = r.get("name").and_then(Value::as_str).map(String::from);
            let at = match &name {
                Some(n) => format!("route {} ({n:?})", i + 1),
                None => format!("route {}", i + 1),
            };
            let Value::Object(o) = r else {
                problems.push(format!("{at}: must be a mapping of {FIELDS}"));
                continue;
            };
            for k in o.keys().filter(|k| !FIELDS.split(", ").any(|f| f == *k)) {
                problems.push(format!("{at}: {k}: unknown field (allowed: {FIELDS})"));
            }
            if o.get("name").is_some_and(|n| !n.is_string()) {
                problems.push(format!("{at}: name: must be a string"));
            }
            let matcher = Matcher::parse(
                o.get("match").unwrap_or(&Value::Null),
                &format!("{at}: match"),
                &mut problems,
            );
            let targets = match o.get("sinks") {
                Some(s) => targets(s, &format!("{at}: sinks"), sinks, read, &mut problems),
                None => {
                    problems.push(format!(
                        "{at}: sinks: missing (a list of sink names, [] to send nowhere)"
                    ));
                    Vec::new()
                }
            };
            let cont = match o.get("continue") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    problems.push(format!("{at}: continue: must be true or false"));
                    false
                }
            };
            routes.push(Route {
                name,
                matcher,
                targets,
                cont,
            });
        }
        let default = match default {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => {
                for k in o.keys().filter(|k| *k != "sinks") {
                    problems.push(format!("default: {k}: unknown field (allowed: sinks)"));
                }
                o.get("sinks")
                    .map(|s| targets(s, "default: sinks", sinks, read, &mut problems))
            }
            Some(s) => Some(targets(s, "default", sinks, read, &mut problems)),
        };
        if problems.is_empty() {
            Ok(Routes { routes, default })
        } else {
            Err(problems)
        }
    }

    /// `route 2 ("shop")`, for people.
    pub fn label(&self, i: usize) -> String {
        match self.routes.get(i).and_then(|r| r.name.as_ref()) {
            Some(n) => format!("route {} ({n:?})", i + 1),
            None => format!("route {}", i + 1),
        }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn uses_labels(&self) -> bool {
        self.routes.iter().any(|r| r.matcher.uses_labels())
    }

    pub fn plan(&self, s: &Facts) -> Plan {
        let mut matched = Vec::new();
        let mut targets = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            if !r.matcher.matches(s) {
                continue;
            }
            matched.push(i);
            for t in &r.targets {
                push_unique(&mut targets, t);
            }
            if !r.cont {
                break;
            }
        }
        if matched.is_empty() {
            return Plan {
                matched,
                by_default: true,
                targets: self.default.clone(),
            };
        }
        Plan {
            matched,
            by_default: false,
            targets: Some(targets),
        }
    }
}

/// A `sinks` list: names, or `{sink, channel | webhook_file}`.
fn targets(
    v: &Value,
    at: &str,
    sinks: &[SinkInfo],
    read: &dyn Fn(&Path) -> Result<String, String>,
    problems: &mut Vec<String>,
) -> Vec<Target> {
    let Value::Array(list) = v else {
        problems.push(format!(
            "{at}: must be a list of sink names or {{sink, channel | webhook_file}}"
        ));
        return Vec::new();
    };
    let configured = || {
        if sinks.is_empty() {
            "none is configured".to_string()
        } else {
            let names: Vec<&str> = sinks.iter().map(|s| s.name).collect();
            format!("configured: {}", names.join(", "))
        }
    };
    let mut out = Vec::new();
    for (j, item) in list.iter().enumerate() {
        let at = format!("{at}[{j}]");
        let (name, extra) = match item {
            Value::String(s) => (s.as_str(), None),
            Value::Object(o) => match o.get("sink").and_then(Value::as_str) {
                Some(s) => (s, Some(o)),
                None => {
                    problems.push(format!("{at}: sink: missing (the sink's name)"));
                    continue;
                }
            },
            _ => {
                problems.push(format!(
                    "{at}: must be a sink name or {{sink, channel | webhook_file}}"
                ));
                continue;
            }
        };
        let Some(info) = sinks.iter().find(|s| s.name == name) else {
            problems.push(format!(
                "{at}: sink {name:?} is not configured ({})",
                configured()
            ));
            continue;
        };
        let mut over = None;
        for (k, val) in extra.into_iter().flatten() {
            if k == "sink" {
                continue;
            }
            let kind = [OverrideKind::Channel, OverrideKind::WebhookFile]
                .into_iter()
                .find(|o| o.field() == k);
            let allowed = || {
                let f: Vec<&str> = info.accepts.iter().map(|o| o.field()).collect();
                if f.is_empty() {
                    format!("{name} takes nothing but its name")
                } else {
                    format!("{name} takes: {}", f.join(", "))
                }
            };
            let Some(kind) = kind.filter(|o| info.accepts.contains(o)) else {
                problems.push(format!("{at}: {k}: not accepted ({})", allowed()));
                continue;
            };
            if over.is_some() {
                problems.push(format!(
                    "{at}: {k}: one of channel or webhook_file, not both"
                ));
                continue;
            }
            let Some(s) = val.as_str().filter(|s| !s.trim().is_empty()) else {
                problems.push(format!("{at}: {k}: must be a non-empty string"));
                continue;
            };
            over = match kind {
                OverrideKind::Channel => {
                    let c = s.trim();
                    match info.channel.filter(|rule| !(rule.valid)(c)) {
                        Some(rule) => {
                            problems.push(format!(
                                "{at}: channel: {c:?} is not {} ({name})",
                                rule.allowed
                            ));
                            None
                        }
                        None => Some(Override::Channel(c.to_string())),
                    }
                }
                OverrideKind::WebhookFile => {
                    let file = PathBuf::from(s);
                    match read(&file).map(|u| u.trim().to_string()) {
                        Err(e) => {
                            problems.push(format!("{at}: webhook_file: {e}"));
                            None
                        }
                        Ok(u) if u.starts_with("https://") || u.starts_with("http://") => {
                            Some(Override::Webhook {
                                file,
                                url: Secret::new(u),
                            })
                        }
                        // The content is a credential: never quoted.
                        Ok(_) => {
                            problems.push(format!(
                                "{at}: webhook_file: {} does not hold an http(s) URL",
                                file.display()
                            ));
                            None
                        }
                    }
                }
            };
        }
        push_unique(
            &mut out,
            &Target {
                sink: name.to_string(),
                over,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FailureType, Severity};
    use crate::routing::matcher::tests::{labels, subject};
    use serde_json::json;

    const SINKS: &[SinkInfo] = &[
        SinkInfo {
            name: "slack",
            accepts: &[OverrideKind::WebhookFile],
            channel: None,
        },
        SinkInfo {
            name: "slack-bot",
            accepts: &[OverrideKind::Channel],
            channel: None,
        },
        SinkInfo {
            name: "webhook",
            accepts: &[],
            channel: None,
        },
        SinkInfo {
            name: "chat",
            accepts: &[OverrideKind::Channel],
            channel: Some(ChannelRule {
                valid: digits,
                allowed: "a number",
            }),
        },
    ];

    fn digits(s: &str) -> bool {
        s.chars().all(|c| c.is_ascii_digit())
    }

    fn read(p: &Path) -> Result<String, String> {
        match p.to_str() {
            Some("/hooks/pay") => Ok("https://hooks.slack.test/T/B/secret\n".into()),
            Some("/hooks/junk") => Ok("xoxb-not-a-url".into()),
            _ => Err(format!("cannot read {}: No such file", p.display())),
        }
    }

    fn routes(v: Value) -> Result<Routes, Vec<String>> {
        Routes::parse(&v, SINKS, &read)
    }

    fn names(p: &Plan) -> Vec<String> {
        p.targets
            .as_ref()
            .map(|t| t.iter().map(Target::describe).collect())
            .unwrap_or_else(|| vec!["<all>".into()])
    }

    #[test]
    fn first_match_wins_unless_it_continues_and_the_default_catches_the_rest() {
        let r = routes(json!({
            "routes": [
                {"name": "audit", "match": {"min_severity": "critical"}, "sinks": ["webhook"], "continue": true},
                {"name": "shop", "match": {"namespace": "shop"}, "sinks": [{"sink": "slack-bot", "channel": "#shop"}]},
                {"name": "never", "match": {"namespace": "shop"}, "sinks": ["slack"]},
                {"match": {"labels": {"team": "search"}}, "sinks": []}
            ],
            "default": ["slack"]
        }))
        .unwrap();
        let l = labels();
        let s = subject(&l);
        let p = r.plan(&s);
        assert_eq!(p.matched, [0, 1]);
        assert_eq!(names(&p), ["webhook", "slack-bot channel #shop"]);
        assert_eq!(
            p.for_sink("slack-bot"),
            [Some(&Override::Channel("#shop".into()))]
        );
        assert!(p.for_sink("slack").is_empty());

        let mut other = s;
        other.namespace = "search";
        other.severity = Severity::High;
        let p = r.plan(&other);
        assert!(p.by_default);
        assert_eq!(names(&p), ["slack"]);

        let search = vec![("team".into(), "search".into())];
        let mut quiet = subject(&search);
        quiet.namespace = "search";
        quiet.kind = FailureType::NotReady;
        quiet.severity = Severity::Medium;
        let p = r.plan(&quiet);
        assert_eq!(
            (p.matched.as_slice(), names(&p).len()),
            (&[3][..], 0),
            "sent nowhere"
        );
        assert_eq!(r.label(3), "route 4");
        assert_eq!(r.label(1), "route 2 (\"shop\")");
    }

    #[test]
    fn without_a_default_unmatched_incidents_go_everywhere() {
        let r = routes(json!([{"match": {"namespace": "x"}, "sinks": ["webhook"]}])).unwrap();
        let l = labels();
        let p = r.plan(&subject(&l));
        assert_eq!(p.targets, None);
        assert_eq!(p.for_sink("anything"), [None]);
        let r = routes(json!({"default": {"sinks": ["webhook", "webhook"]}})).unwrap();
        assert_eq!(names(&r.plan(&subject(&l))), ["webhook"], "duplicates once");
    }

    #[test]
    fn a_webhook_override_is_read_from_its_file_and_never_shown() {
        let r =
            routes(json!({"default": [{"sink": "slack", "webhook_file": "/hooks/pay"}]})).unwrap();
        let l = labels();
        let p = r.plan(&subject(&l));
        let t = &p.targets.as_ref().unwrap()[0];
        assert_eq!(t.describe(), "slack webhook from /hooks/pay");
        let Some(Override::Webhook { url, .. }) = &t.over else {
            panic!()
        };
        assert_eq!(url.expose(), "https://hooks.slack.test/T/B/secret");
        assert!(!format!("{r:?}").contains("secret"));
    }

    #[test]
    fn a_channel_the_sink_s_rule_accepts_is_kept_trimmed() {
        let r = routes(json!({"default": [{"sink": "chat", "channel": " 42 "}]})).unwrap();
        let l = labels();
        assert_eq!(
            r.plan(&subject(&l)).for_sink("chat"),
            [Some(&Override::Channel("42".into()))]
        );
    }

    #[test]
    fn problems_name_the_route_and_field_and_what_is_allowed() {
        let err = routes(json!({
            "routes": [
                {"name": "shop", "match": {"severity": "hgh"}, "sinks": ["teams"]},
                {"match": {}, "sinks": [{"sink": "webhook", "channel": "#x"}], "continue": "yes"},
                {"sinks": [{"sink": "slack", "webhook_file": "/hooks/junk"}, {"sink": "slack", "webhook_file": "/nope"}]},
                {"match": {}},
                "shop",
                {"name": "x", "sink": ["slack"], "sinks": [{"channel": "#a"}]},
                {"sinks": [{"sink": "chat", "channel": "#a"}, {"sink": "chat", "channel": " 42 "}]}
            ],
            "defaults": []
        }))
        .unwrap_err();
        let all = err.join("\n");
        for want in [
            "defaults: unknown field (allowed: routes, default)",
            "route 1 (\"shop\"): match.severity: \"hgh\" is not one of: informational",
            "route 1 (\"shop\"): sinks[0]: sink \"teams\" is not configured (configured: slack, slack-bot, webhook, chat)",
            "route 2: sinks[0]: channel: not accepted (webhook takes nothing but its name)",
            "route 2: continue: must be true or false",
            "route 3: sinks[0]: webhook_file: /hooks/junk does not hold an http(s) URL",
            "route 3: sinks[1]: webhook_file: cannot read /nope",
            "route 4: sinks: missing",
            "route 5: must be a mapping",
            "route 6 (\"x\"): sink: unknown field (allowed: name, match, sinks, continue)",
            "route 6 (\"x\"): sinks[0]: sink: missing",
            "route 7: sinks[0]: channel: \"#a\" is not a number (chat)",
        ] {
            assert!(all.contains(want), "want {want:?} in\n{all}");
        }
        assert!(
            !all.contains("xoxb"),
            "a webhook file's content is never quoted"
        );
        assert!(!all.contains("route 7: sinks[1]"), "42 is a number");
        let none = Routes::parse(&json!([{"sinks": ["slack"]}]), &[], &read).unwrap_err();
        assert!(none[0].contains("none is configured"), "{none:?}");
    }
}
