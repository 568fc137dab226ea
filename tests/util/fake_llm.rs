/*!
A fake OpenAI-compatible chat-completions server, for the LLM tests: plain
HTTP/1.1 on 127.0.0.1, std only, one thread per connection, one request per
connection (`Connection: close`).

`POST /v1/chat/completions` answers according to the current `Mode` (a
canned answer, a 500, a hang past the client's timeout, malformed JSON, an
empty answer), or 401 when a key is required and the request's
`Authorization: Bearer …` is not it. Every request to that path is
recorded (method, path, headers, body) before it is answered, so tests can
assert what the daemon sent, including what it must never send.
*/

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
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
    stop: AtomicBool,
}

pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

pub const DEFAULT_ANSWER: &str = "Root cause: the app exits with code 1 because DATABASE_URL points at a host that refuses connections.\n\
     Fix: check the Service name and port, then kubectl rollout restart deployment/api -n shop.";

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake LLM");
        let addr = listener.local_addr().expect("fake LLM address");
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Ok),
            answer: Mutex::new(DEFAULT_ANSWER.to_string()),
            key: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let st = Arc::clone(&state);
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = Arc::clone(&st);
                thread::spawn(move || serve(conn, &st));
            }
        });
        FakeLlm {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>/v1`, as `LLM_BASE_URL` takes it.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_answer(&self, answer: &str) {
        *self.state.answer.lock().unwrap() = answer.to_string();
    }

    /// Answer 401 unless `Authorization: Bearer <key>` (None: no check).
    pub fn require_key(&self, key: Option<&str>) {
        *self.state.key.lock().unwrap() = key.map(str::to_string);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Reads one request: request line, headers, and a Content-Length or chunked body.
fn read_request(conn: &TcpStream) -> Option<Recorded> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n.min(4 << 20), 0);
        r.read_exact(&mut body).ok()?;
    } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(mut conn: &TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
}

fn error_body(message: &str, kind: &str) -> String {
    json!({"error": {"message": message, "type": kind, "code": null}}).to_string()
}

fn serve(conn: TcpStream, st: &State) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(req) = read_request(&conn) else {
        return;
    };
    if req.path != "/v1/chat/completions" {
        respond(
            &conn,
            404,
            &error_body("no such path", "invalid_request_error"),
        );
        return;
    }
    if req.method != "POST" {
        respond(
            &conn,
            405,
            &error_body("POST only", "invalid_request_error"),
        );
        return;
    }
    st.requests.lock().unwrap().push(req.clone());
    let expected = st.key.lock().unwrap().clone();
    if let Some(key) = expected {
        if req.header("authorization") != Some(&format!("Bearer {key}")) {
            // Like OpenAI: the message quotes the start and end of the wrong key.
            let given = req
                .header("authorization")
                .unwrap_or("")
                .trim_start_matches("Bearer ");
            let hint = match (given.get(..3), given.get(given.len().saturating_sub(4)..)) {
                (Some(head), Some(tail)) if given.len() > 8 => format!("{head}****{tail}"),
                _ => "(none)".to_string(),
            };
            respond(
                &conn,
                401,
                &error_body(
                    &format!("Incorrect API key provided: {hint}"),
                    "invalid_request_error",
                ),
            );
            return;
        }
    }
    let model = req.json()["model"].as_str().unwrap_or("fake").to_string();
    let answer = st.answer.lock().unwrap().clone();
    let mode = st.mode.lock().unwrap().clone();
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
            respond(&conn, 200, &body.to_string());
        }
        Mode::ServerError => respond(
            &conn,
            500,
            &error_body("the model is overloaded", "server_error"),
        ),
        Mode::Malformed => respond(&conn, 200, "{\"choices\": [ this is not json"),
        Mode::Hang(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !st.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
