import Logging
import PeonCore
import PeonJSON
import PeonStore
import PeonSystem

/// Zone rules by name, loaded once per scheduler from the system tz database.
struct ZoneCache {
    var rules: [String: TimeZoneRules] = [:]

    mutating func rules(_ name: String) -> TimeZoneRules? {
        if let known = rules[name] { return known }
        let loaded: TimeZoneRules? =
            name == "UTC" || name == "Etc/UTC" ? .utc : ZoneInfo.read(name).flatMap { try? TimeZoneRules(name: name, tzif: $0) }
        if let loaded { rules[name] = loaded }
        return loaded
    }
}

extension Scheduler {
    /// Fires the cron schedules due by `now`, inside the tick's transaction: each due run is
    /// decided by `DueRun.decide` (the missed-run rule), enqueues the job the API's action would,
    /// and records its outcome and the next run in the same transaction. Answers how many jobs it
    /// queued.
    @discardableResult
    func fireCronSchedules(in tx: Transaction, now: Int64, zones: inout ZoneCache) throws -> Int {
        var queued = 0
        for schedule in try tx.dueCronSchedules(now: now) {
            guard let due = schedule.nextRun else { continue }
            guard let cron = try? CronExpression(schedule.cron), let zone = zones.rules(schedule.tz) else {
                try tx.recordCronRun(
                    schedule.id, at: now, result: "failed", error: "The expression or time zone [\(schedule.tz)] is no longer valid.",
                    job: nil, nextRun: nil)
                continue
            }
            let metadata: Logger.Metadata = ["schedule.id": "\(schedule.id)", "server.uid": "\(schedule.serverUID)"]
            switch DueRun.decide(due: due, now: now, cron: cron, zone: zone) {
            case .skip(let next):
                logger.warning("scheduled run missed while the scheduler was down; skipped", metadata: metadata)
                try tx.recordCronRun(
                    schedule.id, at: now, result: "skipped",
                    error: "Missed at \(WallClock.iso8601(due)) by more than one interval (the scheduler was down).", job: nil,
                    nextRun: next)
            case .fire(let next):
                let (result, error, job) = try enqueue(schedule, in: tx, now: now)
                if result == "queued" { queued += 1 }
                logger.info("schedule fired", metadata: metadata.merging(["job.outcome": "\(result)"]) { $1 })
                try tx.recordCronRun(schedule.id, at: now, result: result, error: error, job: job, nextRun: next)
            }
        }
        return queued
    }

    /// The job of the schedule's action, as the API enqueues it (desired state, capacity, one
    /// identical pending job joined); `(result, error, job id)`.
    func enqueue(_ schedule: CronScheduleRecord, in tx: Transaction, now: Int64) throws -> (String, String?, Int64?) {
        guard let action = ScheduleAction(rawValue: schedule.action) else {
            return ("failed", "The \(schedule.action) action is not supported yet.", nil)
        }
        let request = action.job(command: schedule.command)
        guard let uid = try? ServerUID(validating: schedule.serverUID), var server = try tx.server(uid) else {
            return ("failed", "The server is gone.", nil)
        }
        if let same = try tx.pendingJobs(server: schedule.serverUID).last, (try? same.request) == request {
            return ("queued", nil, same.id)
        }
        let (mine, all) = try tx.pendingJobCounts(server: schedule.serverUID)
        guard mine < configuration.maxPendingJobsPerServer, all < configuration.maxPendingJobs else {
            return ("failed", "Too many unfinished jobs; the run was not queued.", nil)
        }
        if let desired = request.kind.desiredState {
            server.desiredState = desired
            try tx.updateServer(server, now: now)
        }
        return ("queued", nil, try tx.enqueueJob(server: schedule.serverUID, request, now: now))
    }
}
