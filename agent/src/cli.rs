//! The `adit` command line, with cloudflared's verbs, columns and messages where they fit.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use adit_core::{
    api, ids::ConnectorId, ingress::Ingress, secret::Secret, time::Timestamp, token::TunnelToken,
};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    access::{self, EdgeTarget},
    api_client::{ApiClient, ApiCredentials, adit_home, create_private_parent},
    config::{CredentialsFile, LoadedConfig, read_token_file},
    config_watch::{ConfigWatch, ReloadRequests, reload_channel},
    connector::{Connector, ConnectorConfig, DEFAULT_GRACE_PERIOD},
    origin::OriginProxy,
};

#[derive(Debug, Parser)]
#[command(
    name = "adit",
    version,
    about = "Adit: expose services on this host through an Adit edge, outbound only"
)]
pub struct Cli {
    /// config.yml (default: the first of config.yml and config.yaml in ~/.adit, then in
    /// /etc/adit).
    #[arg(long, global = true, env = "ADIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log level: debug, info, warn, error, fatal (default: the config file's `loglevel`,
    /// else info).
    #[arg(long, global = true, env = "ADIT_LOGLEVEL")]
    pub loglevel: Option<String>,
    /// Also append the log to this file (default: the config file's `logfile`, else none).
    #[arg(long, global = true, env = "ADIT_LOGFILE")]
    pub logfile: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, env = "ADIT_LOG_FORMAT", default_value = "pretty", value_parser = ["pretty", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, route and run tunnels.
    Tunnel(TunnelArgs),
    /// Reach TCP services and private networks through tunnels.
    Access {
        #[command(subcommand)]
        command: AccessCommand,
    },
    /// Log this machine in to an Adit server: approve it in the dashboard, and the CLI
    /// keeps an API token in ~/.adit/credentials.
    Login {
        /// The server's URL as your browser reaches it, e.g. https://adit.example.com.
        #[arg(long, env = "ADIT_API_URL")]
        server: String,
        /// Where to save the credentials (default ~/.adit/credentials).
        #[arg(long)]
        credentials_file: Option<PathBuf>,
    },
    /// Check ingress rules.
    Ingress {
        #[command(subcommand)]
        command: IngressCommand,
    },
    /// Run the connector as a systemd service (as root).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Install and start the connector as a service: with TOKEN (the dashboard's), that
    /// tunnel; without, the tunnel of /etc/adit/config.yml. The token goes to a root-only
    /// file, never into the unit or the command line of the running connector.
    Install {
        /// The tunnel token.
        #[arg(env = "ADIT_TUNNEL_TOKEN", hide_env_values = true)]
        token: Option<Secret>,
        #[command(flatten)]
        layout: LayoutArgs,
    },
    /// Stop and remove the service and its token file (config.yml stays).
    Uninstall {
        #[command(flatten)]
        layout: LayoutArgs,
    },
}

/// Where the service's files go.
#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// The unit file's folder.
    #[arg(long, default_value = "/etc/systemd/system")]
    unit_dir: PathBuf,
    /// The token and config.yml's folder.
    #[arg(long, default_value = "/etc/adit")]
    config_dir: PathBuf,
    /// Where the `adit` binary is installed for the service.
    #[arg(long, default_value = "/usr/local/bin")]
    bin_dir: PathBuf,
    /// Only write the files; do not run systemctl.
    #[arg(long)]
    no_systemctl: bool,
}

impl From<LayoutArgs> for crate::service::Layout {
    fn from(args: LayoutArgs) -> Self {
        Self {
            unit_dir: args.unit_dir,
            config_dir: args.config_dir,
            bin_dir: args.bin_dir,
            systemctl: !args.no_systemctl,
        }
    }
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The server's API, e.g. http://127.0.0.1:8000.
    #[arg(long, global = true, env = "ADIT_API_URL")]
    pub api_url: Option<String>,
    /// API token.
    #[arg(long, global = true, env = "ADIT_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct TunnelArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// With no subcommand: a quick tunnel to this origin (no account needed).
    #[arg(long)]
    pub url: Option<String>,
    /// The server that hands out quick tunnels (its API URL).
    #[arg(long, env = "ADIT_QUICK_SERVICE")]
    pub quick_service: Option<String>,
    #[command(subcommand)]
    pub command: Option<TunnelCommand>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TunnelCommand {
    /// Create a tunnel and write its credentials file.
    Create {
        name: String,
        #[arg(short, long)]
        output: Option<Output>,
        /// Where to write the credentials (default ~/.adit/<UUID>.json).
        #[arg(long, alias = "credentials-file")]
        cred_file: Option<PathBuf>,
    },
    /// List tunnels.
    List {
        #[arg(short, long)]
        output: Option<Output>,
    },
    /// Show a tunnel and its connectors.
    Info {
        tunnel: String,
        #[arg(short, long)]
        output: Option<Output>,
    },
    /// Delete a tunnel (with --force even while connectors are connected).
    Delete {
        tunnel: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Drop a tunnel's stale connectors and their connections (all, or `--connector ID`);
    /// a connector still running connects again.
    Cleanup {
        tunnel: String,
        /// Only this connector (its id, as `tunnel info` shows it).
        #[arg(long, alias = "connector-id")]
        connector: Option<String>,
    },
    /// Check ingress rules (the same as `adit ingress`).
    Ingress {
        #[command(subcommand)]
        command: IngressCommand,
    },
    /// Print a tunnel's token.
    Token {
        tunnel: String,
        /// Write a credentials file instead of printing.
        #[arg(long)]
        cred_file: Option<PathBuf>,
    },
    /// Route traffic to a tunnel.
    Route {
        #[command(subcommand)]
        command: RouteCommand,
    },
    /// Run a tunnel's connector.
    Run(RunArgs),
    /// Exit 0 when the connector serving metrics at ADDR has a connection up (for Docker
    /// HEALTHCHECK), 1 otherwise.
    Ready {
        #[arg(long)]
        metrics: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Route a public hostname (or `*.` wildcard) to the tunnel.
    Dns { tunnel: String, hostname: String },
    /// Route private networks (CIDRs) to tunnels, for `adit access socks`.
    Ip {
        #[command(subcommand)]
        command: IpRouteCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum IpRouteCommand {
    /// Route a network to a tunnel.
    Add {
        network: String,
        tunnel: String,
        comment: Option<String>,
    },
    /// List the private-network routes.
    #[command(alias = "list")]
    Show {
        #[arg(short, long)]
        output: Option<Output>,
    },
    /// Delete a route, named by its network or id.
    Delete { route: String },
    /// Show the route an IP address would take.
    Get { ip: String },
}

#[derive(Debug, Args)]
pub struct AccessArgs {
    /// The service's public hostname.
    #[arg(long, short = 'T', alias = "tunnel-host")]
    pub hostname: String,
    /// The edge to connect to (default https://HOSTNAME), e.g. http://127.0.0.1:8080.
    #[arg(long, env = "ADIT_EDGE_URL")]
    pub edge: Option<String>,
    /// CA certificate (PEM) to verify an https edge with, instead of the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Listen here (e.g. 127.0.0.1:2222) instead of using stdin/stdout.
    #[arg(long, alias = "listener", short = 'L')]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// SSH through the tunnel: `ProxyCommand adit access ssh --hostname %h`.
    Ssh(AccessArgs),
    /// Any TCP service through the tunnel, on a local listener.
    #[command(aliases = ["rdp", "smb"])]
    Tcp(AccessArgs),
    /// Print the ~/.ssh/config block for a hostname.
    SshConfig {
        #[arg(long, short = 'T')]
        hostname: String,
        #[arg(long, env = "ADIT_EDGE_URL")]
        edge: Option<String>,
    },
    /// A local SOCKS5 proxy into the private networks routed to your tunnels.
    Socks {
        #[arg(long, default_value = "127.0.0.1:1080")]
        listen: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Tunnel name or UUID (informational; the token names the tunnel).
    pub tunnel: Option<String>,
    /// The tunnel token.
    #[arg(long, env = "ADIT_TUNNEL_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// A file holding the token (keeps it out of `ps`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// A credentials file written by `adit tunnel create`.
    #[arg(long, alias = "credentials-file")]
    pub cred_file: Option<PathBuf>,
    /// Single origin for every request, when there are no ingress rules.
    #[arg(long)]
    pub url: Option<String>,
    /// Edge tunnel listener `host:port`, overriding the token's.
    #[arg(long)]
    pub edge: Option<String>,
    /// Where to serve /metrics, /ready and /healthcheck, `IP:PORT` or `localhost:PORT`
    /// (default: the config file's `metrics`, else the first free of 127.0.0.1:20241–20245).
    #[arg(long, value_parser = crate::metrics::parse_address)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Data connections to keep (default: the config file's `ha-connections`, else 4).
    #[arg(long)]
    pub ha_connections: Option<u8>,
    /// After a stop signal, how long streams in flight may take to finish, e.g. `30s` or
    /// `1m` (default: the config file's `grace-period`, else 30s). A second signal stops
    /// at once.
    #[arg(long, value_parser = adit_core::ingress::parse_go_duration)]
    pub grace_period: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum IngressCommand {
    /// Validate the ingress rules of the config file.
    Validate,
    /// Show which rule a URL matches (0-based index, as cloudflared prints it).
    Rule { url: String },
}

/// Where the log goes and how much of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Logging {
    /// A tracing filter: a level, or directives.
    pub filter: String,
    /// A file the log is appended to, besides stderr.
    pub logfile: Option<PathBuf>,
}

impl Cli {
    /// The log settings: each flag (or its `ADIT_*` variable), else the config file's key,
    /// else info and no file. A config file that does not load is reported by the command
    /// itself, not here.
    pub fn logging(&self) -> Logging {
        let from_file = (self.loglevel.is_none() || self.logfile.is_none())
            .then(|| LoadedConfig::find(self.config.as_deref(), &adit_home()).ok())
            .flatten()
            .flatten()
            .map(|loaded| loaded.config);
        let level = self
            .loglevel
            .clone()
            .or_else(|| from_file.as_ref().and_then(|c| c.loglevel.clone()))
            .unwrap_or_else(|| "info".to_owned());
        Logging {
            // cloudflared's highest level; tracing has none above error.
            filter: if level == "fatal" {
                "error".to_owned()
            } else {
                level
            },
            logfile: self
                .logfile
                .clone()
                .or_else(|| from_file.and_then(|c| c.logfile)),
        }
    }
}

/// Runs one command, writing what it prints to `out`.
pub async fn run(
    cli: Cli,
    out: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> Result<(), Error> {
    run_with_reload(cli, out, shutdown, reload_channel().1).await
}

/// [`run`], with `reload` asking `adit tunnel run` to re-read its config.yml at once (what
/// `main` sends on SIGHUP).
pub async fn run_with_reload(
    cli: Cli,
    out: &mut (dyn Write + Send),
    shutdown: CancellationToken,
    reload: ReloadRequests,
) -> Result<(), Error> {
    let home = adit_home();
    match cli.command {
        Command::Ingress { command }
        | Command::Tunnel(TunnelArgs {
            command: Some(TunnelCommand::Ingress { command }),
            ..
        }) => ingress(command, cli.config.as_deref(), &home, out),
        Command::Login {
            server,
            credentials_file,
        } => {
            let path = credentials_file.unwrap_or_else(|| home.join("credentials"));
            crate::login::login(&server, &path, &home, out, shutdown).await
        }
        Command::Access { command } => access(command, &home, out, shutdown).await,
        Command::Service { command } => match command {
            ServiceCommand::Install { token, layout } => crate::service::install(
                &layout.into(),
                token.as_ref().map(Secret::expose),
                out,
            ),
            ServiceCommand::Uninstall { layout } => crate::service::uninstall(&layout.into(), out),
        },
        Command::Tunnel(args) => match args.command {
            Some(TunnelCommand::Run(run)) => {
                run_connector(run, cli.config.as_deref(), &home, shutdown, reload).await
            }
            Some(TunnelCommand::Ready { metrics }) => crate::metrics::check_ready(&metrics).await,
            Some(command) => {
                let credentials =
                    ApiCredentials::resolve(args.api.api_url, args.api.api_token, &home)?;
                manage(command, &ApiClient::new(credentials)?, &home, out).await
            }
            None => match args.url {
                Some(url) => quick_tunnel(&url, args.quick_service, &home, out, shutdown).await,
                None => Err(Error::Usage(
                    "say what to do: `adit tunnel --url http://localhost:8080` for a quick tunnel, or a subcommand (see --help)".into(),
                )),
            },
        },
    }
}

async fn access(
    command: AccessCommand,
    home: &Path,
    out: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> Result<(), Error> {
    match command {
        AccessCommand::Ssh(args) | AccessCommand::Tcp(args) => {
            let target = EdgeTarget::new(&args.hostname, args.edge.as_deref(), args.ca_file)?;
            match args.url {
                Some(listen) => {
                    let listener =
                        tokio::net::TcpListener::bind(access::listen_address(&listen)?).await?;
                    access::serve_tcp(listener, target, shutdown).await
                }
                None => access::stdio(&target).await,
            }
        }
        AccessCommand::SshConfig { hostname, edge } => {
            let program = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "adit".into());
            write!(
                out,
                "{}",
                access::ssh_config(&hostname, edge.as_deref(), &program)
            )?;
            Ok(())
        }
        AccessCommand::Socks { listen, api } => {
            let credentials = ApiCredentials::resolve(api.api_url, api.api_token, home)?;
            let listener = tokio::net::TcpListener::bind(access::listen_address(&listen)?).await?;
            access::serve_socks(listener, credentials, shutdown).await
        }
    }
}

/// `adit tunnel --url URL`: an ephemeral tunnel on a random hostname, gone when we stop.
async fn quick_tunnel(
    url: &str,
    quick_service: Option<String>,
    home: &Path,
    out: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let ingress = Ingress::single(url)?;
    let service = quick_service
        .or_else(|| {
            std::fs::read_to_string(home.join("server").join("api-url"))
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .ok_or_else(|| {
            Error::Usage(
                "no quick-tunnel service: pass --quick-service URL (or ADIT_QUICK_SERVICE)".into(),
            )
        })?;
    let quick = ApiClient::new(ApiCredentials {
        url: service.trim_end_matches('/').to_owned(),
        token: String::new(),
    })?
    .create_quick_tunnel()
    .await?;
    let line = format!(
        "Your quick Tunnel has been created! Visit it at: http://{}",
        quick.hostname
    );
    let bar = "-".repeat(line.len() + 4);
    writeln!(
        out,
        "Thank you for trying Adit quick tunnels. They are for experiments: no uptime promise, and the tunnel is removed when this process stops.\n+{bar}+\n|  {line}  |\n+{bar}+"
    )?;
    out.flush()?;
    let connector_id = ConnectorId::random();
    let connector = Connector::new(ConnectorConfig {
        token: TunnelToken::parse(&quick.token)?,
        endpoint: None,
        proxy: OriginProxy::new(ingress)?,
        ha_connections: 1,
        connector_id,
        grace_period: DEFAULT_GRACE_PERIOD,
    })?;
    run_with_metrics(connector, None, connector_id, shutdown).await
}

fn config_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::file(path, e)
}

fn ingress(
    command: IngressCommand,
    config: Option<&Path>,
    home: &Path,
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    let loaded = LoadedConfig::find(config, home)?
        .ok_or_else(|| Error::Usage("no config file found; pass --config config.yml".into()))?;
    let path = loaded.path.display().to_string();
    match command {
        IngressCommand::Validate => {
            writeln!(out, "Validating rules from {path}")?;
            for warning in &loaded.warnings {
                writeln!(out, "{warning}")?;
            }
            match loaded.ingress(None)? {
                Some(_) => writeln!(out, "OK")?,
                None => {
                    return Err(Error::Usage(
                        "Validation failed: The config file doesn't contain any ingress rules"
                            .into(),
                    ));
                }
            }
        }
        IngressCommand::Rule { url } => {
            let ingress = loaded.ingress(None)?.ok_or_else(|| {
                Error::Usage("The config file doesn't contain any ingress rules".into())
            })?;
            let with_scheme = if url.contains("://") {
                url
            } else {
                format!("https://{url}")
            };
            let parsed = url::Url::parse(&with_scheme)
                .map_err(|e| Error::Usage(format!("{with_scheme} is not a URL: {e}")))?;
            let host = parsed.host_str().unwrap_or_default();
            let (index, rule) = ingress.find(host, parsed.path());
            writeln!(out, "Using rules from {path}")?;
            writeln!(out, "Matched rule #{index}")?;
            if let Some(hostname) = &rule.hostname {
                writeln!(out, "\thostname: {hostname}")?;
            }
            if let Some(p) = rule.path_str() {
                writeln!(out, "\tpath: {p}")?;
            }
            writeln!(out, "\tservice: {}", rule.service)?;
        }
    }
    Ok(())
}

fn json(out: &mut (dyn Write + Send), value: &impl serde::Serialize) -> Result<(), Error> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| Error::Usage(e.to_string()))?;
    writeln!(out)?;
    Ok(())
}

/// A time as the tables print it: its RFC 3339 text up to any fraction of a second
/// (`2026-11-25T01:33:07.5Z` prints `2026-11-25T01:33:07`; a whole second keeps its `Z`).
fn to_the_second(at: Timestamp) -> String {
    let text = at.to_string();
    match text.split_once('.') {
        Some((whole, _)) => whole.to_owned(),
        None => text,
    }
}

/// `2xedge-a, 1xedge-b`: connections per edge node, as cloudflared prints colos.
fn edge_summary(connectors: &[api::Connector]) -> String {
    let mut per_edge: BTreeMap<&str, usize> = BTreeMap::new();
    for c in connectors {
        for k in &c.connections {
            *per_edge.entry(k.edge.as_str()).or_default() += 1;
        }
    }
    per_edge
        .iter()
        .map(|(edge, n)| format!("{n}x{edge}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_credentials(
    path: &Path,
    home: &Path,
    token: &str,
    tunnel: &api::Tunnel,
) -> Result<(), Error> {
    create_private_parent(path, home)?;
    let body = serde_json::to_vec_pretty(&CredentialsFile {
        tunnel_token: token.to_owned(),
        tunnel_id: tunnel.id.to_string(),
    })
    .map_err(|e| Error::Usage(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o400);
    let mut file = options.open(path).map_err(config_error(path))?;
    file.write_all(&body).map_err(config_error(path))
}

async fn manage(
    command: TunnelCommand,
    api: &ApiClient,
    home: &Path,
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    match command {
        TunnelCommand::Create {
            name,
            output,
            cred_file,
        } => {
            let tunnel = api.create_tunnel(&name).await?;
            let token = api.tunnel_token(&tunnel.id.to_string()).await?;
            let path = cred_file.unwrap_or_else(|| home.join(format!("{}.json", tunnel.id)));
            if let Err(e) = write_credentials(&path, home, &token, &tunnel) {
                // As cloudflared: a tunnel whose credentials were lost is deleted again.
                let _ = api.delete_tunnel(&tunnel.id.to_string(), true).await;
                return Err(e);
            }
            if output == Some(Output::Json) {
                return json(out, &tunnel);
            }
            writeln!(
                out,
                "Tunnel credentials written to {}. Keep this file secret. To revoke these credentials, delete the tunnel.\n",
                path.display()
            )?;
            writeln!(out, "Created tunnel {} with id {}", tunnel.name, tunnel.id)?;
        }
        TunnelCommand::List { output } => {
            let tunnels = api.list_tunnels().await?;
            if output == Some(Output::Json) {
                return json(out, &tunnels);
            }
            if tunnels.is_empty() {
                writeln!(
                    out,
                    "No tunnels were found for the given filter flags. You can use 'adit tunnel create' to create a tunnel."
                )?;
                return Ok(());
            }
            writeln!(
                out,
                "You can obtain more detailed information for each tunnel with `adit tunnel info <name/uuid>`"
            )?;
            writeln!(
                out,
                "{:<36}  {:<24}  {:<20}  {:<9}  CONNECTIONS",
                "ID", "NAME", "CREATED", "STATUS"
            )?;
            for t in tunnels {
                let connectors = api.connectors(&t.id.to_string()).await?;
                writeln!(
                    out,
                    "{:<36}  {:<24}  {:<20}  {:<9}  {}",
                    t.id,
                    t.name,
                    to_the_second(t.created_at),
                    t.status.as_str(),
                    edge_summary(&connectors)
                )?;
            }
        }
        TunnelCommand::Info { tunnel, output } => {
            let t = api.tunnel(&tunnel).await?;
            let connectors = api.connectors(&t.id.to_string()).await?;
            if output == Some(Output::Json) {
                return json(
                    out,
                    &serde_json::json!({ "tunnel": t, "connectors": connectors }),
                );
            }
            writeln!(
                out,
                "NAME:     {}\nID:       {}\nCREATED:  {}\nSTATUS:   {}\nROUTES:   {}\n",
                t.name,
                t.id,
                t.created_at,
                t.status.as_str(),
                t.routes.join(", ")
            )?;
            if connectors.is_empty() {
                writeln!(
                    out,
                    "Your tunnel {} does not have any active connection.",
                    t.id
                )?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<36}  {:<20}  {:<14}  {:<8}  {:<15}  EDGE",
                "CONNECTOR ID", "CREATED", "ARCHITECTURE", "VERSION", "ORIGIN IP"
            )?;
            for c in &connectors {
                let origin = c.connections.first().map_or("", |k| k.origin_ip.as_str());
                writeln!(
                    out,
                    "{:<36}  {:<20}  {:<14}  {:<8}  {:<15}  {}",
                    c.id,
                    to_the_second(c.registered_at),
                    c.arch,
                    c.version,
                    origin,
                    edge_summary(std::slice::from_ref(c))
                )?;
            }
        }
        TunnelCommand::Delete { tunnel, force } => {
            let t = api.delete_tunnel(&tunnel, force).await?;
            writeln!(out, "Deleted tunnel {} with id {}", t.name, t.id)?;
        }
        TunnelCommand::Cleanup { tunnel, connector } => {
            let done = api
                .cleanup_connections(&tunnel, connector.as_deref())
                .await?;
            writeln!(
                out,
                "Cleaned up {} connector(s) of tunnel {tunnel}",
                done.connectors
            )?;
        }
        TunnelCommand::Token { tunnel, cred_file } => {
            let t = api.tunnel(&tunnel).await?;
            let token = api.tunnel_token(&t.id.to_string()).await?;
            match cred_file {
                Some(path) => write_credentials(&path, home, &token, &t)?,
                None => writeln!(out, "{token}")?,
            }
        }
        TunnelCommand::Route {
            command: RouteCommand::Dns { tunnel, hostname },
        } => match api.create_route(&tunnel, &hostname).await {
            Ok(route) => writeln!(
                out,
                "Added route {} which will route to tunnel {}",
                route.hostname, route.tunnel_id
            )?,
            Err(Error::Api {
                status: 409,
                message,
                ..
            }) if message.contains("already configured to route to your tunnel") => {
                writeln!(out, "{message}")?;
            }
            Err(e) => return Err(e),
        },
        TunnelCommand::Route {
            command: RouteCommand::Ip { command },
        } => ip_routes(command, api, out).await?,
        TunnelCommand::Run(_) | TunnelCommand::Ready { .. } | TunnelCommand::Ingress { .. } => {
            return Err(Error::Usage("not a management command".into()));
        }
    }
    Ok(())
}

async fn ip_routes(
    command: IpRouteCommand,
    api: &ApiClient,
    out: &mut (dyn Write + Send),
) -> Result<(), Error> {
    let table = |out: &mut (dyn Write + Send), routes: &[api::IpRoute]| -> Result<(), Error> {
        writeln!(
            out,
            "{:<36}  {:<20}  {:<20}  {:<36}  {:<16}  CREATED",
            "ID", "NETWORK", "COMMENT", "TUNNEL ID", "TUNNEL NAME"
        )?;
        for r in routes {
            writeln!(
                out,
                "{:<36}  {:<20}  {:<20}  {:<36}  {:<16}  {}",
                r.id,
                r.network,
                r.comment,
                r.tunnel_id,
                r.tunnel_name,
                to_the_second(r.created_at)
            )?;
        }
        Ok(())
    };
    match command {
        IpRouteCommand::Add {
            network,
            tunnel,
            comment,
        } => {
            let route = api
                .create_ip_route(&tunnel, &network, comment.as_deref().unwrap_or(""))
                .await?;
            writeln!(
                out,
                "Successfully added route for {} over tunnel {}",
                route.network, route.tunnel_id
            )?;
        }
        IpRouteCommand::Show { output } => {
            let routes = api.ip_routes().await?;
            if output == Some(Output::Json) {
                return json(out, &routes);
            }
            if routes.is_empty() {
                writeln!(
                    out,
                    "No routes were found. Add one with `adit tunnel route ip add CIDR TUNNEL`."
                )?;
            } else {
                table(out, &routes)?;
            }
        }
        IpRouteCommand::Delete { route } => {
            api.delete_ip_route(&route).await?;
            writeln!(out, "Successfully deleted route {route}")?;
        }
        IpRouteCommand::Get { ip } => match api.match_ip_route(&ip).await {
            Ok(route) => table(out, std::slice::from_ref(&route))?,
            Err(Error::Api { status: 404, .. }) => writeln!(out, "No route matches the IP {ip}")?,
            Err(e) => return Err(e),
        },
    }
    Ok(())
}

/// The token by precedence: --token (ADIT_TUNNEL_TOKEN), --token-file, --cred-file, then the
/// config file's token, token-file, credentials-file.
fn resolve_token(run: &RunArgs, loaded: Option<&LoadedConfig>) -> Result<TunnelToken, Error> {
    if let Some(token) = &run.token {
        return Ok(TunnelToken::parse(token.expose().trim())?);
    }
    if let Some(path) = &run.token_file {
        return read_token_file(path);
    }
    if let Some(path) = &run.cred_file {
        return CredentialsFile::read_token(path);
    }
    if let Some(token) = loaded
        .map(|l| l.config.tunnel_token())
        .transpose()?
        .flatten()
    {
        return Ok(token);
    }
    Err(Error::Usage(
        "no tunnel token: pass --token, --token-file or --cred-file, or set token / credentials-file in config.yml".into(),
    ))
}

async fn run_connector(
    run: RunArgs,
    config: Option<&Path>,
    home: &Path,
    shutdown: CancellationToken,
    reload: ReloadRequests,
) -> Result<(), Error> {
    let loaded = LoadedConfig::find(config, home)?;
    for warning in loaded.iter().flat_map(|loaded| &loaded.warnings) {
        tracing::warn!("{warning}");
    }
    let token = resolve_token(&run, loaded.as_ref())?;
    let ingress = match &loaded {
        Some(loaded) => loaded.ingress(run.url.as_deref())?,
        None => run.url.as_deref().map(Ingress::single).transpose()?,
    };
    // Without rules of its own the connector serves a remotely managed tunnel's
    // configuration, or (told at registration that the tunnel is local) answers 503.
    let has_rules = ingress.is_some();
    let proxy = match ingress {
        Some(ingress) => OriginProxy::new(ingress)?,
        None => OriginProxy::without_rules(),
    };
    let ha_connections = run
        .ha_connections
        .or_else(|| loaded.as_ref().and_then(|l| l.config.ha_connections))
        .unwrap_or(4)
        .clamp(1, 16);
    let grace_period = run
        .grace_period
        .or_else(|| loaded.as_ref().and_then(|l| l.config.grace_period))
        .unwrap_or(DEFAULT_GRACE_PERIOD);
    let metrics = run
        .metrics
        .or_else(|| loaded.as_ref().and_then(|l| l.config.metrics));
    let connector_id = ConnectorId::random();
    tracing::info!(%connector_id, "Generated Connector ID");
    // A config.yml whose rules are in force is followed: each edit is a new version.
    let watch = loaded
        .filter(|_| has_rules)
        .map(|loaded| ConfigWatch::new(loaded, run.url.clone(), proxy.clone()));
    let connector = Connector::new(ConnectorConfig {
        token,
        endpoint: run.edge,
        proxy,
        ha_connections,
        connector_id,
        grace_period,
    })?;
    // Stopped with the connector, however it ends (its metrics listener may fail to bind).
    let stop_watching = shutdown.child_token();
    let watching = watch.map(|watch| watch.spawn(reload, stop_watching.clone(), connector_id));
    let result = run_with_metrics(connector, metrics, connector_id, shutdown).await;
    stop_watching.cancel();
    if let Some(task) = watching {
        let _ = task.await;
    }
    result
}

/// Runs a connector with its metrics server beside it.
async fn run_with_metrics(
    connector: Connector,
    metrics_addr: Option<std::net::SocketAddr>,
    connector_id: ConnectorId,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let listener = crate::metrics::bind(metrics_addr).await?;
    let server = tokio::spawn(crate::metrics::serve(
        listener,
        connector.metrics(),
        connector_id,
        shutdown.clone(),
    ));
    // Run by systemd (`Type=notify`): ready once the first edge connection is up.
    let notify_socket = std::env::var_os("NOTIFY_SOCKET");
    let mut connected = connector.connected_once();
    let run = connector.run(shutdown.clone());
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        // The watch's guard is let go of at once: held, it would block the connector.
        up = async { connected.wait_for(|up| *up).await.is_ok() } => {
            if up {
                crate::service::notify(notify_socket.as_deref(), "READY=1");
            }
            run.await
        }
    };
    crate::service::notify(notify_socket.as_deref(), "STOPPING=1");
    shutdown.cancel();
    let _ = server.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses_cloudflared_shapes() {
        let cli =
            Cli::try_parse_from(["adit", "tunnel", "--config", "c.yml", "run", "--token", "x"])
                .unwrap();
        assert_eq!(cli.config.as_deref(), Some(Path::new("c.yml")));
        assert!(matches!(
            cli.command,
            Command::Tunnel(TunnelArgs {
                command: Some(TunnelCommand::Run(_)),
                ..
            })
        ));
        let cli = Cli::try_parse_from(["adit", "tunnel", "route", "dns", "t", "app.example.com"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Tunnel(TunnelArgs {
                command: Some(TunnelCommand::Route { .. }),
                ..
            })
        ));
        let cli =
            Cli::try_parse_from(["adit", "ingress", "rule", "https://x.example.com/a"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Ingress {
                command: IngressCommand::Rule { .. }
            }
        ));
        let cli = Cli::try_parse_from(["adit", "tunnel", "ingress", "validate"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tunnel(TunnelArgs {
                command: Some(TunnelCommand::Ingress {
                    command: IngressCommand::Validate
                }),
                ..
            })
        ));
        let cli = Cli::try_parse_from([
            "adit",
            "tunnel",
            "run",
            "--metrics",
            "localhost:2000",
            "--token",
            "x",
        ])
        .unwrap();
        let Command::Tunnel(TunnelArgs {
            command: Some(TunnelCommand::Run(run)),
            ..
        }) = cli.command
        else {
            panic!("not run")
        };
        assert_eq!(run.metrics, Some("127.0.0.1:2000".parse().unwrap()));
    }

    #[test]
    fn log_flags_win_over_the_file_and_fatal_is_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, "loglevel: fatal\nlogfile: /tmp/from-file.log\n").unwrap();
        let config = path.to_str().unwrap();
        let cli = Cli::try_parse_from(["adit", "--config", config, "ingress", "validate"]).unwrap();
        assert_eq!(
            cli.logging(),
            Logging {
                filter: "error".into(),
                logfile: Some(PathBuf::from("/tmp/from-file.log")),
            }
        );
        let cli = Cli::try_parse_from([
            "adit",
            "--config",
            config,
            "--loglevel",
            "debug",
            "--logfile",
            "flag.log",
            "ingress",
            "validate",
        ])
        .unwrap();
        assert_eq!(
            cli.logging(),
            Logging {
                filter: "debug".into(),
                logfile: Some(PathBuf::from("flag.log")),
            }
        );
    }

    #[test]
    fn tables_print_times_to_the_second_as_before() {
        let at = |ms| to_the_second(Timestamp::from_unix_ms(ms));
        assert_eq!(at(1_795_570_387_000), "2026-11-25T01:33:07Z");
        assert_eq!(at(1_795_570_387_500), "2026-11-25T01:33:07");
    }
}
