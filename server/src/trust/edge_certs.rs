//! The HTTPS edge's certificates. With its own CA the server issues a leaf for each routed
//! hostname when a visitor first asks for it (by SNI) and keeps it; unrouted names and
//! visitors without SNI get the node's own certificate. Operator certificates are served
//! as they are.

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

use crate::{Error, trust::pki::CertAuthority};

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
        let (Some(authority), Some(name)) = (&self.authority, hello.server_name()) else {
            return Some(self.fallback.clone());
        };
        let name = normalize_host(name);
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

/// The HTTPS edge's TLS config: HTTP/2 or HTTP/1.1 by ALPN.
pub(crate) fn server_config(
    authority: Option<Arc<CertAuthority>>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    routed: IsRouted,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let fallback = certified(&provider, chain, key)?;
    let resolver = EdgeCertificates {
        authority,
        fallback,
        routed,
        cache: Mutex::default(),
        provider: provider.clone(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
