/*!
A fake OpenAI-compatible chat-completions server, for the LLM tests: plain
HTTP/1.1 on 127.0.0.1 (the shared `super::http` server).

`POST /v1/chat/completions` answers according to the current `Mode` (a
canned answer, a 500, a hang past the client's timeout, malformed JSON, an
empty answer), or 401 when a key is required and the request's
`Authorization: Bearer …` is not it. Every request to that path is
recorded (method, path, headers, body) before it is answered, so tests can
assert what the daemon sent, including what it must never send.
*/

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{self, Action, Request, Response, Server};

/// How the next requests are answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// 200 with the canned answer as `choices[0].message.content`.
    Ok,
    /// 500 with an OpenAI-style error body.
    ServerError,
    /// Reads the request, then says nothing for this long (or until the
    /// server is dropped) and closes.
    Hang(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with an empty `content`.
    Empty,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `content` of the message with this role.
    pub fn message(&self, role: &str) -> String {
        self.json()["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

struct State {
    mode: Mutex<Mode>,
    answer: Mutex<String>,
    key: Mutex<Option<String>>,
    requests: Mutex<Vec<Recorded>>,
}

pub struct FakeLlm {
    server: Server,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub const DEFAULT_ANSWER: &str = "Root cause: the app exits with code 1 because DATABASE_URL points at a host that refuses connections.\n\
     Fix: check the Service name and port, then kubectl rollout restart deployment/api -n shop.";

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Ok),
            answer: Mutex::new(DEFAULT_ANSWER.to_string()),
            key: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        });
        let st = Arc::clone(&state);
        let server = Server::start(Arc::new(move |req: &Request| handle(&st, req)));
        FakeLlm { server, state }
    }

    /// `http://127.0.0.1:<port>/v1`, as `LLM_BASE_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.url())
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    pub fn set_answer(&self, answer: &str) {
        *lock(&self.state.answer) = answer.to_string();
    }

    /// Answer 401 unless `Authorization: Bearer <key>` (None: no check).
    pub fn require_key(&self, key: Option<&str>) {
        *lock(&self.state.key) = key.map(str::to_string);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }
}

fn respond(status: u16, body: &str) -> Action {
    Action::Respond(Response::with_type(
        status,
        "application/json",
        body.as_bytes().to_vec(),
    ))
}

fn error_body(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "code": null}}).to_string()
}

fn handle(st: &State, req: &Request) -> Action {
    if req.path != "/v1/chat/completions" {
        return respond(404, &error_body("no such path", "invalid_request_error"));
    }
    if req.method != "POST" {
        return respond(405, &error_body("POST only", "invalid_request_error"));
    }
    let rec = Recorded {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body: String::from_utf8_lossy(&req.body).into_owned(),
    };
    lock(&st.requests).push(rec.clone());
    let expected = lock(&st.key).clone();
    if let Some(key) = expected {
        if rec.header("authorization") != Some(&format!("Bearer {key}")) {
            // Like OpenAI: the message quotes the start and end of the wrong key.
            let given = rec
                .header("authorization")
                .unwrap_or("")
                .trim_start_matches("Bearer ");
            let hint = match (given.get(..3), given.get(given.len().saturating_sub(4)..)) {
                (Some(head), Some(tail)) if given.len() > 8 => format!("{head}****{tail}"),
                _ => "(none)".to_string(),
            };
            return respond(
                401,
                &error_body(
                    &format!("Incorrect API key provided: {hint}"),
                    "invalid_request_error",
                ),
            );
        }
    }
    let model = rec.json()["model"].as_str().unwrap_or("fake").to_string();
    let answer = lock(&st.answer).clone();
    let mode = lock(&st.mode).clone();
    match mode {
        Mode::Ok | Mode::Empty => {
            let content = if mode == Mode::Ok {
                answer
            } else {
                String::new()
            };
            let body = json!({
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
            });
            respond(200, &body.to_string())
        }
        Mode::ServerError => respond(500, &error_body("the model is overloaded", "server_error")),
        Mode::Malformed => respond(200, "{\"choices\": [ this is not json"),
        Mode::Hang(d) => Action::Hang(d),
    }
}
