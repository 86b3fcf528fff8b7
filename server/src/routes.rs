//! The edge's routing table: hostname → tunnel, rebuilt from storage whenever a route or
//! tunnel changes. Exact names win over wildcards; the longest wildcard suffix wins next.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use adit_core::{hostname::HostPattern, ids::TunnelId};

use crate::{Error, storage::Storage};

#[derive(Default, Debug)]
pub struct RouteTable {
    exact: HashMap<String, TunnelId>,
    /// Longest suffix first.
    wildcards: Vec<(HostPattern, TunnelId)>,
}

impl RouteTable {
    pub fn build(routes: impl IntoIterator<Item = (HostPattern, TunnelId)>) -> Self {
        let mut table = Self::default();
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
        self.wildcards
            .iter()
            .find(|(p, _)| p.matches_normalized(host))
            .map(|(_, t)| *t)
    }
}

/// The live table, swapped whole on reload.
#[derive(Default)]
pub struct Routes(RwLock<Arc<RouteTable>>);

impl Routes {
    pub fn current(&self) -> Arc<RouteTable> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub async fn reload(&self, storage: &Storage) -> Result<(), Error> {
        let rows = storage.all_routes().await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            match HostPattern::parse(&row.hostname) {
                Ok(pattern) => entries.push((pattern, row.tunnel_id)),
                Err(e) => {
                    tracing::warn!(route = %row.id, error = %e, "skipping unparseable stored route")
                }
            }
        }
        let table = Arc::new(RouteTable::build(entries));
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = table;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let (a, b, c) = (TunnelId::random(), TunnelId::random(), TunnelId::random());
        let p = |s| HostPattern::parse(s).unwrap();
        let table = RouteTable::build([
            (p("*.example.com"), a),
            (p("*.deep.example.com"), b),
            (p("x.deep.example.com"), c),
        ]);
        assert_eq!(table.lookup("y.example.com"), Some(a));
        assert_eq!(table.lookup("y.deep.example.com"), Some(b));
        assert_eq!(table.lookup("x.deep.example.com"), Some(c));
        assert_eq!(table.lookup("example.com"), None);
    }
}
