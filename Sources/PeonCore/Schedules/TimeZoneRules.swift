/// A time zone's UTC offsets, parsed from a TZif file (RFC 8536) of the system tz database.
///
/// Pure: the bytes come from the caller (`PeonSystem.ZoneInfo` reads them), so tests pass
/// literal zones. Times after the last transition follow the file's POSIX TZ footer
/// (`CET-1CEST,M3.5.0,M10.5.0/3`), which slim TZif files rely on for every future year.
public struct TimeZoneRules: Sendable, Equatable {
    public let name: String
    /// UTC instants where the offset changes, ascending, with the offset from each one on.
    let transitions: [Int64]
    let offsets: [Int32]
    let initialOffset: Int32
    let footer: PosixTZ?

    /// UTC: no file needed.
    public static let utc = TimeZoneRules(name: "UTC", transitions: [], offsets: [], initialOffset: 0, footer: nil)

    init(name: String, transitions: [Int64], offsets: [Int32], initialOffset: Int32, footer: PosixTZ?) {
        self.name = name
        self.transitions = transitions
        self.offsets = offsets
        self.initialOffset = initialOffset
        self.footer = footer
    }

    /// A zone from a POSIX TZ string alone (`EST5EDT,M3.2.0,M11.1.0`), for tests and fixed zones.
    public init(name: String, posix: String) throws(DomainError) {
        guard let rule = PosixTZ(posix) else { throw .invalid(field: "tz", reason: "Unknown time zone [\(name)].") }
        self.init(name: name, transitions: [], offsets: [], initialOffset: rule.std, footer: rule)
    }

    /// Parses TZif version 1 to 4; refuses anything malformed (a bounded, defensive reader).
    public init(name: String, tzif bytes: [UInt8]) throws(DomainError) {
        let bad = DomainError.invalid(field: "tz", reason: "The time zone file of [\(name)] is not valid.")
        var r = Reader(bytes: bytes)
        func header() throws(DomainError) -> (version: UInt8, counts: [Int]) {
            guard r.take(4) == Array("TZif".utf8), let version = r.take(1)?.first, r.take(15) != nil else { throw bad }
            var counts: [Int] = []
            for _ in 0..<6 {
                guard let n = r.u32(), n < 100_000 else { throw bad }
                counts.append(Int(n))
            }
            return (version, counts)
        }
        var (version, c) = try header()
        // c: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
        var width = 4
        if version >= 0x32 {
            // Skip the 32-bit block: the 64-bit one follows with its own header.
            guard r.take(c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]) != nil else { throw bad }
            (version, c) = try header()
            width = 8
        }
        guard c[4] >= 1 else { throw bad }
        var times: [Int64] = []
        for _ in 0..<c[3] {
            guard let t = width == 8 ? r.i64() : r.u32().map({ Int64(Int32(bitPattern: $0)) }) else { throw bad }
            times.append(t)
        }
        guard let indices = r.take(c[3]) else { throw bad }
        var types: [Int32] = []
        for _ in 0..<c[4] {
            guard let off = r.u32(), r.take(2) != nil else { throw bad }
            let offset = Int32(bitPattern: off)
            guard abs(offset) <= 26 * 3600 else { throw bad }
            types.append(offset)
        }
        guard r.take(c[5] + c[2] * (width + 4) + c[1] + c[0]) != nil else { throw bad }
        var footer: PosixTZ?
        if width == 8, r.take(1) == [0x0A] {
            let rest = r.rest()
            if let end = rest.firstIndex(of: 0x0A), end > 0 {
                footer = PosixTZ(String(decoding: rest[..<end], as: UTF8.self))
            }
        }
        guard indices.allSatisfy({ Int($0) < types.count }), zip(times, times.dropFirst()).allSatisfy({ $0 < $1 }) else { throw bad }
        self.init(
            name: name, transitions: times, offsets: indices.map { types[Int($0)] }, initialOffset: types[0], footer: footer)
    }

    /// Seconds east of UTC at the UTC instant `t`.
    public func offset(at t: Int64) -> Int {
        if let last = transitions.last, t >= last, let footer { return Int(footer.offset(at: t)) }
        if transitions.isEmpty { return Int(footer?.offset(at: t) ?? initialOffset) }
        // The last transition at or before t.
        var lo = 0
        var hi = transitions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if transitions[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return Int(lo == 0 ? initialOffset : offsets[lo - 1])
    }

    /// The UTC instants showing local wall time `local` (seconds since 1970 as if local were UTC):
    /// one normally, two in a repeated hour (earliest first), none in a skipped one.
    public func instants(forLocal local: Int64) -> [Int64] {
        var candidates = Set([offset(at: local - 2 * 86400), offset(at: local + 2 * 86400), offset(at: local)])
        candidates.formUnion([offset(at: local - 86400), offset(at: local + 86400)])
        return candidates.map { local - Int64($0) }.filter { Int64(offset(at: $0)) == local - $0 }.sorted()
    }

    /// The offset in force two days before `local`: what a wall clock in a skipped hour still reads.
    func offsetBefore(local: Int64) -> Int { offset(at: local - 2 * 86400) }
}

/// The POSIX TZ rule of a TZif footer: standard offset, optional daylight offset and its rules.
struct PosixTZ: Sendable, Equatable {
    /// Seconds east of UTC (the string says west, so signs flip).
    let std: Int32
    let dst: Int32?
    let start: DateRule?
    let end: DateRule?

    enum DateRule: Sendable, Equatable {
        /// `Mm.w.d/time`: day d (0 Sunday) of week w (5 last) of month m.
        case month(m: Int, w: Int, d: Int, time: Int)
        /// `Jn/time` (1-365, no Feb 29) or `n/time` (0-365).
        case julian(n: Int, leap: Bool, time: Int)
    }

    init?(_ text: String) {
        var s = Substring(text)
        guard text.utf8.count <= 100, Self.name(&s), let stdOff = Self.offset(&s) else { return nil }
        std = Int32(-stdOff)
        if s.isEmpty {
            dst = nil
            start = nil
            end = nil
            return
        }
        guard Self.name(&s) else { return nil }
        var dstOff = -stdOff + 3600
        if let first = s.first, first != "," {
            guard let o = Self.offset(&s) else { return nil }
            dstOff = -o
        }
        dst = Int32(dstOff)
        guard s.first == ",", case _ = s.removeFirst(), let a = Self.rule(&s), s.first == ",", case _ = s.removeFirst(),
            let b = Self.rule(&s), s.isEmpty
        else { return nil }
        start = a
        end = b
    }

    static func name(_ s: inout Substring) -> Bool {
        if s.first == "<" {
            guard let close = s.firstIndex(of: ">") else { return false }
            s = s[s.index(after: close)...]
            return true
        }
        let n = s.prefix(while: { $0.isLetter })
        guard n.count >= 3 else { return false }
        s = s.dropFirst(n.count)
        return true
    }

    /// `[+-]hh[:mm[:ss]]` in seconds (hours up to 167, as RFC 8536 allows for rule times).
    static func offset(_ s: inout Substring) -> Int? {
        var sign = 1
        if s.first == "+" || s.first == "-" {
            sign = s.first == "-" ? -1 : 1
            s.removeFirst()
        }
        var parts: [Int] = []
        for i in 0..<3 {
            if i > 0 {
                guard s.first == ":" else { break }
                s.removeFirst()
            }
            let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 3, let n = Int(digits) else { return nil }
            s = s.dropFirst(digits.count)
            parts.append(n)
        }
        guard parts[0] <= 167, parts.dropFirst().allSatisfy({ $0 < 60 }) else { return nil }
        return sign * (parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0))
    }

    static func rule(_ s: inout Substring) -> DateRule? {
        func number() -> Int? {
            let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, digits.count <= 3 else { return nil }
            s = s.dropFirst(digits.count)
            return Int(digits)
        }
        func time() -> Int? {
            guard s.first == "/" else { return 7200 }
            s.removeFirst()
            return offset(&s)
        }
        if s.first == "M" {
            s.removeFirst()
            guard let m = number(), s.first == ".", case _ = s.removeFirst(), let w = number(), s.first == ".",
                case _ = s.removeFirst(), let d = number(), (1...12).contains(m), (1...5).contains(w), (0...6).contains(d),
                let t = time()
            else { return nil }
            return .month(m: m, w: w, d: d, time: t)
        }
        let leap = s.first != "J"
        if !leap { s.removeFirst() }
        guard let n = number(), n <= 365, let t = time() else { return nil }
        return .julian(n: n, leap: leap, time: t)
    }

    func offset(at t: Int64) -> Int32 {
        guard let dst, let start, let end else { return std }
        let year = CivilDate(days: Int((t + Int64(std)).floorDiv(86400))).year
        // Checks the year of t and its neighbours: a southern rule spans the new year.
        for y in [year + 1, year, year - 1] {
            let begins = Self.local(start, year: y) - Int64(std)
            let ends = Self.local(end, year: y) - Int64(dst)
            if begins < ends {
                if t >= begins && t < ends { return dst }
                if t >= ends { return std }
            } else {
                if t >= begins { return dst }
                if t >= ends { return std }
            }
        }
        return std
    }

    /// The rule's local wall time in `year`, as seconds since 1970 read as UTC.
    static func local(_ rule: DateRule, year: Int) -> Int64 {
        switch rule {
        case .month(let m, let w, let d, let time):
            let first = CivilDate(year: year, month: m, day: 1).days
            var day = first + ((d - CivilDate.weekday(days: first)) + 7) % 7 + (w - 1) * 7
            if w == 5 {
                let next = m == 12 ? CivilDate(year: year + 1, month: 1, day: 1).days : CivilDate(year: year, month: m + 1, day: 1).days
                while day >= next { day -= 7 }
            }
            return Int64(day) * 86400 + Int64(time)
        case .julian(let n, let leap, let time):
            let jan1 = CivilDate(year: year, month: 1, day: 1).days
            var day = jan1 + (leap ? n : n - 1)
            if !leap, n >= 60, CivilDate.isLeap(year) { day += 1 }
            return Int64(day) * 86400 + Int64(time)
        }
    }
}

/// A proleptic Gregorian date and its day number since 1970-01-01 (Howard Hinnant's algorithms).
public struct CivilDate: Sendable, Equatable {
    public let year: Int
    public let month: Int
    public let day: Int

    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public init(days z0: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
    }

    public var days: Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// 0 Sunday … 6 Saturday.
    public static func weekday(days: Int) -> Int { ((days % 7) + 11) % 7 }

    public static func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    public static func daysIn(month: Int, year: Int) -> Int {
        month == 2 ? (isLeap(year) ? 29 : 28) : [4, 6, 9, 11].contains(month) ? 30 : 31
    }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 { self >= 0 ? self / d : -((-self + d - 1) / d) }
}

private struct Reader {
    let bytes: [UInt8]
    var at = 0

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, n <= bytes.count - at else { return nil }
        defer { at += n }
        return Array(bytes[at..<at + n])
    }

    mutating func u32() -> UInt32? {
        take(4).map { $0.reduce(0) { $0 << 8 | UInt32($1) } }
    }

    mutating func i64() -> Int64? {
        take(8).map { Int64(bitPattern: $0.reduce(0) { $0 << 8 | UInt64($1) }) }
    }

    func rest() -> ArraySlice<UInt8> { bytes[at...] }
}
