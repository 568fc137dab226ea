/*!
One ureq `Agent` for outgoing calls. Public CAs come from `webpki-roots`
(compiled in), so a `FROM scratch` image needs no CA bundle. Every request has
a connect timeout and an overall deadline; non-2xx statuses are returned as
values so each caller decides what is retryable.
*/

use std::io::Read;
use std::time::Duration;

use serde_json::Value;

/// Most of an answer body read (Slack, webhooks, LLM, backend answers are small).
pub const MAX_BODY: u64 = 1024 * 1024;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An agent whose requests give up after `timeout` in all.
pub fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A redirect is never followed: a 302 would turn a POST into a GET
        // (the alert lost), a loop would repeat it, and a redirect to
        // another host would hand it (and an LLM answer) to someone else.
        // The 3xx comes back as an answer, an error naming its status.
        .max_redirects(0)
        .user_agent(concat!("opsctrl-daemon/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// An answer: its status, `Retry-After` (seconds form) and up to `MAX_BODY` of its body.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The body, shortened for a log line.
    pub fn body_excerpt(&self) -> String {
        let t = self.body.trim();
        let mut out: String = t.chars().take(300).collect();
        if out.len() < t.len() {
            out.push('…');
        }
        out
    }
}

/// `Retry-After` in its seconds form (the HTTP-date form is rare from the
/// API server, Slack and webhooks, and is ignored).
pub fn retry_after(headers: &ureq::http::HeaderMap) -> Option<Duration> {
    headers
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Reads what matters of a response.
pub fn reply(resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let mut bytes = Vec::new();
    let _ = resp
        .into_body()
        .into_with_config()
        .limit(MAX_BODY)
        .reader()
        .read_to_end(&mut bytes);
    Reply {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// POSTs JSON with extra headers. `Err` is a transport failure (connect,
/// TLS, timeout) described without the URL, which may hold a token.
pub fn post_json(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Reply, String> {
    send_json(agent, Method::Post, url, headers, body)
}

/// The methods that carry a JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Post,
    /// Discord edits a posted message with PATCH.
    Patch,
}

/// Sends JSON with `method`; `Err` as for `post_json`.
pub fn send_json(
    agent: &ureq::Agent,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Reply, String> {
    let bytes = serde_json::to_vec(body).map_err(|e| format!("cannot encode body: {e}"))?;
    let req = match method {
        Method::Post => agent.post(url),
        Method::Patch => agent.patch(url),
    };
    let mut req = req
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send(&bytes[..]).map(reply).map_err(|e| describe(&e))
}

/// GET with extra headers; `Err` as for `post_json`.
pub fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Result<Reply, String> {
    let mut req = agent.get(url).header("Accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().map(reply).map_err(|e| describe(&e))
}

/// A transport error in words, never including the URL.
pub fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t:?})"),
        ureq::Error::Io(io) => format!("connection failed: {}", io.kind()),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(m) => format!("TLS: {m}"),
        ureq::Error::Rustls(r) => format!("TLS: {r}"),
        other => {
            // Other variants can embed the URI; keep only the kind of failure.
            let s = other.to_string();
            match s.split_once(':') {
                Some((kind, _)) => kind.to_string(),
                None => s,
            }
        }
    }
}
