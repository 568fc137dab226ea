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

Files: `request` (what a request and an answer are), `conn` (one connection: reading
requests, answering, streaming), and this one (listening, accepting, going down and up).

Two ways in: `Server::start` for a request → `Action` closure (the simple fakes), and
`Server::bind` for a handler that owns the whole connection (`Conn`: read requests,
answer, stream; the fake API server).
*/

mod conn;
mod request;

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use self::conn::Stream;
pub use self::conn::{Chunks, Conn};
pub use self::request::{Action, Request, Response, header};

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
    let stream = match &s.tls {
        None => Some(Stream::Plain(sock)),
        Some(cfg) => ServerConnection::new(cfg.clone())
            .ok()
            .map(|tls| Stream::Tls(Box::new(StreamOwned::new(tls, sock)))),
    };
    if let Some(stream) = stream {
        let mut conn = Conn::new(stream, epoch, s.epoch.clone());
        (s.handler)(&mut conn);
        conn.cut();
    }
    lock(&s.conns).remove(&id);
}

fn serve_simple(conn: &mut Conn, handler: &Handler) {
    // An idle keep-alive connection is let go eventually (the fake API server keeps its
    // connections as long as the client does, like the apiserver).
    conn.set_read_timeout(Duration::from_secs(30));
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
