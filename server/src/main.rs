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
    if let Some(Command::Health { url }) = &config.command {
        let url = url.clone().unwrap_or_else(|| config.local_api_url());
        match adit_server::health::check(&url).await {
            Ok(answer) => {
                println!("{answer}");
                return Ok(());
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    if let Some(Command::Admin(command)) = config.command.clone() {
        let stdin = std::io::stdin();
        adit_server::admin::run(&config, command, &mut stdin.lock(), &mut std::io::stdout())
            .await?;
        return Ok(());
    }
    raise_open_file_limit();
    let app = App::build(config).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        adit_transport::signal::terminated().await;
        tracing::info!("shutting down (a second signal stops at once)");
        signal.cancel();
        adit_transport::signal::terminated().await;
        tracing::warn!("second signal: stopping at once");
        std::process::exit(1);
    });
    app.run(shutdown).await?;
    Ok(())
}

/// Every connection is a file descriptor, and the usual soft limit (1024) is what a flood of
/// a thousand idle sockets used to exhaust; the hard limit is what the operator allows.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        tracing::info!(open_files = %show(limit.current), "open-file limit");
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::info!(
            from = %show(limit.current),
            open_files = %show(limit.maximum),
            "raised the open-file limit to its hard limit"
        ),
        Err(e) => tracing::warn!(
            open_files = %show(limit.current),
            error = %e,
            "could not raise the open-file limit"
        ),
    }
}
