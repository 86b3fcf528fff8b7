//! adit-server's one configuration struct: flags, with `ADIT_*` environment twins.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use adit_core::identity::Role;
use clap::{Parser, Subcommand};

use crate::storage::Storage;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "adit-server",
    version,
    about = "Adit's edge server: public edge, tunnel listener, API and dashboard"
)]
pub struct Config {
    /// Where the database, certificates and keys live (created when missing).
    #[arg(long, env = "ADIT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to run on PostgreSQL; default is an SQLite file in the data directory.
    #[arg(long, env = "ADIT_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Public edge (HTTP) address visitors connect to.
    #[arg(long, env = "ADIT_EDGE_ADDR", default_value = "0.0.0.0:8080")]
    pub edge_addr: SocketAddr,
    /// Public edge (HTTPS) address; certificates for routed hostnames are issued on demand
    /// by the server's CA (`ca.pem` in the data directory). `off` disables it.
    #[arg(long, env = "ADIT_EDGE_TLS_ADDR", default_value = "0.0.0.0:8443", value_parser = parse_optional_addr)]
    // Spelled out so clap takes the parser's `Option` as the value, not as "optional flag".
    pub edge_tls_addr: ::std::option::Option<SocketAddr>,
    /// Tunnel listener (TLS) address connectors dial.
    #[arg(long, env = "ADIT_TUNNEL_ADDR", default_value = "0.0.0.0:7844")]
    pub tunnel_addr: SocketAddr,
    /// API (REST + gRPC) and dashboard address.
    #[arg(long, env = "ADIT_API_ADDR", default_value = "127.0.0.1:8000")]
    pub api_addr: SocketAddr,
    /// The name or IP connectors reach the tunnel listener by; goes into tokens and the
    /// listener's certificate. Default: the listener's own IP, or 127.0.0.1.
    #[arg(long, env = "ADIT_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// Operator certificate chain (PEM) for the tunnel listener, instead of a self-made CA.
    #[arg(long, env = "ADIT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "ADIT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// This edge node's name, shown on connections. Default: the host name.
    #[arg(long, env = "ADIT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Offer quick tunnels (`adit tunnel --url …`, no account needed) on random hostnames
    /// under this domain, e.g. `quick.example.com`.
    #[arg(long, env = "ADIT_QUICK_TUNNEL_DOMAIN")]
    pub quick_tunnel_domain: Option<String>,
    /// How many quick tunnels one client address may hold at once.
    #[arg(long, env = "ADIT_QUICK_TUNNEL_LIMIT", default_value_t = 4)]
    pub quick_tunnel_limit: i64,
    /// How long a quick tunnel outlives its connector (`30s`, `2m`).
    #[arg(long, env = "ADIT_QUICK_TUNNEL_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub quick_tunnel_grace: Duration,
    /// Log one line per proxied request (tunnel, host, status, bytes, duration, error source).
    #[arg(long, env = "ADIT_ACCESS_LOG")]
    pub access_log: bool,
    /// Log level filter (`info`, `debug`, `adit_server=debug,info`, …).
    #[arg(long, env = "ADIT_LOGLEVEL", default_value = "info")]
    pub loglevel: String,
    /// Log format.
    #[arg(long, env = "ADIT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    pub log_format: String,
    /// The first admin's login, created with a generated password (printed once) when the
    /// database has no user yet.
    #[arg(long, env = "ADIT_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    /// Mark session cookies `Secure`: set it when the dashboard is served over HTTPS
    /// (behind a proxy that sends `X-Forwarded-Proto: https` it is automatic).
    #[arg(long, env = "ADIT_SECURE_COOKIES")]
    pub secure_cookies: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage users on this server's database (works while the server runs).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create a user with a role in an account (created when missing); the password is
    /// generated and printed once unless --password-stdin.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "admin")]
        role: Role,
        #[arg(long, default_value = crate::app::DEFAULT_ACCOUNT)]
        account: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (generated and printed once unless --password-stdin) and end the
    /// user's sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their accounts and roles.
    List,
    /// Sign new sessions with a new key; --end-sessions also logs everyone out now.
    RotateKeys {
        #[arg(long)]
        end_sessions: bool,
    },
}

impl Config {
    /// Every listener on 127.0.0.1 port 0, for tests and embedding.
    pub fn ephemeral(data_dir: PathBuf) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            data_dir: Some(data_dir),
            database_url: None,
            edge_addr: any,
            edge_tls_addr: Some(any),
            tunnel_addr: any,
            api_addr: any,
            public_host: None,
            tls_cert: None,
            tls_key: None,
            node_name: Some("edge-test".into()),
            quick_tunnel_domain: None,
            access_log: false,
            quick_tunnel_limit: 4,
            quick_tunnel_grace: Duration::from_secs(30),
            loglevel: "info".into(),
            log_format: "pretty".into(),
            admin_email: "admin@localhost".into(),
            secure_cookies: false,
            command: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// `--database-url`, or the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| Storage::sqlite_url(&self.data_dir().join("adit.db")))
    }
}

/// `~/.adit/server`, where the CLI also looks for the admin token.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".adit")
        .join("server")
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    adit_core::ingress::parse_go_duration(text).map_err(|e| e.to_string())
}

fn parse_optional_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    if text == "off" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|e| format!("{text:?}: {e} (or `off`)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_defaults_and_overrides() {
        let config = Config::try_parse_from(["adit-server"]).unwrap();
        assert_eq!(config.edge_tls_addr, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(config.quick_tunnel_grace, Duration::from_secs(30));
        let config = Config::try_parse_from([
            "adit-server",
            "--edge-tls-addr",
            "off",
            "--quick-tunnel-grace",
            "1m30s",
            "--access-log",
        ])
        .unwrap();
        assert_eq!(config.edge_tls_addr, None);
        assert_eq!(config.quick_tunnel_grace, Duration::from_secs(90));
        assert!(config.access_log);
        assert!(Config::try_parse_from(["adit-server", "--edge-tls-addr", "nope"]).is_err());
    }
}
