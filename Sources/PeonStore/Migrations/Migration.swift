/// One schema step. Never edited once shipped: a change is a new migration.
public struct Migration: Sendable {
    public let id: String
    public let sql: String
}

/// Applies `Migration.all` in order, each in its own `BEGIN IMMEDIATE` transaction that first
/// checks `schema_migrations`, so processes starting at once apply each step exactly once.
public enum Migrator {
    public static func migrate(_ db: Connection) throws {
        try db.transaction("BEGIN IMMEDIATE") { tx in
            try tx.query("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
        }
        for migration in Migration.all {
            try db.transaction("BEGIN IMMEDIATE") { tx in
                guard try tx.query("SELECT 1 FROM schema_migrations WHERE id = ?", [.text(migration.id)]).isEmpty else { return }
                try db.execute(migration.sql)
                try tx.query("INSERT INTO schema_migrations (id, applied_at) VALUES (?, unixepoch())", [.text(migration.id)])
            }
        }
    }

    /// Ids of the applied migrations, oldest first.
    public static func applied(_ db: Connection) throws(StoreError) -> [String] {
        try db.query("SELECT id FROM schema_migrations ORDER BY id").compactMap { $0.first?.text }
    }
}

extension Migration {
    public static let all: [Migration] = [
        core, lifecycle, plans, runtime, harden, swarm, api, day2, logs, backups, backupPolicies, logFollows, jobPayloads, readiness,
        sleep,
    ]

    /// Sleep and wake: whether an idle stop puts the server to sleep (its node holds its ports and
    /// the first player's packet starts it), and whether it sleeps now.
    static let sleep = Migration(
        id: "0016_sleep",
        sql: """
            ALTER TABLE servers ADD COLUMN wake_on_connect INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE servers ADD COLUMN sleeping INTEGER NOT NULL DEFAULT 0;
            """)

    /// Joinable, not just running: when the server was last started, when its plan's probe first
    /// answered after that, and whether `start_timeout` passed first. Servers running already
    /// count as ready (both unknown).
    static let readiness = Migration(
        id: "0015_readiness",
        sql: """
            ALTER TABLE servers ADD COLUMN started_at INTEGER;
            ALTER TABLE servers ADD COLUMN ready_at INTEGER;
            ALTER TABLE servers ADD COLUMN start_failed INTEGER NOT NULL DEFAULT 0;
            """)

    /// The files API's bytes: a write's file, stored with its job by the API; a read's, stored by
    /// the scheduler as the job ends. Deleted once taken (and by retention when nobody took them).
    static let jobPayloads = Migration(
        id: "0014_job_payloads",
        sql: """
            CREATE TABLE job_payloads (
                job_id INTEGER PRIMARY KEY,
                bytes  BLOB NOT NULL
            ) STRICT;
            """)

    /// Plans, API keys, audit and process metadata: what the API stack needs.
    static let core = Migration(
        id: "0001_core",
        sql: """
            CREATE TABLE plans (
                game_uid   TEXT PRIMARY KEY,
                title      TEXT NOT NULL,
                plan_url   TEXT NOT NULL,
                listed     INTEGER NOT NULL DEFAULT 1,   -- 1 when the plans.json index names it
                document   TEXT NOT NULL,                -- the validated plan.json
                source     TEXT NOT NULL,                -- 'local' or the URL it came from
                updated_at INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE api_keys (
                id           TEXT PRIMARY KEY,
                prefix       TEXT NOT NULL,               -- first characters of the key, to name it
                lookup       TEXT NOT NULL,               -- first 16 hex digits of the hash, indexed
                hash         BLOB NOT NULL,               -- SHA-256 of the key; the key itself is never stored
                scope        TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
                label        TEXT NOT NULL DEFAULT '',
                created_at   INTEGER NOT NULL,
                revoked_at   INTEGER,
                last_used_at INTEGER
            ) STRICT;
            CREATE INDEX api_keys_lookup ON api_keys (lookup);
            CREATE TABLE audit (
                id         INTEGER PRIMARY KEY,
                at         TEXT NOT NULL,                -- ISO-8601 UTC
                key_id     TEXT,
                client_ip  TEXT NOT NULL,
                request_id TEXT NOT NULL DEFAULT '',
                method     TEXT NOT NULL,
                path       TEXT NOT NULL,
                status     INTEGER NOT NULL,
                result     TEXT NOT NULL
            ) STRICT;
            CREATE INDEX audit_at ON audit (at);
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
            """)

    /// Every change to what `GET /servers` shows bumps one counter, so workers can keep the
    /// rendered list until it changes.
    static let listVersionTriggers = [
        ("servers", "INSERT"), ("servers", "UPDATE"), ("servers", "DELETE"), ("schedules", "INSERT"), ("schedules", "DELETE"),
    ]
    .map { table, event in
        """
        CREATE TRIGGER \(table)_\(event.lowercased()) AFTER \(event) ON \(table) BEGIN
            INSERT INTO meta (key, value) VALUES ('servers.version', '1')
            ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT);
        END;
        """
    }.joined(separator: "\n")

    /// Game servers, their jobs, timed actions, backups and samples: the scheduler's tables.
    static let lifecycle = Migration(
        id: "0002_lifecycle",
        sql: """
            CREATE TABLE servers (
                uid            TEXT PRIMARY KEY,         -- game_uid.servername
                game_uid       TEXT NOT NULL,
                servername     TEXT NOT NULL,
                description    TEXT NOT NULL DEFAULT '',
                settings       TEXT NOT NULL DEFAULT '{}',
                limits         TEXT NOT NULL DEFAULT '{}',
                ports          TEXT NOT NULL DEFAULT '[]',
                container_type TEXT NOT NULL DEFAULT 'unknown',  -- what the image says of itself
                build_version  TEXT NOT NULL DEFAULT 'unknown',
                crash_policy   TEXT NOT NULL DEFAULT '{}',       -- {"enabled","max_restarts","window_seconds"}
                config         TEXT NOT NULL DEFAULT '{}',       -- last snapshot of the config dir, for listings
                desired_state  TEXT NOT NULL DEFAULT 'stopped',
                observed_state TEXT NOT NULL DEFAULT 'unknown',
                container_id   TEXT,
                created_at     INTEGER NOT NULL,
                updated_at     INTEGER NOT NULL,
                UNIQUE (game_uid, servername)
            ) STRICT;
            CREATE TABLE jobs (
                id          INTEGER PRIMARY KEY,
                server_uid  TEXT NOT NULL,
                kind        TEXT NOT NULL,
                arguments   TEXT NOT NULL DEFAULT '{}',
                state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
                attempts    INTEGER NOT NULL DEFAULT 0,
                error       TEXT,
                result      TEXT,
                created_at  INTEGER NOT NULL,
                not_before  INTEGER NOT NULL DEFAULT 0,
                started_at  INTEGER,
                finished_at INTEGER
            ) STRICT;
            CREATE INDEX jobs_pending ON jobs (state, not_before);
            CREATE INDEX jobs_server ON jobs (server_uid, state);
            CREATE TABLE schedules (
                id         INTEGER PRIMARY KEY,
                server_uid TEXT NOT NULL REFERENCES servers (uid) ON DELETE CASCADE,
                action     TEXT NOT NULL,
                due_at     INTEGER NOT NULL,
                wire_time  TEXT NOT NULL,                -- as the client gave it: PEON echoes int or string
                created_at INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX schedules_due ON schedules (due_at);
            CREATE INDEX schedules_server ON schedules (server_uid, due_at);
            \(listVersionTriggers)
            CREATE TABLE crashes (
                server_uid TEXT NOT NULL,
                at         INTEGER NOT NULL,
                exit_code  INTEGER NOT NULL,
                oom_killed INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX crashes_server ON crashes (server_uid, at);
            CREATE TABLE backups (
                id         INTEGER PRIMARY KEY,
                server_uid TEXT NOT NULL,
                path       TEXT NOT NULL,
                bytes      INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE stats (
                server_uid  TEXT NOT NULL,
                at          INTEGER NOT NULL,
                cpu_percent REAL NOT NULL,
                memory      INTEGER NOT NULL,
                memory_limit INTEGER NOT NULL,
                net_rx      INTEGER NOT NULL,
                net_tx      INTEGER NOT NULL,
                uptime      INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (server_uid, at)
            ) STRICT, WITHOUT ROWID;
            """)

    /// The files of each plan's `actions/`, stored with the plan so a refresh swaps both in one
    /// transaction and the scheduler copies what the catalog holds, not a folder edited since.
    static let plans = Migration(
        id: "0003_plans",
        sql: """
            CREATE TABLE plan_files (
                game_uid   TEXT NOT NULL REFERENCES plans (game_uid) ON DELETE CASCADE,
                path       TEXT NOT NULL,                -- relative to actions/, validated by PlanActions
                executable INTEGER NOT NULL,
                content    BLOB NOT NULL,
                PRIMARY KEY (game_uid, path)
            ) STRICT, WITHOUT ROWID;
            """)

    /// Open log follows (`GET /server/logs?follow=true`), shared by the API's processes so each
    /// key and each server holds a bounded number.
    static let logFollows = Migration(
        id: "0013_log_follows",
        sql: """
            CREATE TABLE log_follows (
                id         INTEGER PRIMARY KEY,
                key_id     TEXT NOT NULL,
                server_uid TEXT NOT NULL,
                pid        INTEGER NOT NULL,             -- the API process serving it
                started_at INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX log_follows_key ON log_follows (key_id);
            CREATE INDEX log_follows_server ON log_follows (server_uid);
            """)
}

extension Migration {
    /// A long job's progress (`{"phase","percent","lines"}`), written by the scheduler while it runs.
    static let runtime = Migration(
        id: "0004_runtime",
        sql: """
            ALTER TABLE jobs ADD COLUMN progress TEXT;
            """)
}

extension Migration {
    /// Keys: which one came from `PEON_API_KEY` (a new value revokes it). Indexes for pruning by age.
    static let harden = Migration(
        id: "0006_harden",
        sql: """
            ALTER TABLE api_keys ADD COLUMN bootstrap INTEGER NOT NULL DEFAULT 0;  -- 1: made from PEON_API_KEY
            UPDATE api_keys SET bootstrap = 1 WHERE label = 'PEON_API_KEY';
            CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
            CREATE INDEX crashes_at ON crashes (at);
            CREATE INDEX stats_at ON stats (at);
            """)
}

extension Migration {
    /// The recent output of each server's game (a bounded tail per server), copied from the
    /// platform by the scheduler so the API serves and streams it without touching Docker.
    static let logs = Migration(
        id: "0010_logs",
        sql: """
            CREATE TABLE server_logs (
                server_uid TEXT NOT NULL,
                seq        INTEGER NOT NULL,   -- per server, increasing: the SSE event id
                at         INTEGER NOT NULL,   -- unix milliseconds (the platform's timestamp)
                session    INTEGER NOT NULL,   -- the container run (its start, unix seconds)
                stream     INTEGER NOT NULL,   -- 1 stdout, 2 stderr
                line       TEXT NOT NULL,
                PRIMARY KEY (server_uid, seq)
            ) STRICT, WITHOUT ROWID;
            """)
}

extension Migration {
    /// Backups as first-class objects: checksum, format and why they were made.
    static let backups = Migration(
        id: "0011_backups",
        sql: """
            ALTER TABLE backups ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
            ALTER TABLE backups ADD COLUMN format TEXT NOT NULL DEFAULT 'tar.zst';
            CREATE INDEX backups_server ON backups (server_uid, created_at);
            """)

    /// Retention per server (keep the newest N, the newest of each of D days and of W weeks); a
    /// server without a row follows `PEON_BACKUP_KEEP`.
    static let backupPolicies = Migration(
        id: "0012_backup_policies",
        sql: """
            CREATE TABLE backup_policies (
                server_uid  TEXT PRIMARY KEY REFERENCES servers (uid) ON DELETE CASCADE,
                keep_last   INTEGER NOT NULL CHECK (keep_last >= 1),
                keep_daily  INTEGER NOT NULL DEFAULT 0 CHECK (keep_daily >= 0),
                keep_weekly INTEGER NOT NULL DEFAULT 0 CHECK (keep_weekly >= 0),
                updated_at  INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;
            """)
}

extension Migration {
    /// Key expiry, and the metrics every process writes: per-process counters and latency
    /// histograms merged by UPSERT (SQLite is the one store all API processes and threads share),
    /// and each API process's live thread counts.
    static let api = Migration(
        id: "0008_api",
        sql: """
            ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;   -- refused at auth from this time on
            CREATE INDEX audit_key ON audit (key_id, id);
            CREATE TABLE metric_counters (
                name       TEXT NOT NULL,
                labels     TEXT NOT NULL,                -- rendered Prometheus labels, e.g. client="1.2.3.4"
                value      INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                PRIMARY KEY (name, labels)
            ) STRICT, WITHOUT ROWID;
            CREATE TABLE metric_histograms (
                name    TEXT NOT NULL,
                labels  TEXT NOT NULL,
                count   INTEGER NOT NULL,
                sum     REAL NOT NULL,
                buckets TEXT NOT NULL,                   -- JSON array of per-bucket (not cumulative) counts
                PRIMARY KEY (name, labels)
            ) STRICT, WITHOUT ROWID;
            CREATE TABLE api_processes (
                pid        INTEGER PRIMARY KEY,
                threads    INTEGER NOT NULL,
                busy       INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT;
            """)
}

extension Migration {
    /// Cron schedules, idle auto-stop and player counts, webhooks and their outbox.
    static let day2 = Migration(
        id: "0009_day2",
        sql: """
            CREATE TABLE cron_schedules (
                id          INTEGER PRIMARY KEY,
                server_uid  TEXT NOT NULL REFERENCES servers (uid) ON DELETE CASCADE,
                cron        TEXT NOT NULL,
                tz          TEXT NOT NULL,
                action      TEXT NOT NULL,
                command     TEXT,
                next_run    INTEGER,                     -- NULL: never fires again
                last_run    INTEGER,
                last_result TEXT,                        -- queued, skipped, failed; the job's state once it ran
                last_error  TEXT,
                last_job    INTEGER,
                created_at  INTEGER NOT NULL
            ) STRICT;
            CREATE INDEX cron_schedules_next ON cron_schedules (next_run);
            CREATE INDEX cron_schedules_server ON cron_schedules (server_uid);
            ALTER TABLE servers ADD COLUMN idle_stop INTEGER;          -- minutes with no players before a stop
            ALTER TABLE servers ADD COLUMN players INTEGER;            -- last count; NULL unknown
            ALTER TABLE servers ADD COLUMN max_players INTEGER;
            ALTER TABLE servers ADD COLUMN idle_since INTEGER;         -- first poll that saw zero players
            CREATE TABLE webhooks (
                id         TEXT PRIMARY KEY,
                url        TEXT NOT NULL,
                events     TEXT NOT NULL,                -- JSON array; [] is every event
                server_uid TEXT,                         -- NULL: every server
                secret     TEXT NOT NULL,
                created_at INTEGER NOT NULL
            ) STRICT;
            CREATE TABLE webhook_deliveries (
                id           INTEGER PRIMARY KEY,
                webhook_id   TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                event        TEXT NOT NULL,
                server_uid   TEXT NOT NULL,
                body         TEXT NOT NULL,
                state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
                attempts     INTEGER NOT NULL DEFAULT 0,
                next_attempt INTEGER NOT NULL,
                last_status  INTEGER,
                last_error   TEXT,
                created_at   INTEGER NOT NULL,
                finished_at  INTEGER
            ) STRICT;
            CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt);
            CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
            """)
}

extension Migration {
    /// Multi-node platforms: the node that holds each server, and the nodes as the scheduler last
    /// saw them (the API cannot ask the platform, so the scheduler mirrors them here).
    static let swarm = Migration(
        id: "0007_swarm",
        sql: """
            ALTER TABLE servers ADD COLUMN node TEXT;
            CREATE TABLE nodes (
                name         TEXT PRIMARY KEY,
                address      TEXT NOT NULL,
                state        TEXT NOT NULL,     -- ready, down, unknown
                availability TEXT NOT NULL,     -- active, pause, drain
                memory_bytes INTEGER NOT NULL,
                nano_cpus    INTEGER NOT NULL,
                labels       TEXT NOT NULL,     -- JSON object
                updated_at   INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID;
            """)
}
