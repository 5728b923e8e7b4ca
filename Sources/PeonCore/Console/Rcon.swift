public import PeonJSON

/// A plan's Source RCON (`metadata.rcon`): which port and which setting carry it. Console
/// commands of its servers go over RCON instead of the game's stdin.
public struct RconDeclaration: Sendable, Equatable {
    /// A port of the plan's port groups (the game's own TCP port, as srcds uses) or a setting
    /// holding a port number (a port only the game's network sees: never published).
    public let port: String
    /// The setting holding the RCON password.
    public let password: String

    public init(port: String, password: String) {
        self.port = port
        self.password = password
    }

    /// `metadata.rcon` of a plan; nil when absent. Names must be a port of every group or a
    /// setting (`port`), and a setting (`password`).
    public static func parse(_ value: JSON?, portGroups: [[PortSpec]], settings: [Setting]) throws(DomainError) -> RconDeclaration? {
        guard let value, !value.isNull else { return nil }
        let bad = DomainError.invalid(
            field: "metadata.rcon",
            reason: "metadata.rcon must be {\"port\": \"<port or setting name>\", \"password\": \"<setting name>\"}.")
        guard let members = value.objectValue, members.allSatisfy({ ["port", "password"].contains($0.0) }),
            let port = value["port"]?.stringValue, let password = value["password"]?.stringValue
        else { throw bad }
        let keys = Set(settings.map(\.key))
        let inEveryGroup = !portGroups.isEmpty && portGroups.allSatisfy { group in group.contains { $0.name == port && $0.proto != .udp } }
        guard inEveryGroup || keys.contains(port) else {
            throw .invalid(
                field: "metadata.rcon",
                reason: "metadata.rcon.port '\(Identifier.quoted(port))' must name a TCP port of every port group or a setting.")
        }
        guard keys.contains(password) else {
            throw .invalid(
                field: "metadata.rcon", reason: "metadata.rcon.password '\(Identifier.quoted(password))' must name a setting.")
        }
        return RconDeclaration(port: port, password: password)
    }

    /// The port and password of one server: its allocated ports, its settings over the plan's
    /// defaults (as its container's environment has them).
    public func resolve(ports: [PortSpec], settings given: [(String, String)], defaults: [Setting] = []) throws(RconError) -> (
        port: Int, password: String
    ) {
        let settings = given + defaults.compactMap { s in s.defaultValue.map { (s.key, $0) } }
        let value =
            ports.first { $0.name == port }?.port ?? settings.first { $0.0 == port }.flatMap { CheckedNumber.int($0.1, in: 1...65535) }
        guard let value else { throw .settings("the server's \(port) is not a port number (1-65535)") }
        guard let secret = settings.first(where: { $0.0 == password })?.1, !secret.isEmpty else {
            throw .settings("the server has no RCON password (\(password)); PUT /server/modify gives it one (generated when left empty)")
        }
        guard secret.utf8.count <= RconPacket.maximumBody, !secret.utf8.contains(0) else {
            throw .settings("the server's RCON password (\(password)) cannot be sent over RCON")
        }
        return (value, secret)
    }
}

/// Why an RCON exchange failed; `code` is the API's error code.
public enum RconError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server's RCON port or password setting cannot be used.
    case settings(String)
    /// No connection (refused, no route, no answer to connect in time).
    case unreachable(String)
    /// The game refused the password (AUTH_RESPONSE with id -1).
    case authFailed
    /// The game sent what Source RCON does not allow (sizes, ids, types, a closed connection).
    case protocolViolation(String)
    /// Connected, but no answer in time.
    case timeout

    public var code: String {
        switch self {
        case .settings: "rcon.settings"
        case .unreachable: "rcon.unreachable"
        case .authFailed: "rcon.auth_failed"
        case .protocolViolation: "rcon.protocol"
        case .timeout: "rcon.timeout"
        }
    }

    /// The message a case carries (empty for those without), so the error crosses a node channel whole.
    public var detail: String {
        switch self {
        case .settings(let m), .unreachable(let m), .protocolViolation(let m): m
        case .authFailed, .timeout: ""
        }
    }

    public var description: String {
        switch self {
        case .settings(let m): "RCON is not usable: \(m)."
        case .unreachable(let m): "The game's RCON cannot be reached: \(m)."
        case .authFailed: "The game refused the RCON password: the server's RCON password setting does not match the game's."
        case .protocolViolation(let m): "The game's RCON answer is not valid Source RCON: \(m)."
        case .timeout: "The game's RCON did not answer in time."
        }
    }
}

/// One Source RCON packet: little-endian int32 size (of what follows), id, type, then the body
/// and two NULs (the body's terminator and an empty string).
public struct RconPacket: Sendable, Equatable {
    public static let auth: Int32 = 3
    /// SERVERDATA_EXECCOMMAND from the client, SERVERDATA_AUTH_RESPONSE from the server.
    public static let execCommand: Int32 = 2
    public static let authResponse: Int32 = 2
    public static let responseValue: Int32 = 0
    /// Source servers split answers at 4096 body bytes; the margin admits other games.
    public static let maximumBody = 4096
    public static let minimumSize: Int32 = 10
    public static let maximumSize: Int32 = Int32(maximumBody) * 2 + 10

    public let id: Int32
    public let type: Int32
    public let body: [UInt8]

    public init(id: Int32, type: Int32, body: [UInt8]) {
        self.id = id
        self.type = type
        self.body = body
    }

    /// The packet's bytes; bodies are NUL-free text the caller checked.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 14)
        for value in [Int32(body.count + 10), id, type] { withUnsafeBytes(of: value.littleEndian) { out += $0 } }
        return out + body + [0, 0]
    }
}

/// Cuts a byte stream into packets, refusing what Source RCON does not allow. The stream is the
/// game's, so hostile: sizes are checked before anything is buffered for them.
public struct RconDecoder: Sendable {
    var buffer: [UInt8] = []
    var start = 0

    public init() {}

    public mutating func append(_ bytes: some Collection<UInt8>) {
        // Compacts what was consumed before it grows: at most one packet and a read stay buffered.
        if start > 0, start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next whole packet, nil when more bytes are needed.
    public mutating func next() throws(RconError) -> RconPacket? {
        guard buffer.count - start >= 4 else { return nil }
        let size = int32(at: start)
        guard (RconPacket.minimumSize...RconPacket.maximumSize).contains(size) else {
            throw .protocolViolation("a packet size of \(size) bytes (allowed: \(RconPacket.minimumSize)-\(RconPacket.maximumSize))")
        }
        let end = start + 4 + Int(size)
        guard buffer.count >= end else { return nil }
        let id = int32(at: start + 4)
        let type = int32(at: start + 8)
        let body = buffer[(start + 12)..<end]
        guard body.last == 0 else { throw .protocolViolation("a packet not terminated by NUL") }
        start = end
        return RconPacket(id: id, type: type, body: Array(body.prefix { $0 != 0 }))
    }

    func int32(at offset: Int) -> Int32 {
        Int32(
            bitPattern: UInt32(buffer[offset]) | UInt32(buffer[offset + 1]) << 8 | UInt32(buffer[offset + 2]) << 16 | UInt32(
                buffer[offset + 3]) << 24)
    }
}

/// What an RCON command answered: its text (control characters but newlines and tabs dropped)
/// and whether it was cut at the cap.
public struct RconResponse: Sendable, Equatable {
    public let text: String
    public let truncated: Bool

    public init(text: String, truncated: Bool) {
        self.text = text
        self.truncated = truncated
    }
}

/// One authenticated command as a state machine over packets, free of sockets so every hostile
/// sequence is testable. Auth first; then the command and an empty RESPONSE_VALUE, whose echo
/// marks the end of a multi-packet answer (Valve's advice: servers answer requests in order).
public struct RconExchange: Sendable {
    public static let authID: Int32 = 1
    public static let commandID: Int32 = 2
    public static let endID: Int32 = 3
    /// Answers are cut here (64 KiB); packets counted too, so empty ones cannot go on for ever.
    public static let defaultMaximumBytes = 64 * 1024
    public static let maximumPackets = 1024

    public enum Step: Sendable, Equatable {
        case wait
        case send([UInt8])
        case finished(RconResponse)
    }

    enum Phase: Sendable { case authenticating, answering, finished }

    let command: [UInt8]
    let maximumBytes: Int
    var phase = Phase.authenticating
    var body: [UInt8] = []
    var packets = 0
    /// The auth packet: what to send first.
    public let greeting: [UInt8]

    public init(password: String, command: String, maximumBytes: Int = defaultMaximumBytes) throws(RconError) {
        for (name, text) in [("password", password), ("command", command)] {
            guard !text.isEmpty, text.utf8.count <= RconPacket.maximumBody, !text.utf8.contains(0) else {
                throw .settings("the \(name) must be 1-\(RconPacket.maximumBody) bytes without NUL")
            }
        }
        self.command = Array(command.utf8)
        self.maximumBytes = maximumBytes
        greeting = RconPacket(id: Self.authID, type: RconPacket.auth, body: Array(password.utf8)).bytes
    }

    /// Whether the command was sent and some of its answer came.
    public var answering: Bool { phase == .answering }

    public mutating func receive(_ packet: RconPacket) throws(RconError) -> Step {
        packets += 1
        switch phase {
        case .finished:
            return .wait
        case .authenticating:
            guard packets <= 16 else { throw .protocolViolation("too many packets before the password was answered") }
            if packet.type == RconPacket.authResponse {
                if packet.id == -1 { throw .authFailed }
                guard packet.id == Self.authID else { throw .protocolViolation("an auth response with id \(packet.id)") }
                phase = .answering
                return .send(
                    RconPacket(id: Self.commandID, type: RconPacket.execCommand, body: command).bytes
                        + RconPacket(id: Self.endID, type: RconPacket.responseValue, body: []).bytes)
            }
            // srcds sends an empty RESPONSE_VALUE before its AUTH_RESPONSE.
            guard packet.type == RconPacket.responseValue, packet.id == Self.authID else {
                throw .protocolViolation("a packet of type \(packet.type) with id \(packet.id) before the password was answered")
            }
            return .wait
        case .answering:
            if packet.id == -1 { throw .authFailed }
            if packet.id == Self.endID { return finish(truncated: false) }
            // A repeated auth answer is harmless; anything else not ours is refused.
            if packet.id == Self.authID { return packets > Self.maximumPackets ? finish(truncated: true) : .wait }
            guard packet.id == Self.commandID, packet.type == RconPacket.responseValue else {
                throw .protocolViolation("a packet of type \(packet.type) with id \(packet.id) in the answer")
            }
            let room = maximumBytes - body.count
            body += packet.body.prefix(room)
            return packet.body.count > room || packets > Self.maximumPackets ? finish(truncated: true) : .wait
        }
    }

    /// The connection went quiet or closed: what came of the answer, when the command was sent
    /// (a game that ignores the end marker still answered), else the failure.
    public mutating func ended(closed: Bool) throws(RconError) -> RconResponse {
        guard phase == .answering else {
            throw closed ? .protocolViolation("the game closed the connection before answering the password") : .timeout
        }
        guard !body.isEmpty || closed else { throw .timeout }
        guard case .finished(let response) = finish(truncated: false) else { throw .timeout }
        return response
    }

    mutating func finish(truncated: Bool) -> Step {
        phase = .finished
        return .finished(RconResponse(text: Self.text(body), truncated: truncated))
    }

    /// The body as text: invalid UTF-8 replaced, control characters but `\n` and `\t` dropped.
    static func text(_ bytes: [UInt8]) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars
        where scalar == "\n" || scalar == "\t" || scalar.properties.generalCategory != .control {
            scalars.append(scalar)
        }
        return String(scalars)
    }
}
