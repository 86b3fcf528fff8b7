//! Secrets at rest. Tunnel secrets are derived, HMAC(server key, tunnel id ‖ generation),
//! so `tunnel token` can hand a token out again while the database holds only hashes:
//! a stolen database alone yields no secret. Rotation bumps the generation. Session-signing
//! keys are derived the same way from their id, which is all the database keeps of them.

use std::path::Path;

use adit_core::{ids::TunnelId, secret::Secret, token::TunnelSecret};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, files};

/// Prefixes the input a session-signing key is derived from. A tunnel secret's input is
/// always 24 bytes (id ‖ generation) and this one is longer, so the two never share an input.
const SESSION_KEY_LABEL: &[u8] = b"adit session-signing key v1\0";
const NODE_LINK_LABEL: &[u8] = b"adit node link v1\0";

/// The key tunnel secrets and session-signing keys are derived from; lives in the data
/// directory (0600).
#[derive(Clone)]
pub(crate) struct ServerKey([u8; 32]);

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

impl ServerKey {
    pub(crate) fn load_or_create(path: &Path) -> Result<Self, Error> {
        if let Some(bytes) = files::read_if_exists(path)? {
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| Error::Corrupt(format!("{} is not a 32-byte key", path.display())))?;
            return Ok(Self(key));
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        files::write_private(path, &key)?;
        Ok(Self(key))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    pub(crate) fn tunnel_secret(&self, tunnel: TunnelId, generation: i64) -> TunnelSecret {
        let mut mac = self.mac();
        mac.update(tunnel.as_uuid().as_bytes());
        mac.update(&generation.to_be_bytes());
        let bytes = mac.finalize().into_bytes().to_vec();
        // 32 bytes is exactly the minimum a secret needs.
        TunnelSecret::from_bytes(bytes)
            .unwrap_or_else(|_| unreachable!("SHA-256 output is 32 bytes"))
    }

    /// What a node shows another to open a node-to-node link: the same on every node given
    /// this server key, and nothing a connector or visitor has.
    pub(crate) fn node_link_proof(&self) -> Secret {
        let mut mac = self.mac();
        mac.update(NODE_LINK_LABEL);
        Secret::from(hex::encode(mac.finalize().into_bytes()))
    }

    /// The HS256 secret of the session-signing key named `id`. The database keeps only the
    /// id, so a copy of it signs nothing, and every node given this server key derives the
    /// same secret from the shared table.
    pub(crate) fn session_signing_key(&self, id: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(SESSION_KEY_LABEL);
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Constant-time check of a presented secret against a stored hash.
pub(crate) fn secret_matches(secret: &[u8], stored_hash: &str) -> bool {
    sha256_hex(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// `len` random bytes as URL-safe base64 (no padding).
pub(crate) fn random_urlsafe(len: usize) -> String {
    use base64::Engine;
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new API token: `adit_` and 32 random bytes, URL-safe base64.
pub(crate) fn new_api_token() -> String {
    format!("adit_{}", random_urlsafe(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_stable_and_rotates() {
        let key = ServerKey([9; 32]);
        let tunnel = TunnelId::random();
        assert_eq!(key.tunnel_secret(tunnel, 0), key.tunnel_secret(tunnel, 0));
        assert_ne!(key.tunnel_secret(tunnel, 0), key.tunnel_secret(tunnel, 1));
        let secret = key.tunnel_secret(tunnel, 3);
        let hash = sha256_hex(secret.as_bytes());
        assert!(secret_matches(secret.as_bytes(), &hash));
        assert!(!secret_matches(
            key.tunnel_secret(tunnel, 4).as_bytes(),
            &hash
        ));
    }

    #[test]
    fn session_keys_depend_on_the_server_key_and_the_id() {
        let (key, other) = (ServerKey([9; 32]), ServerKey([8; 32]));
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(key.session_signing_key(&id), key.session_signing_key(&id));
        assert_ne!(key.session_signing_key(&id), other.session_signing_key(&id));
        assert_ne!(
            key.session_signing_key(&id),
            key.session_signing_key("another id")
        );
        let tunnel = TunnelId::random();
        assert_ne!(
            key.session_signing_key(&tunnel.to_string()).as_slice(),
            key.tunnel_secret(tunnel, 0).as_bytes()
        );
    }
}
