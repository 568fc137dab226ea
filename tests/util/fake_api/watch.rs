//! WATCH streams of pods and namespaces: replay, live changes, bookmarks, timeouts, 410s and the
//! injected stream faults.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::super::http::{Chunks, Conn, Request};
use super::faults::{Fault, WatchAction};
use super::ids::new_uid;
use super::list::store_at_least;
use super::rbac::{Target, forbidden};
use super::routes::respond_err;
use super::selectors::Filter;
use super::status::{ApiError, invalid_list_options, status_json};
use super::store::{Change, EventType, Kind, NAMESPACE_FIELDS, NODE_FIELDS, Obj, POD_FIELDS};
use super::{Inner, lock};

/// How often an idle watch checks whether its client went away.
const LIVENESS_PERIOD: Duration = Duration::from_millis(250);
/// Watch output is flushed at least every this many bytes while draining a backlog.
const FLUSH_BYTES: usize = 256 * 1024;

fn bookmark_line(kind: Kind, rv: u64, initial_events_end: bool) -> Vec<u8> {
    // The real watch cache serializes an empty object of the watched kind with only the
    // resourceVersion set (a Pod's spec has the non-omitempty `containers: null`).
    let annotations = if initial_events_end {
        r#","annotations":{"k8s.io/initial-events-end":"true"}"#
    } else {
        ""
    };
    let (k, spec) = match kind {
        Kind::Namespace => ("Namespace", "{}"),
        Kind::Node => ("Node", "{}"),
        _ => ("Pod", "{\"containers\":null}"),
    };
    format!(
        "{{\"type\":\"BOOKMARK\",\"object\":{{\"kind\":\"{k}\",\"apiVersion\":\"v1\",\"metadata\":{{\"resourceVersion\":\"{rv}\",\"creationTimestamp\":null{annotations}}},\"spec\":{spec},\"status\":{{}}}}}}\n"
    )
    .into_bytes()
}

fn error_line(status: &str) -> Vec<u8> {
    format!("{{\"type\":\"ERROR\",\"object\":{status}}}\n").into_bytes()
}

/// Unregisters a watch from the store however its thread leaves.
struct WatchGuard<'a> {
    pub(super) inner: &'a Inner,
    pub(super) id: u64,
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        lock(&self.inner.store).watches.remove(&self.id);
        self.inner.changed.notify_all();
    }
}

/// How a change looks through a watch's filter (the cacher's convertToWatchEvent): entering
/// the selection is ADDED, leaving it is DELETED with the previous content at the new version.
fn through_filter(c: &Change, f: &Filter, kind: Kind) -> Option<(EventType, Arc<Obj>)> {
    let cur = c.typ != EventType::Deleted && f.matches(&c.obj);
    let old = c.prev.as_ref().is_some_and(|p| f.matches(p));
    match (cur, old) {
        (true, false) => Some((EventType::Added, c.obj.clone())),
        (true, true) => Some((EventType::Modified, c.obj.clone())),
        (false, true) if c.typ == EventType::Deleted => Some((EventType::Deleted, c.obj.clone())),
        (false, true) => c
            .prev
            .as_ref()
            .map(|p| (EventType::Deleted, Arc::new(p.with_rv(c.rv, kind)))),
        (false, false) => None,
    }
}

/// A pod or namespace watch (`kind`); `ns` scopes pod watches to one namespace.
pub(super) fn serve_watch(
    inner: &Inner,
    conn: &mut Conn,
    req: &Request,
    kind: Kind,
    ns: Option<&str>,
    user: &str,
) -> io::Result<bool> {
    let fail = |conn: &mut Conn, e: ApiError| -> io::Result<bool> {
        inner.log(req, e.code, true, false, Some(user));
        respond_err(conn, &e)?;
        Ok(true)
    };
    // `WatchStatus` faults are for pod watches only (see `Fault`).
    if let Some((code, retry)) = (kind == Kind::Pod)
        .then(|| inner.take_watch_fault())
        .flatten()
    {
        let e = if code == 403 {
            forbidden(
                user,
                "watch",
                &Target::new("", "pods", "", ns.unwrap_or(""), ""),
            )
        } else {
            ApiError::injected(code, "watch", retry)
        };
        return fail(conn, e);
    }
    if let Err(e) = inner.authorize(user, "watch", kind.resource(), "", ns.unwrap_or(""), "") {
        return fail(conn, e);
    }
    let supported = match kind {
        Kind::Namespace => NAMESPACE_FIELDS,
        Kind::Node => NODE_FIELDS,
        _ => POD_FIELDS,
    };
    let filter = match Filter::from_query(req, ns, supported) {
        Ok(f) => f,
        Err(e) => return fail(conn, e),
    };
    let rv_param = req.param("resourceVersion").unwrap_or("");
    let bookmarks = req.flag("allowWatchBookmarks");
    let send_initial = req.param("sendInitialEvents");
    let timeout = match req.param("timeoutSeconds").unwrap_or("") {
        "" | "0" => inner.opts.max_watch_timeout,
        t => match t.parse::<u64>() {
            Ok(s) => Duration::from_secs(s).min(inner.opts.max_watch_timeout),
            Err(_) => {
                return fail(
                    conn,
                    ApiError::new(400, format!("invalid timeoutSeconds {t:?}")),
                );
            }
        },
    };
    let start_rv: Option<u64> = match rv_param {
        "" | "0" => None,
        s => match s.parse() {
            Ok(x) => Some(x),
            Err(_) => {
                return fail(
                    conn,
                    ApiError::new(400, format!("invalid resource version {s:?}")),
                );
            }
        },
    };
    let initial_end_bookmark = send_initial == Some("true");
    if initial_end_bookmark
        && (!bookmarks || req.param("resourceVersionMatch") != Some("NotOlderThan"))
    {
        return fail(
            conn,
            invalid_list_options(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
            ),
        );
    }
    // Initial state: rv unset/"0" (unless sendInitialEvents=false) or sendInitialEvents=true.
    let with_initial = match send_initial {
        Some("true") => true,
        Some("false") => false,
        _ => start_rv.is_none(),
    };

    // Position the watch under the store lock and register it for fault broadcasts.
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    let persistent: Vec<WatchAction> = lock(&inner.faults)
        .persistent
        .iter()
        .filter_map(WatchAction::of)
        .collect();
    let expired_http = lock(&inner.faults).expired_watch_http_410;
    let (initial, mut cursor) = {
        let st = match store_at_least(inner, start_rv.unwrap_or(0)) {
            Ok(st) => st,
            Err(e) => return fail(conn, e),
        };
        let mut st = st;
        if let Some(x) = start_rv {
            let compact_rv = st.compact_rv_of(kind);
            if x < compact_rv && !with_initial {
                let msg = format!("too old resource version: {x} ({compact_rv})");
                drop(st);
                if expired_http {
                    return fail(conn, ApiError::new(410, msg));
                }
                // The watch cache answers 200 and sends the error as the stream's only event.
                inner.log(req, 200, true, false, Some(user));
                let mut ch = Chunks::new();
                ch.line(&error_line(&status_json(410, "Expired", &msg, None)));
                ch.end();
                write_watch_head(conn)?;
                ch.flush_to(conn)?;
                return Ok(true);
            }
        }
        let initial: Vec<Arc<Obj>> = if with_initial {
            st.objects(kind)
                .into_iter()
                .filter(|o| filter.matches(o))
                .collect()
        } else {
            Vec::new()
        };
        let cursor = if with_initial {
            st.rv
        } else {
            start_rv.unwrap_or(st.rv)
        };
        st.watches.insert(id, persistent);
        (initial, cursor)
    };
    let _guard = WatchGuard { inner, id };
    inner.changed.notify_all(); // wait_for_watches()

    inner.log(req, 200, true, false, Some(user));
    write_watch_head(conn)?;
    match (kind == Kind::Pod)
        .then(|| inner.take_watch_mode())
        .flatten()
    {
        Some(Fault::FlappingWatch) => {
            conn.cut();
            return Ok(false);
        }
        Some(Fault::SilentWatch) => {
            // Hold the connection open, sending nothing, until the client gives up.
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline && !conn.stale() && !conn.client_gone() {
                std::thread::sleep(LIVENESS_PERIOD);
            }
            return Ok(false);
        }
        _ => {}
    }
    let mut ch = Chunks::new();
    for o in &initial {
        ch.line(&event_line("ADDED", kind, o));
        if ch.buf.len() >= FLUSH_BYTES {
            ch.flush_to(conn)?;
        }
    }
    drop(initial);
    if initial_end_bookmark {
        ch.line(&bookmark_line(kind, cursor, true));
    }
    ch.flush_to(conn)?;

    let started = Instant::now();
    let deadline = started + timeout;
    let mut next_bookmark = started + inner.opts.bookmark_interval;
    let mut next_probe = started + LIVENESS_PERIOD;
    loop {
        // Wait (store lock held only while looking) for changes, actions or a timer.
        let (pending, actions, now_rv, behind) = {
            let mut st = lock(&inner.store);
            loop {
                if conn.stale() {
                    return Ok(false);
                }
                let actions = st
                    .watches
                    .get_mut(&id)
                    .map(std::mem::take)
                    .unwrap_or_default();
                let behind = cursor < st.compact_rv_of(kind);
                let now = Instant::now();
                let mut wake = deadline.min(next_probe);
                if bookmarks {
                    wake = wake.min(next_bookmark);
                }
                if !actions.is_empty() || behind || st.rv > cursor || now >= wake {
                    let pending = if behind || st.rv == cursor {
                        Vec::new()
                    } else {
                        st.changes_after(kind, cursor)
                    };
                    break (pending, actions, st.rv, behind);
                }
                st = inner
                    .changed
                    .wait_timeout(st, wake - now)
                    .map(|r| r.0)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        if behind {
            // Fell out of the history window: the real server drops such a watcher by ending
            // its stream; the client's re-watch from its last version then gets 410.
            ch.end();
            ch.flush_to(conn)?;
            return Ok(true);
        }
        let marker = if pending.is_empty() {
            None
        } else {
            inner.utf8_marker()
        };
        for c in &pending {
            if let Some((typ, obj)) = through_filter(c, &filter, kind) {
                let line = event_line(typ.as_str(), kind, &obj);
                match &marker {
                    Some(m) => ch.line(&corrupt_utf8(line, m.as_bytes())),
                    None => ch.line(&line),
                }
                if ch.buf.len() >= FLUSH_BYTES {
                    ch.flush_to(conn)?;
                }
            }
        }
        drop(pending);
        cursor = now_rv;
        ch.flush_to(conn)?;

        for a in actions {
            match a {
                WatchAction::CloseMidChunk => {
                    let line = bookmark_line(kind, cursor, false);
                    ch.buf
                        .extend_from_slice(format!("{:x}\r\n", line.len()).as_bytes());
                    ch.buf.extend_from_slice(&line[..line.len() / 2]);
                    ch.flush_to(conn)?;
                    // Drop TCP without close_notify: the client sees a truncated chunk.
                    conn.cut();
                    return Ok(false);
                }
                WatchAction::Garbage => {
                    ch.line(b"<html><body><h1>502 Bad Gateway</h1></body></html>\n");
                    ch.flush_to(conn)?;
                }
                WatchAction::ErrorGone => {
                    let status = status_json(
                        410,
                        "Expired",
                        "The resourceVersion for the provided watch is too old.",
                        None,
                    );
                    ch.line(&error_line(&status));
                    ch.end();
                    ch.flush_to(conn)?;
                    return Ok(true);
                }
                WatchAction::End => {
                    ch.end();
                    ch.flush_to(conn)?;
                    return Ok(true);
                }
            }
        }

        let now = Instant::now();
        if now >= deadline {
            if bookmarks {
                ch.line(&bookmark_line(kind, cursor, false));
            }
            ch.end();
            ch.flush_to(conn)?;
            return Ok(true);
        }
        if bookmarks && now >= next_bookmark {
            ch.line(&bookmark_line(kind, cursor, false));
            ch.flush_to(conn)?;
            next_bookmark = now + inner.opts.bookmark_interval;
        }
        if now >= next_probe {
            if conn.client_gone() {
                return Ok(false);
            }
            next_probe = now + LIVENESS_PERIOD;
        }
    }
}

/// `line` with each `marker` replaced by two bytes that are not UTF-8.
fn corrupt_utf8(line: Vec<u8>, marker: &[u8]) -> Vec<u8> {
    if marker.is_empty() {
        return line;
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i..].starts_with(marker) {
            out.extend_from_slice(&[0xff, 0xfe]);
            i += marker.len();
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

fn write_watch_head(conn: &mut Conn) -> io::Result<()> {
    let audit = new_uid();
    conn.start_chunked(
        200,
        &[
            ("Audit-Id", &audit),
            ("Cache-Control", "no-cache, private"),
            ("Content-Type", "application/json"),
        ],
    )
}

/// One watch event line: `{"type":…,"object":…}`.
fn event_line(typ: &str, kind: Kind, obj: &Obj) -> Vec<u8> {
    let mut l = Vec::with_capacity(obj.item.len() + 64);
    l.extend_from_slice(b"{\"type\":\"");
    l.extend_from_slice(typ.as_bytes());
    l.extend_from_slice(b"\",\"object\":");
    obj.write_full(kind.name(), &mut l);
    l.extend_from_slice(b"}\n");
    l
}
