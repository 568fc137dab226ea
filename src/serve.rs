/*!
The health and metrics endpoint: `/healthz`, `/readyz`, `/health`, `/metrics`.

Hand-written in tiny_http's shape, because it needs four GET routes and no
more: one accept thread hands connections to a fixed pool of `WORKERS`
threads through a bounded queue. Each connection gets one request and is
closed; reading the request head has a total deadline and a size cap, so a
slow or hostile client costs a worker at most `REQUEST_DEADLINE`, and when
the queue is full new connections are closed at once. Nothing here can block
the watches or the classification thread.
*/

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::metrics::Metrics;
use crate::util::sync::lock;
use crate::util::time::{format_rfc3339, unix_now};

const WORKERS: usize = 2;
const QUEUE: usize = 32;
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
const MAX_HEAD: usize = 8 * 1024;

/// A response: status, content type and body.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `Allow` header for 405.
    pub allow: Option<&'static str>,
}

fn reply(status: u16, content_type: &'static str, body: impl Into<String>) -> Reply {
    Reply {
        status,
        content_type,
        body: body.into(),
        allow: None,
    }
}

/// Routes one request (pure apart from reading `metrics`).
pub fn route(method: &str, target: &str, metrics: &Metrics) -> Reply {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let known = matches!(path, "/healthz" | "/readyz" | "/health" | "/metrics");
    if !known {
        return reply(404, "text/plain; charset=utf-8", "not found\n");
    }
    if method != "GET" && method != "HEAD" {
        let mut r = reply(405, "text/plain; charset=utf-8", "method not allowed\n");
        r.allow = Some("GET, HEAD");
        return r;
    }
    match path {
        "/healthz" => reply(200, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" => match metrics.readiness() {
            Ok(()) => reply(200, "text/plain; charset=utf-8", "ready\n"),
            Err(why) => reply(
                503,
                "text/plain; charset=utf-8",
                format!("not ready:\n{}\n", why.join("\n")),
            ),
        },
        "/health" => health(metrics),
        _ => reply(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render_prometheus(),
        ),
    }
}

/// The original daemon's `/health` document, with real values; 503 when unhealthy.
fn health(metrics: &Metrics) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let streams = metrics.streams();
    let healthy = metrics.healthy();
    let c = &metrics.counters;
    let last_success = streams.iter().filter_map(|s| s.last_success).max();
    let failures = streams
        .iter()
        .map(|s| s.consecutive_failures)
        .max()
        .unwrap_or(0);
    let backoff_ms = streams.iter().map(|s| s.backoff_ms).max().unwrap_or(0);
    let backend = metrics.backend_status();
    let namespaces: Vec<String> = streams
        .iter()
        .map(|s| s.namespace.clone().unwrap_or_else(|| "*".into()))
        .collect();
    let hit_rate = c.llm_cache_hit_rate();
    let doc = json!({
        "isHealthy": healthy,
        "connectionState": {
            "isHealthy": healthy,
            "lastSuccessfulConnection": last_success.map(format_rfc3339),
            "consecutiveFailures": failures,
            "reconnectionBackoffMs": backoff_ms,
        },
        "metrics": {
            // Incidents opened (one per real problem), not watch events as
            // the original counted.
            "totalFailuresDetected": c.incidents_opened.load(Relaxed),
            // Requests sent to the LLM: the rules diagnose every incident
            // locally, the LLM is the call that costs and that the cache saves.
            "diagnosisCallsExecuted": c.llm_requests.load(Relaxed),
            // The LLM answer cache's hits over lookups; null before the first
            // lookup (always, without an LLM) rather than an invented rate.
            "cacheHitRate": hit_rate,
            "reconnectionAttempts": c.watch_restarts.load(Relaxed) + c.relists.load(Relaxed),
            "lastHealthCheck": format_rfc3339(unix_now()),
        },
        "activeNamespaces": namespaces,
        "cacheStats": { "entries": c.llm_cache_entries.load(Relaxed), "hitRate": hit_rate },
        "podsTracked": c.pods_tracked.load(Relaxed),
        "incidentsOpen": c.incidents_open.load(Relaxed),
        // The OpsCtrl backend's registration (`off` when not configured); a
        // pending claim is not unhealthy, so its URL is shown here instead.
        "backend": {
            "status": backend.to_string(),
            "claimUrl": backend.claim_url(),
        },
        "streams": streams.iter().map(|s| json!({
            "name": s.name,
            "phase": s.phase.as_str(),
            "consecutiveFailures": s.consecutive_failures,
            "lastError": s.last_error,
        })).collect::<Vec<_>>(),
    });
    reply(
        if healthy { 200 } else { 503 },
        "application/json",
        doc.to_string(),
    )
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Reads the request head within the deadline; returns (method, target).
fn read_head(stream: &mut TcpStream) -> Result<(String, String), u16> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            break;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(408);
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            Ok(0) => return Err(400),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(408),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if v.starts_with("HTTP/1.") && t.starts_with('/') => {
            Ok((m.to_string(), t.to_string()))
        }
        _ => Err(400),
    }
}

fn handle(mut stream: TcpStream, metrics: &Metrics) {
    let _ = stream.set_write_timeout(Some(REQUEST_DEADLINE));
    let (r, head_only) = match read_head(&mut stream) {
        Ok((method, target)) => (route(&method, &target, metrics), method == "HEAD"),
        Err(code) => (
            reply(
                code,
                "text/plain; charset=utf-8",
                format!("{}\n", status_text(code)),
            ),
            false,
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        r.status,
        status_text(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(allow) = r.allow {
        out.push_str(&format!("Allow: {allow}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&r.body);
    }
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

fn worker(rx: Arc<Mutex<Receiver<TcpStream>>>, metrics: Arc<Metrics>) {
    loop {
        let next = lock(&rx).recv();
        match next {
            Ok(stream) => handle(stream, &metrics),
            Err(_) => return,
        }
    }
}

/// Binds the port (dual-stack when the host has IPv6, else IPv4) and serves
/// in background threads. Returns the bound address.
pub fn start(port: u16, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    let listener =
        TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port)))?;
    let addr = listener.local_addr()?;
    let (tx, rx): (SyncSender<TcpStream>, Receiver<TcpStream>) = sync_channel(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..WORKERS {
        let (rx, m) = (rx.clone(), metrics.clone());
        thread::Builder::new()
            .name(format!("http-{i}"))
            .stack_size(64 * 1024)
            .spawn(move || worker(rx, m))?;
    }
    thread::Builder::new()
        .name("http-accept".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                match tx.try_send(conn) {
                    Ok(()) => {}
                    // Overloaded: close this one rather than queue without bound.
                    Err(TrySendError::Full(c)) => drop(c),
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
        })?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{BackendStatus, Phase};
    use std::sync::atomic::Ordering::Relaxed;

    fn metrics() -> Metrics {
        Metrics::new(&[("all namespaces".into(), None)], 2)
    }

    #[test]
    fn routes_answer_as_documented() {
        let m = metrics();
        assert_eq!(route("GET", "/healthz", &m).status, 200);
        let r = route("GET", "/readyz", &m);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("initial list not finished"));
        m.update_stream(0, |s| s.phase = Phase::Streaming);
        assert_eq!(route("GET", "/readyz?verbose", &m).status, 200);
        assert_eq!(route("GET", "/nope", &m).status, 404);
        let r = route("POST", "/healthz", &m);
        assert_eq!((r.status, r.allow), (405, Some("GET, HEAD")));
        assert!(
            route("GET", "/metrics", &m)
                .body
                .contains("opsctrl_pods_tracked 0")
        );
    }

    #[test]
    fn health_keeps_the_original_shape_and_turns_503_when_unhealthy() {
        let m = metrics();
        let r = route("GET", "/health", &m);
        assert_eq!(r.status, 200);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        for k in [
            "isHealthy",
            "connectionState",
            "metrics",
            "activeNamespaces",
            "cacheStats",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["activeNamespaces"], json!(["*"]));
        assert_eq!(v["streams"][0]["phase"], "listing");
        m.update_stream(0, |s| s.phase = Phase::Retrying);
        let v: serde_json::Value = serde_json::from_str(&route("GET", "/health", &m).body).unwrap();
        assert_eq!(v["streams"][0]["phase"], "retrying");
        m.update_stream(0, |s| s.consecutive_failures = 2);
        let r = route("GET", "/health", &m);
        assert_eq!(r.status, 503);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["connectionState"]["consecutiveFailures"], 2);
    }

    #[test]
    fn health_reports_the_llm_calls_and_its_cache() {
        let m = metrics();
        let get = |m: &Metrics| -> serde_json::Value {
            serde_json::from_str(&route("GET", "/health", m).body).unwrap()
        };
        let v = get(&m);
        assert_eq!(v["metrics"]["diagnosisCallsExecuted"], 0);
        assert_eq!(v["metrics"]["cacheHitRate"], json!(null), "no lookup yet");
        assert_eq!(v["cacheStats"], json!({"entries": 0, "hitRate": null}));

        let c = &m.counters;
        c.llm_requests.store(3, Relaxed);
        c.llm_cache_misses.store(3, Relaxed);
        c.llm_cache_hits.store(1, Relaxed);
        c.llm_cache_entries.store(2, Relaxed);
        let v = get(&m);
        assert_eq!(v["metrics"]["diagnosisCallsExecuted"], 3);
        assert_eq!(v["metrics"]["cacheHitRate"], 0.25);
        assert_eq!(v["cacheStats"], json!({"entries": 2, "hitRate": 0.25}));
    }

    #[test]
    fn health_shows_the_backend_registration_and_its_claim_url() {
        let m = metrics();
        let v: serde_json::Value = serde_json::from_str(&route("GET", "/health", &m).body).unwrap();
        assert_eq!(v["backend"], json!({"status": "off", "claimUrl": null}));
        let url = "https://app.opsctrl.dev/claim?cluster=clu_1";
        m.set_backend_status(BackendStatus::Pending {
            claim_url: url.into(),
            note: None,
        });
        let r = route("GET", "/health", &m);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["backend"]["claimUrl"], url);
        assert_eq!(r.status, 200, "a pending claim is not unhealthy");
        assert_eq!(v["backend"]["status"], format!("pending: claim at {url}"));
    }

    #[test]
    fn a_silent_client_does_not_block_other_requests() {
        let m = Arc::new(metrics());
        let addr = start(0, m).unwrap();
        let port = addr.port();
        // Occupy both workers with connections that never send anything.
        let _idle: Vec<TcpStream> = (0..WORKERS)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        // Garbage gets a 400, not a hang or a crash.
        let mut g = TcpStream::connect(("127.0.0.1", port)).unwrap();
        g.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
        let mut body = String::new();
        g.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 400"), "{body}");
    }
}
