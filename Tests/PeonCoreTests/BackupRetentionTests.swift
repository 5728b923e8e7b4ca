import PeonCore
import PeonJSON
import Testing

@Suite struct BackupRetentionTests {
    /// 2026-11-25 (a Wednesday) 00:00:00 UTC.
    static let wednesday: Int64 = 1_795_564_800
    static let hour: Int64 = 3_600
    static let day: Int64 = 86_400

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        /// (id, createdAt)
        let backups: [(Int64, Int64)]
        let policy: BackupPolicy
        let now: Int64
        var protected: Set<Int64> = []
        /// Kept ids, newest first.
        let keep: [Int64]
        var testDescription: String { name }
    }

    static let w = wednesday
    static let cases: [Case] = [
        Case(name: "empty", backups: [], policy: BackupPolicy(keepLast: 3, keepDaily: 7, keepWeekly: 4), now: w, keep: []),
        Case(
            name: "all within N", backups: [(1, w - 3 * day), (2, w - 2 * day), (3, w - day)], policy: BackupPolicy(keepLast: 5), now: w,
            keep: [3, 2, 1]),
        Case(
            name: "newest N only", backups: [(1, w - 3 * day), (2, w - 2 * day), (3, w - day), (4, w)], policy: BackupPolicy(keepLast: 2),
            now: w + hour, keep: [4, 3]),
        Case(
            name: "policy 0/0/0 still keeps the newest (keep_last is at least 1)", backups: [(1, w - day), (2, w)],
            policy: BackupPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0), now: w, keep: [2]),
        Case(
            name: "duplicates in one day: the day keeps its newest",
            backups: [(1, w + hour), (2, w + 5 * hour), (3, w + 2 * hour), (4, w - day + hour), (5, w - day + 2 * hour)],
            policy: BackupPolicy(keepLast: 1, keepDaily: 2), now: w + 6 * hour, keep: [2, 5]),
        Case(
            name: "day boundary: 23:59:59 and 00:00:00 are different days",
            backups: [(1, w - 1), (2, w), (3, w + hour)], policy: BackupPolicy(keepLast: 1, keepDaily: 2), now: w + 2 * hour,
            keep: [3, 1]),
        Case(
            name: "only the last D calendar days count, with or without backups",
            backups: [(1, w - 5 * day), (2, w - 4 * day), (3, w - day), (4, w)], policy: BackupPolicy(keepLast: 1, keepDaily: 3),
            now: w + hour, keep: [4, 3]),
        Case(
            name: "same created time: the higher id is the newer", backups: [(7, w), (8, w)], policy: BackupPolicy(keepLast: 1),
            now: w, keep: [8]),
        Case(
            name: "ISO weeks start on Monday: Sunday 23:59:59 and Monday 00:00 differ",
            // Monday 2026-11-23 00:00 is w - 2 days; Sunday 23:59:59 is one second before.
            backups: [(1, w - 2 * day - 1), (2, w - 2 * day), (3, w - 2 * day + hour), (4, w)],
            policy: BackupPolicy(keepLast: 1, keepWeekly: 2), now: w + hour, keep: [4, 1]),
        Case(
            name: "weeks: the newest of each of the last W weeks",
            backups: [(1, w - 21 * day), (2, w - 14 * day), (3, w - 13 * day), (4, w - 7 * day), (5, w - day)],
            policy: BackupPolicy(keepLast: 1, keepWeekly: 3), now: w, keep: [5, 4, 3]),
        Case(
            name: "ISO week 53 of 2026 starts on Monday 2026-12-28",
            // 2026-12-27 (Sunday) and 2026-12-28 (Monday), 12:00 UTC.
            backups: [(1, w + 32 * day + 12 * hour), (2, w + 33 * day + 12 * hour), (3, w + 34 * day)],
            policy: BackupPolicy(keepLast: 1, keepWeekly: 2), now: w + 35 * day, keep: [3, 1]),
        Case(
            name: "daily, weekly and last together overlap",
            backups: (1...30).map { (Int64($0), w - Int64(30 - $0) * day + 12 * hour) },
            policy: BackupPolicy(keepLast: 2, keepDaily: 3, keepWeekly: 3), now: w + 13 * hour,
            // last: 30, 29; days 25, 24, 23: 30, 29, 28; weeks from Mon 23, 16, 9: 30, 27 (Sun 22), 20 (Sun 15).
            keep: [30, 29, 28, 27, 20]),
        Case(
            name: "a protected backup is never deleted", backups: [(1, w - 9 * day), (2, w - day), (3, w)],
            policy: BackupPolicy(keepLast: 1),
            now: w, protected: [1], keep: [3, 1]),
        Case(
            name: "a backup dated after now counts as made now", backups: [(1, w - day), (2, w + 3 * day), (3, w + 4 * day)],
            policy: BackupPolicy(keepLast: 1, keepDaily: 2), now: w, keep: [3, 1]),
        Case(
            name: "DST plays no part: days are UTC, 86,400 s each",
            // 2026-03-29 (Europe's spring change) 00:30 and 23:30 UTC: one day; 2026-03-30 00:30: the next.
            backups: [(1, 1_774_744_200), (2, 1_774_827_000), (3, 1_774_830_600)], policy: BackupPolicy(keepLast: 1, keepDaily: 2),
            now: 1_774_830_600, keep: [3, 2]),
    ]

    @Test(arguments: cases) func decides(_ c: Case) {
        let decision = BackupRetention.decide(
            c.backups.map { BackupRetention.Backup(id: $0.0, createdAt: $0.1) }, policy: c.policy, now: c.now, protected: c.protected)
        #expect(decision.keep == c.keep)
        let expectedDeleted = c.backups.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.map(\.0).filter { !c.keep.contains($0) }
        #expect(decision.delete == expectedDeleted)
    }

    @Test func policiesAreValidatedAndMerged() throws {
        let base = BackupPolicy(keepLast: 10)
        #expect(try base.updating(with: ["keep_daily": 7]) == BackupPolicy(keepLast: 10, keepDaily: 7))
        #expect(
            try base.updating(with: ["keep_last": 3, "keep_daily": 0, "keep_weekly": 520])
                == BackupPolicy(keepLast: 3, keepDaily: 0, keepWeekly: 520))
        let hostile: [JSON] = [
            [:], ["keep_last": 0], ["keep_last": -1], ["keep_last": 10_001], ["keep_daily": 3_661], ["keep_weekly": 521],
            ["keep_last": .number(1.5)], ["keep_last": .number(1e300)], ["keep_last": .number(.nan)], ["keep_last": "5"],
            ["keep_last": true], ["keep_last": .null],
            ["keep_last": [1]], ["keep_dayly": 3], .array([]), "x", .number(3),
        ]
        for body in hostile {
            #expect(throws: DomainError.self, "\(body)") { try base.updating(with: body) }
        }
    }

    @Test func theConstructorClamps() {
        #expect(BackupPolicy(keepLast: 0, keepDaily: -3, keepWeekly: 9_999) == BackupPolicy(keepLast: 1, keepDaily: 0, keepWeekly: 520))
    }
}
