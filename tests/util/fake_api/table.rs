use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::store::Obj;

pub(super) fn pods(
    items: &[Arc<Obj>],
    rv: Option<u64>,
    cont: Option<&str>,
    remaining: Option<u64>,
) -> Vec<u8> {
    let col = |name: &str, format: &str, priority: u8, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": priority});
    let columns = json!([
        col("Name", "name", 0, "Name must be unique within a namespace."),
        col(
            "Ready",
            "",
            0,
            "The aggregate readiness state of this pod for accepting traffic."
        ),
        col(
            "Status",
            "",
            0,
            "The aggregate status of the containers in this pod."
        ),
        col(
            "Restarts",
            "",
            0,
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."
        ),
        col(
            "Age",
            "",
            0,
            "CreationTimestamp is a timestamp representing the server time when this object was created."
        ),
        col("IP", "", 1, "The IP address assigned to the pod"),
        col("Node", "", 1, "The name of the node assigned to the pod"),
        col(
            "Nominated Node",
            "",
            1,
            "The name of the node where the pod is nominated to run"
        ),
        col("Readiness Gates", "", 1, "The readiness gates of the pod")
    ]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let v: Value = serde_json::from_slice(&o.item).unwrap_or_default();
            json!({"cells": row(&v, now), "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"]}})
        })
        .collect();
    let mut meta = serde_json::Map::new();
    if let Some(rv) = rv {
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    if let Some(c) = cont {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    let t = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns, "rows": rows});
    serde_json::to_vec(&t).unwrap_or_default()
}

/// The cells kubectl shows: the apiserver's printPod, minus init-container details.
fn row(p: &Value, now: i64) -> Vec<Value> {
    let s = |ptr: &str| {
        p.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let statuses = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut reason = if s("/status/reason").is_empty() {
        s("/status/phase")
    } else {
        s("/status/reason")
    };
    let (mut restarts, mut ready, mut running, mut last_restart) = (0, 0, false, None::<i64>);
    for c in statuses.iter().rev() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c
            .pointer("/lastState/terminated/finishedAt")
            .and_then(Value::as_str)
            .and_then(parse_time)
        {
            last_restart = Some(last_restart.map_or(t, |l: i64| l.max(t)));
        }
        if let Some(r) = c
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if let Some(t) = c.pointer("/state/terminated") {
            reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                Some(r) => r.to_string(),
                None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
            };
        } else if c.pointer("/state/running").is_some() && c["ready"].as_bool() == Some(true) {
            running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && running {
        reason = "Running".into();
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s("/status/reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    let restarts = match last_restart {
        Some(t) if restarts > 0 => format!("{restarts} ({} ago)", human(now - t)),
        _ => restarts.to_string(),
    };
    let age = parse_time(&s("/metadata/creationTimestamp"))
        .map_or("<unknown>".to_string(), |t| human(now - t));
    let or_none = |v: String| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v
        }
    };
    vec![
        json!(s("/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age),
        json!(or_none(s("/status/podIP"))),
        json!(or_none(s("/spec/nodeName"))),
        json!(or_none(s("/status/nominatedNodeName"))),
        json!("<none>"),
    ]
}

/// The AGE cell of an object created at `created` (RFC 3339).
pub(super) fn age(created: &str, now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    parse_time(created).map_or("<unknown>".to_string(), |t| human(now - t))
}

/// "YYYY-MM-DDTHH:MM:SSZ" → Unix seconds.
fn parse_time(t: &str) -> Option<i64> {
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    // Days-from-civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// apimachinery's duration.HumanDuration.
fn human(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        if d % 365 == 0 {
            format!("{}y", d / 365)
        } else {
            format!("{}y{}d", d / 365, d % 365)
        }
    } else {
        format!("{}y", d / 365)
    }
}
