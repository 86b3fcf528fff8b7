//! Typed ids, so a tunnel id can never be passed where a connector id is meant.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| Error::InvalidId {
                    kind: $kind,
                    value: s.to_owned(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// An account (organisation); every stored object belongs to exactly one.
    AccountId,
    "account"
);
uuid_id!(
    /// A tunnel: the persistent object a token runs.
    TunnelId,
    "tunnel"
);
uuid_id!(
    /// One connector process (`adit tunnel run`), new at every start.
    ConnectorId,
    "connector"
);
uuid_id!(
    /// One data connection of a connector to the edge.
    ConnectionId,
    "connection"
);
uuid_id!(
    /// A hostname route.
    RouteId,
    "route"
);
uuid_id!(
    /// A domain an account serves.
    ZoneId,
    "zone"
);
uuid_id!(
    /// A person who logs in to the dashboard; a member of one or more accounts.
    UserId,
    "user"
);
uuid_id!(
    /// An API token (its id, never its secret).
    ApiTokenId,
    "API token"
);
uuid_id!(
    /// A dashboard session, which a JWT names and logout ends.
    SessionId,
    "session"
);

/// A tunnel's human name: 1–64 of `A–Z a–z 0–9 . _ -`, and never a UUID (a UUID names a
/// tunnel by id, as in cloudflared).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TunnelName(String);

impl TunnelName {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidTunnelName {
            name: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.len() > 64 {
            return Err(invalid("it is longer than 64 characters"));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid(
                "only letters, digits, '.', '_' and '-' are allowed",
            ));
        }
        if Uuid::parse_str(input).is_ok() {
            return Err(invalid("a UUID is not allowed as a name"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TunnelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TunnelName {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        Self::parse(&value)
    }
}

impl From<TunnelName> for String {
    fn from(value: TunnelName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = TunnelId::random();
        assert_eq!(id.to_string().parse::<TunnelId>().unwrap(), id);
        assert!("nope".parse::<TunnelId>().is_err());
    }

    #[test]
    fn tunnel_names() {
        assert!(TunnelName::parse("my-tunnel_1.prod").is_ok());
        for bad in [
            "",
            "a b",
            "x/y",
            "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415",
            &"a".repeat(65),
        ] {
            assert!(TunnelName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
