use std::process::ExitCode;

use adit_server::{App, Config, config::Command};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Config::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.loglevel)?;
    if config.log_format == "json" {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if let Some(Command::Admin(command)) = config.command.clone() {
        let stdin = std::io::stdin();
        adit_server::admin::run(&config, command, &mut stdin.lock(), &mut std::io::stdout())
            .await?;
        return Ok(());
    }
    let app = App::build(config).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        adit_transport::signal::terminated().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    app.run(shutdown).await?;
    Ok(())
}
