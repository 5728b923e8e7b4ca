public import PeonJSON

/// How Peon tells that a plan's game accepts players (`metadata.ready`), not merely that its
/// container runs, and how long a start may take to get there.
///
///     "ready": {"probe": "a2s", "port": "PORT", "start_timeout": 900}
///     "ready": {"probe": "luanti" | "tcp", "port": "PORT"}
///     "ready": {"probe": "rcon"}
///     "ready": {"probe": "log", "line": "Server started"}
///
/// A plan without `ready` is ready by its `metadata.stop.ready_line` when it has one, else as soon
/// as its container runs.
public struct ReadyCheck: Sendable, Equatable {
    public enum Probe: Sendable, Equatable {
        /// The game answers as it would a client on the named port (nil: the server's first port):
        /// A2S_INFO or a Luanti handshake over UDP, a connection accepted over TCP.
        case network(NetworkProbe, port: String?)
        /// A Source RCON login accepted (the plan's `metadata.rcon`).
        case rcon
        /// A line of the game's output containing this text since the start.
        case log(String)
        /// Nothing to ask: ready once its container runs.
        case running
    }

    public let probe: Probe
    /// Seconds from a start to ready before the start is reported as failed (`start_timeout`).
    public let startTimeoutSeconds: Int
    /// A stop while the server is `starting` kills it at once: its probe asks as a client would
    /// (nobody can have joined a game that answers no client, so it has nothing to save), or the
    /// plan's author said so with `stop.ready_line`. Not for a `metadata.ready` log line: a game
    /// update that changes the line must not cost a world its save at every stop.
    public let stopsAtOnceWhileStarting: Bool

    public static let defaultStartTimeout = 600
    public static let startTimeoutRange: ClosedRange<Int> = 5...7200

    public init(probe: Probe, startTimeoutSeconds: Int = ReadyCheck.defaultStartTimeout, stopsAtOnceWhileStarting: Bool? = nil) {
        self.probe = probe
        self.startTimeoutSeconds = startTimeoutSeconds
        switch probe {
        case .network, .rcon: self.stopsAtOnceWhileStarting = stopsAtOnceWhileStarting ?? true
        case .log, .running: self.stopsAtOnceWhileStarting = stopsAtOnceWhileStarting ?? false
        }
    }

    /// The name of the probe's kind, as a plan and the API say it.
    public var kind: String {
        switch probe {
        case .network(let kind, _): kind.rawValue
        case .rcon: "rcon"
        case .log: "log"
        case .running: "running"
        }
    }

    /// The port the probe asks, by name, among a server's published ports (nil name: the first).
    public func port(in ports: [PortSpec]) -> PortSpec? {
        guard case .network(_, let name) = probe else { return nil }
        return name.flatMap { n in ports.first { $0.name == n } } ?? ports.first
    }

    /// `metadata.ready` of a plan. `readyLine` (`metadata.stop.ready_line`) stands in when it is
    /// absent. Port names must name a port of every group with the probe's protocol; `rcon` needs
    /// the plan's `metadata.rcon`.
    public static func parse(_ value: JSON?, portGroups: [[PortSpec]], hasRcon: Bool, readyLine: String?) throws(DomainError) -> ReadyCheck
    {
        guard let value, !value.isNull else {
            return readyLine.map { ReadyCheck(probe: .log($0), stopsAtOnceWhileStarting: true) } ?? ReadyCheck(probe: .running)
        }
        let shape =
            "metadata.ready must be {\"probe\": \"a2s\"|\"luanti\"|\"tcp\", \"port\": \"<port name>\"}, {\"probe\": \"rcon\"}, "
            + "{\"probe\": \"log\", \"line\": \"<text>\"} or {\"probe\": \"running\"}, with an optional \"start_timeout\" (seconds, 5 to 7200)."
        let bad = DomainError.invalid(field: "metadata.ready", reason: shape)
        guard let members = value.objectValue, let kind = value["probe"]?.stringValue else { throw bad }
        let allowed: Set<String> =
            switch kind {
            case "a2s", "luanti", "tcp": ["probe", "port", "start_timeout"]
            case "log": ["probe", "line", "start_timeout"]
            case "rcon", "running": ["probe", "start_timeout"]
            default: throw bad
            }
        guard members.allSatisfy({ allowed.contains($0.0) }) else { throw bad }
        var timeout = defaultStartTimeout
        if let given = value["start_timeout"] {
            guard let n = CheckedNumber.int(given, in: startTimeoutRange) else {
                throw .invalid(
                    field: "metadata.ready", reason: "metadata.ready.start_timeout must be a whole number of seconds from 5 to 7200.")
            }
            timeout = n
        }
        func portName(udp: Bool) throws(DomainError) -> String? {
            guard let given = value["port"] else {
                guard portGroups.allSatisfy({ group in group.first.map { $0.proto == .both || ($0.proto == .udp) == udp } ?? false }) else {
                    throw .invalid(
                        field: "metadata.ready", reason: "metadata.ready.port is needed: the first port is not \(udp ? "UDP" : "TCP").")
                }
                return nil
            }
            guard let name = given.stringValue,
                !portGroups.isEmpty,
                portGroups.allSatisfy({ group in group.contains { $0.name == name && ($0.proto == .both || ($0.proto == .udp) == udp) } })
            else {
                throw .invalid(
                    field: "metadata.ready",
                    reason: "metadata.ready.port must name a\(udp ? " UDP" : " TCP") port of every port group.")
            }
            return name
        }
        let probe: Probe
        switch kind {
        case "a2s", "luanti", "tcp":
            let network = NetworkProbe(rawValue: kind)!
            probe = .network(network, port: try portName(udp: network != .tcp))
        case "rcon":
            guard hasRcon else { throw .invalid(field: "metadata.ready", reason: "metadata.ready's rcon probe needs metadata.rcon.") }
            probe = .rcon
        case "log":
            guard let line = value["line"]?.stringValue, (1...200).contains(line.unicodeScalars.count),
                !line.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else { throw .invalid(field: "metadata.ready", reason: "metadata.ready.line must be 1 to 200 characters of one line.") }
            probe = .log(line)
        default: probe = .running
        }
        return ReadyCheck(probe: probe, startTimeoutSeconds: timeout)
    }
}

/// The probes a node runs at a game's port (`NodeOperation.probe`).
public enum NetworkProbe: String, Sendable, Equatable, CaseIterable {
    case a2s, luanti, tcp
}

/// Where a server is between its start and its first player (`server_state`), from what the
/// store knows: the container's state, when it was started and when it was found ready.
public enum Readiness {
    /// Peon's `server_state` for a container state: `starting` from a start until the plan's probe
    /// answers, `start_failed` when `start_timeout` passed first, `sleeping` while stopped with its
    /// ports held (`wake_on_connect`), else Docker's word.
    public static func serverState(containerState: String, startedAt: Int64?, readyAt: Int64?, failed: Bool, sleeping: Bool = false)
        -> String
    {
        guard containerState == "running" else { return sleeping ? "sleeping" : containerState }
        if isReady(startedAt: startedAt, readyAt: readyAt) { return "running" }
        return failed ? "start_failed" : "starting"
    }

    /// Ready for this start: found ready at or after it was started (a server started before Peon
    /// kept these, with neither known, counts as ready).
    public static func isReady(startedAt: Int64?, readyAt: Int64?) -> Bool {
        guard let startedAt else { return true }
        guard let readyAt else { return false }
        return readyAt >= startedAt
    }
}
