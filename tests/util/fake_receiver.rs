/*!
A fake generic webhook receiver, plain HTTP on 127.0.0.1 (the server from
`super::http`): it records every request (method, path, headers, body,
the status it answered) and answers from a script, `200 ok` once the script
is used up. A script step can be any status (with Retry-After) or a hang
longer than the client's timeout.
*/

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use super::http::{self, Action, Request, Response, Server};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    Status {
        code: u16,
        retry_after: Option<u64>,
        body: String,
    },
    Hang(Duration),
    /// A redirect (301, 302, 307, 308) to `location`.
    Redirect {
        code: u16,
        location: String,
    },
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::status(200, "ok")
    }

    pub fn status(code: u16, body: &str) -> Reply {
        Reply::Status {
            code,
            retry_after: None,
            body: body.to_string(),
        }
    }

    pub fn retry_after(code: u16, secs: u64) -> Reply {
        Reply::Status {
            code,
            retry_after: Some(secs),
            body: "slow down".into(),
        }
    }
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What it was answered (0 for a hang).
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

pub struct FakeReceiver {
    server: Server,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeReceiver {
    pub fn start() -> FakeReceiver {
        let state = Arc::new(State::default());
        let s = state.clone();
        let server = Server::start(Arc::new(move |req: &Request| {
            let reply = lock(&s.script).pop_front().unwrap_or_else(Reply::ok);
            let (action, status) = match reply {
                Reply::Hang(d) => (Action::Hang(d), 0),
                Reply::Redirect { code, location } => {
                    let mut r = Response::text(code, "moved");
                    r.headers.push(("Location".into(), location));
                    (Action::Respond(r), code)
                }
                Reply::Status {
                    code,
                    retry_after,
                    body,
                } => (
                    Action::Respond(Response::text(code, &body).retry_after(retry_after)),
                    code,
                ),
            };
            lock(&s.received).push(Received {
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
                status,
            });
            action
        }));
        FakeReceiver { server, state }
    }

    /// This receiver's URL with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    /// Answers for the next requests, in order (appended to what is left).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).extend(replies);
    }

    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}
