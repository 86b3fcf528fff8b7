//! Adit's shared domain types. Nothing here touches a socket or a database, so the
//! dashboard can compile it to wasm and every boundary parses its input into these once.

pub mod api;
pub mod cidr;
mod error;
pub mod hostname;
pub mod identity;
pub mod ids;
pub mod ingress;
pub mod secret;
pub mod time;
pub mod token;
pub mod wire;

pub use error::{Error, RuleField};
