/// How long history is kept (`PEON_RETAIN_DAYS`, `PEON_RETAIN_ROWS`, `PEON_STATS_RETAIN_HOURS`).
public struct Retention: Sendable, Equatable {
    public var days: Int
    public var rows: Int
    public var statsHours: Int

    public init(days: Int = 30, rows: Int = 100_000, statsHours: Int = 24) {
        self.days = days
        self.rows = rows
        self.statsHours = statsHours
    }
}

extension Transaction {
    /// Deletes history older than the retention, and the oldest rows beyond `rows` per table:
    /// finished jobs, crashes, audit rows, stats samples and finished webhook deliveries. Unfinished
    /// jobs and pending deliveries are never touched.
    /// Returns how many rows went.
    @discardableResult
    public func prune(_ retention: Retention, now: Int64) throws(StoreError) -> Int {
        let cutoff = now - Int64(retention.days) * 86400
        let rows = Int64(retention.rows)
        let finished = "state NOT IN ('queued', 'running')"
        var removed = 0
        let steps: [(String, [SQLValue])] = [
            ("DELETE FROM jobs WHERE \(finished) AND finished_at < ?", [.integer(cutoff)]),
            (
                "DELETE FROM jobs WHERE \(finished) AND id <= (SELECT id FROM jobs WHERE \(finished) ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [.integer(rows)]
            ),
            ("DELETE FROM crashes WHERE at < ?", [.integer(cutoff)]),
            ("DELETE FROM crashes WHERE rowid <= (SELECT rowid FROM crashes ORDER BY rowid DESC LIMIT 1 OFFSET ?)", [.integer(rows)]),
            // Audit times are ISO-8601 UTC text, which sorts like the time it names.
            ("DELETE FROM audit WHERE at < strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch')", [.integer(cutoff)]),
            ("DELETE FROM audit WHERE id <= (SELECT id FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?)", [.integer(rows)]),
            ("DELETE FROM stats WHERE at < ?", [.integer(now - Int64(retention.statsHours) * 3600)]),
            ("DELETE FROM stats WHERE at < (SELECT at FROM stats ORDER BY at DESC LIMIT 1 OFFSET ?)", [.integer(rows)]),
            // Failed keys per client: one row per address, so a spread-out guesser cannot grow it forever.
            ("DELETE FROM metric_counters WHERE name = 'peon_auth_failures_total' AND updated_at < ?", [.integer(cutoff)]),
            (
                """
                DELETE FROM metric_counters WHERE name = 'peon_auth_failures_total' AND updated_at < (SELECT updated_at
                FROM metric_counters WHERE name = 'peon_auth_failures_total' ORDER BY updated_at DESC LIMIT 1 OFFSET ?)
                """, [.integer(rows)]
            ),
            ("DELETE FROM api_processes WHERE updated_at < ?", [.integer(now - 3600)]),
            // A files API job's bytes nobody took (the request gave up waiting), and an orphan's.
            (
                """
                DELETE FROM job_payloads WHERE job_id NOT IN (SELECT id FROM jobs)
                OR job_id IN (SELECT id FROM jobs WHERE \(finished) AND finished_at < ?)
                """, [.integer(now - 600)]
            ),
            // Finished webhook deliveries; pending ones are never touched.
            ("DELETE FROM webhook_deliveries WHERE state != 'pending' AND created_at < ?", [.integer(cutoff)]),
            (
                """
                DELETE FROM webhook_deliveries WHERE state != 'pending'
                AND id <= (SELECT id FROM webhook_deliveries WHERE state != 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?)
                """, [.integer(rows)]
            ),
        ]
        for (sql, arguments) in steps {
            try query(sql, arguments)
            removed += changes
        }
        return removed
    }
}
