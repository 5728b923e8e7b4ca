/// Docker's timestamps (RFC 3339 with nanoseconds, UTC: `2026-11-29T21:10:00.123456789Z`).
public enum DockerTime {
    /// Unix milliseconds of a UTC timestamp, nil when it is not one (or Docker's zero time).
    public static func milliseconds(_ text: Substring) -> Int64? {
        let b = Array(text.utf8)
        guard b.count >= 20, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
            b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b.last == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var n: Int64 = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { return nil }
                n = n * 10 + Int64(b[i] - UInt8(ascii: "0"))
            }
            return n
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day),
            hour < 24, minute < 60, second < 61, year >= 1970
        else { return nil }
        var millis: Int64 = 0
        if b[19] == UInt8(ascii: ".") {
            let digits = b[20..<(b.count - 1)]
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            for (i, d) in digits.prefix(3).enumerated() { millis += Int64(d - UInt8(ascii: "0")) * [100, 10, 1][i] }
        } else if b.count != 20 {
            return nil
        }
        // Days from the civil date (Howard Hinnant's algorithm), then seconds.
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis
    }

    /// `seconds.nanoseconds` for the Engine API's `since` parameter.
    public static func since(milliseconds: Int64) -> String {
        let ms = max(milliseconds, 0)
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction + "000000"
    }
}
