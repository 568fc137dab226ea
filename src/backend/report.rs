/*!
The body of `POST /daemon/analyze-stack`: the original's
`StackAnalysisPayload` (primary pod, Helm release, namespace, and each pod's
status, events and logs), built from one notification
item, plus a one-line reading of the backend's answer for alerts.

```text
{ primaryPod, helmRelease, namespace, timestamp,
  components: [ { podName,
                  status: { phase, containerStates: [{name, type, state, reason?, message?}] },
                  events: [..],      // ["[unknown]"] when there are none, as the original
                  logs: ["[main:app] line", ..] } ] }
```

How this daemon fills it:
- `primaryPod` is the incident's representative pod; `helmRelease` is the
  owning workload's name. The original sent a Helm release name when it
  guessed one and the pod name otherwise; the workload is what this
  daemon's incidents are about, and what a release usually deploys.
- One component, the primary pod: the original re-read every sibling pod
  (and their logs) per failure with no cap (bugs 26, 27); an incident
  already names the failing workload.
- `phase` is inferred from the failure type (the incident holds no pod
  phase): pending-type failures and init containers give `Pending`,
  failed and evicted pods `Failed`, crash loops and restarts `Running`.
- `events` and `logs` arrive redacted from the caller (the enrichment step);
  nothing here reads the cluster.
- The whole body is capped at `MAX_PAYLOAD_BYTES` (the original had no cap):
  long lines are cut, then events keep the most relevant first (they come
  sorted), and logs keep their newest lines; a marker line says how many
  were left out.
*/

use serde_json::{Map, Value, json};

use crate::model::FailureType;
use crate::model::Item;
use crate::util::text::cut_chars as cut;

/// The most an analyze-stack body may weigh.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// Longest event or log line sent, in characters.
const MAX_LINE_CHARS: usize = 2_000;
/// Longest container message sent, in characters.
const MAX_MESSAGE_CHARS: usize = 2_000;
/// Events may take at most this share of what is left for lines (1/n):
/// logs usually say more, and events are short.
const EVENTS_SHARE: usize = 4;
/// Room kept for each "… omitted" marker line.
const MARKER_ROOM: usize = 96;

/// The payload for `item`, at most `max_bytes` serialised (for any
/// `max_bytes` above a few hundred bytes; the skeleton itself is kept).
pub fn payload(item: &Item, max_bytes: usize) -> Value {
    let inc = &item.incident;
    let f = &inc.finding;
    let container_states: Vec<Value> = match &f.container {
        Some(name) => {
            let mut s = Map::new();
            s.insert("name".into(), json!(name));
            s.insert(
                "type".into(),
                json!(if f.init_container { "init" } else { "main" }),
            );
            s.insert("state".into(), json!(container_state(f.kind, &f.reason)));
            if !f.reason.is_empty() {
                s.insert("reason".into(), json!(cut(&f.reason, 256)));
            }
            if !f.message.trim().is_empty() {
                s.insert(
                    "message".into(),
                    json!(cut(f.message.trim(), MAX_MESSAGE_CHARS)),
                );
            }
            vec![Value::Object(s)]
        }
        None => Vec::new(),
    };
    let mut doc = json!({
        "primaryPod": f.pod,
        "helmRelease": inc.workload.name,
        "namespace": inc.namespace,
        "timestamp": super::iso_ms(inc.first_seen_ms),
        "components": [{
            "podName": f.pod,
            "status": { "phase": phase(f.kind, f.init_container), "containerStates": container_states },
            "events": [],
            "logs": [],
        }],
    });
    let skeleton = encoded_len(&doc);
    let mut left = max_bytes.saturating_sub(skeleton);

    let events = fit_events(&item.events, left / EVENTS_SHARE);
    left = left.saturating_sub(events.iter().map(|e| json_len(e) + 1).sum());
    let tag = format!(
        "[{}:{}] ",
        if f.init_container { "init" } else { "main" },
        f.container.as_deref().unwrap_or("pod")
    );
    let logs = fit_logs(&item.logs, &tag, left);

    if let Some(c) = doc.pointer_mut("/components/0") {
        c["events"] = json!(events);
        c["logs"] = json!(logs);
    }
    doc
}

/// The events that fit in `room` bytes, most relevant (first) kept.
fn fit_events(events: &[String], room: usize) -> Vec<String> {
    let lines: Vec<String> = events
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .map(|e| cut(e, MAX_LINE_CHARS))
        .collect();
    if lines.is_empty() {
        // The original's placeholder for "no events".
        return vec!["[unknown]".into()];
    }
    let budget = room.saturating_sub(MARKER_ROOM);
    let mut used = 0;
    let mut out = Vec::new();
    for l in &lines {
        let cost = json_len(l) + 1;
        if used + cost > budget {
            break;
        }
        used += cost;
        out.push(l.clone());
    }
    let omitted = lines.len() - out.len();
    if omitted > 0 {
        out.push(format!(
            "[opsctrl-daemon] {omitted} more event(s) omitted (size cap)"
        ));
    }
    out
}

/// The log lines that fit in `room` bytes, prefixed like the original
/// (`[main:app] …`, empty lines dropped), newest kept.
fn fit_logs(logs: &[String], tag: &str, room: usize) -> Vec<String> {
    let lines: Vec<&str> = logs
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let budget = room.saturating_sub(MARKER_ROOM);
    let mut used = 0;
    let mut kept = Vec::new();
    for l in lines.iter().rev() {
        let line = format!("{tag}{}", cut(l, MAX_LINE_CHARS));
        let cost = json_len(&line) + 1;
        if used + cost > budget {
            break;
        }
        used += cost;
        kept.push(line);
    }
    let omitted = lines.len() - kept.len();
    if omitted > 0 {
        kept.push(format!(
            "[opsctrl-daemon] {omitted} earlier log line(s) omitted (size cap)"
        ));
    }
    kept.reverse();
    kept
}

/// The original's state strings (`Waiting: X`, `Terminated: X`, `Running`).
fn container_state(kind: FailureType, reason: &str) -> String {
    use FailureType::*;
    let reason = if reason.is_empty() { "Unknown" } else { reason };
    match kind {
        CrashLoopBackOff => "Waiting: CrashLoopBackOff".into(),
        ImagePullBackOff | InvalidImageName | CreateContainerConfigError => {
            format!("Waiting: {reason}")
        }
        ContainerStartError if matches!(reason, "CreateContainerError" | "RunContainerError") => {
            format!("Waiting: {reason}")
        }
        OOMKilled | ContainerStartError | Failed => format!("Terminated: {reason}"),
        NotReady | HighRestartCount => "Running".into(),
        // Pod-level types carry no container; kept total for safety.
        Unschedulable | PendingTooLong | Evicted => "Unknown".into(),
        NodeNotReady | NodePressure | NodeUnschedulable => "Unknown".into(),
    }
}

fn phase(kind: FailureType, init_container: bool) -> &'static str {
    use FailureType::*;
    match kind {
        Failed | Evicted => "Failed",
        // A pod whose init container has not finished is still Pending.
        _ if init_container => "Pending",
        ImagePullBackOff
        | InvalidImageName
        | CreateContainerConfigError
        | Unschedulable
        | PendingTooLong => "Pending",
        CrashLoopBackOff | OOMKilled | NotReady | HighRestartCount => "Running",
        ContainerStartError | NodeNotReady | NodePressure | NodeUnschedulable => "Unknown",
    }
}

fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(s.len() + 2, |j| j.len())
}

fn encoded_len(v: &Value) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Finding;
    use crate::model::{Incident, State};

    fn item(kind: FailureType, events: Vec<String>, logs: Vec<String>) -> Item {
        let finding = Finding {
            reason: "Error".into(),
            message: "back-off 1m20s restarting failed container".into(),
            exit_code: Some(1),
            restart_count: Some(5),
            node: Some("worker-1".into()),
            image: Some("ghcr.io/acme/web:1".into()),
            ..Finding::test(kind, "web-7d4b9c6f8-aaaaa")
        };
        let incident = Incident {
            id: 1,
            cluster: "edge".into(),
            first_seen_ms: 1_764_104_400_123,
            detected_ms: 1_764_104_400_123,
            ..Incident::test(finding, State::Open)
        };
        let mut it = Item::new(incident, None);
        it.events = events;
        it.logs = logs;
        it
    }

    #[test]
    fn has_the_original_shape() {
        let it = item(
            FailureType::CrashLoopBackOff,
            vec!["Warning BackOff (x12): Back-off restarting failed container".into()],
            vec!["starting".into(), "".into(), "panic: boom".into()],
        );
        let v = payload(&it, MAX_PAYLOAD_BYTES);
        assert_eq!(
            v,
            json!({
                "primaryPod": "web-7d4b9c6f8-aaaaa",
                "helmRelease": "web",
                "namespace": "shop",
                "timestamp": "2025-11-25T21:00:00.123Z",
                "components": [{
                    "podName": "web-7d4b9c6f8-aaaaa",
                    "status": {
                        "phase": "Running",
                        "containerStates": [{
                            "name": "app", "type": "main", "state": "Waiting: CrashLoopBackOff",
                            "reason": "Error",
                            "message": "back-off 1m20s restarting failed container"
                        }]
                    },
                    "events": ["Warning BackOff (x12): Back-off restarting failed container"],
                    "logs": ["[main:app] starting", "[main:app] panic: boom"]
                }]
            })
        );
    }

    #[test]
    fn no_events_is_unknown_and_pod_level_failures_have_no_container() {
        let mut it = item(FailureType::Unschedulable, vec![], vec![]);
        it.incident.finding.container = None;
        let v = payload(&it, MAX_PAYLOAD_BYTES);
        let c = &v["components"][0];
        assert_eq!(c["events"], json!(["[unknown]"]));
        assert_eq!(c["logs"], json!([]));
        assert_eq!(c["status"]["phase"], "Pending");
        assert_eq!(c["status"]["containerStates"], json!([]));
    }

    #[test]
    fn states_and_phases_follow_the_failure() {
        assert_eq!(
            container_state(FailureType::OOMKilled, "OOMKilled"),
            "Terminated: OOMKilled"
        );
        assert_eq!(
            container_state(FailureType::ImagePullBackOff, "ErrImagePull"),
            "Waiting: ErrImagePull"
        );
        assert_eq!(
            container_state(FailureType::ContainerStartError, "StartError"),
            "Terminated: StartError"
        );
        assert_eq!(
            container_state(FailureType::HighRestartCount, "Error"),
            "Running"
        );
        assert_eq!(phase(FailureType::Evicted, false), "Failed");
        assert_eq!(phase(FailureType::CrashLoopBackOff, true), "Pending");
        assert_eq!(phase(FailureType::OOMKilled, false), "Running");
    }

    #[test]
    fn a_huge_log_is_capped_keeping_its_newest_lines() {
        let logs: Vec<String> = (0..20_000)
            .map(|i| format!("line {i} {}", "x".repeat(100)))
            .collect();
        let events: Vec<String> = (0..2_000)
            .map(|i| format!("Warning E{i}: {}", "y".repeat(50)))
            .collect();
        let mut it = item(FailureType::CrashLoopBackOff, events, logs);
        it.incident.finding.message = "m".repeat(100_000);
        let v = payload(&it, MAX_PAYLOAD_BYTES);
        let size = serde_json::to_vec(&v).unwrap().len();
        assert!(size <= MAX_PAYLOAD_BYTES, "{size}");
        assert!(
            size > MAX_PAYLOAD_BYTES - 4_096,
            "the cap is used, not wasted: {size}"
        );
        let logs = v["components"][0]["logs"].as_array().unwrap();
        assert!(
            logs[0]
                .as_str()
                .unwrap()
                .contains("earlier log line(s) omitted")
        );
        assert!(
            logs.last()
                .unwrap()
                .as_str()
                .unwrap()
                .starts_with("[main:app] line 19999 ")
        );
        let events = v["components"][0]["events"].as_array().unwrap();
        assert_eq!(events[0], "Warning E0: ".to_string() + &"y".repeat(50));
        assert!(
            events
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .contains("more event(s) omitted")
        );
        let msg = v["components"][0]["status"]["containerStates"][0]["message"]
            .as_str()
            .unwrap();
        assert_eq!(msg.chars().count(), MAX_MESSAGE_CHARS + 1);
        // One enormous line is cut, not dropped.
        let it = item(
            FailureType::CrashLoopBackOff,
            vec![],
            vec!["z".repeat(1_000_000)],
        );
        let v = payload(&it, MAX_PAYLOAD_BYTES);
        let line = v["components"][0]["logs"][0].as_str().unwrap();
        assert_eq!(
            line.chars().count(),
            "[main:app] ".len() + MAX_LINE_CHARS + 1
        );
    }
}
