/*!
The failing container's facts, one short line each, for the alert and the
LLM: image, requests and limits, probes, the *names* of its environment
variables (never their values), the node and the owner.

Most come from the pod record the daemon already keeps; environment names
are not kept per pod (memory), so they are read from the pod object fetched
at enrichment time (`env_names`).
*/

use serde_json::Value;

use crate::model::{ContainerRecord, PodRecord, Probe};

/// Most environment names listed.
const MAX_ENV_NAMES: usize = 40;

fn probe(label: &str, p: &Probe) -> String {
    let mut s = format!("{label} probe: {}", p.kind.as_str());
    if let Some(path) = &p.path {
        s.push(' ');
        s.push_str(path);
    }
    if let Some(port) = &p.port {
        s.push_str(" :");
        s.push_str(port);
    }
    s.push_str(&format!(
        ", timeout {}s, period {}s, failureThreshold {}",
        p.timeout_seconds, p.period_seconds, p.failure_threshold
    ));
    s
}

fn resources(c: &ContainerRecord) -> String {
    let pair = |cpu: &Option<Box<str>>, mem: &Option<Box<str>>| {
        let parts: Vec<String> = [("cpu", cpu), ("memory", mem)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(" ")
        }
    };
    format!(
        "resources: requests {}; limits {}",
        pair(&c.cpu_request, &c.memory_request),
        pair(&c.cpu_limit, &c.memory_limit)
    )
}

/// The container a finding names, from the record.
pub fn container<'a>(pod: &'a PodRecord, name: &str, init: bool) -> Option<&'a ContainerRecord> {
    let list = if init {
        &pod.init_containers
    } else {
        &pod.containers
    };
    list.iter().find(|c| &*c.name == name)
}

/// Fact lines for a pod and (when known) its failing container.
pub fn lines(pod: &PodRecord, c: Option<&ContainerRecord>, env: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = c {
        out.push(format!("container: {}", c.name));
        out.push(format!("image: {}", c.image));
        out.push(resources(c));
        for (label, p) in [
            ("liveness", &c.liveness),
            ("readiness", &c.readiness),
            ("startup", &c.startup),
        ] {
            if let Some(p) = p {
                out.push(probe(label, p));
            }
        }
        if c.restart_count > 0 {
            out.push(format!("restarts: {}", c.restart_count));
        }
    }
    if !env.is_empty() {
        let shown: Vec<&str> = env.iter().take(MAX_ENV_NAMES).map(String::as_str).collect();
        let more = env.len().saturating_sub(MAX_ENV_NAMES);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        out.push(format!("env (names only): {}{tail}", shown.join(", ")));
    }
    if let Some(node) = &pod.node {
        out.push(format!("node: {node}"));
    }
    if let Some(o) = &pod.owner {
        out.push(format!("owner: {}/{}", o.kind, o.name));
    }
    if let Some(sa) = &pod.service_account {
        out.push(format!("service account: {sa}"));
    }
    out
}

/// Names of a container's environment variables, and the ConfigMaps and
/// Secrets it imports whole (`envFrom`), from the pod object. Values are
/// never read.
pub fn env_names(pod: &Value, container: &str, init: bool) -> Vec<String> {
    let list = if init {
        "/spec/initContainers"
    } else {
        "/spec/containers"
    };
    let Some(c) = pod.pointer(list).and_then(Value::as_array).and_then(|cs| {
        cs.iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
    }) else {
        return Vec::new();
    };
    let mut out: Vec<String> = c
        .get("env")
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for from in c
        .get("envFrom")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        for (key, kind) in [("configMapRef", "configmap"), ("secretRef", "secret")] {
            if let Some(name) = from
                .pointer(&format!("/{key}/name"))
                .and_then(Value::as_str)
            {
                out.push(format!("(all of {kind}/{name})"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::types::Pod;
    use serde_json::json;

    #[test]
    fn env_names_never_carry_values() {
        let pod = json!({"spec": {"containers": [{"name": "app",
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"},
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}],
            "envFrom": [{"configMapRef": {"name": "app-config"}}, {"secretRef": {"name": "app-secrets"}}]}]}});
        let names = env_names(&pod, "app", false);
        assert_eq!(
            names,
            [
                "DB_PASSWORD",
                "TOKEN",
                "(all of configmap/app-config)",
                "(all of secret/app-secrets)"
            ]
        );
        assert!(!format!("{names:?}").contains("hunter2"));
        assert!(env_names(&pod, "other", false).is_empty());
        assert!(env_names(&json!({"spec": 1}), "app", false).is_empty());
    }

    #[test]
    fn facts_name_image_resources_probes_node_and_owner() {
        let pod: Pod = serde_json::from_str(include_str!(
            "../../tests/fixtures/pods/crashloop-error.json"
        ))
        .unwrap();
        let rec = PodRecord::from(pod);
        let c = rec.containers.first();
        let out = lines(&rec, c, &["A".into(), "B".into()]);
        let text = out.join("\n");
        assert!(text.contains("image: "), "{text}");
        assert!(text.contains("resources: requests "), "{text}");
        assert!(text.contains("env (names only): A, B"), "{text}");
        if rec.node.is_some() {
            assert!(text.contains("node: "));
        }
    }
}
