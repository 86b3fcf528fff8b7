//! The edge's routing table: hostname → tunnel. The control plane fills it from storage at
//! start (and after a cluster node may have missed changes) and then applies each change
//! as a [`RouteChange`], so a new route costs a hash insert, not a re-read of every route.
//! Exact names win over wildcards; the longest wildcard suffix wins next. Below the
//! quick-tunnel domain only exact names count: the server gives those names out, so no
//! account's wildcard (even one stored before such routes were refused) may answer for
//! them.
//!
//! Changes may arrive out of order (a cluster's nodes each send theirs after their own
//! commit) and more than once (a reload replays those made while it read). Each is keyed by
//! the route's id, which is never reused, so applying them is idempotent and order-tolerant:
//! a removal only removes the route it names, a removed route (or a deleted tunnel's) is
//! remembered for a while so that a late addition of it is ignored, and of two routes
//! claiming one hostname the newer (by creation time, then id) holds it.

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use adit_core::{
    hostname::HostPattern,
    ids::{RouteId, TunnelId},
};

/// How many removed routes and tunnels the table remembers, to ignore late additions of
/// them. A change older than this many removals is caught by the next full reload.
const FORGET_AFTER: usize = 8192;

/// One stored hostname route, as the table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub id: RouteId,
    pub pattern: HostPattern,
    pub tunnel: TunnelId,
    /// When the route was stored (ms since the epoch): the newer of two claims wins.
    pub created_at: i64,
}

impl RouteEntry {
    fn claim(&self) -> Claim {
        Claim {
            id: self.id,
            tunnel: self.tunnel,
            created_at: self.created_at,
        }
    }
}

/// A change to the stored routes, applied to the table as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    Add(RouteEntry),
    /// The route `id`, which routed `pattern`, is gone.
    Remove {
        id: RouteId,
        pattern: HostPattern,
    },
    /// The tunnel was deleted with every route it had.
    RemoveTunnel(TunnelId),
}

/// Who holds a hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Claim {
    id: RouteId,
    tunnel: TunnelId,
    created_at: i64,
}

impl Claim {
    fn newer_than(&self, other: &Claim) -> bool {
        (self.created_at, self.id) > (other.created_at, other.id)
    }
}

/// Removed routes and tunnels, the most recent [`FORGET_AFTER`] of each.
#[derive(Debug)]
struct Removed<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T> Default for Removed<T> {
    fn default() -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: Copy + Eq + std::hash::Hash> Removed<T> {
    fn insert(&mut self, item: T) {
        if self.set.insert(item) {
            self.order.push_back(item);
            if self.order.len() > FORGET_AFTER
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, item: &T) -> bool {
        self.set.contains(item)
    }
}

#[derive(Default, Debug)]
pub struct RouteTable {
    exact: foldhash::HashMap<String, Claim>,
    /// Longest suffix first.
    wildcards: Vec<(HostPattern, Claim)>,
    /// The quick-tunnel domain, where wildcards never match.
    reserved: Option<HostPattern>,
    removed_routes: Removed<RouteId>,
    removed_tunnels: Removed<TunnelId>,
}

impl RouteTable {
    /// A table of `routes`, as read from storage at one moment.
    pub fn build(
        routes: impl IntoIterator<Item = RouteEntry>,
        reserved: Option<HostPattern>,
    ) -> Self {
        let mut table = Self {
            reserved,
            ..Self::default()
        };
        table.fill(routes);
        table
    }

    /// Replaces every route with `routes` (a fresh read), keeping what the table knows of
    /// removals.
    fn fill(&mut self, routes: impl IntoIterator<Item = RouteEntry>) {
        self.exact.clear();
        self.wildcards.clear();
        for route in routes {
            if route.pattern.is_wildcard() {
                self.wildcards.push((route.pattern.clone(), route.claim()));
            } else {
                self.exact
                    .insert(route.pattern.as_str().to_owned(), route.claim());
            }
        }
        self.wildcards
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.as_str().len()));
    }

    /// Applies one change.
    pub fn apply(&mut self, change: &RouteChange) {
        match change {
            RouteChange::Add(route) => self.add(route),
            RouteChange::Remove { id, pattern } => {
                self.removed_routes.insert(*id);
                if pattern.is_wildcard() {
                    self.wildcards
                        .retain(|(p, claim)| !(claim.id == *id && p == pattern));
                } else if self
                    .exact
                    .get(pattern.as_str())
                    .is_some_and(|c| c.id == *id)
                {
                    self.exact.remove(pattern.as_str());
                }
            }
            RouteChange::RemoveTunnel(tunnel) => {
                self.removed_tunnels.insert(*tunnel);
                let mut gone = Vec::new();
                self.exact.retain(|_, claim| {
                    let keep = claim.tunnel != *tunnel;
                    if !keep {
                        gone.push(claim.id);
                    }
                    keep
                });
                self.wildcards.retain(|(_, claim)| {
                    let keep = claim.tunnel != *tunnel;
                    if !keep {
                        gone.push(claim.id);
                    }
                    keep
                });
                for id in gone {
                    self.removed_routes.insert(id);
                }
            }
        }
    }

    fn add(&mut self, route: &RouteEntry) {
        if self.removed_routes.contains(&route.id) || self.removed_tunnels.contains(&route.tunnel) {
            return;
        }
        let claim = route.claim();
        if !route.pattern.is_wildcard() {
            let held = self
                .exact
                .entry(route.pattern.as_str().to_owned())
                .or_insert(claim);
            if claim.newer_than(held) {
                *held = claim;
            }
            return;
        }
        if let Some((_, held)) = self.wildcards.iter_mut().find(|(p, _)| *p == route.pattern) {
            if claim.newer_than(held) {
                *held = claim;
            }
            return;
        }
        let len = route.pattern.as_str().len();
        let at = self
            .wildcards
            .partition_point(|(p, _)| p.as_str().len() >= len);
        self.wildcards.insert(at, (route.pattern.clone(), claim));
    }

    /// The tunnel for a host already passed through `normalize_host`.
    pub fn lookup(&self, host: &str) -> Option<TunnelId> {
        if let Some(claim) = self.exact.get(host) {
            return Some(claim.tunnel);
        }
        if self
            .reserved
            .as_ref()
            .is_some_and(|domain| domain.holds_normalized(host))
        {
            return None;
        }
        self.wildcards
            .iter()
            .find(|(p, _)| p.matches_normalized(host))
            .map(|(_, claim)| claim.tunnel)
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Changes applied while a full reload was reading, replayed on top of what it read.
#[derive(Default)]
struct Reloads {
    in_flight: usize,
    changes: Vec<RouteChange>,
}

/// The live table: changed in place, one change at a time.
#[derive(Default)]
pub struct Routes {
    table: RwLock<RouteTable>,
    reloads: std::sync::Mutex<Reloads>,
    /// How many full reloads finished (start, resyncs, changes too many for one notice).
    full_reloads: AtomicU64,
}

impl Routes {
    pub fn new(reserved: Option<HostPattern>) -> Self {
        Self {
            table: RwLock::new(RouteTable::build([], reserved)),
            reloads: std::sync::Mutex::default(),
            full_reloads: AtomicU64::new(0),
        }
    }

    /// The tunnel for a host already passed through `normalize_host`.
    pub fn lookup(&self, host: &str) -> Option<TunnelId> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .lookup(host)
    }

    pub fn len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many full reloads have finished: one at start, then one per resync.
    pub fn full_reloads(&self) -> u64 {
        self.full_reloads.load(Ordering::Relaxed)
    }

    /// Applies changes to the stored routes (made here or told by another node).
    pub fn apply(&self, changes: &[RouteChange]) {
        // The reload lock first, always: a reload that finishes meanwhile either replays
        // these or has read them.
        let mut reloads = self.reloads.lock().unwrap_or_else(PoisonError::into_inner);
        if reloads.in_flight > 0 {
            reloads.changes.extend_from_slice(changes);
        }
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        for change in changes {
            table.apply(change);
        }
    }

    /// Starts a full reload: call before reading the stored routes, and hand what was read
    /// to [`Reload::finish`]. Changes applied in between are replayed on top of it.
    pub fn begin_reload(&self) -> Reload<'_> {
        self.reloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_flight += 1;
        Reload {
            routes: self,
            done: false,
        }
    }
}

/// A full reload in progress; dropped unfinished (the read failed), it only stops
/// recording.
pub struct Reload<'a> {
    routes: &'a Routes,
    done: bool,
}

impl Reload<'_> {
    /// Swaps in `routes` (read after [`Routes::begin_reload`]) with the changes applied
    /// since replayed on top.
    pub fn finish(mut self, routes: impl IntoIterator<Item = RouteEntry>) {
        let mut reloads = self
            .routes
            .reloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut table = self
            .routes
            .table
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        table.fill(routes);
        for change in &reloads.changes {
            table.apply(change);
        }
        drop(table);
        Self::end(&mut reloads);
        self.done = true;
        self.routes.full_reloads.fetch_add(1, Ordering::Relaxed);
    }

    fn end(reloads: &mut Reloads) {
        reloads.in_flight = reloads.in_flight.saturating_sub(1);
        if reloads.in_flight == 0 {
            reloads.changes.clear();
        }
    }
}

impl Drop for Reload<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut reloads = self
                .routes
                .reloads
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Self::end(&mut reloads);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    fn route(host: &str, tunnel: TunnelId, created_at: i64) -> RouteEntry {
        RouteEntry {
            id: RouteId::random(),
            pattern: p(host),
            tunnel,
            created_at,
        }
    }

    fn remove(route: &RouteEntry) -> RouteChange {
        RouteChange::Remove {
            id: route.id,
            pattern: route.pattern.clone(),
        }
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let (a, b, c) = (TunnelId::random(), TunnelId::random(), TunnelId::random());
        let table = RouteTable::build(
            [
                route("*.example.com", a, 0),
                route("*.deep.example.com", b, 0),
                route("x.deep.example.com", c, 0),
            ],
            None,
        );
        assert_eq!(table.lookup("y.example.com"), Some(a));
        assert_eq!(table.lookup("y.deep.example.com"), Some(b));
        assert_eq!(table.lookup("x.deep.example.com"), Some(c));
        assert_eq!(table.lookup("example.com"), None);
    }

    #[test]
    fn wildcards_never_answer_for_the_quick_tunnel_domain() {
        let (a, quick) = (TunnelId::random(), TunnelId::random());
        let table = RouteTable::build(
            [
                route("*.localhost", a, 0),
                route("brave-otter-pine-calm.quick.localhost", quick, 0),
            ],
            Some(p("quick.localhost")),
        );
        assert_eq!(
            table.lookup("brave-otter-pine-calm.quick.localhost"),
            Some(quick)
        );
        assert_eq!(table.lookup("other-name.quick.localhost"), None);
        assert_eq!(table.lookup("quick.localhost"), None);
        assert_eq!(table.lookup("app.localhost"), Some(a));
        // A name that merely ends with the same letters is not below the domain.
        assert_eq!(table.lookup("xquick.localhost"), Some(a));
    }

    #[test]
    fn added_wildcards_keep_the_longest_suffix_first() {
        let (a, b, c) = (TunnelId::random(), TunnelId::random(), TunnelId::random());
        let mut table = RouteTable::default();
        table.apply(&RouteChange::Add(route("*.deep.example.com", b, 0)));
        table.apply(&RouteChange::Add(route("*.example.com", a, 0)));
        table.apply(&RouteChange::Add(route("*.very.deep.example.com", c, 0)));
        assert_eq!(table.lookup("x.very.deep.example.com"), Some(c));
        assert_eq!(table.lookup("x.deep.example.com"), Some(b));
        assert_eq!(table.lookup("x.example.com"), Some(a));
        assert_eq!(table.len(), 3);
    }

    #[test]
    fn a_removal_removes_only_the_route_it_names() {
        let (a, b) = (TunnelId::random(), TunnelId::random());
        let mut table = RouteTable::default();
        let first = route("app.example.com", a, 1);
        let wild = route("*.example.com", a, 1);
        table.apply(&RouteChange::Add(first.clone()));
        table.apply(&RouteChange::Add(wild.clone()));
        // The name moved to another tunnel (a new route, newer) before the removal arrived.
        let second = route("app.example.com", b, 2);
        table.apply(&RouteChange::Add(second.clone()));
        table.apply(&remove(&first));
        assert_eq!(table.lookup("app.example.com"), Some(b));
        table.apply(&remove(&second));
        assert_eq!(table.lookup("app.example.com"), Some(a), "the wildcard");
        table.apply(&remove(&wild));
        assert_eq!(table.lookup("app.example.com"), None);
        assert!(table.is_empty());
    }

    #[test]
    fn a_late_addition_of_a_removed_route_is_ignored() {
        let a = TunnelId::random();
        let mut table = RouteTable::default();
        let gone = route("app.example.com", a, 1);
        table.apply(&remove(&gone));
        table.apply(&RouteChange::Add(gone));
        assert_eq!(table.lookup("app.example.com"), None);
    }

    #[test]
    fn an_older_claim_never_displaces_a_newer_one() {
        let (a, b) = (TunnelId::random(), TunnelId::random());
        let mut table = RouteTable::default();
        let newer = route("app.example.com", b, 2);
        let older = route("app.example.com", a, 1);
        table.apply(&RouteChange::Add(newer));
        table.apply(&RouteChange::Add(older.clone()));
        assert_eq!(table.lookup("app.example.com"), Some(b));
        // Its removal, arriving later, leaves the newer route alone.
        table.apply(&remove(&older));
        assert_eq!(table.lookup("app.example.com"), Some(b));
    }

    #[test]
    fn removing_a_tunnel_removes_its_routes_and_refuses_their_late_additions() {
        let (a, b) = (TunnelId::random(), TunnelId::random());
        let mut table = RouteTable::build(
            [
                route("a1.example.com", a, 0),
                route("*.a.example.com", a, 0),
                route("b.example.com", b, 0),
            ],
            None,
        );
        table.apply(&RouteChange::RemoveTunnel(a));
        assert_eq!(table.lookup("a1.example.com"), None);
        assert_eq!(table.lookup("x.a.example.com"), None);
        assert_eq!(table.lookup("b.example.com"), Some(b));
        table.apply(&RouteChange::Add(route("late.example.com", a, 5)));
        assert_eq!(table.lookup("late.example.com"), None);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn applying_a_change_twice_is_the_same_as_once() {
        let a = TunnelId::random();
        let mut table = RouteTable::default();
        let r = route("*.example.com", a, 0);
        table.apply(&RouteChange::Add(r.clone()));
        table.apply(&RouteChange::Add(r.clone()));
        assert_eq!(table.len(), 1);
        table.apply(&remove(&r));
        table.apply(&remove(&r));
        assert!(table.is_empty());
    }

    #[test]
    fn changes_made_while_a_reload_reads_survive_it() {
        let a = TunnelId::random();
        let routes = Routes::new(None);
        let kept = route("kept.example.com", a, 0);
        let dropped = route("dropped.example.com", a, 0);
        routes.apply(&[RouteChange::Add(dropped.clone())]);
        let reload = routes.begin_reload();
        // Stored and applied after the reload read the database, which saw neither.
        let added = route("added.example.com", a, 1);
        routes.apply(&[RouteChange::Add(added), remove(&dropped)]);
        reload.finish([kept, dropped]);
        assert_eq!(routes.lookup("kept.example.com"), Some(a));
        assert_eq!(routes.lookup("added.example.com"), Some(a));
        assert_eq!(routes.lookup("dropped.example.com"), None);
        // Once no reload is in flight, nothing is recorded any more.
        routes.apply(&[RouteChange::Add(route("later.example.com", a, 2))]);
        assert!(routes.reloads.lock().unwrap().changes.is_empty());
    }

    #[test]
    fn a_failed_reload_stops_recording() {
        let routes = Routes::new(None);
        drop(routes.begin_reload());
        routes.apply(&[RouteChange::Add(route(
            "a.example.com",
            TunnelId::random(),
            0,
        ))]);
        let reloads = routes.reloads.lock().unwrap();
        assert_eq!((reloads.in_flight, reloads.changes.len()), (0, 0));
    }
}
