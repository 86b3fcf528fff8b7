//! Certificates. A fresh server makes its own CA; it signs the tunnel listener's leaf and,
//! on demand, a leaf for each routed hostname a visitor reaches over the HTTPS edge.
//! Connectors pin the CA by hash (the pin rides in every tunnel token); `adit access` and
//! browsers can trust `ca.pem`. The tunnel leaf is re-issued from the same CA when the
//! names it must cover change, so pins stay valid.

use std::path::Path;

use adit_transport::tls;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, files};

/// What the tunnel listener serves, and the pin connectors check it with.
pub(crate) struct TunnelCertificates {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    /// `Some` when the server signs its own certificates.
    pub(crate) authority: Option<CertAuthority>,
}

/// The server's own CA.
pub(crate) struct CertAuthority {
    key: KeyPair,
    pem: String,
    der: CertificateDer<'static>,
}

/// A freshly issued leaf: its chain (leaf, then CA) and key, as DER and PEM.
pub(crate) struct IssuedLeaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    chain_pem: String,
    key_pem: String,
}

fn ca_params() -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Adit");
    params
        .distinguished_name
        .push(DnType::CommonName, "Adit tunnel CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl CertAuthority {
    /// `ca.pem` and `ca.key` in `dir`, created on first start.
    pub(crate) fn load_or_create(dir: &Path) -> Result<Self, Error> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let (pem, key) = match (
            files::read_if_exists(&cert_path)?,
            files::read_if_exists(&key_path)?,
        ) {
            (Some(cert), Some(key)) => {
                let not_pem =
                    |path: &Path| Error::Corrupt(format!("{} is not PEM", path.display()));
                let key = String::from_utf8(key).map_err(|_| not_pem(&key_path))?;
                let cert = String::from_utf8(cert).map_err(|_| not_pem(&cert_path))?;
                (cert, KeyPair::from_pem(&key)?)
            }
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                files::write_private(&key_path, key.serialize_pem().as_bytes())?;
                files::write_private(&cert_path, cert.pem().as_bytes())?;
                tracing::info!(path = %cert_path.display(), "created the server's CA");
                (cert.pem(), key)
            }
        };
        let der = tls::parse_pem_chain(pem.as_bytes(), &cert_path.display().to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Corrupt(format!("{} holds no certificate", cert_path.display()))
            })?;
        Ok(Self { key, pem, der })
    }

    /// The SHA-256 pin connectors check the CA by.
    pub(crate) fn pin(&self) -> String {
        tls::fingerprint(&self.der)
    }

    /// A new leaf for `names` (DNS names or IPs), signed by this CA.
    pub(crate) fn issue(&self, names: &[String], common_name: &str) -> Result<IssuedLeaf, Error> {
        let issuer = Issuer::new(ca_params()?, &self.key);
        let leaf_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let leaf = params.signed_by(&leaf_key, &issuer)?;
        let key_der = leaf_key.serialize_der();
        Ok(IssuedLeaf {
            chain: vec![leaf.der().clone(), self.der.clone()],
            key: PrivateKeyDer::try_from(key_der).map_err(|e| Error::Corrupt(e.to_owned()))?,
            chain_pem: format!("{}{}", leaf.pem(), self.pem),
            key_pem: leaf_key.serialize_pem(),
        })
    }
}

/// Loads or creates the CA and the tunnel listener's leaf in `dir`; the leaf covers
/// `names` (DNS names or IPs).
pub(crate) fn ensure_self_signed(
    dir: &Path,
    names: &[String],
) -> Result<TunnelCertificates, Error> {
    let authority = CertAuthority::load_or_create(dir)?;
    let leaf_path = dir.join("tunnel.pem");
    let leaf_key_path = dir.join("tunnel.key");
    let names_path = dir.join("tunnel.names");
    let wanted_names = names.join("\n");
    let current = files::read_if_exists(&names_path)?;
    if current.as_deref() != Some(wanted_names.as_bytes()) || !leaf_path.exists() {
        let leaf = authority.issue(names, "adit-server tunnel listener")?;
        files::write_private(&leaf_key_path, leaf.key_pem.as_bytes())?;
        files::write_private(&leaf_path, leaf.chain_pem.as_bytes())?;
        files::write_private(&names_path, wanted_names.as_bytes())?;
        tracing::info!(names = %names.join(","), "issued the tunnel listener certificate");
    }
    let chain = tls::parse_pem_chain(&files::read(&leaf_path)?, &leaf_path.display().to_string())?;
    let key = tls::parse_pem_key(
        &files::read(&leaf_key_path)?,
        &leaf_key_path.display().to_string(),
    )?;
    Ok(TunnelCertificates {
        chain,
        key,
        authority: Some(authority),
    })
}

/// Operator-provided certificate and key (PEM files); connectors use the system roots.
pub(crate) fn load_operator(cert: &Path, key: &Path) -> Result<TunnelCertificates, Error> {
    Ok(TunnelCertificates {
        chain: tls::read_pem_chain(cert)?,
        key: tls::parse_pem_key(&files::read(key)?, &key.display().to_string())?,
        authority: None,
    })
}
