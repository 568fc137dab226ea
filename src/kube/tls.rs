/*!
A ureq `Agent` that speaks TLS to the API server exactly as the kubeconfig says.

ureq's own `TlsConfig` can neither override the verified server name
(`tls-server-name`) nor take an arbitrary rustls `ClientConfig`, so this module
builds the rustls config itself (`build_client_config`) and plugs it into
ureq's connector chain with `KubeTlsConnector`, modelled on ureq's
`RustlsConnector`. Only connections to the API server's host:port use it;
any other https URL (e.g. an https proxy) falls through to ureq's stock rustls
connector with the public web roots.

ureq's `unversioned` API is outside its semver promise, so Cargo.toml pins
ureq to the minor release this module was written against (3.5).
*/

use std::error::Error as StdError;
use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use ureq::http::Uri;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, TcpConnector, Transport, TransportAdapter,
};

use crate::kube::config::TlsOptions;

pub const USER_AGENT: &str = concat!("opsctrl-daemon/", env!("CARGO_PKG_VERSION"));
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Until the response status and headers arrive; bodies (watch streams) are timed by the caller.
pub const RECV_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Go's crypto/x509 (and so kubectl) looks for the system CA bundle on Linux.
const SYSTEM_CA_FILES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug)]
pub enum Error {
    /// No certificate-authority in the config and no system CA bundle either.
    NoRoots {
        searched: Vec<PathBuf>,
    },
    CaCert {
        index: usize,
        source: rustls::Error,
    },
    CaWithInsecure,
    ClientCert {
        source: rustls::Error,
    },
    ServerName {
        name: String,
    },
    Server {
        server: String,
        problem: String,
    },
    Protocol {
        source: rustls::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRoots { searched } => {
                let paths: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "no certificate-authority configured and no system CA bundle found (looked at {})",
                    paths.join(", ")
                )
            }
            Error::CaCert { index, source } => {
                write!(f, "CA certificate {} cannot be used: {source}", index + 1)
            }
            Error::CaWithInsecure => f.write_str(
                "a certificate-authority and insecure-skip-tls-verify cannot be used together",
            ),
            Error::ClientCert { source } => {
                write!(f, "the client certificate and key cannot be used: {source}")
            }
            Error::ServerName { name } => write!(
                f,
                "tls-server-name \"{name}\" is not a valid DNS name or IP address"
            ),
            Error::Server { server, problem } => write!(f, "server \"{server}\" {problem}"),
            Error::Protocol { source } => write!(f, "TLS setup failed: {source}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::CaCert { source, .. }
            | Error::ClientCert { source }
            | Error::Protocol { source } => Some(source),
            _ => None,
        }
    }
}

/// The rustls client config for the API server: ring provider, the configured CA
/// (or the system bundle), optional client certificate, optional no-verify.
pub fn build_client_config(tls: &TlsOptions) -> Result<Arc<ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|source| Error::Protocol { source })?;
    let builder = if tls.insecure_skip_verify {
        if !tls.ca_certs.is_empty() {
            return Err(Error::CaWithInsecure);
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerVerification {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else if tls.ca_certs.is_empty() {
        builder.with_root_certificates(system_roots()?)
    } else {
        let mut roots = RootCertStore::empty();
        for (index, cert) in tls.ca_certs.iter().enumerate() {
            roots
                .add(cert.clone())
                .map_err(|source| Error::CaCert { index, source })?;
        }
        builder.with_root_certificates(roots)
    };
    let config = match &tls.client_cert {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(|source| Error::ClientCert { source })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The system CA bundle, found like Go does: `$SSL_CERT_FILE`, then the usual distro paths.
fn system_roots() -> Result<RootCertStore, Error> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        candidates.push(PathBuf::from(file));
    }
    candidates.extend(SYSTEM_CA_FILES.iter().map(PathBuf::from));
    for path in &candidates {
        // A FIFO or device named by SSL_CERT_FILE is skipped, not read forever.
        let Ok(pem) = crate::util::file::read_regular(path, 16 << 20) else {
            continue;
        };
        let mut roots = RootCertStore::empty();
        // Bundles carry the odd certificate webpki cannot parse; skip those, as Go does.
        let certs = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok);
        let (added, ignored) = roots.add_parsable_certificates(certs);
        if added > 0 {
            log::debug!(
                "using system CA bundle {} ({added} certificates, {ignored} ignored)",
                path.display()
            );
            return Ok(roots);
        }
    }
    Err(Error::NoRoots {
        searched: candidates,
    })
}

/// `insecure-skip-tls-verify`: any certificate and name are accepted, like kubectl.
/// Handshake signatures are still checked against the presented certificate, as Go does,
/// which costs nothing and keeps the handshake itself honest.
#[derive(Debug)]
struct NoServerVerification {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A ureq agent for `server` (the cluster's base URL) with our TLS settings.
///
/// Proxies: like kubectl, `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` from the
/// environment are honoured (ureq's default), but only http(s) CONNECT proxies; a SOCKS
/// proxy is ignored with a warning because ureq is built without SOCKS support.
pub fn agent(tls: &TlsOptions, server: &str) -> Result<ureq::Agent, Error> {
    agent_with_proxy(tls, server, proxy_from_env())
}

fn proxy_from_env() -> Option<ureq::Proxy> {
    let proxy = ureq::Proxy::try_from_env()?;
    match proxy.protocol() {
        ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => {
            // The proxy URL may carry credentials, so it is not logged.
            log::debug!("using the HTTP(S) proxy from the environment");
            Some(proxy)
        }
        _ => {
            log::warn!("ignoring the SOCKS proxy from the environment: not supported");
            None
        }
    }
}

fn agent_with_proxy(
    tls: &TlsOptions,
    server: &str,
    proxy: Option<ureq::Proxy>,
) -> Result<ureq::Agent, Error> {
    let bad_server = |problem: &str| Error::Server {
        server: server.to_owned(),
        problem: problem.to_owned(),
    };
    let uri: Uri = server
        .parse()
        .map_err(|_| bad_server("is not a valid URL"))?;
    let port = match uri.scheme_str() {
        Some("https") => uri.port_u16().unwrap_or(443),
        Some("http") => uri.port_u16().unwrap_or(80),
        _ => return Err(bad_server("must start with http:// or https://")),
    };
    let Some(host) = uri.host() else {
        return Err(bad_server("has no host"));
    };
    let server_name = match &tls.server_name {
        Some(name) => Some(
            ServerName::try_from(name.clone())
                .map_err(|_| Error::ServerName { name: name.clone() })?,
        ),
        None => None,
    };
    let connector = KubeTlsConnector {
        config: build_client_config(tls)?,
        host: host.to_ascii_lowercase(),
        port,
        server_name,
    };
    // Same order as ureq's DefaultConnector, with our connector in front of ureq's rustls one.
    let chain =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(connector)
            .chain(RustlsConnector::default());
    let config = ureq::Agent::config_builder()
        // The caller needs the status and body of 401/404/410 responses.
        .http_status_as_error(false)
        // Never follow a redirect with the service-account token to another host.
        .max_redirects(0)
        // Watches stream for minutes; the caller sets per-request body timeouts.
        .timeout_global(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RECV_RESPONSE_TIMEOUT))
        .user_agent(USER_AGENT)
        .proxy(proxy)
        // ureq's 128 KiB default buffers are allocated twice per connection
        // (TCP and TLS layers) and every watch holds one open: on a small
        // node that is most of the heap. Response heads and requests are
        // small; a long line simply takes more reads.
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
        .build();
    Ok(ureq::Agent::with_parts(
        config,
        chain,
        DefaultResolver::default(),
    ))
}

/// Wraps connections to the API server in TLS with the kubeconfig's rustls config.
pub struct KubeTlsConnector {
    config: Arc<ClientConfig>,
    /// The API server's host (as in the URI, IPv6 bracketed) and port.
    host: String,
    port: u16,
    /// `tls-server-name`: verified and sent as SNI instead of the URL's host.
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for KubeTlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeTlsConnector")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl KubeTlsConnector {
    fn is_api_server(&self, uri: &Uri) -> bool {
        let port = uri.port_u16().unwrap_or(443);
        port == self.port
            && uri
                .host()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
    }
}

impl<In: Transport> Connector<In> for KubeTlsConnector {
    type Out = Either<In, KubeTlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // Plain http, or another host: leave it to the next connector.
        if !details.needs_tls() || !self.is_api_server(details.uri) {
            return Ok(Some(Either::A(transport)));
        }
        if transport.is_tls() {
            // Only happens through an https:// proxy: TLS inside TLS is not supported by
            // ureq, and sending API traffic without verifying the server is not an option.
            return Err(ureq::Error::Tls(
                "cannot reach the API server through an https:// proxy; use an http:// proxy or NO_PROXY",
            ));
        }
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => {
                let host = self.host.trim_start_matches('[').trim_end_matches(']');
                ServerName::try_from(host.to_owned())
                    .map_err(|_| ureq::Error::Tls("the API server host is not a valid TLS name"))?
            }
        };
        let mut conn = ClientConnection::new(self.config.clone(), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        // ureq's own connector measures this from the connect start (a crate-private API);
        // measuring from here only gives the handshake the time TCP connect did not use.
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        log::trace!("TLS established with {}:{}", self.host, self.port);
        Ok(Some(Either::B(KubeTlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

pub struct KubeTlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for KubeTlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeTlsTransport")
            .field("chained", &self.stream.sock.inner())
            .finish()
    }
}

impl Transport for KubeTlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::config::test_support::{Ca, b64, fixture};
    use crate::kube::config::{ClientIdentity, parse_kubeconfig, resolve};
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};
    use rustls_pki_types::PrivateKeyDer;
    use std::net::TcpListener;
    use std::path::Path;
    use std::sync::mpsc;
    use std::thread;

    fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certs")
    }

    fn key(pem: &str) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).expect("key")
    }

    /// What the test server saw from the client.
    #[derive(Debug)]
    struct Seen {
        client_cn_present: bool,
        sni: Option<String>,
        request_line: String,
    }

    /// A one-shot HTTPS server on 127.0.0.1; returns its port and what it saw.
    fn serve_once(
        ca: &Ca,
        sans: &[&str],
        client_ca: Option<&Ca>,
    ) -> (u16, mpsc::Receiver<Result<Seen, String>>) {
        let (cert_pem, key_pem) = ca.server_cert(sans);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let builder = match client_ca {
            Some(client_ca) => {
                let mut roots = RootCertStore::empty();
                roots
                    .add(certs(&client_ca.cert_pem).remove(0))
                    .expect("client ca");
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("verifier");
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = Arc::new(
            builder
                .with_single_cert(certs(&cert_pem), key(&key_pem))
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let result = (|| -> Result<Seen, String> {
                let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
                tcp.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let conn = ServerConnection::new(config).map_err(|e| e.to_string())?;
                let mut tls = StreamOwned::new(conn, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tls.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("eof before request".to_owned());
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let body = "{\"kind\":\"Status\"}";
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.write_all(response.as_bytes())
                    .map_err(|e| e.to_string())?;
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let request = String::from_utf8_lossy(&request);
                Ok(Seen {
                    client_cn_present: tls.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                    sni: tls.conn.server_name().map(str::to_owned),
                    request_line: request.lines().next().unwrap_or_default().to_owned(),
                })
            })();
            let _ = tx.send(result);
        });
        (port, rx)
    }

    fn options(ca: Option<&Ca>) -> TlsOptions {
        TlsOptions {
            ca_certs: ca.map(|ca| certs(&ca.cert_pem)).unwrap_or_default(),
            ..TlsOptions::default()
        }
    }

    fn get(tls: &TlsOptions, server: &str) -> Result<String, ureq::Error> {
        let agent = agent_with_proxy(tls, server, None).expect("agent");
        let mut response = agent.get(format!("{server}/api/v1/pods")).call()?;
        assert_eq!(response.status(), 200);
        response.body_mut().read_to_string()
    }

    fn seen(rx: mpsc::Receiver<Result<Seen, String>>) -> Result<Seen, String> {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("server finished")
    }

    #[test]
    fn the_right_ca_is_trusted() {
        let ca = Ca::new("cluster-ca");
        let (port, rx) = serve_once(&ca, &["127.0.0.1", "localhost"], None);
        let body = get(&options(Some(&ca)), &format!("https://127.0.0.1:{port}")).expect("request");
        assert_eq!(body, "{\"kind\":\"Status\"}");
        let seen = seen(rx).expect("server");
        assert_eq!(seen.request_line, "GET /api/v1/pods HTTP/1.1");
        assert_eq!(seen.sni, None, "no SNI for an IP address");
    }

    #[test]
    fn a_dns_host_is_verified_and_sent_as_sni() {
        let ca = Ca::new("cluster-ca");
        let (port, rx) = serve_once(&ca, &["127.0.0.1", "localhost"], None);
        get(&options(Some(&ca)), &format!("https://localhost:{port}")).expect("request");
        assert_eq!(seen(rx).expect("server").sni.as_deref(), Some("localhost"));
    }

    #[test]
    fn a_wrong_ca_is_rejected() {
        let ca = Ca::new("cluster-ca");
        let other = Ca::new("other-ca");
        let (port, rx) = serve_once(&ca, &["127.0.0.1"], None);
        let err = get(&options(Some(&other)), &format!("https://127.0.0.1:{port}"))
            .expect_err("untrusted");
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
        assert!(seen(rx).is_err());
    }

    #[test]
    fn insecure_skip_verify_accepts_any_certificate() {
        let ca = Ca::new("cluster-ca");
        let (port, rx) = serve_once(&ca, &["somewhere.else"], None);
        let tls = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        get(&tls, &format!("https://127.0.0.1:{port}")).expect("request");
        seen(rx).expect("server");
    }

    #[test]
    fn tls_server_name_overrides_the_verified_name() {
        let ca = Ca::new("cluster-ca");
        let (port, rx) = serve_once(&ca, &["kubernetes.default.svc"], None);
        let server = format!("https://127.0.0.1:{port}");
        let err = get(&options(Some(&ca)), &server).expect_err("name mismatch");
        assert!(err.to_string().contains("not valid for name"), "{err}");
        let _ = seen(rx);

        let (port, rx) = serve_once(&ca, &["kubernetes.default.svc"], None);
        let tls = TlsOptions {
            server_name: Some("kubernetes.default.svc".to_owned()),
            ..options(Some(&ca))
        };
        get(&tls, &format!("https://127.0.0.1:{port}")).expect("request");
        assert_eq!(
            seen(rx).expect("server").sni.as_deref(),
            Some("kubernetes.default.svc")
        );
    }

    #[test]
    fn client_certificates_are_presented_for_rsa_and_ec_keys_in_every_encoding() {
        let ca = Ca::new("cluster-ca");
        let client_ca = Ca::new("client-ca");
        let rsa_cert = client_ca.client_cert("rsa", &fixture("client-rsa-pkcs8.key"));
        let ec_cert = client_ca.client_cert("ec", &fixture("client-ec-pkcs8.key"));
        let cases = [
            (&rsa_cert, "client-rsa-pkcs1.key"),
            (&rsa_cert, "client-rsa-pkcs8.key"),
            (&ec_cert, "client-ec-sec1.key"),
            (&ec_cert, "client-ec-pkcs8.key"),
        ];
        for (cert, key_file) in cases {
            let (port, rx) = serve_once(&ca, &["127.0.0.1"], Some(&client_ca));
            let tls = TlsOptions {
                client_cert: Some(ClientIdentity {
                    chain: certs(cert),
                    key: key(&fixture(key_file)),
                }),
                ..options(Some(&ca))
            };
            get(&tls, &format!("https://127.0.0.1:{port}"))
                .unwrap_or_else(|e| panic!("{key_file}: {e}"));
            assert!(seen(rx).expect("server").client_cn_present, "{key_file}");
        }
    }

    #[test]
    fn a_server_requiring_client_certs_rejects_a_client_without_one() {
        let ca = Ca::new("cluster-ca");
        let client_ca = Ca::new("client-ca");
        let (port, rx) = serve_once(&ca, &["127.0.0.1"], Some(&client_ca));
        assert!(get(&options(Some(&ca)), &format!("https://127.0.0.1:{port}")).is_err());
        assert!(seen(rx).is_err());
    }

    #[test]
    fn a_k3s_kubeconfig_reaches_its_server_with_mtls() {
        let ca = Ca::new("k3s-server-ca");
        let client_ca = Ca::new("k3s-client-ca");
        let leaf = client_ca.client_cert("system:admin", &fixture("client-ec-pkcs8.key"));
        let (port, rx) = serve_once(&ca, &["127.0.0.1", "localhost"], Some(&client_ca));
        let yaml = format!(
            "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {}
    server: https://127.0.0.1:{port}
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
            b64(format!("{leaf}{}", client_ca.cert_pem)),
            b64(fixture("client-ec-sec1.key")),
        );
        let path = Path::new("/etc/rancher/k3s/k3s.yaml");
        let kc = parse_kubeconfig(&yaml, path).expect("parses");
        let cfg = resolve(&kc, &[path.to_path_buf()], None).expect("resolves");
        get(&cfg.tls, &cfg.server).expect("request");
        assert!(seen(rx).expect("server").client_cn_present);
    }

    #[test]
    fn plain_http_servers_still_work() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = thread::spawn(move || {
            let (mut tcp, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let mut request = Vec::new();
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut buf).expect("read");
                assert!(n > 0, "eof before request");
                request.extend_from_slice(&buf[..n]);
            }
            let response =
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno";
            tcp.write_all(response.as_bytes()).expect("write");
            String::from_utf8_lossy(&request).to_string()
        });
        let agent = agent_with_proxy(&options(None), &format!("http://127.0.0.1:{port}"), None)
            .expect("agent");
        let response = agent
            .get(format!("http://127.0.0.1:{port}/version"))
            .call()
            .expect("a 401 is a response, not an error");
        assert_eq!(response.status(), 401);
        let request = handle.join().expect("server thread");
        assert!(
            request.contains(&format!("user-agent: {USER_AGENT}"))
                || request.contains(&format!("User-Agent: {USER_AGENT}")),
            "{request}"
        );
    }

    #[test]
    fn bad_settings_are_reported_before_connecting() {
        let ca = Ca::new("ca");
        let tls = TlsOptions {
            insecure_skip_verify: true,
            ..options(Some(&ca))
        };
        assert!(matches!(
            build_client_config(&tls),
            Err(Error::CaWithInsecure)
        ));
        let tls = TlsOptions {
            server_name: Some("not a name!".to_owned()),
            ..options(Some(&ca))
        };
        let err = agent(&tls, "https://h").expect_err("bad name").to_string();
        assert_eq!(
            err,
            "tls-server-name \"not a name!\" is not a valid DNS name or IP address"
        );
        let err = agent(&options(Some(&ca)), "ftp://h")
            .expect_err("bad scheme")
            .to_string();
        assert_eq!(
            err,
            "server \"ftp://h\" must start with http:// or https://"
        );
    }
}
