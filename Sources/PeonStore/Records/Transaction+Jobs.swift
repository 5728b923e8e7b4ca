public import PeonCore
public import PeonJSON

/// One job row.
public struct JobRecord: Sendable, Equatable {
    public let id: Int64
    public let serverUID: String
    public let kind: JobKind
    public let arguments: JSON
    public let state: JobState
    public let attempts: Int
    public let error: String?
    public let result: JSON?
    public let createdAt: Int64
    public let startedAt: Int64?
    public let finishedAt: Int64?
    /// `{"phase": "pulling|building|installing|starting", "percent": n?, "lines": [...]}` while it runs.
    public let progress: JSON?

    /// What the job does, read back through the one job contract (a row that is not exactly one
    /// of its requests is refused).
    public var request: JobRequest { get throws(DomainError) { try JobRequest(kind: kind, arguments: arguments) } }

    /// The failure code the runner recorded, when the job failed with one the API answers itself.
    public var failureCode: JobFailureCode? {
        state == .failed ? result?["code"]?.stringValue.flatMap(JobFailureCode.init(rawValue:)) : nil
    }

    /// The job as `GET /jobs/<id>` shows it.
    public var json: JSON {
        .object([
            ("id", .number(Double(id))), ("server_uid", .string(serverUID)), ("kind", .string(kind.rawValue)),
            ("state", .string(state.rawValue)), ("attempts", .int(attempts)), ("error", error.map(JSON.string) ?? .null),
            ("created_at", .number(Double(createdAt))), ("started_at", startedAt.map { .number(Double($0)) } ?? .null),
            ("finished_at", finishedAt.map { .number(Double($0)) } ?? .null), ("progress", progress ?? .null),
        ])
    }
}

extension Transaction {
    static let jobColumns = "id, server_uid, kind, arguments, state, attempts, error, result, created_at, started_at, finished_at, progress"

    @discardableResult
    public func enqueueJob(server: String, _ request: JobRequest, notBefore: Int64 = 0, now: Int64) throws(StoreError) -> Int64 {
        let rows = try query(
            "INSERT INTO jobs (server_uid, kind, arguments, created_at, not_before) VALUES (?, ?, ?, ?, ?) RETURNING id",
            [.text(server), .text(request.kind.rawValue), .text(request.arguments.text), .integer(now), .integer(notBefore)])
        // Someone chose the server's state: it no longer sleeps (its node lets its ports go).
        if request.endsSleep { try setSleeping(server: server, false) }
        return rows.first?.first?.integer ?? 0
    }

    /// Whether a queued job's delay (`not_before`, a crash restart's back-off) ended in
    /// (`after`, `upTo`]: runners asleep must look again.
    public func jobsCameDue(after: Int64, upTo: Int64) throws(StoreError) -> Bool {
        try !query(
            "SELECT 1 FROM jobs WHERE state = 'queued' AND not_before > ? AND not_before <= ? LIMIT 1", [.integer(after), .integer(upTo)]
        ).isEmpty
    }

    /// Which runner claims a job: the server's actions, one at a time per server in order, or the
    /// files API's short reads and writes, which wait for no action.
    public enum Lane: Sendable { case actions, files }

    /// Claims the oldest due job of `lane`: for actions, the oldest whose server has no action
    /// running and no older one queued; for files, the oldest.
    ///
    /// Runs inside the caller's BEGIN IMMEDIATE, so two schedulers never claim the same job.
    public func claimNextJob(now: Int64, lane: Lane = .actions) throws(StoreError) -> JobRecord? {
        let files = "(" + JobKind.fileKinds.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
        let pick: String
        switch lane {
        case .actions:
            pick = """
                SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.not_before <= ? AND j.kind NOT IN \(files)
                  AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.server_uid = j.server_uid AND r.state = 'running'
                                    AND r.kind NOT IN \(files))
                  AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.server_uid = j.server_uid AND e.state = 'queued' AND e.id < j.id
                                    AND e.kind NOT IN \(files))
                ORDER BY j.id LIMIT 1
                """
        case .files:
            pick = "SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.not_before <= ? AND j.kind IN \(files) ORDER BY j.id LIMIT 1"
        }
        return try query(
            """
            UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1
            WHERE id = (\(pick))
            RETURNING \(Self.jobColumns)
            """, [.integer(now), .integer(now)]
        ).first.flatMap(Self.job)
    }

    /// Stores the bytes of a files API job (a write's input, a read's output).
    public func setJobPayload(_ id: Int64, _ bytes: [UInt8]) throws(StoreError) {
        try query("INSERT OR REPLACE INTO job_payloads (job_id, bytes) VALUES (?, ?)", [.integer(id), .blob(bytes)])
    }

    /// Deletes a job's stored bytes (a write's, once used), without reading them.
    public func deleteJobPayload(_ id: Int64) throws(StoreError) {
        try query("DELETE FROM job_payloads WHERE job_id = ?", [.integer(id)])
    }

    /// A job's stored bytes, nil when there are none; `take` deletes them.
    public func jobPayload(_ id: Int64, take: Bool = false) throws(StoreError) -> [UInt8]? {
        let bytes = try query("SELECT bytes FROM job_payloads WHERE job_id = ?", [.integer(id)]).first.map { $0[0].blob ?? [] }
        if take, bytes != nil { try deleteJobPayload(id) }
        return bytes
    }

    public func finishJob(_ id: Int64, state: JobState, error: String? = nil, result: JSON? = nil, now: Int64) throws(StoreError) {
        try query(
            "UPDATE jobs SET state = ?, error = ?, result = ?, finished_at = ? WHERE id = ?",
            [.text(state.rawValue), error.map(SQLValue.text) ?? .null, result.map { .text($0.text) } ?? .null, .integer(now), .integer(id)])
        // Webhooks hear of it in the same transaction (created, started, stopped, update_done).
        if state == .succeeded { try emitJobEvent(id, now: now) }
    }

    /// Records a running job's progress (the scheduler throttles how often).
    public func setJobProgress(_ id: Int64, _ progress: JSON) throws(StoreError) {
        try query("UPDATE jobs SET progress = ? WHERE id = ?", [.text(progress.text), .integer(id)])
    }

    /// Puts a running job back in the queue for `seconds`, not counting this attempt (its platform
    /// was unreachable: nothing it did is the job's fault).
    public func deferJob(_ id: Int64, seconds: Int64, now: Int64) throws(StoreError) {
        try query(
            "UPDATE jobs SET state = 'queued', not_before = ?, started_at = NULL, attempts = max(attempts - 1, 0) WHERE id = ?",
            [.integer(now + seconds), .integer(id)])
    }

    public func job(_ id: Int64) throws(StoreError) -> JobRecord? {
        try query("SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", [.integer(id)]).first.flatMap(Self.job)
    }

    /// Jobs a killed scheduler left running go back to the queue (their steps are idempotent),
    /// except those already claimed `maximumAttempts` times: each claim after the first followed a
    /// scheduler death during that job, so it is failed with the reason instead (a poison job).
    /// Returns how many were re-queued, and the failed ones.
    public func requeueInterruptedJobs(maximumAttempts: Int, now: Int64) throws(StoreError) -> (requeued: Int, failed: [JobRecord]) {
        let failed = try query(
            """
            UPDATE jobs SET state = 'failed', finished_at = ?,
                error = 'The scheduler died while running this job ' || attempts || ' times; it is not retried.'
            WHERE state = 'running' AND attempts >= ? RETURNING \(Self.jobColumns)
            """, [.integer(now), .integer(Int64(maximumAttempts))]
        ).compactMap(Self.job)
        try query("UPDATE jobs SET state = 'queued' WHERE state = 'running'")
        return (changes, failed)
    }

    /// The unfinished job of a server, if any (queued or running).
    public func pendingJobs(server: String) throws(StoreError) -> [JobRecord] {
        try query(
            "SELECT \(Self.jobColumns) FROM jobs WHERE server_uid = ? AND state IN ('queued', 'running') ORDER BY id", [.text(server)]
        ).compactMap(Self.job)
    }

    /// Unfinished (queued or running) jobs of `server`, and of all servers.
    public func pendingJobCounts(server: String) throws(StoreError) -> (server: Int, total: Int) {
        let row = try query(
            "SELECT count(*) FILTER (WHERE server_uid = ?), count(*) FROM jobs WHERE state IN ('queued', 'running')", [.text(server)]
        ).first
        return (Int(row?[0].integer ?? 0), Int(row?[1].integer ?? 0))
    }

    static func job(_ r: Row) -> JobRecord? {
        guard let id = r[0].integer, let kind = JobKind(rawValue: r[2].text ?? ""), let state = JobState(rawValue: r[4].text ?? "") else {
            return nil
        }
        return JobRecord(
            id: id, serverUID: r[1].text ?? "", kind: kind, arguments: (try? JSON.parse(r[3].text ?? "{}")) ?? .object([]), state: state,
            attempts: Int(r[5].integer ?? 0), error: r[6].text, result: r[7].text.flatMap { try? JSON.parse($0) },
            createdAt: r[8].integer ?? 0, startedAt: r[9].integer, finishedAt: r[10].integer,
            progress: r[11].text.flatMap { try? JSON.parse($0) })
    }
}

extension Transaction {
    /// Replaces the server's pending timed `action` (a plain stop clears pending stops).
    public func setSchedule(server: String, action: JobKind, time: ScheduledTime?, now: Int64) throws(StoreError) {
        try query("DELETE FROM schedules WHERE server_uid = ? AND action = ?", [.text(server), .text(action.rawValue)])
        guard let time else { return }
        try query(
            "INSERT INTO schedules (server_uid, action, due_at, wire_time, created_at) VALUES (?, ?, ?, ?, ?)",
            [.text(server), .text(action.rawValue), .integer(time.due), .text(time.wire.text), .integer(now)])
    }

    /// The `time` of the server object: the wire form of its next timed action, else nil.
    public func scheduledTime(server: String) throws(StoreError) -> JSON? {
        guard
            let text = try query("SELECT wire_time FROM schedules WHERE server_uid = ? ORDER BY due_at LIMIT 1", [.text(server)])
                .first?.first?.text
        else { return nil }
        return try? JSON.parse(text)
    }

    /// Removes and returns the timed actions due by `now`, earliest first.
    public func takeDueSchedules(now: Int64) throws(StoreError) -> [(server: String, action: JobKind, due: Int64)] {
        try query("DELETE FROM schedules WHERE due_at <= ? RETURNING server_uid, action, due_at", [.integer(now)]).compactMap { r in
            guard let action = JobKind(rawValue: r[1].text ?? "") else { return nil }
            return (r[0].text ?? "", action, r[2].integer ?? 0)
        }.sorted { $0.due < $1.due }
    }

    /// The earliest pending timed action, for the scheduler's sleep.
    public func nextScheduleDue() throws(StoreError) -> Int64? {
        try query("SELECT min(due_at) FROM schedules").first?.first?.integer
    }

    public func recordCrash(server: String, at: Int64, exitCode: Int, oomKilled: Bool) throws(StoreError) {
        try query(
            "INSERT INTO crashes (server_uid, at, exit_code, oom_killed) VALUES (?, ?, ?, ?)",
            [.text(server), .integer(at), .integer(Int64(exitCode)), .integer(oomKilled ? 1 : 0)])
    }

    public func crashTimes(server: String, since: Int64) throws(StoreError) -> [Int64] {
        try query("SELECT at FROM crashes WHERE server_uid = ? AND at >= ? ORDER BY at", [.text(server), .integer(since)]).compactMap {
            $0.first?.integer
        }
    }
}
