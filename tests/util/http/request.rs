//! What a request and an answer are: the parsed request every fake sees, and the answer a
//! simple fake gives.

use std::time::Duration;

use serde_json::Value;

/// One request as read from the connection.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Percent-decoded, without the query.
    pub path: String,
    /// Decoded query parameters, in request order.
    pub query: Vec<(String, String)>,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub http10: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
    /// First value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// A boolean query parameter the way the apiserver reads one.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.param(key),
            Some("true" | "1" | "t" | "T" | "TRUE" | "True")
        )
    }
    pub fn wants_close(&self) -> bool {
        let c = self.header("connection").unwrap_or("").to_ascii_lowercase();
        c.contains("close") || (self.http10 && !c.contains("keep-alive"))
    }
}

/// `name` (lower-case) in a list of lower-cased headers, as recorded by the fakes.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// Decode %XX escapes; `+` means a space only in query strings (form encoding).
pub(super) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

pub(super) fn phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A whole answer of a simple fake.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: &str) -> Response {
        Response::with_type(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }
    pub fn json(status: u16, body: &Value) -> Response {
        Response::with_type(
            status,
            "application/json; charset=utf-8",
            body.to_string().into_bytes(),
        )
    }
    pub fn with_type(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }
    pub fn retry_after(mut self, secs: Option<u64>) -> Response {
        if let Some(s) = secs {
            self.headers.push(("Retry-After".into(), s.to_string()));
        }
        self
    }
}

pub enum Action {
    Respond(Response),
    /// Answer nothing for this long (or until the server goes away), then close.
    Hang(Duration),
}
