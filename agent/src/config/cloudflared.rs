//! What to say about a key of config.yml that Adit has no field for. cloudflared reads
//! such keys without complaint (its `ingress validate` lists them as unused), so a
//! cloudflared config.yml has to load here too: its keys that Adit does not implement are
//! ignored with a warning that says why. A key that is neither Adit's nor cloudflared's
//! is ignored too, unless it is a near miss of a key Adit implements: then the setting the
//! user meant would silently not apply (`noTLSVerfy: true` and the origin's certificate is
//! still checked), so the file is refused with a "did you mean".

use super::lenient::{Segment, UnknownKey};

/// The verdict on one unknown key.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Ignored; the text says why.
    Ignore(String),
    /// The file is refused; the text says why.
    Refuse(String),
}

/// cloudflared's top-level keys (any of its flags can be one) that Adit does not read,
/// each with why or what to use instead.
const TOP_LEVEL: &[(&str, &str)] = &[
    (
        "protocol",
        "Adit always connects to its edge with its own protocol, HTTP/2 over TLS",
    ),
    ("no-autoupdate", "Adit does not update itself"),
    ("autoupdate-freq", "Adit does not update itself"),
    (
        "warp-routing",
        "not supported by Adit: private networks need no setting here; route them with `adit tunnel route ip add` and reach them with `adit access socks`",
    ),
    (
        "tag",
        "not supported by Adit: no `Cf-Warp-Tag-*` headers are sent to origins",
    ),
    ("label", "not supported by Adit"),
    (
        "credentials-contents",
        "not supported by Adit: use `credentials-file`, `token` or `token-file`",
    ),
    ("origincert", "Adit does not use a cert.pem"),
    (
        "output",
        "not read from the file by Adit: use `--log-format json`",
    ),
    ("log-directory", "not supported by Adit: use `logfile`"),
    (
        "transport-loglevel",
        "not supported by Adit: use `loglevel`",
    ),
    ("pidfile", "not supported by Adit"),
    ("retries", "not supported by Adit: it retries without limit"),
    ("max-edge-addr-retries", "not supported by Adit"),
    ("rpc-timeout", "not supported by Adit"),
    ("dial-edge-timeout", "not supported by Adit"),
    ("edge-ip-version", "not supported by Adit"),
    ("edge-bind-address", "not supported by Adit"),
    ("region", "not supported by Adit: the token names the edge"),
    ("post-quantum", "not supported by Adit"),
    ("management-diagnostics", "not supported by Adit"),
    ("no-prechecks", "Adit runs no connectivity pre-checks"),
    ("features", "not supported by Adit"),
    ("max-active-flows", "not supported by Adit"),
    ("dns-resolver-addrs", "not supported by Adit"),
    (
        "icmpv4-src",
        "not supported by Adit: there is no ICMP proxy",
    ),
    (
        "icmpv6-src",
        "not supported by Adit: there is no ICMP proxy",
    ),
    (
        "hello-world",
        "not supported by Adit: use `url: hello_world`",
    ),
    (
        "unix-socket",
        "not supported by Adit: use `url: unix:/path`",
    ),
    ("bastion", "not supported by Adit: there is no bastion mode"),
    ("socks5", "not supported by Adit: use `adit access socks`"),
    (
        "http-host-header",
        "not supported by Adit: use `originRequest.httpHostHeader`",
    ),
    (
        "origin-server-name",
        "not supported by Adit: use `originRequest.originServerName`",
    ),
    (
        "no-tls-verify",
        "not supported by Adit: use `originRequest.noTLSVerify`",
    ),
    (
        "origin-ca-pool",
        "not supported by Adit: use `originRequest.caPool`",
    ),
    (
        "no-chunked-encoding",
        "not supported by Adit: use `originRequest.disableChunkedEncoding`",
    ),
    (
        "http2-origin",
        "not supported by Adit: use `originRequest.http2Origin`",
    ),
    (
        "proxy-connect-timeout",
        "not supported by Adit: use `originRequest.connectTimeout`",
    ),
];

/// cloudflared's `originRequest` fields that Adit does not read.
const ORIGIN_REQUEST: &[(&str, &str)] = &[
    (
        "matchSNItoHost",
        "not supported by Adit: the TLS name is `originServerName`, else the service's host",
    ),
    (
        "access",
        "not supported by Adit: its edge checks no Cloudflare Access token; protect the origin itself",
    ),
    (
        "ipRules",
        "not supported by Adit: it is for cloudflared's `socks-proxy` service",
    ),
    (
        "bastionMode",
        "not supported by Adit: there is no bastion mode; the rule's `service` is used",
    ),
    ("proxyAddress", "not supported by Adit"),
    ("proxyPort", "not supported by Adit"),
    ("proxyType", "not supported by Adit"),
];

/// The verdict on `key`, found in the struct it names.
pub(super) fn judge(key: &UnknownKey) -> Verdict {
    let name = key.name();
    let cloudflared: &[(&str, &str)] = match key.struct_name {
        "FileConfig" => TOP_LEVEL,
        "OriginRequestConfig" => ORIGIN_REQUEST,
        _ => &[],
    };
    let place = Place::of(&key.path);
    if let Some((_, why)) = cloudflared.iter().find(|(known, _)| *known == name) {
        return Verdict::Ignore(format!("{place} ignored: {why}"));
    }
    if let Some(meant) = key.fields.iter().find(|field| near(name, field)) {
        return Verdict::Refuse(format!("unknown key {place}: did you mean `{meant}`?"));
    }
    match cloudflared.iter().find(|(known, _)| near(name, known)) {
        Some((meant, why)) => Verdict::Ignore(format!(
            "unknown key {place} ignored (did you mean `{meant}`? That one is cloudflared's, {why})"
        )),
        None => Verdict::Ignore(format!(
            "unknown key {place} ignored (neither Adit nor cloudflared has it)"
        )),
    }
}

/// A key as a user finds it in the file: `originRequest.access` in rule #2 for a key of
/// the second ingress rule, else its path with dots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The key's path from its rule, or from the top of the file.
    pub key: String,
    /// The ingress rule it is in (1-based, as errors number rules).
    pub rule: Option<usize>,
}

impl Place {
    pub(super) fn of(path: &[Segment]) -> Self {
        let dotted = |segments: &[Segment]| {
            segments
                .iter()
                .map(|segment| match segment {
                    Segment::Key(key) => key.clone(),
                    Segment::Index(i) => format!("[{i}]"),
                })
                .collect::<Vec<_>>()
                .join(".")
        };
        match path {
            [Segment::Key(ingress), Segment::Index(i), rest @ ..] if ingress == "ingress" => Self {
                key: dotted(rest),
                rule: Some(i + 1),
            },
            _ => Self {
                key: dotted(path),
                rule: None,
            },
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`", self.key)?;
        match self.rule {
            Some(rule) => write!(f, " in rule #{rule}"),
            None => Ok(()),
        }
    }
}

/// Whether `written` looks like a slip for `key`: the same but for case, `-` and `_`, or
/// one edit away (two for a key longer than five letters).
fn near(written: &str, key: &str) -> bool {
    let fold = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect::<Vec<_>>()
    };
    let (a, b) = (fold(written), fold(key));
    let allowed = if b.len() > 5 { 2 } else { 1 };
    a == b || edit_distance(&a, &b) <= allowed
}

/// Levenshtein distance.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != cb);
            current.push(replace.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
