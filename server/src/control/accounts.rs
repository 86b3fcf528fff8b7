//! An account's people and keys: users and their roles, API tokens, the audit log. The
//! operations REST, gRPC and `adit-server admin` share, with their rules written once.

use adit_core::{
    api,
    hostname::HostPattern,
    identity::{Email, Role, Scopes},
    ids::{AccountId, ApiTokenId, UserId, ZoneId},
    secret::Secret,
    time::Timestamp,
};

use crate::{
    Error,
    clock::now_ms,
    control::Control,
    identity::auth::{PasswordHashing, Principal, check_password_strength, generate_password},
    storage::{ApiTokenRow, AuditRow, Storage, UserRow},
    trust::secrets::{new_api_token, sha256_hex},
};

/// Audit entries served at most per request.
pub(crate) const AUDIT_PAGE_MAX: i64 = 1000;

fn user_view(user: UserRow, role: Role) -> api::User {
    api::User {
        id: user.id,
        email: user.email,
        role,
        created_at: Timestamp::from_unix_ms(user.created_at),
    }
}

fn token_view(row: ApiTokenRow) -> api::ApiToken {
    api::ApiToken {
        id: row.id,
        name: row.name,
        scopes: row.scopes,
        created_at: Timestamp::from_unix_ms(row.created_at),
        last_used_at: row.last_used_at.map(Timestamp::from_unix_ms),
        revoked_at: row.revoked_at.map(Timestamp::from_unix_ms),
    }
}

/// A new user with `role` in `account`; a password is generated (and returned) when none
/// is given. Shared by the API and `adit-server admin create`.
pub(crate) async fn create_user(
    storage: &Storage,
    hasher: &PasswordHashing,
    account: AccountId,
    email: &str,
    role: Role,
    password: Option<Secret>,
) -> Result<api::CreatedUser, Error> {
    let email: Email = email.parse().map_err(|e| Error::invalid("email", e))?;
    let (password, generated) = chosen_or_generated(password)?;
    let user = UserRow {
        id: UserId::random(),
        email,
        password_hash: hasher.hash(password.expose().to_owned()).await?,
        created_at: now_ms(),
    };
    storage.insert_user(&user, account, role).await?;
    Ok(api::CreatedUser {
        user: user_view(user, role),
        password: generated,
    })
}

/// Sets a user's password (generated and returned when none is given) and ends the user's
/// sessions. For `adit-server admin reset-password`: an email is unique per account only,
/// so when several accounts have it, `account` (its `--account`) says whose.
pub(crate) async fn reset_password(
    storage: &Storage,
    hasher: &PasswordHashing,
    email: &str,
    account: Option<&str>,
    password: Option<Secret>,
) -> Result<Option<Secret>, Error> {
    let email: Email = email.parse().map_err(|e| Error::invalid("email", e))?;
    let mut users = storage.users_by_email(&email, account).await?;
    if users.len() > 1 {
        return Err(Error::invalid(
            "account",
            format!(
                "{email} has a user in {} accounts; name one with --account",
                users.len()
            ),
        ));
    }
    let user = users.pop().ok_or_else(|| Error::NotFound {
        what: "user",
        name: match account {
            Some(account) => format!("{email} in account {account}"),
            None => email.to_string(),
        },
    })?;
    let (password, generated) = chosen_or_generated(password)?;
    storage
        .set_password(user.id, &hasher.hash(password.expose().to_owned()).await?)
        .await?;
    Ok(generated)
}

/// The password to set, and the same again when we generated it (to show once).
fn chosen_or_generated(password: Option<Secret>) -> Result<(Secret, Option<Secret>), Error> {
    match password {
        Some(p) => {
            check_password_strength(p.expose())?;
            Ok((p, None))
        }
        None => {
            let p = Secret::new(generate_password());
            Ok((p.clone(), Some(p)))
        }
    }
}

impl Control {
    pub async fn create_user(
        &self,
        account: AccountId,
        email: &str,
        role: Role,
        password: Option<Secret>,
    ) -> Result<api::CreatedUser, Error> {
        create_user(
            &self.storage,
            &self.auth.hasher,
            account,
            email,
            role,
            password,
        )
        .await
    }

    pub async fn list_users(&self, account: AccountId) -> Result<Vec<api::User>, Error> {
        Ok(self
            .storage
            .members(account)
            .await?
            .into_iter()
            .map(|(user, role)| user_view(user, role))
            .collect())
    }

    async fn member(&self, account: AccountId, user: &str) -> Result<(UserRow, Role), Error> {
        let not_found = || Error::NotFound {
            what: "user",
            name: user.to_owned(),
        };
        let id: UserId = user.parse().map_err(|_| not_found())?;
        self.storage
            .members(account)
            .await?
            .into_iter()
            .find(|(u, _)| u.id == id)
            .ok_or_else(not_found)
    }

    /// Refuses to leave the account without an admin.
    async fn keep_an_admin(&self, account: AccountId, current: Role) -> Result<(), Error> {
        if current == Role::Admin && self.storage.count_admins(account).await? <= 1 {
            return Err(Error::FailedPrecondition(
                "the account's last admin cannot be demoted or removed".into(),
            ));
        }
        Ok(())
    }

    pub async fn set_user_role(
        &self,
        account: AccountId,
        user: &str,
        role: Role,
    ) -> Result<api::User, Error> {
        let (row, current) = self.member(account, user).await?;
        if role != Role::Admin {
            self.keep_an_admin(account, current).await?;
        }
        self.storage.set_role(account, row.id, role).await?;
        Ok(user_view(row, role))
    }

    pub async fn remove_user(&self, account: AccountId, user: &str) -> Result<api::User, Error> {
        let (row, current) = self.member(account, user).await?;
        self.keep_an_admin(account, current).await?;
        self.storage.remove_member(account, row.id).await?;
        Ok(user_view(row, current))
    }

    /// A new API token for the caller's account; it can hold no scope the caller lacks.
    pub async fn create_api_token(
        &self,
        caller: &Principal,
        name: &str,
        scopes: Scopes,
    ) -> Result<api::CreatedApiToken, Error> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > api::API_TOKEN_NAME_MAX {
            return Err(Error::invalid(
                "name",
                format!("must be 1–{} characters", api::API_TOKEN_NAME_MAX),
            ));
        }
        if scopes.is_empty() {
            return Err(Error::invalid("scopes", "name at least one scope"));
        }
        if !caller.scopes.covers(scopes) {
            return Err(Error::Forbidden(format!(
                "a token cannot hold more than its creator may do ({} asked, {} held)",
                scopes, caller.scopes
            )));
        }
        let token = new_api_token();
        let row = ApiTokenRow {
            id: ApiTokenId::random(),
            account_id: caller.account,
            name: name.to_owned(),
            scopes,
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        self.storage
            .insert_api_token(&row, &sha256_hex(token.as_bytes()))
            .await?;
        Ok(api::CreatedApiToken {
            info: token_view(row),
            token,
        })
    }

    pub async fn list_api_tokens(&self, account: AccountId) -> Result<Vec<api::ApiToken>, Error> {
        Ok(self
            .storage
            .list_api_tokens(account)
            .await?
            .into_iter()
            .map(token_view)
            .collect())
    }

    pub async fn revoke_api_token(&self, account: AccountId, token: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound {
            what: "API token",
            name: token.to_owned(),
        };
        let id: ApiTokenId = token.parse().map_err(|_| not_found())?;
        if self.storage.revoke_api_token(account, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Registers a domain the account serves. A zone belongs to one account: it may not
    /// overlap another account's zone (either inside the other), nor the quick-tunnel domain
    /// (inside it, or holding it: a zone above it would let the account route a wildcard
    /// over every quick hostname). Registering a zone the account already has, or one
    /// inside it, is refused too.
    pub async fn create_zone(&self, account: AccountId, name: &str) -> Result<api::Zone, Error> {
        let zone = HostPattern::parse_zone(name).map_err(|e| Error::invalid("name", e))?;
        if let Some(quick) = self.quick_domain() {
            if zone.is_within(quick) {
                return Err(Error::Conflict(format!(
                    "{zone} lies in the quick-tunnel domain {quick}, which the server gives out"
                )));
            }
            if quick.is_within(&zone) {
                return Err(Error::Conflict(format!(
                    "{zone} holds the quick-tunnel domain {quick}, which the server gives out; register a domain beside it instead"
                )));
            }
        }
        for (_, owner, existing, _) in self.storage.all_zones().await? {
            let Ok(existing) = HostPattern::parse(&existing) else {
                continue;
            };
            if zone.is_within(&existing) || existing.is_within(&zone) {
                return Err(Error::Conflict(if owner == account {
                    format!("{zone} overlaps this account's zone {existing}")
                } else {
                    format!("{zone} overlaps a zone of another account")
                }));
            }
        }
        let (id, created_at) = (ZoneId::random(), now_ms());
        self.storage
            .insert_zone(id, account, zone.as_str(), created_at)
            .await?;
        Ok(api::Zone {
            id,
            name: zone.to_string(),
            created_at: Timestamp::from_unix_ms(created_at),
            https_only: false,
            certificate: None,
        })
    }

    /// Registers `name` for the account unless it already has exactly that zone (for
    /// `--zone`, at every start).
    pub(crate) async fn ensure_zone(&self, account: AccountId, name: &str) -> Result<(), Error> {
        let wanted = HostPattern::parse(name).map_err(|e| Error::invalid("zone", e))?;
        let have = self
            .storage
            .all_zones()
            .await?
            .into_iter()
            .any(|(_, owner, zone, _)| owner == account && zone == wanted.as_str());
        if !have {
            self.create_zone(account, name).await?;
        }
        Ok(())
    }

    /// The account's zones, each with its uploaded certificate's metadata.
    pub async fn list_zones(&self, account: AccountId) -> Result<Vec<api::Zone>, Error> {
        let zones = self.zones_of(account).await?;
        self.with_certificates(zones).await
    }

    /// The account's zones and their settings (without certificates).
    pub(crate) async fn zones_of(&self, account: AccountId) -> Result<Vec<api::Zone>, Error> {
        let https_only = self.storage.https_only_zones().await?;
        Ok(self
            .storage
            .all_zones()
            .await?
            .into_iter()
            .filter(|(_, owner, _, _)| *owner == account)
            .map(|(id, _, name, created_at)| api::Zone {
                id,
                https_only: https_only.contains(&name),
                name,
                created_at: Timestamp::from_unix_ms(created_at),
                certificate: None,
            })
            .collect())
    }

    /// The account's zone named by `zone` (its id or name).
    pub(crate) async fn find_zone(
        &self,
        account: AccountId,
        zone: &str,
    ) -> Result<api::Zone, Error> {
        self.zones_of(account)
            .await?
            .into_iter()
            .find(|z| z.id.to_string() == zone || z.name == zone.to_ascii_lowercase())
            .ok_or_else(|| Error::NotFound {
                what: "zone",
                name: zone.to_owned(),
            })
    }

    /// Removes a zone (by id or name), with its uploaded certificate and settings. Routes
    /// already made in it stay until deleted.
    pub async fn delete_zone(&self, account: AccountId, zone: &str) -> Result<(), Error> {
        let found = self.find_zone(account, zone).await?;
        self.storage.delete_zone(account, found.id).await?;
        self.public_tls_changed().await
    }

    /// Refuses a route outside the account's zones, or one that could match a quick-tunnel
    /// hostname (inside the quick-tunnel domain, or a wildcard above it).
    pub(crate) async fn require_zone(
        &self,
        account: AccountId,
        pattern: &HostPattern,
    ) -> Result<(), Error> {
        if let Some(quick) = self.quick_domain()
            && could_match_within(pattern, quick)
        {
            return Err(Error::Forbidden(format!(
                "hostnames under {quick} are given out by quick tunnels only"
            )));
        }
        let inside = self
            .zones_of(account)
            .await?
            .iter()
            .any(|z| HostPattern::parse(&z.name).is_ok_and(|zone| pattern.is_within(&zone)));
        if inside {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{pattern} is not inside any zone of this account; register its domain first (POST /api/v1/zones, or adit-server --zone)"
            )))
        }
    }

    pub(crate) fn quick_domain(&self) -> Option<&HostPattern> {
        self.quick.as_ref().map(|q| &q.domain)
    }

    /// Writes an audit entry. A failure is logged, never lost silently, and never fails the
    /// action it records (which has already happened).
    pub async fn audit(&self, entry: AuditRow) {
        if let Err(e) = self.storage.insert_audit(&entry).await {
            tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
        }
    }

    pub async fn list_audit(
        &self,
        account: AccountId,
        limit: i64,
    ) -> Result<Vec<api::AuditEntry>, Error> {
        let rows = self
            .storage
            .list_audit(account, limit.clamp(1, AUDIT_PAGE_MAX))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| api::AuditEntry {
                at: Timestamp::from_unix_ms(r.at),
                actor: r.actor,
                action: r.action,
                target: r.target,
                source_ip: r.source_ip,
                outcome: r.outcome,
            })
            .collect())
    }
}

/// Whether `pattern` could match a name in `domain` (the domain itself or below it).
fn could_match_within(pattern: &HostPattern, domain: &HostPattern) -> bool {
    pattern.is_within(domain)
        || (pattern.is_wildcard()
            && HostPattern::parse(&format!("*.{domain}"))
                .is_ok_and(|below| pattern.overlaps(&below)))
}
