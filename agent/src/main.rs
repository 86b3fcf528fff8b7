use std::process::ExitCode;

use adit_agent::{
    cli::{self, Cli, Command, TunnelArgs, TunnelCommand},
    config_watch::{ReloadHandle, reload_channel},
};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

// The data plane runs on worker threads of its own (`adit_transport::workers`): the main
// runtime only registers, follows the configuration and serves metrics, so one thread does.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
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

/// Logs to stderr and, with `--logfile` (or config.yml's `logfile`), appends to that file
/// too, as cloudflared does.
fn init_logging(cli: &Cli) -> Result<(), String> {
    let logging = cli.logging();
    let filter = EnvFilter::try_new(&logging.filter)
        .map_err(|e| format!("invalid log level {}: {e}", logging.filter))?;
    let json = cli.log_format == "json";
    let mut layers = vec![format_layer(json, false, std::io::stderr)];
    if let Some(path) = &logging.logfile {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
        layers.push(format_layer(json, true, std::sync::Arc::new(file)));
    }
    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .init();
    Ok(())
}

/// One log output, in the chosen format; `plain` leaves out colours (for a file).
fn format_layer<W>(json: bool, plain: bool, writer: W) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer);
    let layer = if plain { layer.with_ansi(false) } else { layer };
    if json {
        layer.json().boxed()
    } else {
        layer.boxed()
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
