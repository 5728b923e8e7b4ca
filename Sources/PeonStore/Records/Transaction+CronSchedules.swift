public import PeonJSON

/// One cron schedule of a server, with the outcome of its last run.
public struct CronScheduleRecord: Sendable, Equatable {
    public let id: Int64
    public let serverUID: String
    public let cron: String
    public let tz: String
    public let action: String
    public let command: String?
    public let nextRun: Int64?
    public let lastRun: Int64?
    /// `queued`, `skipped`, `failed`, or the state of the job it enqueued once that moved on.
    public let lastResult: String?
    public let lastError: String?
    public let lastJob: Int64?

    /// The schedule as `GET /server/schedule/<uid>` shows it.
    public var json: JSON {
        func int(_ v: Int64?) -> JSON { v.map { .number(Double($0)) } ?? .null }
        return .object([
            ("id", .number(Double(id))), ("server_uid", .string(serverUID)), ("cron", .string(cron)), ("tz", .string(tz)),
            ("action", .string(action)), ("command", command.map(JSON.string) ?? .null), ("next_run", int(nextRun)),
            ("last_run", int(lastRun)), ("last_result", lastResult.map(JSON.string) ?? .null),
            ("last_error", lastError.map(JSON.string) ?? .null), ("last_job", int(lastJob)),
        ])
    }
}

extension Transaction {
    /// The job's state stands for the last result once the job has moved past `queued`.
    static let cronColumns = """
        c.id, c.server_uid, c.cron, c.tz, c.action, c.command, c.next_run, c.last_run,
        coalesce((SELECT j.state FROM jobs j WHERE j.id = c.last_job AND c.last_result = 'queued'), c.last_result),
        coalesce((SELECT j.error FROM jobs j WHERE j.id = c.last_job AND c.last_result = 'queued'), c.last_error), c.last_job
        """

    public func insertCronSchedule(
        server: String, cron: String, tz: String, action: String, command: String?, nextRun: Int64?, now: Int64
    ) throws(StoreError) -> Int64 {
        try query(
            """
            INSERT INTO cron_schedules (server_uid, cron, tz, action, command, next_run, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [
                .text(server), .text(cron), .text(tz), .text(action), command.map(SQLValue.text) ?? .null,
                nextRun.map(SQLValue.integer) ?? .null, .integer(now),
            ]
        ).first?.first?.integer ?? 0
    }

    public func cronSchedules(server: String) throws(StoreError) -> [CronScheduleRecord] {
        try query("SELECT \(Self.cronColumns) FROM cron_schedules c WHERE c.server_uid = ? ORDER BY c.id", [.text(server)])
            .compactMap(Self.cronSchedule)
    }

    public func cronSchedule(_ id: Int64) throws(StoreError) -> CronScheduleRecord? {
        try query("SELECT \(Self.cronColumns) FROM cron_schedules c WHERE c.id = ?", [.integer(id)]).first.flatMap(Self.cronSchedule)
    }

    /// Removes one schedule of `server`; false when it has no such schedule.
    public func deleteCronSchedule(_ id: Int64, server: String) throws(StoreError) -> Bool {
        try query("DELETE FROM cron_schedules WHERE id = ? AND server_uid = ?", [.integer(id), .text(server)])
        return changes > 0
    }

    /// Schedules due by `now`, earliest first (the scheduler decides and records each in the same transaction).
    public func dueCronSchedules(now: Int64) throws(StoreError) -> [CronScheduleRecord] {
        try query(
            "SELECT \(Self.cronColumns) FROM cron_schedules c WHERE c.next_run IS NOT NULL AND c.next_run <= ? ORDER BY c.next_run",
            [.integer(now)]
        ).compactMap(Self.cronSchedule)
    }

    /// Records a run (or a skipped one) and the next run.
    public func recordCronRun(
        _ id: Int64, at: Int64, result: String, error: String?, job: Int64?, nextRun: Int64?
    ) throws(StoreError) {
        try query(
            "UPDATE cron_schedules SET last_run = ?, last_result = ?, last_error = ?, last_job = ?, next_run = ? WHERE id = ?",
            [
                .integer(at), .text(result), error.map(SQLValue.text) ?? .null, job.map(SQLValue.integer) ?? .null,
                nextRun.map(SQLValue.integer) ?? .null, .integer(id),
            ])
    }

    static func cronSchedule(_ r: Row) -> CronScheduleRecord? {
        guard let id = r[0].integer else { return nil }
        return CronScheduleRecord(
            id: id, serverUID: r[1].text ?? "", cron: r[2].text ?? "", tz: r[3].text ?? "UTC", action: r[4].text ?? "",
            command: r[5].text, nextRun: r[6].integer, lastRun: r[7].integer, lastResult: r[8].text, lastError: r[9].text,
            lastJob: r[10].integer)
    }
}
