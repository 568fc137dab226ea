/*!
The health and metrics endpoint: `/healthz`, `/readyz`, `/health`, `/metrics`.

Hand-written in tiny_http's shape, because it needs four GET routes and no
more. A liveness probe must be answered whatever other clients do (any pod
the NetworkPolicy lets in, or a misbehaving scraper), so the design is
*one thread per connection, capped, with a whole-request deadline, shedding
the oldest idle connection first*:

- The accept thread never reads from a client: it registers the connection
  and starts a short-lived thread (64 KiB stack) for it, so a well-behaved
  client's request is read the moment it arrives, never queued behind a
  silent or slow one (the old fixed pool of 2 workers was: 5 idle
  connections starved every probe).
- At most `MAX_CONNECTIONS` connections are open. When one more arrives,
  the oldest connection that has not yet sent its whole request head is
  shut down (its thread wakes and ends): idle and slowloris connections go
  first, and a probe, which sends its request at once, is answered long
  before 64 newer connections could push it out (the accept thread reads
  what arrived with the connection, so a complete request is marked
  unsheddable at once). Threads, sockets and memory are bounded: at most
  `2 × MAX_CONNECTIONS` threads counting shed ones not yet ended, two
  descriptors each (the socket and the copy used to shut it down). std's
  listen backlog stays at 128 (raising it needs `unsafe`, which the crate
  forbids): a burst of more than 128 connections faster than the accept
  thread takes them can make the kernel drop a probe's SYN, which the
  client retransmits after 1 s.
- Each connection gets one request, then is closed; reading the head and
  writing the answer share one deadline (`REQUEST_DEADLINE`) and the head a
  size cap, so a client sending a byte a second holds its slot at most that
  long even when nothing newer pushes it out.

Why not a poll loop: std has no `poll(2)`, and polling non-blocking sockets
on a timer would wake the CPU all the time on an idle edge node (or add a
crate for `libc::poll`). Threads cost nothing while idle, and 64 of them are
a few hundred KiB. Nothing here can block the watches or the classification
thread.
*/

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::diagnose::redact::redact_secrets;
use crate::metrics::{BackendStatus, Metrics};
use crate::util::sync::lock;
use crate::util::time::{format_rfc3339, unix_now};

/// Connections open at once (each one thread and two descriptors).
pub const MAX_CONNECTIONS: usize = 64;
/// Reading one request and writing its answer; the kubelet's probe timeout is 1 s.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
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
        "/healthz" => match metrics.watchdog.stalled(crate::util::time::now_ms()) {
            None => reply(200, "text/plain; charset=utf-8", "ok\n"),
            Some(ms) => reply(
                503,
                "text/plain; charset=utf-8",
                format!(
                    "stuck: the classification thread has made no progress for {} s\n",
                    ms / 1000
                ),
            ),
        },
        "/readyz" => match metrics.readiness() {
            Ok(()) => reply(200, "text/plain; charset=utf-8", "ready\n"),
            Err(why) => {
                let why: Vec<String> = why.iter().map(|w| shown(w)).collect();
                reply(
                    503,
                    "text/plain; charset=utf-8",
                    format!("not ready:\n{}\n", why.join("\n")),
                )
            }
        },
        "/health" => health(metrics),
        _ => reply(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render_prometheus(),
        ),
    }
}

/// Most characters of an error shown on /health and /readyz.
const MAX_SHOWN_ERROR: usize = 200;

/// Error text for the unauthenticated endpoints: an API server's or a
/// backend's message is whatever they put there (a password included), so
/// it is redacted and cut short.
fn shown(text: &str) -> String {
    let r = redact_secrets(text);
    let mut t: String = r.chars().take(MAX_SHOWN_ERROR).collect();
    if t.len() < r.len() {
        t.push('…');
    }
    t
}

/// The backend registration for /health: the pending claim URL (it carries
/// the cluster's id) only with `HEALTH_SHOW_CLAIM_URL`.
fn backend_status(backend: &BackendStatus, claim_url_shown: bool) -> String {
    match backend {
        BackendStatus::Pending { .. } if !claim_url_shown => "pending".to_string(),
        other => shown(&other.to_string()),
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
        // Open incidents a silence keeps from the sinks now (still counted above).
        "incidentsSilenced": c.incidents_silenced.load(Relaxed),
        // The OpsCtrl backend's registration (`off` when not configured); a
        // pending claim is not unhealthy, so its URL is shown here instead.
        "backend": {
            "status": backend_status(&backend, metrics.claim_url_shown()),
            "claimUrl": backend.claim_url().filter(|_| metrics.claim_url_shown()),
        },
        "streams": streams.iter().map(|s| json!({
            "name": s.name,
            "phase": s.phase.as_str(),
            "consecutiveFailures": s.consecutive_failures,
            "lastError": s.last_error.as_deref().map(shown),
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

/// What a client sent right away, read by the accept thread without
/// waiting: a probe's whole request usually, so it is marked `answering`
/// (and can no longer be shed) before its thread even starts.
fn read_ready(stream: &TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    if stream.set_nonblocking(true).is_ok() {
        let mut chunk = [0u8; 1024];
        if let Ok(n) = (&*stream).read(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    let _ = stream.set_nonblocking(false);
    buf
}

fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n")
}

/// Reads the request head (after `buf`, what was read already) before
/// `deadline`; returns (method, target).
fn read_head(
    stream: &mut TcpStream,
    mut buf: Vec<u8>,
    deadline: Instant,
) -> Result<(String, String), u16> {
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

/// One connection: read the head (`first`: what came with the connection),
/// answer, close. `answering` is called once the head is in (the connection
/// may no longer be shed).
fn handle(mut stream: TcpStream, first: Vec<u8>, metrics: &Metrics, answering: impl FnOnce()) {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let (r, head_only) = match read_head(&mut stream, first, deadline) {
        Ok((method, target)) => {
            answering();
            (route(&method, &target, metrics), method == "HEAD")
        }
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
    // What is left of the deadline, but always a moment to write a small answer.
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(left.max(Duration::from_millis(100))));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

/// An open connection, as the accept thread sees it.
struct Open {
    id: u64,
    /// A copy of the socket, to shut it down when shedding.
    socket: TcpStream,
    /// Its request head is in; it is being answered and is never shed.
    answering: bool,
    /// Shut down to make room; its thread is on its way out.
    shed: bool,
}

/// The connections whose thread is alive, oldest first.
#[derive(Default)]
struct Conns {
    open: Mutex<VecDeque<Open>>,
}

impl Conns {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Open>> {
        lock(&self.open)
    }

    /// Makes room for one more, shedding the oldest connection still
    /// waiting for its request; false (refused) when all `cap` are being
    /// answered, or when shed threads have not ended yet and `2 × cap`
    /// threads are alive, so threads and descriptors stay bounded.
    fn admit(&self, id: u64, socket: TcpStream, answering: bool, cap: usize) -> bool {
        let mut open = self.lock();
        let live = open.iter().filter(|c| !c.shed).count();
        if live >= cap {
            let Some(old) = open.iter_mut().find(|c| !c.answering && !c.shed) else {
                return false;
            };
            // Wakes its thread (the read returns 0); its slot is free now.
            let _ = old.socket.shutdown(Shutdown::Both);
            old.shed = true;
        }
        if open.len() >= 2 * cap {
            return false;
        }
        open.push_back(Open {
            id,
            socket,
            answering,
            shed: false,
        });
        true
    }

    fn answering(&self, id: u64) {
        if let Some(c) = self.lock().iter_mut().find(|c| c.id == id) {
            c.answering = true;
        }
    }

    fn close(&self, id: u64) {
        let mut open = self.lock();
        if let Some(i) = open.iter().position(|c| c.id == id) {
            open.remove(i);
        }
    }

    /// Connections not shed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().iter().filter(|c| !c.shed).count()
    }
}

/// Accepts forever, one thread per connection, at most `cap` open.
fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, conns: Arc<Conns>, cap: usize) {
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // Out of descriptors (EMFILE) or memory: the kernel keeps
                // the backlog; try again shortly instead of spinning.
                thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let Ok(copy) = conn.try_clone() else { continue };
        let first = read_ready(&conn);
        if !conns.admit(id, copy, head_complete(&first), cap) {
            continue;
        }
        let (m, c) = (metrics.clone(), conns.clone());
        let spawned = thread::Builder::new()
            .name("http".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                handle(conn, first, &m, || c.answering(id));
                c.close(id);
            });
        if spawned.is_err() {
            conns.close(id);
        }
    }
}

/// Binds the port (dual-stack when the host has IPv6, else IPv4) and serves
/// in background threads. Returns the bound address.
pub fn start(port: u16, metrics: Arc<Metrics>) -> io::Result<SocketAddr> {
    start_capped(port, metrics, MAX_CONNECTIONS).map(|(a, _)| a)
}

fn start_capped(
    port: u16,
    metrics: Arc<Metrics>,
    cap: usize,
) -> io::Result<(SocketAddr, Arc<Conns>)> {
    let listener =
        TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port)))?;
    let addr = listener.local_addr()?;
    let conns = Arc::new(Conns::default());
    let c = conns.clone();
    thread::Builder::new()
        .name("http-accept".into())
        .stack_size(64 * 1024)
        .spawn(move || accept_loop(listener, metrics, c, cap.max(1)))?;
    Ok((addr, conns))
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
    fn healthz_fails_when_the_classification_thread_is_stuck() {
        let m = metrics();
        let now = crate::util::time::now_ms();
        m.watchdog.beat(now - 120_000);
        assert_eq!(route("GET", "/healthz", &m).status, 200, "watchdog off");
        m.watchdog.set_limit(Duration::from_secs(60));
        let r = route("GET", "/healthz", &m);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("no progress for 120 s"), "{}", r.body);
        m.watchdog.beat(now);
        assert_eq!(route("GET", "/healthz", &m).status, 200);
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
        assert_eq!(r.status, 200, "a pending claim is not unhealthy");
        // The claim URL carries the cluster's id: only shown when asked for.
        assert_eq!(v["backend"], json!({"status": "pending", "claimUrl": null}));
        assert!(!r.body.contains("clu_1"), "{}", r.body);
        m.show_claim_url(true);
        let v: serde_json::Value = serde_json::from_str(&route("GET", "/health", &m).body).unwrap();
        assert_eq!(v["backend"]["claimUrl"], url);
        assert_eq!(v["backend"]["status"], format!("pending: claim at {url}"));
    }

    #[test]
    fn health_and_readiness_show_errors_redacted_and_short() {
        let m = metrics();
        let long = "x".repeat(500);
        m.update_stream(0, |s| {
            s.phase = crate::metrics::Phase::Retrying;
            s.consecutive_failures = 1;
            s.last_error = Some(format!(
                "API server answered 500: db password=hunter2-LEAK token: abc123LEAK {long}"
            ));
        });
        for path in ["/health", "/readyz"] {
            let body = route("GET", path, &m).body;
            assert!(!body.contains("hunter2-LEAK"), "{path}: {body}");
            assert!(!body.contains("abc123LEAK"), "{path}: {body}");
            assert!(body.contains("API server answered 500"), "{path}: {body}");
            assert!(!body.contains(&long), "{path} is cut short: {body}");
        }
    }

    fn get(port: u16, path: &str) -> String {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        body
    }

    #[test]
    fn silent_clients_do_not_block_other_requests() {
        let m = Arc::new(metrics());
        let port = start(0, m).unwrap().port();
        // More silent connections than the old pool had workers.
        let _idle: Vec<TcpStream> = (0..10)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let body = get(port, "/healthz");
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        // Garbage gets a 400, not a hang or a crash.
        let mut g = TcpStream::connect(("127.0.0.1", port)).unwrap();
        g.write_all(b"\x16\x03\x01garbage\r\n\r\n").unwrap();
        let mut body = String::new();
        g.read_to_string(&mut body).unwrap();
        assert!(body.starts_with("HTTP/1.1 400"), "{body}");
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_is_shed() {
        let m = Arc::new(metrics());
        let (addr, conns) = start_capped(0, m, 4).unwrap();
        let port = addr.port();
        let mut idle: Vec<TcpStream> = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
            // Registered in the order they connected.
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(
            (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(10));
                conns.len() == 4
            }),
            "4 connections registered"
        );
        // A fifth, well-behaved client is answered at once...
        let body = get(port, "/healthz");
        assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
        // ...and the oldest idle one was closed to make room for it.
        let mut buf = [0u8; 64];
        idle[0]
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(idle[0].read(&mut buf).unwrap_or(usize::MAX), 0, "shed: EOF");
        idle[3]
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        // Still open (waiting, or answered 408 at its deadline), not shed.
        assert!(
            !matches!(idle[3].read(&mut buf), Ok(0)),
            "the newest is not shed"
        );
        assert!(conns.len() <= 4);
    }
}
