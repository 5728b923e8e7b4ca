public import PeonJSON

/// How many backups of one server to keep: the newest `keepLast`, plus the newest of each of the
/// last `keepDaily` UTC days, plus the newest of each of the last `keepWeekly` ISO weeks (Monday
/// to Sunday, UTC). `keepLast` is at least 1, so the newest backup is never removed by retention.
public struct BackupPolicy: Sendable, Equatable {
    public static let keepLastRange: ClosedRange<Int> = 1...10_000
    /// Ten years of days, ten years of weeks.
    public static let keepDailyRange: ClosedRange<Int> = 0...3_660
    public static let keepWeeklyRange: ClosedRange<Int> = 0...520

    public var keepLast: Int
    public var keepDaily: Int
    public var keepWeekly: Int

    /// Values outside the ranges are clamped into them (callers validate user input with
    /// `updating(with:)`).
    public init(keepLast: Int, keepDaily: Int = 0, keepWeekly: Int = 0) {
        self.keepLast = min(max(keepLast, Self.keepLastRange.lowerBound), Self.keepLastRange.upperBound)
        self.keepDaily = min(max(keepDaily, Self.keepDailyRange.lowerBound), Self.keepDailyRange.upperBound)
        self.keepWeekly = min(max(keepWeekly, Self.keepWeeklyRange.lowerBound), Self.keepWeeklyRange.upperBound)
    }

    /// This policy with the members of a request body applied: `keep_last`, `keep_daily`,
    /// `keep_weekly`, each a whole JSON number in its range; members left out keep
    /// their value. Anything else (another member, a wrong type, no member at all) is refused.
    public func updating(with body: JSON) throws(DomainError) -> BackupPolicy {
        guard case .object(let members) = body else {
            throw .invalid(field: "body", reason: "the body must be a JSON object with keep_last, keep_daily or keep_weekly.")
        }
        let known = ["keep_last", "keep_daily", "keep_weekly"]
        if let unknown = members.first(where: { !known.contains($0.0) }) {
            throw .invalid(
                field: String(unknown.0.prefix(64)),
                reason: "unknown member '\(String(unknown.0.prefix(64)))': only keep_last, keep_daily and keep_weekly can be set.")
        }
        guard !members.isEmpty else {
            throw .invalid(field: "body", reason: "give at least one of keep_last, keep_daily, keep_weekly.")
        }
        func value(_ name: String, _ range: ClosedRange<Int>, _ current: Int) throws(DomainError) -> Int {
            guard let member = members.last(where: { $0.0 == name }) else { return current }
            // JSON numbers only: "5", true or null are refused rather than guessed at.
            guard let number = CheckedNumber.int(member.1, in: range) else {
                throw .invalid(field: name, reason: "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound).")
            }
            return number
        }
        return BackupPolicy(
            keepLast: try value("keep_last", Self.keepLastRange, keepLast),
            keepDaily: try value("keep_daily", Self.keepDailyRange, keepDaily),
            keepWeekly: try value("keep_weekly", Self.keepWeeklyRange, keepWeekly))
    }

    /// Keeps fewer backups than `other` in some way: applying it may delete backups, which only
    /// an admin may do (deleting a backup needs admin too).
    public func keepsLess(than other: BackupPolicy) -> Bool {
        keepLast < other.keepLast || keepDaily < other.keepDaily || keepWeekly < other.keepWeekly
    }

    public var json: JSON {
        ["keep_last": .number(Double(keepLast)), "keep_daily": .number(Double(keepDaily)), "keep_weekly": .number(Double(keepWeekly))]
    }
}

/// Which backups a policy keeps. Pure: the backups, the policy, the time and the protected ids in,
/// the decision out.
public enum BackupRetention {
    public struct Backup: Sendable, Equatable {
        public let id: Int64
        /// Epoch seconds.
        public let createdAt: Int64

        public init(id: Int64, createdAt: Int64) {
            self.id = id
            self.createdAt = createdAt
        }
    }

    public struct Decision: Sendable, Equatable {
        /// Kept, newest first.
        public var keep: [Int64]
        /// To remove (file and row), oldest first.
        public var delete: [Int64]
    }

    /// The rule:
    /// - backups are ordered newest first by creation time, then by id (the later insert wins a tie);
    /// - the first `keepLast` are kept;
    /// - for each of the last `keepDaily` UTC calendar days (today, the day `now` falls in, and
    ///   the `keepDaily - 1` days before it) the newest backup made that day is kept;
    /// - for each of the last `keepWeekly` ISO weeks (the week `now` falls in and the ones before
    ///   it; weeks start on Monday 00:00 UTC) the newest backup made that week is kept;
    /// - a backup stamped after `now` (the clock went back) counts as made now;
    /// - `protected` ids (a restore waits for them) are always kept;
    /// - everything else is deleted.
    /// UTC days have no DST: every day is 86,400 seconds.
    public static func decide(_ backups: [Backup], policy: BackupPolicy, now: Int64, protected: Set<Int64> = []) -> Decision {
        let ordered = backups.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
        var kept = Set<Int64>(protected)
        for backup in ordered.prefix(policy.keepLast) { kept.insert(backup.id) }
        let today = day(now)
        if policy.keepDaily > 0 {
            let first = today - Int64(policy.keepDaily - 1)
            var seen = Set<Int64>()
            for backup in ordered {
                let d = min(day(backup.createdAt), today)
                if d >= first, seen.insert(d).inserted { kept.insert(backup.id) }
            }
        }
        if policy.keepWeekly > 0 {
            let thisWeek = monday(today)
            let first = thisWeek - 7 * Int64(policy.keepWeekly - 1)
            var seen = Set<Int64>()
            for backup in ordered {
                let w = monday(min(day(backup.createdAt), today))
                if w >= first, seen.insert(w).inserted { kept.insert(backup.id) }
            }
        }
        return Decision(
            keep: ordered.filter { kept.contains($0.id) }.map(\.id),
            delete: ordered.reversed().filter { !kept.contains($0.id) }.map(\.id))
    }

    /// Days since 1970-01-01 UTC (floored, so times before 1970 stay on their own day).
    static func day(_ seconds: Int64) -> Int64 {
        let (q, r) = seconds.quotientAndRemainder(dividingBy: 86_400)
        return r < 0 ? q - 1 : q
    }

    /// The Monday that starts `day`'s ISO week (1970-01-01 was a Thursday).
    static func monday(_ day: Int64) -> Int64 {
        let r = (day + 3) % 7
        return day - (r < 0 ? r + 7 : r)
    }
}
