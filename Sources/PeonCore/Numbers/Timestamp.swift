public import PeonJSON

/// Times from clients: epoch seconds (a JSON number or digits) or ISO 8601 UTC text, as one
/// epoch value. Pure arithmetic (no calendar library, no clock), so hostile text costs nothing.
public enum Timestamp {
    /// Years 1970-9999: what an expiry or a `since` can sensibly name.
    public static let range: ClosedRange<Int64> = 0...253_402_300_799

    /// `2026-11-29T21:00:00Z`, `2026-11-29T21:00:00.5+01:00`, `2026-11-29` (midnight UTC), or
    /// epoch seconds as digits; nil for anything else.
    public static func parse(_ text: some StringProtocol) -> Int64? {
        let t = String(text.prefix(40))
        if let n = CheckedNumber.integer(t, in: range) { return n }
        let b = Array(t.utf8)
        func digits(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var n: Int64 = 0
            for c in b[from..<from + count] {
                guard (48...57).contains(c) else { return nil }
                n = n * 10 + Int64(c - 48)
            }
            return n
        }
        guard b.count >= 10, let year = digits(0, 4), b[4] == UInt8(ascii: "-"), let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
            let day = digits(8, 2), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), year >= 1970
        else { return nil }
        var seconds = daysFromCivil(year: year, month: month, day: day) * 86_400
        if b.count == 10 { return range.contains(seconds) ? seconds : nil }
        guard b.count >= 20, b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: " "), let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), b[16] == UInt8(ascii: ":"), let second = digits(17, 2), hour < 24, minute < 60, second < 61
        else { return nil }
        seconds += hour * 3600 + minute * 60 + second
        var i = 19
        if b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, (48...57).contains(b[i]) { i += 1 }
            guard i > start, i - start <= 9 else { return nil }
        }
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            guard i + 1 == b.count else { return nil }
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard b.count == i + 6, let oh = digits(i + 1, 2), b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2), oh < 24, om < 60
            else { return nil }
            let offset = oh * 3600 + om * 60
            seconds += b[i] == UInt8(ascii: "+") ? -offset : offset
        } else {
            return nil
        }
        return range.contains(seconds) ? seconds : nil
    }

    /// A JSON number (whole epoch seconds) or a string `parse` accepts.
    public static func parse(_ value: JSON?) -> Int64? {
        switch value {
        case .number?: CheckedNumber.integer(value, in: range)
        case .string(let s)?: parse(s)
        default: nil
        }
    }

    static func isLeap(_ y: Int64) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
