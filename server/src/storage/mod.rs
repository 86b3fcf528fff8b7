//! The one storage interface: every query the server makes lives here, written once for
//! both backends through sqlx's `Any` driver (SQLite by default, PostgreSQL for clusters).
//! Ids are UUID text and times are milliseconds since the epoch, which both store alike.
//!
//! Rule: storage/ uses only ground (`error`, `clock`, `files`); it names no HTTP type.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use adit_core::{
    api::ConfigSource,
    hostname::HostPattern,
    ids::{AccountId, ConnectionId, ConnectorId, RouteId, TunnelId},
};
use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
    migrate::Migrator,
};

use crate::{Error, clock::now_ms};

mod bus;
mod certificates;
mod configs;
mod device;
mod identity;
mod nodes;

pub use bus::BusListener;
pub use certificates::{AcmeCertificateRow, ChallengeRow, ZoneCertificateRow};

pub use configs::{ConfigChange, ConfigWritten, StoredConfig};
pub use device::{Decision, DeviceLoginRow, PendingLimits};
pub use identity::{ApiTokenRow, AuditRow, SessionRow, SigningKeyRow, UserRow};
pub use nodes::{NodeRow, NodeSummary};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Storage {
    pool: AnyPool,
    backend: Backend,
    /// For connections outside the pool (a cluster's listener). May hold a password: never
    /// logged.
    url: Arc<str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelRow {
    pub id: TunnelId,
    pub account_id: AccountId,
    pub name: String,
    pub secret_generation: i64,
    pub secret_hash: String,
    pub created_at: i64,
    pub conns_active_at: Option<i64>,
    pub config_src: ConfigSource,
}

/// A tunnel with what the Tunnels list shows of its connections, counted in the query
/// that reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSummary {
    pub tunnel: TunnelRow,
    /// Connectors with at least one open connection.
    pub live_connectors: i64,
    /// The connections those connectors keep when all are up (their `ha_connections`).
    pub expected_connections: i64,
    pub open_connections: i64,
    /// When the oldest open connection opened (ms since the epoch).
    pub connected_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub id: RouteId,
    pub account_id: AccountId,
    pub tunnel_id: TunnelId,
    pub hostname: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRouteRow {
    pub id: RouteId,
    pub account_id: AccountId,
    pub tunnel_id: TunnelId,
    /// Normalised CIDR text.
    pub network: String,
    pub comment: String,
    pub created_at: i64,
}

/// One tunnel's traffic in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRow {
    pub tunnel_id: TunnelId,
    /// Start of the minute, milliseconds since the epoch.
    pub minute: i64,
    pub requests: i64,
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub p50_us: i64,
    pub p99_us: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRow {
    pub id: ConnectorId,
    pub account_id: AccountId,
    pub tunnel_id: TunnelId,
    pub version: String,
    pub arch: String,
    pub hostname: String,
    pub origin_ip: String,
    pub registered_at: i64,
    /// How many data connections it keeps.
    pub ha_connections: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRow {
    pub id: ConnectionId,
    pub connector_id: ConnectorId,
    pub index: u8,
    pub edge: String,
    /// Where other nodes reach the node holding it (`host:port` of its tunnel listener).
    pub node_addr: String,
    pub origin_ip: String,
    pub opened_at: i64,
}

fn parse_id<T: FromStr>(row: &AnyRow, column: &str) -> Result<T, Error> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|_| Error::Corrupt(format!("column {column} holds {text:?}, not an id")))
}

fn tunnel_from(row: &AnyRow) -> Result<TunnelRow, Error> {
    Ok(TunnelRow {
        id: parse_id(row, "id")?,
        account_id: parse_id(row, "account_id")?,
        name: row.try_get("name")?,
        secret_generation: row.try_get("secret_generation")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        conns_active_at: row.try_get("conns_active_at")?,
        config_src: {
            let text: String = row.try_get("config_src")?;
            ConfigSource::parse(&text)
                .ok_or_else(|| Error::Corrupt(format!("column config_src holds {text:?}")))?
        },
    })
}

fn route_from(row: &AnyRow) -> Result<RouteRow, Error> {
    Ok(RouteRow {
        id: parse_id(row, "id")?,
        account_id: parse_id(row, "account_id")?,
        tunnel_id: parse_id(row, "tunnel_id")?,
        hostname: row.try_get("hostname")?,
        created_at: row.try_get("created_at")?,
    })
}

fn ip_route_from(row: &AnyRow) -> Result<IpRouteRow, Error> {
    Ok(IpRouteRow {
        id: parse_id(row, "id")?,
        account_id: parse_id(row, "account_id")?,
        tunnel_id: parse_id(row, "tunnel_id")?,
        network: row.try_get("network")?,
        comment: row.try_get("comment")?,
        created_at: row.try_get("created_at")?,
    })
}

fn connector_from(row: &AnyRow) -> Result<ConnectorRow, Error> {
    Ok(ConnectorRow {
        id: parse_id(row, "id")?,
        account_id: parse_id(row, "account_id")?,
        tunnel_id: parse_id(row, "tunnel_id")?,
        version: row.try_get("version")?,
        arch: row.try_get("arch")?,
        hostname: row.try_get("hostname")?,
        origin_ip: row.try_get("origin_ip")?,
        registered_at: row.try_get("registered_at")?,
        ha_connections: {
            let n: i64 = row.try_get("ha_connections")?;
            u8::try_from(n).map_err(|_| Error::Corrupt(format!("ha_connections {n}")))?
        },
    })
}

const CONNECTOR_COLUMNS: &str =
    "id, account_id, tunnel_id, version, arch, hostname, origin_ip, registered_at, ha_connections";

/// Tunnels matching `filter` (on `t`), with their open connections counted in the same
/// query.
fn summaries_query(filter: &str) -> String {
    summaries_of(&format!("tunnels t WHERE {filter}"))
}

/// One page (`paging`: `LIMIT … OFFSET …`) of the tunnels matching `filter`, counted as
/// [`summaries_query`] does. The page is cut before the counting: PostgreSQL would count
/// the connections of every row the offset skips too.
fn summaries_page_query(filter: &str, paging: &str) -> String {
    summaries_of(&format!(
        "(SELECT {TUNNEL_COLUMNS} FROM tunnels t WHERE {filter} ORDER BY t.name {paging}) t"
    ))
}

/// The tunnels of `source` (rows of `tunnels` as `t`), by name, with their connections
/// counted.
fn summaries_of(source: &str) -> String {
    let open = "FROM connections k WHERE k.tunnel_id = t.id AND k.closed_at IS NULL";
    let live = "FROM connectors c WHERE c.tunnel_id = t.id AND EXISTS \
                (SELECT 1 FROM connections k WHERE k.connector_id = c.id AND k.closed_at IS NULL)";
    let columns = TUNNEL_COLUMNS
        .split(", ")
        .map(|c| format!("t.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // PostgreSQL sums BIGINTs as NUMERIC: cast back.
    format!(
        "SELECT {columns}, \
         (SELECT COUNT(*) {live}) AS live_connectors, \
         (SELECT CAST(COALESCE(SUM(c.ha_connections), 0) AS BIGINT) {live}) AS expected_connections, \
         (SELECT COUNT(*) {open}) AS open_connections, \
         (SELECT MIN(k.opened_at) {open}) AS connected_since \
         FROM {source} ORDER BY t.name"
    )
}

fn summary_from(row: &AnyRow) -> Result<TunnelSummary, Error> {
    Ok(TunnelSummary {
        tunnel: tunnel_from(row)?,
        live_connectors: row.try_get("live_connectors")?,
        expected_connections: row.try_get("expected_connections")?,
        open_connections: row.try_get("open_connections")?,
        connected_since: row.try_get("connected_since")?,
    })
}

fn connection_from(row: &AnyRow) -> Result<ConnectionRow, Error> {
    let index: i64 = row.try_get("conn_index")?;
    Ok(ConnectionRow {
        id: parse_id(row, "id")?,
        connector_id: parse_id(row, "connector_id")?,
        index: u8::try_from(index)
            .map_err(|_| Error::Corrupt(format!("connection index {index}")))?,
        edge: row.try_get("edge")?,
        node_addr: row.try_get("node_addr")?,
        origin_ip: row.try_get("origin_ip")?,
        opened_at: row.try_get("opened_at")?,
    })
}

/// Maps a unique-constraint violation to a 409-style error with the caller's words.
fn conflict_or(err: sqlx::Error, message: impl FnOnce() -> String) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(message()),
        _ => Error::Database(err),
    }
}

/// Inserts a tunnel on a pool or inside a transaction; its name is unique in its account.
async fn insert_tunnel<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tunnel: &TunnelRow,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO tunnels (id, account_id, name, secret_generation, secret_hash, created_at, config_src) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tunnel.id.to_string())
    .bind(tunnel.account_id.to_string())
    .bind(&tunnel.name)
    .bind(tunnel.secret_generation)
    .bind(&tunnel.secret_hash)
    .bind(tunnel.created_at)
    .bind(tunnel.config_src.as_str())
    .execute(executor)
    .await
    .map_err(|e| conflict_or(e, || format!("tunnel with name {:?} already exists", tunnel.name)))?;
    Ok(())
}

/// Inserts a hostname route on a pool or inside a transaction; the hostname is unique
/// across every account, so a taken one is a conflict.
async fn insert_route<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    route: &RouteRow,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO routes (id, account_id, tunnel_id, hostname, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(route.id.to_string())
    .bind(route.account_id.to_string())
    .bind(route.tunnel_id.to_string())
    .bind(&route.hostname)
    .bind(route.created_at)
    .execute(executor)
    .await
    .map_err(|e| {
        conflict_or(e, || {
            format!("hostname {} is already routed to a tunnel", route.hostname)
        })
    })?;
    Ok(())
}

/// The file behind an SQLite URL; `None` for another backend or an in-memory database.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:" && !url.contains("mode=memory")).then_some(path)
}

const TUNNEL_COLUMNS: &str =
    "id, account_id, name, secret_generation, secret_hash, created_at, conns_active_at, config_src";

impl Storage {
    /// Opens (creating an SQLite file when needed) and migrates the database.
    pub async fn open(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(Error::Config(format!(
                "database URL {url:?} must start with sqlite: or postgres://"
            )));
        };
        if let Some(path) = sqlite_path(url) {
            // Made 0600 before SQLite sees it, as SQLite then makes its -wal and -shm.
            let path = Path::new(path);
            crate::files::ensure_private_file(path)?;
            for companion in ["-wal", "-shm"] {
                crate::files::tighten(&PathBuf::from(format!("{}{companion}", path.display())))?;
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time is all SQLite allows; more connections only queue.
                Backend::Sqlite => 4,
                Backend::Postgres => 16,
            })
            .connect(url)
            .await?;
        let storage = Self {
            pool,
            backend,
            url: url.into(),
        };
        match backend {
            Backend::Sqlite => {
                sqlx::query("PRAGMA journal_mode = WAL")
                    .execute(&storage.pool)
                    .await?;
                let applied = storage.applied_migrations().await;
                let pending = SQLITE_MIGRATIONS
                    .iter()
                    .any(|m| !applied.contains(&m.version));
                if pending {
                    // A new database has nothing to keep.
                    if let Some(path) = sqlite_path(url)
                        && !applied.is_empty()
                    {
                        storage.backup_before_migrating(path).await?;
                    }
                    storage.migrate_sqlite().await?;
                } else {
                    // Nothing to apply; this still refuses a database from a newer server.
                    SQLITE_MIGRATIONS.run(&storage.pool).await?;
                }
            }
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&storage.pool).await?,
        }
        Ok(storage)
    }

    /// The versions of the migrations applied so far; none for a new database.
    async fn applied_migrations(&self) -> Vec<i64> {
        match sqlx::query("SELECT version FROM _sqlx_migrations")
            .fetch_all(&self.pool)
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| r.try_get("version").ok())
                .collect(),
            // No table yet: a new database.
            Err(_) => Vec::new(),
        }
    }

    /// Copies an existing SQLite database aside (`VACUUM INTO`, consistent while open)
    /// before a migration changes it, so an upgrade can always be undone.
    async fn backup_before_migrating(&self, path: &str) -> Result<(), Error> {
        let backup = format!("{path}.before-migration-{}", now_ms());
        // VACUUM INTO would create the copy world-readable; it accepts an empty file.
        crate::files::ensure_private_file(Path::new(&backup))?;
        sqlx::query("VACUUM INTO $1")
            .bind(&backup)
            .execute(&self.pool)
            .await?;
        tracing::info!(%backup, "backed up the database before migrating it");
        Ok(())
    }

    /// Applies the SQLite migrations with foreign keys off, as SQLite's procedure for
    /// rebuilding a table asks (it cannot drop a constraint otherwise): dropping the old
    /// table would delete, by ON DELETE CASCADE, every row referring to it. sqlx runs each
    /// migration in a transaction, where the pragma cannot change, so it is set on the
    /// migrating connection around them; the check afterwards finds any reference a
    /// migration left dangling. Called only when a migration is pending, as that check
    /// reads every referring row.
    async fn migrate_sqlite(&self) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await?;
        let migrated = SQLITE_MIGRATIONS.run(&mut *conn).await;
        let dangling = sqlx::query("PRAGMA foreign_key_check")
            .fetch_optional(&mut *conn)
            .await;
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await?;
        migrated?;
        match dangling? {
            Some(row) => Err(Error::Corrupt(format!(
                "table {} refers to rows that are gone",
                row.try_get::<String, _>("table")?
            ))),
            None => Ok(()),
        }
    }

    /// A transaction in which a limit, counted by its statements, holds against every
    /// concurrent caller, on this node or another sharing the database. Its first statement
    /// must write: SQLite runs one writer at a time, so from that write on, the transaction
    /// counts rows nobody else is changing. PostgreSQL (READ COMMITTED) lets two
    /// transactions count the same rows, so there each first takes a transaction-scoped
    /// advisory lock named after the limit; the next holder counts what this one committed.
    async fn begin_limited(
        &self,
        limit: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(limit.as_bytes());
            let mut key = [0u8; 8];
            key.copy_from_slice(&digest[..8]);
            sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                .bind(i64::from_be_bytes(key))
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The SQLite URL for a file, created when missing.
    pub fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}?mode=rwc", path.display())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- accounts ----

    /// The account named `name`, created on first use.
    pub async fn ensure_account(&self, name: &str) -> Result<AccountId, Error> {
        let find = || {
            sqlx::query("SELECT id FROM accounts WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
        };
        if let Some(row) = find().await? {
            return parse_id(&row, "id");
        }
        // Concurrent first uses (a burst of quick tunnels) all find none: one inserts.
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(AccountId::random().to_string())
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        let row = find()
            .await?
            .ok_or_else(|| Error::Corrupt(format!("account {name:?} vanished as it was made")))?;
        parse_id(&row, "id")
    }

    // ---- tunnels ----

    pub async fn insert_tunnel(&self, tunnel: &TunnelRow) -> Result<(), Error> {
        insert_tunnel(&self.pool, tunnel).await
    }

    pub async fn list_tunnels(&self, account: AccountId) -> Result<Vec<TunnelRow>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {TUNNEL_COLUMNS} FROM tunnels WHERE account_id = $1 ORDER BY name"
        ))
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tunnel_from).collect()
    }

    /// The account's tunnels by name, each with its open connections counted: one query
    /// for the whole list, however many tunnels and connectors there are.
    pub async fn tunnel_summaries(&self, account: AccountId) -> Result<Vec<TunnelSummary>, Error> {
        let rows = sqlx::query(&summaries_query("t.account_id = $1"))
            .bind(account.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary_from).collect()
    }

    /// One page of the account's tunnels by name (`offset` tunnels skipped, at most
    /// `limit`), those whose name contains `search` (any case) or whose id starts with it, counted as
    /// [`Storage::tunnel_summaries`] counts them; and how many tunnels match in all.
    pub async fn tunnel_summaries_page(
        &self,
        account: AccountId,
        search: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<TunnelSummary>, i64), Error> {
        // (contains in the name, starts the id)
        let pattern = search.map(|text| {
            let escaped = text
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            (format!("%{escaped}%"), format!("{escaped}%"))
        });
        let (filter, paging) = match pattern {
            Some(_) => (
                "t.account_id = $1 AND (LOWER(t.name) LIKE $2 ESCAPE '\\' OR t.id LIKE $3 ESCAPE '\\')",
                "LIMIT $4 OFFSET $5",
            ),
            None => ("t.account_id = $1", "LIMIT $2 OFFSET $3"),
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM tunnels t WHERE {filter}");
        let mut count = sqlx::query(&count_sql).bind(account.to_string());
        if let Some((name, id)) = &pattern {
            count = count.bind(name.clone()).bind(id.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let page_sql = summaries_page_query(filter, paging);
        let mut query = sqlx::query(&page_sql).bind(account.to_string());
        if let Some((name, id)) = pattern {
            query = query.bind(name).bind(id);
        }
        let rows = query.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        let page = rows.iter().map(summary_from).collect::<Result<_, _>>()?;
        Ok((page, total))
    }

    /// The routes of `tunnels`, by hostname.
    pub async fn routes_of_tunnels(&self, tunnels: &[TunnelId]) -> Result<Vec<RouteRow>, Error> {
        if tunnels.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (1..=tunnels.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT id, account_id, tunnel_id, hostname, created_at FROM routes WHERE tunnel_id IN ({placeholders}) ORDER BY hostname"
        );
        let mut query = sqlx::query(&sql);
        for tunnel in tunnels {
            query = query.bind(tunnel.to_string());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(route_from).collect()
    }

    /// One tunnel as [`Storage::tunnel_summaries`] counts it.
    pub async fn tunnel_summary(&self, tunnel: TunnelId) -> Result<Option<TunnelSummary>, Error> {
        let row = sqlx::query(&summaries_query("t.id = $1"))
            .bind(tunnel.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(summary_from).transpose()
    }

    /// Every route of the account, by hostname.
    pub async fn account_routes(&self, account: AccountId) -> Result<Vec<RouteRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, account_id, tunnel_id, hostname, created_at FROM routes WHERE account_id = $1 ORDER BY hostname",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(route_from).collect()
    }

    /// A tunnel of the account, named by id or by name.
    pub async fn find_tunnel(
        &self,
        account: AccountId,
        id_or_name: &str,
    ) -> Result<Option<TunnelRow>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {TUNNEL_COLUMNS} FROM tunnels WHERE account_id = $1 AND (id = $2 OR name = $2)"
        ))
        .bind(account.to_string())
        .bind(id_or_name.trim().to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        if row.is_none() && id_or_name.parse::<TunnelId>().is_err() {
            // Names are case-sensitive; ids were lowercased above.
            let row = sqlx::query(&format!(
                "SELECT {TUNNEL_COLUMNS} FROM tunnels WHERE account_id = $1 AND name = $2"
            ))
            .bind(account.to_string())
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await?;
            return row.as_ref().map(tunnel_from).transpose();
        }
        row.as_ref().map(tunnel_from).transpose()
    }

    /// A tunnel by id, whatever its account (the data plane authenticates by token).
    pub async fn tunnel_by_id(&self, id: TunnelId) -> Result<Option<TunnelRow>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {TUNNEL_COLUMNS} FROM tunnels WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tunnel_from).transpose()
    }

    pub async fn rename_tunnel(&self, id: TunnelId, name: &str) -> Result<(), Error> {
        sqlx::query("UPDATE tunnels SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, || format!("tunnel with name {name:?} already exists")))?;
        Ok(())
    }

    pub async fn set_tunnel_secret(
        &self,
        id: TunnelId,
        generation: i64,
        secret_hash: &str,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE tunnels SET secret_generation = $1, secret_hash = $2 WHERE id = $3")
            .bind(generation)
            .bind(secret_hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn mark_tunnel_active(&self, id: TunnelId) -> Result<(), Error> {
        sqlx::query("UPDATE tunnels SET conns_active_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a tunnel with its routes, connectors and connections.
    pub async fn delete_tunnel(&self, id: TunnelId) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        for table in [
            "connections",
            "connectors",
            "routes",
            "ip_routes",
            "quick_tunnels",
            "traffic_minutes",
        ] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tunnel_id = $1"))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM tunnels WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- routes ----

    pub async fn insert_route(&self, route: &RouteRow) -> Result<(), Error> {
        insert_route(&self.pool, route).await
    }

    pub async fn list_routes(&self, tunnel: TunnelId) -> Result<Vec<RouteRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, account_id, tunnel_id, hostname, created_at FROM routes WHERE tunnel_id = $1 ORDER BY hostname",
        )
        .bind(tunnel.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(route_from).collect()
    }

    /// Every route of every account: the edge's routing table.
    pub async fn all_routes(&self) -> Result<Vec<RouteRow>, Error> {
        let rows =
            sqlx::query("SELECT id, account_id, tunnel_id, hostname, created_at FROM routes")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(route_from).collect()
    }

    /// The stored routes that may overlap `pattern` (a superset; the caller checks with
    /// [`HostPattern::overlaps`]): the same name and every wildcard above it, through the
    /// unique index on hostnames, and for a wildcard also every name below it.
    pub async fn routes_overlapping(&self, pattern: &HostPattern) -> Result<Vec<RouteRow>, Error> {
        let body = pattern
            .as_str()
            .strip_prefix("*.")
            .unwrap_or(pattern.as_str());
        let mut names = vec![pattern.as_str().to_owned()];
        let mut rest = body;
        loop {
            names.push(format!("*.{rest}"));
            match rest.split_once('.') {
                Some((_, parent)) => rest = parent,
                None => break,
            }
        }
        let placeholders = (1..=names.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!(
            "SELECT id, account_id, tunnel_id, hostname, created_at FROM routes WHERE hostname IN ({placeholders})"
        );
        if pattern.is_wildcard() {
            // Names below a wildcard's domain: rare to create, so a scan is fine here.
            sql.push_str(&format!(
                " OR hostname LIKE ${} ESCAPE '\\'",
                names.len() + 1
            ));
        }
        let mut query = sqlx::query(&sql);
        for name in &names {
            query = query.bind(name.clone());
        }
        if pattern.is_wildcard() {
            query = query.bind(format!("%.{}", body.replace('_', "\\_")));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(route_from).collect()
    }

    pub async fn route(&self, account: AccountId, id: RouteId) -> Result<Option<RouteRow>, Error> {
        let row = sqlx::query(
            "SELECT id, account_id, tunnel_id, hostname, created_at FROM routes WHERE id = $1 AND account_id = $2",
        )
        .bind(id.to_string())
        .bind(account.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(route_from).transpose()
    }

    pub async fn delete_route(&self, id: RouteId) -> Result<(), Error> {
        sqlx::query("DELETE FROM routes WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- private-network routes ----

    pub async fn insert_ip_route(&self, route: &IpRouteRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO ip_routes (id, account_id, tunnel_id, network, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(route.id.to_string())
        .bind(route.account_id.to_string())
        .bind(route.tunnel_id.to_string())
        .bind(&route.network)
        .bind(&route.comment)
        .bind(route.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_or(e, || format!("a route for {} already exists", route.network)))?;
        Ok(())
    }

    /// Every private-network route of an account.
    pub async fn ip_routes(&self, account: AccountId) -> Result<Vec<IpRouteRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, account_id, tunnel_id, network, comment, created_at FROM ip_routes WHERE account_id = $1 ORDER BY network",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ip_route_from).collect()
    }

    /// The private-network routes a tunnel serves (what its connector may dial).
    pub async fn ip_routes_of_tunnel(&self, tunnel: TunnelId) -> Result<Vec<IpRouteRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, account_id, tunnel_id, network, comment, created_at FROM ip_routes WHERE tunnel_id = $1 ORDER BY network",
        )
        .bind(tunnel.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ip_route_from).collect()
    }

    pub async fn delete_ip_route(&self, account: AccountId, id: RouteId) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM ip_routes WHERE id = $1 AND account_id = $2")
            .bind(id.to_string())
            .bind(account.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- traffic history ----

    /// Adds to a tunnel's minute (a minute flushed twice sums its counts).
    pub async fn add_traffic(&self, row: &TrafficRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO traffic_minutes (tunnel_id, minute, requests, errors, bytes_in, bytes_out, p50_us, p99_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (tunnel_id, minute) DO UPDATE SET \
             requests = traffic_minutes.requests + excluded.requests, \
             errors = traffic_minutes.errors + excluded.errors, \
             bytes_in = traffic_minutes.bytes_in + excluded.bytes_in, \
             bytes_out = traffic_minutes.bytes_out + excluded.bytes_out, \
             p50_us = CASE WHEN excluded.p50_us > traffic_minutes.p50_us THEN excluded.p50_us ELSE traffic_minutes.p50_us END, \
             p99_us = CASE WHEN excluded.p99_us > traffic_minutes.p99_us THEN excluded.p99_us ELSE traffic_minutes.p99_us END",
        )
        .bind(row.tunnel_id.to_string())
        .bind(row.minute)
        .bind(row.requests)
        .bind(row.errors)
        .bind(row.bytes_in)
        .bind(row.bytes_out)
        .bind(row.p50_us)
        .bind(row.p99_us)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn traffic(&self, tunnel: TunnelId, since: i64) -> Result<Vec<TrafficRow>, Error> {
        let rows = sqlx::query(
            "SELECT tunnel_id, minute, requests, errors, bytes_in, bytes_out, p50_us, p99_us FROM traffic_minutes \
             WHERE tunnel_id = $1 AND minute >= $2 ORDER BY minute",
        )
        .bind(tunnel.to_string())
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TrafficRow {
                    tunnel_id: parse_id(r, "tunnel_id")?,
                    minute: r.try_get("minute")?,
                    requests: r.try_get("requests")?,
                    errors: r.try_get("errors")?,
                    bytes_in: r.try_get("bytes_in")?,
                    bytes_out: r.try_get("bytes_out")?,
                    p50_us: r.try_get("p50_us")?,
                    p99_us: r.try_get("p99_us")?,
                })
            })
            .collect()
    }

    /// Forgets minutes before `before` (milliseconds since the epoch).
    pub async fn prune_traffic(&self, before: i64) -> Result<u64, Error> {
        let done = sqlx::query("DELETE FROM traffic_minutes WHERE minute < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ---- quick tunnels ----

    /// Inserts a quick tunnel (its tunnel row and its quick-tunnel record) for `client_ip`
    /// unless that address already holds `limit`: false then, and nothing is written.
    pub async fn insert_quick_tunnel(
        &self,
        tunnel: &TunnelRow,
        hostname: &str,
        client_ip: &str,
        limit: i64,
    ) -> Result<bool, Error> {
        let mut tx = self
            .begin_limited(&format!("quick_tunnels:{client_ip}"))
            .await?;
        insert_tunnel(&mut *tx, tunnel).await?;
        let done = sqlx::query(
            "INSERT INTO quick_tunnels (tunnel_id, hostname, client_ip, created_at) SELECT $1, $2, $3, $4 \
             WHERE (SELECT COUNT(*) FROM quick_tunnels WHERE client_ip = $3) < $5",
        )
        .bind(tunnel.id.to_string())
        .bind(hostname)
        .bind(client_ip)
        .bind(now_ms())
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("quick tunnel hostname {hostname} is taken")))?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls the tunnel row back.
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Quick tunnels with no open connection whose last one closed (or, never connected,
    /// that were made) before `cutoff`: their connector went away.
    pub async fn abandoned_quick_tunnels(&self, cutoff: i64) -> Result<Vec<TunnelId>, Error> {
        let rows = sqlx::query(
            "SELECT q.tunnel_id FROM quick_tunnels q \
             WHERE NOT EXISTS (SELECT 1 FROM connections k WHERE k.tunnel_id = q.tunnel_id AND k.closed_at IS NULL) \
             AND COALESCE((SELECT MAX(k.closed_at) FROM connections k WHERE k.tunnel_id = q.tunnel_id), q.created_at) < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| parse_id(r, "tunnel_id")).collect()
    }

    // ---- connectors and connections ----

    pub async fn upsert_connector(&self, c: &ConnectorRow) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM connectors WHERE id = $1 AND tunnel_id = $2")
            .bind(c.id.to_string())
            .bind(c.tunnel_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO connectors ({CONNECTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(c.id.to_string())
        .bind(c.account_id.to_string())
        .bind(c.tunnel_id.to_string())
        .bind(&c.version)
        .bind(&c.arch)
        .bind(&c.hostname)
        .bind(&c.origin_ip)
        .bind(c.registered_at)
        .bind(i64::from(c.ha_connections))
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict_or(e, || format!("connector {} belongs to another tunnel", c.id)))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn connector(&self, id: ConnectorId) -> Result<Option<ConnectorRow>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(connector_from).transpose()
    }

    /// Connectors of a tunnel that have at least one open connection.
    pub async fn live_connectors(&self, tunnel: TunnelId) -> Result<Vec<ConnectorRow>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {CONNECTOR_COLUMNS} FROM connectors c \
             WHERE tunnel_id = $1 AND EXISTS (SELECT 1 FROM connections k WHERE k.connector_id = c.id AND k.closed_at IS NULL) \
             ORDER BY registered_at"
        ))
        .bind(tunnel.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connector_from).collect()
    }

    pub async fn open_connections(
        &self,
        connector: ConnectorId,
    ) -> Result<Vec<ConnectionRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, connector_id, conn_index, edge, node_addr, origin_ip, opened_at FROM connections \
             WHERE connector_id = $1 AND closed_at IS NULL ORDER BY conn_index",
        )
        .bind(connector.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connection_from).collect()
    }

    pub async fn insert_connection(
        &self,
        connector: &ConnectorRow,
        connection: &ConnectionRow,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO connections (id, account_id, tunnel_id, connector_id, conn_index, edge, node_addr, origin_ip, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(connection.id.to_string())
        .bind(connector.account_id.to_string())
        .bind(connector.tunnel_id.to_string())
        .bind(connector.id.to_string())
        .bind(i64::from(connection.index))
        .bind(&connection.edge)
        .bind(&connection.node_addr)
        .bind(&connection.origin_ip)
        .bind(connection.opened_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn close_connection(&self, id: ConnectionId) -> Result<(), Error> {
        sqlx::query("UPDATE connections SET closed_at = $1 WHERE id = $2 AND closed_at IS NULL")
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The link addresses, other than `own`, of nodes with an open connection of `tunnel`;
    /// not of a node that stopped, whose connections are moving away (it would refuse).
    pub async fn tunnel_holders(&self, tunnel: TunnelId, own: &str) -> Result<Vec<String>, Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT node_addr FROM connections \
             WHERE tunnel_id = $1 AND closed_at IS NULL AND node_addr <> $2 AND node_addr <> '' \
             AND node_addr NOT IN (SELECT tunnel_addr FROM nodes WHERE stopped_at IS NOT NULL)",
        )
        .bind(tunnel.to_string())
        .bind(own)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("node_addr").map_err(Error::from))
            .collect()
    }

    /// Forgets a tunnel's connectors (all, or one) with their connections; how many.
    pub async fn delete_connectors(
        &self,
        tunnel: TunnelId,
        connector: Option<ConnectorId>,
    ) -> Result<u64, Error> {
        let done = match connector {
            Some(id) => {
                sqlx::query("DELETE FROM connectors WHERE tunnel_id = $1 AND id = $2")
                    .bind(tunnel.to_string())
                    .bind(id.to_string())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM connectors WHERE tunnel_id = $1")
                    .bind(tunnel.to_string())
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    /// At start: connections this edge node had open died with its previous process.
    pub async fn close_connections_of_edge(&self, edge: &str) -> Result<u64, Error> {
        let done = sqlx::query(
            "UPDATE connections SET closed_at = $1 WHERE edge = $2 AND closed_at IS NULL",
        )
        .bind(now_ms())
        .bind(edge)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use adit_core::identity::Role;
    use adit_core::ids::{SessionId, UserId};

    #[tokio::test]
    async fn rebuilding_users_keeps_memberships_sessions_and_device_logins() {
        let dir = tempfile::tempdir().unwrap();
        let url = Storage::sqlite_url(&dir.path().join("adit.db"));
        // A database as the server before per-account emails left it, with a user whose
        // rows in other tables the rebuild of `users` must not cascade away.
        sqlx::any::install_default_drivers();
        let before = Migrator {
            migrations: SQLITE_MIGRATIONS
                .iter()
                .filter(|m| m.version < 10)
                .cloned()
                .collect(),
            ..Migrator::DEFAULT
        };
        let old = Storage {
            pool: AnyPoolOptions::new().connect(&url).await.unwrap(),
            backend: Backend::Sqlite,
            url: url.as_str().into(),
        };
        before.run(&old.pool).await.unwrap();
        let account = old.ensure_account("default").await.unwrap();
        let user = UserRow {
            id: UserId::random(),
            email: "kept@example.com".parse().unwrap(),
            password_hash: "hash".into(),
            created_at: now_ms(),
        };
        old.insert_user(&user, account, Role::Admin).await.unwrap();
        let session = SessionRow {
            id: SessionId::random(),
            user_id: user.id,
            account_id: account,
            created_at: now_ms(),
            expires_at: now_ms() + 60_000,
        };
        old.insert_session(&session).await.unwrap();
        sqlx::query(
            "INSERT INTO device_logins (device_code_hash, user_code, client, source_ip, created_at, expires_at, decision, user_id, account_id) VALUES ('h', 'c', 'cli', '127.0.0.1', 0, 0, 'approved', $1, $2)",
        )
        .bind(user.id.to_string())
        .bind(account.to_string())
        .execute(&old.pool)
        .await
        .unwrap();
        old.close().await;

        let storage = Storage::open(&url).await.unwrap();
        assert_eq!(storage.memberships_of(user.id).await.unwrap().len(), 1);
        assert!(storage.live_session(session.id).await.unwrap().is_some());
        let row = sqlx::query("SELECT COUNT(*) AS n FROM device_logins WHERE user_id = $1")
            .bind(user.id.to_string())
            .fetch_one(&storage.pool)
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>("n").unwrap(), 1);
        // Every connection of the pool, the migrating one among them, enforces them again.
        let mut connections = Vec::new();
        for _ in 0..4 {
            let mut conn = storage.pool.acquire().await.unwrap();
            let on = sqlx::query("PRAGMA foreign_keys")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(on.try_get::<i64, _>(0).unwrap(), 1, "foreign keys are on");
            connections.push(conn);
        }
        drop(connections);
        // The email is now unique per account only.
        let other = storage.ensure_account("other").await.unwrap();
        let twin = |id| UserRow { id, ..user.clone() };
        storage
            .insert_user(&twin(UserId::random()), other, Role::Viewer)
            .await
            .unwrap();
        let again = storage
            .insert_user(&twin(UserId::random()), account, Role::Viewer)
            .await;
        assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    }

    #[tokio::test]
    async fn an_existing_database_is_copied_before_a_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adit.db");
        let url = Storage::sqlite_url(&path);
        let storage = Storage::open(&url).await.unwrap();
        storage.ensure_account("kept").await.unwrap();
        // Pretend the database predates every migration we ship.
        sqlx::query("UPDATE _sqlx_migrations SET version = -version")
            .execute(&storage.pool)
            .await
            .unwrap();
        storage.close().await;
        // The migrator then refuses the unknown versions, but only after the copy.
        assert!(Storage::open(&url).await.is_err());
        let backups: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("before-migration"))
            .collect();
        assert_eq!(backups.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = backups[0].metadata().unwrap().permissions().mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "the copy holds what the database holds"
            );
        }
        let copy_url = Storage::sqlite_url(&backups[0].path());
        let copy = Storage {
            pool: AnyPoolOptions::new().connect(&copy_url).await.unwrap(),
            backend: Backend::Sqlite,
            url: copy_url.as_str().into(),
        };
        let row = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE name = 'kept'")
            .fetch_one(&copy.pool)
            .await
            .unwrap();
        assert_eq!(row.try_get::<i64, _>("n").unwrap(), 1);
    }
}
