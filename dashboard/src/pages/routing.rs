//! The pure logic behind the wizard's and the tunnel page's forms: tunnel names, the public
//! hostname form as an ingress rule and back, edits of a configuration that keep the
//! catch-all last, which field a server error names, and the install commands.

use std::time::Duration;

use adit_core::{
    Error as InputError,
    ids::TunnelName,
    ingress::{Ingress, IngressConfig, OriginRequestConfig, RawIngressRule, parse_go_duration},
};

/// The catch-all a new configuration ends with, as cloudflared's dashboard writes it.
pub(crate) const CATCH_ALL: &str = "http_status:404";

/// Why `name` cannot name a new tunnel (the server's [`TunnelName`] rules, and no other
/// tunnel of the account may have it), or `None` when it can.
pub(crate) fn name_problem(name: &str, taken: &[String]) -> Option<String> {
    match TunnelName::parse(name) {
        Err(adit_core::Error::InvalidTunnelName { reason, .. }) => Some(capitalise(reason)),
        Err(e) => Some(e.to_string()),
        Ok(_) if taken.iter().any(|t| t == name) => {
            Some("A tunnel with this name already exists".to_owned())
        }
        Ok(_) => None,
    }
}

/// "it is empty" → "It is empty".
fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The kinds of service the hostname form offers, as cloudflared's dashboard lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceType {
    Http,
    Https,
    Tcp,
    Ssh,
    Rdp,
    Unix,
    HttpStatus,
}

impl ServiceType {
    pub(crate) const ALL: [Self; 7] = [
        Self::Http,
        Self::Https,
        Self::Tcp,
        Self::Ssh,
        Self::Rdp,
        Self::Unix,
        Self::HttpStatus,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Tcp => "TCP",
            Self::Ssh => "SSH",
            Self::Rdp => "RDP",
            Self::Unix => "UNIX",
            Self::HttpStatus => "HTTP_STATUS",
        }
    }

    /// Reads [`Self::label`] back (the `<select>`'s value).
    pub(crate) fn from_label(label: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|t| t.label() == label)
            .unwrap_or(Self::Http)
    }

    /// What the URL field asks for.
    pub(crate) fn placeholder(self) -> &'static str {
        match self {
            Self::Http | Self::Https => "localhost:8080",
            Self::Tcp => "localhost:5432",
            Self::Ssh => "localhost:22",
            Self::Rdp => "localhost:3389",
            Self::Unix => "/run/app.sock",
            Self::HttpStatus => "404",
        }
    }

    /// The rule's `service` for what was typed in the URL field: the scheme is added
    /// unless the user wrote it.
    fn service(self, url: &str) -> String {
        let url = url.trim();
        let (prefix, separator) = match self {
            Self::Http => ("http", "://"),
            Self::Https => ("https", "://"),
            Self::Tcp => ("tcp", "://"),
            Self::Ssh => ("ssh", "://"),
            Self::Rdp => ("rdp", "://"),
            Self::Unix => ("unix", ":"),
            Self::HttpStatus => ("http_status", ":"),
        };
        let written = format!("{prefix}{separator}");
        if url.to_ascii_lowercase().starts_with(&written) {
            url.to_owned()
        } else {
            format!("{written}{url}")
        }
    }

    /// The type and URL field of a rule's `service` (the scheme taken off).
    fn split(service: &str) -> (Self, String) {
        let lower = service.to_ascii_lowercase();
        for (prefix, kind) in [
            ("http://", Self::Http),
            ("https://", Self::Https),
            ("tcp://", Self::Tcp),
            ("ssh://", Self::Ssh),
            ("rdp://", Self::Rdp),
            ("unix:", Self::Unix),
            ("http_status:", Self::HttpStatus),
        ] {
            if lower.starts_with(prefix) {
                return (kind, service[prefix.len()..].to_owned());
            }
        }
        (Self::Http, service.to_owned())
    }
}

/// Which input of the hostname form a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Hostname,
    Path,
    Service,
    Origin,
}

/// The public hostname form, as typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HostnameForm {
    pub(crate) subdomain: String,
    pub(crate) domain: String,
    pub(crate) path: String,
    pub(crate) kind: Option<ServiceType>,
    pub(crate) url: String,
    pub(crate) no_tls_verify: bool,
    pub(crate) http_host_header: String,
    pub(crate) connect_timeout: String,
}

impl HostnameForm {
    /// An empty form for the first of `zones`.
    pub(crate) fn new(zones: &[String]) -> Self {
        Self {
            domain: zones.first().cloned().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// `sub.domain`, or the domain alone when no subdomain is given.
    pub(crate) fn hostname(&self) -> String {
        let sub = self.subdomain.trim().trim_end_matches('.');
        let domain = self.domain.trim();
        if sub.is_empty() {
            domain.to_owned()
        } else {
            format!("{sub}.{domain}")
        }
    }

    /// The ingress rule the form describes; what is obviously missing is said here, the
    /// rest (hostname syntax, zones, the service URL) the server checks.
    pub(crate) fn to_rule(&self) -> Result<RawIngressRule, (Field, String)> {
        if self.domain.trim().is_empty() {
            return Err((
                Field::Hostname,
                "Choose a domain (add a zone to the account first)".to_owned(),
            ));
        }
        if self.url.trim().is_empty() {
            return Err((Field::Service, "Enter where the traffic goes".to_owned()));
        }
        let connect_timeout = match self.connect_timeout.trim() {
            "" => None,
            text => Some(parse_timeout(text).map_err(|e| (Field::Origin, e))?),
        };
        let origin = OriginRequestConfig {
            no_tls_verify: self.no_tls_verify.then_some(true),
            http_host_header: Some(self.http_host_header.trim().to_owned())
                .filter(|h| !h.is_empty()),
            connect_timeout,
            ..OriginRequestConfig::default()
        };
        let path = self.path.trim();
        Ok(RawIngressRule {
            hostname: Some(self.hostname()),
            path: (!path.is_empty()).then(|| path.to_owned()),
            service: self.kind.unwrap_or(ServiceType::Http).service(&self.url),
            origin_request: (origin != OriginRequestConfig::default()).then_some(origin),
        })
    }

    /// The form for editing `rule`: its hostname split at the longest of `zones` it lies
    /// in (or all of it in the domain field).
    pub(crate) fn from_rule(rule: &RawIngressRule, zones: &[String]) -> Self {
        let hostname = rule.hostname.clone().unwrap_or_default();
        let zone = zones
            .iter()
            .filter(|z| hostname == **z || hostname.ends_with(&format!(".{z}")))
            .max_by_key(|z| z.len());
        let (subdomain, domain) = match zone {
            Some(zone) if hostname == *zone => (String::new(), zone.clone()),
            Some(zone) => (
                hostname[..hostname.len() - zone.len() - 1].to_owned(),
                zone.clone(),
            ),
            None => (String::new(), hostname),
        };
        let (kind, url) = ServiceType::split(&rule.service);
        let origin = rule.origin_request.clone().unwrap_or_default();
        Self {
            subdomain,
            domain,
            path: rule.path.clone().unwrap_or_default(),
            kind: Some(kind),
            url,
            no_tls_verify: origin.no_tls_verify.unwrap_or(false),
            http_host_header: origin.http_host_header.unwrap_or_default(),
            connect_timeout: origin
                .connect_timeout
                .map(adit_core::ingress::format_go_duration)
                .unwrap_or_default(),
        }
    }
}

/// A timeout as seconds (`30`) or a Go duration (`30s`, `1m30s`).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => parse_go_duration(text).map_err(|e| capitalise(&e.to_string())),
    }
}

/// Whether `rule` matches every request (no hostname or `*`, no path).
pub(crate) fn is_catch_all(rule: &RawIngressRule) -> bool {
    matches!(rule.hostname.as_deref(), None | Some("*")) && rule.path.is_none()
}

/// The rules a person edits: every rule but the final catch-all.
pub(crate) fn user_rules(config: Option<&IngressConfig>) -> &[RawIngressRule] {
    let rules = config.map_or(&[][..], |c| c.ingress.as_slice());
    match rules.split_last() {
        Some((last, rest)) if is_catch_all(last) => rest,
        _ => rules,
    }
}

/// `config` with `rule` put at `index` of the user's rules (replacing the one there), or
/// added after them when `index` is `None`; the catch-all stays last (one is added when
/// the configuration had none). Refused when another of the user's rules already routes
/// the same hostname and path: the second would never match.
pub(crate) fn put_rule(
    config: Option<&IngressConfig>,
    index: Option<usize>,
    rule: RawIngressRule,
) -> Result<IngressConfig, (Field, String)> {
    let mut out = with_catch_all(config);
    let users = out.ingress.len() - 1;
    let same = |other: &RawIngressRule| {
        let host = |r: &RawIngressRule| r.hostname.as_deref().map(str::to_ascii_lowercase);
        host(other) == host(&rule) && other.path == rule.path
    };
    let taken = out.ingress[..users]
        .iter()
        .enumerate()
        .any(|(i, other)| Some(i) != index && same(other));
    if taken {
        let host = rule.hostname.clone().unwrap_or_default();
        let what = match &rule.path {
            Some(path) => format!("{host} with the path {path}"),
            None => host,
        };
        return Err((
            Field::Hostname,
            format!("{what} is already a public hostname of this tunnel: edit that one instead"),
        ));
    }
    match index {
        Some(i) if i < users => out.ingress[i] = rule,
        _ => out.ingress.insert(users, rule),
    }
    Ok(out)
}

/// What is wrong with `rule` on its own, in words, and the field it is about: the checks
/// the server makes of any ingress rule, made before it is sent.
pub(crate) fn rule_problem(rule: &RawIngressRule) -> Option<(Field, String)> {
    let catch_all = RawIngressRule {
        hostname: None,
        path: None,
        service: CATCH_ALL.to_owned(),
        origin_request: None,
    };
    let error = Ingress::parse(&[rule.clone(), catch_all], None).err()?;
    Some(input_problem(&error))
}

/// A refused ingress rule as the form says it: the field, and a sentence without the
/// rule number (the form shows one rule).
fn input_problem(error: &InputError) -> (Field, String) {
    use InputError as E;
    match error {
        E::HostnameContainsPort { .. } => (Field::Hostname, "A hostname has no port".to_owned()),
        E::BadWildcard { .. } => (
            Field::Hostname,
            "A wildcard (*) may only stand for the first label, as in *.example.com".to_owned(),
        ),
        E::RuleInvalidHostname { reason, .. } => {
            (Field::Hostname, format!("Not a valid hostname: {reason}"))
        }
        E::CatchAllNotLast { .. } | E::LastRuleNotCatchAll { .. } => {
            (Field::Hostname, "Enter a hostname".to_owned())
        }
        E::InvalidPathRegex { .. } => (
            Field::Path,
            "Not a valid path pattern (a regular expression, such as ^/blog)".to_owned(),
        ),
        E::ServiceMissingSchemeOrHost { service, .. } => (
            Field::Service,
            format!("“{service}” is not an address: give a host and port, such as localhost:8080"),
        ),
        E::ServiceHasPath { .. } => (
            Field::Service,
            "Leave out the path: requests keep the path they were made with".to_owned(),
        ),
        E::InvalidStatusCode { .. } => (
            Field::Service,
            "A status code is a number from 100 to 999".to_owned(),
        ),
        E::UnsupportedService { .. } => (
            Field::Service,
            "This kind of service is not supported".to_owned(),
        ),
        E::ServiceNeedsPort { .. } => (Field::Service, "Add a port, such as :5432".to_owned()),
        E::InvalidServiceAddress {
            service, reason, ..
        } => (
            Field::Service,
            format!("“{service}” is not a usable address: {reason}"),
        ),
        other => (Field::Service, readable(&other.to_string())),
    }
}

/// A server's error text as people read it: the rule number the form does not show
/// (`Rule #1: `, `Rule #1 `) taken off, and the first letter capitalised.
pub(crate) fn readable(message: &str) -> String {
    let rest = message
        .strip_prefix("Rule #")
        .and_then(|rest| {
            let digits = rest.find(|c: char| !c.is_ascii_digit())?;
            (digits > 0).then(|| &rest[digits..])
        })
        .map(|rest| rest.strip_prefix(':').unwrap_or(rest).trim_start())
        .unwrap_or(message);
    // An address at the start stays as written.
    let first_word = rest.split_whitespace().next().unwrap_or_default();
    if first_word.contains(':') {
        rest.to_owned()
    } else {
        capitalise(rest)
    }
}

/// `config` without the user's rule at `index`; the catch-all stays last.
pub(crate) fn remove_rule(config: Option<&IngressConfig>, index: usize) -> IngressConfig {
    let mut out = with_catch_all(config);
    if index < out.ingress.len() - 1 {
        out.ingress.remove(index);
    }
    out
}

/// A copy of `config` (or an empty one) whose last rule is a catch-all.
fn with_catch_all(config: Option<&IngressConfig>) -> IngressConfig {
    let mut out = config.cloned().unwrap_or_default();
    if !out.ingress.last().is_some_and(is_catch_all) {
        out.ingress.push(RawIngressRule {
            hostname: None,
            path: None,
            service: CATCH_ALL.to_owned(),
            origin_request: None,
        });
    }
    out
}

/// The rule and field a configuration error is about, and its message without the path
/// (the form shows it next to the field): the server names it in `details.field`
/// (`config.ingress[0].service`, the message starting `invalid config.ingress[0].service: `)
/// or, for zone and conflict refusals, at the start of the message
/// (`config.ingress[0].hostname: …`).
pub(crate) fn error_field(field: Option<&str>, message: &str) -> Option<(usize, Field, String)> {
    let (path, rest) = match field {
        Some(field) => (field, message.strip_prefix(&format!("invalid {field}: "))),
        None => {
            let (head, rest) = message.split_once(": ")?;
            (head, Some(rest))
        }
    };
    let (index, member) = path.strip_prefix("config.ingress[")?.split_once(']')?;
    let index = index.parse().ok()?;
    let field = match member.trim_start_matches('.') {
        "hostname" => Field::Hostname,
        "path" => Field::Path,
        "originRequest" => Field::Origin,
        _ => Field::Service,
    };
    Some((index, field, readable(rest.unwrap_or(message))))
}

/// Where a connector can run, as the wizard's tabs list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Environment {
    Linux,
    MacOs,
    Windows,
    Docker,
    Binary,
}

impl Environment {
    pub(crate) const ALL: [Self; 5] = [
        Self::Linux,
        Self::MacOs,
        Self::Windows,
        Self::Docker,
        Self::Binary,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Linux => "Linux",
            Self::MacOs => "macOS",
            Self::Windows => "Windows",
            Self::Docker => "Docker",
            Self::Binary => "Binary",
        }
    }

    /// What to say above the command.
    pub(crate) fn note(self) -> &'static str {
        match self {
            Self::Linux => {
                "Any distribution with systemd (Debian, Ubuntu, Red Hat, Fedora…), x86_64 or \
                 aarch64: downloads the connector for the machine from this server and runs it \
                 as a service that starts at boot and restarts on failure. The token is kept in \
                 a root-only file, out of the process list. `sudo adit service uninstall` \
                 removes it."
            }
            Self::MacOs | Self::Windows => {
                "This server ships Linux connectors only: build adit from the Adit source \
                 with Rust, then run the tunnel."
            }
            Self::Docker => {
                "Uses the image built from the repository's Dockerfile (docker build -t adit .)."
            }
            Self::Binary => {
                "With adit already on the PATH, this runs the tunnel in the foreground, until \
                 the terminal closes."
            }
        }
    }

    /// The command to paste, for a server reached at `origin` (scheme, host and port of
    /// the dashboard) and the tunnel's `token`.
    pub(crate) fn command(self, origin: &str, token: &str) -> String {
        let run = format!("adit tunnel run --token {token}");
        match self {
            Self::Linux => format!(
                "curl --fail-with-body -sSL -o adit \"{origin}/download/adit?arch=$(uname -m)\" && sudo install -m 0755 adit /usr/local/bin/adit && sudo adit service install {token}"
            ),
            Self::MacOs => {
                format!("cargo build --release -p adit-agent && ./target/release/{run}")
            }
            Self::Windows => format!(
                "cargo build --release -p adit-agent; .\\target\\release\\adit.exe tunnel run --token {token}"
            ),
            Self::Docker => format!(
                "docker run -d --restart unless-stopped --network host --entrypoint adit adit tunnel run --token {token}"
            ),
            Self::Binary => run,
        }
    }
}

/// The token in a command the page shows (the word after `--token`, or after `service
/// install`).
#[cfg(test)]
fn token_in(command: &str) -> Option<&str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words.windows(3).find_map(|w| match w {
        ["--token", token, ..] | ["service", "install", token] => Some(*token),
        [.., "--token", token] => Some(*token),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hostname: Option<&str>, service: &str) -> RawIngressRule {
        RawIngressRule {
            hostname: hostname.map(str::to_owned),
            path: None,
            service: service.to_owned(),
            origin_request: None,
        }
    }

    #[test]
    fn names_follow_the_servers_rules_and_must_be_new() {
        let taken = vec!["web".to_owned()];
        assert_eq!(name_problem("home-lab_1.prod", &taken), None);
        assert_eq!(name_problem("", &taken).as_deref(), Some("It is empty"));
        assert!(
            name_problem("a b", &taken)
                .unwrap()
                .contains("Only letters, digits")
        );
        assert!(name_problem(&"a".repeat(65), &taken).is_some());
        assert!(name_problem("f70ff985-a4ef-4643-bbbc-4a0ed4fc8415", &taken).is_some());
        assert_eq!(
            name_problem("web", &taken).as_deref(),
            Some("A tunnel with this name already exists")
        );
    }

    #[test]
    fn the_hostname_form_becomes_an_ingress_rule() {
        let zones = vec!["example.com".to_owned()];
        let mut form = HostnameForm::new(&zones);
        form.subdomain = "app".into();
        form.url = "localhost:8080".into();
        let rule = form.to_rule().unwrap();
        assert_eq!(rule.hostname.as_deref(), Some("app.example.com"));
        assert_eq!(rule.service, "http://localhost:8080");
        assert_eq!(rule.path, None);
        assert_eq!(rule.origin_request, None);

        form.kind = Some(ServiceType::Https);
        form.url = "https://10.0.0.5:8443".into();
        form.path = "^/api".into();
        form.no_tls_verify = true;
        form.connect_timeout = "10".into();
        form.http_host_header = " intranet ".into();
        let rule = form.to_rule().unwrap();
        assert_eq!(
            rule.service, "https://10.0.0.5:8443",
            "a written scheme is kept"
        );
        assert_eq!(rule.path.as_deref(), Some("^/api"));
        let origin = rule.origin_request.clone().unwrap();
        assert_eq!(origin.no_tls_verify, Some(true));
        assert_eq!(origin.connect_timeout, Some(Duration::from_secs(10)));
        assert_eq!(origin.http_host_header.as_deref(), Some("intranet"));
        // And back into the form for editing.
        let back = HostnameForm::from_rule(&rule, &zones);
        assert_eq!(back.subdomain, "app");
        assert_eq!(back.domain, "example.com");
        assert_eq!(back.kind, Some(ServiceType::Https));
        assert_eq!(back.url, "10.0.0.5:8443");
        assert!(back.no_tls_verify);
        assert_eq!(back.connect_timeout, "10s");
        assert_eq!(back.to_rule().unwrap(), rule);

        for (kind, url, service) in [
            (ServiceType::Ssh, "localhost:22", "ssh://localhost:22"),
            (ServiceType::Unix, "/run/app.sock", "unix:/run/app.sock"),
            (ServiceType::HttpStatus, "418", "http_status:418"),
            (ServiceType::Rdp, "RDP://host:3389", "RDP://host:3389"),
        ] {
            form.kind = Some(kind);
            form.url = url.into();
            assert_eq!(form.to_rule().unwrap().service, service);
        }
    }

    #[test]
    fn the_hostname_form_says_what_is_missing() {
        let mut form = HostnameForm::new(&[]);
        form.url = "localhost:80".into();
        assert_eq!(form.to_rule().unwrap_err().0, Field::Hostname);
        form.domain = "example.com".into();
        form.url = " ".into();
        assert_eq!(form.to_rule().unwrap_err().0, Field::Service);
        form.url = "localhost:80".into();
        form.connect_timeout = "soon".into();
        assert_eq!(form.to_rule().unwrap_err().0, Field::Origin);
        form.connect_timeout = "1m30s".into();
        assert!(form.to_rule().is_ok());
        form.subdomain = String::new();
        assert_eq!(
            form.to_rule().unwrap().hostname.as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn edits_keep_the_catch_all_last() {
        let added = put_rule(None, None, rule(Some("a.example.com"), "http://a")).unwrap();
        assert_eq!(added.ingress.len(), 2);
        assert_eq!(added.ingress[1].service, CATCH_ALL);
        assert_eq!(user_rules(Some(&added)).len(), 1);

        let custom_end = IngressConfig {
            ingress: vec![
                rule(Some("a.example.com"), "http://a"),
                rule(None, "http_status:503"),
            ],
            origin_request: None,
        };
        let two = put_rule(
            Some(&custom_end),
            None,
            rule(Some("b.example.com"), "http://b"),
        )
        .unwrap();
        let services: Vec<_> = two.ingress.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(services, ["http://a", "http://b", "http_status:503"]);

        let edited = put_rule(
            Some(&two),
            Some(0),
            rule(Some("a.example.com"), "http://a2"),
        )
        .unwrap();
        let services: Vec<_> = edited.ingress.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(services, ["http://a2", "http://b", "http_status:503"]);

        let removed = remove_rule(Some(&edited), 1);
        let services: Vec<_> = removed.ingress.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(services, ["http://a2", "http_status:503"]);
        // The catch-all itself cannot be removed.
        assert_eq!(remove_rule(Some(&removed), 1), removed);
        assert!(user_rules(Some(&remove_rule(Some(&removed), 0))).is_empty());
        // A configuration without a catch-all gets one.
        let open = IngressConfig {
            ingress: vec![rule(Some("a.example.com"), "http://a")],
            origin_request: None,
        };
        assert_eq!(user_rules(Some(&open)).len(), 1);
        let fixed = remove_rule(Some(&open), 5);
        assert!(is_catch_all(fixed.ingress.last().unwrap()));
    }

    #[test]
    fn server_errors_name_their_rule_and_field() {
        assert_eq!(
            error_field(
                Some("config.ingress[0].service"),
                "invalid config.ingress[0].service: Rule #1: bad port"
            ),
            Some((0, Field::Service, "Bad port".to_owned()))
        );
        assert_eq!(
            error_field(
                None,
                "config.ingress[2].hostname: not in a zone of the account"
            ),
            Some((
                2,
                Field::Hostname,
                "Not in a zone of the account".to_owned()
            ))
        );
        assert_eq!(
            error_field(Some("config.ingress[1].path"), "odd"),
            Some((1, Field::Path, "Odd".to_owned()))
        );
        assert_eq!(error_field(Some("name"), "x"), None);
        assert_eq!(error_field(None, "tunnel not found"), None);
    }

    #[test]
    fn the_same_hostname_twice_is_refused() {
        let one = put_rule(None, None, rule(Some("a.example.com"), "http://a")).unwrap();
        let (field, message) =
            put_rule(Some(&one), None, rule(Some("A.example.com"), "http://b")).unwrap_err();
        assert_eq!(field, Field::Hostname);
        assert!(message.starts_with("A.example.com is already"), "{message}");
        // Editing the rule itself keeps its hostname.
        assert!(put_rule(Some(&one), Some(0), rule(Some("a.example.com"), "http://c")).is_ok());
        // The same hostname with a path is another rule.
        let mut blog = rule(Some("a.example.com"), "http://blog");
        blog.path = Some("^/blog".into());
        let two = put_rule(Some(&one), None, blog.clone()).unwrap();
        assert!(put_rule(Some(&two), None, blog).is_err());
    }

    #[test]
    fn a_bad_rule_is_explained_in_words_at_its_field() {
        let problem = |service: &str| rule_problem(&rule(Some("a.example.com"), service));
        assert_eq!(problem("http://localhost:8080"), None);
        assert_eq!(problem("http_status:204"), None);
        for bad in [
            "http://not a url::",
            "http://",
            "localhost:99999",
            "http_status:7",
            "http://a/b",
        ] {
            let (field, message) = problem(bad).unwrap();
            assert_eq!(field, Field::Service, "{bad}");
            assert!(!message.contains("Rule #"), "{bad}: {message}");
        }
        let (field, _) = rule_problem(&rule(Some("a.example.com:80"), "http://a")).unwrap();
        assert_eq!(field, Field::Hostname);
        let mut bad_path = rule(Some("a.example.com"), "http://a");
        bad_path.path = Some("(".into());
        assert_eq!(rule_problem(&bad_path).unwrap().0, Field::Path);
    }

    #[test]
    fn server_texts_lose_the_rule_number() {
        assert_eq!(
            readable("Rule #1: http://not a url:: is an invalid address"),
            "http://not a url:: is an invalid address"
        );
        assert_eq!(
            readable("Rule #12 has an invalid regex: x"),
            "Has an invalid regex: x"
        );
        assert_eq!(readable("tunnel not found"), "Tunnel not found");
        assert_eq!(readable("Rule #x"), "Rule #x");
    }

    #[test]
    fn install_commands_carry_the_token() {
        let token = "eyJhIjoi";
        for env in Environment::ALL {
            let command = env.command("http://adit.example:8000", token);
            assert_eq!(token_in(&command), Some(token), "{command}");
        }
        let linux = Environment::Linux.command("http://adit.example:8000", token);
        assert!(
            linux.starts_with(
                "curl --fail-with-body -sSL -o adit \"http://adit.example:8000/download/adit?arch=$(uname -m)\" && "
            ),
            "{linux}"
        );
        assert!(linux.ends_with(&format!("sudo adit service install {token}")));
        assert!(
            Environment::Docker
                .command("", token)
                .contains("--entrypoint adit")
        );
    }
}
