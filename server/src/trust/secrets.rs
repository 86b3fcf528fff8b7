//! Secrets at rest. Tunnel secrets are derived, HMAC(server key, tunnel id ‖ generation),
//! so `tunnel token` can hand a token out again while the database holds only hashes:
//! a stolen database alone yields no secret. Rotation bumps the generation. Session-signing
//! keys are derived the same way from their id, which is all the database keeps of them.
//! What cannot be derived — certificate keys, the ACME account's credentials — is sealed
//! (AES-256-GCM under a key derived from the server key) before it reaches the database.

use std::path::Path;

use adit_core::{ids::TunnelId, secret::Secret, token::TunnelSecret};
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, files};

/// Prefixes the input a session-signing key is derived from. A tunnel secret's input is
/// always 24 bytes (id ‖ generation) and this one is longer, so the two never share an input.
const SESSION_KEY_LABEL: &[u8] = b"adit session-signing key v1\0";
const NODE_LINK_LABEL: &[u8] = b"adit node link v1\0";
const SEALING_LABEL: &[u8] = b"adit sealing key v1\0";

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

impl ServerKey {
    fn sealing_key(&self) -> aead::LessSafeKey {
        let mut mac = self.mac();
        mac.update(SEALING_LABEL);
        let key = mac.finalize().into_bytes();
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &key)
            .unwrap_or_else(|_| unreachable!("HMAC-SHA-256 gives the 32 bytes AES-256 takes"));
        aead::LessSafeKey::new(key)
    }

    /// `secret` encrypted and authenticated, bound to `context` (what it belongs to, e.g.
    /// `zone-certificate:<zone id>`, so a sealed value cannot be moved to another row), as
    /// URL-safe base64 of nonce ‖ ciphertext ‖ tag.
    pub(crate) fn seal(&self, context: &str, secret: &[u8]) -> Result<String, Error> {
        use base64::Engine;
        let mut nonce = [0u8; aead::NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = secret.to_vec();
        self.sealing_key()
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| Error::Crypto("could not seal a secret".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    /// What [`seal`](Self::seal) sealed for `context`; an error when it was sealed under
    /// another server key or context, or changed.
    pub(crate) fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, Error> {
        use base64::Engine;
        let corrupt = || {
            Error::Corrupt(format!(
                "the sealed secret of {context} cannot be opened (another server key?)"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| corrupt())?;
        if bytes.len() < aead::NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .sealing_key()
            .open_in_place(nonce, aead::Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
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
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let (key, other) = (ServerKey([9; 32]), ServerKey([8; 32]));
        let sealed = key
            .seal("zone-certificate:a", b"-----BEGIN PRIVATE KEY-----")
            .unwrap();
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(
            key.open("zone-certificate:a", &sealed).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert_ne!(
            sealed,
            key.seal("zone-certificate:a", b"-----BEGIN PRIVATE KEY-----")
                .unwrap()
        );
        assert!(key.open("zone-certificate:b", &sealed).is_err());
        assert!(other.open("zone-certificate:a", &sealed).is_err());
        assert!(key.open("zone-certificate:a", "not base64!").is_err());
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
