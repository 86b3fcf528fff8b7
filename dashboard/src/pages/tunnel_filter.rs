//! Which tunnels the table shows, and in what order: the search, the status filter and
//! the sort, as pure functions of the list (the page applies them reactively).

use std::cmp::{Ordering, Reverse};

use adit_core::{
    api::{Tunnel, TunnelStatus},
    time::Timestamp,
};

use crate::components::status_badge::status_label;

/// The status filter's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StatusFilter {
    #[default]
    All,
    Only(TunnelStatus),
}

impl StatusFilter {
    /// In the order the menu lists them.
    pub(crate) const CHOICES: [Self; 5] = [
        Self::All,
        Self::Only(TunnelStatus::Healthy),
        Self::Only(TunnelStatus::Degraded),
        Self::Only(TunnelStatus::Down),
        Self::Only(TunnelStatus::Inactive),
    ];

    /// The `<option>`'s value.
    pub(crate) fn value(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Only(status) => status.as_str(),
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::All => "All statuses",
            Self::Only(status) => status_label(status),
        }
    }

    /// The choice whose value is `value`; anything else shows all.
    pub(crate) fn from_value(value: &str) -> Self {
        Self::CHOICES
            .into_iter()
            .find(|choice| choice.value() == value)
            .unwrap_or_default()
    }

    fn admits(self, status: TunnelStatus) -> bool {
        match self {
            Self::All => true,
            Self::Only(only) => only == status,
        }
    }
}

/// The sortable columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortKey {
    Name,
    /// Trouble first: Down, Degraded, Healthy, then Inactive (never run).
    Status,
    Connectors,
    Created,
    /// Shortest first; not connected counts as no uptime at all.
    Uptime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sort {
    pub(crate) key: SortKey,
    pub(crate) direction: Direction,
}

impl Default for Sort {
    fn default() -> Self {
        Self {
            key: SortKey::Name,
            direction: Direction::Ascending,
        }
    }
}

impl Sort {
    /// After a click on `key`'s header: the sorted column flips its direction, another
    /// column becomes the sorted one, ascending.
    pub(crate) fn toggle(self, key: SortKey) -> Self {
        let direction = match (self.key == key, self.direction) {
            (true, Direction::Ascending) => Direction::Descending,
            _ => Direction::Ascending,
        };
        Self { key, direction }
    }

    /// `aria-sort` for `key`'s header: only the sorted column has one.
    pub(crate) fn aria(self, key: SortKey) -> Option<&'static str> {
        (self.key == key).then_some(match self.direction {
            Direction::Ascending => "ascending",
            Direction::Descending => "descending",
        })
    }
}

/// The tunnels whose name contains `query` (ignoring case) or whose ID starts with it,
/// with a status `status` admits, sorted by `sort`; ties go by name, then ID, so the order
/// never depends on the order the server listed them in.
pub(crate) fn visible(
    tunnels: &[Tunnel],
    query: &str,
    status: StatusFilter,
    sort: Sort,
) -> Vec<Tunnel> {
    let query = query.trim().to_lowercase();
    let mut shown: Vec<Tunnel> = tunnels
        .iter()
        .filter(|t| status.admits(t.status))
        .filter(|t| {
            query.is_empty()
                || t.name.to_lowercase().contains(&query)
                || t.id.to_string().starts_with(&query)
        })
        .cloned()
        .collect();
    shown.sort_by(|a, b| {
        let primary = compare(a, b, sort.key);
        let primary = match sort.direction {
            Direction::Ascending => primary,
            Direction::Descending => primary.reverse(),
        };
        primary
            .then_with(|| compare(a, b, SortKey::Name))
            .then_with(|| a.id.cmp(&b.id))
    });
    shown
}

fn compare(a: &Tunnel, b: &Tunnel, key: SortKey) -> Ordering {
    match key {
        SortKey::Name => a
            .name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then_with(|| a.name.cmp(&b.name)),
        SortKey::Status => status_rank(a.status).cmp(&status_rank(b.status)),
        SortKey::Connectors => (a.connectors, a.connections).cmp(&(b.connectors, b.connections)),
        SortKey::Created => a.created_at.cmp(&b.created_at),
        SortKey::Uptime => uptime_rank(a).cmp(&uptime_rank(b)),
    }
}

fn status_rank(status: TunnelStatus) -> u8 {
    match status {
        TunnelStatus::Down => 0,
        TunnelStatus::Degraded => 1,
        TunnelStatus::Healthy => 2,
        TunnelStatus::Inactive => 3,
    }
}

/// Grows with the uptime: a later start is a shorter uptime, and no connection is the
/// shortest of all.
fn uptime_rank(tunnel: &Tunnel) -> Option<Reverse<Timestamp>> {
    tunnel.connected_since.map(Reverse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(n: u8, name: &str, status: TunnelStatus) -> Tunnel {
        Tunnel {
            id: format!("00000000-0000-4000-8000-0000000000{n:02}")
                .parse()
                .unwrap(),
            account_id: "0b6a3e52-7f4c-4a57-9d0e-3f1f0c8f2a10".parse().unwrap(),
            name: name.to_owned(),
            created_at: format!("2026-11-{:02}T10:00:00Z", 10 + n).parse().unwrap(),
            status,
            connectors: u32::from(n % 3),
            connections: u32::from(n % 3) * 4,
            routes: vec![],
            connected_since: None,
            config_src: Default::default(),
        }
    }

    fn sample() -> Vec<Tunnel> {
        let mut v = vec![
            tunnel(1, "web", TunnelStatus::Healthy),
            tunnel(2, "Backup", TunnelStatus::Down),
            tunnel(3, "db", TunnelStatus::Degraded),
            tunnel(4, "api", TunnelStatus::Inactive),
            tunnel(5, "web-staging", TunnelStatus::Healthy),
        ];
        v[0].connected_since = Some("2026-11-20T08:00:00Z".parse().unwrap());
        v[2].connected_since = Some("2026-11-21T08:00:00.5Z".parse().unwrap());
        v[4].connected_since = Some("2026-11-21T08:00:00Z".parse().unwrap());
        v
    }

    fn names(tunnels: &[Tunnel]) -> Vec<&str> {
        tunnels.iter().map(|t| t.name.as_str()).collect()
    }

    fn sorted(key: SortKey, direction: Direction) -> Vec<String> {
        let shown = visible(&sample(), "", StatusFilter::All, Sort { key, direction });
        names(&shown).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn by_default_everything_shows_by_name_ignoring_case() {
        let shown = visible(&sample(), "", StatusFilter::All, Sort::default());
        assert_eq!(names(&shown), ["api", "Backup", "db", "web", "web-staging"]);
    }

    #[test]
    fn search_matches_names_ignoring_case_and_id_prefixes() {
        let all = sample();
        let search = |q: &str| {
            names(&visible(&all, q, StatusFilter::All, Sort::default()))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(search("WEB"), ["web", "web-staging"]);
        assert_eq!(search("  back "), ["Backup"]);
        assert_eq!(search("staging"), ["web-staging"]);
        assert_eq!(search("00000000-0000-4000-8000-000000000003"), ["db"]);
        assert_eq!(search("00000000-0000"), search(""));
        assert!(search("nothing-like-it").is_empty());
        // Only a prefix of the ID counts: any digit would match somewhere otherwise.
        assert!(search("000003").is_empty());
    }

    #[test]
    fn the_status_filter_keeps_one_status() {
        let healthy = visible(
            &sample(),
            "",
            StatusFilter::Only(TunnelStatus::Healthy),
            Sort::default(),
        );
        assert_eq!(names(&healthy), ["web", "web-staging"]);
        let down = visible(
            &sample(),
            "web",
            StatusFilter::Only(TunnelStatus::Down),
            Sort::default(),
        );
        assert!(down.is_empty());
    }

    #[test]
    fn the_status_filter_reads_back_its_values() {
        for choice in StatusFilter::CHOICES {
            assert_eq!(StatusFilter::from_value(choice.value()), choice);
        }
        assert_eq!(StatusFilter::from_value("bogus"), StatusFilter::All);
        assert_eq!(StatusFilter::All.label(), "All statuses");
        assert_eq!(
            StatusFilter::Only(TunnelStatus::Degraded).label(),
            "Degraded"
        );
    }

    #[test]
    fn sorts_by_each_column_both_ways() {
        use Direction::*;
        assert_eq!(
            sorted(SortKey::Name, Descending),
            ["web-staging", "web", "db", "Backup", "api"]
        );
        assert_eq!(
            sorted(SortKey::Status, Ascending),
            ["Backup", "db", "web", "web-staging", "api"]
        );
        // Ties keep name order in either direction.
        assert_eq!(
            sorted(SortKey::Status, Descending),
            ["api", "web", "web-staging", "db", "Backup"]
        );
        // web 1, Backup 2, db 0, api 1, web-staging 2 connectors (n % 3).
        assert_eq!(
            sorted(SortKey::Connectors, Ascending),
            ["db", "api", "web", "Backup", "web-staging"]
        );
        assert_eq!(
            sorted(SortKey::Created, Descending),
            ["web-staging", "api", "db", "Backup", "web"]
        );
        // Not connected, then the latest connection (db, half a second after web-staging).
        assert_eq!(
            sorted(SortKey::Uptime, Ascending),
            ["api", "Backup", "db", "web-staging", "web"]
        );
        assert_eq!(
            sorted(SortKey::Uptime, Descending),
            ["web", "web-staging", "db", "api", "Backup"]
        );
    }

    #[test]
    fn a_header_click_sorts_by_its_column_then_flips() {
        let by_name = Sort::default();
        assert_eq!(by_name.aria(SortKey::Name), Some("ascending"));
        assert_eq!(by_name.aria(SortKey::Status), None);
        let flipped = by_name.toggle(SortKey::Name);
        assert_eq!(flipped.direction, Direction::Descending);
        assert_eq!(flipped.aria(SortKey::Name), Some("descending"));
        let by_status = flipped.toggle(SortKey::Status);
        assert_eq!(
            by_status,
            Sort {
                key: SortKey::Status,
                direction: Direction::Ascending
            }
        );
        assert_eq!(
            by_status.toggle(SortKey::Status).toggle(SortKey::Status),
            by_status
        );
    }
}
