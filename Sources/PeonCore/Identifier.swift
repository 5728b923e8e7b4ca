/// The one rule for names that reach paths, container names and SQL: 1–32 of `a-z 0-9 - _`.
///
/// Anything else (dots, slashes, spaces, shell metacharacters, unicode) is refused where text
/// enters, so no later layer ever sees it.
public enum Identifier {
    public static let maximumLength = 32

    public static func isValid(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= maximumLength else { return false }
        return utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
        }
    }

    /// A printable, bounded rendering of untrusted text for error messages.
    public static func quoted(_ text: String) -> String {
        let clipped = text.unicodeScalars.prefix(40).map { s -> String in
            s.isASCII && s.value >= 0x20 && s.value < 0x7F ? String(s) : "?"
        }.joined()
        return text.unicodeScalars.count > 40 ? clipped + "…" : clipped
    }
}

/// A game's id, e.g. `valheim`: the plan folder name and the first part of a server uid.
public struct GameUID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(validating text: String) throws(DomainError) {
        guard Identifier.isValid(text) else {
            throw .invalid(
                field: "game_uid",
                reason: "game_uid must be 1-32 characters of a-z, 0-9, '-' or '_' (got '\(Identifier.quoted(text))')")
        }
        rawValue = text
    }

    public var description: String { rawValue }
    public static func < (a: GameUID, b: GameUID) -> Bool { a.rawValue < b.rawValue }
}
