//! `adit login --server URL`: gets an API token for this machine by device authorisation
//! (RFC 8628). It prints a link and a short code; a user logged in to the dashboard opens
//! the link, checks the code and approves; the token (with that user's role) is saved to
//! `~/.adit/credentials` (0600), where every other command finds it.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use adit_core::api;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    api_client::{ApiClient, CredentialsFile, create_private_parent},
};

/// RFC 8628 §3.5: after `slow_down`, poll this much less often.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Runs the whole login, writing the credentials to `credentials_file`; `home` is `~/.adit`.
pub async fn login(
    server: &str,
    credentials_file: &Path,
    home: &Path,
    out: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let server = server.trim_end_matches('/');
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(Error::Usage(format!(
            "--server must be the server's URL, e.g. https://adit.example.com (got {server:?})"
        )));
    }
    let client = ApiClient::anonymous(server)?;
    let started = client
        .start_device_login(&format!("adit on {}", crate::connector::host_name()))
        .await?;
    writeln!(
        out,
        "To log in, open this link in a browser where you are logged in to the Adit dashboard:\n\n    {server}{}\n\nand check that it shows the code {}. Waiting for approval (the code expires in {} minutes)...",
        started.verification_path_complete,
        started.user_code,
        started.expires_in.div_ceil(60),
    )?;
    out.flush()?;
    let token = poll(&client, &started, &shutdown).await?;
    save(credentials_file, home, server, &token.api_token.token)?;
    writeln!(
        out,
        "You are logged in as {} in the account {} (role {}). The API token {:?} was saved to {}.",
        token.email,
        token.account,
        token.role,
        token.api_token.info.name,
        credentials_file.display()
    )?;
    Ok(())
}

async fn poll(
    client: &ApiClient,
    started: &api::DeviceLogin,
    shutdown: &CancellationToken,
) -> Result<api::DeviceToken, Error> {
    let mut interval = Duration::from_secs(started.interval.max(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(started.expires_in);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Err(Error::Usage("login cancelled".into())),
            () = tokio::time::sleep_until((tokio::time::Instant::now() + interval).min(deadline)) => {}
        }
        match client.redeem_device_code(&started.device_code).await {
            Ok(token) => return Ok(token),
            Err(Error::Api { code, .. }) if code == "authorization_pending" => {}
            Err(Error::Api { code, .. }) if code == "slow_down" => interval += SLOW_DOWN_STEP,
            Err(Error::Api { code, .. }) if code == "access_denied" => {
                return Err(Error::Usage(
                    "the login was denied in the dashboard; nothing was saved".into(),
                ));
            }
            Err(Error::Api { code, .. }) if code == "expired_token" => {
                return Err(Error::Usage(
                    "the login code expired before it was approved; run adit login again".into(),
                ));
            }
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Usage(
                "the login code expired before it was approved; run adit login again".into(),
            ));
        }
    }
}

/// Writes the credentials readable by the owner only, replacing the file in one step so a
/// crash leaves the old file or the new one, never half of either.
fn save(path: &Path, home: &Path, server: &str, token: &str) -> Result<(), Error> {
    let body = serde_json::to_vec_pretty(&CredentialsFile {
        api_url: server.to_owned(),
        api_token: token.to_owned(),
    })
    .map_err(|e| Error::Usage(e.to_string()))?;
    create_private_parent(path, home)?;
    let temporary = PathBuf::from(format!("{}.new", path.display()));
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .map_err(|e| Error::file(&temporary, e))?;
    file.write_all(&body)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::file(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| Error::file(path, e))
}
