import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// Cron schedules of a server: `PUT|GET|DELETE /api/v1/server/schedule/<uid>`. The API stores
/// them with their first run; the scheduler fires them (`PeonScheduler/CronRunner.swift`).
enum ScheduleRoutes {
    /// At most this many cron schedules per server.
    static let perServer = 32

    /// Rules of a validated zone name from the system tz database; a 400 when it has none.
    static func zone(_ name: String) throws -> TimeZoneRules {
        if name == "UTC" || name == "Etc/UTC" { return .utc }
        guard let bytes = ZoneInfo.read(name) else {
            throw HTTPError(
                status: 400, code: "request.invalid", message: "Unknown time zone [\(name)]: use an IANA name such as Europe/Berlin.")
        }
        return try TimeZoneRules(name: name, tzif: bytes)
    }

    static func add(_ uid: ServerUID, body: JSON, context: APIContext) throws -> Response {
        let request = try CronScheduleRequest(body)
        let rules = try zone(request.tz)
        let now = WallClock.now()
        guard let next = request.cron.next(after: now, in: rules) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "cron [\(request.cron.text)] never fires.")
        }
        let record = try context.store.write { tx in
            guard try tx.server(uid) != nil else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            guard try tx.cronSchedules(server: uid.description).count < perServer else {
                throw DomainError.conflict("Server \(uid) already has \(perServer) schedules; delete one first.")
            }
            let id = try tx.insertCronSchedule(
                server: uid.description, cron: request.cron.text, tz: request.tz, action: request.action.rawValue,
                command: request.command, nextRun: next, now: now)
            return try tx.cronSchedule(id)!
        }
        return .json(record.json)
    }

    static func list(_ uid: ServerUID, context: APIContext) throws -> Response {
        let records = try context.store.read { tx in
            guard try tx.server(uid) != nil else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            return try tx.cronSchedules(server: uid.description)
        }
        return .json(.array(records.map(\.json)))
    }

    static func remove(_ uid: ServerUID, body: JSON, context: APIContext) throws -> Response {
        // JSON numbers are doubles: ids stay within what one represents exactly (2^53 - 1).
        guard let id = CheckedNumber.integer(body["id"], in: 1...9_007_199_254_740_991) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "id must be the number of one of the server's schedules.")
        }
        try context.store.write { tx in
            guard try tx.server(uid) != nil else {
                throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
            }
            guard try tx.deleteCronSchedule(id, server: uid.description) else {
                throw HTTPError(status: 404, code: "schedule.not_found", message: "Server \(uid) has no schedule \(id).")
            }
        }
        return .json(["status": "success", "info": .string("Schedule \(id) of \(uid) was removed.")])
    }
}
