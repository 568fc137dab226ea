/*!
Credentials that change over time: the `Authorization` header for each request.

Bound service-account tokens rotate (the kubelet rewrites the file about hourly)
and exec plugins (aws, gke-gcloud-auth-plugin, kubelogin) hand out tokens that
expire, so the header cannot be computed once at startup. `Authenticator`
caches the current token, refreshes it when it is due, and forgets it after a
401 (`invalidate`). It is cheap to clone and safe to share between threads;
a refresh holds the lock, so concurrent callers wait for one plugin run
instead of starting several.

Tokens live in `Secret` and never reach a log line or an error message.
*/

use std::error::Error as StdError;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::kube::config::{AuthConfig, EXEC_API_V1, EXEC_API_V1BETA1, ExecConfig, MAX_TOKEN_FILE};
use crate::secret::Secret;
use crate::util::file::read_regular_text;
use crate::util::sync::lock;

/// How often a token file is re-read; bound tokens rotate hourly, kubelet refreshes at 80 %.
pub const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);
/// How long an exec plugin may run before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// Exec tokens are treated as expired this long before `expirationTimestamp`,
/// so a request is not sent with a token that expires in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Enough stderr to show the plugin's message without flooding the log.
const STDERR_EXCERPT: usize = 500;
/// An ExecCredential is a few KiB; anything much bigger is not one.
const MAX_PLUGIN_OUTPUT: u64 = 1 << 20;

/// A monotonic clock (token-file refresh) and a wall clock (exec expiry), swappable in tests.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;
pub type WallClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Tunables; `Options::default()` is what production uses.
#[derive(Clone)]
pub struct Options {
    pub token_file_refresh: Duration,
    pub exec_timeout: Duration,
    pub clock: Clock,
    pub wall_clock: WallClock,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_file_refresh: TOKEN_FILE_REFRESH,
            exec_timeout: EXEC_TIMEOUT,
            clock: Arc::new(Instant::now),
            wall_clock: Arc::new(SystemTime::now),
        }
    }
}

/// Produces the `Authorization` header; clones share one cache.
#[derive(Clone)]
pub struct Authenticator {
    state: Arc<Mutex<State>>,
    options: Arc<Options>,
}

enum State {
    None,
    Static(Secret),
    File {
        path: PathBuf,
        token: Option<Secret>,
        read_at: Option<Instant>,
        stale: bool,
    },
    Exec {
        config: Box<ExecConfig>,
        token: Option<Secret>,
        expires: Option<SystemTime>,
        stale: bool,
    },
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.lock() {
            State::None => "none",
            State::Static(_) => "token",
            State::File { .. } => "token-file",
            State::Exec { .. } => "exec",
        };
        write!(f, "Authenticator({kind})")
    }
}

impl Authenticator {
    pub fn new(cfg: AuthConfig) -> Authenticator {
        Authenticator::with_options(cfg, Options::default())
    }

    pub fn with_options(cfg: AuthConfig, options: Options) -> Authenticator {
        let state = match cfg {
            AuthConfig::None => State::None,
            AuthConfig::Token(token) => State::Static(token),
            AuthConfig::TokenFile(path) => State::File {
                path,
                token: None,
                read_at: None,
                stale: false,
            },
            AuthConfig::Exec(config) => State::Exec {
                config: Box::new(config),
                token: None,
                expires: None,
                stale: false,
            },
        };
        Authenticator {
            state: Arc::new(Mutex::new(state)),
            options: Arc::new(options),
        }
    }

    /// The `Authorization` header value ("Bearer …"), or None for cert-only/no auth.
    pub fn header(&self) -> Result<Option<Secret>, Error> {
        let options = &self.options;
        let mut state = self.lock();
        let token = match &mut *state {
            State::None => return Ok(None),
            State::Static(token) => token,
            State::File {
                path,
                token,
                read_at,
                stale,
            } => {
                let now = (options.clock)();
                let due = *stale
                    || token.is_none()
                    || read_at
                        .is_none_or(|at| now.duration_since(at) >= options.token_file_refresh);
                if due {
                    match read_token_file(path) {
                        Ok(fresh) => *token = Some(fresh),
                        // A rotation in progress or a briefly missing mount: the old
                        // token is likely still valid, and the API server decides.
                        Err(e) if token.is_some() => {
                            log::warn!("{e}; keeping the previously read token");
                        }
                        Err(e) => return Err(e),
                    }
                    // Also after a failed re-read, so a broken file is retried per interval, not per request.
                    *read_at = Some(now);
                    *stale = false;
                }
                match token {
                    Some(token) => token,
                    None => return Err(Error::EmptyTokenFile { path: path.clone() }),
                }
            }
            State::Exec {
                config,
                token,
                expires,
                stale,
            } => {
                let now = (options.wall_clock)();
                let fresh =
                    !*stale && token.is_some() && expires.is_none_or(|at| now + EXPIRY_MARGIN < at);
                if !fresh {
                    let credential = run_plugin(config, options.exec_timeout)?;
                    *token = Some(credential.token);
                    *expires = credential.expires;
                    *stale = false;
                }
                match token {
                    Some(token) => token,
                    None => return Ok(None),
                }
            }
        };
        Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
    }

    /// Call after a 401: the next header() re-reads the token file / re-runs the exec plugin.
    pub fn invalidate(&self) {
        match &mut *self.lock() {
            State::File { stale, .. } | State::Exec { stale, .. } => *stale = true,
            State::None | State::Static(_) => {}
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

#[derive(Debug)]
pub enum Error {
    TokenFile {
        path: PathBuf,
        source: io::Error,
    },
    EmptyTokenFile {
        path: PathBuf,
    },
    ExecApiVersion {
        command: String,
        api_version: String,
    },
    ExecNotFound {
        command: String,
        install_hint: Option<String>,
    },
    ExecSpawn {
        command: String,
        source: io::Error,
    },
    ExecTimeout {
        command: String,
        after: Duration,
    },
    ExecFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// The plugin exited cleanly but its stdout is not a usable ExecCredential.
    ExecOutput {
        command: String,
        problem: String,
        source: Option<serde_json::Error>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TokenFile { path, source } => {
                write!(f, "cannot read token file {}: {source}", path.display())
            }
            Error::EmptyTokenFile { path } => write!(f, "token file {} is empty", path.display()),
            Error::ExecApiVersion {
                command,
                api_version,
            } => write!(
                f,
                "exec plugin \"{command}\": apiVersion \"{api_version}\" is not supported (use {EXEC_API_V1} or {EXEC_API_V1BETA1})"
            ),
            Error::ExecNotFound {
                command,
                install_hint,
            } => {
                write!(f, "exec plugin \"{command}\" not found")?;
                match install_hint {
                    Some(hint) => write!(f, "; {}", hint.trim()),
                    None => Ok(()),
                }
            }
            Error::ExecSpawn { command, source } => {
                write!(
                    f,
                    "exec plugin \"{command}\" could not be started: {source}"
                )
            }
            Error::ExecTimeout { command, after } => write!(
                f,
                "exec plugin \"{command}\" timed out after {}s and was killed",
                after.as_secs_f32()
            ),
            Error::ExecFailed {
                command,
                status,
                stderr,
            } => {
                write!(f, "exec plugin \"{command}\" failed ({status})")?;
                if stderr.is_empty() {
                    f.write_str(" with no stderr output")
                } else {
                    write!(f, ": {stderr}")
                }
            }
            Error::ExecOutput {
                command,
                problem,
                source,
            } => {
                write!(
                    f,
                    "exec plugin \"{command}\" returned unusable output: {problem}"
                )?;
                match source {
                    Some(source) => write!(f, ": {source}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::TokenFile { source, .. } | Error::ExecSpawn { source, .. } => Some(source),
            Error::ExecOutput {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

/// Re-read under the auth lock: a FIFO or device there is refused at once
/// (`util::file`) rather than blocking every request behind it.
fn read_token_file(path: &Path) -> Result<Secret, Error> {
    let text = read_regular_text(path, MAX_TOKEN_FILE).map_err(|source| Error::TokenFile {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::EmptyTokenFile {
            path: path.to_path_buf(),
        });
    }
    Ok(Secret::new(token))
}

/// A token from an exec plugin and when it stops being valid (None: until a 401).
struct Credential {
    token: Secret,
    expires: Option<SystemTime>,
}

/// Runs the plugin with a deadline and reads its ExecCredential.
fn run_plugin(config: &ExecConfig, timeout: Duration) -> Result<Credential, Error> {
    let command = config.command.clone();
    if config.api_version != EXEC_API_V1 && config.api_version != EXEC_API_V1BETA1 {
        return Err(Error::ExecApiVersion {
            command,
            api_version: config.api_version.clone(),
        });
    }
    // Like kubectl: a path with a slash is relative to the kubeconfig, a bare name goes through PATH.
    let program = if config.command.contains('/') {
        config.base_dir.join(&config.command)
    } else {
        PathBuf::from(&config.command)
    };
    let mut cmd = Command::new(&program);
    cmd.args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env("KUBERNETES_EXEC_INFO", exec_info(config))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let started = Instant::now();
    let deadline = started + timeout;
    let mut child = spawn_retrying(&mut cmd).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::ExecNotFound {
                command: command.clone(),
                install_hint: config.install_hint.clone(),
            }
        } else {
            Error::ExecSpawn {
                command: command.clone(),
                source,
            }
        }
    })?;
    // Both pipes are drained on threads so a chatty plugin cannot block on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);

    let mut poll = Duration::from_millis(5);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // Only the direct child is killed; a grandchild holding the pipes is
                // left behind, but we stop waiting for it below.
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::ExecTimeout {
                    command,
                    after: timeout,
                });
            }
            Ok(None) => {
                thread::sleep(poll);
                poll = (poll * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                let _ = child.kill();
                return Err(Error::ExecSpawn { command, source });
            }
        }
    };
    // A grandchild may still hold the pipes open; never wait past the deadline for them.
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| -> Result<Vec<u8>, Error> {
        let Some(rx) = rx else { return Ok(Vec::new()) };
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        rx.recv_timeout(remaining).map_err(|_| Error::ExecTimeout {
            command: command.clone(),
            after: timeout,
        })
    };
    let stderr = excerpt(&collect(stderr)?);
    let stdout = collect(stdout)?;
    if !status.success() {
        return Err(Error::ExecFailed {
            command,
            status,
            stderr,
        });
    }
    parse_credential(&stdout, &config.api_version).map_err(|(problem, source)| Error::ExecOutput {
        command,
        problem,
        source,
    })
}

/// ETXTBSY ("text file busy") happens when the plugin binary is being replaced, or when
/// another thread of this process forked while holding it open for writing; it clears quickly.
fn spawn_retrying(cmd: &mut Command) -> io::Result<std::process::Child> {
    const ETXTBSY: i32 = 26;
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 5 => {
                attempt += 1;
                thread::sleep(Duration::from_millis(20 * attempt));
            }
            other => return other,
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut pipe).take(MAX_PLUGIN_OUTPUT).read_to_end(&mut buf);
        // Keep draining past the cap so the plugin is not blocked writing.
        let _ = io::copy(&mut pipe, &mut io::sink());
        let _ = tx.send(buf);
    });
    rx
}

/// Trimmed stderr, at most `STDERR_EXCERPT` characters.
fn excerpt(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    match text.char_indices().nth(STDERR_EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `KUBERNETES_EXEC_INFO`: tells the plugin which API version to answer in, that
/// nobody is at the keyboard, and (if asked for) which cluster it is for.
fn exec_info(config: &ExecConfig) -> String {
    let mut spec = serde_json::json!({ "interactive": false });
    if config.provide_cluster_info {
        let info = &config.cluster;
        let mut cluster = serde_json::Map::new();
        cluster.insert("server".into(), info.server.clone().into());
        if let Some(ca) = &info.certificate_authority_data {
            let ca = base64::prelude::BASE64_STANDARD.encode(ca);
            cluster.insert("certificate-authority-data".into(), ca.into());
        }
        if let Some(name) = &info.tls_server_name {
            cluster.insert("tls-server-name".into(), name.clone().into());
        }
        if info.insecure_skip_tls_verify {
            cluster.insert("insecure-skip-tls-verify".into(), true.into());
        }
        spec["cluster"] = cluster.into();
    }
    serde_json::json!({
        "apiVersion": config.api_version,
        "kind": "ExecCredential",
        "spec": spec,
    })
    .to_string()
}

type Problem = (String, Option<serde_json::Error>);

/// Reads an ExecCredential. Problems name fields, never values (stdout holds the token).
fn parse_credential(stdout: &[u8], api_version: &str) -> Result<Credential, Problem> {
    let doc: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| {
        (
            "stdout is not an ExecCredential JSON document".to_owned(),
            Some(e),
        )
    })?;
    let problem = |p: &str| (p.to_owned(), None);
    if doc.get("kind").and_then(|k| k.as_str()) != Some("ExecCredential") {
        return Err(problem("kind is not ExecCredential"));
    }
    match doc.get("apiVersion").and_then(|v| v.as_str()) {
        Some(v) if v == api_version => {}
        Some(v) if v == EXEC_API_V1 || v == EXEC_API_V1BETA1 => {
            return Err((
                format!("apiVersion is {v} but the kubeconfig asks for {api_version}"),
                None,
            ));
        }
        _ => return Err(problem("apiVersion is missing or not a supported version")),
    }
    let Some(status) = doc.get("status").filter(|s| s.is_object()) else {
        return Err(problem("status is missing"));
    };
    let token = match status.get("token").and_then(|t| t.as_str()) {
        Some(t) if !t.is_empty() => Secret::new(t),
        _ if status.get("clientCertificateData").is_some()
            || status.get("clientKeyData").is_some() =>
        {
            return Err(problem(
                "it returned a client certificate instead of a token; certificate-returning exec plugins are not supported",
            ));
        }
        _ => return Err(problem("status.token is missing")),
    };
    let expires = match status.get("expirationTimestamp") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(ts)) => match parse_rfc3339(ts) {
            Some(at) => Some(at),
            None => {
                return Err((
                    format!("status.expirationTimestamp \"{ts}\" is not an RFC 3339 time"),
                    None,
                ));
            }
        },
        Some(_) => return Err(problem("status.expirationTimestamp is not a string")),
    };
    Ok(Credential { token, expires })
}

/// An RFC 3339 timestamp such as `2026-11-25T22:00:00Z` as a `SystemTime`
/// (whole seconds; the token is treated as expired early anyway).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let secs = crate::util::time::parse_rfc3339(s)?;
    let since_epoch = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH.checked_add(since_epoch)
    } else {
        UNIX_EPOCH.checked_sub(since_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::config::ExecClusterInfo;
    use crate::kube::config::test_support::TempDir;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A monotonic clock the test moves by hand.
    fn fake_clock() -> (Clock, Arc<AtomicU64>) {
        let base = Instant::now();
        let offset = Arc::new(AtomicU64::new(0));
        let handle = offset.clone();
        let clock: Clock =
            Arc::new(move || base + Duration::from_secs(handle.load(Ordering::SeqCst)));
        (clock, offset)
    }

    fn fixed_wall_clock(at: &str) -> WallClock {
        let now = parse_rfc3339(at).expect("valid time");
        Arc::new(move || now)
    }

    fn header(auth: &Authenticator) -> String {
        auth.header()
            .expect("header")
            .expect("some header")
            .expose()
            .to_owned()
    }

    #[test]
    fn a_token_file_is_reread_after_the_refresh_interval() {
        let dir = TempDir::new("auth-rotate");
        let path = dir.write("token", "first\n");
        let (clock, offset) = fake_clock();
        let options = Options {
            clock,
            ..Options::default()
        };
        let auth = Authenticator::with_options(AuthConfig::TokenFile(path.clone()), options);
        assert_eq!(header(&auth), "Bearer first");
        std::fs::write(&path, "second").expect("rotate");
        offset.store(59, Ordering::SeqCst);
        assert_eq!(header(&auth), "Bearer first", "cached within the interval");
        offset.store(60, Ordering::SeqCst);
        assert_eq!(header(&auth), "Bearer second");
    }

    #[test]
    fn invalidate_forces_a_token_file_reread() {
        let dir = TempDir::new("auth-invalidate");
        let path = dir.write("token", "first");
        let auth = Authenticator::new(AuthConfig::TokenFile(path.clone()));
        assert_eq!(header(&auth), "Bearer first");
        std::fs::write(&path, "second").expect("rotate");
        assert_eq!(header(&auth), "Bearer first");
        auth.clone().invalidate();
        assert_eq!(header(&auth), "Bearer second");
    }

    #[test]
    fn a_broken_token_file_keeps_the_previous_token_but_fails_without_one() {
        let dir = TempDir::new("auth-broken");
        let path = dir.write("token", "  good  \n");
        let auth = Authenticator::new(AuthConfig::TokenFile(path.clone()));
        assert_eq!(header(&auth), "Bearer good");
        std::fs::write(&path, "\n").expect("empty");
        auth.invalidate();
        assert_eq!(header(&auth), "Bearer good");

        let fresh = Authenticator::new(AuthConfig::TokenFile(path.clone()));
        let err = fresh.header().expect_err("empty file").to_string();
        assert_eq!(err, format!("token file {} is empty", path.display()));
        let missing = dir.path().join("missing");
        let err = Authenticator::new(AuthConfig::TokenFile(missing.clone()))
            .header()
            .expect_err("missing file")
            .to_string();
        assert!(
            err.starts_with(&format!("cannot read token file {}: ", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn static_tokens_and_no_auth_give_fixed_headers() {
        let auth = Authenticator::new(AuthConfig::Token(Secret::new("abc")));
        assert_eq!(header(&auth), "Bearer abc");
        assert!(
            Authenticator::new(AuthConfig::None)
                .header()
                .expect("ok")
                .is_none()
        );
        assert_eq!(format!("{auth:?}"), "Authenticator(token)");
    }

    /// Writes an executable `#!/bin/sh` plugin that appends a line to `count` on every run.
    fn plugin(dir: &TempDir, name: &str, body: &str) -> PathBuf {
        let count = dir.path().join("count");
        let script = format!("#!/bin/sh\necho run >> '{}'\n{body}\n", count.display());
        let path = dir.write(name, script);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn runs(dir: &TempDir) -> usize {
        std::fs::read_to_string(dir.path().join("count"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn exec_config(dir: &TempDir, command: &str, api_version: &str) -> ExecConfig {
        ExecConfig {
            command: command.to_owned(),
            args: vec!["--flag".to_owned()],
            env: vec![("PLUGIN_TOKEN".to_owned(), "tok-from-env".to_owned())],
            api_version: api_version.to_owned(),
            base_dir: dir.path().to_path_buf(),
            install_hint: None,
            provide_cluster_info: false,
            cluster: ExecClusterInfo::default(),
        }
    }

    fn credential_script(api_version: &str, expiry: &str) -> String {
        format!(
            r#"printf '{{"apiVersion":"{api_version}","kind":"ExecCredential","status":{{"token":"%s-%s"{expiry}}}}}' "$PLUGIN_TOKEN" "$1""#
        )
    }

    fn exec_auth(config: ExecConfig, now: &str, timeout: Duration) -> Authenticator {
        let options = Options {
            exec_timeout: timeout,
            wall_clock: fixed_wall_clock(now),
            ..Options::default()
        };
        Authenticator::with_options(AuthConfig::Exec(config), options)
    }

    #[test]
    fn an_exec_token_is_cached_until_it_expires() {
        let dir = TempDir::new("auth-exec-cache");
        let expiry = r#","expirationTimestamp":"2026-11-25T22:00:00Z""#;
        plugin(&dir, "bin/plugin", &credential_script(EXEC_API_V1, expiry));
        // A relative command with a slash resolves against the kubeconfig directory.
        let config = exec_config(&dir, "bin/plugin", EXEC_API_V1);
        let auth = exec_auth(
            config.clone(),
            "2026-11-25T21:59:00Z",
            Duration::from_secs(10),
        );
        assert_eq!(header(&auth), "Bearer tok-from-env---flag");
        assert_eq!(header(&auth), "Bearer tok-from-env---flag");
        assert_eq!(runs(&dir), 1);
        auth.invalidate();
        header(&auth);
        assert_eq!(runs(&dir), 2, "invalidate re-runs the plugin");

        // Within the 10 s safety margin the token counts as expired.
        let late = exec_auth(config, "2026-11-25T21:59:51Z", Duration::from_secs(10));
        header(&late);
        header(&late);
        assert_eq!(runs(&dir), 4);
    }

    #[test]
    fn an_exec_token_without_expiry_is_kept_until_invalidated() {
        let dir = TempDir::new("auth-exec-forever");
        let path = plugin(&dir, "plugin", &credential_script(EXEC_API_V1BETA1, ""));
        let config = exec_config(&dir, &path.display().to_string(), EXEC_API_V1BETA1);
        let auth = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_secs(10));
        for _ in 0..3 {
            assert_eq!(header(&auth), "Bearer tok-from-env---flag");
        }
        assert_eq!(runs(&dir), 1);
        auth.invalidate();
        header(&auth);
        assert_eq!(runs(&dir), 2);
    }

    #[test]
    fn the_plugin_sees_exec_info_with_cluster_details() {
        let dir = TempDir::new("auth-exec-info");
        let out = dir.path().join("info.json");
        let body = format!(
            "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '{}'\n{}",
            out.display(),
            credential_script(EXEC_API_V1, "")
        );
        let path = plugin(&dir, "plugin", &body);
        let mut config = exec_config(&dir, &path.display().to_string(), EXEC_API_V1);
        config.provide_cluster_info = true;
        config.cluster = ExecClusterInfo {
            server: "https://10.0.0.1:6443".to_owned(),
            certificate_authority_data: Some(b"PEM".to_vec()),
            tls_server_name: Some("kubernetes".to_owned()),
            insecure_skip_tls_verify: false,
        };
        header(&exec_auth(
            config,
            "2030-01-01T00:00:00Z",
            Duration::from_secs(10),
        ));
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out).expect("info")).expect("json");
        assert_eq!(
            info,
            serde_json::json!({
                "apiVersion": EXEC_API_V1,
                "kind": "ExecCredential",
                "spec": {
                    "interactive": false,
                    "cluster": {
                        "server": "https://10.0.0.1:6443",
                        "certificate-authority-data": "UEVN",
                        "tls-server-name": "kubernetes",
                    }
                }
            })
        );
    }

    #[test]
    fn a_failing_plugin_reports_status_and_stderr() {
        let dir = TempDir::new("auth-exec-fail");
        let path = plugin(
            &dir,
            "plugin",
            "echo 'token expired, run aws sso login' >&2\nexit 3",
        );
        let config = exec_config(&dir, &path.display().to_string(), EXEC_API_V1);
        let err = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_secs(10))
            .header()
            .expect_err("fails")
            .to_string();
        assert_eq!(
            err,
            format!(
                "exec plugin \"{}\" failed (exit status: 3): token expired, run aws sso login",
                path.display()
            )
        );
    }

    #[test]
    fn a_slow_plugin_is_killed_and_reported_as_timed_out() {
        let dir = TempDir::new("auth-exec-timeout");
        let path = plugin(&dir, "plugin", "exec sleep 5");
        let config = exec_config(&dir, &path.display().to_string(), EXEC_API_V1);
        let started = Instant::now();
        let err = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_millis(300))
            .header()
            .expect_err("times out");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(err, Error::ExecTimeout { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("timed out after 0.3s and was killed"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_plugin_shows_the_install_hint() {
        let dir = TempDir::new("auth-exec-missing");
        let mut config = exec_config(&dir, "opsctrl-no-such-plugin", EXEC_API_V1);
        config.install_hint = Some("install it with: brew install thing\n".to_owned());
        let err = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_secs(10))
            .header()
            .expect_err("not found")
            .to_string();
        assert_eq!(
            err,
            "exec plugin \"opsctrl-no-such-plugin\" not found; install it with: brew install thing"
        );
    }

    #[test]
    fn bad_plugin_output_is_explained_without_the_token() {
        let dir = TempDir::new("auth-exec-output");
        let cases = [
            (
                "echo not json",
                "stdout is not an ExecCredential JSON document",
            ),
            (
                r#"echo '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"secret-tok"}}'"#,
                "apiVersion is client.authentication.k8s.io/v1beta1 but the kubeconfig asks for client.authentication.k8s.io/v1",
            ),
            (
                r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"x","clientKeyData":"y"}}'"#,
                "certificate-returning exec plugins are not supported",
            ),
            (
                r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"secret-tok","expirationTimestamp":"tomorrow"}}'"#,
                "status.expirationTimestamp \"tomorrow\" is not an RFC 3339 time",
            ),
            (
                r#"echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}'"#,
                "status is missing",
            ),
        ];
        for (i, (body, expected)) in cases.into_iter().enumerate() {
            let path = plugin(&dir, &format!("plugin{i}"), body);
            let config = exec_config(&dir, &path.display().to_string(), EXEC_API_V1);
            let err = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_secs(10))
                .header()
                .expect_err("bad output")
                .to_string();
            assert!(err.contains("returned unusable output: "), "{err}");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("secret-tok"), "{err}");
        }
    }

    #[test]
    fn exec_v1alpha1_is_refused() {
        let dir = TempDir::new("auth-exec-alpha");
        let config = exec_config(&dir, "true", "client.authentication.k8s.io/v1alpha1");
        let err = exec_auth(config, "2030-01-01T00:00:00Z", Duration::from_secs(10))
            .header()
            .expect_err("unsupported")
            .to_string();
        assert!(
            err.contains("apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"),
            "{err}"
        );
    }

    #[test]
    fn rfc3339_timestamps_parse_to_unix_time() {
        let secs = |s: &str| {
            parse_rfc3339(s)
                .expect(s)
                .duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_secs_f64()
        };
        assert_eq!(secs("1970-01-01T00:00:00Z"), 0.0);
        assert_eq!(secs("2026-11-25T22:00:00Z"), 1_795_644_000.0);
        assert_eq!(secs("2026-11-25T23:00:00+01:00"), 1_795_644_000.0);
        assert_eq!(secs("2026-11-25t21:30:00.250-00:30"), 1_795_644_000.0);
        assert_eq!(secs("2000-02-29T12:00:00Z"), 951_825_600.0);
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-11-25 22:00",
            "2026-11-25T22:00:00",
            "2026-13-01T00:00:00Z",
            "2026-11-25T22:00:00.Z",
            "2026-11-25T22:00:00+0100",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_excerpt_is_trimmed_and_capped() {
        assert_eq!(excerpt(b"  oops \n"), "oops");
        let long = "x".repeat(600);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), STDERR_EXCERPT + 1);
        assert!(cut.ends_with('…'));
    }
}
