//! Keys and certificates: the server key and the secrets derived from it, the CA and the
//! tunnel listener's certificate, the HTTPS edge's certificates (its own CA's, zones' uploaded
//! ones, ACME's).
//!
//! Rule: trust/ uses only ground; it knows no route, tunnel or account.

pub(crate) mod edge_certs;
pub(crate) mod pki;
pub(crate) mod public_tls;
pub(crate) mod secrets;
