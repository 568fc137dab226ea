/*!
A fake Slack for the notification sinks, plain HTTP on 127.0.0.1 (the shared
`super::http` server).

- `FakeSlack` serves an incoming webhook (`WEBHOOK_PATH`) and the Web API
  (`/api/chat.postMessage`, `/api/chat.update`). It checks what real Slack
  checks before accepting a message: valid JSON, `text` or `blocks`, at most
  50 blocks of known types, header text plain_text ≤ 150 characters, section
  text ≤ 3000, ≤ 10 fields of ≤ 2000, context ≤ 10 elements, no empty texts,
  no unknown keys in the blocks it knows, a body ≤ 40 KB, the bot token, a
  known channel, an existing message to update. It answers the way Slack
  does: the webhook with `200 ok` or `400 invalid_blocks` / `no_text` /
  `invalid_payload`, the Web API with HTTP 200 and `{"ok": false, "error"}`.
- Every accepted message is recorded with its channel id, `ts`, `thread_ts`
  and the updates it received; faults can be scripted (429 with
  Retry-After, any status, an `ok: false` error, a hang longer than the
  client's timeout), each used once.
*/

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use super::http::{Action, Request, Response, Server};

pub const WEBHOOK_PATH: &str = "/services/T000/B000/XXXX";
pub const TOKEN: &str = "xoxb-fake-0000-token-abcdef";
/// The channel the incoming webhook posts to.
pub const WEBHOOK_CHANNEL: &str = "C0WEBHOOK";
/// Known channels: (name, id). Posts may name either.
pub const CHANNELS: &[(&str, &str)] = &[
    ("#alerts", "C0ALERTS"),
    ("#pay-alerts", "C0PAY"),
    ("#webhook", WEBHOOK_CHANNEL),
];
/// Slack refuses bodies above this.
pub const MAX_BODY: usize = 40_000;

/// One accepted message.
#[derive(Clone, Debug)]
pub struct Message {
    /// The channel id.
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    /// Current text and blocks (after updates).
    pub text: String,
    pub blocks: Value,
    pub via_webhook: bool,
    /// Every `chat.update` body accepted for it, in order.
    pub updates: Vec<Value>,
}

impl Message {
    /// The cause the message names (`*Root cause:* `cause` …`), if any.
    pub fn root_cause(&self) -> Option<String> {
        let blocks = self.blocks.to_string();
        let at = blocks.find("Root cause:* `")? + "Root cause:* `".len();
        Some(blocks[at..].split('`').next()?.to_string())
    }

    /// The header block's text, if any.
    pub fn header(&self) -> String {
        self.blocks
            .as_array()
            .and_then(|b| b.iter().find(|b| b["type"] == "header"))
            .and_then(|b| b["text"]["text"].as_str())
            .unwrap_or("")
            .to_string()
    }
}

/// A scripted answer for the next matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status and body (and Retry-After when given).
    Status {
        code: u16,
        retry_after: Option<u64>,
        body: String,
    },
    /// Web API: HTTP 200 `{"ok": false, "error": …}`; webhook: `400 <error>`.
    Error(String),
    /// HTTP 429 with Retry-After, as Slack rate-limits.
    RateLimited(u64),
    /// Read the request, answer nothing for this long, then close.
    Hang(Duration),
}

struct State {
    messages: Mutex<Vec<Message>>,
    /// (path suffix it applies to, or any), fault.
    faults: Mutex<VecDeque<(Option<String>, Fault)>>,
    next_ts: AtomicU64,
    requests: AtomicU64,
}

pub struct FakeSlack {
    server: Server,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeSlack {
    pub fn start() -> FakeSlack {
        let state = Arc::new(State {
            messages: Mutex::new(Vec::new()),
            faults: Mutex::new(VecDeque::new()),
            next_ts: AtomicU64::new(1),
            requests: AtomicU64::new(0),
        });
        let s = state.clone();
        let server = Server::start(Arc::new(move |req: &Request| handle(&s, req)));
        FakeSlack { server, state }
    }

    pub fn webhook_url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.server.url())
    }

    /// The Web API base, as `SLACK_API_URL` takes it.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.url())
    }

    /// The next request, whatever it is, gets this fault.
    pub fn fail_next(&self, fault: Fault) {
        lock(&self.state.faults).push_back((None, fault));
    }

    /// The next request whose path ends with `suffix` (`chat.update`,
    /// `chat.postMessage`, `XXXX`) gets this fault.
    pub fn fail_next_on(&self, suffix: &str, fault: Fault) {
        lock(&self.state.faults).push_back((Some(suffix.to_string()), fault));
    }

    pub fn messages(&self) -> Vec<Message> {
        lock(&self.state.messages).clone()
    }

    /// Messages that are not thread replies.
    pub fn top_level(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    pub fn replies_to(&self, ts: &str) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.as_deref() == Some(ts))
            .collect()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn take_fault(state: &State, path: &str) -> Option<Fault> {
    let mut faults = lock(&state.faults);
    let i = faults
        .iter()
        .position(|(on, _)| on.as_deref().is_none_or(|s| path.ends_with(s)))?;
    faults.remove(i).map(|(_, f)| f)
}

fn handle(state: &State, req: &Request) -> Action {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let api = req.path.strip_prefix("/api/");
    if req.method != "POST" {
        return Action::Respond(Response::text(405, "method_not_allowed"));
    }
    if let Some(fault) = take_fault(state, &req.path) {
        return match fault {
            Fault::Hang(d) => Action::Hang(d),
            Fault::Status {
                code,
                retry_after,
                body,
            } => Action::Respond(Response::text(code, &body).retry_after(retry_after)),
            Fault::RateLimited(secs) => Action::Respond(
                if api.is_some() {
                    Response::json(429, &json!({"ok": false, "error": "ratelimited"}))
                } else {
                    Response::text(429, "rate_limited")
                }
                .retry_after(Some(secs)),
            ),
            Fault::Error(e) => Action::Respond(if api.is_some() {
                api_error(&e, &[])
            } else {
                Response::text(400, &e)
            }),
        };
    }
    Action::Respond(match api {
        None if req.path == WEBHOOK_PATH => webhook(state, req),
        None => Response::text(404, "no_service"),
        Some(method) => web_api(state, method, req),
    })
}

fn webhook(state: &State, req: &Request) -> Response {
    let msg = match parse_message(&req.body) {
        Ok(m) => m,
        Err((error, _)) => return Response::text(400, error),
    };
    record(state, WEBHOOK_CHANNEL, None, &msg, true);
    Response::text(200, "ok")
}

fn web_api(state: &State, method: &str, req: &Request) -> Response {
    match req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        None => return api_error("not_authed", &[]),
        Some(t) if t != TOKEN => return api_error("invalid_auth", &[]),
        Some(_) => {}
    }
    if method != "chat.postMessage" && method != "chat.update" {
        return Response::json(404, &json!({"ok": false, "error": "unknown_method"}));
    }
    let msg = match parse_message(&req.body) {
        Ok(m) => m,
        Err((error, details)) => return api_error(error, &details),
    };
    let Some(channel) = msg
        .get("channel")
        .and_then(Value::as_str)
        .and_then(channel_id)
    else {
        return api_error("channel_not_found", &[]);
    };
    if method == "chat.postMessage" {
        let thread_ts = msg.get("thread_ts").and_then(Value::as_str);
        let ts = record(state, channel, thread_ts, &msg, false);
        return Response::json(
            200,
            &json!({"ok": true, "channel": channel, "ts": ts, "message": {"text": msg["text"]}}),
        );
    }
    let Some(ts) = msg.get("ts").and_then(Value::as_str) else {
        return api_error("message_not_found", &[]);
    };
    let mut messages = lock(&state.messages);
    let Some(m) = messages
        .iter_mut()
        .find(|m| m.channel == channel && m.ts == ts)
    else {
        return api_error("message_not_found", &[]);
    };
    m.text = msg["text"].as_str().unwrap_or("").to_string();
    m.blocks = msg.get("blocks").cloned().unwrap_or(json!([]));
    m.updates.push(msg.clone());
    Response::json(
        200,
        &json!({"ok": true, "channel": channel, "ts": ts, "text": m.text}),
    )
}

fn channel_id(name_or_id: &str) -> Option<&'static str> {
    let bare = name_or_id.trim_start_matches('#');
    CHANNELS
        .iter()
        .find(|(name, id)| name.trim_start_matches('#') == bare || *id == name_or_id)
        .map(|(_, id)| *id)
}

fn record(
    state: &State,
    channel: &str,
    thread_ts: Option<&str>,
    msg: &Value,
    via_webhook: bool,
) -> String {
    let n = state.next_ts.fetch_add(1, Ordering::SeqCst);
    let ts = format!("1700000000.{n:06}");
    lock(&state.messages).push(Message {
        channel: channel.to_string(),
        ts: ts.clone(),
        thread_ts: thread_ts.map(str::to_string),
        text: msg["text"].as_str().unwrap_or("").to_string(),
        blocks: msg.get("blocks").cloned().unwrap_or(json!([])),
        via_webhook,
        updates: Vec::new(),
    });
    ts
}

fn api_error(error: &str, details: &[String]) -> Response {
    let mut v = json!({"ok": false, "error": error});
    if !details.is_empty() {
        v["response_metadata"] = json!({"messages": details});
    }
    Response::json(200, &v)
}

// ---------------------------------------------------------------------------------------------
// Slack's checks
// ---------------------------------------------------------------------------------------------

/// The message if Slack would take it, else (error code, details).
pub fn parse_message(body: &[u8]) -> Result<Value, (&'static str, Vec<String>)> {
    if body.len() > MAX_BODY {
        return Err((
            "msg_too_long",
            vec![format!("body is {} bytes", body.len())],
        ));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ("invalid_payload", vec![e.to_string()]))?;
    if !v.is_object() {
        return Err(("invalid_payload", vec!["not an object".into()]));
    }
    let text = match v.get("text") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(("invalid_arguments", vec!["text must be a string".into()])),
    };
    let blocks = match v.get("blocks") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(b)) => b.as_slice(),
        Some(_) => return Err(("invalid_blocks", vec!["blocks must be an array".into()])),
    };
    if text.trim().is_empty() && blocks.is_empty() {
        return Err(("no_text", Vec::new()));
    }
    if text.chars().count() > 40_000 {
        return Err(("msg_too_long", Vec::new()));
    }
    let mut errors = Vec::new();
    if blocks.len() > 50 {
        errors.push("[ERROR] no more than 50 items allowed [json-pointer:/blocks]".to_string());
    }
    for (i, b) in blocks.iter().enumerate() {
        check_block(b, &format!("/blocks/{i}"), &mut errors);
    }
    if errors.is_empty() {
        Ok(v)
    } else {
        Err(("invalid_blocks", errors))
    }
}

fn err(errors: &mut Vec<String>, what: &str, ptr: &str) {
    errors.push(format!("[ERROR] {what} [json-pointer:{ptr}]"));
}

fn only_keys(v: &Value, allowed: &[&str], ptr: &str, errors: &mut Vec<String>) {
    if let Some(o) = v.as_object() {
        for k in o.keys().filter(|k| !allowed.contains(&k.as_str())) {
            err(errors, &format!("unknown property '{k}'"), ptr);
        }
    }
}

/// A text object: `plain_text` (when `plain_only`) or `mrkdwn`, 1..=max characters.
fn check_text(v: &Value, max: usize, plain_only: bool, ptr: &str, errors: &mut Vec<String>) {
    if !v.is_object() {
        return err(errors, "must be a text object", ptr);
    }
    let kind = v["type"].as_str().unwrap_or("");
    match kind {
        "plain_text" => only_keys(v, &["type", "text", "emoji"], ptr, errors),
        "mrkdwn" if !plain_only => only_keys(v, &["type", "text", "verbatim"], ptr, errors),
        _ => err(errors, &format!("invalid text type '{kind}'"), ptr),
    }
    match v["text"].as_str() {
        None => err(errors, "missing text", ptr),
        Some("") => err(errors, "must be more than 0 characters", ptr),
        Some(t) if t.chars().count() > max => err(
            errors,
            &format!("must be less than {} characters", max + 1),
            &format!("{ptr}/text"),
        ),
        Some(_) => {}
    }
}

fn check_block(b: &Value, ptr: &str, errors: &mut Vec<String>) {
    if let Some(id) = b.get("block_id").and_then(Value::as_str) {
        if id.chars().count() > 255 {
            err(errors, "block_id must be less than 256 characters", ptr);
        }
    }
    match b["type"].as_str().unwrap_or("") {
        "header" => {
            only_keys(b, &["type", "text", "block_id"], ptr, errors);
            check_text(&b["text"], 150, true, &format!("{ptr}/text"), errors);
        }
        "section" => {
            only_keys(
                b,
                &["type", "text", "fields", "block_id", "accessory", "expand"],
                ptr,
                errors,
            );
            let has_text = b.get("text").is_some();
            if has_text {
                check_text(&b["text"], 3000, false, &format!("{ptr}/text"), errors);
            }
            match b.get("fields") {
                None if !has_text => err(errors, "must provide text or fields", ptr),
                None => {}
                Some(Value::Array(f)) if f.is_empty() || f.len() > 10 => err(
                    errors,
                    "fields must have between 1 and 10 items",
                    &format!("{ptr}/fields"),
                ),
                Some(Value::Array(f)) => {
                    for (i, x) in f.iter().enumerate() {
                        check_text(x, 2000, false, &format!("{ptr}/fields/{i}"), errors);
                    }
                }
                Some(_) => err(errors, "fields must be an array", &format!("{ptr}/fields")),
            }
        }
        "context" => {
            only_keys(b, &["type", "elements", "block_id"], ptr, errors);
            match b["elements"].as_array() {
                Some(e) if !e.is_empty() && e.len() <= 10 => {
                    for (i, x) in e.iter().enumerate() {
                        let p = format!("{ptr}/elements/{i}");
                        if x["type"] == "image" {
                            only_keys(x, &["type", "image_url", "alt_text"], &p, errors);
                        } else {
                            check_text(x, 3000, false, &p, errors);
                        }
                    }
                }
                _ => err(
                    errors,
                    "elements must have between 1 and 10 items",
                    &format!("{ptr}/elements"),
                ),
            }
        }
        "divider" => only_keys(b, &["type", "block_id"], ptr, errors),
        // Known kinds this project never sends: accepted without a closer look.
        "image" | "actions" | "rich_text" | "input" | "file" | "video" | "markdown" => {}
        other => err(errors, &format!("unsupported type: {other}"), ptr),
    }
}
