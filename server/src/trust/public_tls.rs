//! Public certificates at the HTTPS edge: zones' uploaded certificates, ACME certificates
//! of routed hostnames, the ACME challenges this node answers and which domains are served
//! over HTTPS only. The control plane fills it from the database (every node alike); the
//! edge's certificate resolver and the plain edge read it without waiting.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use adit_core::hostname::normalize_host;
use adit_transport::tls;
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer},
    sign::CertifiedKey,
};
use sha2::{Digest, Sha256};

use crate::Error;

/// What a certificate says of itself, for the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateInfo {
    /// Its DNS names (subject alternative names).
    pub(crate) names: Vec<String>,
    pub(crate) issuer: String,
    /// Milliseconds since the epoch.
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// SHA-256 of the leaf, hex.
    pub(crate) fingerprint: String,
}

/// A certificate chain with its key, checked to belong together, and what the leaf says.
pub(crate) struct Served {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) info: CertificateInfo,
}

/// Reads the leaf's names, issuer and validity.
pub(crate) fn inspect(leaf: &CertificateDer<'_>) -> Result<CertificateInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => {
                    Some(dns.to_ascii_lowercase())
                }
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("unreadable subject alternative names: {e}")),
    };
    let validity = cert.validity();
    Ok(CertificateInfo {
        names,
        issuer: cert.issuer().to_string(),
        not_before: validity.not_before.timestamp().saturating_mul(1000),
        not_after: validity.not_after.timestamp().saturating_mul(1000),
        fingerprint: tls::fingerprint(leaf),
    })
}

/// Whether a certificate name (`app.example.com` or `*.example.com`) covers `host`.
pub(crate) fn name_covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

/// Whether `host` is `zone` or lies under it.
pub(crate) fn in_zone(host: &str, zone: &str) -> bool {
    host == zone
        || host
            .strip_suffix(zone)
            .is_some_and(|head| head.ends_with('.'))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A chain and key that belong together (`field_chain`/`field_key` name them in errors).
fn served(
    chain_pem: &str,
    key_pem: &str,
    field_chain: &'static str,
    field_key: &'static str,
) -> Result<Served, Error> {
    let chain = tls::parse_pem_chain(chain_pem.as_bytes(), field_chain)
        .map_err(|e| Error::invalid(field_chain, e))?;
    let key = tls::parse_pem_key(key_pem.as_bytes(), field_key)
        .map_err(|e| Error::invalid(field_key, e))?;
    let info = inspect(&chain[0]).map_err(|e| Error::invalid(field_chain, e))?;
    let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => Error::invalid(
            field_key,
            "the private key does not match the certificate (the first in the chain)",
        ),
        other => Error::invalid(field_key, other),
    })?;
    Ok(Served {
        key: Arc::new(key),
        info,
    })
}

/// Checks a certificate uploaded for `zone` at `now` (ms): the PEM parses, the key is the
/// leaf's, the leaf covers the zone or `*.zone`, and it has not expired. Errors name the
/// field at fault (`certificate` or `private_key`).
pub(crate) fn check_uploaded(
    chain_pem: &str,
    key_pem: &str,
    zone: &str,
    now: i64,
) -> Result<Served, Error> {
    let served = served(chain_pem, key_pem, "certificate", "private_key")?;
    let wildcard = format!("*.{zone}");
    if !served
        .info
        .names
        .iter()
        .any(|n| n == zone || *n == wildcard)
    {
        return Err(Error::invalid(
            "certificate",
            format!(
                "it names {}, not {zone} or {wildcard}",
                if served.info.names.is_empty() {
                    "no DNS name".to_owned()
                } else {
                    served.info.names.join(", ")
                }
            ),
        ));
    }
    if served.info.not_after <= now {
        return Err(Error::invalid(
            "certificate",
            format!(
                "it expired at {}",
                adit_core::time::Timestamp::from_unix_ms(served.info.not_after)
            ),
        ));
    }
    if served.info.not_before > now {
        return Err(Error::invalid("certificate", "it is not valid yet"));
    }
    Ok(served)
}

/// A chain and key from the database (sealed and opened by the caller).
pub(crate) fn load(chain_pem: &str, key_pem: &str) -> Result<Served, Error> {
    served(chain_pem, key_pem, "stored certificate", "stored key")
}

/// The self-signed certificate that answers a TLS-ALPN-01 challenge (RFC 8737) for
/// `hostname`, carrying the SHA-256 of the key authorization.
pub(crate) fn alpn_challenge_certificate(
    hostname: &str,
    key_authorization: &str,
) -> Result<Arc<CertifiedKey>, Error> {
    let digest = Sha256::digest(key_authorization.as_bytes());
    let mut params = CertificateParams::new(vec![hostname.to_owned()])?;
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(&digest));
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| Error::Crypto(e.into()))?;
    let signing = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// A zone's uploaded certificate, as served.
struct ZoneCertificate {
    zone: String,
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// Everything the edge serves of public TLS, replaced whole when the database changes.
#[derive(Default)]
pub(crate) struct PublicTlsState {
    zones: Vec<ZoneCertificate>,
    acme: HashMap<String, Arc<CertifiedKey>>,
    /// TLS-ALPN-01: hostname → challenge certificate.
    alpn_challenges: HashMap<String, Arc<CertifiedKey>>,
    /// HTTP-01: token → key authorization.
    http_challenges: HashMap<String, String>,
    https_only: Vec<String>,
}

impl PublicTlsState {
    fn zone_certificate_for(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.zones
            .iter()
            .filter(|z| in_zone(host, &z.zone) && z.names.iter().any(|n| name_covers(n, host)))
            .max_by_key(|z| z.zone.len())
            .map(|z| z.key.clone())
    }

    pub(crate) fn zone_certificate(&mut self, zone: &str, served: &Served) {
        self.zones.push(ZoneCertificate {
            zone: zone.to_owned(),
            names: served.info.names.clone(),
            key: served.key.clone(),
        });
    }

    pub(crate) fn acme_certificate(&mut self, hostname: &str, served: &Served) {
        self.acme.insert(hostname.to_owned(), served.key.clone());
    }

    pub(crate) fn alpn_challenge(&mut self, hostname: &str, key: Arc<CertifiedKey>) {
        self.alpn_challenges.insert(hostname.to_owned(), key);
    }

    pub(crate) fn http_challenge(&mut self, token: &str, key_authorization: &str) {
        self.http_challenges
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    pub(crate) fn https_only(&mut self, zones: Vec<String>) {
        self.https_only = zones;
    }
}

/// The public TLS a node serves (see the module's doc).
#[derive(Default)]
pub(crate) struct PublicTls {
    state: RwLock<PublicTlsState>,
}

impl std::fmt::Debug for PublicTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicTls").finish_non_exhaustive()
    }
}

impl PublicTls {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, PublicTlsState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, PublicTlsState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves `state` from now on.
    pub(crate) fn replace(&self, state: PublicTlsState) {
        *self.write() = state;
    }

    /// Adds a challenge of this node's own order at once (the database has it too, for
    /// the other nodes).
    pub(crate) fn add_http_challenge(&self, token: &str, key_authorization: &str) {
        self.write().http_challenge(token, key_authorization);
    }

    pub(crate) fn add_alpn_challenge(&self, hostname: &str, key: Arc<CertifiedKey>) {
        self.write().alpn_challenge(hostname, key);
    }

    /// The public certificate for `host`: a zone's uploaded one that covers it, else its
    /// ACME one.
    pub(crate) fn certificate(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let state = self.read();
        state
            .zone_certificate_for(host)
            .or_else(|| state.acme.get(host).cloned())
    }

    /// Whether a zone's uploaded certificate covers `host` (so it needs no ACME one).
    pub(crate) fn has_zone_certificate(&self, host: &str) -> bool {
        self.read().zone_certificate_for(host).is_some()
    }

    /// The TLS-ALPN-01 challenge certificate for `host`, while one is pending.
    pub(crate) fn alpn_challenge_for(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.read().alpn_challenges.get(host).cloned()
    }

    /// The HTTP-01 key authorization for `token`, while one is pending.
    pub(crate) fn http_challenge_for(&self, token: &str) -> Option<String> {
        self.read().http_challenges.get(token).cloned()
    }

    /// Whether `host` lies in a zone served over HTTPS only.
    pub(crate) fn is_https_only(&self, host: &str) -> bool {
        let state = self.read();
        // Asked on every plain-HTTP request: without such zones, nothing to normalise.
        if state.https_only.is_empty() {
            return false;
        }
        let host = normalize_host(host);
        state.https_only.iter().any(|zone| in_zone(&host, zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_their_host_and_wildcards_one_label() {
        assert!(name_covers("app.example.com", "app.example.com"));
        assert!(name_covers("*.example.com", "app.example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(in_zone("example.com", "example.com"));
        assert!(in_zone("a.b.example.com", "example.com"));
        assert!(!in_zone("badexample.com", "example.com"));
    }

    fn pem_pair(names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn uploads_are_checked_field_by_field() {
        let now = crate::clock::now_ms();
        let (cert, key) = pem_pair(&["*.example.com"]);
        let ok = check_uploaded(&cert, &key, "example.com", now).unwrap();
        assert_eq!(ok.info.names, ["*.example.com"]);
        let field = |e: Error| match e {
            Error::InvalidArgument { field, message } => format!("{field}: {message}"),
            other => panic!("{other}"),
        };
        let bad = field(
            check_uploaded("junk", &key, "example.com", now)
                .err()
                .unwrap(),
        );
        assert!(bad.starts_with("certificate:"), "{bad}");
        let bad = field(
            check_uploaded(&cert, "junk", "example.com", now)
                .err()
                .unwrap(),
        );
        assert!(bad.starts_with("private_key:"), "{bad}");
        let (_, other_key) = pem_pair(&["x.example.com"]);
        let bad = field(
            check_uploaded(&cert, &other_key, "example.com", now)
                .err()
                .unwrap(),
        );
        assert!(bad.contains("does not match"), "{bad}");
        let bad = field(
            check_uploaded(&cert, &key, "example.org", now)
                .err()
                .unwrap(),
        );
        assert!(bad.contains("not example.org or *.example.org"), "{bad}");
    }

    #[test]
    fn uploaded_certificates_come_before_acme_ones() {
        let tls = PublicTls::default();
        let (cert, key) = pem_pair(&["*.example.com"]);
        let uploaded = load(&cert, &key).unwrap();
        let (cert, key) = pem_pair(&["app.example.com"]);
        let acme = load(&cert, &key).unwrap();
        let mut state = PublicTlsState::default();
        state.acme_certificate("app.example.com", &acme);
        state.acme_certificate("a.b.example.com", &acme);
        tls.replace(state);
        let served = |host| tls.certificate(host).map(|k| k.cert[0].clone());
        assert_eq!(served("app.example.com"), Some(acme.key.cert[0].clone()));
        let mut state = PublicTlsState::default();
        state.zone_certificate("example.com", &uploaded);
        state.acme_certificate("app.example.com", &acme);
        state.acme_certificate("a.b.example.com", &acme);
        tls.replace(state);
        assert_eq!(
            served("app.example.com"),
            Some(uploaded.key.cert[0].clone())
        );
        // The wildcard does not cover two labels: the ACME one stays.
        assert_eq!(served("a.b.example.com"), Some(acme.key.cert[0].clone()));
        assert_eq!(served("other.org"), None);
    }
}
