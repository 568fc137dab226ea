/*!
`routes test`: which sinks (and channels) would receive an incident with
the given facts, by `ROUTES_FILE`, and whether ALERT_SEVERITY_FILTERS or a
`SILENCES_FILE` silence would hold it back now. Sends nothing, needs no
cluster: the routing decision is the daemon's own (`routing::Routes::plan`).
*/

use std::io::Write;

use crate::model::{Cause, FailureType, Severity};
use crate::notify::sinks::routable;
use crate::routing::{Facts, Policy, RouteQuery, Target};
use crate::settings::Settings;
use crate::util::time::{format_millis, now_ms};

fn parse<T: Copy>(
    what: &str,
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    all.iter().copied().find(|x| name(*x) == s).ok_or_else(|| {
        let allowed: Vec<&str> = all.iter().map(|x| name(*x)).collect();
        format!("{what} {s:?} is not one of: {}", allowed.join(", "))
    })
}

/// Prints the answer on `out`; an error is a bad flag value.
pub fn run(
    settings: &Settings,
    policy: &Policy,
    q: &RouteQuery,
    out: &mut dyn Write,
) -> Result<(), String> {
    let kind = q
        .kind
        .as_deref()
        .map(|k| parse("--type", k, &FailureType::ALL, FailureType::as_str))
        .transpose()?;
    let severity = match (&q.severity, kind) {
        (Some(s), _) => parse("--severity", s, &Severity::ALL, Severity::as_str)?,
        (None, Some(k)) => k.severity(),
        (None, None) => return Err("routes test: give --type or --severity".into()),
    };
    let cause = q
        .cause
        .as_deref()
        .map(|c| parse("--cause", c, &Cause::ALL, Cause::as_str))
        .transpose()?;
    let labels: Vec<(Box<str>, Box<str>)> = q
        .labels
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect();
    // Without --type, a type no type matcher names: such routes do not match.
    let s = Facts {
        namespace: &q.namespace,
        severity,
        kind: kind.unwrap_or(FailureType::HighRestartCount),
        cause,
        workload_kind: q.workload_kind.as_deref().unwrap_or(""),
        workload_name: q.workload_name.as_deref().unwrap_or(""),
        labels: &labels,
    };
    write(settings, policy, &s, kind.is_some(), out).map_err(|e| format!("stdout: {e}"))
}

fn write(
    settings: &Settings,
    policy: &Policy,
    s: &Facts,
    typed: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    writeln!(
        out,
        "incident: namespace={} severity={} type={} cause={} workload={}/{} labels={}",
        s.namespace,
        s.severity,
        if typed { s.kind.as_str() } else { "-" },
        s.cause.map_or("-", Cause::as_str),
        if s.workload_kind.is_empty() {
            "-"
        } else {
            s.workload_kind
        },
        if s.workload_name.is_empty() {
            "-"
        } else {
            s.workload_name
        },
        if labels.is_empty() {
            "-".into()
        } else {
            labels.join(",")
        },
    )?;
    let sinks = routable(settings);
    let targets: Vec<Target> = match &policy.routes {
        None => {
            writeln!(out, "routes: none (no ROUTES_FILE): every configured sink")?;
            sinks.iter().map(|x| Target::plain(x.name)).collect()
        }
        Some(routes) => {
            let plan = routes.plan(s);
            if plan.by_default {
                writeln!(
                    out,
                    "routes: none of {} matches: the default route",
                    routes.len()
                )?;
            } else {
                let names: Vec<String> = plan.matched.iter().map(|i| routes.label(*i)).collect();
                writeln!(out, "routes: {} matches", names.join(", then "))?;
            }
            plan.targets
                .unwrap_or_else(|| sinks.iter().map(|x| Target::plain(x.name)).collect())
        }
    };
    if targets.is_empty() {
        writeln!(out, "sinks: none (this incident is not sent)")?;
    } else {
        writeln!(out, "sinks:")?;
        for t in &targets {
            writeln!(out, "  {}", describe(settings, s.namespace, t))?;
        }
    }
    if !settings.alerts.severities.contains(&s.severity) {
        writeln!(
            out,
            "held back: severity {} is not in ALERT_SEVERITY_FILTERS",
            s.severity
        )?;
    }
    let now = now_ms();
    if let Some(x) = policy.silences.active(s, now) {
        writeln!(
            out,
            "silenced now: SILENCES_FILE silence {} ({:?}) until {}",
            x.number,
            x.comment,
            format_millis(x.ends_ms)
        )?;
    }
    Ok(())
}

/// A target as the user reads it; the Slack bot's channel when no route names one.
fn describe(settings: &Settings, namespace: &str, t: &Target) -> String {
    match (&t.over, &settings.alerts.slack_bot) {
        (None, Some(bot)) if t.sink == "slack-bot" => {
            let by = if bot.routes.iter().any(|(ns, _)| ns == namespace) {
                "SLACK_CHANNEL_ROUTES"
            } else {
                "SLACK_CHANNEL"
            };
            format!("slack-bot channel {} ({by})", bot.channel_for(namespace))
        }
        _ => t.describe(),
    }
}
