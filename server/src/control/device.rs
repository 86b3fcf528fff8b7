//! `adit login`: device authorisation (RFC 8628). A CLI starts a login and gets a device
//! code (its secret, kept only as a hash here) and a short user code; a logged-in user
//! opens the dashboard's approval page, sees the code and who asks, and approves or denies;
//! the CLI, polling with its device code, then receives an API token with the approving
//! user's role in that account. Each login is acted on once and lives ten minutes.

use std::{net::IpAddr, time::Duration};

use adit_core::{api, identity::Role, ids::AccountId, time::Timestamp};
use rand::Rng;

use crate::{
    Error,
    clock::now_ms,
    control::Control,
    error::DeviceLoginWait,
    identity::auth::{Actor, Principal},
    storage::{AuditRow, Decision, DeviceLoginRow, PendingLimits, UserRow},
    trust::secrets::{random_urlsafe, sha256_hex},
};

/// How long a device login waits for its user.
pub const DEVICE_LOGIN_TTL: Duration = Duration::from_secs(10 * 60);
/// Seconds a CLI waits between polls; a faster poll is told `slow_down`.
pub const POLL_INTERVAL_SECS: u64 = 2;
/// Pending logins one address, one network (/24, /64) and the whole server may hold. An
/// address or network gets enough for any real use and never the server's quota: filling
/// that takes hundreds of networks, so it bounds the table's size rather than who may log
/// in (see docs/security.md).
const PENDING: PendingLimits = PendingLimits {
    per_address: 10,
    per_network: 30,
    in_all: 10_000,
};
/// Consonants only, so no code spells a word and none is mistaken for a digit (RFC 8628
/// §6.1); eight of them give 20^8 ≈ 2.6·10^10 codes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// The dashboard page that approves a login.
pub const VERIFICATION_PATH: &str = "/device";

/// A pending login as the approval page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDeviceLogin {
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub client: String,
    pub source_ip: String,
    pub requested_at: Timestamp,
    pub expires_in: Duration,
}

fn random_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN)
        .map(|_| char::from(USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())]))
        .collect()
}

/// The code as stored: what the user typed, upper-cased, with dashes and spaces dropped;
/// `None` if it cannot be a user code.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `XXXXXXXX` → `XXXX-XXXX`.
fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// The network an address is counted in: its /24 (IPv4) or /64 (IPv6), what one site or
/// one customer usually holds.
fn network_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            format!("{}/64", std::net::Ipv6Addr::from(segments))
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Control {
    /// Starts a device login for a CLI at `source`.
    pub async fn start_device_login(
        &self,
        request: &api::StartDeviceLogin,
        source: IpAddr,
    ) -> Result<api::DeviceLogin, Error> {
        let client: String = request.client.trim().chars().take(64).collect();
        if client.chars().any(char::is_control) {
            return Err(Error::invalid("client", "must be printable text"));
        }
        let now = now_ms();
        self.storage.purge_device_logins(now).await?;
        let device_code = random_urlsafe(32);
        let mut row = DeviceLoginRow {
            device_code_hash: sha256_hex(device_code.as_bytes()),
            user_code: random_user_code(),
            client: if client.is_empty() {
                "a command-line client".into()
            } else {
                client
            },
            source_ip: source.to_string(),
            source_network: network_of(source),
            created_at: now,
            expires_at: now + ms(DEVICE_LOGIN_TTL),
            polled_at: None,
            decision: Decision::Pending,
        };
        // A clash among the few live codes is rare; draw again rather than fail.
        let mut attempts = 0;
        let stored = loop {
            match self.storage.insert_device_login(&row, &PENDING).await {
                Err(Error::Conflict(_)) if attempts < 5 => {
                    attempts += 1;
                    row.user_code = random_user_code();
                }
                other => break other?,
            }
        };
        if !stored {
            return Err(Error::RateLimited(
                "too many pending logins; finish or let some expire (10 minutes) first".into(),
            ));
        }
        let user_code = display_user_code(&row.user_code);
        Ok(api::DeviceLogin {
            device_code,
            verification_path: VERIFICATION_PATH.into(),
            verification_path_complete: format!("{VERIFICATION_PATH}?code={user_code}"),
            user_code,
            expires_in: DEVICE_LOGIN_TTL.as_secs(),
            interval: POLL_INTERVAL_SECS,
        })
    }

    /// The pending login with this user code, for the approval page.
    pub async fn pending_device_login(&self, typed: &str) -> Result<PendingDeviceLogin, Error> {
        let not_found = || Error::NotFound {
            what: "login code",
            name: typed.trim().to_owned(),
        };
        let code = normalize_user_code(typed).ok_or_else(not_found)?;
        let now = now_ms();
        match self.storage.device_login_by_user_code(&code, now).await? {
            Some(row) if row.decision == Decision::Pending => Ok(PendingDeviceLogin {
                user_code: display_user_code(&row.user_code),
                client: row.client,
                source_ip: row.source_ip,
                requested_at: Timestamp::from_unix_ms(row.created_at),
                expires_in: Duration::from_millis(
                    u64::try_from(row.expires_at - now).unwrap_or_default(),
                ),
            }),
            _ => Err(not_found()),
        }
    }

    /// The logged-in user approves (or denies) the login with this user code, for the
    /// account the session acts in. Audited either way.
    pub async fn decide_device_login(
        &self,
        user: &Principal,
        typed: &str,
        approve: bool,
        source: IpAddr,
    ) -> Result<(), Error> {
        let Actor::User { id, .. } = &user.actor else {
            return Err(Error::Forbidden(
                "only a logged-in user can approve a login".into(),
            ));
        };
        let not_found = || Error::NotFound {
            what: "login code",
            name: typed.trim().to_owned(),
        };
        let code = normalize_user_code(typed).ok_or_else(not_found)?;
        let decision = if approve {
            Decision::Approved(*id, user.account)
        } else {
            Decision::Denied
        };
        let decided = self
            .storage
            .decide_device_login(&code, decision, now_ms())
            .await?;
        self.audit(AuditRow {
            account_id: user.account,
            at: now_ms(),
            actor: user.actor.to_string(),
            action: if approve {
                "device_login.approve"
            } else {
                "device_login.deny"
            }
            .into(),
            target: format!("{VERIFICATION_PATH}?code={}", display_user_code(&code)),
            source_ip: source.to_string(),
            outcome: if decided { "200" } else { "404" }.into(),
        })
        .await;
        if decided { Ok(()) } else { Err(not_found()) }
    }

    /// The CLI's poll: an API token once the user approved, else why not (yet).
    pub async fn redeem_device_code(
        &self,
        device_code: &str,
        source: IpAddr,
    ) -> Result<api::DeviceToken, Error> {
        let hash = sha256_hex(device_code.as_bytes());
        let now = now_ms();
        let row = match self.storage.device_login_by_hash(&hash).await? {
            Some(row) if row.expires_at > now => row,
            Some(_) => {
                self.storage.take_device_login(&hash).await?;
                return Err(Error::DeviceLogin(DeviceLoginWait::ExpiredToken));
            }
            None => return Err(Error::DeviceLogin(DeviceLoginWait::ExpiredToken)),
        };
        match row.decision {
            Decision::Pending => {
                self.storage.touch_device_login(&hash, now).await?;
                // Half an interval of slack: timers and networks jitter.
                let too_soon = row
                    .polled_at
                    .is_some_and(|at| now - at < ms(Duration::from_secs(POLL_INTERVAL_SECS)) / 2);
                Err(Error::DeviceLogin(if too_soon {
                    DeviceLoginWait::SlowDown
                } else {
                    DeviceLoginWait::AuthorizationPending
                }))
            }
            Decision::Denied => {
                self.storage.take_device_login(&hash).await?;
                Err(Error::DeviceLogin(DeviceLoginWait::AccessDenied))
            }
            Decision::Approved(user, account) => {
                // Deleting first makes the token a one-time answer even to racing polls.
                if !self.storage.take_device_login(&hash).await? {
                    return Err(Error::DeviceLogin(DeviceLoginWait::ExpiredToken));
                }
                // The user's role now, not at approval: a removed user mints nothing.
                let (Some(role), Some(user_row)) = (
                    self.storage.role_in(user, account).await?,
                    self.storage.user_by_id(user).await?,
                ) else {
                    return Err(Error::DeviceLogin(DeviceLoginWait::AccessDenied));
                };
                self.mint_device_token(&row.client, user_row, role, account, source)
                    .await
            }
        }
    }

    /// The API token an approved login gets: `user`'s `role` in `account`, as if the user
    /// had created it.
    async fn mint_device_token(
        &self,
        client: &str,
        user: UserRow,
        role: Role,
        account: AccountId,
        source: IpAddr,
    ) -> Result<api::DeviceToken, Error> {
        let email = user.email;
        let principal = Principal {
            account,
            actor: Actor::User {
                id: user.id,
                email: email.clone(),
            },
            scopes: role.scopes(),
            role: Some(role),
            renewed: None,
        };
        let name = format!(
            "adit login: {client} ({})",
            Timestamp::from_unix_ms(now_ms())
        );
        let name: String = name.chars().take(api::API_TOKEN_NAME_MAX).collect();
        let token = self
            .create_api_token(&principal, &name, role.scopes())
            .await?;
        self.audit(AuditRow {
            account_id: account,
            at: now_ms(),
            actor: principal.actor.to_string(),
            action: "device_login.token".into(),
            target: format!("/api/v1/tokens/{}", token.info.id),
            source_ip: source.to_string(),
            outcome: "200".into(),
        })
        .await;
        Ok(api::DeviceToken {
            api_token: token,
            email,
            account: self.storage.account_name(account).await?,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_loosely_and_checked_strictly() {
        let code = random_user_code();
        assert_eq!(code.len(), 8);
        let shown = display_user_code(&code);
        assert_eq!(shown.len(), 9);
        assert_eq!(normalize_user_code(&shown).as_deref(), Some(code.as_str()));
        assert_eq!(
            normalize_user_code(&shown.to_lowercase()).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalize_user_code("bcdf ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ÄBCD-FGHJ",
        ] {
            assert_eq!(normalize_user_code(bad), None, "{bad}");
        }
    }

    #[test]
    fn addresses_are_counted_in_their_24_or_64() {
        let network = |ip: &str| network_of(ip.parse().unwrap());
        assert_eq!(network("203.0.113.77"), "203.0.113.0/24");
        assert_eq!(network("::ffff:203.0.113.9"), "203.0.113.0/24");
        assert_eq!(network("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_ne!(network("2001:db8:1:3::1"), network("2001:db8:1:2::1"));
    }
}
