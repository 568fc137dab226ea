/*!
A pod's events, as the diagnosis and the alerts read them.

Fetched with `fieldSelector=involvedObject.uid=<uid>` (names are reused by
StatefulSets; uids are not). Ordering: Warning first, then newest first, where
"when" is `series.lastObservedTime`, else `eventTime`, else `lastTimestamp`
(else `firstTimestamp`, `metadata.creationTimestamp`): the scheduler and other
`events.k8s.io/v1` writers leave `lastTimestamp` null in the core API's view.
*/

use std::time::Duration;

use serde_json::Value;

use crate::kube::client::{Client, Error};
use crate::util::time::parse_rfc3339;

/// Events kept per incident.
pub const MAX_EVENTS: usize = 20;
/// Longest message kept per event line.
const MAX_MESSAGE: usize = 500;
/// An event list larger than this is not read (a pathological namespace).
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// Unix seconds of the most relevant timestamp of one event.
fn when(e: &Value) -> Option<i64> {
    let at = |p: &str| e.pointer(p).and_then(Value::as_str).and_then(parse_rfc3339);
    at("/series/lastObservedTime")
        .or_else(|| at("/eventTime"))
        .or_else(|| at("/lastTimestamp"))
        .or_else(|| at("/firstTimestamp"))
        .or_else(|| at("/metadata/creationTimestamp"))
}

/// How many times it happened (`count`, or `series.count` for new-style events).
fn count(e: &Value) -> u64 {
    e.get("count")
        .and_then(Value::as_u64)
        .or_else(|| e.pointer("/series/count").and_then(Value::as_u64))
        .unwrap_or(1)
}

/// `Warning BackOff (x12): Back-off restarting failed container`.
fn line(e: &Value) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = if s("type").is_empty() {
        "Normal"
    } else {
        s("type")
    };
    let n = count(e);
    let times = if n > 1 {
        format!(" (x{n})")
    } else {
        String::new()
    };
    let flat = s("message")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let msg: String = crate::util::text::strip_kubelet_noise(&flat)
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    format!("{kind} {}{times}: {msg}", s("reason"))
}

/// The items of an EventList, ordered and formatted, at most `MAX_EVENTS`.
pub fn lines(items: &[Value]) -> Vec<String> {
    let mut v: Vec<(bool, i64, &Value)> = items
        .iter()
        .map(|e| {
            let warning = e.get("type").and_then(Value::as_str) == Some("Warning");
            (!warning, -when(e).unwrap_or(0), e)
        })
        .collect();
    // Stable: equal keys keep the server's order.
    v.sort_by_key(|(normal, neg_time, _)| (*normal, *neg_time));
    v.into_iter()
        .take(MAX_EVENTS)
        .map(|(_, _, e)| line(e))
        .collect()
}

/// Fetches and formats the events of one pod.
pub fn fetch(
    client: &Client,
    namespace: &str,
    pod_uid: &str,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let path = format!("/api/v1/namespaces/{namespace}/events");
    let selector = format!("involvedObject.uid={pod_uid}");
    let body = client.get_bounded(&path, &[("fieldSelector", &selector)], timeout, MAX_BODY)?;
    let list: Value = serde_json::from_slice(&body).map_err(|e| Error::Decode {
        what: "event list",
        detail: e.to_string(),
    })?;
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    Ok(lines(items))
}

/// How far from a termination a node's SystemOOM event may be to explain it.
const SYSTEM_OOM_WINDOW_SECS: i64 = 300;

/// The node's `SystemOOM` events (kubelet records one when the kernel kills
/// for the whole node rather than for a container's own cgroup limit) near
/// `around` (Unix seconds, the termination), as lines naming the node.
pub fn fetch_system_oom(
    client: &Client,
    node: &str,
    around: Option<i64>,
    timeout: Duration,
) -> Result<Vec<String>, Error> {
    let selector = format!("involvedObject.kind=Node,involvedObject.name={node},reason=SystemOOM");
    let body = client.get_bounded(
        "/api/v1/events",
        &[("fieldSelector", &selector)],
        timeout,
        MAX_BODY,
    )?;
    let list: Value = serde_json::from_slice(&body).map_err(|e| Error::Decode {
        what: "event list",
        detail: e.to_string(),
    })?;
    let items = list
        .get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    Ok(system_oom_lines(items, node, around))
}

/// The SystemOOM events of `items` near `around`, newest first.
pub fn system_oom_lines(items: &[Value], node: &str, around: Option<i64>) -> Vec<String> {
    let near: Vec<Value> = items
        .iter()
        .filter(|e| e.get("reason").and_then(Value::as_str) == Some("SystemOOM"))
        .filter(|e| match (around, when(e)) {
            (Some(t), Some(w)) => (w - t).abs() <= SYSTEM_OOM_WINDOW_SECS,
            _ => true,
        })
        .cloned()
        .collect();
    lines(&near)
        .into_iter()
        .map(|l| l.replacen("SystemOOM", &format!("SystemOOM (node {node})"), 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_system_ooms_near_the_termination_are_kept_and_name_the_node() {
        let items = vec![
            json!({"type": "Warning", "reason": "SystemOOM", "message": "System OOM encountered, victim process: app, pid: 4242",
                   "lastTimestamp": "2024-05-14T10:00:30Z"}),
            json!({"type": "Warning", "reason": "SystemOOM", "message": "an old one",
                   "lastTimestamp": "2024-05-14T08:00:00Z"}),
            json!({"type": "Normal", "reason": "NodeReady", "message": "ready",
                   "lastTimestamp": "2024-05-14T10:00:00Z"}),
        ];
        let at = parse_rfc3339("2024-05-14T10:00:00Z");
        let l = system_oom_lines(&items, "pi-3", at);
        assert_eq!(
            l,
            [
                "Warning SystemOOM (node pi-3): System OOM encountered, victim process: app, pid: 4242"
            ]
        );
    }

    #[test]
    fn warnings_first_then_newest_by_the_best_timestamp_available() {
        let items = vec![
            json!({"type": "Normal", "reason": "Pulled", "message": "ok",
                   "lastTimestamp": "2024-05-14T10:05:00Z"}),
            json!({"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
                   "count": 12, "lastTimestamp": "2024-05-14T10:01:00Z"}),
            // events.k8s.io/v1 style: lastTimestamp null, eventTime set.
            json!({"type": "Warning", "reason": "FailedScheduling", "message": "0/3 nodes are available",
                   "lastTimestamp": null, "eventTime": "2024-05-14T10:03:00.000000Z"}),
            // A series: its last observation is what counts.
            json!({"type": "Warning", "reason": "Unhealthy", "message": "Liveness probe failed",
                   "eventTime": "2024-05-14T09:00:00.000000Z",
                   "series": {"count": 7, "lastObservedTime": "2024-05-14T10:04:00.000000Z"}}),
        ];
        assert_eq!(
            lines(&items),
            [
                "Warning Unhealthy (x7): Liveness probe failed",
                "Warning FailedScheduling: 0/3 nodes are available",
                "Warning BackOff (x12): Back-off restarting failed container",
                "Normal Pulled: ok",
            ]
        );
    }

    #[test]
    fn at_most_twenty_and_messages_are_capped_and_flattened() {
        let items: Vec<Value> = (0..50)
            .map(|i| {
                json!({"type": "Warning", "reason": format!("R{i}"),
                       "message": format!("line one\nline two {}", "x".repeat(2000)),
                       "lastTimestamp": format!("2024-05-14T10:{:02}:00Z", i % 60)})
            })
            .collect();
        let out = lines(&items);
        assert_eq!(out.len(), MAX_EVENTS);
        assert!(out[0].starts_with("Warning R49: line one line two"));
        assert!(out.iter().all(|l| l.chars().count() < MAX_MESSAGE + 40));
    }

    #[test]
    fn odd_events_do_not_break_anything() {
        let items = vec![
            json!({}),
            json!({"type": 3, "message": null}),
            json!("text"),
        ];
        assert_eq!(lines(&items).len(), 3);
    }
}
