use thiserror::Error;

/// Everything that can go wrong in the server. The REST and gRPC boundaries translate it
/// (see `api::ApiError` and `grpc`), hiding internals from callers and logging them once.
#[derive(Debug, Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("I/O error on {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Transport(#[from] adit_transport::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{what} {name:?} was not found")]
    NotFound { what: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    /// `field` names the input at fault: a key (`name`) or a path into the body
    /// (`config.ingress[2].service`).
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        field: std::borrow::Cow<'static, str>,
        message: String,
    },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// The same answer for an unknown user and a wrong password.
    #[error("invalid email or password")]
    LoginFailed,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Crypto(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    RateLimited(String),
    /// An `adit login` poll that gets no token (yet).
    #[error("{}", .0.message())]
    DeviceLogin(DeviceLoginWait),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("dashboard: {0}")]
    Dashboard(#[from] adit_dashboard::Error),
    /// An ACME order or account failed (the CA's problem text; never a key).
    #[error("ACME: {0}")]
    Acme(String),
}

impl From<instant_acme::Error> for Error {
    fn from(e: instant_acme::Error) -> Self {
        Self::Acme(e.to_string())
    }
}

impl Error {
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::File {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn invalid(field: &'static str, err: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: err.to_string(),
        }
    }
}

/// Why a poll gets no token (yet): RFC 8628's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceLoginWait {
    AuthorizationPending,
    SlowDown,
    AccessDenied,
    ExpiredToken,
}

impl DeviceLoginWait {
    pub fn code(self) -> &'static str {
        match self {
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::AuthorizationPending => "waiting for a user to approve this login",
            Self::SlowDown => "polling too fast; wait longer between polls",
            Self::AccessDenied => "the login was denied",
            Self::ExpiredToken => "the login expired or is unknown; start a new one",
        }
    }
}
