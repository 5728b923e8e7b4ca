public import PeonJSON

/// What a sleeping server's held ports do with what arrives (`wake_on_connect`): which packets
/// wake the game, which are answered for it, which are only noted. Pure decisions; the node's
/// port holder does the sockets.
///
/// A scan or a single stray packet must not start a game: a datagram wakes when the plan knows
/// what a real client's first packet looks like and this is one (Luanti's connection hello), or
/// when a second datagram comes from the same address within `confirmSeconds`. A TCP connection
/// wakes once it sends a byte or stays open `confirmSeconds` (a connect scan closes at once).
/// A2S_INFO is answered while asleep (server browsers keep listing the server) and never wakes.
/// Addresses on `ignore` (`PEON_WAKE_IGNORE`: monitoring, the operator's own checks) never wake.
public struct WakeRule: Sendable, Equatable {
    /// The plan's probe: what a client's first packet looks like (`luanti`), whether A2S_INFO is
    /// answered while asleep (`a2s`).
    public let client: NetworkProbe?
    public let ignore: [CIDR]
    /// The server's name as A2S shows it while asleep, and its player maximum.
    public let name: String
    public let maxPlayers: Int

    public static let confirmSeconds = 5.0
    /// Datagrams kept per server while it starts, and held connections; a flood is dropped.
    public static let keptDatagrams = 64
    public static let heldConnections = 16
    /// Bytes a held TCP connection may send before the game takes it over.
    public static let heldBytes = 64 * 1024

    public init(client: NetworkProbe?, ignore: [CIDR], name: String, maxPlayers: Int) {
        self.client = client
        self.ignore = ignore
        self.name = String(name.prefix(64))
        self.maxPlayers = max(0, min(255, maxPlayers))
    }

    public enum Verdict: Equatable, Sendable {
        /// Start the game.
        case wake
        /// Answer with these bytes (A2S_INFO while asleep); never a wake.
        case answer([UInt8])
        /// Note the sender: a second datagram within `confirmSeconds` wakes.
        case note
        /// Drop it (an ignored address).
        case ignore
    }

    /// What to do with one datagram from `from`; `lastSeen` is when that address last sent one
    /// (monotonic seconds), `now` the time now; `challenge` the 4 bytes this address must send
    /// back before A2S_INFO is answered (the node derives them from the address and a secret, so
    /// a forged source cannot make it answer anyone else: no reflection).
    public func datagram(_ bytes: [UInt8], from: IPAddress?, lastSeen: Double?, now: Double, challenge: [UInt8]) -> Verdict {
        if let from, ignore.contains(where: { $0.contains(from) }) { return .ignore }
        if Self.isA2SInfoQuery(bytes) {
            guard client == .a2s else { return .note }
            return .answer(
                bytes.count == 29 && bytes.suffix(4).elementsEqual(challenge)
                    ? sleepingInfo : [0xFF, 0xFF, 0xFF, 0xFF, 0x41] + challenge.prefix(4))
        }
        if client == .luanti, LuantiPacket.isClientHello(bytes) { return .wake }
        if let lastSeen, now - lastSeen <= Self.confirmSeconds { return .wake }
        return .note
    }

    /// Whether a TCP connection from `from` wakes the game: after `sentBytes` bytes, open for
    /// `openSeconds`. nil: keep waiting; false: never (close it).
    public func connection(from: IPAddress?, sentBytes: Int, openSeconds: Double) -> Bool? {
        if let from, ignore.contains(where: { $0.contains(from) }) { return false }
        return sentBytes > 0 || openSeconds >= Self.confirmSeconds ? true : nil
    }

    /// `FF FF FF FF 54 "Source Engine Query" 00`, with or without a challenge.
    public static func isA2SInfoQuery(_ bytes: [UInt8]) -> Bool {
        (bytes.count == 25 || bytes.count == 29) && bytes.starts(with: PlayerQuery.a2sRequest())
    }

    /// An A2S_INFO reply: the name marked as sleeping, no players, the known maximum.
    public var sleepingInfo: [UInt8] {
        func text(_ s: String) -> [UInt8] { Array(s.utf8.filter { $0 != 0 }) + [0] }
        return [0xFF, 0xFF, 0xFF, 0xFF, 0x49, 0x11] + text(name + " (sleeping)") + text("sleeping") + text("") + text("Peon")
            + [0, 0] + [0, UInt8(maxPlayers), 0] + Array("dl".utf8) + [0, 0] + text("sleeping")
    }

    // MARK: - The wire form (a hold travels to the node with its server)

    public var json: JSON {
        [
            "client": client.map { .string($0.rawValue) } ?? .null, "ignore": .array(ignore.map { .string($0.description) }),
            "name": .string(name), "max_players": .int(maxPlayers),
        ]
    }

    public init?(json: JSON) {
        let client = json["client"]?.stringValue
        guard client == nil || NetworkProbe(rawValue: client!) != nil, let name = json["name"]?.stringValue,
            let max = CheckedNumber.int(json["max_players"], in: 0...255)
        else { return nil }
        var ignore: [CIDR] = []
        for item in json["ignore"]?.arrayValue ?? [] {
            guard let cidr = item.stringValue.flatMap(CIDR.init) else { return nil }
            ignore.append(cidr)
        }
        self.init(client: client.flatMap(NetworkProbe.init(rawValue:)), ignore: ignore, name: name, maxPlayers: max)
    }
}

/// `wake_on_connect` of a create or modify body: true or false (nil when absent).
public enum WakeOnConnect {
    public static func parse(_ value: JSON?) throws(DomainError) -> Bool? {
        guard let value else { return nil }
        guard let on = value.boolValue else {
            throw .invalid(field: "wake_on_connect", reason: "wake_on_connect must be true or false.")
        }
        return on
    }
}
