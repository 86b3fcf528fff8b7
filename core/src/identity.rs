//! Who may do what: users' roles in an account, API tokens' scopes, and the permissions
//! both come down to. Parsed once where they enter (flags, JSON, the database).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::Error;

/// A user's role in one account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, tokens and the audit log.
    Admin,
    /// Manages tunnels and routes.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Self; 3] = [Self::Admin, Self::Member, Self::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// What the role allows, as the scopes a token of this user may carry.
    pub fn scopes(self) -> Scopes {
        match self {
            Self::Admin => Scopes::from_iter([Scope::Admin]),
            Self::Member => {
                Scopes::from_iter([Scope::Read, Scope::TunnelsWrite, Scope::RoutesWrite])
            }
            Self::Viewer => Scopes::from_iter([Scope::Read]),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::InvalidRole(s.to_owned()))
    }
}

/// One thing an API token may do.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Read every object of the account.
    #[serde(rename = "read")]
    Read,
    /// Create, rename, delete tunnels; read their tokens; rotate their secrets.
    #[serde(rename = "tunnels:write")]
    TunnelsWrite,
    /// Add and remove public hostnames and private networks.
    #[serde(rename = "routes:write")]
    RoutesWrite,
    /// Everything, including users, API tokens and the audit log.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: [Self; 4] = [
        Self::Read,
        Self::TunnelsWrite,
        Self::RoutesWrite,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::TunnelsWrite => "tunnels:write",
            Self::RoutesWrite => "routes:write",
            Self::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::InvalidScope(s.to_owned()))
    }
}

/// A set of scopes. `admin` implies all others, and either write scope implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
// A bit set inside, a list of scope names on the wire (see the serde impls).
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = Vec<Scope>)
)]
pub struct Scopes(u8);

impl Scopes {
    /// Whether this set allows `scope`.
    pub fn allows(self, scope: Scope) -> bool {
        let admin = self.0 & Scope::Admin.bit() != 0;
        let any_write = self.0 & (Scope::TunnelsWrite.bit() | Scope::RoutesWrite.bit()) != 0;
        admin || self.0 & scope.bit() != 0 || (scope == Scope::Read && any_write)
    }

    /// Whether everything `other` allows, this allows too.
    pub fn covers(self, other: Self) -> bool {
        other.iter().all(|s| self.allows(s))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.0 & s.bit() != 0)
    }

    /// Parses `read,tunnels:write`, as stored and as given on the command line.
    pub fn parse_list(list: &str) -> Result<Self, Error> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

/// A user's login name: an email address, compared without case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(format = Email))]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let email = s.trim().to_ascii_lowercase();
        let invalid = |reason| Error::InvalidEmail {
            email: s.to_owned(),
            reason,
        };
        if email.len() > 254 {
            return Err(invalid("longer than 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains spaces or control characters"));
        }
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
            {
                Ok(Self(email))
            }
            _ => Err(invalid("must look like name@domain")),
        }
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_imply_what_they_should() {
        let admin = Scopes::from_iter([Scope::Admin]);
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let tunnels = Scopes::from_iter([Scope::TunnelsWrite]);
        assert!(tunnels.allows(Scope::Read));
        assert!(tunnels.allows(Scope::TunnelsWrite));
        assert!(!tunnels.allows(Scope::RoutesWrite));
        assert!(!tunnels.allows(Scope::Admin));
        let read = Scopes::from_iter([Scope::Read]);
        assert!(!read.allows(Scope::TunnelsWrite));
        assert!(Scopes::default().iter().next().is_none());
        assert!(!Scopes::default().allows(Scope::Read));
    }

    #[test]
    fn roles_map_to_scopes_and_cover_each_other_in_order() {
        assert!(Role::Admin.scopes().covers(Role::Member.scopes()));
        assert!(Role::Member.scopes().covers(Role::Viewer.scopes()));
        assert!(!Role::Viewer.scopes().covers(Role::Member.scopes()));
        assert!(!Role::Member.scopes().allows(Scope::Admin));
    }

    #[test]
    fn scope_lists_round_trip_and_reject_unknown_names() {
        let s = Scopes::parse_list("read, tunnels:write").unwrap();
        assert_eq!(s.to_string(), "read,tunnels:write");
        assert_eq!(Scopes::parse_list(&s.to_string()).unwrap(), s);
        assert!(matches!(
            Scopes::parse_list("read,root"),
            Err(Error::InvalidScope(name)) if name == "root"
        ));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["read","tunnels:write"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), s);
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            " Ada@Example.COM ".parse::<Email>().unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad:?} should be refused");
        }
    }
}
