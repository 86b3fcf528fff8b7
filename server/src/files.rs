//! Files in the data directory. Everything in it is the owner's alone: the directory is
//! 0700 and each file 0600, secrets are written 0600 before any byte lands in them, and a
//! layout left with wider permissions (an older release, a copied backup) is tightened at
//! start. No umask is changed: it is process-wide state, and the tests run servers in-process.

use std::{io::Write, path::Path};

use crate::Error;

/// Writes `contents` to `path` readable only by the owner.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // An older file may have been created with wider permissions.
    tighten(path)?;
    let mut file = options.open(path).map_err(|e| Error::file(path, e))?;
    file.write_all(contents).map_err(|e| Error::file(path, e))
}

/// Creates `path` empty and owner-only when missing, else tightens it. SQLite gives the
/// files it makes beside a database (`-wal`, `-shm`, `-journal`) the database file's mode,
/// so a database created this way never has a readable companion.
pub(crate) fn ensure_private_file(path: &Path) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    tighten(path)?;
    options.open(path).map_err(|e| Error::file(path, e))?;
    Ok(())
}

/// Creates `dir` (and missing parents, such as `~/.adit`) 0700, then tightens it and
/// everything under it: whatever the server keeps there is a secret or says where one is.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::file(dir, e))?;
    tighten_tree(dir)
}

fn tighten_tree(dir: &Path) -> Result<(), Error> {
    tighten(dir)?;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::file(dir, e))? {
        let path = entry.map_err(|e| Error::file(dir, e))?.path();
        let kind = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta.file_type(),
            // Gone since it was listed: SQLite deletes a database's `-wal` when its last
            // connection closes, which another process (or a server stopping) may do now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::file(&path, e)),
        };
        if kind.is_dir() {
            tighten_tree(&path)?;
        } else if !kind.is_symlink() {
            // A symlink's target is the operator's choice (and may be shared): left alone.
            tighten(&path)?;
        }
    }
    Ok(())
}

/// Removes group and other permissions from `path`, if it exists and has any (a file that
/// vanishes meanwhile is left to be gone).
pub(crate) fn tighten(path: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_symlink() => meta.permissions().mode(),
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::file(path, e)),
        };
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700)) {
                // Gone since it was looked at: nothing left to tighten.
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::file(path, e));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file(path, e)),
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn a_wide_tree_is_tightened_and_symlinks_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, "shared").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
        let dir = root.path().join("home/.adit/server");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&root.path().join("home/.adit")), 0o700);
        std::fs::create_dir(dir.join("sub")).unwrap();
        for (path, wide) in [
            (dir.clone(), 0o755),
            (dir.join("sub"), 0o775),
            (dir.join("sub/file"), 0o664),
            (dir.join("script"), 0o755),
        ] {
            if !path.exists() {
                std::fs::write(&path, "x").unwrap();
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wide)).unwrap();
        }
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        assert_eq!(mode(&dir.join("sub/file")), 0o600);
        assert_eq!(mode(&dir.join("script")), 0o700);
        assert_eq!(mode(&outside), 0o644);
    }

    #[test]
    fn private_files_are_made_and_kept_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adit.db");
        ensure_private_file(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::write(&path, "kept").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&path).unwrap();
        assert_eq!(
            (mode(&path), std::fs::read(&path).unwrap()),
            (0o600, b"kept".to_vec())
        );
        write_private(&path, b"new").unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
