/// A server's id on the wire: `GAME_UID.SERVERNAME` (PEON's "warcamp" name), e.g. `valheim.riverstead`.
///
/// Both parts follow `Identifier` (1–32 of `a-z 0-9 - _`), so a uid is safe in container names,
/// paths and labels; anything else is refused where the text enters.
public struct ServerUID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let game: GameUID
    public let name: String

    public init(game: GameUID, name: String) throws(DomainError) {
        guard Identifier.isValid(name) else {
            throw .invalid(
                field: "servername",
                reason: "a server name must be 1-32 characters of a-z, 0-9, '-' or '_' (got '\(Identifier.quoted(name))')")
        }
        self.game = game
        self.name = name
    }

    /// Parses `game.server`; exactly one dot.
    public init(validating text: String) throws(DomainError) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw .invalid(
                field: "server_uid",
                reason: "a server uid is GAME_UID.SERVERNAME, e.g. valheim.riverstead (got '\(Identifier.quoted(text))')")
        }
        try self.init(game: GameUID(validating: String(parts[0])), name: String(parts[1]))
    }

    public var description: String { "\(game).\(name)" }
    /// The container (and per-server network) name, as PEON names it.
    public var containerName: String { "peon.warcamp.\(game).\(name)" }
    /// The server's directory below the servers root.
    public var relativeDirectory: String { "\(game)/\(name)" }

    public static func < (a: ServerUID, b: ServerUID) -> Bool { (a.game.rawValue, a.name) < (b.game.rawValue, b.name) }
}

/// PEON's random warcamp names: one prefix and one suffix, e.g. `riverstead`.
public enum WarcampNames {
    static let prefixes = [
        "black", "castle", "chapel", "cliff", "cold", "crow", "crystal", "dark", "dragon", "eagle", "fire", "forest", "grey",
        "iron", "knights", "law", "mountain", "mystic", "night", "nighthaven", "orchid", "outlaw", "raven", "river",
        "sanctuary", "shadow", "silent", "summer", "thunder", "whiskey", "white", "winter", "wolf",
    ]
    static let suffixes = [
        "brook", "crest", "dale", "edge", "flake", "ford", "glen", "grove", "haven", "hill", "hollow", "keep", "lake", "land",
        "mead", "meadow", "point", "pool", "port", "ridge", "rock", "springs", "stead", "stone", "town", "valley", "view",
        "ville", "wick", "woods",
    ]

    /// A name not in `taken`: tries the 990 combinations at random, then appends a number.
    public static func random(avoiding taken: Set<String>, using rng: inout some RandomNumberGenerator) -> String {
        for _ in 0..<64 {
            let name = prefixes.randomElement(using: &rng)! + suffixes.randomElement(using: &rng)!
            if !taken.contains(name) { return name }
        }
        let base = prefixes.randomElement(using: &rng)! + suffixes.randomElement(using: &rng)!
        var n = 2
        while taken.contains("\(base)\(n)") { n += 1 }
        return "\(base)\(n)"
    }
}
