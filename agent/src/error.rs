use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The edge refused the token; retrying cannot help.
    #[error("Provided Tunnel token is not valid.")]
    InvalidToken,
    #[error("{0}")]
    Core(#[from] adit_core::Error),
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("I/O error on {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Transport(#[from] adit_transport::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the connector is not ready (status {0}): no connection to the edge is up")]
    NotReady(u16),
    #[error("gRPC: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A connection to an origin could not be made (TCP, or its TLS handshake).
    #[error("connecting to the origin failed: {0}")]
    OriginDial(#[source] adit_transport::relay::BoxError),
    /// The edge sent a configuration this connector cannot run; the previous one stays.
    #[error("remote configuration version {version} is unusable: {message}")]
    RemoteConfig { version: i64, message: String },
}

impl Error {
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::File {
            path: path.to_owned(),
            source,
        }
    }
}
