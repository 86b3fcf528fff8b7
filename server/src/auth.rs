//! API-token authentication shared by REST and gRPC. Tokens are stored as SHA-256 hashes:
//! they are 256 random bits, so a slow password hash would add nothing.

use adit_core::ids::AccountId;

use crate::{Error, secrets::sha256_hex, storage::Storage};

/// The token in an `Authorization: Bearer …` value.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(crate) async fn account_for_api_token(
    storage: &Storage,
    token: Option<&str>,
) -> Result<AccountId, Error> {
    let token = token.ok_or(Error::Unauthenticated)?;
    storage
        .account_for_api_token(&sha256_hex(token.as_bytes()))
        .await?
        .ok_or(Error::Unauthenticated)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_parsing() {
        assert_eq!(super::bearer("Bearer abc"), Some("abc"));
        assert_eq!(super::bearer("bearer  abc "), Some("abc"));
        assert_eq!(super::bearer("Basic abc"), None);
        assert_eq!(super::bearer("Bearer "), None);
        assert_eq!(super::bearer("Bearer"), None);
    }
}
