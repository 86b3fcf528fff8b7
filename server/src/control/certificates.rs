//! Public TLS at the edge: zones' uploaded certificates and their HTTPS-only setting, what
//! the edge serves for each routed hostname, and reading all of it from the database into
//! [`PublicTls`](crate::trust::public_tls::PublicTls), which every node does alike.

use std::collections::BTreeSet;

use adit_core::{
    api::{self, CertificateSource},
    ids::{AccountId, ZoneId},
    time::Timestamp,
};

use super::{Control, cluster::ClusterEvent};
use crate::{
    Error,
    clock::now_ms,
    trust::public_tls::{self, CertificateInfo, PublicTlsState, Served, in_zone, name_covers},
};

/// What a zone certificate's sealed key is bound to.
fn zone_key_context(zone: ZoneId) -> String {
    format!("zone-certificate:{zone}")
}

/// What an ACME certificate's sealed key is bound to.
pub(crate) fn acme_key_context(hostname: &str) -> String {
    format!("acme-certificate:{hostname}")
}

/// The challenge kinds as stored.
pub(crate) const HTTP_01: &str = "http-01";
pub(crate) const TLS_ALPN_01: &str = "tls-alpn-01";

fn zone_certificate(zone: &str, info: CertificateInfo, uploaded_at: i64) -> api::ZoneCertificate {
    api::ZoneCertificate {
        zone: zone.to_owned(),
        names: info.names,
        issuer: info.issuer,
        not_before: Timestamp::from_unix_ms(info.not_before),
        not_after: Timestamp::from_unix_ms(info.not_after),
        fingerprint: info.fingerprint,
        uploaded_at: Timestamp::from_unix_ms(uploaded_at),
    }
}

/// What a stored chain's leaf says; `None` (logged) when it cannot be read.
fn stored_info(chain_pem: &str, owner: &str) -> Option<CertificateInfo> {
    let info = adit_transport::tls::parse_pem_chain(chain_pem.as_bytes(), owner)
        .map_err(|e| e.to_string())
        .and_then(|chain| public_tls::inspect(&chain[0]));
    match info {
        Ok(info) => Some(info),
        Err(error) => {
            tracing::warn!(%owner, %error, "a stored certificate cannot be read");
            None
        }
    }
}

impl Control {
    /// A stored chain and its sealed key, opened and checked.
    fn open_served(
        &self,
        context: &str,
        chain_pem: &str,
        key_sealed: &str,
    ) -> Result<Served, Error> {
        let key = self.key.open(context, key_sealed)?;
        let key = String::from_utf8(key)
            .map_err(|_| Error::Corrupt(format!("the key of {context} is not PEM")))?;
        public_tls::load(chain_pem, &key)
    }

    /// Reads what the edge serves of public TLS from the database; a certificate that
    /// cannot be opened is logged and left out.
    pub(crate) async fn reload_public_tls(&self) -> Result<(), Error> {
        let mut state = PublicTlsState::default();
        for row in self.storage.zone_certificates().await? {
            match self.open_served(
                &zone_key_context(row.zone_id),
                &row.chain_pem,
                &row.key_sealed,
            ) {
                Ok(served) => state.zone_certificate(&row.zone, &served),
                Err(error) => {
                    tracing::warn!(zone = %row.zone, %error, "cannot serve a zone's certificate");
                }
            }
        }
        for row in self.storage.acme_certificates().await? {
            let (Some(chain), Some(key)) = (&row.chain_pem, &row.key_sealed) else {
                continue;
            };
            match self.open_served(&acme_key_context(&row.hostname), chain, key) {
                Ok(served) => state.acme_certificate(&row.hostname, &served),
                Err(error) => {
                    tracing::warn!(hostname = %row.hostname, %error, "cannot serve an ACME certificate");
                }
            }
        }
        for challenge in self.storage.live_challenges(now_ms()).await? {
            match challenge.kind.as_str() {
                HTTP_01 => state.http_challenge(&challenge.token, &challenge.key_authorization),
                TLS_ALPN_01 => state.alpn_challenge(
                    &challenge.hostname,
                    public_tls::alpn_challenge_certificate(
                        &challenge.hostname,
                        &challenge.key_authorization,
                    )?,
                ),
                other => tracing::warn!(kind = %other, "ignoring a challenge of an unknown kind"),
            }
        }
        state.https_only(self.storage.https_only_zones().await?);
        self.public_tls.replace(state);
        Ok(())
    }

    /// The key authorization answering the HTTP-01 challenge `token`: from this node's
    /// memory, else from the database (another node's order, whose notice may not have
    /// arrived yet). Only a well-formed token (base64url, RFC 8555 §8.3) is looked up.
    pub(crate) async fn http01_answer(&self, token: &str) -> Option<String> {
        if let Some(answer) = self.public_tls.http_challenge_for(token) {
            return Some(answer);
        }
        let well_formed = !token.is_empty()
            && token.len() <= 128
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return None;
        }
        match self.storage.http01_challenge(token, now_ms()).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "could not look up an HTTP-01 challenge");
                None
            }
        }
    }

    /// After a change to stored public TLS: this node and every other read it again.
    pub(crate) async fn public_tls_changed(&self) -> Result<(), Error> {
        self.reload_public_tls().await?;
        self.cluster.announce(ClusterEvent::PublicTls);
        Ok(())
    }

    /// `zones` with their uploaded certificates' metadata.
    pub(crate) async fn with_certificates(
        &self,
        mut zones: Vec<api::Zone>,
    ) -> Result<Vec<api::Zone>, Error> {
        for row in self.storage.zone_certificates().await? {
            if let Some(zone) = zones.iter_mut().find(|z| z.id == row.zone_id) {
                zone.certificate = stored_info(&row.chain_pem, &row.zone)
                    .map(|info| zone_certificate(&row.zone, info, row.uploaded_at));
            }
        }
        Ok(zones)
    }

    /// Changes a zone's settings (`https_only`).
    pub async fn update_zone(
        &self,
        account: AccountId,
        zone: &str,
        update: &api::UpdateZone,
    ) -> Result<api::Zone, Error> {
        let mut found = self.find_zone(account, zone).await?;
        if let Some(on) = update.https_only {
            self.storage.set_zone_https_only(found.id, on).await?;
            found.https_only = on;
            self.public_tls_changed().await?;
        }
        let name = found.name.clone();
        self.with_certificates(vec![found])
            .await?
            .pop()
            .ok_or(Error::NotFound { what: "zone", name })
    }

    /// Checks and keeps a certificate for the zone (replacing the one it had); the HTTPS
    /// edge serves it at once, on every node, for the zone's hostnames it covers.
    pub async fn upload_zone_certificate(
        &self,
        account: AccountId,
        zone: &str,
        upload: &api::UploadCertificate,
    ) -> Result<api::ZoneCertificate, Error> {
        let found = self.find_zone(account, zone).await?;
        let now = now_ms();
        let served =
            public_tls::check_uploaded(&upload.certificate, &upload.private_key, &found.name, now)?;
        let sealed = self
            .key
            .seal(&zone_key_context(found.id), upload.private_key.as_bytes())?;
        self.storage
            .put_zone_certificate(
                found.id,
                &upload.certificate,
                &sealed,
                served.info.not_after,
                now,
            )
            .await?;
        self.public_tls_changed().await?;
        tracing::info!(zone = %found.name, fingerprint = %served.info.fingerprint, "zone certificate uploaded");
        Ok(zone_certificate(&found.name, served.info, now))
    }

    /// The zone's uploaded certificate (what it says of itself, never its key).
    pub async fn zone_certificate(
        &self,
        account: AccountId,
        zone: &str,
    ) -> Result<api::ZoneCertificate, Error> {
        let found = self.find_zone(account, zone).await?;
        let name = found.name.clone();
        self.with_certificates(vec![found])
            .await?
            .pop()
            .and_then(|zone| zone.certificate)
            .ok_or(Error::NotFound {
                what: "certificate of zone",
                name,
            })
    }

    /// Removes the zone's uploaded certificate: its hostnames get what they got before.
    pub async fn delete_zone_certificate(
        &self,
        account: AccountId,
        zone: &str,
    ) -> Result<(), Error> {
        let found = self.find_zone(account, zone).await?;
        if !self.storage.delete_zone_certificate(found.id).await? {
            return Err(Error::NotFound {
                what: "certificate of zone",
                name: found.name,
            });
        }
        self.public_tls_changed().await
    }

    /// What the HTTPS edge serves for each of the account's routed hostnames, by hostname.
    pub async fn list_certificates(
        &self,
        account: AccountId,
    ) -> Result<Vec<api::CertificateStatus>, Error> {
        let zones = self.zones_of(account).await?;
        let uploaded: Vec<(String, CertificateInfo)> = self
            .storage
            .zone_certificates()
            .await?
            .into_iter()
            .filter(|row| zones.iter().any(|z| z.id == row.zone_id))
            .filter_map(|row| Some((row.zone.clone(), stored_info(&row.chain_pem, &row.zone)?)))
            .collect();
        let acme = self.storage.acme_certificates().await?;
        let hostnames: BTreeSet<String> = self
            .storage
            .account_routes(account)
            .await?
            .into_iter()
            .map(|route| route.hostname)
            .collect();
        Ok(hostnames
            .into_iter()
            .map(|hostname| {
                let ordered = acme.iter().find(|row| row.hostname == hostname);
                let (last_error, next_attempt_at) = ordered
                    .filter(|row| row.last_error.is_some())
                    .map(|row| {
                        (
                            row.last_error.clone(),
                            Some(Timestamp::from_unix_ms(row.next_attempt_at)),
                        )
                    })
                    .unwrap_or_default();
                let zone_cert = uploaded.iter().find(|(zone, info)| {
                    in_zone(&hostname, zone) && info.names.iter().any(|n| name_covers(n, &hostname))
                });
                let issued =
                    ordered.and_then(|row| stored_info(row.chain_pem.as_deref()?, &row.hostname));
                let (source, info) = match (zone_cert, issued) {
                    (Some((_, info)), _) => (CertificateSource::Uploaded, Some(info.clone())),
                    (None, Some(info)) => (CertificateSource::Acme, Some(info)),
                    (None, None) => (CertificateSource::Private, None),
                };
                api::CertificateStatus {
                    hostname,
                    source,
                    issuer: info.as_ref().map(|i| i.issuer.clone()),
                    not_after: info.map(|i| Timestamp::from_unix_ms(i.not_after)),
                    last_error,
                    next_attempt_at,
                }
            })
            .collect())
    }
}
