/// A standard five-field cron expression: minute hour day-of-month month day-of-week.
///
/// Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, and names for
/// months (`jan`) and days (`mon`, 0 or 7 is Sunday). As in Vixie cron, when both day fields are
/// restricted a day matching either one matches.
///
/// Daylight saving, in the schedule's zone: a wall time the clocks skip runs as if they had not
/// changed (02:30 on the spring-forward night runs at 03:30 summer time); a wall time that
/// happens twice runs once, at its first occurrence, unless the hour field is `*`, in which case
/// both real hours run (an "every 5 minutes" job keeps its pace).
public struct CronExpression: Sendable, Equatable {
    public let text: String
    let minutes: [Int]
    let hours: [Int]
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let domRestricted: Bool
    let dowRestricted: Bool
    let everyHour: Bool

    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(_ text: String) throws(DomainError) {
        guard text.utf8.count <= 100, text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw .invalid(field: "cron", reason: "cron must be five fields of at most 100 printable ASCII characters.")
        }
        let fields = text.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 5 else {
            throw .invalid(
                field: "cron", reason: "cron must have five fields (minute hour day-of-month month day-of-week), e.g. \"*/5 * * * *\".")
        }
        self.text = fields.joined(separator: " ")
        minutes = try Self.field(fields[0], "minute", 0...59, names: []).sorted()
        hours = try Self.field(fields[1], "hour", 0...23, names: []).sorted()
        daysOfMonth = try Self.field(fields[2], "day-of-month", 1...31, names: [])
        months = try Self.field(fields[3], "month", 1...12, names: Self.monthNames, nameBase: 1)
        var dow = try Self.field(fields[4], "day-of-week", 0...7, names: Self.dayNames)
        if dow.remove(7) != nil { dow.insert(0) }
        daysOfWeek = dow
        domRestricted = !fields[2].hasPrefix("*")
        dowRestricted = !fields[4].hasPrefix("*")
        everyHour = hours.count == 24
        // A day of month no selected month has (30 2 * / 31 4,6) would never fire.
        if !dowRestricted, let first = daysOfMonth.min(), months.allSatisfy({ CivilDate.daysIn(month: $0, year: 2000) < first }) {
            throw .invalid(field: "cron", reason: "cron [\(self.text)] never matches a date.")
        }
    }

    static func field(_ text: Substring, _ name: String, _ range: ClosedRange<Int>, names: [String], nameBase: Int = 0)
        throws(DomainError) -> Set<Int>
    {
        let bad = DomainError.invalid(
            field: "cron",
            reason: "cron \(name) field [\(text.prefix(40))] is not valid: use *, n, a-b, */n, a-b/n or lists, within \(range).")
        func value(_ s: Substring) throws(DomainError) -> Int {
            if let i = names.firstIndex(of: s.lowercased()) { return i + nameBase }
            guard s.utf8.count <= 2, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(s), range.contains(n) else { throw bad }
            return n
        }
        var out = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !pieces[0].isEmpty else { throw bad }
            var step = 1
            if pieces.count == 2 {
                guard pieces[1].utf8.count <= 2, let s = Int(pieces[1]), s >= 1, s <= range.upperBound + 1,
                    pieces[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
                else { throw bad }
                step = s
            }
            var lo = range.lowerBound
            var hi = range.upperBound
            if pieces[0] != "*" {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw bad }
                lo = try value(bounds[0])
                hi = bounds.count == 2 ? try value(bounds[1]) : (pieces.count == 2 ? range.upperBound : lo)
                guard lo <= hi else { throw bad }
            }
            out.formUnion(stride(from: lo, through: hi, by: step))
        }
        return out
    }

    func matches(day: Int) -> Bool {
        let date = CivilDate(days: day)
        guard months.contains(date.month) else { return false }
        let dom = daysOfMonth.contains(date.day)
        let dow = daysOfWeek.contains(CivilDate.weekday(days: day))
        switch (domRestricted, dowRestricted) {
        case (true, true): return dom || dow
        case (true, false): return dom
        case (false, true): return dow
        case (false, false): return true
        }
    }

    /// The first instant strictly after `after` (seconds since 1970, UTC) when this fires in
    /// `zone`; nil if none within 30 years (`0 0 29 2 mon` may wait decades, but not forever).
    public func next(after: Int64, in zone: TimeZoneRules) -> Int64? {
        let startLocal = after + Int64(zone.offset(at: after))
        var day = Int(startLocal.floorDiv(86400)) - 1
        let lastDay = day + 366 * 30
        while day <= lastDay {
            defer { day += 1 }
            guard matches(day: day) else { continue }
            var best: Int64?
            for h in hours {
                for m in minutes {
                    let local = Int64(day) * 86400 + Int64(h) * 3600 + Int64(m) * 60
                    var instants = zone.instants(forLocal: local)
                    if instants.isEmpty {
                        instants = [local - Int64(zone.offsetBefore(local: local))]
                    } else if !everyHour {
                        instants = [instants[0]]
                    }
                    for t in instants where t > after && t < (best ?? .max) { best = t }
                }
            }
            if let best { return best }
        }
        return nil
    }

    /// Seconds from `t` (a firing) to the firing after it: the interval of the missed-run rule.
    public func interval(from t: Int64, in zone: TimeZoneRules) -> Int64 {
        (next(after: t, in: zone) ?? t + 366 * 86400) - t
    }
}
