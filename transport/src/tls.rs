//! TLS for the tunnel listener. A fresh server signs its own certificates with its own CA;
//! connectors trust that CA through its SHA-256 pin carried in the tunnel token (as
//! kubeadm's discovery hash does). With operator certificates the system roots apply.
//! There is no "skip verification" mode.

use std::{
    fmt,
    path::Path,
    sync::{Arc, OnceLock},
};

use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime},
};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use crate::{Error, read_ahead::ReadAhead};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a link between connector and edge reads ahead of rustls, per connection.
const LINK_READ_AHEAD: usize = 64 * 1024;

/// The socket under a link's TLS. rustls reads at most 4 KiB from its socket at a time,
/// so a byte stream's 16 KiB records took four or five reads each; through this buffer one
/// read takes up to 64 KiB. It holds memory only as the link's traffic fills it.
pub type LinkSocket = ReadAhead<TcpStream>;

/// `tcp` as the socket under a link's TLS.
pub fn link_socket(tcp: TcpStream) -> LinkSocket {
    ReadAhead::new(tcp, LINK_READ_AHEAD)
}

/// Lowercase hex SHA-256 of a DER certificate: the pin a token carries.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(cert.as_ref()))
}

pub fn parse_pem_chain(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let chain = rustls_pemfile::certs(&mut &*pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(what, "no certificate found".into()));
    }
    Ok(chain)
}

pub fn parse_pem_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, Error> {
    rustls_pemfile::private_key(&mut &*pem)
        .map_err(|e| pem_error(what, e.to_string()))?
        .ok_or_else(|| pem_error(what, "no private key found".into()))
}

pub fn read_pem_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    parse_pem_chain(&std::fs::read(path)?, &path.display().to_string())
}

fn pem_error(what: &str, reason: String) -> Error {
    Error::Pem {
        what: what.to_owned(),
        reason,
    }
}

/// The tunnel listener's config: answers data (ALPN `adit-data`), gRPC (`h2`) and other
/// nodes of the cluster (`adit-node`).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![
        adit_core::wire::ALPN_DATA.to_vec(),
        adit_core::wire::ALPN_GRPC.to_vec(),
        adit_core::wire::ALPN_NODE.to_vec(),
    ];
    Ok(Arc::new(config))
}

/// What a connector trusts when it dials the edge.
#[derive(Debug, Clone)]
pub enum EdgeTrust {
    /// A CA whose certificate has this SHA-256 (hex).
    Pinned(String),
    /// The operating system's roots (operator-provided certificates).
    SystemRoots,
}

/// A connector's client config for one ALPN protocol.
pub fn client_config(trust: &EdgeTrust, alpn: &[u8]) -> Result<Arc<ClientConfig>, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match trust {
        EdgeTrust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCaVerifier {
                pin: pin.to_ascii_lowercase(),
                provider,
            }))
            .with_no_client_auth(),
        EdgeTrust::SystemRoots => builder
            .with_root_certificates(system_roots())
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS name for a `host` (DNS name or IP literal).
pub fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|_| Error::ServerName(host.to_owned()))
}

/// The signature checks every verifier here delegates to its crypto provider.
macro_rules! provider_signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Full WebPKI verification, with the one root being the CA in the presented chain whose
/// hash equals the pin. The pin replaces the root store, not the checks.
struct PinnedCaVerifier {
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinnedCaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedCaVerifier")
            .field("pin", &self.pin)
            .finish()
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|cert| fingerprint(cert) == self.pin)
            .ok_or(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    provider_signature_checks!();
}

/// A client config for reaching an origin: the CAs in `ca_pool` (PEM), else the system
/// roots; or, when the operator set `noTLSVerify`, any certificate at all.
pub fn origin_client_config(
    ca_pool: Option<&Path>,
    no_verify: bool,
) -> Result<ClientConfig, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if no_verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth());
    }
    let roots = match ca_pool {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_pem_chain(path)? {
                roots.add(cert)?;
            }
            Arc::new(roots)
        }
        None => system_roots(),
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A client config for a connector that never speaks TLS (an `http://` origin's): it
/// trusts no certificate.
pub fn clear_text_client_config() -> Result<ClientConfig, Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth())
}

/// The operating system's roots, read and parsed once per process: a store of a system's
/// ~150 certificates takes ~85 KB, which every HTTP rule on every worker held, and every
/// request to a `unix+tls:` origin parsed, before. A changed system bundle is read
/// on the next start.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

/// `originRequest.noTLSVerify: true`: the operator chose to trust any origin certificate.
/// Signatures are still checked, so the handshake proves the key matches the certificate.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    provider_signature_checks!();
}
