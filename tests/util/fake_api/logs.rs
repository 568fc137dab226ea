//! Pod logs (`.../pods/{name}/log`) as the tests set them.

use serde_json::Value;

use super::super::http::Request;
use super::status::{ApiError, not_found};
use super::{FakeApi, Inner, lock};

impl FakeApi {
    /// Text served by `GET .../pods/{name}/log?container=..&previous=..`.
    pub fn set_pod_log(&self, ns: &str, name: &str, container: &str, previous: bool, text: &str) {
        lock(&self.inner.pod_logs).insert(
            (
                ns.to_string(),
                name.to_string(),
                container.to_string(),
                previous,
            ),
            text.to_string(),
        );
    }
}

pub(super) fn pod_log(
    inner: &Inner,
    req: &Request,
    ns: &str,
    name: &str,
) -> Result<Vec<u8>, ApiError> {
    let pod = lock(&inner.store)
        .pods
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
        .ok_or_else(|| not_found("pods", name))?;
    let v: Value = serde_json::from_slice(&pod.item).unwrap_or_default();
    let containers: Vec<String> = v
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match req.param("container") {
        Some(c) if !c.is_empty() => c.to_string(),
        _ if containers.len() == 1 => containers[0].clone(),
        _ => {
            return Err(ApiError::new(
                400,
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
            ));
        }
    };
    if !containers.contains(&container) {
        return Err(ApiError::new(
            400,
            format!("container {container} is not valid for pod {name}"),
        ));
    }
    let previous = req.flag("previous");
    let text = lock(&inner.pod_logs)
        .get(&(
            ns.to_string(),
            name.to_string(),
            container.clone(),
            previous,
        ))
        .cloned();
    let text = match text {
        Some(t) => t,
        None if previous => {
            return Err(ApiError::new(
                400,
                format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ),
            ));
        }
        None => String::new(),
    };
    let text = match req.param("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut t = lines[lines.len().saturating_sub(n)..].join("\n");
            if !t.is_empty() {
                t.push('\n');
            }
            t
        }
        None => text,
    };
    Ok(text.into_bytes())
}
