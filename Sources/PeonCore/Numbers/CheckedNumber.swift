public import PeonJSON

/// The one way a number from outside (a request, a plan, a manifest, a file, the environment)
/// becomes an integer.
///
/// `Int64(someDouble)` traps when the value is out of range or not finite, and a trap is a dead
/// worker (a 502) or a crash-looping scheduler. Every conversion goes through here instead: a value
/// that is not a whole number inside `range` is nil, or `DomainError.invalid` in the throwing forms.
public enum CheckedNumber {
    /// `value` as an integer when it is a whole number inside `range`, else nil.
    public static func integer(_ value: Double, in range: ClosedRange<Int64>) -> Int64? {
        // Int64(exactly:) is nil for fractions, NaN, infinities and anything beyond Int64.
        guard let n = Int64(exactly: value), range.contains(n) else { return nil }
        return n
    }

    /// A JSON number that is a whole number inside `range`, else nil (strings are not numbers here).
    public static func integer(_ value: JSON?, in range: ClosedRange<Int64>) -> Int64? {
        guard case .number(let n) = value else { return nil }
        return integer(n, in: range)
    }

    /// Decimal digits (an optional leading `-`) that fit `range`, else nil.
    public static func integer(_ text: some StringProtocol, in range: ClosedRange<Int64>) -> Int64? {
        // Int64(String) refuses overflow without trapping; the length cap keeps hostile text cheap.
        guard text.utf8.count <= 20, let n = Int64(text), range.contains(n) else { return nil }
        return n
    }

    /// `integer(_:in:)` as an `Int`, for counts and ports.
    public static func int(_ value: JSON?, in range: ClosedRange<Int>) -> Int? {
        integer(value, in: Int64(range.lowerBound)...Int64(range.upperBound)).map { Int($0) }
    }

    public static func int(_ text: some StringProtocol, in range: ClosedRange<Int>) -> Int? {
        integer(text, in: Int64(range.lowerBound)...Int64(range.upperBound)).map { Int($0) }
    }

    /// A finite JSON number inside `range` (fractions allowed), else nil.
    public static func real(_ value: JSON?, in range: ClosedRange<Double>) -> Double? {
        guard case .number(let n) = value, n.isFinite, range.contains(n) else { return nil }
        return n
    }

    /// The throwing form for request fields: `reason` is what the caller reads in the 400.
    public static func integer(_ value: JSON?, in range: ClosedRange<Int64>, field: String, reason: String) throws(DomainError) -> Int64 {
        guard let n = integer(value, in: range) else { throw .invalid(field: field, reason: reason) }
        return n
    }

    /// A port number, 1-65535, from a JSON number or digits.
    public static func port(_ value: JSON?) -> Int? {
        switch value {
        case .string(let s)?: int(s, in: 1...65535)
        case .number?: int(value, in: 1...65535)
        default: nil
        }
    }

    /// Clamps a count the engine reports (bytes, nanoseconds) into `0...Int64.max`.
    public static func clamped(_ value: Double) -> Int64 {
        guard value.isFinite, value > 0 else { return 0 }
        return value >= 9.223_372_036_854_775e18 ? Int64.max : Int64(value)
    }
}
