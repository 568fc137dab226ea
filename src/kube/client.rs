/*!
The Kubernetes HTTP client: one ureq `Agent` (shared connection pool, safe to
clone across threads) plus the credentials, and the few calls the daemon
makes: LIST a page of pods, open a WATCH, POST a review, and plain JSON
GET/POST/PUT of single objects (the leader Lease, Events).

Every non-2xx answer becomes `Error::Status` with the API's own `Status`
reason and message (and `Retry-After` when given). A 401 makes the
authenticator forget its token (re-read the file, re-run the exec plugin) and
the request is tried once more, which is how rotated service-account tokens
and expired cloud tokens recover without a restart.
*/

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::auth::{self, Authenticator};
use super::config::ClusterConfig;
use super::node_types::NodeList;
use super::tls;
use super::types::{ObjectList, PodList, Status};

/// Most a Status error body is read for its message.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Most one LIST page or review answer may be.
const MAX_RESPONSE_BODY: u64 = 256 * 1024 * 1024;
/// Longest wait for response headers (a watch's headers come at once; its
/// body may then run for minutes).
const MAX_HEADER_WAIT: Duration = Duration::from_secs(60);
/// Longest watch line accepted (etcd caps objects at ~1.5 MB; allow slack).
pub const MAX_WATCH_LINE: usize = 16 * 1024 * 1024;
/// Most a single object (GET/POST/PUT answer) may be.
const MAX_OBJECT_BODY: u64 = 4 * 1024 * 1024;

/// The verb of a request that carries a JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Post,
    Put,
}

#[derive(Debug)]
pub enum Error {
    /// Could not get credentials (token file, exec plugin).
    Auth(auth::Error),
    /// Connection, TLS or timeout failure.
    Transport(ureq::Error),
    /// The API server answered with a non-2xx status.
    Status {
        code: u16,
        reason: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 2xx answer that could not be decoded.
    Decode { what: &'static str, detail: String },
}

impl Error {
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Not `credentials: …`: the log redactor would take that for a
            // credential and hide the reason.
            Error::Auth(e) => write!(f, "getting credentials failed: {e}"),
            Error::Transport(e) => write!(f, "connection: {e}"),
            Error::Status {
                code,
                reason,
                message,
                ..
            } => {
                write!(f, "API server answered {code}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Error::Decode { what, detail } => write!(f, "could not decode {what}: {detail}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Auth(e) => Some(e),
            Error::Transport(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    server: String,
    auth: Authenticator,
}

/// A watch response body, read line by line.
pub struct WatchBody {
    reader: BufReader<ureq::BodyReader<'static>>,
}

impl WatchBody {
    /// Reads the next line into `buf` (cleared first, newline stripped).
    /// `Ok(false)` at the normal end of the stream.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.clear();
        let n = (&mut self.reader)
            .take(MAX_WATCH_LINE as u64 + 1)
            .read_until(b'\n', buf)
            .map_err(timed_out)?;
        if n == 0 {
            return Ok(false);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_WATCH_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("watch line longer than {MAX_WATCH_LINE} bytes"),
            ));
        }
        Ok(true)
    }
}

/// ureq reports a read timeout as an `io::Error` of kind `Other` wrapping
/// `ureq::Error::Timeout`: give it the kind `TimedOut` callers can test.
fn timed_out(e: std::io::Error) -> std::io::Error {
    let timeout = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)));
    if timeout && e.kind() != std::io::ErrorKind::TimedOut {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e.to_string())
    } else {
        e
    }
}

impl Client {
    pub fn new(cfg: &ClusterConfig) -> Result<Client, tls::Error> {
        Ok(Client {
            agent: tls::agent(&cfg.tls, &cfg.server)?,
            server: cfg.server.trim_end_matches('/').to_string(),
            auth: Authenticator::new(cfg.auth.clone()),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a GET (no body) or a POST/PUT (a JSON body); retries once after
    /// a 401 with fresh credentials. `overall`, when set, bounds the whole
    /// request (connect, send, answer), for callers that must not hang.
    fn send(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(Write, &[u8])>,
        body_timeout: Option<Duration>,
        overall: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        self.send_idle(path, query, body, body_timeout, overall, None)
    }

    /// `send`, where `idle` (when set) bounds each read of the socket: a
    /// connection silent that long fails with a timeout.
    fn send_idle(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<(Write, &[u8])>,
        body_timeout: Option<Duration>,
        overall: Option<Duration>,
        idle: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, Error> {
        let url = format!("{}{}", self.server, path);
        for attempt in 0..2 {
            let header = self.auth.header().map_err(Error::Auth)?;
            let resp = match body {
                None => {
                    let mut req = self.agent.get(&url).header("Accept", "application/json");
                    for (k, v) in query {
                        req = req.query(*k, *v);
                    }
                    if let Some(h) = &header {
                        req = req.header("Authorization", h.expose());
                    }
                    req.config()
                        .timeout_recv_response(body_timeout.map(|t| t.min(MAX_HEADER_WAIT)))
                        .timeout_recv_body(body_timeout)
                        .timeout_global(overall)
                        .timeout_per_read(idle)
                        .build()
                        .call()
                }
                Some((verb, b)) => {
                    let req = match verb {
                        Write::Post => self.agent.post(&url),
                        Write::Put => self.agent.put(&url),
                    };
                    let mut req = req
                        .header("Accept", "application/json")
                        .header("Content-Type", "application/json");
                    for (k, v) in query {
                        req = req.query(*k, *v);
                    }
                    if let Some(h) = &header {
                        req = req.header("Authorization", h.expose());
                    }
                    req.config()
                        .timeout_recv_response(body_timeout.map(|t| t.min(MAX_HEADER_WAIT)))
                        .timeout_recv_body(body_timeout)
                        .timeout_global(overall)
                        .timeout_per_read(idle)
                        .build()
                        .send(b)
                }
            }
            .map_err(Error::Transport)?;
            let code = resp.status().as_u16();
            if code == 401 && attempt == 0 {
                log::debug!(
                    "401 from API server for {path}; refreshing credentials and retrying once"
                );
                self.auth.invalidate();
                continue;
            }
            if (200..300).contains(&code) {
                return Ok(resp);
            }
            return Err(status_error(resp));
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &'static str,
    ) -> Result<T, Error> {
        let resp = self.send(path, query, None, Some(Duration::from_secs(120)), None)?;
        let reader = resp
            .into_body()
            .into_with_config()
            .limit(MAX_RESPONSE_BODY)
            .reader();
        serde_json::from_reader(BufReader::with_capacity(64 * 1024, reader)).map_err(|e| {
            Error::Decode {
                what,
                detail: e.to_string(),
            }
        })
    }

    /// One page of a pod LIST.
    pub fn list_pods(&self, path: &str, query: &[(&str, &str)]) -> Result<PodList, Error> {
        self.get_json(path, query, "pod list")
    }

    /// One page of a node LIST.
    pub fn list_nodes(&self, path: &str, query: &[(&str, &str)]) -> Result<NodeList, Error> {
        self.get_json(path, query, "node list")
    }

    /// One page of a LIST of other objects (namespaces).
    pub fn list_objects(&self, path: &str, query: &[(&str, &str)]) -> Result<ObjectList, Error> {
        self.get_json(path, query, "object list")
    }

    /// One object as untyped JSON (the `kube-system` namespace, whose UID
    /// is the OpsCtrl cluster id).
    pub fn get_json_value(&self, path: &str) -> Result<serde_json::Value, Error> {
        self.get_json(path, &[], "object")
    }

    /// Opens a WATCH; the caller reads lines until the server ends it.
    /// `max_duration` bounds the whole stream; `idle` each wait for bytes,
    /// so a connection that went silent (no event, no bookmark) fails with
    /// `ErrorKind::TimedOut` instead of hanging until `max_duration`.
    pub fn watch(
        &self,
        path: &str,
        query: &[(&str, &str)],
        max_duration: Duration,
        idle: Duration,
    ) -> Result<WatchBody, Error> {
        let resp = self.send_idle(path, query, None, Some(max_duration), None, Some(idle))?;
        Ok(WatchBody {
            reader: BufReader::with_capacity(16 * 1024, resp.into_body().into_reader()),
        })
    }

    /// A GET for enrichment: at most `limit` bytes of the body, the whole
    /// exchange within `timeout`, so a slow API server cannot stall a
    /// delivery worker.
    pub fn get_bounded(
        &self,
        path: &str,
        query: &[(&str, &str)],
        timeout: Duration,
        limit: u64,
    ) -> Result<Vec<u8>, Error> {
        let resp = self.send(path, query, None, Some(timeout), Some(timeout))?;
        let mut body = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(limit)
            .reader()
            .read_to_end(&mut body)
            .map_err(|e| Error::Decode {
                what: "response body",
                detail: e.to_string(),
            })?;
        Ok(body)
    }

    /// POSTs a JSON document and decodes the JSON answer (30 s in all).
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        what: &'static str,
    ) -> Result<T, Error> {
        self.post(path, body, Duration::from_secs(30), what)
    }
}

impl Client {
    /// GETs one object, the whole request bounded by `timeout`.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
        what: &'static str,
    ) -> Result<T, Error> {
        let resp = self.send(path, &[], None, Some(timeout), Some(timeout))?;
        decode_object(resp, what)
    }

    /// POSTs (creates) one object and decodes the answer, bounded by `timeout`.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
        what: &'static str,
    ) -> Result<T, Error> {
        self.write(Write::Post, path, body, timeout, what)
    }

    /// PUTs (replaces) one object and decodes the answer, bounded by
    /// `timeout`. The body's `metadata.resourceVersion` makes it conditional:
    /// the server answers 409 Conflict when the object changed since.
    pub fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
        what: &'static str,
    ) -> Result<T, Error> {
        self.write(Write::Put, path, body, timeout, what)
    }

    fn write<T: DeserializeOwned>(
        &self,
        verb: Write,
        path: &str,
        body: &serde_json::Value,
        timeout: Duration,
        what: &'static str,
    ) -> Result<T, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Decode {
            what,
            detail: e.to_string(),
        })?;
        let resp = self.send(
            path,
            &[],
            Some((verb, &bytes)),
            Some(timeout),
            Some(timeout),
        )?;
        decode_object(resp, what)
    }
}

/// Decodes a single object's JSON answer (size-capped).
fn decode_object<T: DeserializeOwned>(
    resp: ureq::http::Response<ureq::Body>,
    what: &'static str,
) -> Result<T, Error> {
    let reader = resp
        .into_body()
        .into_with_config()
        .limit(MAX_OBJECT_BODY)
        .reader();
    serde_json::from_reader(BufReader::new(reader)).map_err(|e| Error::Decode {
        what,
        detail: e.to_string(),
    })
}

/// Turns a non-2xx answer into `Error::Status`, using the API's Status body
/// when there is one.
fn status_error(resp: ureq::http::Response<ureq::Body>) -> Error {
    let code = resp.status().as_u16();
    let retry_after = crate::net::http::retry_after(resp.headers());
    let canonical = resp.status().canonical_reason().unwrap_or("").to_string();
    let mut body = Vec::new();
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(MAX_ERROR_BODY)
        .reader()
        .read_to_end(&mut body);
    let (reason, message) = match serde_json::from_slice::<Status>(&body) {
        Ok(s) if !s.reason.is_empty() || !s.message.is_empty() => (s.reason, s.message),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(200).collect();
            (canonical, text)
        }
    };
    Error::Status {
        code,
        reason,
        message,
        retry_after,
    }
}
