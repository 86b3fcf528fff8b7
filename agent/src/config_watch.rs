//! Hot reload of a local config.yml: a connector whose ingress rules come from its file
//! follows the file. Every [`POLL_EVERY`] it looks at the file's metadata (length,
//! modification time, inode: an edit in place and an editor's or a ConfigMap's
//! replacement both change it), and a [`ReloadHandle`] (SIGHUP, forwarded by `main`) asks
//! for a re-read at once. A file that loads becomes a new version of the local rules
//! through the same swap as a remote configuration ([`OriginProxy::apply_local`]): new
//! streams take it, streams under way finish with the rules they started with. A file
//! that does not load (YAML, a rule, a `caPool`, or the file gone) is logged with what the
//! loader says (file, line, rule) and the rules in force stay. Keys read only at start
//! (the token and where it comes from, `tunnel`, `ha-connections`, `loglevel`, `logfile`,
//! `metrics`, `grace-period`) are logged as needing a restart and ignored. Keys the loader
//! ignores are warned about again when that list changes.
//!
//! The rule: this module names `config`, `origin` and `Error`, never the connector, which
//! learns of a new version from the proxy (to report it to the edge).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use adit_core::{ids::ConnectorId, ingress::IngressConfig};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::MissedTickBehavior,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Error,
    config::{ConfigWarning, FileConfig, LoadedConfig},
    origin::OriginProxy,
};

/// How often the file's metadata is looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What one look at the file came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The file is as it was, or its rules are the ones in force.
    Unchanged,
    /// Its rules are in force as a new version.
    Applied,
    /// It does not load (or is gone); the rules in force stay.
    Refused,
    /// The tunnel is managed remotely: the file's rules are not used.
    RemotelyManaged,
}

type Request = Option<oneshot::Sender<Outcome>>;

/// Asks the watcher, if one runs, to re-read its file now: what SIGHUP does.
#[derive(Clone)]
pub struct ReloadHandle(mpsc::Sender<Request>);

/// The watcher's end of a [`ReloadHandle`].
pub struct ReloadRequests(mpsc::Receiver<Request>);

/// A handle for `main`'s SIGHUP and the requests it sends to the watcher.
pub fn reload_channel() -> (ReloadHandle, ReloadRequests) {
    let (tx, rx) = mpsc::channel(1);
    (ReloadHandle(tx), ReloadRequests(rx))
}

impl ReloadHandle {
    /// Asks for a re-read without waiting for it; false when no file is being followed.
    /// Requests made while one is pending are one request.
    pub fn reload(&self) -> bool {
        !matches!(
            self.0.try_send(None),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    }

    /// Re-reads the file now and says what came of it; `None` when no file is followed.
    pub async fn reload_and_wait(&self) -> Option<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.0.send(Some(tx)).await.ok()?;
        rx.await.ok()
    }
}

/// What the file looked like at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// Follows one config.yml whose rules the proxy runs.
pub struct ConfigWatch {
    path: PathBuf,
    /// `--url`, which the file's rules are checked against as at start.
    url_flag: Option<String>,
    /// The file as the connector started with it: what restart-only keys are compared to.
    started: FileConfig,
    proxy: Arc<OriginProxy>,
    /// The file at the last look that read it whole; `None` before the first look, or
    /// when the file changed while it was read (so the next look reads it again).
    seen: Option<Fingerprint>,
    /// The file could not be read at the last look (said once, not every second).
    unreadable: bool,
    /// Whether the file has been looked at yet.
    looked: bool,
    /// Restart-only keys that differ from the start's, as last said.
    needs_restart: Vec<&'static str>,
    /// The ignored keys as last warned about (at start by the connector).
    warned: Vec<ConfigWarning>,
}

impl ConfigWatch {
    /// Follows the file `loaded` came from; its rules, with `--url` (`url_flag`), are the
    /// ones `proxy` runs.
    pub fn new(loaded: LoadedConfig, url_flag: Option<String>, proxy: Arc<OriginProxy>) -> Self {
        Self {
            path: loaded.path,
            url_flag,
            started: loaded.config,
            proxy,
            seen: None,
            unreadable: false,
            looked: false,
            needs_restart: Vec::new(),
            warned: loaded.warnings,
        }
    }

    /// Runs [`run`](Self::run) as a task with its span.
    pub fn spawn(
        self,
        requests: ReloadRequests,
        shutdown: CancellationToken,
        connector: ConnectorId,
    ) -> JoinHandle<()> {
        let span = tracing::info_span!("config_watch", %connector, file = %self.path.display());
        tokio::spawn(self.run(requests, shutdown).instrument(span))
    }

    /// Looks at the file every [`POLL_EVERY`] and at each request, until `shutdown`. The
    /// first look is at once: it catches an edit made since the connector read the file.
    pub async fn run(mut self, mut requests: ReloadRequests, shutdown: CancellationToken) {
        tracing::info!(every = ?POLL_EVERY, "Following the configuration file (SIGHUP re-reads it at once)");
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let (forced, reply) = tokio::select! {
                () = shutdown.cancelled() => return,
                Some(reply) = requests.0.recv() => (true, reply),
                _ = tick.tick() => (false, None),
            };
            let outcome = self.look(forced);
            if let Some(reply) = reply {
                let _ = reply.send(outcome);
            }
        }
    }

    /// One look at the file: reads it if it changed (or if `forced`) and puts its rules in
    /// force if they are new. A forced look applies the rules even if they are the same,
    /// which rebuilds the origin clients (a `caPool` file is read again).
    fn look(&mut self, forced: bool) -> Outcome {
        let before = match Fingerprint::of(&self.path) {
            Ok(fingerprint) => fingerprint,
            Err(e) => {
                if !self.unreadable || forced {
                    tracing::error!(error = %Error::file(&self.path, e), "The configuration file cannot be read; the rules in force stay");
                }
                self.unreadable = true;
                self.seen = None;
                return Outcome::Refused;
            }
        };
        if !forced && self.seen == Some(before) {
            return Outcome::Unchanged;
        }
        self.unreadable = false;
        let first = !std::mem::replace(&mut self.looked, true);
        let loaded = LoadedConfig::load(&self.path);
        // Written to while it was read (an editor writing in place): read it again next time.
        self.seen = Fingerprint::of(&self.path)
            .ok()
            .filter(|after| *after == before);
        let loaded = loaded.and_then(|loaded| {
            let ingress = loaded.ingress(self.url_flag.as_deref())?;
            Ok((loaded, ingress))
        });
        let ingress = match loaded {
            Ok((loaded, Some(ingress))) => {
                self.say_what_needs_restart(&loaded.config);
                if loaded.warnings != self.warned {
                    for warning in &loaded.warnings {
                        tracing::warn!("{warning}");
                    }
                    self.warned = loaded.warnings;
                }
                ingress
            }
            Ok((_, None)) => {
                tracing::error!(
                    "The configuration file has no ingress rules any more; the rules in force stay"
                );
                return Outcome::Refused;
            }
            Err(e) => {
                tracing::error!(error = %e, "The configuration file was not reloaded; the rules in force stay");
                return Outcome::Refused;
            }
        };
        if !forced && self.proxy.local_rules() == Some(IngressConfig::from_rules(&ingress)) {
            return Outcome::Unchanged;
        }
        match self.proxy.apply_local(ingress) {
            Ok(true) => Outcome::Applied,
            Ok(false) => {
                if !first {
                    tracing::warn!(
                        "The configuration file changed, but this tunnel is managed remotely: its ingress rules are ignored"
                    );
                }
                Outcome::RemotelyManaged
            }
            Err(e) => {
                tracing::error!(error = %e, "The configuration file was not reloaded; the rules in force stay");
                Outcome::Refused
            }
        }
    }

    /// Logs the restart-only keys that now differ from the start's, when that set changes.
    fn say_what_needs_restart(&mut self, now: &FileConfig) {
        let keys = needs_restart(&self.started, now);
        if keys != self.needs_restart && !keys.is_empty() {
            tracing::warn!(
                keys = %keys.join(", "),
                "The configuration file changed keys that are read only at start: this needs a restart; until then they are ignored"
            );
        }
        self.needs_restart = keys;
    }
}

/// The keys of `now` that differ from `started` and take effect only at start.
fn needs_restart(started: &FileConfig, now: &FileConfig) -> Vec<&'static str> {
    [
        ("tunnel", started.tunnel != now.tunnel),
        (
            "credentials-file",
            started.credentials_file != now.credentials_file,
        ),
        ("token", started.token != now.token),
        ("token-file", started.token_file != now.token_file),
        (
            "ha-connections",
            started.ha_connections != now.ha_connections,
        ),
        ("loglevel", started.loglevel != now.loglevel),
        ("logfile", started.logfile != now.logfile),
        ("metrics", started.metrics != now.metrics),
        ("grace-period", started.grace_period != now.grace_period),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    /// A config.yml whose one rule answers `status`, after `head`.
    fn rules(head: &str, status: u16) -> String {
        format!("{head}ingress:\n  - service: http_status:{status}\n")
    }

    /// The service of the first local rule in force.
    fn in_force(proxy: &OriginProxy) -> String {
        proxy.local_rules().unwrap().ingress[0].service.clone()
    }

    fn watching(text: &str) -> (tempfile::TempDir, PathBuf, ConfigWatch, Arc<OriginProxy>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yml");
        std::fs::write(&path, text).unwrap();
        let loaded = LoadedConfig::load(&path).unwrap();
        let proxy = OriginProxy::new(loaded.ingress(None).unwrap().unwrap()).unwrap();
        let watch = ConfigWatch::new(loaded, None, proxy.clone());
        (dir, path, watch, proxy)
    }

    fn set_modified(path: &Path, at: SystemTime) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn an_edit_in_place_or_a_replaced_file_is_seen_and_a_touch_is_no_new_version() {
        let (dir, path, mut watch, proxy) = watching(&rules("", 201));
        assert_eq!(watch.look(false), Outcome::Unchanged, "the first look");
        assert_eq!(watch.look(false), Outcome::Unchanged);

        // In place: the length changes.
        std::fs::write(&path, rules("# edited\n", 202)).unwrap();
        assert_eq!(watch.look(false), Outcome::Applied);
        assert_eq!(in_force(&proxy), "http_status:202");
        assert_eq!(proxy.metrics.config_version.get(), 2);

        // Replaced by a rename, same length and time: only the inode tells.
        let at = std::fs::metadata(&path).unwrap().modified().unwrap();
        let next = dir.path().join("config.yml.new");
        std::fs::write(&next, rules("# edited\n", 203)).unwrap();
        set_modified(&next, at);
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(watch.look(false), Outcome::Applied);
        assert_eq!(in_force(&proxy), "http_status:203");

        // Touched, or only comments changed: the same rules are no new version.
        set_modified(&path, at + Duration::from_secs(5));
        std::fs::write(&path, rules("# another comment\n", 203)).unwrap();
        assert_eq!(watch.look(false), Outcome::Unchanged);
        assert_eq!(proxy.metrics.config_version.get(), 3);

        // A forced look (SIGHUP) applies them again.
        assert_eq!(watch.look(true), Outcome::Applied);
        assert_eq!(proxy.metrics.config_version.get(), 4);
    }

    #[test]
    fn a_broken_edit_keeps_the_rules_in_force_until_a_good_one() {
        let (_dir, path, mut watch, proxy) = watching(&rules("", 201));
        let broken = [
            "ingress:\n  - service: [\n".to_owned(),
            "ingress:\n  - service: http_status:404\n  - hostname: a.example.com\n    service: http://x\n"
                .to_owned(),
            rules("ha-conections: 2\n", 202),
            "ingress:\n  - service: https://localhost:8443\n    originRequest:\n      caPool: /nonexistent/ca.pem\n"
                .to_owned(),
            "tunnel: demo\n".to_owned(),
        ];
        for text in &broken {
            std::fs::write(&path, text).unwrap();
            assert_eq!(watch.look(false), Outcome::Refused, "{text}");
            assert_eq!(in_force(&proxy), "http_status:201", "{text}");
            // Said once: the next look finds the same file.
            assert_eq!(watch.look(false), Outcome::Unchanged, "{text}");
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(watch.look(false), Outcome::Refused);
        assert_eq!(watch.look(false), Outcome::Refused);
        assert_eq!(in_force(&proxy), "http_status:201");

        std::fs::write(&path, rules("", 204)).unwrap();
        assert_eq!(watch.look(false), Outcome::Applied);
        assert_eq!(in_force(&proxy), "http_status:204");
        assert_eq!(proxy.metrics.config_version.get(), 2);
    }

    #[test]
    fn keys_read_only_at_start_are_said_to_need_a_restart() {
        let (_dir, path, mut watch, proxy) =
            watching(&rules("tunnel: demo\nha-connections: 2\n", 201));
        std::fs::write(
            &path,
            rules("tunnel: other\nha-connections: 2\ntoken: abc\n", 202),
        )
        .unwrap();
        assert_eq!(watch.look(false), Outcome::Applied);
        assert_eq!(watch.needs_restart, ["tunnel", "token"]);
        assert_eq!(in_force(&proxy), "http_status:202");
    }

    #[test]
    fn ignored_keys_are_warned_about_again_only_when_they_change() {
        let (_dir, path, mut watch, _proxy) = watching(&rules("no-autoupdate: true\n", 201));
        assert_eq!(watch.warned.len(), 1, "as the connector warned at start");
        std::fs::write(&path, rules("no-autoupdate: true\ntag: [a=b]\n", 202)).unwrap();
        assert_eq!(watch.look(false), Outcome::Applied);
        let keys: Vec<_> = watch.warned.iter().map(|w| w.place.key.as_str()).collect();
        assert_eq!(keys, ["no-autoupdate", "tag"]);
    }

    #[test]
    fn a_remotely_managed_tunnel_does_not_take_the_files_rules() {
        let (_dir, path, mut watch, proxy) = watching(&rules("", 201));
        proxy.manage_remotely();
        std::fs::write(&path, rules("", 202)).unwrap();
        assert_eq!(watch.look(false), Outcome::RemotelyManaged);
        assert_eq!(proxy.local_rules(), None);
    }

    #[tokio::test]
    async fn the_handle_asks_the_running_watcher_and_says_when_none_runs() {
        let (_dir, path, watch, proxy) = watching(&rules("", 201));
        let (handle, requests) = reload_channel();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(watch.run(requests, shutdown.clone()));
        std::fs::write(&path, rules("", 202)).unwrap();
        // The poll may have taken the edit already; a forced re-read applies it anyway.
        assert_eq!(handle.reload_and_wait().await, Some(Outcome::Applied));
        assert_eq!(in_force(&proxy), "http_status:202");
        assert!(handle.reload());
        shutdown.cancel();
        task.await.unwrap();
        assert!(!handle.reload(), "no watcher runs any more");
        assert_eq!(handle.reload_and_wait().await, None);
    }
}
