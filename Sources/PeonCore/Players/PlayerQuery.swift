public import PeonJSON

/// How a plan counts its players (`metadata.players`), and the pure parts of each way.
public enum PlayerQuery: Sendable, Equatable {
    /// Steam's A2S_INFO over UDP to the server's port named `port` (default: the plan's first port).
    case a2s(port: String?)
    /// Luanti: the player list its log prints on every join and leave (`config/debug.txt`).
    case luanti
    /// Any game: lines of `file` (default `config/debug.txt`) containing `join` or `leave` literals.
    case log(join: String, leave: String, file: String)

    public static let defaultLog = "config/debug.txt"

    /// `metadata.players` of a plan; nil when absent; an error names what is wrong.
    public static func parse(_ value: JSON?) throws(DomainError) -> PlayerQuery? {
        guard let value, !value.isNull else { return nil }
        let bad = DomainError.invalid(
            field: "metadata.players",
            reason:
                "metadata.players must be {\"query\": \"a2s\"|\"luanti\"} or {\"query\": \"log\", \"join\": \"...\", \"leave\": \"...\"}.")
        guard value.objectValue != nil, let query = value["query"]?.stringValue else { throw bad }
        func literal(_ key: String) throws(DomainError) -> String {
            guard let s = value[key]?.stringValue, !s.isEmpty, s.utf8.count <= 100, !s.utf8.contains(where: { $0 < 0x20 }) else {
                throw bad
            }
            return s
        }
        switch query {
        case "a2s":
            guard let port = value["port"] else { return .a2s(port: nil) }
            guard let name = port.stringValue, Identifier.isValid(name.lowercased()) else { throw bad }
            return .a2s(port: name)
        case "luanti": return .luanti
        case "log":
            var file = defaultLog
            if value["file"] != nil {
                file = try literal("file")
                // Relative to the server's folder, inside config/ or data/: never a way out.
                let parts = file.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count >= 2, ["config", "data", "user"].contains(parts[0]),
                    !parts.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." })
                else { throw bad }
            }
            return .log(join: try literal("join"), leave: try literal("leave"), file: file)
        default: throw bad
        }
    }

    // MARK: - A2S

    /// A2S_INFO request; with the challenge a server asked for appended.
    public static func a2sRequest(challenge: [UInt8] = []) -> [UInt8] {
        [0xFF, 0xFF, 0xFF, 0xFF, 0x54] + Array("Source Engine Query".utf8) + [0] + challenge
    }

    /// The challenge of an `S2C_CHALLENGE` reply (`FF FF FF FF 41 <4 bytes>`), else nil.
    public static func a2sChallenge(_ reply: [UInt8]) -> [UInt8]? {
        guard reply.count == 9, reply.starts(with: [0xFF, 0xFF, 0xFF, 0xFF, 0x41]) else { return nil }
        return Array(reply[5...])
    }

    /// Players and maximum from an A2S_INFO reply (`FF FF FF FF 49`, protocol, four strings, id,
    /// players, max players, bots…); nil when it is not one. Bots are not counted as players.
    public static func a2sInfo(_ reply: [UInt8]) -> (players: Int, max: Int)? {
        guard reply.count <= 1400, reply.starts(with: [0xFF, 0xFF, 0xFF, 0xFF, 0x49]) else { return nil }
        var i = 6
        for _ in 0..<4 {
            guard i < reply.count, let end = reply[i...].firstIndex(of: 0) else { return nil }
            i = end + 1
        }
        guard reply.count >= i + 5 else { return nil }
        let players = Int(reply[i + 2])
        let max = Int(reply[i + 3])
        let bots = Int(reply[i + 4])
        return (Swift.max(0, players - bots), max)
    }

    // MARK: - Logs

    /// Players online from a Luanti log's tail: the list printed with the last `joins game` or
    /// `leaves game` line (`... List of players: a b`), zero when the server started after it,
    /// nil when the log says nothing yet.
    public static func luantiPlayers(log: String) -> Int? {
        for line in log.split(separator: "\n").reversed() {
            if line.contains("joins game") || line.contains("leaves game") || line.contains("times out. List of players") {
                guard let r = line.firstRange(of: "List of players:") else { continue }
                return line[r.upperBound...].split(separator: " ").count
            }
            if line.contains("listening on") || line.contains("Server for gameid") { return 0 }
        }
        return nil
    }

    /// Lines with `join` minus lines with `leave`, never below zero (the scheduler reads the tail
    /// of a log the server truncates or rotates at start).
    public static func logPlayers(log: String, join: String, leave: String) -> Int {
        var count = 0
        for line in log.split(separator: "\n") {
            if line.contains(join) {
                count += 1
            } else if line.contains(leave) {
                count = max(0, count - 1)
            }
        }
        return count
    }
}

/// The idle auto-stop decision, as a value: the scheduler polls players and asks this.
public enum IdleStop {
    /// Whether to stop now, and the new `idle_since`: the first poll that saw zero players. An
    /// unknown count never stops a server (a broken query must not take it down).
    /// `minuteSeconds`: the length of a minute (`PEON_IDLE_MINUTE_SECONDS`).
    public static func decide(
        players: Int?, idleSince: Int64?, idleMinutes: Int?, now: Int64, minuteSeconds: Int = 60
    ) -> (stop: Bool, idleSince: Int64?) {
        guard let players, players == 0, let idleMinutes, idleMinutes > 0 else { return (false, nil) }
        let since = idleSince ?? now
        return now - since >= Int64(idleMinutes) * Int64(minuteSeconds) ? (true, nil) : (false, since)
    }

    /// `idle_stop` of a create or modify body: minutes (1-10080), or 0/null to turn it off.
    public static func parse(_ value: JSON?) throws(DomainError) -> Int? {
        guard let value, !value.isNull else { return nil }
        guard let n = CheckedNumber.int(value, in: 0...10080) else {
            throw .invalid(
                field: "idle_stop", reason: "idle_stop must be a number of minutes from 1 to 10080, or 0 or null to turn it off.")
        }
        return n == 0 ? nil : n
    }
}
