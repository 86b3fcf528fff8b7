//! Who is calling, and what they may do. Automation presents an API token (Bearer, scoped,
//! stored as a SHA-256 hash: 256 random bits need no slow hash). People log in with a
//! password (argon2) and get a session: a short-lived JWT in an HttpOnly cookie, naming a
//! session row so logout ends it at once, renewed while in use, and bound to a CSRF token
//! that every state-changing request must echo in a header. The keys that sign sessions
//! are derived from `server.key` (`secrets.rs`); the database names them only.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use adit_core::{
    api,
    identity::{Email, Role, Scope, Scopes},
    ids::{AccountId, ApiTokenId, SessionId, UserId},
    secret::Secret,
    time::Timestamp,
};
use argon2::{
    Argon2, Block, Params, PasswordHash, PasswordHasher, Version, password_hash::SaltString,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::{
    Error,
    clock::now_ms,
    storage::{SessionRow, SigningKeyRow, Storage, UserRow},
    trust::secrets::{ServerKey, random_urlsafe, sha256_hex},
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "adit_session";
/// The header a cookie-authenticated state-changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session JWT's lifetime; any request in its second half renews it.
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest a session lasts, renewed or not.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(12 * 60 * 60);
/// Failed logins allowed per user and per address within [`FAILURE_WINDOW`]; an attempt
/// being checked counts as one until it succeeds.
const FAILURES_PER_USER: usize = 5;
const FAILURES_PER_ADDRESS: usize = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a password check or hash waits for a free core before the caller is told to
/// retry: long enough to ride out a few logins at once, short enough that a flood gets
/// answers instead of a queue.
const HASH_WAIT: Duration = Duration::from_secs(2);

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
    server_key: ServerKey,
    keys: RwLock<Vec<SigningKey>>,
    /// Per limit key (`user:…`, `ip:…`): when each failed or unfinished attempt began.
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    pub(crate) hasher: PasswordHashing,
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

/// An argon2id hash (PHC string) of `password`. Slow and 19 MiB: call it through
/// [`PasswordHashing`]. It allocates its own memory; only verifying, which anyone can ask
/// for, needs the reused buffers.
fn hash_password(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Crypto(format!("salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Crypto(format!("password hash: {e}")))
}

/// Whether `password` hashes to `stored` (a PHC string), computed in `memory`, which grows
/// to what the hash's parameters need and is kept for the next check. What
/// `PasswordVerifier` does, but with memory that outlives the call.
fn password_matches(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Ok(version)) = (
        argon2::Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.version.map(Version::try_from).transpose(),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version.unwrap_or_default(), params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_ok()
        && bool::from(expected.as_bytes().ct_eq(&computed))
}

/// Runs argon2 off the async workers, at most one hash per core at a time: each holds
/// 19 MiB and a core while it runs, so unbounded, a burst of logins takes the server's
/// memory with it. A caller waits [`HASH_WAIT`] at most for a turn, then gets 429.
///
/// Checks reuse one working buffer per core. Allocated afresh per check, freed buffers
/// stay with the process: glibc raises its mmap threshold to a freed block's size, so later
/// ones come from (and go back to) the heap, which is not trimmed, and a burst's peak would
/// never be returned.
pub(crate) struct PasswordHashing {
    permits: Arc<tokio::sync::Semaphore>,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl PasswordHashing {
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(cores)),
            memory: Arc::new(Mutex::new(Vec::new())),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let permit = tokio::time::timeout(HASH_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                Error::RateLimited(
                    "the server is busy checking passwords; try again in a moment".into(),
                )
            })?
            .map_err(|_| Error::Crypto("the password hasher has stopped".into()))?;
        let memory = self.memory.clone();
        // The permit goes with the work: a caller that gives up (a dropped request) must
        // not free a core its hash still occupies.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let take = || memory.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut buffer = take().unwrap_or_default();
            let out = work(&mut buffer);
            memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buffer);
            out
        })
        .await
        .map_err(|e| Error::Crypto(format!("hashing task failed: {e}")))
    }

    /// An argon2id hash of `password`, for storing.
    pub(crate) async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move |_| hash_password(&password)).await?
    }

    async fn matches(&self, password: Secret, stored: String) -> Result<bool, Error> {
        self.run(move |memory| password_matches(password.expose(), &stored, memory))
            .await
    }
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

/// A new signing key for new sessions. Older keys keep verifying the sessions they signed
/// until those expire, unless `end_sessions`, which logs everyone out. Only the key's id is
/// stored, so this needs no `server.key` (`adit-server admin rotate-keys` runs it).
pub(crate) async fn rotate_signing_keys(
    storage: &Storage,
    end_sessions: bool,
) -> Result<(), Error> {
    let key = SigningKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: now_ms(),
    };
    storage.add_signing_key(&key, end_sessions).await?;
    storage
        .retire_signing_keys_before(now_ms() - ms(SESSION_MAX_AGE))
        .await?;
    Ok(())
}

impl Auth {
    /// Loads the signing keys, creating the first one on a new database.
    pub(crate) async fn load(storage: Storage, server_key: ServerKey) -> Result<Self, Error> {
        let auth = Self {
            storage,
            server_key,
            keys: RwLock::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            hasher: PasswordHashing::new(),
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
        let loaded = self
            .storage
            .signing_keys()
            .await?
            .into_iter()
            .map(|key| SigningKey {
                secret: self.server_key.session_signing_key(&key.id).to_vec(),
                id: key.id,
            })
            .collect();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// See [`rotate_signing_keys`]; this node signs with the new key at once.
    pub async fn rotate_keys(&self, end_sessions: bool) -> Result<(), Error> {
        rotate_signing_keys(&self.storage, end_sessions).await?;
        self.reload_keys().await
    }

    // ---- failed-login limits ----

    /// Counts an attempt against every limit in `keys` before its password is checked, so
    /// a burst of concurrent attempts gets no more checks than the limits allow; `None`
    /// when a limit is reached. The attempt stays counted as a failure unless forgiven.
    fn begin_attempt(&self, keys: &[(String, usize)]) -> Option<Instant> {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let full = keys.iter().any(|(key, limit)| {
            failures.get_mut(key).is_some_and(|times| {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > FAILURE_WINDOW)
                {
                    times.pop_front();
                }
                times.len() >= *limit
            })
        });
        if full {
            return None;
        }
        // Bounded memory: a flood of distinct names must not grow the map without end.
        if failures.len() > 100_000 {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) <= FAILURE_WINDOW)
            });
        }
        for (key, _) in keys {
            failures.entry(key.clone()).or_default().push_back(now);
        }
        Some(now)
    }

    /// Uncounts an attempt begun at `at` that did not fail: it logged in, or no password
    /// was checked.
    fn forgive_attempt(&self, keys: &[(String, usize)], at: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, _) in keys {
            if let Some(times) = failures.get_mut(key) {
                if let Some(i) = times.iter().position(|t| *t == at) {
                    times.remove(i);
                }
                if times.is_empty() {
                    failures.remove(key);
                }
            }
        }
    }

    /// Checks a password and opens a session in `account` (by name; default: the user's
    /// first account). Unknown user and wrong password get the same answer. On failure,
    /// the users whose password was tried, for the audit log.
    pub async fn login(
        &self,
        request: &api::LoginRequest,
        from: IpAddr,
    ) -> Result<(LoggedIn, UserRow), (Error, Vec<UserRow>)> {
        let email: Option<Email> = request.email.parse().ok();
        let limit_keys = [
            (format!("ip:{from}"), FAILURES_PER_ADDRESS),
            (
                format!("user:{}", email.as_ref().map_or("", Email::as_str)),
                FAILURES_PER_USER,
            ),
        ];
        let Some(attempt) = self.begin_attempt(&limit_keys) else {
            return Err((
                Error::RateLimited(
                    "too many failed logins; wait a few minutes and try again".into(),
                ),
                Vec::new(),
            ));
        };
        let user = match self.check_password(request, email.as_ref()).await {
            Ok((_, Some(user))) => user,
            Ok((tried, None)) => return Err((Error::LoginFailed, tried)),
            Err(e) => {
                self.forgive_attempt(&limit_keys, attempt);
                return Err((e, Vec::new()));
            }
        };
        let memberships = self
            .storage
            .memberships_of(user.id)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let chosen = match &request.account {
            Some(name) => memberships.into_iter().find(|(_, n, _)| n == name),
            None => memberships.into_iter().next(),
        };
        let Some((account, account_name, role)) = chosen else {
            return Err((Error::LoginFailed, vec![user]));
        };
        self.forgive_attempt(&limit_keys, attempt);
        let opened = self.open_session(&user, account).await;
        let (session, csrf, jwt, now) = opened.map_err(|e| (e, Vec::new()))?;
        let logged_in = LoggedIn {
            session: api::Session {
                user_id: user.id,
                email: user.email.clone(),
                account_id: session.account_id,
                account: account_name,
                role,
                csrf_token: csrf,
                expires_at: Timestamp::from_unix_ms(now + ms(TOKEN_TTL)),
            },
            jwt,
        };
        Ok((logged_in, user))
    }

    /// The users with this email (in the named account, when the request names one) and
    /// the one the password is for, if any. An email is unique per account only, so
    /// without an account several users may have it: the password is checked against
    /// each in turn. With none, it is checked against a decoy hash, so an unknown email's
    /// answer takes as long as a known one's.
    async fn check_password(
        &self,
        request: &api::LoginRequest,
        email: Option<&Email>,
    ) -> Result<(Vec<UserRow>, Option<UserRow>), Error> {
        let users = match email {
            Some(email) => {
                self.storage
                    .users_by_email(email, request.account.as_deref())
                    .await?
            }
            None => Vec::new(),
        };
        if users.is_empty() {
            let decoy = self
                .decoy_hash
                .get_or_try_init(|| self.hasher.hash(generate_password()))
                .await?
                .clone();
            self.hasher.matches(request.password.clone(), decoy).await?;
            return Ok((users, None));
        }
        for user in &users {
            let stored = user.password_hash.clone();
            if self
                .hasher
                .matches(request.password.clone(), stored)
                .await?
            {
                let matched = user.clone();
                return Ok((users, Some(matched)));
            }
        }
        Ok((users, None))
    }

    /// A new session row for `user` in `account`: the row, its CSRF token, the signed JWT
    /// and when it was made.
    async fn open_session(
        &self,
        user: &UserRow,
        account: AccountId,
    ) -> Result<(SessionRow, String, String, i64), Error> {
        // Sign with the newest key, even if another process rotated them since we loaded.
        self.reload_keys().await?;
        let now = now_ms();
        let session = SessionRow {
            id: SessionId::random(),
            user_id: user.id,
            account_id: account,
            created_at: now,
            expires_at: now + ms(SESSION_MAX_AGE),
        };
        self.storage.insert_session(&session).await?;
        let csrf = random_urlsafe(24);
        let jwt = self.sign(&session, &csrf, now)?;
        Ok((session, csrf, jwt, now))
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
            expires_at: Timestamp::from_unix_ms(
                i64::try_from(session.expires_at).unwrap_or_default() * 1000,
            ),
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
        let mut memory = Vec::new();
        assert!(password_matches(
            "correct horse battery",
            &hash,
            &mut memory
        ));
        assert!(!password_matches("wrong horse battery", &hash, &mut memory));
        assert!(password_matches(
            "correct horse battery",
            &hash,
            &mut memory
        ));
        assert!(!password_matches("x", "not a hash", &mut memory));
        // Hashes argon2's own verifier accepts, whatever their parameters, are checked alike.
        let small = Argon2::new(
            argon2::Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, Some(16)).unwrap(),
        )
        .hash_password(
            b"another password",
            &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(password_matches("another password", &small, &mut memory));
        assert!(!password_matches("another passwore", &small, &mut memory));
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
