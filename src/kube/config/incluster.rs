//! The in-cluster source: the pod's service account and the `KUBERNETES_SERVICE_*` variables.

use std::error::Error as StdError;
use std::fs;
use std::path::Path;

use super::certs::parse_ca_certs;
use super::read::read_bounded;
use super::resolve::check_token_file;
use super::{AuthConfig, ClusterConfig, Error, Origin, TlsOptions};

/// Where the kubelet mounts the pod's service account.
pub const DEFAULT_SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The in-cluster service account: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
pub(super) fn in_cluster(host: &str, port: &str, sa_dir: &Path) -> Result<ClusterConfig, Error> {
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
