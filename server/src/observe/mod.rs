//! What the server counts: Prometheus metrics and each tunnel's traffic.
//!
//! Rule: observe/ uses only ground.

pub mod metrics;
