//! `config.yml`, in cloudflared's shape: `tunnel`, `credentials-file`, `token`,
//! `token-file`, `url`, `ingress` rules and `originRequest`. Unknown keys are errors that
//! name the file, line and column.

use std::path::{Path, PathBuf};

use adit_core::{
    ingress::{Ingress, OriginRequestConfig, RawIngressRule},
    secret::Secret,
    token::TunnelToken,
};
use serde::{Deserialize, Serialize};

use crate::Error;

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
    pub ha_connections: Option<u8>,
    /// How long in-flight streams may take to finish after a stop signal (`30s`).
    #[serde(default, with = "adit_core::ingress::opt_duration")]
    pub grace_period: Option<std::time::Duration>,
}

/// A loaded config and where it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: FileConfig,
}

impl LoadedConfig {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses config text as if read from `path` (which only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let config = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| Error::Config {
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        Ok(Self {
            path: path.to_owned(),
            config,
        })
    }

    /// `--config`, else the first of `~/.adit/config.yml`, `/etc/adit/config.yml` that exists.
    pub fn find(explicit: Option<&Path>, adit_home: &Path) -> Result<Option<Self>, Error> {
        if let Some(path) = explicit {
            return Self::load(path).map(Some);
        }
        for candidate in [
            adit_home.join("config.yml"),
            PathBuf::from("/etc/adit/config.yml"),
        ] {
            if candidate.exists() {
                return Self::load(&candidate).map(Some);
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

    #[test]
    fn unknown_key_names_file_and_line() {
        let err = load("tunnel: demo\nbogus: 1\n").unwrap_err().to_string();
        assert!(err.contains("config.yml"), "{err}");
        assert!(err.contains("bogus"), "{err}");
        assert!(err.contains("line 2"), "{err}");
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
