//! Kubeconfigs for this server with each kind of credentials, and a raw HTTPS client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::FakeApi;

/// Credentials a kubeconfig written by `FakeApi::write_kubeconfig` carries.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `token:` with the current first accepted token.
    Token,
    /// `tokenFile:` pointing at this path (the caller writes the file).
    TokenFile(PathBuf),
    /// `client-certificate-data`/`client-key-data` of the generated client certificate.
    ClientCert,
    /// An exec credential plugin (client.authentication.k8s.io/v1, interactiveMode Never).
    Exec {
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
}

impl FakeApi {
    /// A raw HTTPS client trusting this server's CA (no credentials, statuses
    /// as values), for tests that speak to the fake directly.
    pub fn agent(&self) -> ureq::Agent {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let pem = self.ca_pem();
        let ca = Certificate::from_pem(pem.as_bytes())
            .expect("CA PEM")
            .to_owned();
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&[ca]))
            .build();
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .tls_config(tls)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        )
    }

    /// Kubeconfig YAML for this server with the given credentials.
    pub fn kubeconfig_yaml(&self, auth: &Auth) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let user = match auth {
            Auth::Token => format!("    token: {}\n", q(&self.token())),
            Auth::TokenFile(p) => format!("    tokenFile: {}\n", q(&p.to_string_lossy())),
            Auth::ClientCert => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                B64.encode(self.client_cert_pem()),
                B64.encode(self.client_key_pem())
            ),
            Auth::Exec { command, args, env } => {
                let mut s =
                    String::from("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n");
                s += &format!("      command: {}\n", q(command));
                if !args.is_empty() {
                    s += "      args:\n";
                    for a in args {
                        s += &format!("      - {}\n", q(a));
                    }
                }
                if !env.is_empty() {
                    s += "      env:\n";
                    for (k, v) in env {
                        s += &format!("      - name: {}\n        value: {}\n", q(k), q(v));
                    }
                }
                s + "      interactiveMode: Never\n      provideClusterInfo: false\n"
            }
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    \
             certificate-authority-data: {}\nusers:\n- name: fake-user\n  user:\n{user}contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: fake-user\n    namespace: default\n\
             current-context: fake\npreferences: {{}}\n",
            q(&self.url()),
            B64.encode(self.ca_pem()),
        )
    }

    /// Write `kubeconfig-{token,tokenfile,cert,exec}` into `dir` and return its path.
    pub fn write_kubeconfig(&self, dir: &Path, auth: Auth) -> PathBuf {
        let name = match auth {
            Auth::Token => "kubeconfig-token",
            Auth::TokenFile(_) => "kubeconfig-tokenfile",
            Auth::ClientCert => "kubeconfig-cert",
            Auth::Exec { .. } => "kubeconfig-exec",
        };
        let path = dir.join(name);
        std::fs::write(&path, self.kubeconfig_yaml(&auth))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}
