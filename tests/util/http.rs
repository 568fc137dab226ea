/*!
The one HTTP/1.1 server under every test fake (the fake API server, Slack, the webhook
receiver, the LLM and the backend): a listener on 127.0.0.1, one thread per connection,
plain TCP or TLS, keep-alive, Content-Length or chunked request bodies.

Why our own and not `tiny_http` (a dev-dependency would have been fine): the fake API
server needs what tiny_http cannot give. Its `ssl-rustls` feature builds the rustls config
itself `with_no_client_auth()` (no client-certificate authentication, no peer certificate
for the handler) on rustls 0.20, a second rustls next to our 0.23. The fake also streams
chunked watches it flushes itself, probes an idle watch's socket to see whether the client
left, cuts a chunk in half and drops TCP without close_notify, holds requests unanswered,
and goes down and comes up again on the same port. All of that needs the socket, which a
request/response library hides.

Two ways in: `Server::start` for a request → `Action` closure (the simple fakes), and
`Server::bind` for a handler that owns the whole connection (`Conn`: read requests,
answer, stream; the fake API server).
*/

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::Value;

const MAX_HEAD: usize = 1 << 20;
const MAX_BODY: usize = 16 << 20;

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

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
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
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

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Stream {
    fn sock(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// One accepted connection, owned by its handler thread.
pub struct Conn {
    stream: Stream,
    rbuf: Vec<u8>,
    epoch: u64,
    server_epoch: Arc<AtomicU64>,
}

impl Conn {
    /// The server went down (or was dropped) after this connection was accepted.
    pub fn stale(&self) -> bool {
        self.server_epoch.load(Ordering::SeqCst) != self.epoch
    }

    /// DER of the client certificate the TLS handshake verified, if any.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match &self.stream {
            Stream::Plain(_) => None,
            Stream::Tls(t) => t.conn.peer_certificates()?.first().map(|c| c.to_vec()),
        }
    }

    /// Read more bytes into `rbuf`; Ok(0) when the peer closed (cleanly or not).
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        match self.stream.read(&mut tmp) {
            Ok(n) => {
                self.rbuf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            // Clients routinely close TLS without close_notify; that is just a close.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Until `rbuf` holds `n` bytes; false when the peer closed first.
    fn fill_to(&mut self, n: usize) -> io::Result<bool> {
        while self.rbuf.len() < n {
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next request; Ok(None) when the peer closed, InvalidData for a malformed one.
    pub fn read_request(&mut self) -> io::Result<Option<Request>> {
        let head_end = loop {
            if let Some(i) = find(&self.rbuf, b"\r\n\r\n") {
                break i;
            }
            if self.rbuf.len() > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            if self.fill()? == 0 {
                return Ok(None);
            }
        };
        let head = String::from_utf8_lossy(&self.rbuf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let (method, target, version) = (
            first.next().unwrap_or(""),
            first.next().unwrap_or(""),
            first.next().unwrap_or(""),
        );
        if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
            return Err(invalid("bad request line"));
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        self.rbuf.drain(..head_end + 4);
        let chunked = header(&headers, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            match self.read_chunked()? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else {
            let len: usize = header(&headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if len > MAX_BODY {
                return Err(invalid("request body too large"));
            }
            if !self.fill_to(len)? {
                return Ok(None);
            }
            self.rbuf.drain(..len).collect()
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, parse_query(q)),
            None => (target, Vec::new()),
        };
        Ok(Some(Request {
            method: method.to_string(),
            path: percent_decode(path, false),
            query,
            headers,
            body,
            http10: version == "HTTP/1.0",
        }))
    }

    fn read_chunked(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.rbuf, b"\r\n") {
                    break i;
                }
                if self.fill()? == 0 {
                    return Ok(None);
                }
            };
            let size = String::from_utf8_lossy(&self.rbuf[..line_end]).into_owned();
            let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if body.len() + n > MAX_BODY {
                return Err(invalid("request body too large"));
            }
            self.rbuf.drain(..line_end + 2);
            if !self.fill_to(n + 2)? {
                return Ok(None);
            }
            body.extend(self.rbuf.drain(..n));
            self.rbuf.drain(..2);
            if n == 0 {
                return Ok(Some(body));
            }
        }
    }

    /// A whole answer: status line, `headers`, Content-Length and `body`, flushed.
    pub fn respond(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", phrase(status));
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += &format!("Content-Length: {}\r\n\r\n", body.len());
        if body.len() <= 64 * 1024 {
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            self.stream.write_all(&all)?;
        } else {
            self.stream.write_all(head.as_bytes())?;
            self.stream.write_all(body)?;
        }
        self.stream.flush()
    }

    /// The head of a chunked answer; the body follows through `Chunks`.
    pub fn start_chunked(&mut self, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", phrase(status));
        for (k, v) in headers {
            head += &format!("{k}: {v}\r\n");
        }
        head += "Transfer-Encoding: chunked\r\n\r\n";
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()
    }

    /// Raw bytes (already framed by the caller), flushed.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !bytes.is_empty() {
            self.stream.write_all(bytes)?;
        }
        self.stream.flush()
    }

    /// Send TLS close_notify (a clean close); nothing on plain TCP.
    pub fn close_notify(&mut self) {
        if let Stream::Tls(t) = &mut self.stream {
            t.conn.send_close_notify();
            let _ = t.flush();
        }
    }

    /// Drop TCP at once, without close_notify.
    pub fn cut(&self) {
        let _ = self.stream.sock().shutdown(Shutdown::Both);
    }

    /// Non-blocking probe for idle streams: true when the client has gone away. Bytes the
    /// client sent meanwhile are kept for the next `read_request`.
    pub fn client_gone(&mut self) -> bool {
        if self.stream.sock().set_nonblocking(true).is_err() {
            return true;
        }
        let mut tmp = [0u8; 1024];
        let r = self.stream.read(&mut tmp);
        let restored = self.stream.sock().set_nonblocking(false).is_ok();
        match r {
            _ if !restored => true,
            Ok(0) => true,
            Ok(n) => {
                self.rbuf.extend_from_slice(&tmp[..n]);
                false
            }
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }
}

/// A buffer of chunk-framed lines, written to the connection in batches (a streaming
/// server flushes when its queue is drained, not after every line).
pub struct Chunks {
    pub buf: Vec<u8>,
}

impl Chunks {
    pub fn new() -> Chunks {
        Chunks {
            buf: Vec::with_capacity(16 * 1024),
        }
    }
    /// One chunk holding `data`.
    pub fn line(&mut self, data: &[u8]) {
        self.buf
            .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }
    /// The last chunk: the body ends here.
    pub fn end(&mut self) {
        self.buf.extend_from_slice(b"0\r\n\r\n");
    }
    pub fn flush_to(&mut self, conn: &mut Conn) -> io::Result<()> {
        conn.write_raw(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

pub fn phrase(code: u16) -> &'static str {
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

// ---------------------------------------------------------------------------------------------
// Simple request → answer fakes
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Owns one connection until it returns; the server then shuts the socket.
pub type ConnHandler = Arc<dyn Fn(&mut Conn) + Send + Sync>;
pub type Handler = Arc<dyn Fn(&Request) -> Action + Send + Sync>;

struct Shared {
    port: u16,
    tls: Option<Arc<ServerConfig>>,
    handler: ConnHandler,
    /// Bumped by `go_down`: connections of an older epoch are stale.
    epoch: Arc<AtomicU64>,
    accepting: AtomicBool,
    acceptor: Mutex<Option<JoinHandle<()>>>,
    /// Clones of every open socket, so `go_down` can cut them.
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// A listening server; dropping it closes the listener and every connection.
pub struct Server {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Server {
    /// A plain-HTTP fake on a free port answering each request with `handler`'s `Action`.
    pub fn start(handler: Handler) -> Server {
        Server::bind(
            0,
            None,
            Arc::new(move |conn: &mut Conn| serve_simple(conn, &handler)),
        )
    }

    /// Listen on 127.0.0.1:`port` (0: a free one), TLS when `tls` is given, and hand every
    /// connection to `handler` on its own thread.
    pub fn bind(port: u16, tls: Option<Arc<ServerConfig>>, handler: ConnHandler) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("fake server: bind 127.0.0.1:{port}: {e}"));
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .expect("fake server: local_addr");
        let shared = Arc::new(Shared {
            port,
            tls,
            handler,
            epoch: Arc::new(AtomicU64::new(0)),
            accepting: AtomicBool::new(false),
            acceptor: Mutex::new(None),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        spawn_acceptor(&shared, listener);
        Server { shared }
    }

    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.port)
    }

    pub fn is_up(&self) -> bool {
        self.shared.accepting.load(Ordering::SeqCst)
    }

    /// Close the listener and cut every connection: new connections are refused.
    pub fn go_down(&self) {
        let s = &self.shared;
        s.epoch.fetch_add(1, Ordering::SeqCst);
        if s.accepting.swap(false, Ordering::SeqCst) {
            // Wake the blocking accept() so the thread sees the flag and drops the listener.
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], s.port)),
                Duration::from_secs(1),
            );
        }
        if let Some(h) = lock(&s.acceptor).take() {
            let _ = h.join();
        }
        for (_, c) in lock(&s.conns).drain() {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Listen again on the same port.
    pub fn come_up(&self) {
        if self.is_up() {
            return;
        }
        let port = self.shared.port;
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            // std's TcpListener sets SO_REUSEADDR on Unix, so TIME_WAIT leftovers don't block this.
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("fake server: rebind 127.0.0.1:{port}: {e}"),
            }
        };
        spawn_acceptor(&self.shared, listener);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.go_down();
    }
}

fn spawn_acceptor(shared: &Arc<Shared>, listener: TcpListener) {
    shared.accepting.store(true, Ordering::SeqCst);
    let epoch = shared.epoch.load(Ordering::SeqCst);
    let s = shared.clone();
    let h = thread::Builder::new()
        .name("fake-accept".into())
        .spawn(move || {
            loop {
                let accepted = listener.accept();
                if !s.accepting.load(Ordering::SeqCst) || s.epoch.load(Ordering::SeqCst) != epoch {
                    break;
                }
                let sock = match accepted {
                    Ok((sock, _)) => sock,
                    Err(_) => {
                        // EMFILE and friends: back off instead of spinning.
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let id = s.next_id.fetch_add(1, Ordering::SeqCst);
                if let Ok(c) = sock.try_clone() {
                    lock(&s.conns).insert(id, c);
                }
                let s2 = s.clone();
                let spawned = thread::Builder::new()
                    .name("fake-conn".into())
                    .spawn(move || serve_conn(&s2, sock, id, epoch));
                if spawned.is_err() {
                    if let Some(c) = lock(&s.conns).remove(&id) {
                        let _ = c.shutdown(Shutdown::Both);
                    }
                }
            }
            // Dropping the listener here is what makes new connections get refused.
        })
        .expect("fake server: spawn accept thread");
    *lock(&shared.acceptor) = Some(h);
}

fn serve_conn(s: &Shared, sock: TcpStream, id: u64, epoch: u64) {
    // Streamed lines are small writes; Nagle plus delayed ACKs would add 40 ms stalls.
    let _ = sock.set_nodelay(true);
    // An idle keep-alive connection is let go eventually.
    let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
    let stream = match &s.tls {
        None => Some(Stream::Plain(sock)),
        Some(cfg) => ServerConnection::new(cfg.clone())
            .ok()
            .map(|tls| Stream::Tls(Box::new(StreamOwned::new(tls, sock)))),
    };
    if let Some(stream) = stream {
        let mut conn = Conn {
            stream,
            rbuf: Vec::new(),
            epoch,
            server_epoch: s.epoch.clone(),
        };
        (s.handler)(&mut conn);
        conn.cut();
    }
    lock(&s.conns).remove(&id);
}

fn serve_simple(conn: &mut Conn, handler: &Handler) {
    while !conn.stale() {
        let Ok(Some(req)) = conn.read_request() else {
            return;
        };
        match handler(&req) {
            Action::Hang(d) => {
                let until = Instant::now() + d;
                while Instant::now() < until && !conn.stale() {
                    thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Action::Respond(r) => {
                let mut headers: Vec<(&str, &str)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                if req.wants_close() {
                    headers.push(("Connection", "close"));
                }
                if conn.respond(r.status, &headers, &r.body).is_err() || req.wants_close() {
                    return;
                }
            }
        }
    }
}
