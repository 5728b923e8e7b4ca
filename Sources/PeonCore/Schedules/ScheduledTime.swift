public import PeonJSON

/// When a timed action is due, and the `time` PEON clients get back: an integer when set by
/// `interval`, the client's own text when set by `epoch_time` as a string.
public struct ScheduledTime: Sendable, Equatable {
    public let due: Int64
    public let wire: JSON

    public init(due: Int64, wire: JSON) {
        self.due = due
        self.wire = wire
    }

    /// The schedule a request body asks for, or nil when it asks for none.
    ///
    /// `interval`: `90s`, `15m`, `2h`, `1d`, or a bare number of minutes (string or integer), at
    /// most a year. `epoch_time`: seconds since 1970 as digits or an integer, in the future.
    public static func parse(_ body: JSON, now: Int64) throws(DomainError) -> ScheduledTime? {
        let interval = body["interval"].flatMap { $0.isNull ? nil : $0 }
        let epoch = body["epoch_time"].flatMap { $0.isNull ? nil : $0 }
        switch (interval, epoch) {
        case (nil, nil): return nil
        case (.some, .some):
            throw .invalid(field: "interval", reason: "Give either interval or epoch_time, not both.")
        case (let interval?, nil):
            let seconds = try parseInterval(interval)
            return ScheduledTime(due: now + seconds, wire: .number(Double(now + seconds)))
        case (nil, let epoch?):
            let text: String
            switch epoch {
            case .string(let s): text = s
            case .number:
                // Out-of-range numbers (1e19, -1e19, 1.5e300) fall to the same 400 as bad text.
                text = CheckedNumber.integer(epoch, in: 0...999_999_999_999).map { String($0) } ?? ""
            default: throw .invalid(field: "epoch_time", reason: "epoch_time must be seconds since 1970, e.g. \"1999999999\".")
            }
            guard !text.isEmpty, text.utf8.count <= 12, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let due = CheckedNumber.integer(text, in: 0...999_999_999_999)
            else {
                throw .invalid(field: "epoch_time", reason: "epoch_time must be seconds since 1970, e.g. \"1999999999\".")
            }
            guard due > now else { throw .invalid(field: "epoch_time", reason: "epoch_time must be in the future.") }
            guard due <= now + 10 * 365 * 86400 else {
                throw .invalid(field: "epoch_time", reason: "epoch_time must be within ten years.")
            }
            return ScheduledTime(due: due, wire: epoch.stringValue != nil ? .string(text) : .number(Double(due)))
        }
    }

    static func parseInterval(_ value: JSON) throws(DomainError) -> Int64 {
        let reason = "interval must be a number followed by s, m, h or d (e.g. 90s, 15m, 2h, 1d), or a number of minutes."
        var text: String
        switch value {
        case .string(let s): text = s.trimmingSpaces()
        case .number:
            // A whole number of minutes; 1e19 or 1.5e300 must be a 400, never a trap.
            guard let n = CheckedNumber.integer(value, in: 1...99_999_999) else { throw .invalid(field: "interval", reason: reason) }
            text = String(n)
        default: throw .invalid(field: "interval", reason: reason)
        }
        var unit: Int64 = 60
        if let last = text.last, let u = ["s": 1, "m": 60, "h": 3600, "d": 86400][String(last)] {
            unit = Int64(u)
            text.removeLast()
        }
        guard !text.isEmpty, text.utf8.count <= 8, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let count = CheckedNumber.integer(text, in: 1...99_999_999)
        else { throw .invalid(field: "interval", reason: reason) }
        guard count * unit <= 366 * 86400 else { throw .invalid(field: "interval", reason: "interval must be at most a year.") }
        return count * unit
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
