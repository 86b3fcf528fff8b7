//! `cargo xtask ui`: the dashboard's browser bundle. Builds `adit-dashboard-hydrate` for
//! `wasm32-unknown-unknown` and turns it, with wasm-bindgen as a library, into
//! `<target>/site/pkg/dash.js` + `dash_bg.wasm`, where adit-server finds it (`--ui-dir`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Instant, SystemTime},
};

use anyhow::{Context, Result, bail};

use crate::{cargo_status, step};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const OUT_NAME: &str = "dash";
/// Written next to the bundle: which profile built it, so a dev bundle is not taken for a
/// release one or the other way round.
const PROFILE_STAMP: &str = ".profile";

/// Which build of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Quick to build, large (several MB), with debug names: what tests and `run` use.
    Dev,
    /// `wasm-release` (size-optimised, LTO, no name section); `WASM_OPT=path/to/wasm-opt`
    /// shrinks it further.
    Release,
}

impl Profile {
    fn cargo_profile(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Release => "wasm-release",
        }
    }

    /// The directory cargo writes the profile's output to.
    fn dir(self) -> &'static str {
        match self {
            Self::Dev => "debug",
            Self::Release => "wasm-release",
        }
    }
}

/// Where things go: all under the cargo target directory.
pub(crate) struct Paths {
    root: PathBuf,
    /// `<target>/ui`: the wasm build's own target directory, so it never waits on the
    /// native build's lock (build scripts of a cross build go to `<target>/debug` too).
    wasm_target: PathBuf,
    /// `<target>/site`: what `--ui-dir` points at; adit-server finds it by default.
    site: PathBuf,
}

impl Paths {
    pub(crate) fn new(root: &Path) -> Self {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), |dir| root.join(dir));
        Self {
            root: root.to_path_buf(),
            wasm_target: target.join("ui"),
            site: target.join("site"),
        }
    }

    fn pkg(&self) -> PathBuf {
        self.site.join("pkg")
    }
}

/// Why the bundle was not built.
#[derive(Debug)]
pub(crate) enum Skipped {
    /// The toolchain has no wasm32 target and rustup could not add it (offline, no rustup).
    NoWasmTarget(String),
}

/// Builds the bundle unless it is newer than everything it is made from; `force` builds
/// anyway (cargo then rebuilds only what changed).
pub(crate) fn build(paths: &Paths, profile: Profile, force: bool) -> Result<Result<(), Skipped>> {
    if !force && is_fresh(paths, profile)? {
        step(&format!(
            "dashboard bundle is up to date ({})",
            paths.pkg().display()
        ));
        return Ok(Ok(()));
    }
    if let Err(reason) = ensure_wasm_target() {
        return Ok(Err(Skipped::NoWasmTarget(reason)));
    }
    let started = Instant::now();
    let target_dir = paths.wasm_target.to_string_lossy().into_owned();
    let status = cargo_status(
        &paths.root,
        &[
            "build",
            "--locked",
            "-p",
            "adit-dashboard-hydrate",
            "--lib",
            "--target",
            WASM_TARGET,
            "--profile",
            profile.cargo_profile(),
            "--target-dir",
            &target_dir,
        ],
    )?;
    if !status.success() {
        bail!("the dashboard's wasm did not build ({status})");
    }
    let wasm = paths
        .wasm_target
        .join(WASM_TARGET)
        .join(profile.dir())
        .join("adit_dashboard_hydrate.wasm");
    bindgen(&wasm, &paths.pkg(), profile)?;
    let bytes = fs::metadata(paths.pkg().join(format!("{OUT_NAME}_bg.wasm")))
        .map(|m| m.len())
        .unwrap_or_default();
    step(&format!(
        "dashboard bundle in {} ({} KiB of wasm, {:.1} s)",
        paths.pkg().display(),
        bytes / 1024,
        started.elapsed().as_secs_f64()
    ));
    Ok(Ok(()))
}

/// wasm-bindgen's JavaScript glue and the processed wasm, written to a fresh directory that
/// then replaces `pkg`, so a failed run never leaves half a bundle.
fn bindgen(wasm: &Path, pkg: &Path, profile: Profile) -> Result<()> {
    let release = profile == Profile::Release;
    let fresh = pkg.with_extension("new");
    remove_dir(&fresh)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(wasm)
        .out_name(OUT_NAME)
        .web(true)?
        .typescript(false)
        .debug(!release)
        .remove_name_section(release)
        .generate(&fresh)
        .with_context(|| format!("wasm-bindgen could not process {}", wasm.display()))?;
    if release && let Some(wasm_opt) = std::env::var_os("WASM_OPT") {
        let out = fresh.join(format!("{OUT_NAME}_bg.wasm"));
        step(&format!(
            "{} -Oz {}",
            wasm_opt.to_string_lossy(),
            out.display()
        ));
        let status = Command::new(&wasm_opt)
            .arg("-Oz")
            .args(["--enable-bulk-memory", "--enable-nontrapping-float-to-int"])
            .arg(&out)
            .arg("-o")
            .arg(&out)
            .status()
            .context("could not start $WASM_OPT")?;
        if !status.success() {
            bail!("wasm-opt failed ({status})");
        }
    }
    fs::write(fresh.join(PROFILE_STAMP), profile.cargo_profile())
        .with_context(|| format!("could not write to {}", fresh.display()))?;
    remove_dir(pkg)?;
    fs::rename(&fresh, pkg)
        .with_context(|| format!("could not move {} to {}", fresh.display(), pkg.display()))
}

fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("could not remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Whether the bundle exists, was built with `profile`, and is newer than every file it is
/// made from: the dashboard, the shared types in core/ (the page data's shape), the
/// workspace manifest and the lock file.
fn is_fresh(paths: &Paths, profile: Profile) -> Result<bool> {
    let pkg = paths.pkg();
    let stamp = fs::read_to_string(pkg.join(PROFILE_STAMP)).unwrap_or_default();
    if stamp != profile.cargo_profile() {
        return Ok(false);
    }
    let built = ["dash.js", "dash_bg.wasm"]
        .iter()
        .map(|file| modified(&pkg.join(file)))
        .collect::<Option<Vec<_>>>()
        .and_then(|times| times.into_iter().min());
    let Some(built) = built else {
        return Ok(false);
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for file in ["Cargo.lock", "Cargo.toml"] {
        newest = newest.max(modified(&paths.root.join(file)).unwrap_or(newest));
    }
    for dir in ["dashboard", "core"] {
        newest = newest.max(newest_in(&paths.root.join(dir))?);
    }
    Ok(newest <= built)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The latest modification time of any file under `dir`.
fn newest_in(dir: &Path) -> Result<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let entries = fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("could not read {}", dir.display()))?;
        let kind = entry.file_type()?;
        let path = entry.path();
        let time = if kind.is_dir() {
            newest_in(&path)?
        } else {
            modified(&path).unwrap_or(newest)
        };
        newest = newest.max(time);
    }
    Ok(newest)
}

/// Adds the wasm32 target with rustup when the toolchain lacks it; `Err` says why it
/// cannot be had.
fn ensure_wasm_target() -> std::result::Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.trim() == WASM_TARGET)
            {
                return Ok(());
            }
        }
        // No rustup: a toolchain installed otherwise may have the target; cargo will tell.
        _ => return Ok(()),
    }
    step(&format!("rustup target add {WASM_TARGET}"));
    match Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!(
            "`rustup target add {WASM_TARGET}` failed ({status})"
        )),
        Err(e) => Err(format!("could not run rustup: {e}")),
    }
}

/// `cargo xtask ui [--release] [--force]`.
pub(crate) fn command(root: &Path, args: &[String]) -> Result<()> {
    let mut profile = Profile::Dev;
    let mut force = false;
    for arg in args {
        match arg.as_str() {
            "--release" => profile = Profile::Release,
            "--force" => force = true,
            other => bail!("`cargo xtask ui` takes --release and --force, not {other:?}"),
        }
    }
    match build(&Paths::new(root), profile, force)? {
        Ok(()) => Ok(()),
        Err(Skipped::NoWasmTarget(reason)) => bail!("{reason}"),
    }
}

/// Before `run` and `test`: the bundle, when stale. Without a wasm target the pages are
/// still served, server-rendered only, so this says so loudly and goes on.
pub(crate) fn before(root: &Path) -> Result<()> {
    if let Err(Skipped::NoWasmTarget(reason)) = build(&Paths::new(root), Profile::Dev, false)? {
        println!("SKIPPED: the dashboard bundle ({reason}); pages are served server-rendered only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A workspace-shaped directory with a bundle built "now".
    fn fixture(name: &str) -> (PathBuf, Paths) {
        let root = std::env::temp_dir().join(format!("xtask-ui-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for dir in ["dashboard/src", "core/src", "site/pkg"] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "Cargo.toml",
            "Cargo.lock",
            "dashboard/src/lib.rs",
            "core/src/lib.rs",
        ] {
            fs::write(root.join(file), "").unwrap();
        }
        let paths = Paths {
            root: root.clone(),
            wasm_target: root.join("target/ui"),
            site: root.join("site"),
        };
        for file in ["dash.js", "dash_bg.wasm"] {
            fs::write(paths.pkg().join(file), "").unwrap();
        }
        fs::write(paths.pkg().join(PROFILE_STAMP), "dev").unwrap();
        // Sources an hour older than the bundle.
        let older = SystemTime::now() - Duration::from_secs(3600);
        for file in [
            "Cargo.toml",
            "Cargo.lock",
            "dashboard/src/lib.rs",
            "core/src/lib.rs",
        ] {
            set_modified(&root.join(file), older);
        }
        (root, paths)
    }

    fn set_modified(path: &Path, time: SystemTime) {
        fs::File::options()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }

    #[test]
    fn a_bundle_newer_than_its_sources_is_fresh_for_its_profile_only() {
        let (root, paths) = fixture("fresh");
        assert!(is_fresh(&paths, Profile::Dev).unwrap());
        assert!(!is_fresh(&paths, Profile::Release).unwrap());
        fs::remove_file(paths.pkg().join("dash.js")).unwrap();
        assert!(!is_fresh(&paths, Profile::Dev).unwrap(), "half a bundle");
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn any_newer_source_makes_it_stale() {
        for source in ["dashboard/src/lib.rs", "core/src/lib.rs", "Cargo.lock"] {
            let (root, paths) = fixture(&source.replace('/', "-"));
            set_modified(
                &root.join(source),
                SystemTime::now() + Duration::from_secs(60),
            );
            assert!(!is_fresh(&paths, Profile::Dev).unwrap(), "{source}");
            fs::remove_dir_all(root).unwrap();
        }
    }
}
