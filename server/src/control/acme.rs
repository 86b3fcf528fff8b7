//! ACME (RFC 8555) certificates for routed hostnames. Every `--acme-check-interval` each
//! node looks for hostnames — exact routes inside a zone, not covered by the zone's
//! uploaded certificate — that have no ACME certificate or one with fewer than 30 days
//! left, and orders one for each whose lease it takes (a row in the database: one node
//! orders a hostname at a time). Challenges are stored in the database and every node
//! reads them, since the CA's validation may reach any node behind the balancer.
//! Certificates and the account's credentials are kept in the database, keys sealed. A
//! failed order is recorded (shown by `GET /api/v1/certificates`) and tried again later,
//! each failure doubling the wait.

use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};

use adit_core::hostname::HostPattern;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Control,
    certificates::{HTTP_01, TLS_ALPN_01, acme_key_context},
};
use crate::{
    Error,
    clock::now_ms,
    storage::{AcmeCertificateRow, ChallengeRow},
    trust::public_tls,
};

/// A certificate with fewer days than this left is renewed.
const RENEW_BEFORE_MS: i64 = 30 * 24 * 3600 * 1000;
/// How long a node may take to order one hostname's certificate before another may.
const LEASE_MS: i64 = 10 * 60 * 1000;
/// How long a published challenge is answered.
const CHALLENGE_MS: i64 = 10 * 60 * 1000;
/// The wait after a first failure; it doubles with each failure after, up to the most.
const RETRY_FIRST_MS: i64 = 60 * 1000;
const RETRY_MOST_MS: i64 = 6 * 3600 * 1000;

/// The challenge the CA is asked to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// Answered on the plain HTTP edge at `/.well-known/acme-challenge/<token>`.
    Http01,
    /// Answered on the HTTPS edge (ALPN `acme-tls/1`).
    TlsAlpn01,
}

impl FromStr for AcmeChallenge {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            HTTP_01 => Ok(Self::Http01),
            TLS_ALPN_01 => Ok(Self::TlsAlpn01),
            other => Err(format!("{other:?} is not http-01 or tls-alpn-01")),
        }
    }
}

impl AcmeChallenge {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => HTTP_01,
            Self::TlsAlpn01 => TLS_ALPN_01,
        }
    }

    fn challenge_type(self) -> ChallengeType {
        match self {
            Self::Http01 => ChallengeType::Http01,
            Self::TlsAlpn01 => ChallengeType::TlsAlpn01,
        }
    }
}

/// `--acme-*`: where and how certificates are ordered.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// The account's contact, if any.
    pub email: Option<String>,
    pub challenge: AcmeChallenge,
    /// A PEM root the directory's own HTTPS is checked against, instead of the system's.
    pub directory_ca: Option<PathBuf>,
    /// How often to look for hostnames needing a certificate.
    pub check_interval: Duration,
}

/// Whether `row` needs an order at `now`: none issued or fewer than 30 days left, and
/// not waiting after a failure.
fn due(row: &AcmeCertificateRow, now: i64) -> bool {
    let renew = match (&row.chain_pem, row.not_after) {
        (Some(_), Some(not_after)) => not_after - now < RENEW_BEFORE_MS,
        _ => true,
    };
    renew && row.next_attempt_at <= now
}

/// When to try again after the `failures`-th failure in a row (1 for the first).
fn retry_at(now: i64, failures: i64) -> i64 {
    let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    now + RETRY_FIRST_MS
        .saturating_mul(1i64 << doublings)
        .min(RETRY_MOST_MS)
}

impl Control {
    /// The hostnames that should have an ACME certificate: exact routes inside a zone,
    /// not covered by an uploaded certificate.
    async fn acme_hostnames(&self) -> Result<Vec<String>, Error> {
        let zones: Vec<String> = self
            .storage
            .all_zones()
            .await?
            .into_iter()
            .map(|(_, _, name, _)| name)
            .collect();
        let mut wanted: Vec<String> = self
            .storage
            .all_routes()
            .await?
            .into_iter()
            .filter_map(|route| HostPattern::parse(&route.hostname).ok())
            .filter(|pattern| !pattern.is_wildcard())
            .map(|pattern| pattern.as_str().to_owned())
            .filter(|host| zones.iter().any(|zone| public_tls::in_zone(host, zone)))
            .filter(|host| !self.public_tls.has_zone_certificate(host))
            .collect();
        wanted.sort();
        wanted.dedup();
        Ok(wanted)
    }

    /// The ACME account: the stored one, or a new one, kept.
    async fn acme_account(&self, settings: &AcmeSettings) -> Result<Account, Error> {
        let builder = || match &settings.directory_ca {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let context = format!("acme-account:{}", settings.directory);
        if let Some(sealed) = self.storage.acme_account(&settings.directory).await? {
            let credentials: AccountCredentials =
                serde_json::from_slice(&self.key.open(&context, &sealed)?)
                    .map_err(|e| Error::Corrupt(format!("the ACME account's credentials: {e}")))?;
            return Ok(builder()?.from_credentials(credentials).await?);
        }
        let contact = settings
            .email
            .as_ref()
            .map(|email| format!("mailto:{email}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                settings.directory.clone(),
                None,
            )
            .await?;
        let credentials = serde_json::to_vec(&credentials)
            .map_err(|e| Error::Crypto(format!("the ACME account's credentials: {e}")))?;
        self.storage
            .insert_acme_account(
                &settings.directory,
                &self.key.seal(&context, &credentials)?,
                now_ms(),
            )
            .await?;
        tracing::info!(directory = %settings.directory, "created an ACME account");
        Ok(account)
    }

    /// Stores a challenge for every node to answer, and answers it here at once.
    async fn publish_challenge(&self, challenge: ChallengeRow) -> Result<(), Error> {
        self.storage
            .put_challenge(&challenge, now_ms() + CHALLENGE_MS)
            .await?;
        if challenge.kind == HTTP_01 {
            self.public_tls
                .add_http_challenge(&challenge.token, &challenge.key_authorization);
        } else {
            self.public_tls.add_alpn_challenge(
                &challenge.hostname,
                public_tls::alpn_challenge_certificate(
                    &challenge.hostname,
                    &challenge.key_authorization,
                )?,
            );
        }
        self.cluster
            .announce(super::cluster::ClusterEvent::PublicTls);
        Ok(())
    }

    /// Orders a certificate for `hostname`: its chain and private key, PEM.
    async fn order_certificate(
        &self,
        account: &Account,
        hostname: &str,
        kind: AcmeChallenge,
    ) -> Result<(String, String), Error> {
        let identifiers = [Identifier::Dns(hostname.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(Error::Acme(format!(
                        "the authorization for {hostname} is {other:?}"
                    )));
                }
            }
            let mut challenge =
                authorization
                    .challenge(kind.challenge_type())
                    .ok_or_else(|| {
                        Error::Acme(format!(
                            "the CA offers no {} challenge for {hostname}",
                            kind.as_str()
                        ))
                    })?;
            self.publish_challenge(ChallengeRow {
                hostname: hostname.to_owned(),
                kind: kind.as_str().to_owned(),
                token: challenge.token.clone(),
                key_authorization: challenge.key_authorization().as_str().to_owned(),
            })
            .await?;
            challenge.set_ready().await?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(90));
        let status = order.poll_ready(&retries).await?;
        if status != OrderStatus::Ready {
            let mut reasons = Vec::new();
            if let Some(problem) = &order.state().error {
                reasons.push(problem.to_string());
            }
            let mut authorizations = order.authorizations();
            while let Some(Ok(mut authorization)) = authorizations.next().await {
                if let Ok(state) = authorization.refresh().await {
                    reasons.extend(
                        state
                            .challenges
                            .iter()
                            .filter_map(|c| c.error.as_ref().map(ToString::to_string)),
                    );
                }
            }
            return Err(Error::Acme(format!(
                "the order for {hostname} is {status:?}: {}",
                reasons.join("; ")
            )));
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&retries).await?;
        Ok((chain_pem, key_pem))
    }

    /// Orders (under its lease) and keeps one hostname's certificate.
    async fn renew(
        &self,
        account: &Account,
        settings: &AcmeSettings,
        hostname: &str,
    ) -> Result<(), Error> {
        let (chain_pem, key_pem) = self
            .order_certificate(account, hostname, settings.challenge)
            .await?;
        let served = public_tls::load(&chain_pem, &key_pem)?;
        let sealed = self
            .key
            .seal(&acme_key_context(hostname), key_pem.as_bytes())?;
        self.storage
            .store_acme_certificate(
                hostname,
                &chain_pem,
                &sealed,
                served.info.not_after,
                now_ms(),
            )
            .await?;
        tracing::info!(
            %hostname,
            issuer = %served.info.issuer,
            not_after = %adit_core::time::Timestamp::from_unix_ms(served.info.not_after),
            "ACME certificate issued"
        );
        Ok(())
    }

    /// One look for hostnames needing a certificate, ordering each due one whose lease
    /// this node takes.
    async fn acme_round(
        &self,
        settings: &AcmeSettings,
        account: &mut Option<Account>,
        node: &str,
    ) -> Result<(), Error> {
        let wanted = self.acme_hostnames().await?;
        let mut rows = self.storage.acme_certificates().await?;
        let new: Vec<String> = wanted
            .iter()
            .filter(|host| !rows.iter().any(|row| row.hostname == **host))
            .cloned()
            .collect();
        if !new.is_empty() {
            self.storage.ensure_acme_hostnames(&new).await?;
            rows = self.storage.acme_certificates().await?;
        }
        for row in rows {
            let now = now_ms();
            if !wanted.contains(&row.hostname) || !due(&row, now) {
                continue;
            }
            if !self
                .storage
                .take_acme_lease(&row.hostname, node, now, now + LEASE_MS)
                .await?
            {
                continue;
            }
            let hostname = row.hostname.clone();
            let started = std::time::Instant::now();
            let result = async {
                if account.is_none() {
                    *account = Some(self.acme_account(settings).await?);
                }
                match account {
                    Some(account) => self.renew(account, settings, &hostname).await,
                    None => Err(Error::Acme("no ACME account".into())),
                }
            }
            .instrument(tracing::info_span!("acme_order", %hostname))
            .await;
            self.storage.delete_challenges(&hostname).await?;
            if let Err(error) = result {
                let next = retry_at(now_ms(), row.failures + 1);
                tracing::warn!(
                    %hostname,
                    %error,
                    retry_in_s = (next - now_ms()) / 1000,
                    "ACME order failed"
                );
                self.storage
                    .fail_acme_order(&hostname, &error.to_string(), next)
                    .await?;
                // A new account is tried with the next order (the CA may have lost it).
                *account = None;
            } else {
                tracing::debug!(%hostname, took_ms = started.elapsed().as_millis() as u64, "ACME order done");
            }
            self.public_tls_changed().await?;
        }
        Ok(())
    }
}

/// Orders and renews ACME certificates every `check_interval`, until `shutdown`.
pub async fn run(
    control: Arc<Control>,
    settings: AcmeSettings,
    node: String,
    shutdown: CancellationToken,
) {
    let mut account = None;
    let mut ticks = tokio::time::interval(settings.check_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let round = control.acme_round(&settings, &mut account, &node);
        tokio::select! {
            () = shutdown.cancelled() => break,
            result = round => {
                if let Err(error) = result {
                    tracing::warn!(%error, "looking for certificates to order failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(chain: bool, not_after: Option<i64>, next_attempt_at: i64) -> AcmeCertificateRow {
        AcmeCertificateRow {
            hostname: "app.example.com".into(),
            chain_pem: chain.then(String::new),
            key_sealed: None,
            not_after,
            last_error: None,
            failures: 0,
            next_attempt_at,
        }
    }

    #[test]
    fn due_when_missing_or_within_thirty_days_and_not_backing_off() {
        let now = 1_000_000_000_000;
        let day = 24 * 3600 * 1000;
        assert!(due(&row(false, None, 0), now));
        assert!(due(&row(true, Some(now + 29 * day), 0), now));
        assert!(!due(&row(true, Some(now + 31 * day), 0), now));
        assert!(!due(&row(false, None, now + 1), now));
    }

    #[test]
    fn retries_back_off_doubling_up_to_six_hours() {
        assert_eq!(retry_at(0, 1), RETRY_FIRST_MS);
        assert_eq!(retry_at(0, 2), 2 * RETRY_FIRST_MS);
        assert_eq!(retry_at(0, 3), 4 * RETRY_FIRST_MS);
        assert_eq!(retry_at(0, 100), RETRY_MOST_MS);
        assert_eq!("tls-alpn-01".parse(), Ok(AcmeChallenge::TlsAlpn01));
        assert!("dns-01".parse::<AcmeChallenge>().is_err());
    }
}
