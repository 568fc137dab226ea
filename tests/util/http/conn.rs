//! One accepted connection, plain or TLS: reading requests (Content-Length or chunked
//! bodies), answering, streaming chunked bodies, and probing whether the client left.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

use super::request::{Request, header, parse_query, percent_decode, phrase};

const MAX_HEAD: usize = 1 << 20;
const MAX_BODY: usize = 16 << 20;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

pub(super) enum Stream {
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
    /// A connection accepted while the server's epoch was `epoch`.
    pub(super) fn new(stream: Stream, epoch: u64, server_epoch: Arc<AtomicU64>) -> Conn {
        Conn {
            stream,
            rbuf: Vec::new(),
            epoch,
            server_epoch,
        }
    }

    pub(super) fn set_read_timeout(&self, d: Duration) {
        let _ = self.stream.sock().set_read_timeout(Some(d));
    }

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
