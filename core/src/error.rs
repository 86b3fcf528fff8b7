use thiserror::Error;

/// Everything that can be wrong with input parsed by this crate.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    #[error("invalid hostname {hostname:?}: {reason}")]
    InvalidHostname {
        hostname: String,
        reason: &'static str,
    },
    #[error("Provided Tunnel token is not valid: {0}")]
    InvalidToken(&'static str),
    #[error("invalid {kind} id {value:?}")]
    InvalidId { kind: &'static str, value: String },
    #[error("invalid tunnel name {name:?}: {reason}")]
    InvalidTunnelName { name: String, reason: &'static str },
    #[error("unknown role {0:?} (roles: admin, member, viewer)")]
    InvalidRole(String),
    #[error("unknown scope {0:?} (scopes: read, tunnels:write, routes:write, admin)")]
    InvalidScope(String),
    #[error("invalid email {email:?}: {reason}")]
    InvalidEmail { email: String, reason: &'static str },
    // --- ingress (config.yml) errors ---
    // Texts are cloudflared's (users search for them); `rule` is always 1-based.
    /// No ingress rules at all.
    #[error("The config file doesn't contain any ingress rules")]
    NoIngressRules,
    /// The last rule has a hostname or path filter.
    #[error(
        "Rule #{rule}: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)"
    )]
    LastRuleNotCatchAll { rule: usize },
    /// A rule before the last matches everything, so later rules are dead.
    #[error(
        "Rule #{rule} is matching the hostname '{hostname}', but this will match every hostname, meaning the rules which follow it will never be triggered."
    )]
    CatchAllNotLast { rule: usize, hostname: String },
    /// The rule's hostname has a `:port`.
    #[error("Rule #{rule}: Hostname cannot contain a port")]
    HostnameContainsPort { rule: usize },
    /// A `*` anywhere but a leading `*.`, or more than one.
    #[error(
        "Rule #{rule}: Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\""
    )]
    BadWildcard { rule: usize },
    /// Any other reason the rule's hostname is not a hostname.
    #[error("Rule #{rule} has an invalid hostname '{hostname}': {reason}")]
    RuleInvalidHostname {
        rule: usize,
        hostname: String,
        reason: &'static str,
    },
    /// The rule's `path` does not compile as a regex.
    #[error("Rule #{rule} has an invalid regex: {reason}")]
    InvalidPathRegex { rule: usize, reason: String },
    /// The service URL lacks a scheme or a host.
    #[error(
        "Rule #{rule}: {service} is an invalid address, please make sure it has a scheme and a hostname"
    )]
    ServiceMissingSchemeOrHost { rule: usize, service: String },
    /// The service URL has a path (or query), which would never be used.
    #[error(
        "Rule #{rule}: {service} is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the eyeball request's path"
    )]
    ServiceHasPath { rule: usize, service: String },
    /// `http_status:` with a non-number or a number outside 100–999.
    #[error("Rule #{rule}: invalid HTTP status code: {code}")]
    InvalidStatusCode { rule: usize, code: String },
    /// A service kind Adit does not proxy (yet).
    #[error(
        "Rule #{rule}: service '{service}' is not supported; use an http://, https://, ws://, wss://, tcp://, ssh://, rdp://, smb:// (or other scheme://host:port) address, unix:/path, unix+tls:/path, http_status:NNN or hello_world (bastion and socks-proxy are not supported yet)"
    )]
    UnsupportedService { rule: usize, service: String },
    /// A raw-TCP service (`postgres://db`) whose scheme has no default port and which
    /// names none; cloudflared would accept it and fail on every connection instead.
    #[error("Rule #{rule}: {service} needs a port: only tcp, ssh, rdp and smb have default ports")]
    ServiceNeedsPort { rule: usize, service: String },
    /// A service address that parses but cannot be dialled (port 0, a user name, a
    /// relative unix socket path, ...); `reason` says which.
    #[error("Rule #{rule}: {service} is an invalid address: {reason}")]
    InvalidServiceAddress {
        rule: usize,
        service: String,
        reason: &'static str,
    },
    /// A duration that is neither a Go duration string (`1m30s`) nor whole seconds.
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration { value: String, reason: &'static str },
    /// Text that is not an RFC 3339 time (`2026-11-25T01:33:07Z`).
    #[error("invalid RFC 3339 time {text:?}: {reason}")]
    InvalidTimestamp { text: String, reason: &'static str },
    // --- private-network routes (CIDR) ---
    /// Text that is not an IP address or `address/prefix-length`.
    #[error("invalid IP network {input:?}: {reason}")]
    InvalidIpNet { input: String, reason: &'static str },
}

/// The member of a rule an ingress error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleField {
    Hostname,
    Path,
    Service,
}

impl RuleField {
    /// The key as config.yml and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hostname => "hostname",
            Self::Path => "path",
            Self::Service => "service",
        }
    }
}

impl Error {
    /// For an error about one ingress rule: the rule's 0-based index (its position in the
    /// list, as JSON paths count) and the member at fault, if one is; so the API can point
    /// at `config.ingress[2].service`. `None` for errors about no single rule.
    pub fn ingress_location(&self) -> Option<(usize, Option<RuleField>)> {
        let (rule, field) = match self {
            // The rule as a whole: it filters (last) or does not (not last).
            Self::LastRuleNotCatchAll { rule } => (*rule, None),
            Self::CatchAllNotLast { rule, .. }
            | Self::HostnameContainsPort { rule }
            | Self::BadWildcard { rule }
            | Self::RuleInvalidHostname { rule, .. } => (*rule, Some(RuleField::Hostname)),
            Self::InvalidPathRegex { rule, .. } => (*rule, Some(RuleField::Path)),
            Self::ServiceMissingSchemeOrHost { rule, .. }
            | Self::ServiceHasPath { rule, .. }
            | Self::InvalidStatusCode { rule, .. }
            | Self::UnsupportedService { rule, .. }
            | Self::ServiceNeedsPort { rule, .. }
            | Self::InvalidServiceAddress { rule, .. } => (*rule, Some(RuleField::Service)),
            _ => return None,
        };
        Some((rule.saturating_sub(1), field))
    }
}
