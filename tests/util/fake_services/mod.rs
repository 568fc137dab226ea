/*!
Fake receivers for the destinations beyond Slack and the generic webhook,
plain HTTP on 127.0.0.1 (the shared `super::http` server): Teams, Discord,
Telegram, ntfy, PagerDuty, Opsgenie and Alertmanager, one file each.

Each `Service` checks a request the way the real service does before it
accepts it (its method and path, its credential, its documented limits,
the shape of its JSON) and answers the way it does, or refuses with the
status and the words the real one uses. `Fake<S>` runs one, records every
request with its answer (`Got`), and takes scripted answers first (any
status with Retry-After, a hang), each used once. The body checks are also
plain functions (`check_*`), which the property tests run on renderings.
*/

pub mod alertmanager;
pub mod discord;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod teams;
pub mod telegram;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::fake_receiver::Reply;
use super::http::{self, Action, Request, Response, Server};

/// An accepted request's answer: status and JSON body (`Value::Null`: none).
pub type Answer = (u16, Value);
/// Why it was refused: status and the service's body.
pub type Refusal = (u16, Value);

pub trait Service: Send + Sync + 'static {
    fn answer(&self, req: &Request) -> Result<Answer, Refusal>;
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Got {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What it was answered (0 for a hang).
    pub status: u16,
    /// Why the service refused it (its answer body), when it did.
    pub refused: Option<String>,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared<S> {
    service: S,
    script: Mutex<VecDeque<Reply>>,
    got: Mutex<Vec<Got>>,
}

pub struct Fake<S: Service> {
    server: Server,
    shared: Arc<Shared<S>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Service> Fake<S> {
    pub fn start(service: S) -> Fake<S> {
        let shared = Arc::new(Shared {
            service,
            script: Mutex::new(VecDeque::new()),
            got: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let server = Server::start(Arc::new(move |req: &Request| {
            let scripted = lock(&s.script).pop_front();
            let (action, status, refused) = match scripted {
                Some(Reply::Hang(d)) => (Action::Hang(d), 0, None),
                Some(Reply::Redirect { code, location }) => {
                    let mut r = Response::text(code, "moved");
                    r.headers.push(("Location".into(), location));
                    (Action::Respond(r), code, None)
                }
                Some(Reply::Status {
                    code,
                    retry_after,
                    body,
                }) => (
                    Action::Respond(Response::text(code, &body).retry_after(retry_after)),
                    code,
                    None,
                ),
                None => match s.service.answer(req) {
                    Ok((code, body)) => (Action::Respond(respond(code, &body)), code, None),
                    Err((code, body)) => (
                        Action::Respond(respond(code, &body)),
                        code,
                        Some(body.to_string()),
                    ),
                },
            };
            lock(&s.got).push(Got {
                method: req.method.clone(),
                path: req.path.clone(),
                query: req.query.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
                status,
                refused,
            });
            action
        }));
        Fake { server, shared }
    }

    /// `http://127.0.0.1:PORT` and `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Answers for the next requests, in order, before the service's own.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.script).extend(replies);
    }

    pub fn received(&self) -> Vec<Got> {
        lock(&self.shared.got).clone()
    }

    /// The requests the service itself accepted (not scripted ones).
    pub fn accepted(&self) -> Vec<Got> {
        self.received()
            .into_iter()
            .filter(|g| g.refused.is_none() && (200..300).contains(&g.status))
            .collect()
    }

    /// Why the service refused requests, one line each.
    pub fn refusals(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .filter_map(|g| g.refused.map(|r| format!("{} {}: {r}", g.method, g.path)))
            .collect()
    }

    pub fn service(&self) -> &S {
        &self.shared.service
    }
}

fn respond(code: u16, body: &Value) -> Response {
    if body.is_null() {
        Response::text(code, "")
    } else {
        Response::json(code, body)
    }
}

/// The request's body as JSON, or the refusal `bad` makes of the reason.
pub fn body_json(req: &Request, bad: impl Fn(String) -> Refusal) -> Result<Value, Refusal> {
    let ct = req.header("content-type").unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(bad(format!("Content-Type is {ct:?}, not application/json")));
    }
    serde_json::from_slice(&req.body).map_err(|e| bad(format!("body is not JSON: {e}")))
}

/// Characters of a string field (0 when absent or not a string).
pub fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// `Err(why)` unless `v` is a string of `min..=max` characters.
pub fn text_within(v: &Value, what: &str, min: usize, max: usize) -> Result<(), String> {
    match v.as_str() {
        None => Err(format!("{what} is not a string")),
        Some(s) => {
            let n = s.chars().count();
            if n < min || n > max {
                Err(format!("{what} has {n} characters, allowed {min} to {max}"))
            } else {
                Ok(())
            }
        }
    }
}
