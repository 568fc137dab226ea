/*!
The OpsCtrl backend's endpoints, as the original called them, one blocking call each:

| # | call | auth |
|---|---|---|
| 1 | `POST /clusters` `{externalRefId, clusterName, userEmail}` | none |
| 2 | `GET /clusters/{externalRefId}` | none |
| 3 | `GET /auth/cluster/tokens?clusterId=<backend id>&orgId=<org>` → `[{token}]` | none |
| 4 | `POST /auth/cluster/refresh` `{refreshToken, clusterId: <backend id>}` → `{accessToken, refreshToken, expiresIn}` | none |
| 6 | `POST /daemon/analyze-stack` `StackAnalysisPayload` | `Bearer <accessToken>` |

Every call uses `OPSCTRL_BACKEND_URL` (the original split the base URL
between a defaulted and an undefined one, bug 22) and the shared agent's
`User-Agent: opsctrl-daemon/<version>` (the original sent it on #1 and #2
only). Unlike the original, every call has a timeout.

Statuses come back as values (`ApiError::Status`) so the caller decides what
a 401 or a 404 means. Error text quotes the backend's `message` (as the
original's `data.message`), with any token that was sent scrubbed out, and
nothing ever includes a token the backend returned.
*/

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use super::state::id_string;
use super::tokens::Exchange;
use crate::model::Failure;
use crate::net::http::{self, Reply};
use crate::secret::Secret;

/// Registration and claim checks (#1, #2): the original's 30 s.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Token listing and exchanges (#3, #4): the original's refresh used 10 s;
/// the listing had none.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(15);
/// analyze-stack (#6): the backend analyses before it answers (the
/// original waited forever).
const ANALYZE_TIMEOUT: Duration = Duration::from_secs(60);
/// What a token exchange is assumed to last when the answer has no
/// `expiresIn` (the original's proactive refresh period).
const DEFAULT_EXPIRES_IN: u64 = 900;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiError {
    /// Connection, TLS or timeout.
    Transport(String),
    /// A non-2xx answer with the backend's message.
    Status {
        code: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 2xx answer this daemon cannot use.
    Decode(String),
}

impl ApiError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The backend refused the request itself (4xx other than 408 and
    /// 429): sending it again unchanged cannot help.
    pub fn rejected(&self) -> bool {
        matches!(self.code(), Some(c) if (400..500).contains(&c) && c != 408 && c != 429)
    }

    /// As a delivery failure: transport errors, 408, 429 and 5xx are retried.
    pub fn to_failure(&self) -> Failure {
        match self {
            ApiError::Transport(_) => Failure::Retry {
                why: self.to_string(),
                after: None,
            },
            ApiError::Status {
                code, retry_after, ..
            } if *code == 408 || *code == 429 || *code >= 500 => Failure::Retry {
                why: self.to_string(),
                after: *retry_after,
            },
            _ => Failure::Permanent(self.to_string()),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Transport(e) => f.write_str(e),
            ApiError::Status { code, message, .. } if message.is_empty() => {
                write!(f, "HTTP {code}")
            }
            ApiError::Status { code, message, .. } => write!(f, "HTTP {code}: {message}"),
            ApiError::Decode(e) => write!(f, "unexpected answer: {e}"),
        }
    }
}

/// What the backend says about a cluster (#1, #2).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClusterRecord {
    /// The backend's id (`cluster_foreign_id`).
    pub id: Option<String>,
    pub org_id: Option<String>,
    /// `None` when absent (the original treats that as claimed on #1).
    pub is_claimed: Option<bool>,
    pub user_email: Option<String>,
}

/// The calls, against one base URL.
pub struct Api {
    base: String,
    registration: ureq::Agent,
    tokens: ureq::Agent,
    analyze: ureq::Agent,
}

impl Api {
    /// `base` without a trailing slash (settings guarantee it; trimmed anyway).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            registration: http::agent(REGISTRATION_TIMEOUT),
            tokens: http::agent(TOKEN_TIMEOUT),
            analyze: http::agent(ANALYZE_TIMEOUT),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// #1: registers (or finds) the cluster.
    pub fn register(
        &self,
        external_ref_id: &str,
        cluster_name: &str,
        user_email: &str,
    ) -> Result<ClusterRecord, ApiError> {
        let body = json!({
            "externalRefId": external_ref_id,
            "clusterName": cluster_name,
            "userEmail": user_email,
        });
        let url = format!("{}/clusters", self.base);
        let reply = http::post_json(&self.registration, &url, &[], &body);
        parse_cluster(&ok_json(reply, &[])?)
    }

    /// #2: the cluster's claim status.
    pub fn cluster(&self, external_ref_id: &str) -> Result<ClusterRecord, ApiError> {
        let url = format!("{}/clusters/{}", self.base, encode(external_ref_id));
        let reply = http::get(&self.registration, &url, &[]);
        parse_cluster(&ok_json(reply, &[])?)
    }

    /// #3: the first refresh token the backend lists for the cluster, or
    /// `None` when it lists none (not claimed yet, or none issued).
    pub fn cluster_tokens(
        &self,
        cluster_id: &str,
        org_id: Option<&str>,
    ) -> Result<Option<Secret>, ApiError> {
        let mut url = format!(
            "{}/auth/cluster/tokens?clusterId={}",
            self.base,
            encode(cluster_id)
        );
        if let Some(org) = org_id {
            url.push_str("&orgId=");
            url.push_str(&encode(org));
        }
        let reply = http::get(&self.tokens, &url, &[]);
        Ok(parse_token_list(&ok_json(reply, &[])?))
    }

    /// #4: exchanges a refresh token for a fresh pair.
    pub fn refresh(&self, refresh: &Secret, cluster_id: &str) -> Result<Exchange, ApiError> {
        let body = json!({ "refreshToken": refresh.expose(), "clusterId": cluster_id });
        let url = format!("{}/auth/cluster/refresh", self.base);
        let reply = http::post_json(&self.tokens, &url, &[], &body);
        parse_exchange(&ok_json(reply, &[refresh])?)
    }

    /// #6: sends one incident; the analysis, or `None` for an empty answer.
    pub fn analyze_stack(
        &self,
        access: &Secret,
        payload: &Value,
    ) -> Result<Option<Value>, ApiError> {
        let url = format!("{}/daemon/analyze-stack", self.base);
        let bearer = format!("Bearer {}", access.expose());
        let reply = http::post_json(&self.analyze, &url, &[("Authorization", &bearer)], payload);
        let reply = ok_reply(reply, &[access])?;
        if reply.body.trim().is_empty() {
            return Ok(None);
        }
        match reply.json() {
            Some(v) if !v.is_null() => Ok(Some(v)),
            Some(_) => Ok(None),
            None => Err(ApiError::Decode(format!(
                "analyze-stack answered HTTP {} with a body that is not JSON",
                reply.status
            ))),
        }
    }
}

/// A 2xx reply, or the error it stands for.
fn ok_reply(reply: Result<Reply, String>, sent: &[&Secret]) -> Result<Reply, ApiError> {
    let reply = reply.map_err(ApiError::Transport)?;
    if reply.ok() {
        return Ok(reply);
    }
    Err(ApiError::Status {
        code: reply.status,
        message: error_message(&reply.body, sent),
        retry_after: reply.retry_after,
    })
}

/// A 2xx reply's JSON body.
fn ok_json(reply: Result<Reply, String>, sent: &[&Secret]) -> Result<Value, ApiError> {
    let reply = ok_reply(reply, sent)?;
    reply.json().ok_or_else(|| {
        ApiError::Decode(format!(
            "HTTP {} with a body that is not JSON",
            reply.status
        ))
    })
}

/// The backend's `message` (a string, or NestJS's list of strings), else a
/// short excerpt of the body; tokens removed either way.
pub fn error_message(body: &str, sent: &[&Secret]) -> String {
    let from_json = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match v.get("message") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        });
    let text = from_json.unwrap_or_else(|| body.trim().to_string());
    let clean = scrub(&text, sent);
    let mut out: String = clean.chars().take(300).collect();
    if clean.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// Removes the given secrets and anything shaped like a JWT from `text`:
/// error bodies may echo what was sent.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.expose().len() >= 4 {
            out = out.replace(s.expose(), "<redacted>");
        }
    }
    out.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(|word| {
            let core = word.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
            if core.starts_with("eyJ") && core.len() > 20 {
                word.replacen(core, "<redacted>", 1)
            } else {
                word.to_string()
            }
        })
        .collect()
}

pub fn parse_cluster(v: &Value) -> Result<ClusterRecord, ApiError> {
    if !v.is_object() {
        return Err(ApiError::Decode(
            "the cluster answer is not an object".into(),
        ));
    }
    Ok(ClusterRecord {
        id: v.get("id").and_then(id_string),
        org_id: v
            .get("orgId")
            .and_then(id_string)
            .or_else(|| v.pointer("/organization/id").and_then(id_string)),
        is_claimed: v.get("isClaimed").and_then(Value::as_bool),
        user_email: v
            .get("userEmail")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// `[0].token` of the listing; an object wrapping the list (`{tokens: […]}`
/// or `{data: […]}`) is accepted too.
pub fn parse_token_list(v: &Value) -> Option<Secret> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("tokens").or_else(|| o.get("data")) {
            Some(Value::Array(a)) => a,
            _ => return None,
        },
        _ => return None,
    };
    list.first()
        .and_then(|t| t.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
}

pub fn parse_exchange(v: &Value) -> Result<Exchange, ApiError> {
    let access = v
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Decode("the token exchange answer has no accessToken".into()))?;
    let refresh = v
        .get("refreshToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(Secret::new);
    let expires_in = match v.get("expiresIn") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(DEFAULT_EXPIRES_IN),
        _ => DEFAULT_EXPIRES_IN,
    };
    Ok(Exchange {
        access: Secret::new(access),
        refresh,
        expires_in,
    })
}

/// Percent-encodes one path segment or query value (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_answers_leniently() {
        let r = parse_cluster(&json!({"id": 12, "orgId": "o1", "isClaimed": false,
                                      "userEmail": "a@b.io", "externalRefId": "clu_x"}))
        .unwrap();
        assert_eq!(
            r,
            ClusterRecord {
                id: Some("12".into()),
                org_id: Some("o1".into()),
                is_claimed: Some(false),
                user_email: Some("a@b.io".into()),
            }
        );
        let r = parse_cluster(&json!({"id": "c", "organization": {"id": "o2"}})).unwrap();
        assert_eq!((r.org_id.as_deref(), r.is_claimed), (Some("o2"), None));
        assert!(parse_cluster(&json!([1])).is_err());
    }

    #[test]
    fn takes_the_first_listed_token() {
        let t = parse_token_list(&json!([{"token": "rt-1"}, {"token": "rt-2"}]));
        assert_eq!(t.map(|t| t.expose().to_string()), Some("rt-1".into()));
        assert!(parse_token_list(&json!([])).is_none());
        assert!(parse_token_list(&json!([{"token": ""}])).is_none());
        assert!(parse_token_list(&json!({"tokens": [{"token": "x"}]})).is_some());
        assert!(parse_token_list(&json!("nope")).is_none());
    }

    #[test]
    fn reads_token_exchanges() {
        let x =
            parse_exchange(&json!({"accessToken": "a", "refreshToken": "r", "expiresIn": 3600}))
                .unwrap();
        assert_eq!(
            (
                x.access.expose(),
                x.refresh.as_ref().map(Secret::expose),
                x.expires_in
            ),
            ("a", Some("r"), 3600)
        );
        let x = parse_exchange(&json!({"accessToken": "a", "expiresIn": "60"})).unwrap();
        assert_eq!((x.refresh, x.expires_in), (None, 60));
        let x = parse_exchange(&json!({"accessToken": "a"})).unwrap();
        assert_eq!(x.expires_in, DEFAULT_EXPIRES_IN);
        assert!(parse_exchange(&json!({"refreshToken": "r"})).is_err());
    }

    #[test]
    fn error_text_never_carries_tokens() {
        let sent = Secret::new("rt-secret-value");
        let m = error_message(
            r#"{"statusCode":401,"message":"refresh token rt-secret-value revoked"}"#,
            &[&sent],
        );
        assert_eq!(m, "refresh token <redacted> revoked");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let m = error_message(&format!("bad token \"{jwt}\" here"), &[]);
        assert!(!m.contains(jwt), "{m}");
        assert!(m.contains("<redacted>"));
        let m = error_message(r#"{"message":["clusterId must be a string","x"]}"#, &[]);
        assert_eq!(m, "clusterId must be a string; x");
        assert_eq!(error_message(&"y".repeat(1000), &[]).chars().count(), 301);
    }

    #[test]
    fn classifies_failures() {
        let st = |code| ApiError::Status {
            code,
            message: String::new(),
            retry_after: None,
        };
        assert!(st(401).rejected() && st(403).rejected() && st(404).rejected());
        assert!(!st(429).rejected() && !st(408).rejected() && !st(500).rejected());
        assert!(matches!(st(503).to_failure(), Failure::Retry { .. }));
        assert!(matches!(st(429).to_failure(), Failure::Retry { .. }));
        assert!(matches!(st(400).to_failure(), Failure::Permanent(_)));
        assert!(matches!(
            ApiError::Transport("timed out".into()).to_failure(),
            Failure::Retry { .. }
        ));
        assert_eq!(st(502).to_string(), "HTTP 502");
    }

    #[test]
    fn encodes_path_segments_and_query_values() {
        assert_eq!(encode("clu_0a1b-2c"), "clu_0a1b-2c");
        assert_eq!(encode("a/b?c=d&e f"), "a%2Fb%3Fc%3Dd%26e%20f");
    }
}
