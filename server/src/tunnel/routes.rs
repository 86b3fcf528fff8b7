//! The edge's routing table: hostname → tunnel, rebuilt from storage whenever a route or
//! tunnel changes. Exact names win over wildcards; the longest wildcard suffix wins next.
//! Below the quick-tunnel domain only exact names count: the server gives those names out,
//! so no account's wildcard (even one stored before such routes were refused) may answer
//! for them.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use adit_core::{hostname::HostPattern, ids::TunnelId};

#[derive(Default, Debug)]
pub struct RouteTable {
    exact: HashMap<String, TunnelId>,
    /// Longest suffix first.
    wildcards: Vec<(HostPattern, TunnelId)>,
    /// The quick-tunnel domain, where wildcards never match.
    reserved: Option<HostPattern>,
}

impl RouteTable {
    pub fn build(
        routes: impl IntoIterator<Item = (HostPattern, TunnelId)>,
        reserved: Option<HostPattern>,
    ) -> Self {
        let mut table = Self {
            reserved,
            ..Self::default()
        };
        for (pattern, tunnel) in routes {
            if pattern.is_wildcard() {
                table.wildcards.push((pattern, tunnel));
            } else {
                table.exact.insert(pattern.as_str().to_owned(), tunnel);
            }
        }
        table
            .wildcards
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.as_str().len()));
        table
    }

    /// The tunnel for a host already passed through `normalize_host`.
    pub fn lookup(&self, host: &str) -> Option<TunnelId> {
        if let Some(tunnel) = self.exact.get(host) {
            return Some(*tunnel);
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
            .map(|(_, t)| *t)
    }
}

/// The live table, swapped whole on reload.
#[derive(Default)]
pub struct Routes {
    table: RwLock<Arc<RouteTable>>,
    /// The quick-tunnel domain, when the server offers quick tunnels.
    reserved: Option<HostPattern>,
}

impl Routes {
    pub fn new(reserved: Option<HostPattern>) -> Self {
        Self {
            table: RwLock::default(),
            reserved,
        }
    }

    pub fn current(&self) -> Arc<RouteTable> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a table of `routes`. The control plane builds it from storage whenever a
    /// route or tunnel changes; the route table itself reads no storage.
    pub fn publish(&self, routes: impl IntoIterator<Item = (HostPattern, TunnelId)>) {
        let table = Arc::new(RouteTable::build(routes, self.reserved.clone()));
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = table;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let (a, b, c) = (TunnelId::random(), TunnelId::random(), TunnelId::random());
        let p = |s| HostPattern::parse(s).unwrap();
        let table = RouteTable::build(
            [
                (p("*.example.com"), a),
                (p("*.deep.example.com"), b),
                (p("x.deep.example.com"), c),
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
        let p = |s| HostPattern::parse(s).unwrap();
        let table = RouteTable::build(
            [
                (p("*.localhost"), a),
                (p("brave-otter-pine-calm.quick.localhost"), quick),
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
}
