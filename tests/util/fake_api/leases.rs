//! coordination.k8s.io/v1 Leases: GET, LIST, create and update with the apiserver's validation.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::super::http::Request;
use super::events::{check_body_namespace, generated_name};
use super::ids::{new_uid, rfc3339_now};
use super::routes::wants_table;
use super::status::{ApiError, already_exists, conflict, not_found_in};
use super::store::Store;
use super::{FakeApi, Inner, lock, table};

impl FakeApi {
    /// A Lease as served by GET (with kind/apiVersion), if it exists.
    pub fn get_lease(&self, ns: &str, name: &str) -> Option<Value> {
        lock(&self.inner.store)
            .leases
            .get(&(ns.to_string(), name.to_string()))
            .map(lease_full)
    }

    /// Create or replace a Lease unconditionally (an administrator's edit, or a holder the
    /// test plays itself). Namespace, name and `spec` come from `lease`; returns the new
    /// resourceVersion.
    pub fn put_lease(&self, lease: Value) -> u64 {
        let ns = lease
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let mut st = lock(&self.inner.store);
        let written = match st.update_lease(&ns, lease.clone(), true) {
            Err(e) if e.code == 404 => st.create_lease(&ns, lease),
            other => other,
        }
        .unwrap_or_else(|e| panic!("put_lease: {}", e.message));
        drop(st);
        self.inner.changed.notify_all();
        written
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|rv| rv.parse().ok())
            .unwrap_or(0)
    }
}

/// A Lease list item with kind and apiVersion, as GET and write answers carry it.
pub(super) fn lease_full(item: &Value) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), json!("Lease"));
    out.insert("apiVersion".into(), json!("coordination.k8s.io/v1"));
    if let Some(m) = item.as_object() {
        for (k, v) in m {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// metav1.MicroTime decoding: `2006-01-02T15:04:05.000000Z07:00`, six fraction digits.
pub(super) fn check_micro_time(t: &str, kind: &str) -> Result<(), ApiError> {
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let zone = &t.get(26..).unwrap_or("");
    let zone_ok = *zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && &zone[3..4] == ":");
    let ok = b.len() >= 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && zone_ok;
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            400,
            format!(
                "{kind} in version \"v1\" cannot be handled as a {kind}: parsing time \"{t}\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"{t}\" as a MicroTime"
            ),
        ))
    }
}

/// The apiserver's Lease validation (spec durations and counts, MicroTimes).
fn validate_lease(v: &Value, name: &str) -> Result<(), ApiError> {
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    for field in ["acquireTime", "renewTime"] {
        if let Some(t) = spec.get(field).and_then(Value::as_str) {
            check_micro_time(t, "Lease")?;
        }
    }
    let invalid = |field: &str, val: &Value, why: &str| {
        ApiError::new(
            422,
            format!("Lease.coordination.k8s.io \"{name}\" is invalid: spec.{field}: Invalid value: {val}: {why}"),
        )
        .details(json!({"name": name, "group": "coordination.k8s.io", "kind": "Lease"}))
    };
    if let Some(d) = spec.get("leaseDurationSeconds").filter(|d| !d.is_null()) {
        if d.as_i64().is_none_or(|d| d <= 0) {
            return Err(invalid("leaseDurationSeconds", d, "must be greater than 0"));
        }
    }
    if let Some(t) = spec.get("leaseTransitions").filter(|t| !t.is_null()) {
        if t.as_i64().is_none_or(|t| t < 0) {
            return Err(invalid(
                "leaseTransitions",
                t,
                "must be greater than or equal to 0",
            ));
        }
    }
    Ok(())
}

impl Store {
    /// POST of a Lease in `ns`.
    pub(super) fn create_lease(&mut self, ns: &str, mut v: Value) -> Result<Value, ApiError> {
        check_body_namespace(&v, ns)?;
        let name = generated_name(&v, "Lease.coordination.k8s.io")?;
        validate_lease(&v, &name)?;
        let key = (ns.to_string(), name.clone());
        if self.leases.contains_key(&key) {
            return Err(already_exists("leases", "coordination.k8s.io", &name));
        }
        self.rv += 1;
        let meta = &mut v["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["resourceVersion"] = json!(self.rv.to_string());
        meta["uid"] = json!(new_uid());
        meta["creationTimestamp"] = json!(rfc3339_now());
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let full = lease_full(&v);
        self.leases.insert(key, v);
        Ok(full)
    }

    /// PUT of Lease `ns`/(the body's name): conditional on `metadata.resourceVersion`,
    /// which Leases require (their strategy does not allow unconditional updates).
    /// `url_name` check is the caller's. `force` (the Rust API) skips the precondition.
    pub(super) fn update_lease(
        &mut self,
        ns: &str,
        mut v: Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        check_body_namespace(&v, ns)?;
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let key = (ns.to_string(), name.clone());
        let Some(cur) = self.leases.get(&key) else {
            return Err(not_found_in("leases", "coordination.k8s.io", &name));
        };
        let cur_rv = cur["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let sent_rv = v
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !force {
            if sent_rv.is_empty() {
                return Err(ApiError::new(
                    422,
                    format!("Lease.coordination.k8s.io \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"),
                )
                .details(json!({"name": name, "group": "coordination.k8s.io", "kind": "Lease",
                                "causes": [{"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update", "field": "metadata.resourceVersion"}]})));
            }
            if sent_rv != cur_rv {
                return Err(conflict("leases", "coordination.k8s.io", &name));
            }
        }
        let uid = cur["metadata"]["uid"].clone();
        let sent_uid = v
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !sent_uid.is_empty() && Some(sent_uid) != uid.as_str() {
            return Err(ApiError::new(
                409,
                format!("Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": Precondition failed: UID in precondition: {sent_uid}, UID in object meta: {}", uid.as_str().unwrap_or("")),
            )
            .details(json!({"name": name, "group": "coordination.k8s.io", "kind": "leases"})));
        }
        validate_lease(&v, &name)?;
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let meta = &mut v["metadata"];
        meta["namespace"] = json!(ns);
        meta["uid"] = uid;
        meta["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
        meta["resourceVersion"] = json!(cur_rv);
        if let Some(m) = meta.as_object_mut() {
            m.remove("managedFields");
        }
        // A no-op update changes nothing, as on the real server.
        if &v == cur {
            return Ok(lease_full(cur));
        }
        self.rv += 1;
        v["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let full = lease_full(&v);
        self.leases.insert(key, v);
        Ok(full)
    }
}

/// Leases of one namespace (or all), as a LeaseList or, for kubectl, a Table
/// (NAME, HOLDER, AGE like the apiserver's printer). Selectors are refused rather than
/// ignored, so a test can never pass on a filter the fake did not apply.
pub(super) fn list_leases(
    inner: &Inner,
    req: &Request,
    ns: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    for p in ["labelSelector", "fieldSelector"] {
        if req.param(p).is_some_and(|v| !v.is_empty()) {
            return Err(ApiError::new(
                400,
                format!("{p} is not supported for leases by the fake apiserver"),
            ));
        }
    }
    let st = lock(&inner.store);
    let items: Vec<Value> = st
        .leases
        .iter()
        .filter(|((n, _), _)| ns.is_none_or(|ns| ns == n))
        .map(|(_, v)| v.clone())
        .collect();
    let rv = st.rv.to_string();
    drop(st);
    let out = if wants_table(req) {
        let now = SystemTime::now();
        let col = |name: &str, format: &str, description: &str| json!({"name": name, "type": "string", "format": format, "description": description, "priority": 0});
        let rows: Vec<Value> = items
            .iter()
            .map(|v| {
                let created = v.pointer("/metadata/creationTimestamp").and_then(Value::as_str).unwrap_or("");
                let age = table::age(created, now);
                json!({"cells": [v["metadata"]["name"], v.pointer("/spec/holderIdentity").cloned().unwrap_or(json!("")), age],
                       "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v["metadata"]}})
            })
            .collect();
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
               "columnDefinitions": [
                   col("Name", "name", "Name must be unique within a namespace."),
                   col("Holder", "", "holderIdentity contains the identity of the holder of a current lease."),
                   col("Age", "", "CreationTimestamp is a timestamp representing the server time when this object was created.")
               ],
               "rows": rows})
    } else {
        json!({"kind": "LeaseList", "apiVersion": "coordination.k8s.io/v1", "metadata": {"resourceVersion": rv}, "items": items})
    };
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}
