//! Hostnames as routes and ingress rules name them: exact (`app.example.com`) or a leading
//! wildcard (`*.example.com`, any depth below, never the apex). Matching ignores case
//! (RFC 4343), a port and a trailing dot, which cloudflared does not (its issue #1715).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A validated hostname pattern, stored lowercase without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPattern(String);

impl HostPattern {
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidHostname {
            hostname: input.to_owned(),
            reason,
        };
        let name = input.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > 253 {
            return Err(invalid("it is longer than 253 characters"));
        }
        if name.contains(':') {
            return Err(invalid("Hostname cannot contain a port"));
        }
        let body = match name.strip_prefix("*.") {
            Some(rest) => rest,
            None if name.contains('*') => {
                return Err(invalid(
                    "Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\"",
                ));
            }
            None => &name,
        };
        if body.contains('*') {
            return Err(invalid(
                "Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\"",
            ));
        }
        for label in body.split('.') {
            if label.is_empty() {
                return Err(invalid("it has an empty label"));
            }
            if label.len() > 63 {
                return Err(invalid("a label is longer than 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(invalid(
                    "only letters, digits, '-', '_' and '.' are allowed",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label may not start or end with '-'"));
            }
        }
        Ok(Self(name))
    }

    /// A zone: a domain an account serves, such as `example.com` — a hostname, never a
    /// wildcard (the server and the dashboard's form check zones with this).
    pub fn parse_zone(input: &str) -> Result<Self, Error> {
        let zone = Self::parse(input)?;
        if zone.is_wildcard() {
            return Err(Error::InvalidHostname {
                hostname: input.to_owned(),
                reason: "a zone is a domain such as example.com, not a wildcard",
            });
        }
        Ok(zone)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// The suffix a wildcard matches below (`.example.com` for `*.example.com`).
    fn wildcard_suffix(&self) -> Option<&str> {
        self.0.strip_prefix('*')
    }

    /// Whether a request's Host (any case, with or without port or trailing dot) matches.
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.matches_normalized(&host)
    }

    /// Like [`matches`](Self::matches) for a host already passed through [`normalize_host`].
    pub fn matches_normalized(&self, host: &str) -> bool {
        match self.wildcard_suffix() {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => self.0 == host,
        }
    }

    /// Whether every hostname the pattern matches lies in the domain `zone`: the zone itself
    /// or a name below it (`*.app.example.com` and `example.com` are in `example.com`).
    pub fn is_within(&self, zone: &HostPattern) -> bool {
        zone.holds_normalized(self.0.strip_prefix("*.").unwrap_or(&self.0))
    }

    /// Whether a host already passed through [`normalize_host`] is this domain or a name
    /// below it (never, for a wildcard).
    pub fn holds_normalized(&self, host: &str) -> bool {
        !self.is_wildcard()
            && (host == self.0
                || host
                    .strip_suffix(self.0.as_str())
                    .is_some_and(|head| head.ends_with('.')))
    }

    /// Whether some hostname could match both patterns (used to keep routes unique).
    pub fn overlaps(&self, other: &HostPattern) -> bool {
        match (self.wildcard_suffix(), other.wildcard_suffix()) {
            (None, None) => self.0 == other.0,
            (Some(_), None) => self.matches_normalized(&other.0),
            (None, Some(_)) => other.matches_normalized(&self.0),
            (Some(a), Some(b)) => a.ends_with(b) || b.ends_with(a),
        }
    }
}

/// Lowercases a Host header value and drops its port and trailing dot.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim();
    let without_port = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets' content.
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for HostPattern {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<HostPattern> for String {
    fn from(value: HostPattern) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zones_are_domains_without_wildcards() {
        assert_eq!(
            HostPattern::parse_zone("Example.COM.").unwrap().as_str(),
            "example.com"
        );
        assert!(matches!(
            HostPattern::parse_zone("*.example.com"),
            Err(Error::InvalidHostname { reason, .. }) if reason.contains("not a wildcard")
        ));
        assert!(HostPattern::parse_zone("example.com:80").is_err());
    }

    #[test]
    fn patterns_lie_within_zones() {
        let zone = HostPattern::parse("example.com").unwrap();
        for inside in [
            "example.com",
            "app.example.com",
            "*.example.com",
            "*.a.b.example.com",
        ] {
            assert!(
                HostPattern::parse(inside).unwrap().is_within(&zone),
                "{inside}"
            );
        }
        for outside in ["badexample.com", "example.org", "com", "*.com"] {
            assert!(
                !HostPattern::parse(outside).unwrap().is_within(&zone),
                "{outside}"
            );
        }
        let wildcard = HostPattern::parse("*.example.com").unwrap();
        assert!(!zone.is_within(&wildcard), "a wildcard is no zone");
    }

    use super::*;

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(
            HostPattern::parse("App.Example.COM.").unwrap().as_str(),
            "app.example.com"
        );
        assert_eq!(
            HostPattern::parse("*.Example.com").unwrap().as_str(),
            "*.example.com"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        for bad in [
            "",
            "a:80",
            "*example.com",
            "a.*.com",
            "**.a.com",
            "a..b",
            "-a.com",
            "a b.com",
            "a.*",
        ] {
            assert!(
                HostPattern::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn matching_ignores_case_port_and_trailing_dot() {
        let exact = HostPattern::parse("app.example.com").unwrap();
        for host in [
            "app.example.com",
            "APP.example.com",
            "app.example.com:8080",
            "app.example.com.",
        ] {
            assert!(exact.matches(host), "{host}");
        }
        assert!(!exact.matches("x.app.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.Example.com:443"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
    }

    #[test]
    fn overlap_detection() {
        let p = |s| HostPattern::parse(s).unwrap();
        assert!(p("a.example.com").overlaps(&p("a.example.com")));
        assert!(p("*.example.com").overlaps(&p("a.example.com")));
        assert!(p("a.example.com").overlaps(&p("*.example.com")));
        assert!(p("*.example.com").overlaps(&p("*.b.example.com")));
        assert!(!p("*.example.com").overlaps(&p("example.com")));
        assert!(!p("*.a.com").overlaps(&p("*.b.com")));
    }

    #[test]
    fn normalize_host_handles_ipv6_and_ports() {
        assert_eq!(normalize_host("[::1]:80"), "::1");
        assert_eq!(normalize_host("Example.com:443"), "example.com");
        assert_eq!(normalize_host("example.com"), "example.com");
    }
}
