//! core/v1 Events: create (generateName, legacy validation) and LIST.

use std::sync::Arc;

use serde_json::{Value, json};

use super::super::http::Request;
use super::ids::rand_u64;
use super::ids::{new_uid, rfc3339_now};
use super::leases::check_micro_time;
use super::list::whole_list;
use super::selectors::Filter;
use super::status::{ApiError, already_exists};
use super::store::{EVENT_FIELDS, Kind, Obj, Store};
use super::{FakeApi, Inner, lock};

impl FakeApi {
    /// Store a core/v1 Event (listable at /api/v1/events); bumps the global resourceVersion.
    pub fn add_event(&self, event: Value) -> u64 {
        let rv = lock(&self.inner.store).add_event(event);
        self.inner.changed.notify_all();
        rv
    }

    /// Events stored so far (created over HTTP or with `add_event`), as LIST items.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.inner.store)
            .events
            .values()
            .filter_map(|o| serde_json::from_slice(&o.item).ok())
            .collect()
    }
}

/// A body's `metadata.namespace` must be empty or the request's.
pub(super) fn check_body_namespace(v: &Value, ns: &str) -> Result<(), ApiError> {
    if !v.is_object() {
        return Err(ApiError::new(
            400,
            "the body of the request must be a JSON object",
        ));
    }
    let body_ns = v
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::new(
            400,
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// The name a create gets: `metadata.name`, else `generateName` (cut to 58 characters)
/// plus 5 random characters from the apiserver's alphabet.
pub(super) fn generated_name(v: &Value, kind: &str) -> Result<String, ApiError> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("");
    let name = s("/metadata/name");
    if !name.is_empty() {
        return Ok(name.to_string());
    }
    let base = s("/metadata/generateName");
    if base.is_empty() {
        return Err(ApiError::new(
            422,
            format!(
                "{kind} \"\" is invalid: metadata.name: Required value: name or generateName is required"
            ),
        ));
    }
    let base: String = base.chars().take(58).collect();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand_u64();
    let suffix: String = (0..5)
        .map(|_| {
            let c = ALPHABET[(r % ALPHABET.len() as u64) as usize] as char;
            r /= ALPHABET.len() as u64;
            c
        })
        .collect();
    Ok(format!("{base}{suffix}"))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The name part of a qualified name: alphanumerics, `-`, `_`, `.`, at most 63, starting and
/// ending alphanumeric.
fn valid_qualified_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

impl Store {
    fn add_event(&mut self, mut v: Value) -> u64 {
        self.rv += 1;
        let rv = self.rv;
        if v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            let ns = v
                .pointer("/involvedObject/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            v["metadata"]["namespace"] = json!(ns);
        }
        if v.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            let base = v
                .pointer("/involvedObject/name")
                .and_then(Value::as_str)
                .unwrap_or("event")
                .to_string();
            v["metadata"]["name"] = json!(format!("{base}.{:016x}", rand_u64()));
        }
        let meta = &mut v["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        if meta["uid"].as_str().unwrap_or("").is_empty() {
            meta["uid"] = json!(new_uid());
        }
        if meta["creationTimestamp"].as_str().unwrap_or("").is_empty() {
            meta["creationTimestamp"] = json!(rfc3339_now());
        }
        let obj = Arc::new(Obj::new(v, Kind::Event));
        self.events.insert(obj.key.clone(), obj);
        rv
    }

    /// POST of a core/v1 Event in `ns` (path namespace), validated like the apiserver's
    /// legacy Event validation for core/v1 requests.
    pub(super) fn create_event(&mut self, ns: &str, mut v: Value) -> Result<Value, ApiError> {
        check_body_namespace(&v, ns)?;
        let name = generated_name(&v, "Event")?;
        let invalid = |field: &str, why: String| {
            ApiError::new(422, format!("Event \"{name}\" is invalid: {field}: {why}"))
                .details(json!({"name": name, "kind": "Event"}))
        };
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let involved_ns = s("/involvedObject/namespace");
        if s("/eventTime").is_empty() {
            if involved_ns.is_empty() {
                if ns != "default" {
                    return Err(invalid(
                        "involvedObject.namespace",
                        format!("Invalid value: \"{involved_ns}\": does not match event.namespace"),
                    ));
                }
            } else if involved_ns != ns {
                return Err(invalid(
                    "involvedObject.namespace",
                    format!("Invalid value: \"{involved_ns}\": does not match event.namespace"),
                ));
            }
        } else {
            check_micro_time(&s("/eventTime"), "Event")?;
            if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
                return Err(invalid(
                    "involvedObject.namespace",
                    format!("Invalid value: \"{involved_ns}\": does not match event.namespace"),
                ));
            }
            for (field, limit) in [
                ("reportingComponent", 0),
                ("reportingInstance", 128),
                ("action", 128),
                ("reason", 128),
            ] {
                let val = s(&format!("/{field}"));
                if val.is_empty() {
                    return Err(invalid(field, "Required value".into()));
                }
                if limit > 0 && val.len() > limit {
                    return Err(invalid(
                        field,
                        format!("Invalid value: \"\": can have at most {limit} characters"),
                    ));
                }
            }
            let rc = s("/reportingComponent");
            let qualified = match rc.split_once('/') {
                Some((prefix, n)) => {
                    !prefix.is_empty()
                        && prefix.split('.').all(is_dns_label)
                        && valid_qualified_part(n)
                }
                None => valid_qualified_part(&rc),
            };
            if !qualified {
                return Err(invalid(
                    "reportingComponent",
                    format!("Invalid value: \"{rc}\": must be a qualified name"),
                ));
            }
            if s("/message").len() > 1024 {
                return Err(invalid(
                    "message",
                    "Invalid value: \"\": can have at most 1024 characters".into(),
                ));
            }
        }
        let key = (ns.to_string(), name.clone());
        if self.events.contains_key(&key) {
            return Err(already_exists("events", "", &name));
        }
        self.rv += 1;
        let rv = self.rv;
        let meta = &mut v["metadata"];
        meta["name"] = json!(name);
        meta["namespace"] = json!(ns);
        meta["resourceVersion"] = json!(rv.to_string());
        meta["uid"] = json!(new_uid());
        meta["creationTimestamp"] = json!(rfc3339_now());
        if let Some(m) = v.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        let obj = Arc::new(Obj::new(v, Kind::Event));
        let full: Value = serde_json::from_slice(&obj.full_json("Event")).unwrap_or_default();
        self.events.insert(key, obj);
        Ok(full)
    }
}

pub(super) fn list_events(
    inner: &Inner,
    req: &Request,
    ns: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let filter = Filter::from_query(req, ns, EVENT_FIELDS)?;
    let st = lock(&inner.store);
    let items: Vec<Arc<Obj>> = st
        .events
        .values()
        .filter(|o| filter.matches(o))
        .cloned()
        .collect();
    let rv = st.rv;
    drop(st);
    Ok(whole_list("EventList", rv, &items))
}
