//! The HTTPS edge's certificates. For a name (SNI) it serves, in this order: the zone's
//! uploaded certificate that covers it, its ACME certificate (both from [`PublicTls`]),
//! else, with its own CA, a leaf the server issues when a visitor first asks for a routed
//! hostname and keeps; unrouted names and visitors without SNI get the node's own
//! certificate. Operator certificates are served as they are. A CA validating a
//! TLS-ALPN-01 challenge (ALPN `acme-tls/1`) gets the challenge's certificate only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use adit_core::hostname::normalize_host;
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::{
    Error,
    trust::{pki::CertAuthority, public_tls::PublicTls},
};

/// The ALPN protocol of TLS-ALPN-01 validations (RFC 8737).
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Whether a hostname is routed (to some tunnel): only those get a leaf of their own.
pub(crate) type IsRouted = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Issued leaves kept at most; past it the cache starts again (leaves are cheap to make).
const MAX_CACHED: usize = 10_000;

pub(crate) struct EdgeCertificates {
    authority: Option<Arc<CertAuthority>>,
    fallback: Arc<CertifiedKey>,
    routed: IsRouted,
    cache: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    provider: Arc<CryptoProvider>,
    public: Arc<PublicTls>,
}

impl std::fmt::Debug for EdgeCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeCertificates").finish_non_exhaustive()
    }
}

fn certified(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, Error> {
    let key = provider.key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(chain, key)))
}

impl EdgeCertificates {
    fn issue(&self, authority: &CertAuthority, name: &str) -> Option<Arc<CertifiedKey>> {
        let leaf = match authority.issue(&[name.to_owned()], name) {
            Ok(leaf) => leaf,
            Err(e) => {
                tracing::warn!(%name, error = %e, "could not issue an edge certificate");
                return None;
            }
        };
        certified(&self.provider, leaf.chain, leaf.key).ok()
    }
}

impl ResolvesServerCert for EdgeCertificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validating = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        let name = hello.server_name().map(normalize_host);
        if validating {
            return name.and_then(|name| self.public.alpn_challenge_for(&name));
        }
        if let Some(key) = name
            .as_deref()
            .and_then(|name| self.public.certificate(name))
        {
            return Some(key);
        }
        let (Some(authority), Some(name)) = (&self.authority, name) else {
            return Some(self.fallback.clone());
        };
        if !(self.routed)(&name) {
            return Some(self.fallback.clone());
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = cache.get(&name) {
            return Some(key.clone());
        }
        let key = self.issue(authority, &name)?;
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(name, key.clone());
        Some(key)
    }
}

/// The HTTPS edge's TLS config: HTTP/2 or HTTP/1.1 by ALPN, and `acme-tls/1` when
/// `alpn_challenges` (TLS-ALPN-01 is the ACME challenge in use).
pub(crate) fn server_config(
    authority: Option<Arc<CertAuthority>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    routed: IsRouted,
    public: Arc<PublicTls>,
    alpn_challenges: bool,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fallback = certified(&provider, chain, key)?;
    let resolver = EdgeCertificates {
        authority,
        fallback,
        routed,
        cache: Mutex::default(),
        provider: provider.clone(),
        public,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if alpn_challenges {
        config.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Ok(Arc::new(config))
}
