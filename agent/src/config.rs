//! `config.yml`, in cloudflared's shape: `tunnel`, `credentials-file`, `token`,
//! `token-file`, `url`, `ingress` rules and `originRequest`, and the settings `metrics`,
//! `logfile`, `loglevel`, `ha-connections` and `grace-period`. A cloudflared config.yml
//! loads as it is: a key Adit does not read is ignored with a warning naming the file and
//! line ([`cloudflared`] says which keys and why), except a near miss of a key Adit does
//! read, which is an error with a "did you mean". Every error names the file and line.

mod cloudflared;
mod lenient;

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use adit_core::{
    ingress::{Ingress, OriginRequestConfig, RawIngressRule},
    secret::Secret,
    token::TunnelToken,
};
use serde::{Deserialize, Deserializer, Serialize};

pub use self::cloudflared::Place;
use self::{
    cloudflared::Verdict,
    lenient::{Pass, parse_once},
};
use crate::Error;

/// The keys Adit reads. `deny_unknown_fields` stays although the loader takes files with
/// other keys: it skips those itself, warning about each, so none is dropped unsaid.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Tunnel name or UUID (informational when a token or credentials file is given).
    pub tunnel: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Single origin, when there are no ingress rules.
    pub url: Option<String>,
    pub ingress: Option<Vec<RawIngressRule>>,
    #[serde(rename = "originRequest")]
    pub origin_request: Option<OriginRequestConfig>,
    pub loglevel: Option<String>,
    /// A file the log is appended to, besides stderr.
    pub logfile: Option<PathBuf>,
    /// Where to serve /metrics, /ready and /healthcheck (`--metrics` wins).
    #[serde(default, deserialize_with = "metrics_address")]
    pub metrics: Option<SocketAddr>,
    pub ha_connections: Option<u8>,
    /// How long in-flight streams may take to finish after a stop signal (`30s`).
    #[serde(default, with = "adit_core::ingress::opt_duration")]
    pub grace_period: Option<std::time::Duration>,
}

/// Reads `metrics` in a visitor, so that serde_yaml puts the line on a bad address.
fn metrics_address<'de, D: Deserializer<'de>>(de: D) -> Result<Option<SocketAddr>, D::Error> {
    struct Address;

    impl serde::de::Visitor<'_> for Address {
        type Value = SocketAddr;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an address such as 127.0.0.1:2000 or localhost:2000")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SocketAddr, E> {
            crate::metrics::parse_address(text).map_err(E::custom)
        }
    }

    de.deserialize_str(Address).map(Some)
}

/// A key of the file that is ignored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    /// The key's line (1-based).
    pub line: Option<usize>,
    pub place: Place,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A loaded config and where it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: FileConfig,
    /// The keys that were ignored, in the order they are written.
    pub warnings: Vec<ConfigWarning>,
}

/// More keys than this that Adit does not read and the file is refused: each costs a parse
/// of the whole file (see [`lenient`]), and a file that full of them is not a config.yml.
const MAX_IGNORED_KEYS: usize = 64;

/// The names a config file is looked for under in each directory, in order.
const FILE_NAMES: [&str; 2] = ["config.yml", "config.yaml"];

impl LoadedConfig {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses config text as if read from `path` (which only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let error = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let mut warnings = Vec::new();
        let mut skip = Vec::new();
        let config = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            loop {
                match parse_once(text, &skip).map_err(|e| error(e.to_string()))? {
                    Pass::Parsed(config) => break config,
                    Pass::Stopped(_) if skip.len() == MAX_IGNORED_KEYS => {
                        return Err(error(format!(
                            "more than {MAX_IGNORED_KEYS} keys that Adit does not read"
                        )));
                    }
                    Pass::Stopped(key) => {
                        let at = key
                            .line
                            .map(|line| format!("line {line}: "))
                            .unwrap_or_default();
                        match cloudflared::judge(&key) {
                            Verdict::Refuse(message) => {
                                return Err(error(format!("{at}{message}")));
                            }
                            Verdict::Ignore(message) => warnings.push(ConfigWarning {
                                file: path.to_owned(),
                                line: key.line,
                                place: Place::of(&key.path),
                                message,
                            }),
                        }
                        skip.push(key.path);
                    }
                }
            }
        };
        Ok(Self {
            path: path.to_owned(),
            config,
            warnings,
        })
    }

    /// `--config`, else the first of `~/.adit/config.yml`, `~/.adit/config.yaml`,
    /// `/etc/adit/config.yml`, `/etc/adit/config.yaml` that exists.
    pub fn find(explicit: Option<&Path>, adit_home: &Path) -> Result<Option<Self>, Error> {
        if let Some(path) = explicit {
            return Self::load(path).map(Some);
        }
        for dir in [adit_home, Path::new("/etc/adit")] {
            for name in FILE_NAMES {
                let candidate = dir.join(name);
                if candidate.exists() {
                    return Self::load(&candidate).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// The ingress rules: the file's, else its `url`, else `--url`.
    pub fn ingress(&self, url_flag: Option<&str>) -> Result<Option<Ingress>, Error> {
        let at = |e: adit_core::Error| Error::Config {
            path: self.path.clone(),
            message: e.to_string(),
        };
        match (
            &self.config.ingress,
            url_flag.or(self.config.url.as_deref()),
        ) {
            (Some(_), Some(_)) if url_flag.is_some() => Err(Error::Usage(
                "You can't set the --url flag when using multiple-origin ingress rules".into(),
            )),
            (Some(rules), _) => Ingress::parse(rules, self.config.origin_request.as_ref())
                .map(Some)
                .map_err(at),
            (None, Some(url)) => Ingress::single(url).map(Some).map_err(at),
            (None, None) => Ok(None),
        }
    }
}

/// The `<UUID>.json` credentials file `adit tunnel create` writes (cloudflared's field names).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialsFile {
    pub tunnel_token: String,
    #[serde(rename = "TunnelID")]
    pub tunnel_id: String,
}

impl CredentialsFile {
    pub fn read_token(path: &Path) -> Result<TunnelToken, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let file: Self = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: format!("not a tunnel credentials file: {e}"),
        })?;
        Ok(TunnelToken::parse(&file.tunnel_token)?)
    }
}

/// Reads a token file (whitespace around the token is ignored).
pub fn read_token_file(path: &Path) -> Result<TunnelToken, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    Ok(TunnelToken::parse(text.trim())?)
}

impl FileConfig {
    /// The token the file names: `token`, else `token-file`, else `credentials-file`.
    pub fn tunnel_token(&self) -> Result<Option<TunnelToken>, Error> {
        if let Some(token) = &self.token {
            return Ok(Some(TunnelToken::parse(token.expose().trim())?));
        }
        if let Some(path) = &self.token_file {
            return read_token_file(path).map(Some);
        }
        self.credentials_file
            .as_deref()
            .map(CredentialsFile::read_token)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<LoadedConfig, Error> {
        let dir = std::env::temp_dir().join(format!("adit-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yml");
        std::fs::write(&path, text).unwrap();
        LoadedConfig::load(&path)
    }

    #[test]
    fn the_token_never_prints() {
        let loaded = load("token: eyJhIjoic2VjcmV0LXRva2VuIn0\n").unwrap();
        let token = loaded.config.token.as_ref().unwrap();
        assert_eq!(token.expose(), "eyJhIjoic2VjcmV0LXRva2VuIn0");
        let printed = format!("{loaded:?}");
        assert!(!printed.contains("eyJhIjoic2VjcmV0"), "{printed}");
        assert!(printed.contains("***"), "{printed}");
    }

    #[test]
    fn parses_cloudflared_shaped_config() {
        let loaded = load(
            "tunnel: demo\ncredentials-file: /tmp/x.json\ningress:\n  - hostname: app.example.com\n    service: http://localhost:8000\n  - service: http_status:404\n",
        )
        .unwrap();
        let ingress = loaded.ingress(None).unwrap().unwrap();
        assert_eq!(ingress.rules().len(), 2);
    }

    /// A config.yml as cloudflared users write them, with the keys Adit does not read.
    const CLOUDFLARED_CONFIG: &str = "\
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /root/.cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json
protocol: http2
no-autoupdate: true
metrics: localhost:2000
loglevel: info
logfile: /var/log/cloudflared.log
grace-period: 45s
tag:
  - env=prod
warp-routing:
  enabled: true
originRequest:
  connectTimeout: 10s
  noTLSVerify: false
  ipRules:
    - prefix: 10.0.0.0/8
      ports: [22]
      allow: true
ingress:
  - hostname: app.example.com
    service: http://localhost:8000
    originRequest:
      matchSNItoHost: true
      access:
        required: true
        teamName: myteam
        audTag: [aud1]
  - hostname: ssh.example.com
    service: ssh://localhost:22
    originRequest: {bastionMode: false, connectTimeout: 5s}
  - service: http_status:404
";

    #[test]
    fn a_cloudflared_config_loads_warning_once_per_key_it_ignores() {
        let loaded = load(CLOUDFLARED_CONFIG).unwrap();
        let warned: Vec<_> = loaded
            .warnings
            .iter()
            .map(|w| (w.place.key.as_str(), w.place.rule, w.line))
            .collect();
        assert_eq!(
            warned,
            [
                ("protocol", None, Some(3)),
                ("no-autoupdate", None, Some(4)),
                ("tag", None, Some(9)),
                ("warp-routing", None, Some(11)),
                ("originRequest.ipRules", None, Some(16)),
                ("originRequest.matchSNItoHost", Some(1), Some(24)),
                ("originRequest.access", Some(1), Some(25)),
                ("originRequest.bastionMode", Some(2), Some(31)),
            ]
        );
        let texts: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert!(
            texts[0].ends_with("config.yml:3: `protocol` ignored: Adit always connects to its edge with its own protocol, HTTP/2 over TLS"),
            "{texts:#?}"
        );
        assert!(
            texts[3].contains("config.yml:11: `warp-routing` ignored: not supported by Adit"),
            "{texts:#?}"
        );
        assert!(
            texts[6].contains(":25: `originRequest.access` in rule #1 ignored"),
            "{texts:#?}"
        );

        // What Adit does read is read.
        let c = &loaded.config;
        assert_eq!(c.metrics, Some(SocketAddr::from(([127, 0, 0, 1], 2000))));
        assert_eq!(c.loglevel.as_deref(), Some("info"));
        assert_eq!(
            c.logfile.as_deref(),
            Some(Path::new("/var/log/cloudflared.log"))
        );
        assert_eq!(c.grace_period, Some(std::time::Duration::from_secs(45)));
        assert_eq!(
            c.tunnel.as_deref(),
            Some("6ff42ae2-765d-4adf-8112-31c55c1551ef")
        );
        let ingress = loaded.ingress(None).unwrap().unwrap();
        assert_eq!(ingress.rules().len(), 3);
        let timeouts: Vec<_> = ingress
            .rules()
            .iter()
            .map(|r| r.origin_request.connect_timeout.as_secs())
            .collect();
        assert_eq!(timeouts, [10, 5, 10]);
    }

    #[test]
    fn a_key_nobody_has_is_ignored_with_its_line() {
        let loaded = load("tunnel: demo\nbogus: 1\n").unwrap();
        let [warning] = &loaded.warnings[..] else {
            panic!("{:?}", loaded.warnings)
        };
        let text = warning.to_string();
        assert!(
            text.ends_with(
                "config.yml:2: unknown key `bogus` ignored (neither Adit nor cloudflared has it)"
            ),
            "{text}"
        );
        // A slip in one of cloudflared's keys that Adit does not read is only a warning.
        let loaded = load("no-autoupdat: true\n").unwrap();
        let text = loaded.warnings[0].to_string();
        assert!(text.contains("did you mean `no-autoupdate`?"), "{text}");
    }

    #[test]
    fn a_typo_of_a_key_adit_reads_is_an_error_naming_file_line_and_rule() {
        for (text, line, meant) in [
            (
                "tunnel: demo\ncredentials_file: /x.json\n",
                2,
                "`credentials-file`",
            ),
            (
                "tunnel: demo\ningres:\n  - service: http://x\n",
                2,
                "`ingress`",
            ),
            (
                "ingress:\n  - service: https://x\n    originRequest:\n      noTLSVerfy: true\n  - service: http_status:404\n",
                4,
                "`originRequest.noTLSVerfy` in rule #1: did you mean `noTLSVerify`?",
            ),
            (
                "ingress:\n  - hostname: a.com\n    servce: http://x\n",
                3,
                "`service`",
            ),
            (
                "originRequest:\n  connecttimeout: 5s\n",
                2,
                "`connectTimeout`",
            ),
        ] {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains("config.yml"), "{err}");
            assert!(err.contains(&format!("line {line}")), "{err}");
            assert!(err.contains(meant), "{err}");
            assert!(err.contains("did you mean"), "{err}");
        }
    }

    #[test]
    fn a_bad_value_after_an_ignored_key_still_names_its_line() {
        let err = load("warp-routing:\n  enabled: true\ngrace-period: soon\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config.yml"), "{err}");
        assert!(err.contains("grace-period"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = load("metrics: everywhere\n").unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("localhost:PORT"),
            "{err}"
        );
    }

    #[test]
    fn a_file_of_nothing_but_unknown_keys_is_refused() {
        let text: String = (0..=MAX_IGNORED_KEYS)
            .map(|i| format!("key{i}: 1\n"))
            .collect();
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("more than 64 keys"), "{err}");
        let text: String = (0..MAX_IGNORED_KEYS)
            .map(|i| format!("key{i}: 1\n"))
            .collect();
        assert_eq!(load(&text).unwrap().warnings.len(), MAX_IGNORED_KEYS);
    }

    #[test]
    fn config_yaml_is_found_where_config_yml_is() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.yaml"), "tunnel: from-yaml\n").unwrap();
        let found = LoadedConfig::find(None, home.path()).unwrap().unwrap();
        assert_eq!(found.path, home.path().join("config.yaml"));
        std::fs::write(home.path().join("config.yml"), "tunnel: from-yml\n").unwrap();
        let found = LoadedConfig::find(None, home.path()).unwrap().unwrap();
        assert_eq!(found.config.tunnel.as_deref(), Some("from-yml"));
    }

    #[test]
    fn ingress_errors_name_file_and_rule() {
        let loaded = load("ingress:\n  - hostname: a.com\n    service: http://x\n").unwrap();
        let err = loaded.ingress(None).unwrap_err().to_string();
        assert!(
            err.contains("config.yml") && err.contains("Rule #1"),
            "{err}"
        );
    }

    /// The fuzzer's seed configs are example configs too: the valid ones must load, so
    /// the fuzzer starts from inputs that reach rule matching.
    #[test]
    fn fuzz_seed_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/ingress_config");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let ingress = LoadedConfig::parse(&path, &text).and_then(|c| c.ingress(None));
            if name.starts_with("bad_") {
                assert!(ingress.is_err(), "{name} should be refused");
            } else {
                assert!(ingress.unwrap().is_some(), "{name} has no ingress");
            }
            checked += 1;
        }
        assert!(checked >= 3, "seeds not found in {}", dir.display());
    }

    #[test]
    fn url_flag_conflicts_with_rules() {
        let loaded = load("ingress:\n  - service: http://x\n").unwrap();
        assert!(loaded.ingress(Some("http://y")).is_err());
        let plain = load("").unwrap();
        assert!(plain.ingress(Some("http://y")).unwrap().is_some());
        assert!(plain.ingress(None).unwrap().is_none());
    }
}
