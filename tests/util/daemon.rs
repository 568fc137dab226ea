/*!
Drives the real `opsctrl-daemon` binary: starts it with a clean environment,
captures its stderr, talks to its health endpoint with raw HTTP, reads its
metrics, and stops it with a real SIGTERM.

The daemon binds its health endpoint to port 0 and logs the port the system gave
it (`health endpoint listening addr=…`), so no two tests can ever race for a port.
*/

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_opsctrl-daemon");

/// A command for the binary with an empty environment (plus PATH and HOME),
/// so nothing from the machine running the tests leaks in.
pub fn command(home: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home);
    c
}

pub struct Daemon {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `opsctrl-daemon run --kubeconfig <kc>` with `env` on top of a clean environment.
    pub fn start(home: &Path, kubeconfig: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = command(home);
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env("HEALTH_CHECK_PORT", "0")
            .env("LOG_LEVEL", "debug")
            .env("RECONNECTION_INITIAL_BACKOFF_MS", "100")
            .env("RECONNECTION_MAX_BACKOFF_MS", "1000");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn opsctrl-daemon");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stdout.take().expect("stdout piped");
        let sink = stdout.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("DAEMON_LOG").is_some() {
                    eprintln!("[daemon] {line}");
                }
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Daemon {
            child,
            stderr,
            stdout,
        }
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Lines printed on stdout so far (the incident record).
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// stdout lines parsed as JSON (run with OUTPUT=json).
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The health endpoint's port, once the daemon has logged it.
    pub fn port(&self) -> Option<u16> {
        let logs = self.stderr.lock().unwrap();
        let line = logs
            .lines()
            .find(|l| l.contains("health endpoint listening addr="))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        addr.rsplit(':').next()?.parse().ok()
    }

    /// `GET path` on the health endpoint: (status, body), or None if not reachable (yet).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http(self.port()?, "GET", path)
    }

    /// The value of an unlabelled metric (or the first sample of a labelled one).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
    }

    /// Waits for `cond`; panics with the daemon's log if it never holds.
    pub fn wait(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "daemon exited ({status}) while waiting for {what}\n--- daemon log ---\n{}",
                    self.logs()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out waiting for {what}\n--- daemon log ---\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_ready(&mut self) {
        self.wait("/readyz 200", Duration::from_secs(30), |d| {
            d.get("/readyz").is_some_and(|(s, _)| s == 200)
        });
    }

    pub fn wait_metric(&mut self, name: &str, timeout: Duration, pred: impl Fn(f64) -> bool) {
        let what = format!("metric {name}");
        self.wait(&what, timeout, |d| d.metric(name).is_some_and(&pred));
    }

    /// Sends SIGTERM; returns the exit status and how long the exit took.
    pub fn terminate(mut self) -> (ExitStatus, Duration, String) {
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                return (status, t.elapsed(), self.logs());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon ignored SIGTERM\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                thread::sleep(Duration::from_millis(50));
                return (status, self.logs());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("daemon did not exit\n{}", self.logs());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One raw HTTP/1.1 request; (status, body).
pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.get(9..12)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}
