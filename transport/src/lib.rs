//! The link between a connector and the edge, as both ends see it: TLS configuration
//! (the connector pins the edge's CA by hash), the length-prefixed hello that opens a data
//! connection, and the HTTP/2 settings the reversed connection runs with.

mod error;
pub mod frame;
pub mod h2;
pub mod headers;
pub mod metrics;
pub mod read_ahead;
pub mod relay;
pub mod signal;
pub mod tls;
pub mod workers;

pub use error::Error;
