/*!
Where the cluster is and how to reach it.

`load` picks the configuration source with kubectl's precedence (`--kubeconfig`,
then `KUBECONFIG`, then the in-cluster service account, then `~/.kube/config`)
and turns the chosen context into a `ClusterConfig`: server URL, TLS material
and credentials, all checked up front so a bad kubeconfig fails at startup with
an error that names the file, the context and the field.

`parse_kubeconfig` is pure (text in, typed entries out); files are read only
at the edge. Tokens, private keys and exec env values are kept in `Secret` or
in types that print no contents, and never appear in error messages.
*/

use std::error::Error as StdError;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{ScanError, Yaml, YamlLoader};

use crate::secret::Secret;

/// Where the kubelet mounts the pod's service account.
pub const DEFAULT_SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The exec credential API versions we speak (v1alpha1 was removed in Kubernetes 1.24).
pub const EXEC_API_V1: &str = "client.authentication.k8s.io/v1";
pub const EXEC_API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// Everything needed to talk to one API server.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Base URL without a trailing slash, e.g. `https://10.43.0.1:443`.
    pub server: String,
    pub tls: TlsOptions,
    pub auth: AuthConfig,
    /// The context's namespace, or the in-cluster namespace file.
    pub namespace: Option<String>,
    pub origin: Origin,
}

/// Where a `ClusterConfig` came from, for logs and error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    InCluster,
    Kubeconfig {
        paths: Vec<PathBuf>,
        context: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::InCluster => f.write_str("in-cluster service account"),
            Origin::Kubeconfig { paths, context } => {
                write!(f, "kubeconfig {}, context \"{context}\"", join_paths(paths))
            }
        }
    }
}

/// How to set up TLS to the API server.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// Trust anchors; empty means "use the system CA bundle".
    pub ca_certs: Vec<CertificateDer<'static>>,
    pub insecure_skip_verify: bool,
    /// `tls-server-name`: the name to verify (and send as SNI) instead of the URL's host.
    pub server_name: Option<String>,
    pub client_cert: Option<ClientIdentity>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_certs", &self.ca_certs.len())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("server_name", &self.server_name)
            .field("client_cert", &self.client_cert)
            .finish()
    }
}

/// A client certificate chain and its private key (mTLS).
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ClientIdentity {
    fn clone(&self) -> Self {
        ClientIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    // The key never leaves this struct in printable form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientIdentity {{ chain: {} cert(s), key: <redacted> }}",
            self.chain.len()
        )
    }
}

/// How requests are authenticated, besides an optional client certificate.
// Built once per process; boxing `Exec` would only complicate matching.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum AuthConfig {
    None,
    Token(Secret),
    /// Re-read periodically: bound service-account tokens rotate.
    TokenFile(PathBuf),
    Exec(ExecConfig),
}

/// An exec credential plugin (`users[].user.exec`).
#[derive(Clone)]
pub struct ExecConfig {
    pub command: String,
    pub args: Vec<String>,
    /// Added to the inherited environment. Values may be secrets.
    pub env: Vec<(String, String)>,
    pub api_version: String,
    /// Directory of the kubeconfig that defined the user; a relative command with a `/` resolves here.
    pub base_dir: PathBuf,
    pub install_hint: Option<String>,
    pub provide_cluster_info: bool,
    /// Sent to the plugin in `KUBERNETES_EXEC_INFO` when `provide_cluster_info` is set.
    pub cluster: ExecClusterInfo,
}

impl fmt::Debug for ExecConfig {
    // Args and env values can carry credentials; print only their shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ExecConfig")
            .field("command", &self.command)
            .field("args", &self.args.len())
            .field("env", &env_names)
            .field("api_version", &self.api_version)
            .field("base_dir", &self.base_dir)
            .field("provide_cluster_info", &self.provide_cluster_info)
            .finish_non_exhaustive()
    }
}

/// The cluster half of `KUBERNETES_EXEC_INFO`.
#[derive(Clone, Debug, Default)]
pub struct ExecClusterInfo {
    pub server: String,
    /// PEM bytes of the CA, as configured (sent base64-encoded).
    pub certificate_authority_data: Option<Vec<u8>>,
    pub tls_server_name: Option<String>,
    pub insecure_skip_tls_verify: bool,
}

/// What the loader reads from the process environment; a struct so tests can fake it.
#[derive(Clone, Debug)]
pub struct Env {
    pub kubeconfig: Option<String>,
    pub service_host: Option<String>,
    pub service_port: Option<String>,
    pub home: Option<PathBuf>,
    pub sa_dir: PathBuf,
}

impl Env {
    pub fn from_process() -> Env {
        // kubectl treats an empty variable like an unset one. A value that is
        // not UTF-8 is kept (lossily) rather than read as unset, so a non-UTF-8
        // KUBECONFIG path fails naming KUBECONFIG instead of silently falling
        // back to the in-cluster account or ~/.kube/config.
        let var = |name: &str| {
            std::env::var_os(name)
                .map(|v| v.to_string_lossy().into_owned())
                .filter(|v| !v.is_empty())
        };
        Env {
            kubeconfig: var("KUBECONFIG"),
            service_host: var("KUBERNETES_SERVICE_HOST"),
            service_port: var("KUBERNETES_SERVICE_PORT"),
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
            sa_dir: PathBuf::from(DEFAULT_SA_DIR),
        }
    }
}

/// A parsed kubeconfig, or several merged. Entries remember the file that
/// defined them, because relative paths resolve against that file's directory.
#[derive(Clone, Default)]
pub struct Kubeconfig {
    pub current_context: Option<String>,
    pub clusters: Vec<Named<KubeCluster>>,
    pub users: Vec<Named<KubeUser>>,
    pub contexts: Vec<Named<KubeContext>>,
}

#[derive(Clone, Debug)]
pub struct Named<T> {
    pub name: String,
    pub file: PathBuf,
    pub value: T,
}

/// `clusters[].cluster`, as written.
#[derive(Clone, Debug, Default)]
pub struct KubeCluster {
    pub server: Option<String>,
    pub certificate_authority: Option<String>,
    pub certificate_authority_data: Option<String>,
    pub insecure_skip_tls_verify: bool,
    pub tls_server_name: Option<String>,
}

/// `users[].user`, as written. No `Debug`: user blocks hold credentials.
#[derive(Clone, Default)]
pub struct KubeUser {
    pub client_certificate: Option<String>,
    pub client_certificate_data: Option<String>,
    pub client_key: Option<String>,
    pub client_key_data: Option<Secret>,
    pub token: Option<Secret>,
    pub token_file: Option<String>,
    pub exec: Option<KubeExec>,
    /// The `auth-provider` name (e.g. `gcp`, `oidc`); its config is never read.
    pub auth_provider: Option<String>,
    /// `username`/`password` were set.
    pub basic_auth: bool,
}

/// `users[].user.exec`, as written.
#[derive(Clone, Default)]
pub struct KubeExec {
    pub api_version: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub install_hint: Option<String>,
    pub provide_cluster_info: bool,
}

/// `contexts[].context`, as written.
#[derive(Clone, Debug, Default)]
pub struct KubeContext {
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug)]
pub enum Error {
    /// A kubeconfig file could not be read.
    Read {
        path: PathBuf,
        source: io::Error,
    },
    /// A kubeconfig file is not YAML (or JSON).
    Yaml {
        path: PathBuf,
        source: ScanError,
    },
    /// A kubeconfig entry has the wrong shape; `entry` is e.g. `user "admin"`.
    Malformed {
        path: PathBuf,
        entry: String,
        problem: String,
    },
    /// `KUBECONFIG` lists only files that do not exist.
    NoKubeconfigFiles {
        paths: Vec<PathBuf>,
    },
    /// No source applies at all.
    NothingFound {
        reason: String,
    },
    NoCurrentContext {
        paths: Vec<PathBuf>,
    },
    UnknownContext {
        paths: Vec<PathBuf>,
        context: String,
        available: Vec<String>,
    },
    /// The chosen configuration is incomplete or inconsistent.
    Invalid {
        origin: Origin,
        problem: String,
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => {
                write!(f, "cannot read kubeconfig {}: {source}", path.display())
            }
            Error::Yaml { path, source } => {
                write!(
                    f,
                    "kubeconfig {} is not valid YAML: {source}",
                    path.display()
                )
            }
            Error::Malformed {
                path,
                entry,
                problem,
            } => write!(f, "kubeconfig {}: {entry}: {problem}", path.display()),
            Error::NoKubeconfigFiles { paths } => write!(
                f,
                "none of the files in KUBECONFIG exist: {}",
                join_paths(paths)
            ),
            Error::NothingFound { reason } => {
                write!(f, "no cluster configuration found: {reason}")
            }
            Error::NoCurrentContext { paths } => write!(
                f,
                "kubeconfig {}: no current-context; pass --context",
                join_paths(paths)
            ),
            Error::UnknownContext {
                paths,
                context,
                available,
            } => {
                write!(
                    f,
                    "kubeconfig {}: context \"{context}\" not found",
                    join_paths(paths)
                )?;
                if available.is_empty() {
                    f.write_str(" (no contexts defined)")
                } else {
                    let names: Vec<String> = available.iter().map(|n| format!("\"{n}\"")).collect();
                    write!(f, " (available: {})", names.join(", "))
                }
            }
            Error::Invalid {
                origin,
                problem,
                source,
            } => {
                write!(f, "{origin}: {problem}")?;
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
            Error::Read { source, .. } => Some(source),
            Error::Yaml { source, .. } => Some(source),
            Error::Invalid {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Finds the cluster with kubectl's precedence and resolves the chosen context.
///
/// An explicit `context` skips the in-cluster source: a context only exists in a kubeconfig.
pub fn load(
    kubeconfig_flag: Option<&Path>,
    context: Option<&str>,
    env: &Env,
) -> Result<ClusterConfig, Error> {
    if let Some(path) = kubeconfig_flag {
        return load_files(&[path.to_path_buf()], true, context);
    }
    if let Some(list) = &env.kubeconfig {
        let paths = split_kubeconfig_list(list);
        if !paths.is_empty() {
            return load_files(&paths, false, context);
        }
    }
    let in_cluster_reason = match (&env.service_host, &env.service_port, context) {
        (Some(host), Some(port), None) => return in_cluster(host, port, &env.sa_dir),
        (Some(_), Some(_), Some(_)) => "in-cluster config skipped because --context was given",
        _ => "not in a cluster (KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset)",
    };
    let Some(home) = &env.home else {
        return Err(Error::NothingFound {
            reason: format!(
                "no --kubeconfig, KUBECONFIG unset, {in_cluster_reason}, and HOME unset"
            ),
        });
    };
    let path = home.join(".kube").join("config");
    if !path.exists() {
        return Err(Error::NothingFound {
            reason: format!(
                "no --kubeconfig, KUBECONFIG unset, {in_cluster_reason}, and {} does not exist",
                path.display()
            ),
        });
    }
    load_files(&[path], true, context)
}

/// Splits `KUBECONFIG` the way kubectl does: `:`-separated, empties and duplicates dropped.
fn split_kubeconfig_list(list: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for part in list.split(':').filter(|p| !p.is_empty()) {
        let path = PathBuf::from(part);
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// Reads, parses and merges kubeconfig files. Missing files are skipped unless `required`.
fn load_files(
    paths: &[PathBuf],
    required: bool,
    context: Option<&str>,
) -> Result<ClusterConfig, Error> {
    let mut files = Vec::new();
    let mut found = Vec::new();
    for path in paths {
        match read_text(path) {
            Ok(text) => {
                files.push(parse_kubeconfig(&text, path)?);
                found.push(path.clone());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
                log::debug!("kubeconfig {} does not exist, skipping", path.display());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    if files.is_empty() {
        return Err(Error::NoKubeconfigFiles {
            paths: paths.to_vec(),
        });
    }
    resolve(&merge(files), &found, context)
}

/// Merges kubeconfigs like kubectl: for each name the first file that defines it wins,
/// and `current-context` comes from the first file that sets it.
pub fn merge(files: Vec<Kubeconfig>) -> Kubeconfig {
    let mut merged = Kubeconfig::default();
    for file in files {
        if merged.current_context.is_none() {
            merged.current_context = file.current_context;
        }
        // Lookups take the first match, so appending keeps "first file wins".
        merged.clusters.extend(file.clusters);
        merged.users.extend(file.users);
        merged.contexts.extend(file.contexts);
    }
    merged
}

/// Parses one kubeconfig file's text. `path` is recorded on every entry and used in errors.
pub fn parse_kubeconfig(text: &str, path: &Path) -> Result<Kubeconfig, Error> {
    let yaml_error = |source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    };
    if expanded_nodes(text).map_err(yaml_error)? > MAX_YAML_NODES {
        return Err(Error::Malformed {
            path: path.to_path_buf(),
            entry: "top level".to_owned(),
            problem: format!(
                "its YAML aliases expand to more than {MAX_YAML_NODES} nodes; a kubeconfig needs a few hundred"
            ),
        });
    }
    let docs = YamlLoader::load_from_str(text).map_err(yaml_error)?;
    let root = match docs.first() {
        // An empty file is an empty config, as with kubectl.
        None | Some(Yaml::Null) => return Ok(Kubeconfig::default()),
        Some(Yaml::Hash(hash)) => Fields {
            hash,
            path,
            entry: "top level".to_owned(),
        },
        Some(_) => {
            return Err(Error::Malformed {
                path: path.to_path_buf(),
                entry: "top level".to_owned(),
                problem: "must be a mapping".to_owned(),
            });
        }
    };
    Ok(Kubeconfig {
        current_context: root.string("current-context")?,
        clusters: named_list(&root, "clusters", "cluster", parse_cluster)?,
        users: named_list(&root, "users", "user", parse_user)?,
        contexts: named_list(&root, "contexts", "context", parse_context)?,
    })
}

/// Most YAML nodes a kubeconfig may expand to. The loader copies an anchored
/// node for every alias, so a few hundred bytes of nested aliases (a "billion
/// laughs") would otherwise take every byte of memory.
const MAX_YAML_NODES: u64 = 1_000_000;

/// How many nodes `text` holds once its aliases are expanded, counted from the
/// parser's events (linear in the text) before the loader expands anything.
fn expanded_nodes(text: &str) -> Result<u64, ScanError> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    #[derive(Default)]
    struct Count {
        /// Node counts of the open sequences and mappings.
        open: Vec<(usize, u64)>,
        /// Expanded size of each anchor, by anchor id.
        anchors: std::collections::HashMap<usize, u64>,
        total: u64,
    }
    impl Count {
        fn node(&mut self, anchor: usize, size: u64) {
            if anchor > 0 {
                self.anchors.insert(anchor, size);
            }
            match self.open.last_mut() {
                Some((_, n)) => *n = n.saturating_add(size),
                None => self.total = self.total.saturating_add(size),
            }
        }
    }
    impl MarkedEventReceiver for Count {
        fn on_event(&mut self, ev: Event, _: Marker) {
            match ev {
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.open.push((anchor, 1));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, size)) = self.open.pop() {
                        self.node(anchor, size);
                    }
                }
                Event::Scalar(_, _, anchor, _) => self.node(anchor, 1),
                Event::Alias(id) => {
                    let size = self.anchors.get(&id).copied().unwrap_or(1);
                    self.node(0, size);
                }
                _ => {}
            }
        }
    }
    let mut count = Count::default();
    Parser::new_from_str(text).load(&mut count, true)?;
    Ok(count.total)
}

fn parse_cluster(m: &Fields) -> Result<KubeCluster, Error> {
    Ok(KubeCluster {
        server: m.string("server")?,
        certificate_authority: m.string("certificate-authority")?,
        certificate_authority_data: m.string("certificate-authority-data")?,
        insecure_skip_tls_verify: m.boolean("insecure-skip-tls-verify")?,
        tls_server_name: m.string("tls-server-name")?,
    })
}

fn parse_user(m: &Fields) -> Result<KubeUser, Error> {
    let exec = match m.mapping("exec")? {
        Some(e) => Some(parse_exec(&e)?),
        None => None,
    };
    // Only the provider's name is read: its config block holds tokens.
    let auth_provider = match m.mapping("auth-provider")? {
        Some(p) => Some(p.string("name")?.unwrap_or_else(|| "unnamed".to_owned())),
        None => None,
    };
    Ok(KubeUser {
        client_certificate: m.string("client-certificate")?,
        client_certificate_data: m.string("client-certificate-data")?,
        client_key: m.string("client-key")?,
        client_key_data: m.string("client-key-data")?.map(Secret::new),
        token: m.string("token")?.map(Secret::new),
        token_file: m.string("tokenFile")?,
        exec,
        auth_provider,
        basic_auth: m.get("username").is_some() || m.get("password").is_some(),
    })
}

fn parse_exec(m: &Fields) -> Result<KubeExec, Error> {
    let mut args = Vec::new();
    for (i, arg) in m.list("args")?.iter().enumerate() {
        match arg {
            Yaml::String(s) => args.push(s.clone()),
            _ => return Err(m.wrong(&format!("args[{i}]"), "a string")),
        }
    }
    let mut env = Vec::new();
    for (i, item) in m.list("env")?.iter().enumerate() {
        let Yaml::Hash(hash) = item else {
            return Err(m.wrong(&format!("env[{i}]"), "a mapping with name and value"));
        };
        let entry = Fields {
            hash,
            path: m.path,
            entry: format!("{}: exec env[{i}]", m.entry),
        };
        let Some(name) = entry.string("name")? else {
            return Err(entry.wrong("name", "set"));
        };
        env.push((name, entry.string("value")?.unwrap_or_default()));
    }
    Ok(KubeExec {
        api_version: m.string("apiVersion")?,
        command: m.string("command")?,
        args,
        env,
        install_hint: m.string("installHint")?,
        provide_cluster_info: m.boolean("provideClusterInfo")?,
    })
}

fn parse_context(m: &Fields) -> Result<KubeContext, Error> {
    Ok(KubeContext {
        cluster: m.string("cluster")?,
        user: m.string("user")?,
        namespace: m.string("namespace")?,
    })
}

/// Parses `clusters`/`users`/`contexts`: a list of `{name, <item_key>: {...}}`.
fn named_list<T: Default>(
    root: &Fields,
    list_key: &str,
    item_key: &str,
    parse: fn(&Fields) -> Result<T, Error>,
) -> Result<Vec<Named<T>>, Error> {
    let mut out = Vec::new();
    for (i, item) in root.list(list_key)?.iter().enumerate() {
        let label = format!("{list_key}[{i}]");
        let Yaml::Hash(hash) = item else {
            return Err(Error::Malformed {
                path: root.path.to_path_buf(),
                entry: label,
                problem: "must be a mapping".to_owned(),
            });
        };
        let item_fields = Fields {
            hash,
            path: root.path,
            entry: label,
        };
        let Some(name) = item_fields.string("name")? else {
            return Err(item_fields.wrong("name", "set"));
        };
        let mut inner = item_fields.mapping(item_key)?;
        let value = match inner.as_mut() {
            Some(fields) => {
                fields.entry = format!("{item_key} \"{name}\"");
                parse(fields)?
            }
            None => T::default(),
        };
        out.push(Named {
            name,
            file: root.path.to_path_buf(),
            value,
        });
    }
    Ok(out)
}

/// Typed access to one YAML mapping; errors name the file, the entry and the field,
/// never the value (it may be a credential).
struct Fields<'a> {
    hash: &'a Hash,
    path: &'a Path,
    entry: String,
}

impl<'a> Fields<'a> {
    /// The value of `key`, treating `null` like a missing key (as kubectl does).
    fn get(&self, key: &str) -> Option<&'a Yaml> {
        match self.hash.get(&Yaml::String(key.to_owned())) {
            None | Some(Yaml::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn wrong(&self, key: &str, expected: &str) -> Error {
        Error::Malformed {
            path: self.path.to_path_buf(),
            entry: self.entry.clone(),
            problem: format!("{key} must be {expected}"),
        }
    }

    /// A string field; empty strings count as unset, like Go's zero values.
    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::String(s)) if s.is_empty() => Ok(None),
            Some(Yaml::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, Error> {
        match self.get(key) {
            None => Ok(false),
            Some(Yaml::Boolean(b)) => Ok(*b),
            Some(_) => Err(self.wrong(key, "true or false")),
        }
    }

    fn list(&self, key: &str) -> Result<&'a [Yaml], Error> {
        match self.get(key) {
            None => Ok(&[]),
            Some(Yaml::Array(items)) => Ok(items),
            Some(_) => Err(self.wrong(key, "a list")),
        }
    }

    fn mapping(&self, key: &str) -> Result<Option<Fields<'a>>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(Yaml::Hash(hash)) => Ok(Some(Fields {
                hash,
                path: self.path,
                entry: format!("{}: {key}", self.entry),
            })),
            Some(_) => Err(self.wrong(key, "a mapping")),
        }
    }
}

/// Turns the chosen context of a (merged) kubeconfig into a `ClusterConfig`,
/// reading and checking every referenced file and embedded certificate/key.
/// `paths` are the files that were read, for error messages.
pub fn resolve(
    kubeconfig: &Kubeconfig,
    paths: &[PathBuf],
    context: Option<&str>,
) -> Result<ClusterConfig, Error> {
    let context_name = match context {
        Some(name) => name.to_owned(),
        None => match &kubeconfig.current_context {
            Some(name) => name.clone(),
            None => {
                return Err(Error::NoCurrentContext {
                    paths: paths.to_vec(),
                });
            }
        },
    };
    let Some(ctx) = find(&kubeconfig.contexts, &context_name) else {
        return Err(Error::UnknownContext {
            paths: paths.to_vec(),
            context: context_name,
            available: kubeconfig.contexts.iter().map(|c| c.name.clone()).collect(),
        });
    };
    let origin = Origin::Kubeconfig {
        paths: paths.to_vec(),
        context: context_name.clone(),
    };
    let at_context = Where {
        origin: origin.clone(),
        file: &ctx.file,
        entry: format!("context \"{context_name}\""),
    };

    let Some(cluster_name) = &ctx.value.cluster else {
        return Err(at_context.invalid("names no cluster".to_owned(), None));
    };
    let Some(cluster) = find(&kubeconfig.clusters, cluster_name) else {
        return Err(Error::Invalid {
            origin,
            problem: format!("cluster \"{cluster_name}\" not found"),
            source: None,
        });
    };
    let at_cluster = Where {
        origin: entry_origin(&cluster.file, &context_name),
        file: &cluster.file,
        entry: format!("cluster \"{cluster_name}\""),
    };
    let (server, tls, exec_cluster) = resolve_cluster(&cluster.value, &at_cluster)?;

    let (auth, client_cert) = match &ctx.value.user {
        // A context without a user is anonymous (or relies on `kubectl proxy`).
        None => (AuthConfig::None, None),
        Some(user_name) => {
            let Some(user) = find(&kubeconfig.users, user_name) else {
                return Err(Error::Invalid {
                    origin,
                    problem: format!("user \"{user_name}\" not found"),
                    source: None,
                });
            };
            let at_user = Where {
                origin: entry_origin(&user.file, &context_name),
                file: &user.file,
                entry: format!("user \"{user_name}\""),
            };
            resolve_user(&user.value, &at_user, exec_cluster)?
        }
    };

    Ok(ClusterConfig {
        server,
        tls: TlsOptions { client_cert, ..tls },
        auth,
        namespace: ctx.value.namespace.clone(),
        origin,
    })
}

fn find<'a, T>(entries: &'a [Named<T>], name: &str) -> Option<&'a Named<T>> {
    entries.iter().find(|e| e.name == name)
}

fn entry_origin(file: &Path, context: &str) -> Origin {
    Origin::Kubeconfig {
        paths: vec![file.to_path_buf()],
        context: context.to_owned(),
    }
}

/// Error context for one kubeconfig entry: the file that defined it and its name.
struct Where<'a> {
    origin: Origin,
    file: &'a Path,
    entry: String,
}

impl Where<'_> {
    fn invalid(&self, problem: String, source: Option<Box<dyn StdError + Send + Sync>>) -> Error {
        Error::Invalid {
            origin: self.origin.clone(),
            problem: format!("{} {problem}", self.entry),
            source,
        }
    }

    /// A path from the kubeconfig, relative to the directory of the file that defined the entry.
    fn path(&self, raw: &str) -> PathBuf {
        let raw = Path::new(raw);
        if raw.is_absolute() {
            return raw.to_path_buf();
        }
        self.file.parent().unwrap_or(Path::new("")).join(raw)
    }

    fn dir(&self) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("")).to_path_buf()
    }

    /// Bytes from either `<field>-data` (base64) or `<field>` (a file); both set is an error, as in kubectl.
    fn material(
        &self,
        file_field: &str,
        file_value: Option<&str>,
        data_field: &str,
        data_value: Option<&str>,
    ) -> Result<Option<Vec<u8>>, Error> {
        match (file_value, data_value) {
            (Some(_), Some(_)) => Err(self.invalid(
                format!("sets both {file_field} and {data_field}; keep one"),
                None,
            )),
            (None, Some(data)) => decode_base64(data)
                .map(Some)
                .map_err(|problem| self.invalid(format!("{data_field} {problem}"), None)),
            (Some(file), None) => {
                let path = self.path(file);
                read_bounded(&path).map(Some).map_err(|e| {
                    self.invalid(
                        format!("{file_field}: cannot read {}", path.display()),
                        Some(Box::new(e)),
                    )
                })
            }
            (None, None) => Ok(None),
        }
    }
}

/// kubeconfig base64 may be wrapped over lines; Go's decoder skips newlines too.
/// The error names only the offset: the data may be a private key.
fn decode_base64(data: &str) -> Result<Vec<u8>, String> {
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(compact.as_bytes()).map_err(|e| match e {
        base64::DecodeError::InvalidByte(offset, _)
        | base64::DecodeError::InvalidLastSymbol { offset, .. } => {
            format!("is not valid base64 (bad character at offset {offset})")
        }
        base64::DecodeError::InvalidLength(_) => "is not valid base64 (truncated)".to_owned(),
        base64::DecodeError::InvalidPadding => "is not valid base64 (bad padding)".to_owned(),
    })
}

fn resolve_cluster(
    cluster: &KubeCluster,
    at: &Where,
) -> Result<(String, TlsOptions, ExecClusterInfo), Error> {
    let Some(raw_server) = &cluster.server else {
        return Err(at.invalid("has no server".to_owned(), None));
    };
    let ca_pem = at.material(
        "certificate-authority",
        cluster.certificate_authority.as_deref(),
        "certificate-authority-data",
        cluster.certificate_authority_data.as_deref(),
    )?;
    let ca_field = if cluster.certificate_authority.is_some() {
        "certificate-authority"
    } else {
        "certificate-authority-data"
    };
    let ca_certs = match &ca_pem {
        Some(pem) => parse_ca_certs(pem)
            .map_err(|(problem, source)| at.invalid(format!("{ca_field} {problem}"), source))?,
        None => Vec::new(),
    };
    if cluster.insecure_skip_tls_verify && !ca_certs.is_empty() {
        // client-go refuses this combination too.
        return Err(at.invalid(
            format!("sets both {ca_field} and insecure-skip-tls-verify; keep one"),
            None,
        ));
    }
    let tls_hint = ca_pem.is_some() || cluster.insecure_skip_tls_verify;
    let server = normalize_server(raw_server, tls_hint)
        .map_err(|problem| at.invalid(format!("server \"{raw_server}\" {problem}"), None))?;
    let exec_cluster = ExecClusterInfo {
        server: server.clone(),
        certificate_authority_data: ca_pem,
        tls_server_name: cluster.tls_server_name.clone(),
        insecure_skip_tls_verify: cluster.insecure_skip_tls_verify,
    };
    let tls = TlsOptions {
        ca_certs,
        insecure_skip_verify: cluster.insecure_skip_tls_verify,
        server_name: cluster.tls_server_name.clone(),
        client_cert: None,
    };
    Ok((server, tls, exec_cluster))
}

/// `https://host:port/` → `https://host:port`. A bare `host:port` gets https if any TLS
/// setting is present, http otherwise (client-go's rule).
fn normalize_server(raw: &str, tls_hint: bool) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = if trimmed.contains("://") {
        trimmed.to_owned()
    } else if tls_hint {
        format!("https://{trimmed}")
    } else {
        format!("http://{trimmed}")
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host".to_owned());
    }
    Ok(url)
}

type Problem = (String, Option<Box<dyn StdError + Send + Sync>>);

/// PEM certificates, each checked to be usable as a trust anchor.
fn parse_ca_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let certs = parse_cert_chain(pem)?;
    let mut store = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        store.add(cert.clone()).map_err(|e| {
            (
                format!("certificate {} cannot be used as a CA", i + 1),
                Some(Box::new(e) as Box<dyn StdError + Send + Sync>),
            )
        })?;
    }
    Ok(certs)
}

fn parse_cert_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("is not valid PEM".to_owned(), Some(Box::new(e) as _)))?;
    if certs.is_empty() {
        return Err(("contains no PEM CERTIFICATE block".to_owned(), None));
    }
    Ok(certs)
}

fn resolve_user(
    user: &KubeUser,
    at: &Where,
    exec_cluster: ExecClusterInfo,
) -> Result<(AuthConfig, Option<ClientIdentity>), Error> {
    if let Some(provider) = &user.auth_provider {
        return Err(at.invalid(
            format!(
                "uses auth-provider \"{provider}\", which is not supported; use an exec plugin instead"
            ),
            None,
        ));
    }
    if user.basic_auth {
        return Err(at.invalid(
            "uses username/password (basic auth), which is not supported".to_owned(),
            None,
        ));
    }
    let client_cert = resolve_client_cert(user, at)?;

    let has_token = user.token.is_some() || user.token_file.is_some();
    let auth = match (&user.exec, has_token) {
        (Some(_), true) => {
            return Err(at.invalid(
                "sets both a token and exec; only one authentication method is allowed".to_owned(),
                None,
            ));
        }
        (Some(exec), false) => AuthConfig::Exec(resolve_exec(exec, at, exec_cluster)?),
        // tokenFile wins over token, as in client-go: it is the one that gets refreshed.
        (None, true) => match (&user.token_file, &user.token) {
            (Some(file), _) => {
                let path = at.path(file);
                check_token_file(&path).map_err(|(problem, source)| {
                    at.invalid(format!("tokenFile {problem}"), source)
                })?;
                AuthConfig::TokenFile(path)
            }
            (None, Some(token)) => AuthConfig::Token(token.clone()),
            (None, None) => AuthConfig::None,
        },
        (None, false) => AuthConfig::None,
    };
    Ok((auth, client_cert))
}

fn resolve_client_cert(user: &KubeUser, at: &Where) -> Result<Option<ClientIdentity>, Error> {
    let cert_pem = at.material(
        "client-certificate",
        user.client_certificate.as_deref(),
        "client-certificate-data",
        user.client_certificate_data.as_deref(),
    )?;
    let key_pem = at.material(
        "client-key",
        user.client_key.as_deref(),
        "client-key-data",
        user.client_key_data.as_ref().map(Secret::expose),
    )?;
    let cert_field = if user.client_certificate.is_some() {
        "client-certificate"
    } else {
        "client-certificate-data"
    };
    let key_field = if user.client_key.is_some() {
        "client-key"
    } else {
        "client-key-data"
    };
    let (cert_pem, key_pem) = match (cert_pem, key_pem) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(at.invalid(format!("has {cert_field} but no client-key"), None));
        }
        (None, Some(_)) => {
            return Err(at.invalid(format!("has {key_field} but no client-certificate"), None));
        }
        (Some(c), Some(k)) => (c, k),
    };
    let chain = parse_cert_chain(&cert_pem)
        .map_err(|(problem, source)| at.invalid(format!("{cert_field} {problem}"), source))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => at.invalid(
            format!("{key_field} contains no PEM private key (RSA, EC or PKCS#8)"),
            None,
        ),
        other => at.invalid(
            format!("{key_field} is not valid PEM"),
            Some(Box::new(other)),
        ),
    })?;
    check_key_pair(&chain, &key).map_err(|(about_cert, (problem, source))| {
        // Name the field that is actually wrong: a certificate rustls cannot
        // parse is not a key problem.
        let field = if about_cert { cert_field } else { key_field };
        at.invalid(format!("{field}: {problem}"), source)
    })?;
    Ok(Some(ClientIdentity { chain, key }))
}

/// Fails early (with the field named) on a key rustls cannot load or that does not
/// match the certificate, instead of at the first TLS handshake. The `bool` is
/// true when the certificate, not the key, is at fault.
fn check_key_pair(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), (bool, Problem)> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| {
            (
                false,
                (
                    "the private key cannot be loaded".to_owned(),
                    Some(Box::new(e) as _),
                ),
            )
        })?;
    let certified = rustls::sign::CertifiedKey::new(chain.to_vec(), signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err((
            false,
            (
                "the private key does not match the client certificate".to_owned(),
                None,
            ),
        )),
        // webpki (and so rustls) only takes X.509 v3; `openssl x509 -req` without
        // extensions still writes v1, which kubectl accepts. Say so plainly.
        Err(e) if format!("{e:?}").contains("UnsupportedCertVersion") => Err((
            true,
            (
                "is an X.509 v1 certificate, which is not supported; reissue it as v3 \
                 (with openssl x509 -req, pass an -extfile that sets extendedKeyUsage = clientAuth)"
                    .to_owned(),
                None,
            ),
        )),
        Err(e) => Err((
            true,
            (
                "the client certificate cannot be parsed".to_owned(),
                Some(Box::new(e)),
            ),
        )),
    }
}

/// The token itself is read by the authenticator; here we only make sure it will work.
fn check_token_file(path: &Path) -> Result<(), Problem> {
    match read_text(path) {
        Ok(text) if text.trim().is_empty() => Err((format!("{} is empty", path.display()), None)),
        Ok(_) => Ok(()),
        Err(e) => Err((
            format!("{} cannot be read", path.display()),
            Some(Box::new(e)),
        )),
    }
}

fn resolve_exec(
    exec: &KubeExec,
    at: &Where,
    cluster: ExecClusterInfo,
) -> Result<ExecConfig, Error> {
    let Some(command) = &exec.command else {
        return Err(at.invalid("has exec without a command".to_owned(), None));
    };
    let api_version = match exec.api_version.as_deref() {
        Some(v @ (EXEC_API_V1 | EXEC_API_V1BETA1)) => v.to_owned(),
        Some(other) => {
            return Err(at.invalid(
                format!(
                    "exec apiVersion \"{other}\" is not supported (use {EXEC_API_V1} or {EXEC_API_V1BETA1})"
                ),
                None,
            ));
        }
        None => return Err(at.invalid("exec has no apiVersion".to_owned(), None)),
    };
    Ok(ExecConfig {
        command: command.clone(),
        args: exec.args.clone(),
        env: exec.env.clone(),
        api_version,
        base_dir: at.dir(),
        install_hint: exec.install_hint.clone(),
        provide_cluster_info: exec.provide_cluster_info,
        cluster,
    })
}

/// The in-cluster service account: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
fn in_cluster(host: &str, port: &str, sa_dir: &Path) -> Result<ClusterConfig, Error> {
    let invalid =
        |problem: String, source: Option<Box<dyn StdError + Send + Sync>>| Error::Invalid {
            origin: Origin::InCluster,
            problem,
            source,
        };
    if port.parse::<u16>().is_err() {
        return Err(invalid(
            format!("KUBERNETES_SERVICE_PORT \"{port}\" is not a port number"),
            None,
        ));
    }
    // An IPv6 literal must be bracketed inside a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let token_path = sa_dir.join("token");
    check_token_file(&token_path)
        .map_err(|(problem, source)| invalid(format!("token file {problem}"), source))?;
    let ca_path = sa_dir.join("ca.crt");
    let ca_pem = read_bounded(&ca_path).map_err(|e| {
        invalid(
            format!("cannot read CA file {}", ca_path.display()),
            Some(Box::new(e)),
        )
    })?;
    let ca_certs = parse_ca_certs(&ca_pem).map_err(|(problem, source)| {
        invalid(format!("CA file {} {problem}", ca_path.display()), source)
    })?;
    let ns_path = sa_dir.join("namespace");
    let namespace = match fs::read_to_string(&ns_path) {
        Ok(ns) => Some(ns.trim().to_owned()).filter(|ns| !ns.is_empty()),
        Err(e) => {
            log::debug!("no in-cluster namespace from {}: {e}", ns_path.display());
            None
        }
    };
    Ok(ClusterConfig {
        server: format!("https://{host}:{port}"),
        tls: TlsOptions {
            ca_certs,
            ..TlsOptions::default()
        },
        auth: AuthConfig::TokenFile(token_path),
        namespace,
        origin: Origin::InCluster,
    })
}

/// Most bytes read from a kubeconfig or any file it names. Real ones are a
/// few KiB; a path to a device (`/dev/zero`) or to a huge log file must fail
/// with an error, not be read until memory runs out.
const MAX_FILE: u64 = 16 << 20;

fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(buf)
}

fn read_text(path: &Path) -> io::Result<String> {
    String::from_utf8(read_bounded(path)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

fn join_paths(paths: &[PathBuf]) -> String {
    let parts: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    parts.join(":")
}

/// Helpers shared by the `kube::{config,auth,tls}` tests: temp dirs and a tiny PKI.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine as _;

    /// A directory under the system temp dir, removed on drop.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("opsctrl-daemon-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create parent dir");
            }
            std::fs::write(&path, contents).expect("write temp file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn b64(data: impl AsRef<[u8]>) -> String {
        base64::prelude::BASE64_STANDARD.encode(data)
    }

    /// A checked-in test-only private key from `tests/fixtures/kubeconfig/`.
    pub fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/kubeconfig")
            .join(name);
        std::fs::read_to_string(&path).expect("read fixture")
    }

    /// A CA that can issue server and client certificates.
    pub struct Ca {
        pub cert_pem: String,
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    impl Ca {
        pub fn new(name: &str) -> Ca {
            let key = rcgen::KeyPair::generate().expect("ca key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let cert = params.self_signed(&key).expect("self-signed ca");
            Ca {
                cert_pem: cert.pem(),
                issuer: rcgen::Issuer::new(params, key),
            }
        }

        /// A server certificate for `sans`; returns (cert PEM, PKCS#8 key PEM).
        pub fn server_cert(&self, sans: &[&str]) -> (String, String) {
            let key = rcgen::KeyPair::generate().expect("server key");
            let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
            let mut params = rcgen::CertificateParams::new(sans).expect("params");
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            let cert = params.signed_by(&key, &self.issuer).expect("server cert");
            (cert.pem(), key.serialize_pem())
        }

        /// A client certificate for the given PKCS#8 key PEM.
        pub fn client_cert(&self, cn: &str, pkcs8_key_pem: &str) -> String {
            let key = rcgen::KeyPair::from_pem(pkcs8_key_pem).expect("client key");
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
            params
                .signed_by(&key, &self.issuer)
                .expect("client cert")
                .pem()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{Ca, TempDir, b64, fixture};
    use super::*;

    fn env_with(dir: &Path) -> Env {
        Env {
            kubeconfig: None,
            service_host: None,
            service_port: None,
            home: None,
            sa_dir: dir.join("no-service-account"),
        }
    }

    fn simple_kubeconfig(server: &str, context: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {context}
  cluster:
    server: {server}
contexts:
- name: {context}
  context:
    cluster: {context}
    user: {context}
    namespace: ns-{context}
current-context: {context}
users:
- name: {context}
  user:
    token: token-{context}
"
        )
    }

    /// The layout k3s writes to /etc/rancher/k3s/k3s.yaml: everything inline,
    /// an EC (SEC1) client key and a two-certificate client chain.
    fn k3s_yaml(ca: &Ca, client_chain_pem: &str, key_pem: &str) -> String {
        format!(
            "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {}
    client-key-data: {}
",
            b64(&ca.cert_pem),
            b64(client_chain_pem),
            b64(key_pem)
        )
    }

    fn k3s_fixture() -> (Ca, String) {
        let ca = Ca::new("k3s-server-ca");
        let client_ca = Ca::new("k3s-client-ca");
        let leaf = client_ca.client_cert("system:admin", &fixture("client-ec-pkcs8.key"));
        let chain = format!("{leaf}{}", client_ca.cert_pem);
        let yaml = k3s_yaml(&ca, &chain, &fixture("client-ec-sec1.key"));
        (ca, yaml)
    }

    fn expect_err(result: Result<ClusterConfig, Error>) -> String {
        match result {
            Ok(cfg) => panic!("expected an error, got {cfg:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_k3s_kubeconfig_loads_as_is() {
        let dir = TempDir::new("k3s");
        let (_ca, yaml) = k3s_fixture();
        let path = dir.write("k3s.yaml", yaml);
        let cfg = load(Some(&path), None, &env_with(dir.path())).expect("k3s config loads");
        assert_eq!(cfg.server, "https://127.0.0.1:6443");
        assert_eq!(cfg.tls.ca_certs.len(), 1);
        let identity = cfg.tls.client_cert.as_ref().expect("client cert");
        assert_eq!(identity.chain.len(), 2);
        assert!(matches!(identity.key, PrivateKeyDer::Sec1(_)));
        assert!(matches!(cfg.auth, AuthConfig::None));
        assert_eq!(cfg.namespace, None);
        assert_eq!(
            cfg.origin.to_string(),
            format!("kubeconfig {}, context \"default\"", path.display())
        );
        assert!(!format!("{cfg:?}").contains("PRIVATE"));
    }

    #[test]
    fn rsa_pkcs1_and_pkcs8_keys_are_accepted() {
        let ca = Ca::new("ca");
        let cert = ca.client_cert("rsa-user", &fixture("client-rsa-pkcs8.key"));
        for key in [
            "client-rsa-pkcs1.key",
            "client-rsa-pkcs8.key",
            "client-ec-pkcs8.key",
        ] {
            let cert = if key.starts_with("client-ec") {
                ca.client_cert("ec-user", &fixture(key))
            } else {
                cert.clone()
            };
            let yaml = k3s_yaml(&ca, &cert, &fixture(key));
            let kc = parse_kubeconfig(&yaml, Path::new("/x/config")).expect("parses");
            let cfg = resolve(&kc, &[PathBuf::from("/x/config")], None)
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            assert!(cfg.tls.client_cert.is_some(), "{key}");
        }
    }

    #[test]
    fn a_truncated_k3s_file_names_the_file_and_the_field() {
        let dir = TempDir::new("truncated");
        let (_ca, yaml) = k3s_fixture();
        let cut = yaml.rfind("client-key-data").expect("key line") + 40;
        let path = dir.write("k3s.yaml", &yaml[..cut]);
        let err = expect_err(load(Some(&path), None, &env_with(dir.path())));
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("context \"default\""), "{err}");
        assert!(err.contains("client-key-data"), "{err}");
    }

    #[test]
    fn a_mismatched_client_key_is_rejected_without_printing_it() {
        let ca = Ca::new("ca");
        let cert = ca.client_cert("u", &fixture("client-ec-pkcs8.key"));
        let yaml = k3s_yaml(&ca, &cert, &fixture("client-rsa-pkcs8.key"));
        let kc = parse_kubeconfig(&yaml, Path::new("/k/config")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k/config")], None));
        assert!(err.contains("does not match"), "{err}");
        assert!(!err.contains("MII"), "{err}");
    }

    #[test]
    fn bad_base64_pem_and_key_errors_name_file_context_and_field() {
        let ca = Ca::new("ca");
        let cert = ca.client_cert("u", &fixture("client-ec-pkcs8.key"));
        let good_key = b64(fixture("client-ec-sec1.key"));
        let cases = [
            (
                "certificate-authority-data: '%%%notbase64'",
                "certificate-authority-data is not valid base64",
            ),
            (
                &*format!("certificate-authority-data: {}", b64("hello")),
                "certificate-authority-data contains no PEM CERTIFICATE block",
            ),
            (
                &*format!(
                    "client-key-data: {}",
                    b64("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
                ),
                "client-key-data: the private key cannot be loaded",
            ),
            (
                &*format!("client-key-data: {}", b64("nothing")),
                "client-key-data contains no PEM private key",
            ),
        ];
        for (replacement, expected) in cases {
            let field = replacement.split(':').next().expect("field");
            let mut yaml = k3s_yaml(&ca, &cert, &fixture("client-ec-sec1.key"));
            let line = yaml
                .lines()
                .find(|l| l.trim_start().starts_with(field))
                .expect("field line")
                .to_owned();
            let indent = &line[..line.len() - line.trim_start().len()];
            yaml = yaml.replace(&line, &format!("{indent}{replacement}"));
            let kc = parse_kubeconfig(&yaml, Path::new("/etc/k3s.yaml")).expect("parses");
            let err = expect_err(resolve(&kc, &[PathBuf::from("/etc/k3s.yaml")], None));
            assert!(
                err.starts_with("kubeconfig /etc/k3s.yaml, context \"default\": "),
                "{err}"
            );
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains(&good_key[..20]), "{err}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_kubeconfig_directory() {
        let dir = TempDir::new("relative");
        let ca = Ca::new("ca");
        let cert = ca.client_cert("u", &fixture("client-rsa-pkcs8.key"));
        dir.write("kube/pki/ca.crt", &ca.cert_pem);
        dir.write("kube/pki/client.crt", &cert);
        dir.write("kube/pki/client.key", fixture("client-rsa-pkcs1.key"));
        dir.write("kube/token", "abc\n");
        let path = dir.write(
            "kube/config",
            "clusters:
- name: c
  cluster:
    server: https://api.example.com:6443/
    certificate-authority: pki/ca.crt
    tls-server-name: kubernetes.default.svc
users:
- name: u
  user:
    client-certificate: pki/client.crt
    client-key: pki/client.key
    tokenFile: token
contexts:
- name: x
  context: {cluster: c, user: u, namespace: team-a}
",
        );
        let cfg = load(Some(&path), Some("x"), &env_with(dir.path())).expect("loads");
        assert_eq!(cfg.server, "https://api.example.com:6443");
        assert_eq!(
            cfg.tls.server_name.as_deref(),
            Some("kubernetes.default.svc")
        );
        assert_eq!(cfg.tls.ca_certs.len(), 1);
        assert!(cfg.tls.client_cert.is_some());
        assert_eq!(cfg.namespace.as_deref(), Some("team-a"));
        match cfg.auth {
            AuthConfig::TokenFile(p) => assert_eq!(p, dir.path().join("kube/token")),
            other => panic!("expected a token file, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_referenced_file_names_the_file_context_and_field() {
        let text = "clusters:
- name: c
  cluster: {server: 'https://h', certificate-authority: ca.pem}
contexts:
- name: x
  context: {cluster: c}
current-context: x
";
        let kc = parse_kubeconfig(text, Path::new("/nowhere/config")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/nowhere/config")], None));
        assert!(
            err.starts_with(
                "kubeconfig /nowhere/config, context \"x\": cluster \"c\" certificate-authority: cannot read /nowhere/ca.pem"
            ),
            "{err}"
        );
    }

    #[test]
    fn kubeconfig_list_merges_with_the_first_file_winning() {
        let dir = TempDir::new("merge");
        let a = dir.write(
            "a.yaml",
            "clusters:
- name: shared
  cluster: {server: 'https://from-a'}
users:
- name: shared
  user: {token: from-a}
contexts:
- name: one
  context: {cluster: shared, user: shared}
",
        );
        let b = dir.write(
            "b.yaml",
            "current-context: two
clusters:
- name: shared
  cluster: {server: 'https://from-b'}
- name: only-b
  cluster: {server: 'https://only-b'}
contexts:
- name: one
  context: {cluster: only-b}
- name: two
  context: {cluster: only-b, user: shared}
",
        );
        let mut env = env_with(dir.path());
        let missing = dir.path().join("missing.yaml");
        env.kubeconfig = Some(format!(
            "{}:{}::{}",
            missing.display(),
            a.display(),
            b.display()
        ));
        let cfg = load(None, None, &env).expect("merged config loads");
        // current-context from b (a sets none); user "shared" from a.
        assert_eq!(cfg.server, "https://only-b");
        match &cfg.auth {
            AuthConfig::Token(t) => assert_eq!(t.expose(), "from-a"),
            other => panic!("expected a token, got {other:?}"),
        }
        assert_eq!(
            cfg.origin,
            Origin::Kubeconfig {
                paths: vec![a.clone(), b.clone()],
                context: "two".to_owned()
            }
        );
        // Context "one" exists in both: a's definition wins, and a's cluster "shared" too.
        let cfg = load(None, Some("one"), &env).expect("context one");
        assert_eq!(cfg.server, "https://from-a");
    }

    #[test]
    fn a_kubeconfig_list_with_no_existing_file_is_an_error() {
        let dir = TempDir::new("none-exist");
        let mut env = env_with(dir.path());
        env.kubeconfig = Some("/nope/a:/nope/b".to_owned());
        let err = expect_err(load(None, None, &env));
        assert_eq!(
            err,
            "none of the files in KUBECONFIG exist: /nope/a:/nope/b"
        );
    }

    #[test]
    fn the_flag_wins_over_kubeconfig_env_and_in_cluster() {
        let dir = TempDir::new("flag");
        let flag = dir.write("flag.yaml", simple_kubeconfig("https://flag", "f"));
        let listed = dir.write("env.yaml", simple_kubeconfig("https://env", "e"));
        let mut env = env_with(dir.path());
        env.kubeconfig = Some(listed.display().to_string());
        env.service_host = Some("10.0.0.1".to_owned());
        env.service_port = Some("443".to_owned());
        assert_eq!(
            load(Some(&flag), None, &env).expect("flag").server,
            "https://flag"
        );
        let cfg = load(None, None, &env).expect("env");
        assert_eq!(cfg.server, "https://env");
        assert_eq!(cfg.namespace.as_deref(), Some("ns-e"));
    }

    #[test]
    fn a_missing_flag_file_is_an_error_naming_it() {
        let dir = TempDir::new("flag-missing");
        let path = dir.path().join("absent");
        let err = expect_err(load(Some(&path), None, &env_with(dir.path())));
        assert!(
            err.starts_with(&format!("cannot read kubeconfig {}: ", path.display())),
            "{err}"
        );
    }

    fn service_account(dir: &TempDir) -> PathBuf {
        let ca = Ca::new("cluster-ca");
        dir.write("sa/token", "eyJhbGciOi.token\n");
        dir.write("sa/ca.crt", &ca.cert_pem);
        dir.write("sa/namespace", "monitoring\n");
        dir.path().join("sa")
    }

    #[test]
    fn in_cluster_uses_the_service_account_files() {
        let dir = TempDir::new("in-cluster");
        let mut env = env_with(dir.path());
        env.sa_dir = service_account(&dir);
        env.service_host = Some("10.43.0.1".to_owned());
        env.service_port = Some("443".to_owned());
        env.home = Some(dir.path().to_path_buf());
        dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
        let cfg = load(None, None, &env).expect("in-cluster");
        assert_eq!(cfg.server, "https://10.43.0.1:443");
        assert_eq!(cfg.origin, Origin::InCluster);
        assert_eq!(cfg.origin.to_string(), "in-cluster service account");
        assert_eq!(cfg.namespace.as_deref(), Some("monitoring"));
        assert_eq!(cfg.tls.ca_certs.len(), 1);
        assert!(matches!(cfg.auth, AuthConfig::TokenFile(ref p) if p == &env.sa_dir.join("token")));
    }

    #[test]
    fn in_cluster_brackets_an_ipv6_host() {
        let dir = TempDir::new("in-cluster-v6");
        let mut env = env_with(dir.path());
        env.sa_dir = service_account(&dir);
        env.service_host = Some("fd00::1".to_owned());
        env.service_port = Some("443".to_owned());
        assert_eq!(
            load(None, None, &env).expect("v6").server,
            "https://[fd00::1]:443"
        );
    }

    #[test]
    fn in_cluster_without_a_token_or_ca_is_a_clear_error() {
        let dir = TempDir::new("in-cluster-missing");
        let mut env = env_with(dir.path());
        env.sa_dir = service_account(&dir);
        env.service_host = Some("10.43.0.1".to_owned());
        env.service_port = Some("443".to_owned());
        std::fs::remove_file(env.sa_dir.join("ca.crt")).expect("rm ca");
        let err = expect_err(load(None, None, &env));
        assert!(
            err.starts_with("in-cluster service account: cannot read CA file "),
            "{err}"
        );
        std::fs::remove_file(env.sa_dir.join("token")).expect("rm token");
        let err = expect_err(load(None, None, &env));
        assert!(
            err.starts_with("in-cluster service account: token file "),
            "{err}"
        );
        assert!(err.contains("sa/token cannot be read: "), "{err}");
    }

    #[test]
    fn home_kubeconfig_is_the_last_resort() {
        let dir = TempDir::new("home");
        let mut env = env_with(dir.path());
        env.home = Some(dir.path().to_path_buf());
        let err = expect_err(load(None, None, &env));
        assert!(err.starts_with("no cluster configuration found: "), "{err}");
        assert!(err.contains(".kube/config does not exist"), "{err}");
        dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
        assert_eq!(load(None, None, &env).expect("home").server, "https://home");
    }

    #[test]
    fn an_explicit_context_skips_in_cluster() {
        let dir = TempDir::new("context-skips");
        let mut env = env_with(dir.path());
        env.sa_dir = service_account(&dir);
        env.service_host = Some("10.43.0.1".to_owned());
        env.service_port = Some("443".to_owned());
        env.home = Some(dir.path().to_path_buf());
        dir.write(".kube/config", simple_kubeconfig("https://home", "h"));
        assert_eq!(
            load(None, Some("h"), &env).expect("home").server,
            "https://home"
        );
    }

    #[test]
    fn unknown_context_and_missing_current_context_are_explained() {
        let text = simple_kubeconfig("https://a", "a").replace("current-context: a\n", "");
        let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
        let paths = [PathBuf::from("/k")];
        assert_eq!(
            expect_err(resolve(&kc, &paths, None)),
            "kubeconfig /k: no current-context; pass --context"
        );
        assert_eq!(
            expect_err(resolve(&kc, &paths, Some("prod"))),
            "kubeconfig /k: context \"prod\" not found (available: \"a\")"
        );
    }

    #[test]
    fn dangling_cluster_and_user_references_are_named() {
        let text = "contexts:
- name: x
  context: {cluster: gone, user: admin}
clusters:
- name: here
  cluster: {server: 'https://h'}
";
        let kc = parse_kubeconfig(text, Path::new("/k")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
        assert_eq!(
            err,
            "kubeconfig /k, context \"x\": cluster \"gone\" not found"
        );
        let kc = parse_kubeconfig(&text.replace("gone", "here"), Path::new("/k")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
        assert_eq!(
            err,
            "kubeconfig /k, context \"x\": user \"admin\" not found"
        );
    }

    #[test]
    fn unsupported_auth_is_rejected_naming_the_user() {
        for user in [
            "auth-provider: {name: gcp, config: {access-token: secret-value}}",
            "{username: admin, password: secret-value}",
        ] {
            let text = format!(
                "clusters: [{{name: c, cluster: {{server: 'https://h'}}}}]
contexts: [{{name: x, context: {{cluster: c, user: admin}}}}]
users:
- name: admin
  user: {user}
"
            );
            let text = text.replace("user: auth-provider", "user:\n    auth-provider");
            let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
            let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
            assert!(
                err.starts_with("kubeconfig /k, context \"x\": user \"admin\" uses "),
                "{err}"
            );
            assert!(err.contains("not supported"), "{err}");
            assert!(!err.contains("secret-value"), "{err}");
        }
    }

    #[test]
    fn exec_users_are_parsed_with_their_env_and_base_dir() {
        let text =
            "clusters: [{name: c, cluster: {server: 'https://h', insecure-skip-tls-verify: true}}]
contexts: [{name: x, context: {cluster: c, user: eks}}]
current-context: x
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/aws
      args: [eks, get-token, --cluster-name, prod]
      env:
      - name: AWS_PROFILE
        value: prod
      installHint: install the aws cli
      provideClusterInfo: true
      interactiveMode: Never
";
        let kc = parse_kubeconfig(text, Path::new("/home/u/.kube/config")).expect("parses");
        let cfg = resolve(&kc, &[PathBuf::from("/home/u/.kube/config")], None).expect("resolves");
        let AuthConfig::Exec(exec) = cfg.auth else {
            panic!("expected exec")
        };
        assert_eq!(exec.command, "./bin/aws");
        assert_eq!(exec.args, ["eks", "get-token", "--cluster-name", "prod"]);
        assert_eq!(exec.env, [("AWS_PROFILE".to_owned(), "prod".to_owned())]);
        assert_eq!(exec.base_dir, PathBuf::from("/home/u/.kube"));
        assert_eq!(exec.install_hint.as_deref(), Some("install the aws cli"));
        assert!(exec.provide_cluster_info);
        assert!(exec.cluster.insecure_skip_tls_verify);
        assert_eq!(exec.cluster.server, "https://h");
        assert!(!format!("{exec:?}").contains("prod\""));
    }

    #[test]
    fn exec_v1alpha1_is_rejected() {
        let text = "clusters: [{name: c, cluster: {server: 'https://h'}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}}]
";
        let kc = parse_kubeconfig(text, Path::new("/k")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
        assert!(err.contains("user \"u\" exec apiVersion \"client.authentication.k8s.io/v1alpha1\" is not supported"), "{err}");
    }

    #[test]
    fn wrong_field_types_name_the_field_but_not_the_value() {
        let text = "users: [{name: u, user: {token: 123456789}}]";
        let err = parse_kubeconfig(text, Path::new("/k"))
            .err()
            .expect("error")
            .to_string();
        assert_eq!(err, "kubeconfig /k: user \"u\": token must be a string");
        let text = "clusters: [{name: c, cluster: {insecure-skip-tls-verify: 'yes'}}]";
        let err = parse_kubeconfig(text, Path::new("/k"))
            .err()
            .expect("error")
            .to_string();
        assert_eq!(
            err,
            "kubeconfig /k: cluster \"c\": insecure-skip-tls-verify must be true or false"
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_is_expanded() {
        // Regression: 530 bytes of nested aliases expanded to 10^9 nodes and
        // the process ran out of memory.
        let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            yaml += &format!("a{i}: &a{i} [{refs}]\n");
        }
        let err = parse_kubeconfig(&yaml, Path::new("/k/bomb"))
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with("kubeconfig /k/bomb: top level: its YAML aliases expand to more than"),
            "{err}"
        );
        // A few aliases, as a hand-written kubeconfig might use, still load.
        let ok =
            "clusters:\n- name: a\n  cluster: &c {server: https://a}\n- name: b\n  cluster: *c\n";
        assert_eq!(
            parse_kubeconfig(ok, Path::new("/k/c"))
                .unwrap()
                .clusters
                .len(),
            2
        );
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let err = parse_kubeconfig("clusters: [\n  - {name: x", Path::new("/k"))
            .err()
            .expect("error");
        assert!(
            err.to_string()
                .starts_with("kubeconfig /k is not valid YAML: "),
            "{err}"
        );
        assert!(err.source().is_some());
    }

    #[test]
    fn json_kubeconfigs_parse_too() {
        let text = r#"{"apiVersion":"v1","clusters":[{"name":"c","cluster":{"server":"http://127.0.0.1:8001"}}],
            "contexts":[{"name":"proxy","context":{"cluster":"c"}}],"current-context":"proxy","users":null}"#;
        let kc = parse_kubeconfig(text, Path::new("/k.json")).expect("parses");
        let cfg = resolve(&kc, &[PathBuf::from("/k.json")], None).expect("resolves");
        assert_eq!(cfg.server, "http://127.0.0.1:8001");
        assert!(matches!(cfg.auth, AuthConfig::None));
    }

    #[test]
    fn a_server_without_scheme_gets_one_like_client_go() {
        assert_eq!(
            normalize_server("h:6443", true).as_deref(),
            Ok("https://h:6443")
        );
        assert_eq!(
            normalize_server("h:8080", false).as_deref(),
            Ok("http://h:8080")
        );
        assert_eq!(
            normalize_server("https://[fd00::1]:443/", false).as_deref(),
            Ok("https://[fd00::1]:443")
        );
        assert!(normalize_server("ftp://h", false).is_err());
    }

    #[test]
    fn insecure_with_a_ca_is_refused() {
        let ca = Ca::new("ca");
        let text = format!(
            "clusters: [{{name: c, cluster: {{server: 'https://h', insecure-skip-tls-verify: true, certificate-authority-data: {}}}}}]
contexts: [{{name: x, context: {{cluster: c}}}}]
",
            b64(&ca.cert_pem)
        );
        let kc = parse_kubeconfig(&text, Path::new("/k")).expect("parses");
        let err = expect_err(resolve(&kc, &[PathBuf::from("/k")], Some("x")));
        assert!(
            err.contains("sets both certificate-authority-data and insecure-skip-tls-verify"),
            "{err}"
        );
    }
}
