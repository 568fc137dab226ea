//! LIST of pods (limit/continue, snapshots, resourceVersion semantics) and namespaces.

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::Value;

use super::super::http::Request;
use super::faults::Fault;
use super::routes::wants_table;
use super::selectors::Filter;
use super::status::{ApiError, invalid_list_options, not_found, too_large_rv};
use super::store::{Key, NAMESPACE_FIELDS, NODE_FIELDS, Obj, POD_FIELDS, Store};
use super::{Inner, lock, table};

/// How long a watch for a resourceVersion newer than the store waits (the cacher's 3 s).
const TOO_LARGE_RV_WAIT: Duration = Duration::from_secs(3);
/// Lock the store once it has reached `rv`, waiting like the watch cache does (3 s).
pub(super) fn store_at_least(inner: &Inner, rv: u64) -> Result<MutexGuard<'_, Store>, ApiError> {
    let deadline = Instant::now() + TOO_LARGE_RV_WAIT;
    let mut st = lock(&inner.store);
    while st.rv < rv {
        let now = Instant::now();
        if now >= deadline {
            return Err(too_large_rv(rv, st.rv));
        }
        st = inner
            .changed
            .wait_timeout(st, deadline - now)
            .map(|r| r.0)
            .unwrap_or_else(|e| e.into_inner().0);
    }
    Ok(st)
}

const CONTINUE_TOO_OLD: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn encode_continue(rv: u64, last: &Key) -> String {
    let start = serde_json::to_string(&format!("{}/{}\u{0}", last.0, last.1)).unwrap_or_default();
    B64URL.encode(format!(
        r#"{{"v":"meta.k8s.io/v1","rv":{rv},"start":{start}}}"#
    ))
}

fn decode_continue(token: &str) -> Result<(u64, Key), ApiError> {
    let bad = |why: &str| ApiError::new(400, format!("continue key is not valid: {why}"));
    let raw = B64URL
        .decode(token)
        .or_else(|_| B64.decode(token))
        .map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid json"))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rv = v["rv"]
        .as_u64()
        .filter(|rv| *rv > 0)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let start = v["start"].as_str().unwrap_or("");
    let key = start
        .strip_suffix('\0')
        .and_then(|s| s.split_once('/'))
        .ok_or_else(|| bad("encoded start key is invalid"))?;
    Ok((rv, (key.0.to_string(), key.1.to_string())))
}

pub(super) fn list_pods(
    inner: &Inner,
    req: &Request,
    ns: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let filter = Filter::from_query(req, ns, POD_FIELDS)?;
    let limit = match req.param("limit").unwrap_or("") {
        "" => 0,
        l => l
            .parse::<i64>()
            .map_err(|_| ApiError::new(400, format!("invalid limit {l:?}")))?
            .max(0) as usize,
    };
    let rv = req.param("resourceVersion").unwrap_or("");
    let rv_match = req.param("resourceVersionMatch").unwrap_or("");
    let cont = req.param("continue").unwrap_or("");
    if !matches!(rv_match, "" | "Exact" | "NotOlderThan") {
        return Err(invalid_list_options(&format!(
            "resourceVersionMatch: Unsupported value: \"{rv_match}\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        )));
    }
    if !rv_match.is_empty() && !cont.is_empty() {
        return Err(invalid_list_options(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
        ));
    }
    if !rv_match.is_empty() && rv.is_empty() {
        return Err(invalid_list_options(
            "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if rv_match == "Exact" && rv == "0" {
        return Err(invalid_list_options(
            "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ));
    }
    let parse_rv = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| ApiError::new(400, format!("invalid resource version {s:?}")))
    };

    // (snapshot rv or None = latest, start key, effective limit, is a continuation)
    let (exact, start, limit, continuing, not_older_than) = if !cont.is_empty() {
        if !rv.is_empty() && rv != "0" {
            return Err(ApiError::new(
                400,
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (crv, key) = decode_continue(cont)?;
        (Some(crv), Some(key), limit, true, 0)
    } else if rv.is_empty() {
        (None, None, limit, false, 0)
    } else if rv == "0" {
        // "Any": served from the watch cache, which does not paginate.
        (None, None, 0, false, 0)
    } else {
        let x = parse_rv(rv)?;
        if rv_match == "Exact" || (rv_match.is_empty() && limit > 0) {
            (Some(x), None, limit, false, 0)
        } else {
            (None, None, limit, false, x)
        }
    };

    let st = store_at_least(inner, exact.unwrap_or(not_older_than))?;
    let at = exact.unwrap_or(st.rv);
    if at < st.compact_rv {
        let msg = if continuing {
            CONTINUE_TOO_OLD
        } else {
            "The resourceVersion for the provided list is too old."
        };
        return Err(ApiError::new(410, msg));
    }
    let page = st.list_pods_at(at, start.as_ref(), &filter, limit);
    drop(st);

    let cont_token = if continuing && inner.has_persistent(&Fault::RepeatContinue) {
        Some(cont.to_string())
    } else if page.more {
        page.last.as_ref().map(|k| encode_continue(at, k))
    } else {
        None
    };
    let remaining = if page.more && !filter.has_selectors() {
        Some(page.remaining)
    } else {
        None
    };
    if wants_table(req) {
        return Ok(table::pods(
            &page.items,
            Some(at),
            cont_token.as_deref(),
            remaining,
        ));
    }
    Ok(list_body(
        "PodList",
        at,
        cont_token.as_deref(),
        remaining,
        page.items.iter().map(|o| o.item.as_slice()),
    ))
}

/// A list in one piece (no `continue`, no `remainingItemCount`).
pub(super) fn whole_list(kind: &str, rv: u64, items: &[Arc<Obj>]) -> Vec<u8> {
    list_body(
        kind,
        rv,
        None,
        None,
        items.iter().map(|o| o.item.as_slice()),
    )
}

fn list_body<'a>(
    kind: &str,
    rv: u64,
    cont: Option<&str>,
    remaining: Option<u64>,
    items: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<u8> {
    let size: usize = items.clone().map(|i| i.len() + 1).sum();
    let mut b = Vec::with_capacity(size + 256);
    b.extend_from_slice(
        format!(r#"{{"kind":"{kind}","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}""#)
            .as_bytes(),
    );
    if let Some(c) = cont {
        b.extend_from_slice(format!(r#","continue":"{c}""#).as_bytes());
    }
    if let Some(r) = remaining {
        b.extend_from_slice(format!(r#","remainingItemCount":{r}"#).as_bytes());
    }
    b.extend_from_slice(b"},\"items\":[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(item);
    }
    b.extend_from_slice(b"]}");
    b
}

/// The namespace list, or one namespace (`only`, 404 when missing). The list is always the
/// current state in one piece: `limit` is accepted but never cuts a page (legal: the server
/// may return fewer items than asked, and no `continue` then means "complete"); a
/// `continue` token (only ever from a pod list) resumes after its key's name.
pub(super) fn list_namespaces(
    inner: &Inner,
    req: &Request,
    only: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let filter = Filter::from_query(req, None, NAMESPACE_FIELDS)?;
    if let Some(l) = req.param("limit").filter(|l| !l.is_empty()) {
        l.parse::<i64>()
            .map_err(|_| ApiError::new(400, format!("invalid limit {l:?}")))?;
    }
    let after = match req.param("continue").unwrap_or("") {
        "" => None,
        c => Some(decode_continue(c)?.1.1),
    };
    let st = lock(&inner.store);
    if let Some(name) = only {
        let obj = st
            .namespaces
            .get(name)
            .ok_or_else(|| not_found("namespaces", name))?;
        return Ok(obj.full_json("Namespace"));
    }
    let items: Vec<Arc<Obj>> = st
        .namespaces
        .iter()
        .filter(|(name, _)| after.as_ref().is_none_or(|a| *name > a))
        .map(|(_, o)| o)
        .filter(|o| filter.matches(o))
        .cloned()
        .collect();
    let rv = st.rv;
    drop(st);
    Ok(whole_list("NamespaceList", rv, &items))
}

/// The node list, or one node (`only`, 404 when missing): like namespaces, the current
/// state in one piece at the list resourceVersion.
pub(super) fn list_nodes(
    inner: &Inner,
    req: &Request,
    only: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let filter = Filter::from_query(req, None, NODE_FIELDS)?;
    if let Some(l) = req.param("limit").filter(|l| !l.is_empty()) {
        l.parse::<i64>()
            .map_err(|_| ApiError::new(400, format!("invalid limit {l:?}")))?;
    }
    let st = lock(&inner.store);
    if let Some(name) = only {
        let obj = st.nodes.get(name).ok_or_else(|| not_found("nodes", name))?;
        return Ok(obj.full_json("Node"));
    }
    let items: Vec<Arc<Obj>> = st
        .nodes
        .values()
        .filter(|o| filter.matches(o))
        .cloned()
        .collect();
    let rv = st.rv;
    drop(st);
    Ok(whole_list("NodeList", rv, &items))
}
