//! Incidents as the engine hands them to the sinks, for the tests that
//! drive sinks, the LLM or the backend directly: one crash-looping `app`
//! container of Deployment `web`, overridden where a test cares.

use opsctrl_daemon::model::{FailureType, Finding, Workload};
use opsctrl_daemon::model::{Incident, State};

/// The classifier's finding for a crash-looping `app` container of `pod`.
pub fn finding(kind: FailureType, ns: &str, pod: &str) -> Finding {
    Finding {
        kind,
        namespace: ns.into(),
        pod: pod.into(),
        container: Some("app".into()),
        init_container: false,
        reason: "Error".into(),
        message: "back-off 1m20s restarting failed container".into(),
        exit_code: Some(1),
        signal: None,
        restart_count: Some(5),
        node: Some("worker-1".into()),
        image: Some("ghcr.io/acme/web:1".into()),
        since: None,
        termination: None,
    }
}

/// Incident 7 of Deployment `web` in cluster `edge-1`, about `finding`'s pod.
pub fn incident(finding: Finding, state: State) -> Incident {
    Incident {
        id: 7,
        cluster: "edge-1".into(),
        namespace: finding.namespace.clone(),
        workload: Workload {
            kind: "Deployment".into(),
            name: "web".into(),
        },
        revision: None,
        pods: vec![finding.pod.clone()],
        finding,
        first_seen_ms: 1_764_104_400_000,
        detected_ms: 1_764_104_400_000,
        last_seen_ms: 1_764_104_460_000,
        affected: Vec::new(),
        state,
    }
}
