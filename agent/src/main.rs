use std::process::ExitCode;

use adit_agent::cli::{self, Cli};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(cli.effective_loglevel()) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("error: invalid log level: {e}");
            return ExitCode::FAILURE;
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        adit_transport::signal::terminated().await;
        tracing::info!("Initiating graceful shutdown (a second signal stops at once)");
        signal.cancel();
        adit_transport::signal::terminated().await;
        tracing::warn!("Second signal: stopping without waiting for streams in flight");
        std::process::exit(1);
    });
    match cli::run(cli, &mut std::io::stdout(), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
