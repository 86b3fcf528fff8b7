//! Who is calling and what they may do: API tokens, passwords, sessions, roles.
//!
//! Rule: identity/ uses only ground, storage/ and trust/.

pub mod auth;
