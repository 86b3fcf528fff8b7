//! Ingress rules as config.yml and the API write them (cloudflared's grammar and error
//! texts), validated once into [`Ingress`], which picks the rule for each request.
//!
//! Services: http(s)/ws(s) URLs, raw TCP (`tcp://`, `ssh://`, `rdp://`, `smb://` or any
//! other `scheme://host:port`), HTTP over a unix socket (`unix:`, `unix+tls:`),
//! `http_status:NNN` and `hello_world`. `bastion` and `socks-proxy` are refused.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    Error,
    hostname::{HostPattern, normalize_host},
};

/// One ingress rule exactly as written in config.yml or sent to the API.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngressRule {
    /// Exact hostname, `*.suffix`, `*` or absent (the last two match every host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Regex matched unanchored against the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where matching requests go, e.g. `http://localhost:8080`.
    pub service: String,
    /// Overrides of the global `originRequest`, field by field.
    #[serde(
        default,
        rename = "originRequest",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_request: Option<OriginRequestConfig>,
}

/// A tunnel's whole ingress configuration: config.yml's `ingress` and `originRequest`
/// keys, in the JSON shape cloudflared's API gives the `config` of a remotely managed
/// tunnel (`PUT …/configurations`). The server stores it and pushes it to connectors.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    /// The rules in order; the last must be a catch-all.
    #[serde(default)]
    pub ingress: Vec<RawIngressRule>,
    /// Defaults for every rule, which each rule's `originRequest` overrides field by field.
    #[serde(
        default,
        rename = "originRequest",
        skip_serializing_if = "Option::is_none"
    )]
    pub origin_request: Option<OriginRequestConfig>,
}

impl IngressConfig {
    /// Validates the rules exactly as config.yml's are.
    pub fn parse(&self) -> Result<Ingress, Error> {
        Ingress::parse(&self.ingress, self.origin_request.as_ref())
    }

    /// Validated rules written back out in canonical form (each rule's origin settings as
    /// far as they differ from the defaults), e.g. for a connector to report the local
    /// rules it runs. Parsing the result gives the same rules.
    pub fn from_rules(ingress: &Ingress) -> Self {
        let ingress = ingress
            .rules()
            .iter()
            .map(|rule| {
                let changed = rule.origin_request.changes();
                RawIngressRule {
                    hostname: rule.hostname.as_ref().map(|h| h.as_str().to_owned()),
                    path: rule.path_str().map(str::to_owned),
                    service: rule.service.to_string(),
                    origin_request: (changed != OriginRequestConfig::default()).then_some(changed),
                }
            })
            .collect();
        Self {
            ingress,
            origin_request: None,
        }
    }
}

/// `originRequest` as written: every field optional so a rule can override some of the
/// global ones. Durations read as Go strings (`30s`, `1m30s`) or whole seconds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OriginRequestConfig {
    /// TCP dial timeout.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = duration_schema))]
    pub connect_timeout: Option<Duration>,
    /// TLS handshake timeout.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = duration_schema))]
    pub tls_timeout: Option<Duration>,
    /// TCP keep-alive interval.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = duration_schema))]
    pub tcp_keep_alive: Option<Duration>,
    /// How long an idle origin connection is kept.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = duration_schema))]
    pub keep_alive_timeout: Option<Duration>,
    /// Disables the IPv4/IPv6 fallback when dialing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_happy_eyeballs: Option<bool>,
    /// Skips verification of the origin's certificate.
    #[serde(
        default,
        rename = "noTLSVerify",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_tls_verify: Option<bool>,
    /// Sends bodies unchunked (for WSGI servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_chunked_encoding: Option<bool>,
    /// Tries HTTP/2 to an https origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_origin: Option<bool>,
    /// Maximum idle origin connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_connections: Option<usize>,
    /// Host header sent to the origin instead of the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_host_header: Option<String>,
    /// Name the origin's certificate is checked against (and SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_server_name: Option<String>,
    /// Path of a PEM bundle of CAs trusted for the origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pool: Option<String>,
}

impl OriginRequestConfig {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn overlay(&self, over: &Self) -> Self {
        fn pick<T: Clone>(base: &Option<T>, over: &Option<T>) -> Option<T> {
            over.as_ref().or(base.as_ref()).cloned()
        }
        Self {
            connect_timeout: pick(&self.connect_timeout, &over.connect_timeout),
            tls_timeout: pick(&self.tls_timeout, &over.tls_timeout),
            tcp_keep_alive: pick(&self.tcp_keep_alive, &over.tcp_keep_alive),
            keep_alive_timeout: pick(&self.keep_alive_timeout, &over.keep_alive_timeout),
            no_happy_eyeballs: pick(&self.no_happy_eyeballs, &over.no_happy_eyeballs),
            no_tls_verify: pick(&self.no_tls_verify, &over.no_tls_verify),
            disable_chunked_encoding: pick(
                &self.disable_chunked_encoding,
                &over.disable_chunked_encoding,
            ),
            http2_origin: pick(&self.http2_origin, &over.http2_origin),
            keep_alive_connections: pick(
                &self.keep_alive_connections,
                &over.keep_alive_connections,
            ),
            http_host_header: pick(&self.http_host_header, &over.http_host_header),
            origin_server_name: pick(&self.origin_server_name, &over.origin_server_name),
            ca_pool: pick(&self.ca_pool, &over.ca_pool),
        }
    }
}

/// Origin connection settings with every value decided (cloudflared's defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginRequest {
    /// TCP dial timeout (default 30s).
    pub connect_timeout: Duration,
    /// TLS handshake timeout (default 10s).
    pub tls_timeout: Duration,
    /// TCP keep-alive interval (default 30s).
    pub tcp_keep_alive: Duration,
    /// Idle origin connection lifetime (default 90s).
    pub keep_alive_timeout: Duration,
    /// Maximum idle origin connections (default 100).
    pub keep_alive_connections: usize,
    /// Disables the IPv4/IPv6 fallback when dialing.
    pub no_happy_eyeballs: bool,
    /// Skips verification of the origin's certificate.
    pub no_tls_verify: bool,
    /// Sends bodies unchunked.
    pub disable_chunked_encoding: bool,
    /// Tries HTTP/2 to an https origin.
    pub http2_origin: bool,
    /// Host header sent to the origin instead of the request's.
    pub http_host_header: Option<String>,
    /// Name the origin's certificate is checked against (and SNI).
    pub origin_server_name: Option<String>,
    /// Path of a PEM bundle of CAs trusted for the origin.
    pub ca_pool: Option<String>,
}

impl OriginRequest {
    /// cloudflared's defaults; a `const` so the fallback rule can be a `static`.
    pub const DEFAULT: Self = Self {
        connect_timeout: Duration::from_secs(30),
        tls_timeout: Duration::from_secs(10),
        tcp_keep_alive: Duration::from_secs(30),
        keep_alive_timeout: Duration::from_secs(90),
        keep_alive_connections: 100,
        no_happy_eyeballs: false,
        no_tls_verify: false,
        disable_chunked_encoding: false,
        http2_origin: false,
        http_host_header: None,
        origin_server_name: None,
        ca_pool: None,
    };

    /// Fills what `config` leaves unset with the defaults.
    pub fn from_config(config: &OriginRequestConfig) -> Self {
        let d = Self::DEFAULT;
        Self {
            connect_timeout: config.connect_timeout.unwrap_or(d.connect_timeout),
            tls_timeout: config.tls_timeout.unwrap_or(d.tls_timeout),
            tcp_keep_alive: config.tcp_keep_alive.unwrap_or(d.tcp_keep_alive),
            keep_alive_timeout: config.keep_alive_timeout.unwrap_or(d.keep_alive_timeout),
            keep_alive_connections: config
                .keep_alive_connections
                .unwrap_or(d.keep_alive_connections),
            no_happy_eyeballs: config.no_happy_eyeballs.unwrap_or(d.no_happy_eyeballs),
            no_tls_verify: config.no_tls_verify.unwrap_or(d.no_tls_verify),
            disable_chunked_encoding: config
                .disable_chunked_encoding
                .unwrap_or(d.disable_chunked_encoding),
            http2_origin: config.http2_origin.unwrap_or(d.http2_origin),
            http_host_header: non_empty(&config.http_host_header),
            origin_server_name: non_empty(&config.origin_server_name),
            ca_pool: non_empty(&config.ca_pool),
        }
    }
}

impl OriginRequest {
    /// The settings that differ from the defaults, as a rule would write them.
    pub fn changes(&self) -> OriginRequestConfig {
        fn differs<T: PartialEq + Clone>(value: &T, default: &T) -> Option<T> {
            (value != default).then(|| value.clone())
        }
        let d = Self::DEFAULT;
        OriginRequestConfig {
            connect_timeout: differs(&self.connect_timeout, &d.connect_timeout),
            tls_timeout: differs(&self.tls_timeout, &d.tls_timeout),
            tcp_keep_alive: differs(&self.tcp_keep_alive, &d.tcp_keep_alive),
            keep_alive_timeout: differs(&self.keep_alive_timeout, &d.keep_alive_timeout),
            no_happy_eyeballs: differs(&self.no_happy_eyeballs, &d.no_happy_eyeballs),
            no_tls_verify: differs(&self.no_tls_verify, &d.no_tls_verify),
            disable_chunked_encoding: differs(
                &self.disable_chunked_encoding,
                &d.disable_chunked_encoding,
            ),
            http2_origin: differs(&self.http2_origin, &d.http2_origin),
            keep_alive_connections: differs(
                &self.keep_alive_connections,
                &d.keep_alive_connections,
            ),
            http_host_header: self.http_host_header.clone(),
            origin_server_name: self.origin_server_name.clone(),
            ca_pool: self.ca_pool.clone(),
        }
    }
}

impl Default for OriginRequest {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// cloudflared's default for these strings is "", so a rule can write "" to unset a
/// global value; we model "unset" as `None`.
fn non_empty(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Where a matching request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Proxy to an http or https origin (ws/wss are stored as http/https).
    Http {
        /// Scheme, host and port of the origin; the path is always `/`.
        url: Url,
    },
    /// Answer with this status and an empty body.
    HttpStatus(u16),
    /// The built-in test page.
    HelloWorld,
    /// Raw TCP, carried over a WebSocket from an `adit access` client: `tcp://`, `ssh://`,
    /// `rdp://`, `smb://` or any other `scheme://host:port` (the scheme is only a label).
    Tcp {
        /// Lowercase scheme as written (`tcp`, `ssh`, `postgres`, ...), kept for display.
        scheme: String,
        /// Lowercase hostname (punycode if it was Unicode) or IP address, without brackets.
        host: String,
        /// The written port, or the scheme's default (tcp 7864, ssh 22, rdp 3389, smb 445).
        port: u16,
    },
    /// HTTP (or HTTPS if `tls`) to an origin listening on a unix socket.
    Unix {
        /// Absolute path of the socket.
        path: String,
        /// Whether to speak TLS on the socket (`unix+tls:`).
        tls: bool,
    },
}

impl Service {
    /// Parses a rule's `service`; `rule` (1-based) only names the rule in errors.
    fn parse(rule: usize, text: &str) -> Result<Self, Error> {
        if let Some(code) = text.strip_prefix("http_status:") {
            return parse_status(rule, code).map(Self::HttpStatus);
        }
        if text == "hello_world" || text == "hello-world" {
            return Ok(Self::HelloWorld);
        }
        // cloudflared keywords that are no URL; without this they'd be "invalid addresses".
        if matches!(text, "bastion" | "socks-proxy" | "warp-routing") {
            return Err(unsupported(rule, text));
        }
        // Before URL parsing: `unix:/path` is a path, not a URL with a host (cloudflared
        // also just strips the prefix).
        if let Some(path) = strip_prefix_ignore_case(text, "unix+tls:") {
            return parse_unix_path(rule, text, path).map(|path| Self::Unix { path, tls: true });
        }
        if let Some(path) = strip_prefix_ignore_case(text, "unix:") {
            return parse_unix_path(rule, text, path).map(|path| Self::Unix { path, tls: false });
        }
        parse_url_service(rule, text)
    }

    /// Whether the origin is a byte stream rather than an HTTP server: the connector then
    /// bridges the eyeball's WebSocket to a raw TCP connection instead of proxying HTTP.
    pub fn is_stream(&self) -> bool {
        matches!(self, Self::Tcp { .. })
    }

    /// For [`Service::Tcp`], the `host:port` to dial (an IPv6 host in brackets, `[::1]:22`);
    /// `None` for every other kind.
    pub fn tcp_address(&self) -> Option<String> {
        match self {
            Self::Tcp { host, port, .. } => Some(host_port(host, *port)),
            _ => None,
        }
    }
}

/// `host:port`, bracketing an IPv6 literal so the port stays separable.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// cloudflared's default ports for TCP schemes; other schemes have none. tcp's 7864 is
/// arbitrary (cloudflared picked it), kept so configs written for it mean the same here.
fn default_tcp_port(scheme: &str) -> Option<u16> {
    match scheme {
        "tcp" => Some(7864),
        "ssh" => Some(22),
        "rdp" => Some(3389),
        "smb" => Some(445),
        _ => None,
    }
}

fn unsupported(rule: usize, service: &str) -> Error {
    Error::UnsupportedService {
        rule,
        service: service.to_owned(),
    }
}

fn invalid_address(rule: usize, service: &str, reason: &'static str) -> Error {
    Error::InvalidServiceAddress {
        rule,
        service: service.to_owned(),
        reason,
    }
}

/// The socket path after `unix:` / `unix+tls:`. cloudflared takes it verbatim; we also
/// require it to be absolute, because a relative path would depend on the connector's
/// working directory (a service manager's, usually `/`), which nobody means.
fn parse_unix_path(rule: usize, text: &str, path: &str) -> Result<String, Error> {
    if path.is_empty() {
        return Err(invalid_address(
            rule,
            text,
            "the unix socket path is empty; write e.g. unix:/run/app.sock",
        ));
    }
    if path.contains('\0') {
        return Err(invalid_address(
            rule,
            text,
            "a unix socket path cannot contain a NUL character",
        ));
    }
    // `unix:///run/app.sock` is the URL spelling (Docker's): an empty host, then the path.
    // Further leading slashes mean one (POSIX); keeping them would give `//run/app.sock`,
    // which prints as `unix://run/app.sock` and reads back as a host.
    if let Some(rest) = path.strip_prefix("///") {
        return Ok(format!("/{}", rest.trim_start_matches('/')));
    }
    // `unix://host/x` looks like a host was meant; a socket has none, so say so.
    if path.starts_with("//") {
        return Err(invalid_address(
            rule,
            text,
            "a unix socket has no host; write unix:/path/to.sock or unix:///path/to.sock",
        ));
    }
    if !path.starts_with('/') {
        return Err(invalid_address(
            rule,
            text,
            "the unix socket path must be absolute, e.g. unix:/run/app.sock",
        ));
    }
    Ok(path.to_owned())
}

fn parse_status(rule: usize, code: &str) -> Result<u16, Error> {
    code.parse::<i64>()
        .ok()
        .filter(|n| (100..=999).contains(n))
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| Error::InvalidStatusCode {
            rule,
            code: code.to_owned(),
        })
}

/// `scheme://host[:port]`: HTTP for http/https/ws/wss, raw TCP for any other scheme.
fn parse_url_service(rule: usize, text: &str) -> Result<Service, Error> {
    let no_host = || Error::ServiceMissingSchemeOrHost {
        rule,
        service: text.to_owned(),
    };
    let mut url = Url::parse(text).map_err(|err| match err {
        // Otherwise `tcp://h:99999` would claim that the scheme or host is missing.
        url::ParseError::InvalidPort => {
            invalid_address(rule, text, "the port must be a number from 1 to 65535")
        }
        _ => no_host(),
    })?;
    // `localhost:8080` parses with scheme "localhost" and no host: really a missing scheme.
    if url.host_str().is_none_or(str::is_empty) {
        return Err(no_host());
    }
    // The request's own path and query are forwarded, so anything here would be ignored;
    // a TCP stream has no path at all. Non-special schemes (`tcp:`) give "" for no path.
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::ServiceHasPath {
            rule,
            service: text.to_owned(),
        });
    }
    let http_scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return parse_tcp(rule, text, &url),
    };
    url.set_scheme(http_scheme).map_err(|()| no_host())?;
    Ok(Service::Http { url })
}

/// Any non-HTTP scheme with a host: raw TCP, as cloudflared treats it.
fn parse_tcp(rule: usize, text: &str, url: &Url) -> Result<Service, Error> {
    // cloudflared dials only `host:port`, so a user name would be silently dropped.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid_address(
            rule,
            text,
            "a user name or password cannot be passed to a TCP origin",
        ));
    }
    let scheme = url.scheme().to_owned();
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        // Non-special schemes keep the host opaque (case, percent-escapes, no IDNA);
        // reparsing it as a domain gives the form DNS and http:// services use.
        Some(url::Host::Domain(raw)) => match url::Host::parse(raw) {
            Ok(url::Host::Domain(domain)) => domain,
            Ok(ip) => ip.to_string(),
            Err(_) => {
                return Err(invalid_address(
                    rule,
                    text,
                    "the host is not a valid hostname or IP address",
                ));
            }
        },
        None => {
            return Err(Error::ServiceMissingSchemeOrHost {
                rule,
                service: text.to_owned(),
            });
        }
    };
    // `port_or_known_default` because Url drops a port equal to a "special" scheme's
    // default: without it `ftp://h:21` would lose its written port (and `ftp://h` gets 21).
    let port = match url
        .port_or_known_default()
        .or_else(|| default_tcp_port(&scheme))
    {
        Some(0) => return Err(invalid_address(rule, text, "port 0 cannot be dialled")),
        Some(port) => port,
        None => {
            return Err(Error::ServiceNeedsPort {
                rule,
                service: text.to_owned(),
            });
        }
    };
    Ok(Service::Tcp { scheme, host, port })
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Url always renders the root path; the service string never has one.
            Self::Http { url } => {
                let text = url.as_str();
                f.write_str(text.strip_suffix('/').unwrap_or(text))
            }
            Self::HttpStatus(code) => write!(f, "http_status:{code}"),
            Self::HelloWorld => f.write_str("hello_world"),
            // Always with the port, so that the default in force is visible.
            Self::Tcp { scheme, host, port } => write!(f, "{scheme}://{}", host_port(host, *port)),
            Self::Unix { path, tls: false } => write!(f, "unix:{path}"),
            Self::Unix { path, tls: true } => write!(f, "unix+tls:{path}"),
        }
    }
}

/// A validated ingress rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `None` matches every host (written as no hostname or `*`).
    pub hostname: Option<HostPattern>,
    /// `None` matches every path.
    pub path: Option<regex::Regex>,
    /// Where matching requests go.
    pub service: Service,
    /// Global `originRequest` overlaid with the rule's.
    pub origin_request: OriginRequest,
}

impl Rule {
    /// The path regex as written, if any.
    pub fn path_str(&self) -> Option<&str> {
        self.path.as_ref().map(regex::Regex::as_str)
    }

    /// Whether the rule matches every request.
    pub fn is_catch_all(&self) -> bool {
        self.hostname.is_none() && self.path.is_none()
    }

    /// `host` must already be normalized; `path` must not carry a query.
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = self
            .hostname
            .as_ref()
            .is_none_or(|pattern| pattern.matches_normalized(host));
        host_ok && self.path.as_ref().is_none_or(|re| re.is_match(path))
    }
}

/// What [`Ingress::find`] answers if no rule matched, which validation rules out (the
/// last rule is a catch-all); it is cloudflared's implicit rule for "no ingress".
static UNMATCHED: Rule = Rule {
    hostname: None,
    path: None,
    service: Service::HttpStatus(503),
    origin_request: OriginRequest::DEFAULT,
};

/// A validated, ordered rule list whose last rule matches everything.
#[derive(Debug, Clone)]
pub struct Ingress {
    rules: Vec<Rule>,
}

impl Ingress {
    /// Validates rules as cloudflared does (per rule: service, hostname, path).
    pub fn parse(
        rules: &[RawIngressRule],
        global: Option<&OriginRequestConfig>,
    ) -> Result<Self, Error> {
        if rules.is_empty() {
            return Err(Error::NoIngressRules);
        }
        let global = global.cloned().unwrap_or_default();
        let rules = rules
            .iter()
            .enumerate()
            .map(|(index, raw)| parse_rule(index + 1, rules.len(), raw, &global))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// One catch-all rule to `service` (for `adit tunnel run --url`).
    pub fn single(service: &str) -> Result<Self, Error> {
        let raw = RawIngressRule {
            hostname: None,
            path: None,
            service: service.to_owned(),
            origin_request: None,
        };
        Self::parse(std::slice::from_ref(&raw), None)
    }

    /// The rules in order; never empty.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule matching `host` (case, port and trailing dot ignored) and `path`
    /// (a query is ignored), with its 0-based index.
    pub fn find(&self, host: &str, path: &str) -> (usize, &Rule) {
        let host = normalize_host(host);
        let path = path.split_once('?').map_or(path, |(before, _)| before);
        self.rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(&host, path))
            .unwrap_or((self.rules.len(), &UNMATCHED))
    }
}

/// `number` is 1-based, `total` the count of rules (to know which one is last).
fn parse_rule(
    number: usize,
    total: usize,
    raw: &RawIngressRule,
    global: &OriginRequestConfig,
) -> Result<Rule, Error> {
    let service = Service::parse(number, &raw.service)?;
    let hostname = raw.hostname.as_deref().unwrap_or_default();
    let path = raw.path.as_deref().filter(|p| !p.is_empty());
    check_hostname_syntax(number, hostname)?;
    check_catch_all_position(number, total, hostname, path.is_some())?;
    let hostname = parse_hostname(number, hostname)?;
    let path = path.map(|p| parse_path(number, p)).transpose()?;
    let merged = match &raw.origin_request {
        Some(own) => global.overlay(own),
        None => global.clone(),
    };
    Ok(Rule {
        hostname,
        path,
        service,
        origin_request: OriginRequest::from_config(&merged),
    })
}

/// cloudflared's two hostname checks, in its order, with its texts.
fn check_hostname_syntax(number: usize, hostname: &str) -> Result<(), Error> {
    if hostname.contains(':') {
        return Err(Error::HostnameContainsPort { rule: number });
    }
    // Stricter than cloudflared, which accepts `*example.com` and then matches it literally.
    let stars = hostname.matches('*').count();
    let wildcard_ok = stars == 0 || hostname == "*" || (stars == 1 && hostname.starts_with("*."));
    if !wildcard_ok {
        return Err(Error::BadWildcard { rule: number });
    }
    Ok(())
}

fn check_catch_all_position(
    number: usize,
    total: usize,
    hostname: &str,
    has_path: bool,
) -> Result<(), Error> {
    let catch_all = (hostname.is_empty() || hostname == "*") && !has_path;
    let last = number == total;
    if last && !catch_all {
        return Err(Error::LastRuleNotCatchAll { rule: number });
    }
    if !last && catch_all {
        return Err(Error::CatchAllNotLast {
            rule: number,
            hostname: hostname.to_owned(),
        });
    }
    Ok(())
}

/// `""` and `"*"` mean "every host"; anything else must be a valid [`HostPattern`].
fn parse_hostname(number: usize, hostname: &str) -> Result<Option<HostPattern>, Error> {
    if hostname.is_empty() || hostname == "*" {
        return Ok(None);
    }
    let invalid = |reason| Error::RuleInvalidHostname {
        rule: number,
        hostname: hostname.to_owned(),
        reason,
    };
    let ascii =
        to_ascii_hostname(hostname).ok_or_else(|| invalid("it is not a valid domain name"))?;
    HostPattern::parse(&ascii)
        .map(Some)
        .map_err(|err| match err {
            Error::InvalidHostname { reason, .. } => invalid(reason),
            _ => invalid("it is not a valid hostname"),
        })
}

/// Unicode hostnames become punycode, as Host headers carry them (cloudflared does the same).
fn to_ascii_hostname(hostname: &str) -> Option<String> {
    if hostname.is_ascii() {
        return Some(hostname.to_owned());
    }
    let (prefix, body) = match hostname.strip_prefix("*.") {
        Some(body) => ("*.", body),
        None => ("", hostname),
    };
    match url::Host::parse(body) {
        Ok(url::Host::Domain(ascii)) => Some(format!("{prefix}{ascii}")),
        _ => None,
    }
}

fn parse_path(number: usize, path: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(path).map_err(|err| Error::InvalidPathRegex {
        rule: number,
        reason: err.to_string(),
    })
}

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Go's `time.Duration` is an int64 of nanoseconds; longer strings are errors there too.
const MAX_DURATION_NANOS: u128 = i64::MAX as u128;

/// Parses a Go duration string (`300ms`, `1.5h`, `2h45m`; units ns, us, µs, ms, s, m,
/// h). Negative durations are rejected: every duration here is a timeout or an interval.
pub fn parse_go_duration(text: &str) -> Result<Duration, Error> {
    let invalid = |reason| Error::InvalidDuration {
        value: text.to_owned(),
        reason,
    };
    if text.starts_with('-') {
        return Err(invalid("it is negative"));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = duration_component(rest).map_err(invalid)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_DURATION_NANOS)
            .ok_or_else(|| invalid("it is too long"))?;
        rest = tail;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid("it is too long"))?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| invalid("it is too long"))?;
    Ok(Duration::new(secs, nanos))
}

/// Reads one `<number><unit>` from the front of `text`: its nanoseconds and the rest.
fn duration_component(text: &str) -> Result<(u128, &str), &'static str> {
    let (whole, rest) = split_digits(text);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => split_digits(after_dot),
        None => ("", rest),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err("expected a number such as 30s, 1m30s or 500ms");
    }
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_len);
    let per_unit = unit_nanos(unit)?;
    let too_long = "it is too long";
    // More digits than u128 holds is far beyond Go's limit anyway.
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long)?
    };
    let nanos = whole
        .checked_mul(per_unit)
        .and_then(|n| n.checked_add(fraction_nanos(fraction, per_unit)))
        .ok_or(too_long)?;
    Ok((nanos, rest))
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

fn unit_nanos(unit: &str) -> Result<u128, &'static str> {
    Ok(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "" => return Err("a unit is missing (ns, us, ms, s, m or h)"),
        _ => return Err("unknown unit (use ns, us, ms, s, m or h)"),
    })
}

/// Digits after the point, truncated to whole nanoseconds as Go does.
fn fraction_nanos(fraction: &str, per_unit: u128) -> u128 {
    // 20 digits keep `value * per_unit` inside u128 and are finer than a nanosecond.
    let digits = &fraction[..fraction.len().min(20)];
    let value: u128 = digits.parse().unwrap_or(0);
    let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(0));
    value * per_unit / scale
}

/// Formats a duration so that both Go and [`parse_go_duration`] read it back (`1h30m`).
pub fn format_go_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = duration.as_nanos();
    let mut out = String::new();
    for (unit, size) in [
        ("h", 3_600 * NANOS_PER_SEC),
        ("m", 60 * NANOS_PER_SEC),
        ("s", NANOS_PER_SEC),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let count = nanos / size;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            nanos %= size;
        }
    }
    out
}

/// Serde for `Option<Duration>`: reads Go strings or whole seconds; writes whole seconds
/// as a number (cloudflared's JSON form) and anything finer as a Go string, losslessly.
/// What [`opt_duration`] reads and writes, for the API's description (`Duration` has no
/// schema of its own, and ours is not the Go text alone).
#[cfg(feature = "openapi")]
fn duration_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let either = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some("whole seconds, or a Go duration (`30s`, `1m30s`)"))
        .build();
    Schema::OneOf(either)
}

pub mod opt_duration {
    use std::{fmt, time::Duration};

    use serde::{Deserializer, Serializer, de};

    use super::{format_go_duration, parse_go_duration};

    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(d) if d.subsec_nanos() == 0 => serializer.serialize_some(&d.as_secs()),
            Some(d) => serializer.serialize_some(&format_go_duration(*d)),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_option(OptionVisitor)
    }

    struct OptionVisitor;

    impl<'de> de::Visitor<'de> for OptionVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            DurationVisitor.expecting(f)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(DurationVisitor).map(Some)
        }
    }

    struct DurationVisitor;

    impl de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\" or \"1m30s\", or a whole number of seconds")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_go_duration(text).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(secs))
        }

        fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
            u64::try_from(secs)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("invalid duration {secs}: it is negative")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of config.yml this module owns.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Config {
        ingress: Vec<RawIngressRule>,
        #[serde(rename = "originRequest")]
        origin_request: Option<OriginRequestConfig>,
    }

    fn load(yaml: &str) -> Result<Ingress, Error> {
        let config: Config = serde_yaml::from_str(yaml).expect("test YAML parses");
        Ingress::parse(&config.ingress, config.origin_request.as_ref())
    }

    fn rule(hostname: Option<&str>, path: Option<&str>, service: &str) -> RawIngressRule {
        RawIngressRule {
            hostname: hostname.map(str::to_owned),
            path: path.map(str::to_owned),
            service: service.to_owned(),
            origin_request: None,
        }
    }

    fn catch_all() -> RawIngressRule {
        rule(None, None, "http_status:404")
    }

    fn parse_err(rules: &[RawIngressRule]) -> String {
        Ingress::parse(rules, None)
            .expect_err("rules should be rejected")
            .to_string()
    }

    const YAML: &str = r#"
originRequest:
  connectTimeout: 10s
  noTLSVerify: true
  httpHostHeader: global.internal
ingress:
  - hostname: app.example.com
    service: http://localhost:8000
  - hostname: "*.example.com"
    path: ^/api/
    service: https://localhost:8443
    originRequest:
      connectTimeout: 1m30s
      keepAliveConnections: 7
      httpHostHeader: ""
  - hostname: ws.example.com
    service: ws://localhost:9000
  - service: http_status:404
"#;

    #[test]
    fn parses_config_yaml() {
        let ingress = load(YAML).unwrap();
        let rules = ingress.rules();
        assert_eq!(rules.len(), 4);
        assert_eq!(
            rules[0].hostname.as_ref().unwrap().as_str(),
            "app.example.com"
        );
        assert_eq!(rules[0].service.to_string(), "http://localhost:8000");
        assert_eq!(rules[1].path_str(), Some("^/api/"));
        assert_eq!(rules[1].service.to_string(), "https://localhost:8443");
        assert_eq!(rules[2].service.to_string(), "http://localhost:9000");
        assert_eq!(rules[3].service, Service::HttpStatus(404));
        assert!(rules[3].is_catch_all());
        assert!(!rules[0].is_catch_all());
    }

    #[test]
    fn merges_origin_request_field_by_field() {
        let ingress = load(YAML).unwrap();
        let plain = &ingress.rules()[0].origin_request;
        assert_eq!(plain.connect_timeout, Duration::from_secs(10));
        assert!(plain.no_tls_verify);
        assert_eq!(plain.http_host_header.as_deref(), Some("global.internal"));
        assert_eq!(plain.tls_timeout, Duration::from_secs(10));
        assert_eq!(plain.keep_alive_connections, 100);

        let overridden = &ingress.rules()[1].origin_request;
        assert_eq!(overridden.connect_timeout, Duration::from_secs(90));
        assert_eq!(overridden.keep_alive_connections, 7);
        assert!(
            overridden.no_tls_verify,
            "global value kept when the rule is silent"
        );
        assert_eq!(
            overridden.http_host_header, None,
            "\"\" unsets the global value"
        );
    }

    #[test]
    fn defaults_are_cloudflareds() {
        let d = OriginRequest::default();
        assert_eq!(
            d,
            OriginRequest::from_config(&OriginRequestConfig::default())
        );
        assert_eq!(d.connect_timeout, Duration::from_secs(30));
        assert_eq!(d.tls_timeout, Duration::from_secs(10));
        assert_eq!(d.tcp_keep_alive, Duration::from_secs(30));
        assert_eq!(d.keep_alive_connections, 100);
        assert_eq!(d.keep_alive_timeout, Duration::from_secs(90));
        assert!(!d.no_happy_eyeballs && !d.no_tls_verify);
        assert!(!d.disable_chunked_encoding && !d.http2_origin);
        assert_eq!(
            (d.http_host_header, d.origin_server_name, d.ca_pool),
            (None, None, None)
        );
    }

    #[test]
    fn overlay_prefers_the_rule() {
        let global = OriginRequestConfig {
            tls_timeout: Some(Duration::from_secs(5)),
            ca_pool: Some("/etc/ca.pem".into()),
            http2_origin: Some(true),
            ..Default::default()
        };
        let own = OriginRequestConfig {
            http2_origin: Some(false),
            origin_server_name: Some("origin.internal".into()),
            ..Default::default()
        };
        let merged = global.overlay(&own);
        assert_eq!(merged.tls_timeout, Some(Duration::from_secs(5)));
        assert_eq!(merged.ca_pool.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(merged.http2_origin, Some(false));
        assert_eq!(
            merged.origin_server_name.as_deref(),
            Some("origin.internal")
        );
        assert_eq!(merged.connect_timeout, None);
    }

    #[test]
    fn reads_every_origin_request_key() {
        let yaml = r#"
connectTimeout: 1s
tlsTimeout: 2s
tcpKeepAlive: 3s
keepAliveTimeout: 4s
noHappyEyeballs: true
noTLSVerify: true
disableChunkedEncoding: true
http2Origin: true
keepAliveConnections: 5
httpHostHeader: h
originServerName: o
caPool: c
"#;
        let config: OriginRequestConfig = serde_yaml::from_str(yaml).unwrap();
        let r = OriginRequest::from_config(&config);
        let secs = Duration::from_secs;
        assert_eq!(
            (
                r.connect_timeout,
                r.tls_timeout,
                r.tcp_keep_alive,
                r.keep_alive_timeout
            ),
            (secs(1), secs(2), secs(3), secs(4))
        );
        assert!(r.no_happy_eyeballs && r.no_tls_verify && r.disable_chunked_encoding);
        assert!(r.http2_origin);
        assert_eq!(r.keep_alive_connections, 5);
        assert_eq!(r.http_host_header.as_deref(), Some("h"));
        assert_eq!(r.origin_server_name.as_deref(), Some("o"));
        assert_eq!(r.ca_pool.as_deref(), Some("c"));
    }

    #[test]
    fn rejects_unknown_keys() {
        let cases = [
            "- service: http://a\n  hostnam: x\n",
            "- service: http://a\n  originRequest:\n    noTlsVerify: true\n",
        ];
        for yaml in cases {
            let err = serde_yaml::from_str::<Vec<RawIngressRule>>(yaml).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{yaml}: {err}");
        }
    }

    #[test]
    fn durations_from_yaml_and_json() {
        let cases: [(&str, Duration); 6] = [
            ("connectTimeout: 30s", Duration::from_secs(30)),
            ("connectTimeout: 1m30s", Duration::from_secs(90)),
            ("connectTimeout: 500ms", Duration::from_millis(500)),
            ("connectTimeout: 2h", Duration::from_secs(7200)),
            ("connectTimeout: 45", Duration::from_secs(45)),
            ("connectTimeout: \"0\"", Duration::ZERO),
        ];
        for (yaml, want) in cases {
            let config: OriginRequestConfig = serde_yaml::from_str(yaml).unwrap();
            assert_eq!(config.connect_timeout, Some(want), "{yaml}");
        }
        let json: OriginRequestConfig =
            serde_json::from_str(r#"{"tlsTimeout": 12, "tcpKeepAlive": "1m"}"#).unwrap();
        assert_eq!(json.tls_timeout, Some(Duration::from_secs(12)));
        assert_eq!(json.tcp_keep_alive, Some(Duration::from_secs(60)));
        let null: OriginRequestConfig = serde_yaml::from_str("connectTimeout: ~").unwrap();
        assert_eq!(null.connect_timeout, None);
    }

    #[test]
    fn bad_durations_are_clear_errors() {
        let cases = [
            (
                "connectTimeout: 30x",
                "invalid duration \"30x\": unknown unit",
            ),
            (
                "connectTimeout: \"30\"",
                "invalid duration \"30\": a unit is missing",
            ),
            (
                "connectTimeout: -5s",
                "invalid duration \"-5s\": it is negative",
            ),
            ("connectTimeout: -5", "invalid duration -5: it is negative"),
            ("connectTimeout: 1.5", "a whole number of seconds"),
            ("connectTimeout: true", "a whole number of seconds"),
        ];
        for (yaml, want) in cases {
            let err = serde_yaml::from_str::<OriginRequestConfig>(yaml).unwrap_err();
            assert!(err.to_string().contains(want), "{yaml}: {err}");
        }
        let err =
            serde_json::from_str::<OriginRequestConfig>(r#"{"connectTimeout": "1q"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid duration \"1q\""), "{err}");
    }

    #[test]
    fn go_duration_strings() {
        let ms = Duration::from_millis;
        let ok: [(&str, Duration); 12] = [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("+5s", ms(5_000)),
            ("1.5h", ms(5_400_000)),
            ("2h45m", ms(9_900_000)),
            ("1m30s", ms(90_000)),
            (".5s", ms(500)),
            ("1.s", ms(1_000)),
            ("300ms", ms(300)),
            ("10us", Duration::from_micros(10)),
            ("10\u{b5}s", Duration::from_micros(10)),
            ("1h1m1s1ms1us1ns", Duration::new(3661, 1_001_001)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
        let bad = [
            ("", "it is empty"),
            ("s", "expected a number"),
            (".s", "expected a number"),
            ("5", "a unit is missing"),
            ("1m5", "a unit is missing"),
            ("5d", "unknown unit"),
            ("-1s", "it is negative"),
            ("3000000h", "it is too long"),
            ("1 s", "unknown unit"),
        ];
        for (text, reason) in bad {
            let err = parse_go_duration(text).unwrap_err().to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn durations_round_trip_through_serde() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(90),
            Duration::from_millis(1_500),
            Duration::new(3661, 1_001_001),
        ] {
            assert_eq!(parse_go_duration(&format_go_duration(d)), Ok(d));
            let config = OriginRequestConfig {
                keep_alive_timeout: Some(d),
                ..Default::default()
            };
            let json = serde_json::to_string(&config).unwrap();
            let back: OriginRequestConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, config, "{json}");
            let yaml = serde_yaml::to_string(&config).unwrap();
            let back: OriginRequestConfig = serde_yaml::from_str(&yaml).unwrap();
            assert_eq!(back, config, "{yaml}");
        }
        let json = serde_json::to_string(&OriginRequestConfig {
            connect_timeout: Some(Duration::from_secs(30)),
            tls_timeout: Some(Duration::from_millis(250)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(json, r#"{"connectTimeout":30,"tlsTimeout":"250ms"}"#);
    }

    #[test]
    fn services_parse_and_display() {
        let cases = [
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://localhost:8080/", "http://localhost:8080"),
            ("https://10.0.0.2", "https://10.0.0.2"),
            ("HTTP://LocalHost:3000", "http://localhost:3000"),
            ("ws://localhost:9000", "http://localhost:9000"),
            ("wss://localhost:9443", "https://localhost:9443"),
            ("ws://localhost", "http://localhost"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http_status:404", "http_status:404"),
            ("http_status:100", "http_status:100"),
            ("http_status:999", "http_status:999"),
            ("hello_world", "hello_world"),
            ("hello-world", "hello_world"),
        ];
        for (input, canonical) in cases {
            let ingress = Ingress::single(input).unwrap();
            assert_eq!(ingress.rules()[0].service.to_string(), canonical, "{input}");
        }
        let wss = Ingress::single("wss://origin:9443").unwrap();
        match &wss.rules()[0].service {
            Service::Http { url } => {
                assert_eq!(url.scheme(), "https");
                assert_eq!(url.port(), Some(9443));
            }
            other => panic!("expected an http service, got {other:?}"),
        }
    }

    #[test]
    fn bad_services_name_the_rule() {
        let svc_cases = [
            (
                "localhost:8080",
                "Rule #1: localhost:8080 is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "http://",
                "Rule #1: http:// is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "",
                "Rule #1:  is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "http://localhost:8080/app",
                "Rule #1: http://localhost:8080/app is an invalid address, ingress rules don't support proxying to a different path on the origin service. The path will be the same as the eyeball request's path",
            ),
            (
                "http://localhost?x=1",
                "Rule #1: http://localhost?x=1 is an invalid address, ingress rules don't support proxying to a different path",
            ),
            ("http_status:99", "Rule #1: invalid HTTP status code: 99"),
            (
                "http_status:1000",
                "Rule #1: invalid HTTP status code: 1000",
            ),
            ("http_status:abc", "Rule #1: invalid HTTP status code: abc"),
            ("http_status:", "Rule #1: invalid HTTP status code: "),
            ("bastion", "Rule #1: service 'bastion' is not supported"),
            (
                "socks-proxy",
                "Rule #1: service 'socks-proxy' is not supported",
            ),
            (
                "warp-routing",
                "Rule #1: service 'warp-routing' is not supported",
            ),
        ];
        for (service, want) in svc_cases {
            let err = Ingress::single(service).unwrap_err().to_string();
            assert!(err.starts_with(want), "{service:?}: {err}");
        }
        let err = Ingress::single("bastion").unwrap_err().to_string();
        assert!(err.contains("http_status:NNN or hello_world"), "{err}");
        assert!(err.contains("bastion and socks-proxy"), "{err}");
        let err = parse_err(&[
            rule(Some("a.example.com"), None, "http://a"),
            rule(None, None, "x"),
        ]);
        assert!(err.starts_with("Rule #2: x is an invalid address"), "{err}");
    }

    /// Parses `text` as the only service of a one-rule ingress.
    fn service(text: &str) -> Service {
        match Ingress::single(text) {
            Ok(ingress) => ingress.rules()[0].service.clone(),
            Err(err) => panic!("{text:?} should parse: {err}"),
        }
    }

    fn tcp(scheme: &str, host: &str, port: u16) -> Service {
        Service::Tcp {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn tcp_services_and_default_ports() {
        let cases = [
            // cloudflared's defaults.
            (
                "tcp://localhost",
                tcp("tcp", "localhost", 7864),
                "localhost:7864",
            ),
            (
                "ssh://localhost",
                tcp("ssh", "localhost", 22),
                "localhost:22",
            ),
            (
                "rdp://localhost",
                tcp("rdp", "localhost", 3389),
                "localhost:3389",
            ),
            (
                "smb://fileserver",
                tcp("smb", "fileserver", 445),
                "fileserver:445",
            ),
            // A written port beats the default, also when it equals it.
            (
                "tcp://localhost:5000",
                tcp("tcp", "localhost", 5000),
                "localhost:5000",
            ),
            (
                "ssh://localhost:2222",
                tcp("ssh", "localhost", 2222),
                "localhost:2222",
            ),
            (
                "ssh://localhost:22",
                tcp("ssh", "localhost", 22),
                "localhost:22",
            ),
            (
                "rdp://10.0.0.5:3390",
                tcp("rdp", "10.0.0.5", 3390),
                "10.0.0.5:3390",
            ),
            ("smb://nas:1445", tcp("smb", "nas", 1445), "nas:1445"),
            // Any other scheme is raw TCP, as in cloudflared.
            ("postgres://db:5432", tcp("postgres", "db", 5432), "db:5432"),
            ("redis://x:6379", tcp("redis", "x", 6379), "x:6379"),
            ("ftp://files:21", tcp("ftp", "files", 21), "files:21"),
            ("ftp://files", tcp("ftp", "files", 21), "files:21"),
            ("ftp://files:2121", tcp("ftp", "files", 2121), "files:2121"),
            // Case, trailing slash, IPv6 and IDNA are normalised.
            (
                "TCP://DB.Internal:5432/",
                tcp("tcp", "db.internal", 5432),
                "db.internal:5432",
            ),
            ("tcp://[::1]:22", tcp("tcp", "::1", 22), "[::1]:22"),
            ("ssh://[fd00::1]", tcp("ssh", "fd00::1", 22), "[fd00::1]:22"),
            (
                "tcp://[FD00:0:0::0001]:9",
                tcp("tcp", "fd00::1", 9),
                "[fd00::1]:9",
            ),
            (
                "ssh://bücher.example",
                tcp("ssh", "xn--bcher-kva.example", 22),
                "xn--bcher-kva.example:22",
            ),
            ("tcp://my_host:1", tcp("tcp", "my_host", 1), "my_host:1"),
            (
                "tcp://127.0.0.1:65535",
                tcp("tcp", "127.0.0.1", 65535),
                "127.0.0.1:65535",
            ),
        ];
        for (input, want, address) in cases {
            let got = service(input);
            assert_eq!(got, want, "{input}");
            assert!(got.is_stream(), "{input}");
            assert_eq!(got.tcp_address().as_deref(), Some(address), "{input}");
        }
    }

    #[test]
    fn unix_services() {
        let unix = |path: &str, tls| Service::Unix {
            path: path.to_owned(),
            tls,
        };
        let cases = [
            ("unix:/run/app.sock", unix("/run/app.sock", false)),
            ("unix+tls:/run/a.sock", unix("/run/a.sock", true)),
            ("UNIX:/run/app.sock", unix("/run/app.sock", false)),
            ("Unix+TLS:/run/a.sock", unix("/run/a.sock", true)),
            // The URL spelling: empty host, then the path.
            (
                "unix:///var/run/docker.sock",
                unix("/var/run/docker.sock", false),
            ),
            ("unix+tls:///s", unix("/s", true)),
            // More slashes after the empty host are one (found by the ingress_config fuzzer).
            ("unix:////run/app.sock", unix("/run/app.sock", false)),
            ("unix+tls://///s", unix("/s", true)),
            // Taken verbatim otherwise (spaces and all), as cloudflared does.
            ("unix:/tmp/my app.sock", unix("/tmp/my app.sock", false)),
        ];
        for (input, want) in cases {
            let got = service(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.is_stream(), "{input}");
            assert_eq!(got.tcp_address(), None, "{input}");
        }
    }

    #[test]
    fn non_tcp_services_are_not_streams() {
        for text in ["http://a", "wss://a", "http_status:404", "hello_world"] {
            let got = service(text);
            assert!(!got.is_stream(), "{text}");
            assert_eq!(got.tcp_address(), None, "{text}");
        }
    }

    #[test]
    fn bad_tcp_and_unix_services_name_the_rule() {
        let cases = [
            (
                "postgres://db",
                "Rule #1: postgres://db needs a port: only tcp, ssh, rdp and smb have default ports",
            ),
            (
                "mysql://x",
                "Rule #1: mysql://x needs a port: only tcp, ssh, rdp and smb have default ports",
            ),
            (
                "tcp://db:5432/app",
                "Rule #1: tcp://db:5432/app is an invalid address, ingress rules don't support proxying to a different path",
            ),
            (
                "ssh://h?x=1",
                "Rule #1: ssh://h?x=1 is an invalid address, ingress rules don't support proxying to a different path",
            ),
            (
                "ssh://h#frag",
                "Rule #1: ssh://h#frag is an invalid address, ingress rules don't support proxying to a different path",
            ),
            (
                "tcp://",
                "Rule #1: tcp:// is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "tcp://:22",
                "Rule #1: tcp://:22 is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "postgres:db:5432",
                "Rule #1: postgres:db:5432 is an invalid address, please make sure it has a scheme and a hostname",
            ),
            (
                "tcp://h:0",
                "Rule #1: tcp://h:0 is an invalid address: port 0 cannot be dialled",
            ),
            (
                "tcp://h:65536",
                "Rule #1: tcp://h:65536 is an invalid address: the port must be a number from 1 to 65535",
            ),
            (
                "http://h:99999",
                "Rule #1: http://h:99999 is an invalid address: the port must be a number from 1 to 65535",
            ),
            (
                "ssh://root@h",
                "Rule #1: ssh://root@h is an invalid address: a user name or password cannot be passed to a TCP origin",
            ),
            (
                "tcp://a%20b:1",
                "Rule #1: tcp://a%20b:1 is an invalid address: the host is not a valid hostname or IP address",
            ),
            (
                "unix:",
                "Rule #1: unix: is an invalid address: the unix socket path is empty",
            ),
            (
                "unix+tls:",
                "Rule #1: unix+tls: is an invalid address: the unix socket path is empty",
            ),
            (
                "unix:run/app.sock",
                "Rule #1: unix:run/app.sock is an invalid address: the unix socket path must be absolute",
            ),
            (
                "unix+tls:./a.sock",
                "Rule #1: unix+tls:./a.sock is an invalid address: the unix socket path must be absolute",
            ),
            (
                "unix://host/a.sock",
                "Rule #1: unix://host/a.sock is an invalid address: a unix socket has no host",
            ),
            (
                "unix:/a\0b",
                "Rule #1: unix:/a\0b is an invalid address: a unix socket path cannot contain a NUL",
            ),
        ];
        for (text, want) in cases {
            let err = Ingress::single(text).unwrap_err().to_string();
            assert!(
                err.starts_with(want),
                "{text:?}\n  got: {err}\n want: {want}"
            );
        }
        // A bare "/" is no path.
        assert_eq!(service("ssh://h/"), tcp("ssh", "h", 22));
        // The rule number is the failing rule's, and the variants are matchable.
        let rules = [
            rule(Some("a.example.com"), None, "ssh://a"),
            rule(Some("b.example.com"), None, "mysql://b"),
            catch_all(),
        ];
        assert_eq!(
            Ingress::parse(&rules, None).unwrap_err(),
            Error::ServiceNeedsPort {
                rule: 2,
                service: "mysql://b".into()
            }
        );
        let rules = [
            rule(Some("a.example.com"), None, "ssh://a"),
            rule(Some("b.example.com"), None, "http://b"),
            rule(Some("c.example.com"), None, "unix:c.sock"),
            catch_all(),
        ];
        match Ingress::parse(&rules, None) {
            Err(Error::InvalidServiceAddress {
                rule: 3, service, ..
            }) => {
                assert_eq!(service, "unix:c.sock");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn display_round_trips() {
        let inputs = [
            "http://localhost:8080",
            "https://[::1]:8443",
            "wss://localhost",
            "http_status:418",
            "hello-world",
            "tcp://localhost",
            "tcp://h:1",
            "ssh://Example.COM",
            "rdp://[::ffff:10.0.0.1]",
            "smb://nas",
            "postgres://db:5432/",
            "ssh://bücher.example:2222",
            "unix:/run/app.sock",
            "unix+tls:/run/a.sock",
            "unix:///var/run/docker.sock",
            // Found by the ingress_config fuzzer: printed `unix://run/app.sock`, a "host".
            "unix:////run/app.sock",
        ];
        for input in inputs {
            let parsed = service(input);
            let shown = parsed.to_string();
            assert_eq!(service(&shown), parsed, "{input} -> {shown}");
            assert_eq!(
                service(&shown).to_string(),
                shown,
                "{input}: display is canonical"
            );
        }
        let shown = |text| service(text).to_string();
        assert_eq!(shown("tcp://localhost"), "tcp://localhost:7864");
        assert_eq!(shown("SSH://[::1]"), "ssh://[::1]:22");
        assert_eq!(shown("rdp://h"), "rdp://h:3389");
        assert_eq!(shown("smb://h"), "smb://h:445");
        assert_eq!(shown("Unix:///x.sock"), "unix:/x.sock");
        assert_eq!(shown("unix+tls:/x.sock"), "unix+tls:/x.sock");
    }

    #[test]
    fn validation_errors_name_the_rule() {
        let ok = |host| rule(Some(host), None, "http://localhost:1");
        let cases: Vec<(Vec<RawIngressRule>, &str)> = vec![
            (vec![], "The config file doesn't contain any ingress rules"),
            (
                vec![ok("a.example.com")],
                "Rule #1: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)",
            ),
            (
                vec![ok("a.example.com"), rule(None, Some("^/x"), "http://a")],
                "Rule #2: The last ingress rule must match all URLs (i.e. it should not have a hostname or path filter)",
            ),
            (
                vec![ok("a.example.com"), ok("*"), catch_all()],
                "Rule #2 is matching the hostname '*', but this will match every hostname, meaning the rules which follow it will never be triggered.",
            ),
            (
                vec![rule(None, Some(""), "http://a"), catch_all()],
                "Rule #1 is matching the hostname '', but this will match every hostname, meaning the rules which follow it will never be triggered.",
            ),
            (
                vec![ok("a.example.com"), ok("b.example.com:8080"), catch_all()],
                "Rule #2: Hostname cannot contain a port",
            ),
            (
                vec![ok("a.*.example.com"), catch_all()],
                "Rule #1: Hostname patterns can have at most one wildcard character (\"*\") and it can only be used for subdomains, e.g. \"*.example.com\"",
            ),
            (
                vec![ok("*example.com"), catch_all()],
                "Rule #1: Hostname patterns can have",
            ),
            (
                vec![ok("*.*.example.com"), catch_all()],
                "Rule #1: Hostname patterns can have",
            ),
            (
                vec![ok("a..example.com"), catch_all()],
                "Rule #1 has an invalid hostname 'a..example.com': it has an empty label",
            ),
            (
                vec![ok("a.example.com"), ok("bad host"), catch_all()],
                "Rule #2 has an invalid hostname 'bad host': only letters",
            ),
            (
                vec![
                    ok("a.example.com"),
                    rule(Some("b.example.com"), Some("^/(api"), "http://a"),
                    catch_all(),
                ],
                "Rule #2 has an invalid regex: regex parse error",
            ),
        ];
        for (rules, want) in cases {
            let err = parse_err(&rules);
            assert!(
                err.starts_with(want),
                "{rules:?}\n  got: {err}\n want: {want}"
            );
        }
    }

    #[test]
    fn checks_run_service_then_hostname_then_path() {
        let all_bad = rule(Some("a.example.com:1"), Some("("), "nope");
        assert!(parse_err(&[all_bad, catch_all()]).contains("nope is an invalid address"));
        let host_and_path_bad = rule(Some("a.example.com:1"), Some("("), "http://a");
        assert!(parse_err(&[host_and_path_bad, catch_all()]).contains("port"));
        // The last rule's service is checked before its (missing) catch-all-ness.
        let err = parse_err(&[rule(Some("a.example.com"), None, "http_status:1")]);
        assert_eq!(err, "Rule #1: invalid HTTP status code: 1");
    }

    #[test]
    fn error_variants_carry_the_rule_number() {
        let rules = [
            rule(Some("a.example.com"), None, "http://a"),
            rule(Some("b.example.com"), None, "http://b"),
            rule(Some("c.example.com"), Some("["), "http://c"),
            catch_all(),
        ];
        match Ingress::parse(&rules, None) {
            Err(Error::InvalidPathRegex { rule, .. }) => assert_eq!(rule, 3),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn single_is_one_catch_all() {
        let ingress = Ingress::single("http://localhost:8080").unwrap();
        assert_eq!(ingress.rules().len(), 1);
        assert!(ingress.rules()[0].is_catch_all());
        assert_eq!(ingress.rules()[0].origin_request, OriginRequest::default());
        let (index, rule) = ingress.find("anything.example.org", "/x");
        assert_eq!(
            (index, rule.service.to_string().as_str()),
            (0, "http://localhost:8080")
        );
    }

    #[test]
    fn find_matches_hosts_and_paths() {
        let yaml = r#"
ingress:
  - hostname: App.Example.com.
    path: \.(jpg|png)$
    service: http_status:201
  - hostname: app.example.com
    service: http_status:202
  - hostname: "*.example.com"
    path: /api/
    service: http_status:203
  - hostname: "*.example.com"
    service: http_status:204
  - hostname: "*"
    path: ^/health$
    service: http_status:205
  - hostname: "*"
    service: http_status:206
"#;
        let ingress = load(yaml).unwrap();
        let cases = [
            ("app.example.com", "/logo.png", 0),
            ("APP.EXAMPLE.COM:443", "/a/b.jpg", 0),
            ("app.example.com.", "/logo.png?size=2", 0),
            ("app.example.com", "/logo.png/edit", 1),
            ("app.example.com", "/index.html?x=.png", 1),
            ("app.example.com", "/", 1),
            ("x.example.com", "/v1/api/users", 2),
            ("a.b.example.com", "/api/", 2),
            ("x.example.com", "/API/", 3),
            ("X.Example.Com:8443", "/", 3),
            ("example.com", "/api/", 5),
            ("other.org", "/health", 4),
            ("other.org", "/health/x", 5),
            ("", "/", 5),
            ("badexample.com", "/", 5),
        ];
        for (host, path, want) in cases {
            let (index, rule) = ingress.find(host, path);
            assert_eq!(index, want, "{host} {path}");
            assert_eq!(
                rule.service,
                Service::HttpStatus(201 + u16::try_from(want).unwrap())
            );
        }
    }

    #[test]
    fn unicode_hostnames_match_punycode() {
        let rules = [
            rule(Some("*.bücher.example"), None, "http://a"),
            catch_all(),
        ];
        let ingress = Ingress::parse(&rules, None).unwrap();
        assert_eq!(
            ingress.rules()[0].hostname.as_ref().unwrap().as_str(),
            "*.xn--bcher-kva.example"
        );
        assert_eq!(ingress.find("shop.xn--bcher-kva.example", "/").0, 0);
    }

    #[test]
    fn api_config_is_cloudflareds_json_and_validates_like_config_yml() {
        let json = serde_json::json!({
            "ingress": [
                {"hostname": "app.example.com", "path": "^/api", "service": "http://localhost:8000",
                 "originRequest": {"connectTimeout": 5, "noTLSVerify": true}},
                {"service": "http_status:404"}
            ],
            "originRequest": {"httpHostHeader": "internal"}
        });
        let config: IngressConfig = serde_json::from_value(json.clone()).unwrap();
        let ingress = config.parse().unwrap();
        let rule = &ingress.rules()[0];
        assert_eq!(rule.origin_request.connect_timeout, Duration::from_secs(5));
        assert_eq!(
            rule.origin_request.http_host_header.as_deref(),
            Some("internal")
        );
        assert_eq!(serde_json::to_value(&config).unwrap(), json, "round trip");
        let unknown = serde_json::json!({"ingress": [], "warp": 1});
        assert!(serde_json::from_value::<IngressConfig>(unknown).is_err());
        let empty: IngressConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert_eq!(empty.parse().unwrap_err(), Error::NoIngressRules);
    }

    #[test]
    fn rules_written_back_out_parse_to_the_same_rules() {
        let ingress = load(YAML).unwrap();
        let written = IngressConfig::from_rules(&ingress);
        let again = written.parse().unwrap();
        assert_eq!(again.rules().len(), ingress.rules().len());
        for (a, b) in again.rules().iter().zip(ingress.rules()) {
            assert_eq!(a.hostname, b.hostname);
            assert_eq!(a.path_str(), b.path_str());
            assert_eq!(a.service, b.service);
            assert_eq!(a.origin_request, b.origin_request);
        }
        // Only what differs from the defaults is written.
        let first = written.ingress[0].origin_request.clone().unwrap();
        assert_eq!(
            first,
            OriginRequestConfig {
                connect_timeout: Some(Duration::from_secs(10)),
                no_tls_verify: Some(true),
                http_host_header: Some("global.internal".into()),
                ..Default::default()
            }
        );
        let plain = IngressConfig::from_rules(&Ingress::single("http://localhost:8080").unwrap());
        assert_eq!(
            serde_json::to_value(&plain).unwrap(),
            serde_json::json!({"ingress": [{"service": "http://localhost:8080"}]})
        );
    }

    #[test]
    fn errors_point_at_the_rule_and_member() {
        use crate::RuleField::{Hostname, Path, Service};
        let located = |rules: &[RawIngressRule]| {
            Ingress::parse(rules, None)
                .expect_err("rules should be rejected")
                .ingress_location()
        };
        let ok = rule(Some("a.example.com"), None, "http://a");
        let cases = [
            (vec![], None),
            (vec![ok.clone()], Some((0, None))),
            (
                vec![ok.clone(), rule(Some("*"), None, "http://a"), catch_all()],
                Some((1, Some(Hostname))),
            ),
            (
                vec![
                    ok.clone(),
                    rule(Some("b.example.com:1"), None, "http://a"),
                    catch_all(),
                ],
                Some((1, Some(Hostname))),
            ),
            (
                vec![
                    ok.clone(),
                    ok.clone(),
                    rule(Some("c.example.com"), Some("("), "http://a"),
                    catch_all(),
                ],
                Some((2, Some(Path))),
            ),
            (
                vec![
                    ok.clone(),
                    rule(Some("b.example.com"), None, "nope"),
                    catch_all(),
                ],
                Some((1, Some(Service))),
            ),
            (
                vec![ok, rule(None, None, "http_status:1")],
                Some((1, Some(Service))),
            ),
        ];
        for (rules, want) in cases {
            assert_eq!(located(&rules), want, "{rules:?}");
        }
        assert_eq!(Hostname.as_str(), "hostname");
        assert_eq!(Error::InvalidRole("x".into()).ingress_location(), None);
    }

    #[test]
    fn raw_rules_round_trip() {
        let config: Config = serde_yaml::from_str(YAML).unwrap();
        let json = serde_json::to_string(&config.ingress).unwrap();
        let back: Vec<RawIngressRule> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config.ingress);
        assert!(!json.contains("null"), "absent fields are omitted: {json}");
    }
}
