//! `adit-bench-server --data-dir D --edge-addr A --edge-tls-addr off|A --tunnel-addr A
//! --api-addr A [--loglevel F]`: adit-server's `App` with a `Config` built by hand.

use std::path::PathBuf;

use adit_server::{App, Config};
use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::ephemeral(PathBuf::new());
    config.data_dir = None;
    config.node_name = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data-dir" => config.data_dir = Some(value.into()),
            "--edge-addr" => config.edge_addr = value.parse()?,
            "--edge-tls-addr" if value == "off" => config.edge_tls_addr = None,
            "--edge-tls-addr" => config.edge_tls_addr = Some(value.parse()?),
            "--tunnel-addr" => config.tunnel_addr = value.parse()?,
            "--api-addr" => config.api_addr = value.parse()?,
            "--loglevel" => config.loglevel = value,
            _ => bail!("unknown flag {flag}"),
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&config.loglevel)?)
        .init();
    let app = App::build(config).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        adit_transport::signal::terminated().await;
        signal.cancel();
    });
    app.run(shutdown).await?;
    Ok(())
}
