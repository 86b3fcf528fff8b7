//! `adit service install|uninstall`: the connector as a systemd service, and the
//! `sd_notify` readiness it reports to systemd (`Type=notify`: ready once the first edge
//! connection is up).
//!
//! The token is written to a root-only file (0600) and handed to the service as a systemd
//! credential (`LoadCredential`), so it never appears in `ps`, in the unit, or in a file the
//! service's user could read outside its own run. The service runs as a dynamic user in a
//! read-only system with no privileges to gain.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use adit_core::token::TunnelToken;

use crate::{Error, config::LoadedConfig, connector::DEFAULT_GRACE_PERIOD};

/// The unit's name.
pub const UNIT: &str = "adit.service";

/// Where `adit service install` puts its files (the defaults are the system's; tests and
/// packagers name others).
#[derive(Debug, Clone)]
pub struct Layout {
    /// The unit file's folder (`/etc/systemd/system`).
    pub unit_dir: PathBuf,
    /// The token and config.yml's folder (`/etc/adit`).
    pub config_dir: PathBuf,
    /// Where the `adit` binary the unit runs is copied to (`/usr/local/bin`).
    pub bin_dir: PathBuf,
    /// Whether to run `systemctl` (reload, enable and start; or stop and disable).
    pub systemctl: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            unit_dir: PathBuf::from("/etc/systemd/system"),
            config_dir: PathBuf::from("/etc/adit"),
            bin_dir: PathBuf::from("/usr/local/bin"),
            systemctl: true,
        }
    }
}

impl Layout {
    fn unit_path(&self) -> PathBuf {
        self.unit_dir.join(UNIT)
    }

    fn token_path(&self) -> PathBuf {
        self.config_dir.join("token")
    }

    fn binary(&self) -> PathBuf {
        self.bin_dir.join("adit")
    }

    /// The config.yml (or config.yaml) in the config folder, if there is one.
    fn config_file(&self) -> Option<PathBuf> {
        ["config.yml", "config.yaml"]
            .into_iter()
            .map(|name| self.config_dir.join(name))
            .find(|path| path.exists())
    }
}

/// Installs (or reinstalls) the service: with `token`, a tunnel run by that token; without,
/// the config.yml in the config folder, whose token (`token`, `token-file` or
/// `credentials-file`) is copied to the token file.
pub fn install(layout: &Layout, token: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    let config = layout.config_file();
    // Loaded even with a token given: a config.yml that does not load fails here, not
    // in the service's first start.
    let loaded = config.as_deref().map(LoadedConfig::load).transpose()?;
    let token = match (token, &loaded) {
        (Some(token), _) => TunnelToken::parse(token.trim())?,
        (None, Some(loaded)) => token_of(loaded)?,
        (None, None) => {
            return Err(Error::Usage(format!(
                "give the tunnel's token (`adit service install <TOKEN>`, from the dashboard), or write {} first",
                layout.config_dir.join("config.yml").display()
            )));
        }
    };
    create_dir(&layout.config_dir)?;
    write_private(&layout.token_path(), token.encode().as_bytes())?;
    create_dir(&layout.bin_dir)?;
    let binary = install_binary(&layout.binary())?;
    let grace = loaded
        .as_ref()
        .and_then(|c| c.config.grace_period)
        .unwrap_or(DEFAULT_GRACE_PERIOD);
    create_dir(&layout.unit_dir)?;
    let unit = unit(&binary, &layout.token_path(), config.as_deref(), grace);
    std::fs::write(layout.unit_path(), unit).map_err(|e| Error::file(&layout.unit_path(), e))?;
    writeln!(out, "Wrote {}", layout.unit_path().display())?;
    writeln!(
        out,
        "Wrote the token to {} (root only)",
        layout.token_path().display()
    )?;
    if !layout.systemctl {
        return Ok(());
    }
    if !systemd_runs() {
        writeln!(
            out,
            "systemd is not running here: start the connector with `{} tunnel run --token-file {}`",
            binary.display(),
            layout.token_path().display()
        )?;
        return Ok(());
    }
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", UNIT])?;
    // Starts it, or (a reinstall) puts the new unit and token in force; returns once the
    // connector says it is connected (`Type=notify`), or fails saying it did not.
    systemctl(&["restart", UNIT])?;
    writeln!(
        out,
        "Started {UNIT}: `systemctl status adit` shows it, `journalctl -u adit` its logs"
    )?;
    Ok(())
}

/// Stops and removes the service, its unit and its token file; config.yml stays.
pub fn uninstall(layout: &Layout, out: &mut dyn Write) -> Result<(), Error> {
    if layout.systemctl && systemd_runs() && layout.unit_path().exists() {
        systemctl(&["disable", "--now", UNIT])?;
    }
    for path in [layout.unit_path(), layout.token_path()] {
        match std::fs::remove_file(&path) {
            Ok(()) => writeln!(out, "Removed {}", path.display())?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::file(&path, e)),
        }
    }
    if layout.systemctl && systemd_runs() {
        systemctl(&["daemon-reload"])?;
    }
    Ok(())
}

/// The token a config.yml names, as `adit tunnel run` would find it.
fn token_of(loaded: &LoadedConfig) -> Result<TunnelToken, Error> {
    loaded.config.tunnel_token()?.ok_or_else(|| Error::Config {
        path: loaded.path.clone(),
        message: "names no tunnel token (`token`, `token-file` or `credentials-file`); or give the token: `adit service install <TOKEN>`".into(),
    })
}

/// The unit: `binary` runs the tunnel whose token systemd hands it as a credential, with
/// `config` (hot-reloaded, and re-read on `systemctl reload adit`) when there is one.
fn unit(binary: &Path, token: &Path, config: Option<&Path>, grace: Duration) -> String {
    let binary = binary.display();
    let run = match config {
        Some(config) => format!("{binary} tunnel --config {} run", config.display()),
        None => format!("{binary} tunnel run"),
    };
    // Streams in flight get the grace period after SIGTERM; systemd waits a little longer.
    let stop = grace.as_secs() + 5;
    format!(
        "\
[Unit]
Description=Adit tunnel connector
Documentation=https://github.com/adit-tunnel/adit
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
LoadCredential=token:{token}
ExecStart={run} --token-file %d/token
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
TimeoutStopSec={stop}s
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
CapabilityBoundingSet=

[Install]
WantedBy=multi-user.target
",
        token = token.display(),
    )
}

fn create_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| denied(dir, e))
}

/// Writes `bytes` to a new file only its owner reads (0600), replacing any before it.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    // Removed first: an existing file would keep its looser mode.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(denied(path, e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| denied(path, e))?;
    file.write_all(bytes).map_err(|e| Error::file(path, e))
}

/// Copies the running binary to `target` (a service must not run from a home folder,
/// which it cannot read); where it is when it already runs from there.
fn install_binary(target: &Path) -> Result<PathBuf, Error> {
    let current = std::env::current_exe()?;
    if current == target {
        return Ok(current);
    }
    // Written beside and renamed: a running copy of the old binary is not disturbed.
    let fresh = target.with_extension("new");
    std::fs::copy(&current, &fresh).map_err(|e| denied(&fresh, e))?;
    std::fs::rename(&fresh, target).map_err(|e| denied(target, e))?;
    Ok(target.to_owned())
}

/// An I/O error on `path`, saying what to do when it is a permission.
fn denied(path: &Path, source: std::io::Error) -> Error {
    if source.kind() == std::io::ErrorKind::PermissionDenied {
        return Error::Usage(format!(
            "cannot write {}: installing a service needs root (sudo adit service …)",
            path.display()
        ));
    }
    Error::file(path, source)
}

/// Whether systemd manages this machine (`sd_booted`).
fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) -> Result<(), Error> {
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .map_err(|e| Error::file(Path::new("systemctl"), e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "`systemctl {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Tells systemd how the service is doing (`READY=1`, `STOPPING=1`) on the socket it
/// named in `NOTIFY_SOCKET`; nothing when it named none (not run by systemd).
pub fn notify(socket: Option<&std::ffi::OsStr>, state: &str) {
    let Some(socket) = socket else {
        return;
    };
    if let Err(e) = send_notification(socket, state) {
        tracing::warn!(error = %e, "could not tell systemd the service's state");
    }
}

fn send_notification(socket: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::{ffi::OsStrExt, net::UnixDatagram};
    let datagram = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    // `@name` is a socket in Linux's abstract namespace.
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            datagram.send_to_addr(state.as_bytes(), &addr)?;
            return Ok(());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(std::io::ErrorKind::Unsupported.into());
        }
    }
    datagram.send_to(state.as_bytes(), Path::new(socket))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_sandboxed_with_the_token_as_a_credential() {
        let unit = unit(
            Path::new("/usr/local/bin/adit"),
            Path::new("/etc/adit/token"),
            None,
            Duration::from_secs(30),
        );
        for line in [
            "Type=notify",
            "LoadCredential=token:/etc/adit/token",
            "ExecStart=/usr/local/bin/adit tunnel run --token-file %d/token",
            "Restart=on-failure",
            "DynamicUser=yes",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "TimeoutStopSec=35s",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
        }
        let with_config = super::unit(
            Path::new("/usr/local/bin/adit"),
            Path::new("/etc/adit/token"),
            Some(Path::new("/etc/adit/config.yml")),
            Duration::from_secs(10),
        );
        assert!(with_config.contains(
            "ExecStart=/usr/local/bin/adit tunnel --config /etc/adit/config.yml run --token-file"
        ));
        assert!(with_config.contains("TimeoutStopSec=15s"));
    }

    #[test]
    fn readiness_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        notify(Some(path.as_os_str()), "READY=1");
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Not run by systemd: nothing to tell, and no error.
        notify(None, "READY=1");
    }
}
