//! The chosen context to a `ClusterConfig`: every referenced file read, every credential checked.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::certs::{Problem, check_key_pair, parse_ca_certs, parse_cert_chain};
use super::exec::{EXEC_API_V1, EXEC_API_V1BETA1, ExecConfig};
use super::kubeconfig::{KubeCluster, KubeExec, KubeUser, Kubeconfig, Named};
use super::read::read_bounded;
use super::{
    AuthConfig, ClientIdentity, ClusterConfig, Error, ExecClusterInfo, Origin, TlsOptions,
};
use crate::secret::Secret;

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
pub(super) struct Where<'a> {
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

/// The token itself is read by the authenticator; here we only make sure it will work.
pub(super) fn check_token_file(path: &Path) -> Result<(), Problem> {
    match crate::util::file::read_regular_text(path, super::read::MAX_TOKEN_FILE) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
