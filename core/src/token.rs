//! The tunnel token: all a connector needs to run a tunnel. cloudflared's shape — base64 of
//! `{"a": account, "t": tunnel id, "s": secret (base64), "e": endpoint}` — plus `p`, the
//! SHA-256 pin of the server's CA certificate when the server made its own CA.

use std::fmt;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE},
};
use serde::{Deserialize, Serialize};

use crate::{
    Error,
    ids::{AccountId, TunnelId},
};

/// Fewest secret bytes accepted (cloudflared's minimum).
pub const MIN_SECRET_LEN: usize = 32;

/// A tunnel secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelSecret(Vec<u8>);

impl TunnelSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Error> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(Error::InvalidToken("the secret is shorter than 32 bytes"));
        }
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for TunnelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TunnelSecret(***)")
    }
}

#[derive(Serialize, Deserialize)]
struct TokenJson {
    a: String,
    t: String,
    s: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
}

/// A parsed tunnel token.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelToken {
    pub account_id: AccountId,
    pub tunnel_id: TunnelId,
    pub secret: TunnelSecret,
    /// The tunnel listener to dial, `host:port`.
    pub endpoint: Option<String>,
    /// Lowercase hex SHA-256 of the CA certificate the edge's chain must end in.
    pub ca_pin: Option<String>,
}

impl fmt::Debug for TunnelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelToken")
            .field("account_id", &self.account_id)
            .field("tunnel_id", &self.tunnel_id)
            .field("secret", &self.secret)
            .field("endpoint", &self.endpoint)
            .field("ca_pin", &self.ca_pin)
            .finish()
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
        .ok()
}

impl TunnelToken {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let raw = decode_base64(text).ok_or(Error::InvalidToken("it is not base64"))?;
        let json: TokenJson =
            serde_json::from_slice(&raw).map_err(|_| Error::InvalidToken("it is not a token"))?;
        let account_id = json
            .a
            .parse()
            .map_err(|_| Error::InvalidToken("the account id is not a UUID"))?;
        let tunnel_id = json
            .t
            .parse()
            .map_err(|_| Error::InvalidToken("the tunnel id is not a UUID"))?;
        let secret =
            decode_base64(&json.s).ok_or(Error::InvalidToken("the secret is not base64"))?;
        let secret = TunnelSecret::from_bytes(secret)?;
        if let Some(pin) = &json.p
            && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::InvalidToken(
                "the CA pin is not a SHA-256 hex digest",
            ));
        }
        Ok(Self {
            account_id,
            tunnel_id,
            secret,
            endpoint: json.e.filter(|e| !e.is_empty()),
            ca_pin: json.p.map(|p| p.to_ascii_lowercase()),
        })
    }

    pub fn encode(&self) -> String {
        let json = TokenJson {
            a: self.account_id.to_string(),
            t: self.tunnel_id.to_string(),
            s: self.secret.to_base64(),
            e: self.endpoint.clone(),
            p: self.ca_pin.clone(),
        };
        // Serialising a struct of strings cannot fail.
        STANDARD.encode(serde_json::to_vec(&json).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudflared_vector() {
        // cloudflared's documented example, with UUID-shaped account for our ids.
        let json = r#"{"a":"699d9864-2c56-4d2e-855e-9661899b7252","s":"AQIDBAUGBwgBAgMEBQYHCAECAwQFBgcIAQIDBAUGBwg=","t":"f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"}"#;
        let token = TunnelToken::parse(&STANDARD.encode(json)).unwrap();
        assert_eq!(
            token.tunnel_id.to_string(),
            "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415"
        );
        assert_eq!(token.secret.as_bytes().len(), 32);
        assert_eq!(token.endpoint, None);
    }

    #[test]
    fn round_trips() {
        let token = TunnelToken {
            account_id: AccountId::random(),
            tunnel_id: TunnelId::random(),
            secret: TunnelSecret::from_bytes(vec![7; 32]).unwrap(),
            endpoint: Some("127.0.0.1:7844".into()),
            ca_pin: Some("ab".repeat(32)),
        };
        assert_eq!(TunnelToken::parse(&token.encode()).unwrap(), token);
        assert!(
            !format!("{token:?}").contains("BwcH"),
            "Debug must hide the secret"
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "aabc",
            "",
            "!!!",
            &STANDARD.encode("{}"),
            &STANDARD.encode(r#"{"a":"x","t":"y","s":"z"}"#),
        ] {
            let err = TunnelToken::parse(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("Provided Tunnel token is not valid"),
                "{err}"
            );
        }
        let short = format!(
            r#"{{"a":"{}","t":"{}","s":"{}"}}"#,
            AccountId::random(),
            TunnelId::random(),
            STANDARD.encode([1u8; 8])
        );
        assert!(TunnelToken::parse(&STANDARD.encode(short)).is_err());
    }
}
