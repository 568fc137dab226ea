use super::FakeApi;
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::PrivatePkcs8KeyDer;
use std::sync::Arc;

pub(super) struct Pki {
    pub(super) ca_pem: String,
    pub(super) ca_der: CertificateDer<'static>,
    pub(super) issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub(super) client_cert_pem: String,
    pub(super) client_key_pem: String,
}

impl FakeApi {
    /// PEM of the CA that signed the server and client certificates.
    pub fn ca_pem(&self) -> String {
        self.inner.pki.ca_pem.clone()
    }
    pub fn client_cert_pem(&self) -> String {
        self.inner.pki.client_cert_pem.clone()
    }
    /// PKCS#8 PEM key of `client_cert_pem()`.
    pub fn client_key_pem(&self) -> String {
        self.inner.pki.client_key_pem.clone()
    }
    pub fn client_cert_user(&self) -> String {
        self.inner.opts.client_cert_user.clone()
    }
}

pub(super) fn make_pki(client_user: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("rcgen: CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("rcgen: CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fake-kubernetes-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("rcgen: CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let (client, client_key) = issue_client(&issuer, client_user);
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
        issuer,
    }
}

fn issue_client(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    user: &str,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().expect("rcgen: client key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("rcgen: client params");
    p.distinguished_name.push(DnType::CommonName, user);
    p.distinguished_name
        .push(DnType::OrganizationName, "opsctrl:testers");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, issuer).expect("rcgen: client cert");
    (cert, key)
}

pub(super) fn server_tls(pki: &Pki) -> Arc<ServerConfig> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().expect("rcgen: server key");
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("rcgen: server params");
    p.distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, &pki.issuer).expect("rcgen: server cert");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(pki.ca_der.clone())
        .expect("fake apiserver: CA into root store");
    // Client certificates are optional: token requests present none.
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .expect("fake apiserver: client verifier");
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("fake apiserver: protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone(), pki.ca_der.clone()], key_der)
        .expect("fake apiserver: server cert");
    // We speak HTTP/1.1 only; Go clients offering h2 fall back to it.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}
