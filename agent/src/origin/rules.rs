//! The ingress rules in force and how they change: local rules (config.yml or `--url`, and
//! config.yml's later versions when it is edited), or a remotely managed tunnel's
//! configurations from the edge. A set is replaced whole, always by [`Rules::swap_in`]: a
//! stream takes the current one once and keeps it to the end, so a new version serves new
//! streams while streams under way finish with theirs.

use std::sync::{Arc, PoisonError, RwLock};

use adit_core::ingress::{Ingress, IngressConfig, Service};
use adit_transport::workers::PerWorker;

use super::http::{self, OriginClient};
use crate::Error;

/// Where the rules in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    /// config.yml or `--url`; also the state before registration says which kind the
    /// tunnel is.
    Local,
    /// The tunnel is remotely managed and no configuration has arrived yet.
    AwaitingRemote,
    /// This version of the tunnel's remote configuration.
    Remote(i64),
}

/// Ingress rules with pooled origin clients per HTTP rule (one per worker thread, whose
/// connections then wake only that thread): what one stream is served by,
/// from start to end, even if a new configuration replaces it meanwhile.
pub(super) struct RuleSet {
    provenance: Provenance,
    /// `None` while there are no rules (see [`Provenance`]).
    ingress: Option<Ingress>,
    clients: Vec<Option<PerWorker<OriginClient>>>,
}

impl RuleSet {
    fn build(provenance: Provenance, ingress: Option<Ingress>) -> Result<Self, Error> {
        let clients = ingress
            .iter()
            .flat_map(Ingress::rules)
            .map(|rule| match &rule.service {
                Service::Http { url } => {
                    let tls = http::tls_config(url, &rule.origin_request)?;
                    PerWorker::build(|| http::client(url, &rule.origin_request, tls.clone()))
                        .map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self {
            provenance,
            ingress,
            clients,
        })
    }

    fn without_rules(provenance: Provenance) -> Self {
        Self {
            provenance,
            ingress: None,
            clients: Vec::new(),
        }
    }

    /// The rules; `None` while a remote tunnel waits for its first configuration.
    pub(super) fn ingress(&self) -> Option<&Ingress> {
        self.ingress.as_ref()
    }

    /// The pooled client of the rule at `index` for the caller's worker, if it is an
    /// `http(s)://` rule.
    pub(super) fn client(&self, index: usize) -> Option<&OriginClient> {
        self.clients
            .get(index)
            .and_then(Option::as_ref)
            .map(PerWorker::get)
    }
}

/// The rule set in force.
pub(super) struct Rules(RwLock<Arc<RuleSet>>);

impl Rules {
    pub(super) fn local(ingress: Ingress) -> Result<Self, Error> {
        Ok(Self::with(RuleSet::build(
            Provenance::Local,
            Some(ingress),
        )?))
    }

    /// No rules yet: whether the tunnel is local or remote is not known.
    pub(super) fn none() -> Self {
        Self::with(RuleSet::without_rules(Provenance::Local))
    }

    fn with(set: RuleSet) -> Self {
        Self(RwLock::new(Arc::new(set)))
    }

    pub(super) fn current(&self) -> Arc<RuleSet> {
        // Every write replaces the whole Arc, so a poisoned lock still holds a valid set.
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn remote_version(&self) -> Option<i64> {
        match self.current().provenance {
            Provenance::Remote(version) => Some(version),
            Provenance::Local | Provenance::AwaitingRemote => None,
        }
    }

    pub(super) fn local_rules(&self) -> Option<IngressConfig> {
        let rules = self.current();
        match (&rules.provenance, &rules.ingress) {
            (Provenance::Local, Some(ingress)) => Some(IngressConfig::from_rules(ingress)),
            _ => None,
        }
    }

    /// Keeps the local rules, or without any answers 503 (cloudflared's implicit
    /// `http_status:503`).
    pub(super) fn manage_locally(&self) -> Result<(), Error> {
        if self.current().ingress.is_some() {
            return Ok(());
        }
        tracing::warn!(
            "No ingress rules were defined in provided config (if any) nor from the cli, adit will return 503 for all incoming HTTP requests"
        );
        let fallback =
            RuleSet::build(Provenance::Local, Some(Ingress::single("http_status:503")?))?;
        self.swap_in(fallback, |current| current.ingress.is_none());
        Ok(())
    }

    /// Drops the local rules (loudly: silently ignored local rules confuse cloudflared's
    /// users, #843) to wait for the edge's configuration; whether it did (it does nothing
    /// once the tunnel is known to be remote).
    pub(super) fn manage_remotely(&self) -> bool {
        self.swap_in(
            RuleSet::without_rules(Provenance::AwaitingRemote),
            |current| {
                if current.provenance != Provenance::Local {
                    return false;
                }
                if current.ingress.is_some() {
                    tracing::warn!(
                        "This tunnel is managed remotely: its configuration from the edge replaces the local ingress rules (config.yml or --url), which are ignored"
                    );
                }
                true
            },
        )
    }

    /// Puts a remote configuration in force if it is newer than the one in force; whether
    /// it did. An unusable one is refused and the rules in force stay.
    pub(super) fn apply_remote(&self, version: i64, json: &[u8]) -> Result<bool, Error> {
        if self
            .remote_version()
            .is_some_and(|current| version <= current)
        {
            return Ok(false);
        }
        let unusable = |message: String| Error::RemoteConfig { version, message };
        let config: IngressConfig =
            serde_json::from_slice(json).map_err(|e| unusable(e.to_string()))?;
        let ingress = config.parse().map_err(|e| unusable(e.to_string()))?;
        let rules = RuleSet::build(Provenance::Remote(version), Some(ingress))?;
        // Another task may have put a newer one in force while this one was built.
        Ok(self.swap_in(rules, |current| {
            !matches!(current.provenance, Provenance::Remote(current) if version <= current)
        }))
    }

    /// Puts a new version of the local rules (config.yml edited) in force; whether it did:
    /// not once the tunnel is known to be remotely managed, whose rules come from the edge.
    /// Rules whose clients cannot be built (a `caPool` that does not load) are refused and
    /// the rules in force stay.
    pub(super) fn apply_local(&self, ingress: Ingress) -> Result<bool, Error> {
        if self.current().provenance != Provenance::Local {
            return Ok(false);
        }
        let rules = RuleSet::build(Provenance::Local, Some(ingress))?;
        // The edge may have said "remote" while this set was built.
        Ok(self.swap_in(rules, |current| current.provenance == Provenance::Local))
    }

    /// The one way a rule set is replaced: `set`, built beforehand outside the lock, goes in
    /// if `may_replace` accepts the set in force (judged under the lock, so concurrent
    /// changes cannot interleave); whether it did. Streams holding the old set keep it.
    fn swap_in(&self, set: RuleSet, may_replace: impl FnOnce(&RuleSet) -> bool) -> bool {
        let mut slot = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if !may_replace(&slot) {
            return false;
        }
        *slot = Arc::new(set);
        true
    }
}
