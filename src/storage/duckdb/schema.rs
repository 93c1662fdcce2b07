//! Versioned, idempotent schema migrations for the DuckDB file.
//!
//! Each migration runs once, in its own transaction, and is recorded in
//! `schema_migrations`; opening a file applies the ones it lacks, so a fresh
//! file and an older one reach the same schema.

use duckdb::Connection;

use crate::storage::StorageError;

/// SQL that rebuilds the table `$table` as `$columns` (its definition, the
/// user or person set declared `USING COMPRESSION uncompressed`), keeping
/// its rows: the columns named in `$select`.
macro_rules! rebuilt {
    ($table:literal, $columns:literal, $select:literal) => {
        concat!(
            "CREATE TABLE ",
            $table,
            "_rebuilt (",
            $columns,
            ");
            INSERT INTO ",
            $table,
            "_rebuilt SELECT ",
            $select,
            " FROM ",
            $table,
            ";
            DROP TABLE ",
            $table,
            ";
            ALTER TABLE ",
            $table,
            "_rebuilt RENAME TO ",
            $table,
            ";
            "
        )
    };
}

/// SQL that rebuilds the rollup cell table `$table` (see migration 9) with
/// its user sets stored uncompressed, keeping its rows.
macro_rules! rebuild_rollup_cells {
    ($table:literal) => {
        rebuilt!(
            $table,
            "project_id VARCHAR NOT NULL, at_us BIGINT NOT NULL, kind VARCHAR NOT NULL,
             type VARCHAR NOT NULL, value VARCHAR, events UBIGINT NOT NULL,
             users BLOB NOT NULL USING COMPRESSION uncompressed",
            "project_id, at_us, kind, type, value, events, users"
        )
    };
}

/// SQL that rebuilds the session cell table `$table` (see migration 10)
/// with its person sets stored uncompressed, keeping its rows.
macro_rules! rebuild_session_cells {
    ($table:literal) => {
        rebuilt!(
            $table,
            "project_id VARCHAR NOT NULL, at_us BIGINT NOT NULL, value VARCHAR,
             sessions UBIGINT NOT NULL, events UBIGINT NOT NULL, page_views UBIGINT NOT NULL,
             bounces UBIGINT NOT NULL, duration_us BIGINT NOT NULL,
             persons BLOB NOT NULL USING COMPRESSION uncompressed",
            "project_id, at_us, value, sessions, events, page_views, bounces, duration_us, persons"
        )
    };
}

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Position in the history, from 1.
    pub version: u32,
    /// Short description.
    pub name: &'static str,
    /// SQL statements, run as one batch.
    pub sql: &'static str,
}

/// The whole schema history, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        // Common context fields are real columns because reports filter and group on
        // them; everything else stays queryable through the flattened key/value arrays
        // (the same shape as the ClickHouse backend), and the JSON texts keep the
        // original objects for export. The primary key is the dedup key.
        sql: "
            CREATE TABLE events (
                project_id          VARCHAR   NOT NULL,
                message_id          VARCHAR   NOT NULL,
                type                VARCHAR   NOT NULL,
                event               VARCHAR,
                name                VARCHAR,
                user_id             VARCHAR,
                anonymous_id        VARCHAR,
                group_id            VARCHAR,
                previous_id         VARCHAR,
                timestamp           TIMESTAMP NOT NULL,
                original_timestamp  TIMESTAMP,
                sent_at             TIMESTAMP,
                received_at         TIMESTAMP NOT NULL,
                properties          VARCHAR,
                traits              VARCHAR,
                context             VARCHAR,
                integrations        VARCHAR,
                context_ip          VARCHAR,
                context_user_agent  VARCHAR,
                page_path           VARCHAR,
                page_referrer       VARCHAR,
                page_search         VARCHAR,
                page_title          VARCHAR,
                page_url            VARCHAR,
                utm_campaign        VARCHAR,
                utm_source          VARCHAR,
                utm_medium          VARCHAR,
                utm_term            VARCHAR,
                utm_content         VARCHAR,
                library_name        VARCHAR,
                library_version     VARCHAR,
                locale              VARCHAR,
                timezone            VARCHAR,
                prop_keys           VARCHAR[] NOT NULL,
                prop_values         VARCHAR[] NOT NULL,
                context_keys        VARCHAR[] NOT NULL,
                context_values      VARCHAR[] NOT NULL,
                PRIMARY KEY (project_id, message_id)
            );",
    },
    Migration {
        version: 2,
        name: "settings",
        sql: "CREATE TABLE settings (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);",
    },
    Migration {
        version: 3,
        name: "narrow events",
        // Each column costs DuckDB time on every write (statistics, compression),
        // and version 1 kept the context three times. Now each field is stored once:
        // `properties`, `traits` and `context` as JSON texts, which queries read with
        // the JSON functions, plus real columns only for the fields that reports
        // group and filter on most (page, referrer, UTM campaign, library, locale).
        sql: "
            CREATE TABLE events_v3 (
                project_id          VARCHAR   NOT NULL,
                message_id          VARCHAR   NOT NULL,
                type                VARCHAR   NOT NULL,
                event               VARCHAR,
                name                VARCHAR,
                user_id             VARCHAR,
                anonymous_id        VARCHAR,
                group_id            VARCHAR,
                previous_id         VARCHAR,
                timestamp           TIMESTAMP NOT NULL,
                original_timestamp  TIMESTAMP,
                sent_at             TIMESTAMP,
                received_at         TIMESTAMP NOT NULL,
                properties          VARCHAR,
                traits              VARCHAR,
                context             VARCHAR,
                integrations        VARCHAR,
                page_path           VARCHAR,
                page_referrer       VARCHAR,
                page_url            VARCHAR,
                utm_campaign        VARCHAR,
                utm_source          VARCHAR,
                utm_medium          VARCHAR,
                utm_term            VARCHAR,
                utm_content         VARCHAR,
                library_name        VARCHAR,
                locale              VARCHAR,
                PRIMARY KEY (project_id, message_id)
            );
            INSERT INTO events_v3
            SELECT project_id, message_id, type, event, name, user_id, anonymous_id,
                   group_id, previous_id, timestamp, original_timestamp, sent_at,
                   received_at, properties, traits, context, integrations, page_path,
                   page_referrer, page_url, utm_campaign, utm_source, utm_medium,
                   utm_term, utm_content, library_name, locale
            FROM events;
            DROP TABLE events;
            ALTER TABLE events_v3 RENAME TO events;",
    },
    Migration {
        version: 4,
        name: "user numbers",
        // Each project's users (`userId`, else `anonymousId`) get dense numbers in
        // order of first appearance, and each event its user's number, so that
        // distinct users are counted over small integers (or bitmaps), not strings.
        sql: "
            CREATE TABLE users (
                project_id  VARCHAR  NOT NULL,
                user_key    VARCHAR  NOT NULL,
                user_index  UINTEGER NOT NULL,
                PRIMARY KEY (project_id, user_key)
            );
            INSERT INTO users
            SELECT project_id, user_key,
                   row_number() OVER (PARTITION BY project_id ORDER BY first_seen, user_key)
            FROM (
                SELECT project_id, coalesce(user_id, anonymous_id, '') AS user_key,
                       min(timestamp) AS first_seen
                FROM events GROUP BY ALL
            );
            CREATE TABLE events_v4 (
                project_id          VARCHAR   NOT NULL,
                message_id          VARCHAR   NOT NULL,
                type                VARCHAR   NOT NULL,
                event               VARCHAR,
                name                VARCHAR,
                user_id             VARCHAR,
                anonymous_id        VARCHAR,
                group_id            VARCHAR,
                previous_id         VARCHAR,
                timestamp           TIMESTAMP NOT NULL,
                original_timestamp  TIMESTAMP,
                sent_at             TIMESTAMP,
                received_at         TIMESTAMP NOT NULL,
                properties          VARCHAR,
                traits              VARCHAR,
                context             VARCHAR,
                integrations        VARCHAR,
                page_path           VARCHAR,
                page_referrer       VARCHAR,
                page_url            VARCHAR,
                utm_campaign        VARCHAR,
                utm_source          VARCHAR,
                utm_medium          VARCHAR,
                utm_term            VARCHAR,
                utm_content         VARCHAR,
                library_name        VARCHAR,
                locale              VARCHAR,
                user_index          UINTEGER  NOT NULL,
                PRIMARY KEY (project_id, message_id)
            );
            INSERT INTO events_v4
            SELECT e.*, u.user_index
            FROM events AS e
            JOIN users AS u
              ON u.project_id = e.project_id
             AND u.user_key = coalesce(e.user_id, e.anonymous_id, '');
            DROP TABLE events;
            ALTER TABLE events_v4 RENAME TO events;",
    },
    Migration {
        version: 5,
        name: "person links",
        // One row per user number merged into another's person (identify and
        // alias calls); the links of events stored before are applied when the
        // file is opened (see `DuckDbRepository::open`).
        sql: "
            CREATE TABLE person_links (
                project_id    VARCHAR  NOT NULL,
                user_index    UINTEGER NOT NULL,
                person_index  UINTEGER NOT NULL,
                PRIMARY KEY (project_id, user_index)
            );",
    },
    Migration {
        version: 6,
        name: "visit attributes",
        // Device, location and source, derived at ingest (`crate::enrich`),
        // as real columns so that reports group and filter on them as fast
        // as on the page. Rows stored before have none.
        sql: "
            ALTER TABLE events ADD COLUMN browser VARCHAR;
            ALTER TABLE events ADD COLUMN browser_version VARCHAR;
            ALTER TABLE events ADD COLUMN os VARCHAR;
            ALTER TABLE events ADD COLUMN os_version VARCHAR;
            ALTER TABLE events ADD COLUMN device VARCHAR;
            ALTER TABLE events ADD COLUMN country VARCHAR;
            ALTER TABLE events ADD COLUMN region VARCHAR;
            ALTER TABLE events ADD COLUMN city VARCHAR;
            ALTER TABLE events ADD COLUMN referrer_domain VARCHAR;
            ALTER TABLE events ADD COLUMN source VARCHAR;
            ALTER TABLE events ADD COLUMN channel VARCHAR;",
    },
    Migration {
        version: 7,
        name: "kept sessions",
        // Sessions cut at write time (see `super::sessions`), so that session
        // queries read one row per session instead of sorting every event:
        // `timestamp` is the session's first event's time, the visit columns
        // are its first event's. Writes record which persons' sessions they
        // touched in `session_pending`; a project's sessions are read only
        // once `session_state` says they were built with its timeout.
        sql: "
            CREATE TABLE sessions (
                project_id       VARCHAR   NOT NULL,
                person           UINTEGER  NOT NULL,
                timestamp        TIMESTAMP NOT NULL,
                start_us         BIGINT    NOT NULL,
                end_us           BIGINT    NOT NULL,
                events           UINTEGER  NOT NULL,
                page_views       UINTEGER  NOT NULL,
                entry_page       VARCHAR,
                exit_page        VARCHAR,
                browser          VARCHAR,
                browser_version  VARCHAR,
                os               VARCHAR,
                os_version       VARCHAR,
                device           VARCHAR,
                country          VARCHAR,
                region           VARCHAR,
                city             VARCHAR,
                referrer_domain  VARCHAR,
                source           VARCHAR,
                channel          VARCHAR
            );
            CREATE TABLE session_pending (
                project_id  VARCHAR  NOT NULL,
                person      UINTEGER NOT NULL,
                lo_us       BIGINT   NOT NULL,
                hi_us       BIGINT   NOT NULL
            );
            CREATE TABLE session_state (
                project_id  VARCHAR PRIMARY KEY,
                timeout_us  BIGINT   NOT NULL,
                ready       BOOLEAN  NOT NULL,
                next_person UINTEGER NOT NULL
            );",
    },
    Migration {
        version: 8,
        name: "event rollups",
        // Hourly cells of events (see `super::rollups`), so that counts and
        // distinct users over a range read cells instead of every event:
        // `users` is a roaring bitmap of the cell's user numbers, and
        // `rollup_totals` keeps each hour's total over every type and name
        // (an empty `type`) apart, for the queries that read only those. Writes add
        // their cells to `rollup_deltas`; a project's cells are read once
        // `rollup_state` says they are built.
        sql: "
            CREATE TABLE event_rollups (
                project_id  VARCHAR  NOT NULL,
                hour_us     BIGINT   NOT NULL,
                type        VARCHAR  NOT NULL,
                event       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_totals (
                project_id  VARCHAR  NOT NULL,
                hour_us     BIGINT   NOT NULL,
                type        VARCHAR  NOT NULL,
                event       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_deltas (
                project_id  VARCHAR  NOT NULL,
                hour_us     BIGINT   NOT NULL,
                type        VARCHAR  NOT NULL,
                event       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_state (
                project_id      VARCHAR PRIMARY KEY,
                built_until_us  BIGINT  NOT NULL,
                ready           BOOLEAN NOT NULL
            );",
    },
    Migration {
        version: 9,
        name: "rollups by value",
        // Rollup cells of every kind (see `super::rollups`): `kind` names
        // what a cell counts its events by beside their type (empty for the
        // totals, `event:name`, `event:page`, `visit:country`, ...) and
        // `value` its value of it. The hours keep one table per kind (a scan
        // reads the user sets of every row of the row groups it touches),
        // `rollup_days` the sum of each UTC day's hours, `rollup_dirty` the
        // hours to recompute from events. The cells are derived: the earlier tables go
        // and every project's are built again.
        sql: "
            DROP TABLE event_rollups;
            DROP TABLE rollup_totals;
            DROP TABLE rollup_deltas;
            DELETE FROM rollup_state;
            CREATE TABLE rollup_hours_total (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_name (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_page (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_browser (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_os (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_device (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_country (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_region (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_hours_city (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_days (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_deltas (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL,
                kind        VARCHAR  NOT NULL,
                type        VARCHAR  NOT NULL,
                value       VARCHAR,
                events      UBIGINT  NOT NULL,
                users       BLOB     NOT NULL
            );
            CREATE TABLE rollup_dirty (
                project_id  VARCHAR  NOT NULL,
                at_us       BIGINT   NOT NULL
            );",
    },
    Migration {
        version: 10,
        name: "session cells",
        // Kept sessions summed per UTC hour of their start, one table per
        // kind (see storage::duckdb::sessions::cells); built after start.
        sql: "
            CREATE TABLE session_cells_total (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_entry_page (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_exit_page (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_referrer_domain (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_source (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_channel (
                project_id   VARCHAR  NOT NULL,
                at_us        BIGINT   NOT NULL,
                value        VARCHAR,
                sessions     UBIGINT  NOT NULL,
                events       UBIGINT  NOT NULL,
                page_views   UBIGINT  NOT NULL,
                bounces      UBIGINT  NOT NULL,
                duration_us  BIGINT   NOT NULL,
                persons      BLOB     NOT NULL
            );
            CREATE TABLE session_cells_state (
                project_id      VARCHAR PRIMARY KEY,
                built_until_us  BIGINT  NOT NULL
            );",
    },
    Migration {
        version: 11,
        name: "sessions in time order",
        // Whether a project's built sessions were rewritten in the order of
        // their start; a file's sessions built before are rewritten by the
        // next build step.
        sql: "ALTER TABLE session_state ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT false;",
    },
    Migration {
        version: 12,
        name: "user sets stored uncompressed",
        // DuckDB compresses large blobs with ZSTD, a block at a time, and a
        // scan decompresses every block its rows touch, whatever it selects:
        // reading the 90 total cells of `rollup_days` decompressed the user
        // sets of every kind (250 ms at 100 million events, against 2 ms
        // stored plainly). Roaring bitmaps are compact already, so the user
        // and person sets of every cell table are stored as they are.
        sql: concat!(
            rebuild_rollup_cells!("rollup_hours_total"),
            rebuild_rollup_cells!("rollup_hours_name"),
            rebuild_rollup_cells!("rollup_hours_page"),
            rebuild_rollup_cells!("rollup_hours_browser"),
            rebuild_rollup_cells!("rollup_hours_os"),
            rebuild_rollup_cells!("rollup_hours_device"),
            rebuild_rollup_cells!("rollup_hours_country"),
            rebuild_rollup_cells!("rollup_hours_region"),
            rebuild_rollup_cells!("rollup_hours_city"),
            rebuild_rollup_cells!("rollup_days"),
            rebuild_rollup_cells!("rollup_deltas"),
            rebuild_session_cells!("session_cells_total"),
            rebuild_session_cells!("session_cells_entry_page"),
            rebuild_session_cells!("session_cells_exit_page"),
            rebuild_session_cells!("session_cells_referrer_domain"),
            rebuild_session_cells!("session_cells_source"),
            rebuild_session_cells!("session_cells_channel"),
        ),
    },
    Migration {
        version: 13,
        name: "events without a key",
        // DuckDB holds a table's key index wholly in memory (about 80 bytes
        // per event on the two VARCHARs): `messageId` dedup moved to the
        // message index beside the file (`super::message_index`), and each
        // row records the write that stored it, so that the index catches up
        // with what a crash kept from it. DuckDB cannot drop a key, so the
        // table is copied, in its order.
        sql: "
            CREATE TABLE events_v13 (
                project_id          VARCHAR   NOT NULL,
                message_id          VARCHAR   NOT NULL,
                type                VARCHAR   NOT NULL,
                event               VARCHAR,
                name                VARCHAR,
                user_id             VARCHAR,
                anonymous_id        VARCHAR,
                group_id            VARCHAR,
                previous_id         VARCHAR,
                timestamp           TIMESTAMP NOT NULL,
                original_timestamp  TIMESTAMP,
                sent_at             TIMESTAMP,
                received_at         TIMESTAMP NOT NULL,
                properties          VARCHAR,
                traits              VARCHAR,
                context             VARCHAR,
                integrations        VARCHAR,
                page_path           VARCHAR,
                page_referrer       VARCHAR,
                page_url            VARCHAR,
                utm_campaign        VARCHAR,
                utm_source          VARCHAR,
                utm_medium          VARCHAR,
                utm_term            VARCHAR,
                utm_content         VARCHAR,
                library_name        VARCHAR,
                locale              VARCHAR,
                user_index          UINTEGER  NOT NULL,
                browser             VARCHAR,
                browser_version     VARCHAR,
                os                  VARCHAR,
                os_version          VARCHAR,
                device              VARCHAR,
                country             VARCHAR,
                region              VARCHAR,
                city                VARCHAR,
                referrer_domain     VARCHAR,
                source              VARCHAR,
                channel             VARCHAR,
                write_seq           UBIGINT   NOT NULL DEFAULT 0
            );
            INSERT INTO events_v13 SELECT *, 0 FROM events;
            DROP TABLE events;
            ALTER TABLE events_v13 RENAME TO events;",
    },
];

/// The version that created `person_links`.
pub const PERSON_LINKS_VERSION: u32 = 5;

/// The latest schema version.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every migration up to `target` that the file lacks; returns how many ran.
pub fn migrate_to(conn: &Connection, target: u32) -> Result<usize, StorageError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       VARCHAR NOT NULL,
            applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );",
    )
    .map_err(|e| StorageError::Migration {
        version: 0,
        name: "schema_migrations",
        message: e.to_string(),
    })?;
    let applied = applied_versions(conn)?;
    let mut ran = 0;
    for migration in MIGRATIONS.iter().filter(|m| m.version <= target) {
        if applied.contains(&migration.version) {
            continue;
        }
        apply(conn, migration).map_err(|e| StorageError::Migration {
            version: migration.version,
            name: migration.name,
            message: e.to_string(),
        })?;
        ran += 1;
    }
    Ok(ran)
}

fn apply(conn: &Connection, migration: &Migration) -> duckdb::Result<()> {
    super::in_transaction(conn, || {
        conn.execute_batch(migration.sql)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
            duckdb::params![migration.version, migration.name],
        )?;
        Ok(())
    })
}

/// Versions recorded as applied.
pub fn applied_versions(conn: &Connection) -> Result<Vec<u32>, StorageError> {
    let mut statement = conn.prepare("SELECT version FROM schema_migrations ORDER BY version")?;
    let versions = statement
        .query_map([], |row| row.get::<_, u32>(0))
        .and_then(Iterator::collect)?;
    Ok(versions)
}
