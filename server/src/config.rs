//! adit-server's one configuration struct: flags, with `ADIT_*` environment twins.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use adit_core::identity::Role;
use clap::{Parser, Subcommand};

use crate::{
    control::acme::{AcmeChallenge, AcmeSettings},
    storage::Storage,
};
pub use crate::{edge::EdgeLimits, net::ConnLimits};

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
    /// The tunnel address tokens carry (`HOST` or `HOST:PORT`, the port by default the
    /// tunnel listener's): in a cluster, a DNS name or balancer in front of every node's
    /// tunnel listener, so that a connector starts whichever node is up. Also a name of
    /// the tunnel certificate. Default: this node's own (`--public-host`).
    #[arg(long, env = "ADIT_TOKEN_ENDPOINT")]
    pub token_endpoint: Option<String>,
    /// This edge node's name, shown on connections. Default: the host name.
    #[arg(long, env = "ADIT_NODE_NAME")]
    pub node_name: Option<String>,
    /// How long a node that was told to stop (SIGTERM) waits for the streams in flight on
    /// its connectors' connections, which move to other nodes meanwhile (`30s`, `2m`). A
    /// second signal stops at once. Only in a cluster: a single node stops at once.
    #[arg(long, env = "ADIT_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub grace_period: Duration,
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
    /// Largest request head (request line and headers) a visitor may send, in bytes;
    /// larger gets 431. Also HTTP/2 visitors' `max_header_list_size`. At least 8192, the
    /// smallest read buffer hyper's HTTP/1 parser works with.
    #[arg(long, env = "ADIT_EDGE_MAX_HEADER_BYTES", default_value_t = EdgeLimits::DEFAULT.max_header_bytes,
          value_parser = clap::value_parser!(u32).range(8192..))]
    pub edge_max_header_bytes: u32,
    /// Most header fields one visitor request may carry; more gets 431.
    #[arg(long, env = "ADIT_EDGE_MAX_HEADERS", default_value_t = EdgeLimits::DEFAULT.max_headers,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub edge_max_headers: u32,
    /// Longest request target (path and query) a visitor may send, in bytes; longer gets 414.
    #[arg(long, env = "ADIT_EDGE_MAX_URI_BYTES", default_value_t = EdgeLimits::DEFAULT.max_uri_bytes,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub edge_max_uri_bytes: u32,
    /// How long a visitor has to send a whole request head (slowloris); then the connection
    /// is closed. HTTP/1.1's wait for the next request on a kept-alive connection counts too,
    /// and so does the wait for the first request on any connection, HTTP/2 included.
    #[arg(long, env = "ADIT_EDGE_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub edge_header_timeout: Duration,
    /// How long a request body may stall between two reads; then the visitor gets 408 (or
    /// the stream is reset if the response has begun).
    #[arg(long, env = "ADIT_EDGE_BODY_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub edge_body_timeout: Duration,
    /// How long a visitor connection may sit with nothing to read and no request in flight.
    #[arg(long, env = "ADIT_EDGE_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_positive_duration)]
    pub edge_idle_timeout: Duration,
    /// Concurrent streams one HTTP/2 visitor connection may open.
    #[arg(long, env = "ADIT_EDGE_MAX_STREAMS_PER_CONNECTION", default_value_t = EdgeLimits::DEFAULT.max_streams_per_connection,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub edge_max_streams_per_connection: u32,
    /// Streams (requests, WebSockets, TCP) in flight to one tunnel at once; more get 503.
    #[arg(long, env = "ADIT_EDGE_MAX_STREAMS_PER_TUNNEL", default_value_t = EdgeLimits::DEFAULT.max_streams_per_tunnel,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub edge_max_streams_per_tunnel: u32,
    /// Connections one source address (an IPv6 one's /64) may hold on one listener before
    /// they prove themselves: the tunnel listener's until a token is accepted, the edge's
    /// and the API's until their first request head. More are closed at once.
    #[arg(long, env = "ADIT_MAX_PENDING_PER_SOURCE", default_value_t = ConnLimits::DEFAULT.max_pending_per_source,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_per_source: u32,
    /// How long a connection to the tunnel listener has to authenticate: the TLS handshake
    /// and then an accepted hello (data) or a first call with an accepted token (gRPC).
    #[arg(long, env = "ADIT_TUNNEL_AUTH_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub tunnel_auth_timeout: Duration,
    /// How long an API client has to send a request head, the first on a connection (HTTP/1
    /// or h2c) or the next on a kept-alive HTTP/1 connection; then the connection is closed.
    #[arg(long, env = "ADIT_API_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub api_header_timeout: Duration,
    /// How often every HTTP/2 server connection (tunnel gRPC, edge, API) pings a peer that
    /// has sent nothing lately.
    #[arg(long, env = "ADIT_HTTP2_KEEP_ALIVE_INTERVAL", default_value = "20s", value_parser = parse_positive_duration)]
    pub http2_keep_alive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    #[arg(long, env = "ADIT_HTTP2_KEEP_ALIVE_TIMEOUT", default_value = "20s", value_parser = parse_positive_duration)]
    pub http2_keep_alive_timeout: Duration,
    /// Log one line per proxied request (tunnel, host, status, bytes, duration, error source).
    #[arg(long, env = "ADIT_ACCESS_LOG")]
    pub access_log: bool,
    /// Log level filter (`info`, `debug`, `adit_server=debug,info`, …).
    #[arg(long, env = "ADIT_LOGLEVEL", default_value = "info")]
    pub loglevel: String,
    /// Log format.
    #[arg(long, env = "ADIT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    pub log_format: String,
    /// Domains the default account serves (repeat, or comma-separate in the environment);
    /// hostname routes must lie inside one of their account's zones. Registered at start.
    #[arg(long = "zone", env = "ADIT_ZONES", value_delimiter = ',')]
    pub zones: Vec<String>,
    /// The first admin's login, created with a generated password (printed once) when the
    /// database has no user yet.
    #[arg(long, env = "ADIT_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    /// Mark session cookies `Secure`: set it when the dashboard is served over HTTPS
    /// (behind a proxy that sends `X-Forwarded-Proto: https` it is automatic).
    #[arg(long, env = "ADIT_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// An ACME directory URL (`https://acme-v02.api.letsencrypt.org/directory`): the HTTPS
    /// edge then serves each routed hostname (inside a zone, not covered by the zone's
    /// uploaded certificate) a certificate ordered from it, renewed when fewer than 30 days
    /// are left. Kept in the database, so every node of a cluster serves them.
    #[arg(long, env = "ADIT_ACME_DIRECTORY")]
    pub acme_directory: Option<String>,
    /// The ACME account's contact email.
    #[arg(long, env = "ADIT_ACME_EMAIL", requires = "acme_directory")]
    pub acme_email: Option<String>,
    /// How the CA checks a hostname is ours: `http-01` (answered on the plain HTTP edge,
    /// which the CA reaches on port 80) or `tls-alpn-01` (on the HTTPS edge, port 443).
    #[arg(long, env = "ADIT_ACME_CHALLENGE", default_value = "http-01", value_parser = parse_acme_challenge)]
    pub acme_challenge: AcmeChallenge,
    /// A PEM root certificate the ACME directory's own HTTPS is checked against instead of
    /// the system's (a test CA such as pebble's).
    #[arg(long, env = "ADIT_ACME_DIRECTORY_CA", requires = "acme_directory")]
    pub acme_directory_ca: Option<PathBuf>,
    /// How often to look for hostnames needing an ACME certificate (new routes, renewals).
    #[arg(long, env = "ADIT_ACME_CHECK_INTERVAL", default_value = "1m", value_parser = parse_positive_duration)]
    pub acme_check_interval: Duration,
    /// The dashboard's browser bundle (`cargo xtask ui` builds it into `target/site`):
    /// served as `/pkg/*`; without it the pages are served server-rendered only. Default:
    /// a `site` directory next to the executable or in its parent directory.
    #[arg(long, env = "ADIT_UI_DIR")]
    pub ui_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage users on this server's database (works while the server runs).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Exit 0 when the server at --url (default: this configuration's API address) is
    /// ready for traffic (`GET /readyz`), 1 otherwise: for a container's HEALTHCHECK.
    Health {
        /// The API listener, `http://HOST:PORT`.
        #[arg(long)]
        url: Option<String>,
    },
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
        #[arg(long, default_value = crate::control::DEFAULT_ACCOUNT)]
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
        /// The user's account; needed when the email has a user in more than one.
        #[arg(long)]
        account: Option<String>,
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
            token_endpoint: None,
            grace_period: Duration::from_secs(10),
            quick_tunnel_domain: None,
            access_log: false,
            quick_tunnel_limit: 4,
            quick_tunnel_grace: Duration::from_secs(30),
            edge_max_header_bytes: EdgeLimits::DEFAULT.max_header_bytes,
            edge_max_headers: EdgeLimits::DEFAULT.max_headers,
            edge_max_uri_bytes: EdgeLimits::DEFAULT.max_uri_bytes,
            edge_header_timeout: EdgeLimits::DEFAULT.header_timeout,
            edge_body_timeout: EdgeLimits::DEFAULT.body_timeout,
            edge_idle_timeout: EdgeLimits::DEFAULT.idle_timeout,
            edge_max_streams_per_connection: EdgeLimits::DEFAULT.max_streams_per_connection,
            edge_max_streams_per_tunnel: EdgeLimits::DEFAULT.max_streams_per_tunnel,
            max_pending_per_source: ConnLimits::DEFAULT.max_pending_per_source,
            tunnel_auth_timeout: ConnLimits::DEFAULT.tunnel_auth_timeout,
            api_header_timeout: ConnLimits::DEFAULT.api_header_timeout,
            http2_keep_alive_interval: ConnLimits::DEFAULT.http2_keep_alive_interval,
            http2_keep_alive_timeout: ConnLimits::DEFAULT.http2_keep_alive_timeout,
            loglevel: "info".into(),
            log_format: "pretty".into(),
            admin_email: "admin@localhost".into(),
            zones: Vec::new(),
            secure_cookies: false,
            acme_directory: None,
            acme_email: None,
            acme_challenge: AcmeChallenge::Http01,
            acme_directory_ca: None,
            acme_check_interval: Duration::from_secs(60),
            ui_dir: None,
            command: None,
        }
    }

    /// `--acme-*`, when `--acme-directory` turns ACME on.
    pub fn acme(&self) -> Option<AcmeSettings> {
        Some(AcmeSettings {
            directory: self.acme_directory.clone()?,
            email: self.acme_email.clone(),
            challenge: self.acme_challenge,
            directory_ca: self.acme_directory_ca.clone(),
            check_interval: self.acme_check_interval,
        })
    }

    /// The public edge's limits, as the flags set them.
    pub fn edge_limits(&self) -> EdgeLimits {
        EdgeLimits {
            max_header_bytes: self.edge_max_header_bytes,
            max_headers: self.edge_max_headers,
            max_uri_bytes: self.edge_max_uri_bytes,
            header_timeout: self.edge_header_timeout,
            body_timeout: self.edge_body_timeout,
            idle_timeout: self.edge_idle_timeout,
            max_streams_per_connection: self.edge_max_streams_per_connection,
            max_streams_per_tunnel: self.edge_max_streams_per_tunnel,
        }
    }

    /// What every listener allows a peer that has not proven itself yet, as the flags set it.
    /// `http://` and the API listener's address as a local client dials it (an unspecified
    /// IP becomes loopback).
    pub fn local_api_url(&self) -> String {
        let mut addr = self.api_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{addr}")
    }

    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            max_pending_per_source: self.max_pending_per_source,
            tunnel_auth_timeout: self.tunnel_auth_timeout,
            api_header_timeout: self.api_header_timeout,
            http2_keep_alive_interval: self.http2_keep_alive_interval,
            http2_keep_alive_timeout: self.http2_keep_alive_timeout,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// `--ui-dir`, else the first `site` directory next to the executable or in its
    /// parent (so `target/debug/adit-server` finds `target/site`); `None` when neither
    /// exists.
    pub fn ui_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.ui_dir {
            return Some(dir.clone());
        }
        let exe = std::env::current_exe().ok()?;
        let beside = exe.parent()?;
        [Some(beside), beside.parent()]
            .into_iter()
            .flatten()
            .map(|dir| dir.join("site"))
            .find(|site| site.is_dir())
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

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} must be longer than zero")),
        d => Ok(d),
    }
}

fn parse_acme_challenge(text: &str) -> Result<AcmeChallenge, String> {
    text.parse()
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

    #[test]
    fn acme_is_on_with_a_directory() {
        let config = Config::try_parse_from(["adit-server"]).unwrap();
        assert!(config.acme().is_none());
        let config = Config::try_parse_from([
            "adit-server",
            "--acme-directory",
            "https://127.0.0.1:14000/dir",
            "--acme-challenge",
            "tls-alpn-01",
            "--acme-check-interval",
            "500ms",
        ])
        .unwrap();
        let acme = config.acme().unwrap();
        assert_eq!(acme.challenge, AcmeChallenge::TlsAlpn01);
        assert_eq!(acme.check_interval, Duration::from_millis(500));
        assert!(Config::try_parse_from(["adit-server", "--acme-challenge", "dns-01"]).is_err());
        assert!(Config::try_parse_from(["adit-server", "--acme-email", "a@b.c"]).is_err());
    }

    #[test]
    fn conn_limits_default_and_override() {
        let config = Config::try_parse_from(["adit-server"]).unwrap();
        assert_eq!(config.conn_limits(), ConnLimits::DEFAULT);
        let config = Config::try_parse_from([
            "adit-server",
            "--max-pending-per-source",
            "4",
            "--tunnel-auth-timeout",
            "500ms",
            "--http2-keep-alive-timeout",
            "2s",
        ])
        .unwrap();
        let limits = config.conn_limits();
        assert_eq!(limits.max_pending_per_source, 4);
        assert_eq!(limits.tunnel_auth_timeout, Duration::from_millis(500));
        assert_eq!(limits.http2_keep_alive_timeout, Duration::from_secs(2));
        for bad in [
            ["--max-pending-per-source", "0"],
            ["--tunnel-auth-timeout", "0s"],
            ["--api-header-timeout", "0s"],
        ] {
            let args = ["adit-server", bad[0], bad[1]];
            assert!(Config::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn edge_limits_default_and_override() {
        let config = Config::try_parse_from(["adit-server"]).unwrap();
        assert_eq!(config.edge_limits(), EdgeLimits::DEFAULT);
        let config = Config::try_parse_from([
            "adit-server",
            "--edge-max-header-bytes",
            "16384",
            "--edge-header-timeout",
            "5s",
            "--edge-max-streams-per-tunnel",
            "3",
        ])
        .unwrap();
        let limits = config.edge_limits();
        assert_eq!(limits.max_header_bytes, 16384);
        assert_eq!(limits.header_timeout, Duration::from_secs(5));
        assert_eq!(limits.max_streams_per_tunnel, 3);
        for bad in [
            ["--edge-header-timeout", "0s"],
            ["--edge-max-streams-per-tunnel", "0"],
            ["--edge-max-header-bytes", "100"],
        ] {
            let args = ["adit-server", bad[0], bad[1]];
            assert!(Config::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
