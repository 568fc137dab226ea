/*!
The `k8s-events` sink (`EMIT_K8S_EVENTS=true`): writes a core/v1 Event on the
failing pod, so `kubectl describe pod` and `kubectl get events` show the
diagnosis where people already look.

- One Event per incident of the alert (a storm or start-up summary gives one
  per incident), on the incident's representative pod (`finding.pod`), not on
  every pod of the workload: one line per broken workload, like the alerts.
- Resolutions write nothing: a Warning that stops recurring ages out with the
  Event TTL (1 h by default), and the pod is often gone by then anyway.
- `type: Warning`, `reason: OpsctrlDiagnosis`, the message is
  `<cause>: <summary> Fix: <first command>` (or the finding when there is no
  diagnosis), cut to the API server's 1024-byte limit.
- `involvedObject.uid` is set when the finding carries the pod's uid (it does
  when it rests on a container termination); otherwise it is left out, which
  the API server accepts: the Event is still found by name and namespace.
- `metadata.generateName` is `<pod>.opsctrl-`, so each Event gets a fresh name
  and never collides with the kubelet's `<pod>.<hex>` Events.
- Needs `create` on `events` in the pod's namespace: a 403 is Permanent with
  a hint to enable the `k8s-events` component; 5xx, 429 and connection
  errors are retried by the pool.

The pool may retry an alert; Events already written for it are remembered
(per incident snapshot, 15 minutes), so a retry never writes one twice.
*/

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Alert, Failure, Item, Sink};
use crate::kube::client::{Client, Error};
use crate::model::State;
use crate::util::sync::lock;
use crate::util::text::cut_bytes as cut;
use crate::util::time::format_rfc3339;
use crate::util::time::{format_micros, now_micros};

/// The Event `reason`.
pub const REASON: &str = "OpsctrlDiagnosis";
/// `source.component`: what `kubectl describe` prints in the From column.
pub const COMPONENT: &str = "opsctrl-daemon";
/// `reportingComponent`: a qualified name, as the API server requires.
pub const REPORTING_COMPONENT: &str = "opsctrl.dev/daemon";
/// The API server refuses Event messages longer than this many bytes.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// `reportingInstance` and `action` may be at most this long.
const MAX_FIELD: usize = 128;
/// How long a written Event is remembered, to keep retries from repeating it
/// (longer than the pool's longest retry sequence).
const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// Most remembered Events.
const REMEMBER_MAX: usize = 4096;
/// One Event request may take this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What identifies one incident snapshot: the same alert retried has the
/// same key; a later update of the incident has another.
type Key = (u64, &'static str, i64, bool);

pub struct K8sEvents {
    client: Client,
    /// `reportingInstance`: this replica (the pod name).
    identity: String,
    written: Mutex<HashMap<Key, Instant>>,
}

impl K8sEvents {
    /// A sink writing Events through `client`, signed by `identity` (the
    /// pod name: `reportingInstance`).
    pub fn new(client: Client, identity: impl Into<String>) -> K8sEvents {
        K8sEvents {
            client,
            identity: identity.into(),
            written: Mutex::new(HashMap::new()),
        }
    }

    fn remembered(&self, key: &Key) -> bool {
        lock(&self.written)
            .get(key)
            .is_some_and(|t| t.elapsed() < REMEMBER)
    }

    fn remember(&self, key: Key) {
        let mut w = lock(&self.written);
        w.retain(|_, t| t.elapsed() < REMEMBER);
        if w.len() >= REMEMBER_MAX {
            // Still full of fresh entries: drop the oldest.
            if let Some(oldest) = w.iter().min_by_key(|(_, t)| **t).map(|(k, _)| *k) {
                w.remove(&oldest);
            }
        }
        w.insert(key, Instant::now());
    }
}

impl Sink for K8sEvents {
    fn name(&self) -> &'static str {
        "k8s-events"
    }

    fn deliver(&self, alert: &Alert) -> Result<(), Failure> {
        let reminder = matches!(alert, Alert::Incident { reminder: true, .. });
        for item in alert.items() {
            let inc = &item.incident;
            // The Event goes on the failing pod; a node incident has none
            // (and no namespace to write in).
            if inc.is_node() {
                continue;
            }
            let key = (inc.id, inc.state.as_str(), inc.last_seen_ms, reminder);
            if self.remembered(&key) {
                continue;
            }
            let Some(body) = event(item, &self.identity, now_micros()) else {
                continue;
            };
            let path = format!("/api/v1/namespaces/{}/events", inc.namespace);
            match self
                .client
                .post::<serde::de::IgnoredAny>(&path, &body, TIMEOUT, "Event")
            {
                // An answer we cannot read still means the Event was created.
                Ok(_) | Err(Error::Decode { .. }) => self.remember(key),
                Err(e) => return Err(failure(&e, &inc.namespace)),
            }
        }
        Ok(())
    }
}

/// The Event for one incident item at `now_micros`; `None` for a resolution.
pub fn event(item: &Item, identity: &str, now_micros: i64) -> Option<Value> {
    let inc = &item.incident;
    if inc.state == State::Resolved {
        return None;
    }
    let f = &inc.finding;
    let pod = if f.pod.is_empty() {
        inc.pods.first()?
    } else {
        &f.pod
    };
    let mut involved = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod,
        "namespace": inc.namespace,
    });
    if let Some(t) = f.termination.as_ref().filter(|t| !t.pod_uid.is_empty()) {
        if pod == &f.pod {
            involved["uid"] = json!(t.pod_uid);
        }
    }
    if let Some(c) = f.container.as_deref().filter(|c| !c.is_empty()) {
        // The kubelet's own Events point at the container this way.
        let list = if f.init_container {
            "initContainers"
        } else {
            "containers"
        };
        involved["fieldPath"] = json!(format!("spec.{list}{{{c}}}"));
    }
    let stamp = format_rfc3339(now_micros.div_euclid(1_000_000));
    Some(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": format!("{pod}.opsctrl-"),
            "namespace": inc.namespace,
        },
        "involvedObject": involved,
        "reason": REASON,
        "message": message(item),
        "type": "Warning",
        "source": {"component": COMPONENT},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": cut(identity, MAX_FIELD),
        "action": "Diagnosed",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": format_micros(now_micros),
        "count": 1,
    }))
}

/// `<cause>: <summary> Fix: <first command>`, or the finding when there is
/// no diagnosis; at most `MAX_MESSAGE_BYTES`.
pub fn message(item: &Item) -> String {
    let f = &item.incident.finding;
    let text = match &item.diagnosis {
        Some(d) => {
            let mut m = format!("{}: {}", d.cause, d.summary.trim());
            if let Some(cmd) = d.fix.commands.first() {
                m.push_str(" Fix: ");
                m.push_str(cmd.trim());
            } else if !d.fix.text.trim().is_empty() {
                m.push_str(" Fix: ");
                m.push_str(d.fix.text.trim());
            }
            m
        }
        None => {
            let mut m = format!("{}: {}", f.kind, f.reason);
            if !f.message.trim().is_empty() {
                m.push_str(": ");
                m.push_str(f.message.trim());
            }
            m
        }
    };
    cut(&text, MAX_MESSAGE_BYTES)
}

/// How a failed write is handled by the pool.
fn failure(e: &Error, namespace: &str) -> Failure {
    match e {
        Error::Status { code: 403, .. } => Failure::Permanent(format!(
            "{e}. The daemon may not create Events in namespace {namespace}: enable the \
             k8s-events component (manifests/components/k8s-events) or grant create on events, \
             or set EMIT_K8S_EVENTS=false"
        )),
        // A generated name that collided, or a rate limit: try again.
        Error::Status {
            code, retry_after, ..
        } if *code == 409 || *code == 429 || *code == 408 || *code >= 500 => Failure::Retry {
            why: e.to_string(),
            after: *retry_after,
        },
        Error::Status { .. } => Failure::Permanent(e.to_string()),
        Error::Transport(_) | Error::Auth(_) => Failure::Retry {
            why: e.to_string(),
            after: None,
        },
        Error::Decode { .. } => Failure::Permanent(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Incident;
    use crate::model::{Diagnosis, Fix};
    use crate::model::{FailureType, Finding, Termination};

    fn finding() -> Finding {
        Finding {
            reason: "CrashLoopBackOff".into(),
            message: "back-off 5m0s restarting failed container".into(),
            exit_code: Some(1),
            restart_count: Some(7),
            termination: Some(Termination {
                pod_uid: "0b1c-uid".into(),
                container: "app".into(),
                finished: 1,
            }),
            ..Finding::test(FailureType::CrashLoopBackOff, "web-7d9f-abcde")
        }
    }

    fn item(state: State, diagnosis: Option<Diagnosis>) -> Item {
        let incident = Incident {
            id: 42,
            cluster: "k3s".into(),
            first_seen_ms: 1_000,
            detected_ms: 1_000,
            last_seen_ms: 2_000,
            ..Incident::test(finding(), state)
        };
        Item::new(incident, diagnosis)
    }

    fn diagnosis(summary: &str) -> Diagnosis {
        Diagnosis {
            cause: crate::model::Cause::AppErrorExit,
            summary: summary.into(),
            confidence: 0.8,
            evidence: vec![],
            fix: Fix {
                text: "Read the logs.".into(),
                commands: vec![
                    "kubectl logs -n shop deploy/web -c app --previous".into(),
                    "kubectl describe pod -n shop web-7d9f-abcde".into(),
                ],
            },
            rule: "exit-nonzero",
            ai: None,
            backend: None,
            node_incident: None,
        }
    }

    #[test]
    fn the_event_names_the_pod_container_and_diagnosis() {
        let it = item(State::Open, Some(diagnosis("The app exits with code 1.")));
        let e = event(&it, "opsctrl-daemon-6d4-x2", 1_700_000_000_123_456).unwrap();
        assert_eq!(e["kind"], "Event");
        assert_eq!(e["metadata"]["generateName"], "web-7d9f-abcde.opsctrl-");
        assert_eq!(e["metadata"]["namespace"], "shop");
        assert_eq!(e["involvedObject"]["kind"], "Pod");
        assert_eq!(e["involvedObject"]["name"], "web-7d9f-abcde");
        assert_eq!(e["involvedObject"]["namespace"], "shop");
        assert_eq!(e["involvedObject"]["uid"], "0b1c-uid");
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.containers{app}");
        assert_eq!(e["reason"], REASON);
        assert_eq!(e["type"], "Warning");
        assert_eq!(e["source"]["component"], "opsctrl-daemon");
        assert_eq!(e["reportingComponent"], "opsctrl.dev/daemon");
        assert_eq!(e["reportingInstance"], "opsctrl-daemon-6d4-x2");
        assert_eq!(e["eventTime"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(e["firstTimestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(e["lastTimestamp"], e["firstTimestamp"]);
        assert_eq!(
            e["message"],
            "app_error_exit: The app exits with code 1. Fix: kubectl logs -n shop deploy/web -c app --previous"
        );
    }

    #[test]
    fn resolutions_write_nothing_and_no_uid_is_invented() {
        assert!(event(&item(State::Resolved, None), "me", 0).is_none());
        let mut it = item(State::Updated, None);
        it.incident.finding.termination = None;
        it.incident.finding.init_container = true;
        let e = event(&it, "me", 0).unwrap();
        assert!(e["involvedObject"].get("uid").is_none());
        assert_eq!(e["involvedObject"]["fieldPath"], "spec.initContainers{app}");
        assert_eq!(
            e["message"],
            "CrashLoopBackOff: CrashLoopBackOff: back-off 5m0s restarting failed container"
        );
    }

    #[test]
    fn long_messages_are_cut_to_the_api_limit_on_a_char_boundary() {
        let it = item(State::Open, Some(diagnosis(&"é".repeat(2000))));
        let m = message(&it);
        assert!(m.len() <= MAX_MESSAGE_BYTES, "{} bytes", m.len());
        assert!(m.ends_with('…'));
        assert!(m.starts_with("app_error_exit: éé"));
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut(&"x".repeat(300), MAX_FIELD).len(), MAX_FIELD);
    }

    #[test]
    fn failures_map_to_retry_or_permanent() {
        let status = |code: u16| Error::Status {
            code,
            reason: String::new(),
            message: "m".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        match failure(&status(403), "shop") {
            Failure::Permanent(why) => {
                assert!(why.contains("k8s-events"), "{why}");
                assert!(why.contains("shop"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            failure(&status(503), "shop"),
            Failure::Retry { after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(failure(&status(409), "x"), Failure::Retry { .. }));
        assert!(matches!(failure(&status(422), "x"), Failure::Permanent(_)));
    }
}
