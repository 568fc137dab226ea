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

Layout: `kubeconfig` parses text into entries as written, `merge` combines
files, `resolve` turns the chosen context into a `ClusterConfig` (with
`certs` for PEM material and `exec` for credential plugins), `incluster`
reads the service account, `read` bounds every file read, `error` says
what went wrong.
*/

mod certs;
mod error;
mod exec;
mod incluster;
mod kubeconfig;
mod merge;
mod read;
mod resolve;

use std::fmt;
use std::path::{Path, PathBuf};

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::secret::Secret;

pub use error::Error;
pub use exec::{EXEC_API_V1, EXEC_API_V1BETA1, ExecClusterInfo, ExecConfig};
pub use incluster::DEFAULT_SA_DIR;
pub use kubeconfig::{
    KubeCluster, KubeContext, KubeExec, KubeUser, Kubeconfig, Named, parse_kubeconfig,
};
pub use merge::merge;
pub use read::MAX_TOKEN_FILE;
pub use resolve::resolve;

use incluster::in_cluster;
use merge::{load_files, split_kubeconfig_list};
use read::join_paths;

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

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
