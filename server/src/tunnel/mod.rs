//! The tunnel plane: the listener connectors dial, the data connections this node holds
//! ([`registry`]) and the hostname → tunnel table ([`routes`]) the edge reads, which the
//! control plane publishes. [`link`] opens streams on a data link.
//!
//! Rule: tunnel/ uses only ground, storage/ and observe/; it asks the control plane through
//! [`listener::Connections`], never by naming `control`.

pub mod link;
pub mod listener;
pub mod node_link;
pub mod registry;
pub mod routes;
#[cfg(test)]
pub(crate) mod testing;
