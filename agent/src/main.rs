use std::process::ExitCode;

use adit_agent::{
    cli::{self, Cli, Command, TunnelArgs, TunnelCommand},
    config_watch::{ReloadHandle, reload_channel},
};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
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
    tokio::spawn(
        async move {
            adit_transport::signal::terminated().await;
            tracing::info!("Initiating graceful shutdown (a second signal stops at once)");
            signal.cancel();
            adit_transport::signal::terminated().await;
            tracing::warn!("Second signal: stopping without waiting for streams in flight");
            std::process::exit(1);
        }
        .instrument(tracing::info_span!("signals")),
    );
    let (reload, requests) = reload_channel();
    // Only the connector takes SIGHUP (a reload); for the other commands it ends them.
    if matches!(
        cli.command,
        Command::Tunnel(TunnelArgs {
            command: Some(TunnelCommand::Run(_)),
            ..
        })
    ) {
        tokio::spawn(reload_on_hangup(reload).instrument(tracing::info_span!("sighup")));
    }
    match cli::run_with_reload(cli, &mut std::io::stdout(), shutdown, requests).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGHUP asks the connector to re-read its config.yml at once (it also notices an edit
/// within a second on its own).
async fn reload_on_hangup(reload: ReloadHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            if reload.reload() {
                tracing::info!("Received SIGHUP: re-reading the configuration file");
            } else {
                tracing::info!(
                    "Received SIGHUP: no configuration file with ingress rules is followed; nothing to reload"
                );
            }
        }
    }
    #[cfg(not(unix))]
    drop(reload);
}
