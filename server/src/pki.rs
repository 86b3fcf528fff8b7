//! The tunnel listener's certificates. A fresh server makes its own CA and a leaf it signs;
//! connectors pin the CA by hash (the pin rides in every tunnel token). The leaf is
//! re-issued from the same CA when the names it must cover change, so pins stay valid.

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
    pub(crate) ca_pin: Option<String>,
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

/// Loads or creates the CA and leaf in `dir`; the leaf covers `names` (DNS names or IPs).
pub(crate) fn ensure_self_signed(
    dir: &Path,
    names: &[String],
) -> Result<TunnelCertificates, Error> {
    let ca_cert_path = dir.join("ca.pem");
    let ca_key_path = dir.join("ca.key");
    let (ca_pem, ca_key) = match (
        files::read_if_exists(&ca_cert_path)?,
        files::read_if_exists(&ca_key_path)?,
    ) {
        (Some(cert), Some(key)) => {
            let key = String::from_utf8(key)
                .map_err(|_| Error::Corrupt(format!("{} is not PEM", ca_key_path.display())))?;
            (cert, KeyPair::from_pem(&key)?)
        }
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            files::write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
            files::write_private(&ca_cert_path, cert.pem().as_bytes())?;
            tracing::info!(path = %ca_cert_path.display(), "created the tunnel CA");
            (cert.pem().into_bytes(), key)
        }
    };
    let ca_der = tls::parse_pem_chain(&ca_pem, &ca_cert_path.display().to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::Corrupt(format!("{} holds no certificate", ca_cert_path.display()))
        })?;

    let leaf_path = dir.join("tunnel.pem");
    let leaf_key_path = dir.join("tunnel.key");
    let names_path = dir.join("tunnel.names");
    let wanted_names = names.join("\n");
    let current = files::read_if_exists(&names_path)?;
    if current.as_deref() != Some(wanted_names.as_bytes()) || !leaf_path.exists() {
        let issuer = Issuer::new(ca_params()?, &ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "adit-server tunnel listener");
        let leaf = params.signed_by(&leaf_key, &issuer)?;
        let chain_pem = format!("{}{}", leaf.pem(), String::from_utf8_lossy(&ca_pem));
        files::write_private(&leaf_key_path, leaf_key.serialize_pem().as_bytes())?;
        files::write_private(&leaf_path, chain_pem.as_bytes())?;
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
        ca_pin: Some(tls::fingerprint(&ca_der)),
    })
}

/// Operator-provided certificate and key (PEM files); connectors use the system roots.
pub(crate) fn load_operator(cert: &Path, key: &Path) -> Result<TunnelCertificates, Error> {
    Ok(TunnelCertificates {
        chain: tls::read_pem_chain(cert)?,
        key: tls::parse_pem_key(&files::read(key)?, &key.display().to_string())?,
        ca_pin: None,
    })
}
