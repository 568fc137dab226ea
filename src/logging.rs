/*!
The daemon's own log lines on stderr, in one of two formats (`LOG_FORMAT`):

- `text`: `2026-12-01T10:00:00.123Z INFO  opsctrl_daemon::daemon: message`,
  an RFC 3339 UTC timestamp first;
- `json`: one object per line, `{"ts", "level", "target", "msg", "record":"log"}`,
  for the log shippers of a cluster.

No line may carry a credential, at any level:
- the HTTP and TLS libraries (`ureq`, `ureq_proto`, `rustls`) log raw
  traffic at debug and trace: request lines with webhook URLs, hex dumps
  with `Authorization` headers and bodies. `filter` caps them at `warn`
  whatever `LOG_LEVEL` says; only a `RUST_LOG` that names one of them turns
  it up (unsafe, for debugging on a throwaway cluster);
- every line, ours and theirs, passes through the redactor handed to `init`
  before it is written.

In a container, stdout (the incident record) and stderr (these lines) end in
one log. With `OUTPUT=json` and `LOG_FORMAT=json` both are JSON lines, and
the `record` field tells them apart: `"log"` here, `"incident"` on stdout.
*/

use std::io::Write;

use crate::util::time::{format_millis, now_ms};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One log line, without its newline (pure, for the tests).
pub fn line(format: LogFormat, ts_ms: i64, level: log::Level, target: &str, msg: &str) -> String {
    let ts = format_millis(ts_ms);
    match format {
        LogFormat::Text => format!("{ts} {level:<5} {target}: {msg}"),
        LogFormat::Json => serde_json::json!({
            "ts": ts,
            "level": level.as_str().to_ascii_lowercase(),
            "target": target,
            "msg": msg,
            "record": "log",
        })
        .to_string(),
    }
}

/// Crates whose debug and trace lines show the raw traffic (credentials
/// included). `Cargo.lock` lists every crate that logs; these are all of
/// them but ours.
pub const WIRE_TARGETS: &[&str] = &["ureq", "ureq_proto", "rustls"];

/// The env_logger filter for `spec` (a level name or a `RUST_LOG` filter):
/// each wire-level target the spec does not name is capped at `warn` (or
/// lower, when the spec's overall level is lower).
pub fn filter(spec: &str) -> String {
    let (directives, regex) = match spec.split_once('/') {
        Some((d, r)) => (d, Some(r)),
        None => (spec, None),
    };
    let parts: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    let names: Vec<&str> = parts
        .iter()
        .filter_map(|d| match d.split_once('=') {
            Some((name, _)) => Some(name.trim()),
            // A bare word is a level, or a module at trace.
            None => d.parse::<log::LevelFilter>().is_err().then_some(*d),
        })
        .collect();
    let global = parts
        .iter()
        .filter_map(|d| d.parse::<log::LevelFilter>().ok())
        .next_back()
        .unwrap_or(log::LevelFilter::Error);
    let cap = global.min(log::LevelFilter::Warn);
    let mut out: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    for t in WIRE_TARGETS {
        let named = names
            .iter()
            .any(|n| n == t || n.strip_prefix(t).is_some_and(|r| r.starts_with("::")));
        if !named {
            out.push(format!("{t}={}", cap.as_str().to_ascii_lowercase()));
        }
    }
    let mut f = out.join(",");
    if let Some(r) = regex {
        f.push('/');
        f.push_str(r);
    }
    f
}

/// Installs the logger: `spec` a level name or env_logger's filter syntax
/// (narrowed by `filter`), lines on stderr, each message through `redact`.
pub fn init(spec: &str, format: LogFormat, redact: fn(&str) -> String) {
    env_logger::Builder::new()
        .parse_filters(&filter(spec))
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let msg = redact(&record.args().to_string());
            let text = line(format, now_ms(), record.level(), record.target(), &msg);
            writeln!(buf, "{text}")
        })
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: i64 = 1_764_583_200_123; // 2025-12-01T10:00:00.123Z

    #[test]
    fn a_level_caps_the_wire_level_targets() {
        assert_eq!(
            filter("trace"),
            "trace,ureq=warn,ureq_proto=warn,rustls=warn"
        );
        assert_eq!(
            filter("error"),
            "error,ureq=error,ureq_proto=error,rustls=error"
        );
        assert_eq!(
            filter("opsctrl_daemon=debug"),
            "opsctrl_daemon=debug,ureq=error,ureq_proto=error,rustls=error"
        );
    }

    #[test]
    fn only_a_filter_naming_a_wire_target_turns_it_up() {
        assert_eq!(
            filter("debug,ureq=trace"),
            "debug,ureq=trace,ureq_proto=warn,rustls=warn"
        );
        assert_eq!(
            filter("rustls::conn=trace,ureq_proto, info"),
            "rustls::conn=trace,ureq_proto,info,ureq=warn"
        );
        // `ureqx` is not `ureq`; a regex suffix stays last.
        assert_eq!(
            filter("ureqx=trace/foo"),
            "ureqx=trace,ureq=error,ureq_proto=error,rustls=error/foo"
        );
    }

    #[test]
    fn text_lines_start_with_an_rfc3339_utc_timestamp() {
        let l = line(
            LogFormat::Text,
            TS,
            log::Level::Warn,
            "opsctrl_daemon::daemon",
            "lost",
        );
        assert_eq!(
            l,
            "2025-12-01T10:00:00.123Z WARN  opsctrl_daemon::daemon: lost"
        );
    }

    #[test]
    fn json_lines_are_one_object_marked_as_log() {
        let l = line(
            LogFormat::Json,
            TS,
            log::Level::Info,
            "opsctrl_daemon::kube",
            "a \"quoted\"\nline",
        );
        assert!(!l.contains('\n'), "one line: {l}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["ts"], "2025-12-01T10:00:00.123Z");
        assert_eq!(v["level"], "info");
        assert_eq!(v["target"], "opsctrl_daemon::kube");
        assert_eq!(v["msg"], "a \"quoted\"\nline");
        assert_eq!(v["record"], "log");
    }
}
