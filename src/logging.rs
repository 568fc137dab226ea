/*!
The daemon's own log lines on stderr, in one of two formats (`LOG_FORMAT`):

- `text`: `2026-12-01T10:00:00.123Z INFO  opsctrl_daemon::daemon: message`,
  an RFC 3339 UTC timestamp first;
- `json`: one object per line, `{"ts", "level", "target", "msg", "record":"log"}`,
  for the log shippers of a cluster.

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

/// Installs the logger: `filter` in env_logger's syntax, lines on stderr.
pub fn init(filter: &str, format: LogFormat) {
    env_logger::Builder::new()
        .parse_filters(filter)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let msg = record.args().to_string();
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
