//! PEM certificates and keys, checked with rustls so a bad one fails at startup.

use std::error::Error as StdError;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub(super) type Problem = (String, Option<Box<dyn StdError + Send + Sync>>);

/// PEM certificates, each checked to be usable as a trust anchor.
pub(super) fn parse_ca_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Problem> {
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

pub(super) fn parse_cert_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ("is not valid PEM".to_owned(), Some(Box::new(e) as _)))?;
    if certs.is_empty() {
        return Err(("contains no PEM CERTIFICATE block".to_owned(), None));
    }
    Ok(certs)
}

/// Fails early (with the field named) on a key rustls cannot load or that does not
/// match the certificate, instead of at the first TLS handshake. The `bool` is
/// true when the certificate, not the key, is at fault.
pub(super) fn check_key_pair(
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
