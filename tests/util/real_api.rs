/*!
A real kube-apiserver (with etcd) for the integration tests.

[`shared()`] starts one cluster per test binary, the first time a test asks: etcd and
kube-apiserver on free loopback ports, a fresh CA, a serving certificate for 127.0.0.1, a
service-account signing key, and a static admin token in `system:masters`, with
`--authorization-mode=Node,RBAC` and the default admission plugins (so Pod Security
admission and the ServiceAccount plugin are on). Tests share it and each works in
namespaces of its own ([`Cluster::namespace`]). [`Cluster::start`] makes a dedicated
cluster (other flags, restarts) that is stopped when dropped.

The binaries come from `KUBEBUILDER_ASSETS` (envtest's folder with `kube-apiserver`, `etcd`
and `kubectl`) or from `KUBE_APISERVER` and `ETCD` (kubectl then from `KUBECTL` or `PATH`).
Without them the real-cluster tests skip with one line saying how to enable them, except
with `CI=true` or `REQUIRE_REAL_APISERVER=1`, where that is a failure.

Rust statics are never dropped, and a test binary can be killed. So each server runs under
a small `sh` watchdog that stops it (SIGTERM, then SIGKILL after 3 s) and removes the cluster's
directory as soon as the test process is gone, or when the watchdog itself gets SIGTERM.
*/

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The admin user's groups: everything is allowed.
const ADMIN_USER: &str = "realk8s-admin";

/// The binaries a cluster needs.
#[derive(Clone, Debug)]
pub struct Bins {
    pub apiserver: PathBuf,
    pub etcd: PathBuf,
    pub kubectl: PathBuf,
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("REQUIRE_REAL_APISERVER").is_ok_and(|v| v == "1" || v == "true")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// Finds the binaries, or says what is missing.
pub fn bins() -> Result<Bins, String> {
    let exe = |p: PathBuf, what: &str| -> Result<PathBuf, String> {
        if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{what}: {} is not a file", p.display()))
        }
    };
    let kubectl_fallback = || {
        std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .or_else(|| on_path("kubectl"))
            .ok_or_else(|| "kubectl is neither in KUBECTL nor on PATH".to_string())
    };
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let kubectl = dir.join("kubectl");
        return Ok(Bins {
            apiserver: exe(dir.join("kube-apiserver"), "KUBEBUILDER_ASSETS")?,
            etcd: exe(dir.join("etcd"), "KUBEBUILDER_ASSETS")?,
            kubectl: if kubectl.is_file() {
                kubectl
            } else {
                kubectl_fallback()?
            },
        });
    }
    match (std::env::var_os("KUBE_APISERVER"), std::env::var_os("ETCD")) {
        (Some(a), Some(e)) => Ok(Bins {
            apiserver: exe(a.into(), "KUBE_APISERVER")?,
            etcd: exe(e.into(), "ETCD")?,
            kubectl: kubectl_fallback()?,
        }),
        _ => Err("neither KUBEBUILDER_ASSETS nor KUBE_APISERVER and ETCD are set".into()),
    }
}

/// Writes one line to the real stderr (not libtest's captured one).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The cluster shared by every test of this binary, started on first use. `None` means the
/// binaries are not there and the calling test should return (it has been said once why).
pub fn shared() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    static SKIP: Once = Once::new();
    let c = CLUSTER.get_or_init(|| {
        let bins = bins()?;
        Cluster::start(&bins, Options::default())
    });
    match c {
        Ok(c) => Some(c),
        Err(e) if required() || bins().is_ok() => {
            panic!("real kube-apiserver: {e}")
        }
        Err(e) => {
            SKIP.call_once(|| {
                say(&format!(
                    "real-cluster tests skipped ({e}): set KUBEBUILDER_ASSETS to a folder with \
                     kube-apiserver, etcd and kubectl (README, Tests), or KUBE_APISERVER and ETCD"
                ))
            });
            None
        }
    }
}

/// The binaries for a dedicated cluster, with the same skip rule as [`shared`] (without
/// starting the shared cluster).
pub fn bins_or_skip() -> Option<Bins> {
    match bins() {
        Ok(b) => Some(b),
        Err(e) if required() => panic!("real kube-apiserver: {e}"),
        Err(_) => {
            // Says why, once.
            shared()?;
            None
        }
    }
}

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--watch-cache`; off, watches are served by etcd and compaction reaches them.
    pub watch_cache: bool,
    /// `--etcd-compaction-interval` (kube-apiserver's default: 5m).
    pub compaction_interval: Duration,
    /// Write an audit log of list and watch requests (see [`Cluster::audit`]).
    pub audit: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            watch_cache: true,
            compaction_interval: Duration::from_secs(300),
            audit: true,
        }
    }
}

/// A server process under its watchdog.
struct Proc {
    watchdog: Child,
}

impl Proc {
    fn spawn(dir: &Path, log: &Path, program: &Path, args: &[String]) -> Result<Proc, String> {
        // $1 the test process, $2 the directory to remove once it is gone, $3 the log.
        const WATCHDOG: &str = r#"p=$1; d=$2; log=$3; shift 3
"$@" >>"$log" 2>&1 &
c=$!
stop() {
  kill -TERM "$c" 2>/dev/null
  i=0
  while kill -0 "$c" 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$c" 2>/dev/null
  wait "$c" 2>/dev/null
}
trap 'stop; exit 0' TERM INT HUP
while kill -0 "$p" 2>/dev/null && kill -0 "$c" 2>/dev/null; do sleep 0.3; done
stop
kill -0 "$p" 2>/dev/null || rm -rf "$d"
"#;
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("realk8s-watchdog")
            .arg(std::process::id().to_string())
            .arg(dir)
            .arg(log)
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        Ok(Proc { watchdog: child })
    }

    /// SIGTERM to the watchdog (which stops the server) and wait for both.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.watchdog.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
    }

    fn exited(&mut self) -> bool {
        matches!(self.watchdog.try_wait(), Ok(Some(_)))
    }
}

/// A running etcd + kube-apiserver.
pub struct Cluster {
    pub bins: Bins,
    pub dir: PathBuf,
    pub port: u16,
    pub ca_pem: String,
    pub admin_token: String,
    /// A kubeconfig for the admin (kubectl).
    pub admin_kubeconfig: PathBuf,
    args: Vec<String>,
    etcd: Mutex<Option<Proc>>,
    apiserver: Mutex<Option<Proc>>,
    agent: ureq::Agent,
    names: AtomicU64,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// 16 random hex digits (from the OS; the admin token and names).
fn rand_hex() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    format!("{:016x}", u64::from_le_bytes(b))
}

struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key: String,
    sa_public: String,
    sa_private: String,
}

fn pki() -> Result<Pki, String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let e = |e: rcgen::Error| format!("rcgen: {e}");
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "realk8s-test-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate().map_err(e)?;
    let mut sp = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes.default.svc".to_string(),
    ])
    .map_err(e)?;
    sp.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    sp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = sp.signed_by(&server_key, &issuer).map_err(e)?;
    let sa = KeyPair::generate().map_err(e)?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        server_pem: server.pem(),
        server_key: server_key.serialize_pem(),
        sa_public: sa.public_key_pem(),
        sa_private: sa.serialize_pem(),
    })
}

/// Only list and watch of pods and namespaces, and Lease writes: once when they start
/// answering (a watch's ResponseStarted) and once when they end.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [list, watch]
    resources:
      - group: \"\"
        resources: [pods, namespaces]
  - level: Metadata
    verbs: [create, update]
    resources:
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
";

impl Cluster {
    /// Starts etcd and kube-apiserver and waits for `/readyz`.
    pub fn start(bins: &Bins, opts: Options) -> Result<Cluster, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "opsctrl-realk8s-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let pki = pki()?;
        let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
        write(&dir.join("ca.crt"), &pki.ca_pem)?;
        write(&dir.join("server.crt"), &pki.server_pem)?;
        write(&dir.join("server.key"), &pki.server_key)?;
        write(&dir.join("sa.pub"), &pki.sa_public)?;
        write(&dir.join("sa.key"), &pki.sa_private)?;
        let admin_token = rand_hex() + &rand_hex();
        write(
            &dir.join("tokens.csv"),
            &format!("{admin_token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )?;
        write(&dir.join("audit-policy.yaml"), AUDIT_POLICY)?;

        let (etcd_port, peer_port, port) = (free_port(), free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_args: Vec<String> = vec![
            "--name=default".into(),
            format!("--data-dir={}", p("etcd")),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--log-level=warn".into(),
        ];
        let etcd = Proc::spawn(&dir, &dir.join("etcd.log"), &bins.etcd, &etcd_args)?;

        let mut args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", p("certs")),
            format!("--tls-cert-file={}", p("server.crt")),
            format!("--tls-private-key-file={}", p("server.key")),
            format!("--client-ca-file={}", p("ca.crt")),
            format!("--token-auth-file={}", p("tokens.csv")),
            format!("--service-account-key-file={}", p("sa.pub")),
            format!("--service-account-signing-key-file={}", p("sa.key")),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--authorization-mode=Node,RBAC".into(),
            "--service-cluster-ip-range=10.96.0.0/24".into(),
            "--profiling=false".into(),
            format!("--watch-cache={}", opts.watch_cache),
            format!(
                "--etcd-compaction-interval={}s",
                opts.compaction_interval.as_secs()
            ),
            // Watches without timeoutSeconds end after 30–60 s (the daemon always sends one).
            "--min-request-timeout=30".into(),
            "--v=1".into(),
        ];
        if opts.audit {
            args.push(format!("--audit-policy-file={}", p("audit-policy.yaml")));
            args.push(format!("--audit-log-path={}", p("audit.log")));
            args.push("--audit-log-mode=blocking".into());
        }
        let agent = agent(&pki.ca_pem)?;
        let kc = dir.join("admin.kubeconfig");
        let c = Cluster {
            bins: bins.clone(),
            dir: dir.clone(),
            port,
            ca_pem: pki.ca_pem,
            admin_token,
            admin_kubeconfig: kc.clone(),
            args,
            etcd: Mutex::new(Some(etcd)),
            apiserver: Mutex::new(None),
            agent,
            names: AtomicU64::new(0),
        };
        write(&kc, &c.kubeconfig_yaml(&c.admin_token))?;
        c.start_apiserver()?;
        Ok(c)
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// (Re)starts kube-apiserver and waits until `/readyz` is 200.
    pub fn start_apiserver(&self) -> Result<(), String> {
        let started = Instant::now();
        let proc = Proc::spawn(
            &self.dir,
            &self.dir.join("apiserver.log"),
            &self.bins.apiserver,
            &self.args,
        )?;
        *self.apiserver.lock().unwrap() = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.readyz() == Some(200) {
                let took = started.elapsed();
                if std::env::var_os("REALK8S_LOG").is_some() {
                    say(&format!(
                        "kube-apiserver ready in {took:?} at {}",
                        self.url()
                    ));
                }
                return Ok(());
            }
            let exited = self
                .apiserver
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(Proc::exited);
            if exited || Instant::now() > deadline {
                return Err(format!(
                    "kube-apiserver did not become ready ({}); its log ends:\n{}\netcd log:\n{}",
                    if exited { "it exited" } else { "timed out" },
                    self.tail("apiserver.log", 30),
                    self.tail("etcd.log", 10)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops kube-apiserver (SIGTERM, then SIGKILL); etcd keeps running.
    pub fn stop_apiserver(&self) {
        let t = Instant::now();
        if let Some(mut p) = self.apiserver.lock().unwrap().take() {
            p.stop();
        }
        if std::env::var_os("REALK8S_LOG").is_some() {
            say(&format!("kube-apiserver stopped in {:?}", t.elapsed()));
        }
    }

    /// The last `n` lines of one of the cluster's logs.
    pub fn tail(&self, file: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `GET /readyz` status, None when unreachable.
    pub fn readyz(&self) -> Option<u16> {
        self.agent
            .get(format!("{}/readyz", self.url()))
            .header("Authorization", format!("Bearer {}", self.admin_token))
            .call()
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// A kubeconfig for this server with a bearer `token`.
    pub fn kubeconfig_yaml(&self, token: &str) -> String {
        self.kubeconfig_with_user(&format!("    token: {}\n", q(token)))
    }

    /// The same, for the server reached at `url` (a proxy in front of it).
    pub fn kubeconfig_via(&self, url: &str, token: &str) -> String {
        self.kubeconfig_yaml(token)
            .replace(&q(&self.url()), &q(url))
    }

    /// A kubeconfig that reads its token from `file` (as a projected token is read).
    pub fn kubeconfig_token_file(&self, file: &Path) -> String {
        self.kubeconfig_with_user(&format!("    tokenFile: {}\n", q(&file.to_string_lossy())))
    }

    fn kubeconfig_with_user(&self, user: &str) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: realk8s\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\nusers:\n- name: realk8s-user\n  user:\n{user}contexts:\n\
             - name: realk8s\n  context:\n    cluster: realk8s\n    user: realk8s-user\n\
             current-context: realk8s\npreferences: {{}}\n",
            q(&self.url()),
            b64.encode(&self.ca_pem),
        )
    }

    // -----------------------------------------------------------------------------------------
    // The admin's REST calls
    // -----------------------------------------------------------------------------------------

    /// One request as the admin: (status, JSON body or Null).
    pub fn call(&self, method: &str, path: &str, body: Option<(&str, &Value)>) -> (u16, Value) {
        self.call_as(&self.admin_token, method, path, body)
    }

    /// One request with bearer `token`; `body` is (content type, JSON).
    pub fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &Value)>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.url());
        let auth = format!("Bearer {token}");
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            (m, Some((ct, b))) => {
                let text = b.to_string();
                let req = match m {
                    "POST" => self.agent.post(&url),
                    "PUT" => self.agent.put(&url),
                    "PATCH" => self.agent.patch(&url),
                    other => panic!("method {other}"),
                };
                req.header("Authorization", &auth)
                    .header("Content-Type", ct)
                    .send(text.as_bytes())
            }
            (m, None) => panic!("{m} needs a body"),
        };
        match resp {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let text = r.body_mut().read_to_string().unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({ "error": e.to_string() })),
        }
    }

    /// GET that must succeed.
    pub fn get(&self, path: &str) -> Value {
        let (s, v) = self.call("GET", path, None);
        assert_eq!(s, 200, "GET {path}: {v}");
        v
    }

    /// POST that must create (201) or, for subresources, succeed.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let (s, v) = self.call("POST", path, Some(("application/json", body)));
        assert!(
            (200..300).contains(&s),
            "POST {path} → {s}: {v}\nbody: {body}"
        );
        v
    }

    /// A strategic-merge PATCH (what kubelet sends for pod status) that must succeed.
    pub fn patch(&self, path: &str, body: &Value) -> Value {
        let (s, v) = self.call(
            "PATCH",
            path,
            Some(("application/strategic-merge-patch+json", body)),
        );
        assert_eq!(s, 200, "PATCH {path}: {v}\nbody: {body}");
        v
    }

    pub fn delete(&self, path: &str) -> u16 {
        self.call("DELETE", path, None).0
    }

    /// A fresh namespace named `<prefix>-<n>` with its `default` ServiceAccount (which
    /// kube-controller-manager would create; the ServiceAccount admission plugin needs it for
    /// pods), labelled `labels`.
    pub fn namespace(&self, prefix: &str) -> String {
        self.namespace_labelled(prefix, &json!({}))
    }

    pub fn namespace_labelled(&self, prefix: &str, labels: &Value) -> String {
        let name = format!("{prefix}-{}", self.names.fetch_add(1, Ordering::SeqCst));
        self.post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": labels}}),
        );
        self.post(
            &format!("/api/v1/namespaces/{name}/serviceaccounts"),
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        );
        name
    }

    /// A unique suffix for cluster-scoped names.
    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.names.fetch_add(1, Ordering::SeqCst))
    }

    /// Runs the real kubectl as the admin (or with `kubeconfig`).
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(&self.admin_kubeconfig, args, None)
    }

    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bins.kubectl);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("KUBECONFIG", kubeconfig)
            .arg(format!(
                "--cache-dir={}",
                self.dir.join("kubectl-cache").display()
            ))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        child.wait_with_output().expect("kubectl output")
    }

    // -----------------------------------------------------------------------------------------
    // The audit log
    // -----------------------------------------------------------------------------------------

    /// Audit events (list and watch of pods and namespaces, Lease writes) of `user`, in order.
    pub fn audit(&self, user: &str) -> Vec<Audit> {
        let Ok(f) = std::fs::File::open(self.dir.join("audit.log")) else {
            return Vec::new();
        };
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .filter(|e| e["user"]["username"] == user)
            .map(|e| Audit {
                stage: e["stage"].as_str().unwrap_or("").into(),
                verb: e["verb"].as_str().unwrap_or("").into(),
                uri: e["requestURI"].as_str().unwrap_or("").into(),
                resource: e["objectRef"]["resource"].as_str().unwrap_or("").into(),
                code: e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                user_agent: e["userAgent"].as_str().unwrap_or("").into(),
                id: e["auditID"].as_str().unwrap_or("").into(),
            })
            .collect()
    }
}

/// One audit event.
#[derive(Clone, Debug)]
pub struct Audit {
    pub stage: String,
    pub verb: String,
    pub uri: String,
    pub resource: String,
    pub code: u16,
    pub user_agent: String,
    /// One request's events share it.
    pub id: String,
}

impl Audit {
    /// A query parameter of the request URI (percent-decoding `%2C`, `%3D`, `%21`).
    pub fn param(&self, key: &str) -> Option<String> {
        let q = self.uri.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| {
                v.replace("%2C", ",")
                    .replace("%3D", "=")
                    .replace("%21", "!")
                    .replace("%3A", ":")
            })
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_apiserver();
        if let Some(mut p) = self.etcd.lock().unwrap().take() {
            p.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn agent(ca_pem: &str) -> Result<ureq::Agent, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let ca = Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| format!("CA PEM: {e}"))?
        .to_owned();
    let tls = TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&[ca]))
        .build();
    Ok(ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    ))
}

/// A YAML document (kubectl kustomize output) as JSON.
pub fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// A port that was free a moment ago. etcd and kube-apiserver take their
/// ports as flags and cannot report one they picked, so unlike the daemon
/// and the fakes (which bind port 0) they need one chosen up front; a port
/// taken in between makes that server fail to start, loudly.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}
