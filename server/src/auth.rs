//! Who is calling, and what they may do. Automation presents an API token (Bearer, scoped,
//! stored as a SHA-256 hash: 256 random bits need no slow hash). People log in with a
//! password (argon2) and get a session: a short-lived JWT in an HttpOnly cookie, naming a
//! session row so logout ends it at once, renewed while in use, and bound to a CSRF token
//! that every state-changing request must echo in a header.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use adit_core::{
    api,
    identity::{Email, Role, Scope, Scopes},
    ids::{AccountId, ApiTokenId, SessionId, UserId},
};
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    Error,
    clock::{now_ms, rfc3339},
    secrets::{random_urlsafe, sha256_hex},
    storage::{SessionRow, SigningKeyRow, Storage, UserRow},
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "adit_session";
/// The header a cookie-authenticated state-changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session JWT's lifetime; any request in its second half renews it.
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest a session lasts, renewed or not.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Failed logins allowed per user and per address within [`FAILURE_WINDOW`].
const FAILURES_PER_USER: usize = 5;
const FAILURES_PER_ADDRESS: usize = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Who acts: a logged-in user or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User { id: UserId, email: Email },
    Token { id: ApiTokenId, name: String },
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::User { email, .. } => write!(f, "user:{email}"),
            Self::Token { id, name } => write!(f, "token:{name} ({id})"),
        }
    }
}

/// An authenticated caller: the one account it acts in, and what it may do there.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: AccountId,
    pub actor: Actor,
    pub scopes: Scopes,
    /// The role, for a user.
    pub role: Option<Role>,
    /// A renewed session JWT to hand back (cookie callers past half their token's life).
    pub renewed: Option<String>,
}

impl Principal {
    /// The account, when the caller may do `scope` there.
    pub fn require(&self, scope: Scope) -> Result<AccountId, Error> {
        if self.scopes.allows(scope) {
            Ok(self.account)
        } else {
            Err(Error::Forbidden(match self.role {
                Some(role) => format!("the {role} role does not allow this (needs {scope})"),
                None => format!("this API token lacks the {scope} scope"),
            }))
        }
    }
}

/// A caller authenticated by a session cookie: the principal, and what the session's own
/// view needs (its row, its CSRF token, when its token expires).
#[derive(Debug, Clone)]
pub struct CookieSession {
    pub principal: Principal,
    pub id: SessionId,
    csrf: String,
    /// Seconds since the epoch.
    expires_at: u64,
}

/// A session JWT's claims.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user.
    sub: String,
    /// The account the session acts in.
    acc: String,
    /// The session row.
    sid: String,
    /// What `X-CSRF-Token` must say.
    csrf: String,
    iat: u64,
    exp: u64,
}

struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

/// Logins, sessions and token checks, with the signing keys and failure counts they need.
pub struct Auth {
    storage: Storage,
    keys: RwLock<Vec<SigningKey>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Verified against when the user does not exist, so both answers take as long. Made
    /// at the first such login, not at start: hashing touches 19 MiB, which an idle server
    /// should not hold.
    decoy_hash: tokio::sync::OnceCell<String>,
}

/// The outcome of a login: the session as the API shows it, and the cookie's JWT.
pub struct LoggedIn {
    pub session: api::Session,
    pub jwt: String,
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or_default()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An argon2id hash (PHC string) of `password`.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Crypto(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Crypto(format!("password hash: {e}")))
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// A password for a new or reset user: 18 random bytes, URL-safe.
pub fn generate_password() -> String {
    random_urlsafe(18)
}

/// Checks what an operator or admin chose as a password.
pub fn check_password_strength(password: &str) -> Result<(), Error> {
    if password.chars().count() < 12 {
        return Err(Error::invalid("password", "must be at least 12 characters"));
    }
    if password.len() > 1024 {
        return Err(Error::invalid("password", "must be at most 1024 bytes"));
    }
    Ok(())
}

/// Hashing is slow on purpose; keep it off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Crypto(format!("hashing task failed: {e}")))
}

impl Auth {
    /// Loads the signing keys, creating the first one on a new database.
    pub async fn load(storage: Storage) -> Result<Self, Error> {
        let auth = Self {
            storage,
            keys: RwLock::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            decoy_hash: tokio::sync::OnceCell::new(),
        };
        if auth.storage.signing_keys().await?.is_empty() {
            auth.rotate_keys(false).await?;
        } else {
            auth.reload_keys().await?;
        }
        Ok(auth)
    }

    async fn reload_keys(&self) -> Result<(), Error> {
        let keys = self.storage.signing_keys().await?;
        let mut loaded = Vec::with_capacity(keys.len());
        for key in keys {
            use base64::Engine;
            let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&key.secret)
                .map_err(|e| Error::Corrupt(format!("signing key {}: {e}", key.id)))?;
            loaded.push(SigningKey { id: key.id, secret });
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// A new signing key for new sessions. Older keys keep verifying the sessions they
    /// signed until those expire, unless `end_sessions`, which logs everyone out.
    pub async fn rotate_keys(&self, end_sessions: bool) -> Result<(), Error> {
        let key = SigningKeyRow {
            id: uuid::Uuid::new_v4().to_string(),
            secret: random_urlsafe(32),
            created_at: now_ms(),
        };
        self.storage.add_signing_key(&key, end_sessions).await?;
        self.storage
            .retire_signing_keys_before(now_ms() - ms(SESSION_MAX_AGE))
            .await?;
        self.reload_keys().await
    }

    // ---- failed-login limits ----

    fn too_many_failures(&self, keys: &[(String, usize)]) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        keys.iter().any(|(key, limit)| {
            failures.get_mut(key).is_some_and(|times| {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW)
                {
                    times.pop_front();
                }
                times.len() >= *limit
            })
        })
    }

    fn record_failure(&self, keys: &[(String, usize)]) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded memory: a flood of distinct names must not grow the map without end.
        if failures.len() > 100_000 {
            let now = Instant::now();
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) <= FAILURE_WINDOW)
            });
        }
        for (key, _) in keys {
            failures
                .entry(key.clone())
                .or_default()
                .push_back(Instant::now());
        }
    }

    /// Checks a password and opens a session in `account` (by name; default: the user's
    /// first account). Unknown user and wrong password get the same answer.
    pub async fn login(
        &self,
        request: &api::LoginRequest,
        from: IpAddr,
    ) -> Result<(LoggedIn, UserRow), (Error, Option<UserRow>)> {
        let email: Option<Email> = request.email.parse().ok();
        let limit_keys = [
            (format!("ip:{from}"), FAILURES_PER_ADDRESS),
            (
                format!("user:{}", email.as_ref().map_or("", Email::as_str)),
                FAILURES_PER_USER,
            ),
        ];
        if self.too_many_failures(&limit_keys) {
            return Err((
                Error::RateLimited(
                    "too many failed logins; wait a few minutes and try again".into(),
                ),
                None,
            ));
        }
        let user = match &email {
            Some(email) => self
                .storage
                .user_by_email(email)
                .await
                .map_err(|e| (e, None))?,
            None => None,
        };
        let stored = match &user {
            Some(u) => u.password_hash.clone(),
            None => self
                .decoy_hash
                .get_or_try_init(|| async {
                    blocking(|| hash_password(&generate_password())).await?
                })
                .await
                .map_err(|e| (e, None))?
                .clone(),
        };
        let password = request.password.clone();
        let matches = blocking(move || password_matches(&password, &stored))
            .await
            .map_err(|e| (e, None))?;
        let user = match user {
            Some(user) if matches => user,
            other => {
                self.record_failure(&limit_keys);
                return Err((Error::LoginFailed, other));
            }
        };
        let memberships = self
            .storage
            .memberships_of(user.id)
            .await
            .map_err(|e| (e, None))?;
        let chosen = match &request.account {
            Some(name) => memberships.into_iter().find(|(_, n, _)| n == name),
            None => memberships.into_iter().next(),
        };
        let Some((account, account_name, role)) = chosen else {
            self.record_failure(&limit_keys);
            return Err((Error::LoginFailed, Some(user)));
        };
        // Sign with the newest key, even if another process rotated them since we loaded.
        self.reload_keys().await.map_err(|e| (e, None))?;
        let now = now_ms();
        let session = SessionRow {
            id: SessionId::random(),
            user_id: user.id,
            account_id: account,
            created_at: now,
            expires_at: now + ms(SESSION_MAX_AGE),
        };
        self.storage
            .insert_session(&session)
            .await
            .map_err(|e| (e, None))?;
        let csrf = random_urlsafe(24);
        let jwt = self.sign(&session, &csrf, now).map_err(|e| (e, None))?;
        let logged_in = LoggedIn {
            session: api::Session {
                user_id: user.id,
                email: user.email.clone(),
                account_id: account,
                account: account_name,
                role,
                csrf_token: csrf,
                expires_at: rfc3339(now + ms(TOKEN_TTL)),
            },
            jwt,
        };
        Ok((logged_in, user))
    }

    fn sign(&self, session: &SessionRow, csrf: &str, now: i64) -> Result<String, Error> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let key = keys
            .first()
            .ok_or_else(|| Error::Crypto("no session signing key".into()))?;
        let claims = Claims {
            sub: session.user_id.to_string(),
            acc: session.account_id.to_string(),
            sid: session.id.to_string(),
            csrf: csrf.to_owned(),
            iat: secs(now),
            exp: secs((now + ms(TOKEN_TTL)).min(session.expires_at)),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.id.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
            .map_err(|e| Error::Crypto(format!("signing a session: {e}")))
    }

    /// The claims of a JWT signed by one of our keys and not expired.
    async fn verify(&self, jwt: &str) -> Option<Claims> {
        let kid = jsonwebtoken::decode_header(jwt).ok()?.kid?;
        let known = |keys: &[SigningKey]| keys.iter().any(|k| k.id == kid);
        if !known(&self.keys.read().unwrap_or_else(PoisonError::into_inner)) {
            // Another node may have rotated the keys since we loaded them.
            self.reload_keys().await.ok()?;
        }
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let key = keys.iter().find(|k| k.id == kid)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(jwt, &DecodingKey::from_secret(&key.secret), &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// The caller behind an API token.
    pub async fn api_token(&self, token: &str) -> Result<Principal, Error> {
        let row = self
            .storage
            .api_token_by_hash(&sha256_hex(token.as_bytes()))
            .await?
            .ok_or(Error::Unauthenticated)?;
        Ok(Principal {
            account: row.account_id,
            actor: Actor::Token {
                id: row.id,
                name: row.name,
            },
            scopes: row.scopes,
            role: None,
            renewed: None,
        })
    }

    /// The caller behind a session cookie. `csrf` is what the request's header said; a
    /// state-changing request (`changes_state`) must carry the session's token there.
    pub async fn session(
        &self,
        jwt: &str,
        csrf: Option<&str>,
        changes_state: bool,
    ) -> Result<CookieSession, Error> {
        let claims = self.verify(jwt).await.ok_or(Error::Unauthenticated)?;
        let session_id: SessionId = claims.sid.parse().map_err(|_| Error::Unauthenticated)?;
        let session = self
            .storage
            .live_session(session_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if session.user_id.to_string() != claims.sub || session.account_id.to_string() != claims.acc
        {
            return Err(Error::Unauthenticated);
        }
        if changes_state {
            let presented = csrf.unwrap_or_default().as_bytes();
            if !bool::from(presented.ct_eq(claims.csrf.as_bytes())) {
                return Err(Error::Forbidden(format!(
                    "missing or wrong CSRF token: send the session's csrf_token in the {CSRF_HEADER} header"
                )));
            }
        }
        // Roles are read afresh, so a demotion or removal applies at the next request.
        let role = self
            .storage
            .role_in(session.user_id, session.account_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let user = self
            .storage
            .user_by_id(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = now_ms();
        let half_life = i64::try_from(claims.iat).unwrap_or_default() * 1000 + ms(TOKEN_TTL) / 2;
        let renewed = if now >= half_life && now < session.expires_at {
            Some(self.sign(&session, &claims.csrf, now)?)
        } else {
            None
        };
        Ok(CookieSession {
            principal: Principal {
                account: session.account_id,
                actor: Actor::User {
                    id: user.id,
                    email: user.email,
                },
                scopes: role.scopes(),
                role: Some(role),
                renewed,
            },
            id: session.id,
            csrf: claims.csrf,
            expires_at: claims.exp,
        })
    }

    /// A session as `GET /auth/session` and the dashboard's pages show it.
    pub async fn describe(&self, session: &CookieSession) -> Result<api::Session, Error> {
        let principal = &session.principal;
        let Actor::User { id, email } = &principal.actor else {
            return Err(Error::Unauthenticated);
        };
        Ok(api::Session {
            user_id: *id,
            email: email.clone(),
            account_id: principal.account,
            account: self.storage.account_name(principal.account).await?,
            role: principal.role.unwrap_or(Role::Viewer),
            csrf_token: session.csrf.clone(),
            expires_at: rfc3339(i64::try_from(session.expires_at).unwrap_or_default() * 1000),
        })
    }

    pub async fn logout(&self, session: SessionId) -> Result<(), Error> {
        self.storage.end_session(session).await
    }
}

/// The token in an `Authorization: Bearer …` value.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// `Set-Cookie` for a session JWT (`None` clears it).
pub(crate) fn session_cookie(jwt: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match jwt {
        Some(jwt) => format!(
            "{SESSION_COOKIE}={jwt}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
            TOKEN_TTL.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn cookie_parsing() {
        let h = "a=1; adit_session=xyz; b=2";
        assert_eq!(cookie(h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie("adit_session_x=1", SESSION_COOKIE), None);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("wrong horse battery", &hash));
        assert!(!password_matches("x", "not a hash"));
        assert!(check_password_strength("short").is_err());
        assert!(check_password_strength(&generate_password()).is_ok());
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        let c = session_cookie(Some("jwt"), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(session_cookie(None, false).contains("Max-Age=0"));
    }
}
