//! An exec credential plugin of a kubeconfig user, checked and ready to run
//! (`resolve` checks it; `kube::auth` runs it).

use std::fmt;
use std::path::PathBuf;

/// The exec credential API versions we speak (v1alpha1 was removed in Kubernetes 1.24).
pub const EXEC_API_V1: &str = "client.authentication.k8s.io/v1";
pub const EXEC_API_V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

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
