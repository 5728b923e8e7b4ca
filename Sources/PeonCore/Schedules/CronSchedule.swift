public import PeonJSON

/// What a cron schedule does when it fires.
public enum ScheduleAction: String, Sendable, CaseIterable {
    case start, stop, restart, update, backup, command

    /// The job it enqueues, as the API's action would (`command` types the schedule's line).
    public func job(command: String?) -> JobRequest {
        switch self {
        case .start: .start
        case .stop: .stop(reason: nil)
        case .restart: .restart
        case .update: .update(.full)
        case .backup: .backup(.tarZstd)
        case .command: .console(command: command ?? "")
        }
    }
}

/// A validated `PUT /server/schedule/<uid>` body: `{"cron", "tz"?, "action", "command"?}`.
public struct CronScheduleRequest: Sendable, Equatable {
    public let cron: CronExpression
    public let tz: String
    public let action: ScheduleAction
    public let command: String?

    /// Parses the body; the zone name is checked here, its rules are loaded by the caller.
    public init(_ body: JSON) throws(DomainError) {
        guard let cronText = body["cron"]?.stringValue else {
            throw .invalid(field: "cron", reason: "cron is required: five fields, e.g. \"*/5 * * * *\".")
        }
        cron = try CronExpression(cronText)
        switch body["tz"] {
        case nil, .null?: tz = "UTC"
        case .string(let s)?:
            guard Self.isZoneName(s) else {
                throw .invalid(field: "tz", reason: "tz must be an IANA time zone name such as Europe/Berlin.")
            }
            tz = s
        default: throw .invalid(field: "tz", reason: "tz must be an IANA time zone name such as Europe/Berlin.")
        }
        guard let a = body["action"]?.stringValue, let action = ScheduleAction(rawValue: a) else {
            throw .invalid(field: "action", reason: "action must be one of start, stop, restart, update, backup, command.")
        }
        self.action = action
        switch (action, body["command"]) {
        case (.command, .string(let s)?):
            guard !s.isEmpty, s.utf8.count <= 500, !s.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) else {
                throw .invalid(field: "command", reason: "command must be one line of 1 to 500 bytes.")
            }
            command = s
        case (.command, _):
            throw .invalid(field: "command", reason: "The command action needs \"command\": a line of 1 to 500 bytes.")
        case (_, nil), (_, .null?): command = nil
        default: throw .invalid(field: "command", reason: "command is only allowed with the command action.")
        }
    }

    /// `Area/City[/More]` of letters, digits, `_`, `+`, `-`: no `..`, no absolute path, at most 64 bytes.
    public static func isZoneName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 64 else { return false }
        return s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            guard let first = part.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: ".") else { return false }
            return part.utf8.allSatisfy { c in
                (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2B
                    || c == 0x2D
            }
        }
    }
}

/// What to do with a schedule whose run is due: the missed-run rule, as a value.
public enum DueRun: Sendable, Equatable {
    /// Run now; the next run is `next`.
    case fire(next: Int64?)
    /// The run is older than one interval (the scheduler was down): record it skipped, no job.
    case skip(next: Int64?)

    /// A run due at `due` and seen at `now` fires when it is late by less than the schedule's
    /// interval (the time from `due` to the firing after it), so a scheduler down over a run
    /// catches up once at start-up; a later one would overlap the next run, so it is skipped.
    /// Either way the next run is the first one after `now`: several missed runs never pile up.
    public static func decide(due: Int64, now: Int64, cron: CronExpression, zone: TimeZoneRules) -> DueRun {
        let next = cron.next(after: now, in: zone)
        return now - due < cron.interval(from: due, in: zone) ? .fire(next: next) : .skip(next: next)
    }
}
