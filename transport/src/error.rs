use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    #[error("frame of {len} bytes is larger than the {max}-byte limit")]
    FrameTooLarge { len: u32, max: u32 },
    #[error("malformed frame: {0}")]
    MalformedFrame(#[from] serde_json::Error),
    #[error("invalid certificate or key in {what}: {reason}")]
    Pem { what: String, reason: String },
    #[error("invalid server name {0:?}")]
    ServerName(String),
}
