//! Ingress rules as config.yml and the API write them (cloudflared's grammar and error
//! texts), validated once into [`Ingress`], which picks the rule for each request.
//!
//! Only HTTP services for now: http(s)/ws(s) URLs, `http_status:NNN` and `hello_world`.

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    Error,
    hostname::{HostPattern, normalize_host},
};

/// One ingress rule exactly as written in config.yml or sent to the API.
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

/// `originRequest` as written: every field optional so a rule can override some of the
/// global ones. Durations read as Go strings (`30s`, `1m30s`) or whole seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OriginRequestConfig {
    /// TCP dial timeout.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// TLS handshake timeout.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_timeout: Option<Duration>,
    /// TCP keep-alive interval.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keep_alive: Option<Duration>,
    /// How long an idle origin connection is kept.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
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
        parse_http_url(rule, text).map(|url| Self::Http { url })
    }
}

fn unsupported(rule: usize, service: &str) -> Error {
    Error::UnsupportedService {
        rule,
        service: service.to_owned(),
    }
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

fn parse_http_url(rule: usize, text: &str) -> Result<Url, Error> {
    let no_host = || Error::ServiceMissingSchemeOrHost {
        rule,
        service: text.to_owned(),
    };
    let mut url = Url::parse(text).map_err(|_| no_host())?;
    let has_host = url.host_str().is_some_and(|h| !h.is_empty());
    let http_scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        "unix" | "unix+tls" => return Err(unsupported(rule, text)),
        _ if has_host => return Err(unsupported(rule, text)),
        // `localhost:8080` parses with scheme "localhost": really a missing scheme.
        _ => return Err(no_host()),
    };
    if !has_host {
        return Err(no_host());
    }
    // The request's own path and query are forwarded, so anything here would be ignored.
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::ServiceHasPath {
            rule,
            service: text.to_owned(),
        });
    }
    url.set_scheme(http_scheme).map_err(|()| no_host())?;
    Ok(url)
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
mod opt_duration {
    use std::{fmt, time::Duration};

    use serde::{Deserializer, Serializer, de};

    use super::{format_go_duration, parse_go_duration};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(d) if d.subsec_nanos() == 0 => serializer.serialize_some(&d.as_secs()),
            Some(d) => serializer.serialize_some(&format_go_duration(*d)),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
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
            (
                "tcp://localhost:22",
                "Rule #1: service 'tcp://localhost:22' is not supported",
            ),
            (
                "ssh://localhost:22",
                "Rule #1: service 'ssh://localhost:22' is not supported",
            ),
            (
                "rdp://localhost",
                "Rule #1: service 'rdp://localhost' is not supported",
            ),
            (
                "unix:/run/app.sock",
                "Rule #1: service 'unix:/run/app.sock' is not supported",
            ),
            (
                "unix+tls:/run/a.sock",
                "Rule #1: service 'unix+tls:/run/a.sock' is not supported",
            ),
            ("bastion", "Rule #1: service 'bastion' is not supported"),
            (
                "socks-proxy",
                "Rule #1: service 'socks-proxy' is not supported",
            ),
        ];
        for (service, want) in svc_cases {
            let err = Ingress::single(service).unwrap_err().to_string();
            assert!(err.starts_with(want), "{service:?}: {err}");
        }
        let err = parse_err(&[rule(Some("a.example.com"), None, "ftp://x"), catch_all()]);
        assert!(
            err.starts_with("Rule #1: service 'ftp://x' is not supported"),
            "{err}"
        );
        assert!(err.contains("http_status:NNN or hello_world"), "{err}");
        let err = parse_err(&[
            rule(Some("a.example.com"), None, "http://a"),
            rule(None, None, "x"),
        ]);
        assert!(err.starts_with("Rule #2: x is an invalid address"), "{err}");
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
    fn raw_rules_round_trip() {
        let config: Config = serde_yaml::from_str(YAML).unwrap();
        let json = serde_json::to_string(&config.ingress).unwrap();
        let back: Vec<RawIngressRule> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config.ingress);
        assert!(!json.contains("null"), "absent fields are omitted: {json}");
    }
}
