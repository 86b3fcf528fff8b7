//! `adit-server admin …`: user management from the server's own host, straight on its
//! database (no running server needed; a running one sees the change at once).

use std::io::{BufRead, Write};

use adit_core::secret::Secret;

use crate::{
    Config, Error,
    config::AdminCommand,
    control::accounts::{create_user, reset_password},
    identity::auth::{PasswordHashing, rotate_signing_keys},
    storage::Storage,
};

/// Runs one admin command. `stdin` supplies passwords for `--password-stdin`.
pub async fn run(
    config: &Config,
    command: AdminCommand,
    stdin: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), Error> {
    let storage = Storage::open(&config.database_url()).await?;
    let hasher = PasswordHashing::new();
    let read_password = |stdin: &mut dyn BufRead| -> Result<Secret, Error> {
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
    };
    match command {
        AdminCommand::Create {
            email,
            role,
            account,
            password_stdin,
        } => {
            let password = password_stdin.then(|| read_password(stdin)).transpose()?;
            let account_id = storage.ensure_account(&account).await?;
            let created =
                create_user(&storage, &hasher, account_id, &email, role, password).await?;
            writeln!(
                out,
                "Created {} ({}) in account {account}.",
                created.user.email, created.user.role
            )?;
            if let Some(password) = created.password {
                writeln!(out, "Password (shown once): {}", password.expose())?;
            }
        }
        AdminCommand::ResetPassword {
            email,
            account,
            password_stdin,
        } => {
            let password = password_stdin.then(|| read_password(stdin)).transpose()?;
            let generated =
                reset_password(&storage, &hasher, &email, account.as_deref(), password).await?;
            writeln!(out, "Password of {email} changed; its sessions have ended.")?;
            if let Some(password) = generated {
                writeln!(out, "New password (shown once): {}", password.expose())?;
            }
        }
        AdminCommand::List => {
            let users = storage.all_users().await?;
            if users.is_empty() {
                writeln!(out, "No users.")?;
            }
            for (user, account, role) in users {
                writeln!(out, "{}\t{account}\t{role}\t{}", user.email, user.id)?;
            }
        }
        AdminCommand::RotateKeys { end_sessions } => {
            rotate_signing_keys(&storage, end_sessions).await?;
            writeln!(
                out,
                "New sessions are signed with a new key{}.",
                if end_sessions {
                    "; every existing session has ended"
                } else {
                    "; existing sessions run until they expire"
                }
            )?;
        }
    }
    storage.close().await;
    Ok(())
}
