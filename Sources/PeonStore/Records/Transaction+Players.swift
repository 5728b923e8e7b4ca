/// A server's idle auto-stop setting and last player count (columns of `servers` kept apart from
/// `ServerRecord`, which the jobs rewrite whole).
public struct PlayerState: Sendable, Equatable {
    public let uid: String
    public let idleStop: Int?
    public let players: Int?
    public let maxPlayers: Int?
    public let idleSince: Int64?
}

extension Transaction {
    public func playerState(server: String) throws(StoreError) -> PlayerState? {
        try query("SELECT uid, idle_stop, players, max_players, idle_since FROM servers WHERE uid = ?", [.text(server)]).first.map(
            Self.playerState)
    }

    public func playerStates() throws(StoreError) -> [PlayerState] {
        try query("SELECT uid, idle_stop, players, max_players, idle_since FROM servers").map(Self.playerState)
    }

    /// Minutes with no players before the scheduler stops the server; nil turns it off.
    public func setIdleStop(server: String, minutes: Int?) throws(StoreError) {
        try query(
            "UPDATE servers SET idle_stop = ?, idle_since = NULL WHERE uid = ?",
            [minutes.map { .integer(Int64($0)) } ?? .null, .text(server)])
    }

    /// Records a poll; writes only what changed, so unchanged counts do not bump `servers.version`.
    public func setPlayers(server: String, players: Int?, maxPlayers: Int?, idleSince: Int64?) throws(StoreError) {
        func v(_ x: Int?) -> SQLValue { x.map { .integer(Int64($0)) } ?? .null }
        try query(
            """
            UPDATE servers SET players = ?, max_players = ?, idle_since = ?
            WHERE uid = ? AND (players IS NOT ? OR max_players IS NOT ? OR idle_since IS NOT ?)
            """,
            [
                v(players), v(maxPlayers), idleSince.map(SQLValue.integer) ?? .null, .text(server), v(players), v(maxPlayers),
                idleSince.map(SQLValue.integer) ?? .null,
            ])
    }

    static func playerState(_ r: Row) -> PlayerState {
        PlayerState(
            uid: r[0].text ?? "", idleStop: r[1].integer.map { Int($0) }, players: r[2].integer.map { Int($0) },
            maxPlayers: r[3].integer.map { Int($0) }, idleSince: r[4].integer)
    }
}
