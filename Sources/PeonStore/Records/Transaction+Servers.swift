public import PeonCore
public import PeonJSON

/// A server as the store holds it: what the user asked for and what was last observed.
public struct ServerRecord: Sendable, Equatable {
    public let uid: ServerUID
    public var description: String
    /// Resolved settings in plan order.
    public var settings: [(String, String)]
    public var ports: [PortSpec]
    /// `running` or `stopped`: what the user wants.
    public var desiredState: String
    /// Docker's words for the container, or `missing`/`unknown`.
    public var observedState: String
    public var containerID: String?
    public var containerType: String
    public var buildVersion: String
    /// The server's own limits request (`{"memory_mb": ...}`), applied over the plan's.
    public var limits: JSON
    /// The server's own crash policy request (`{"enabled": false}`), applied over the default.
    public var crashPolicy: JSON
    public var createdAt: Int64
    /// The node that holds it on a multi-node platform (set by the scheduler only).
    public var node: String? = nil

    public init(
        uid: ServerUID, description: String, settings: [(String, String)], ports: [PortSpec] = [], desiredState: String = "stopped",
        observedState: String = "missing", containerID: String? = nil, containerType: String = "unknown", buildVersion: String = "unknown",
        limits: JSON = .object([]), crashPolicy: JSON = .object([]), createdAt: Int64
    ) {
        self.uid = uid
        self.description = description
        self.settings = settings
        self.ports = ports
        self.desiredState = desiredState
        self.observedState = observedState
        self.containerID = containerID
        self.containerType = containerType
        self.buildVersion = buildVersion
        self.limits = limits
        self.crashPolicy = crashPolicy
        self.createdAt = createdAt
    }

    public static func == (a: ServerRecord, b: ServerRecord) -> Bool {
        a.uid == b.uid && a.description == b.description && a.settings.map { "\($0)=\($1)" } == b.settings.map { "\($0)=\($1)" }
            && a.ports == b.ports && a.desiredState == b.desiredState && a.observedState == b.observedState
            && a.containerID == b.containerID && a.limits == b.limits && a.crashPolicy == b.crashPolicy
    }
}

/// What the server object shows of a server: enough for `GET /servers`, without parsing settings.
public struct ServerSummary: Sendable {
    public let uid: ServerUID
    public let description: String
    public let observedState: String
    public let containerType: String
    public let buildVersion: String
    /// The wire form of the next timed action (`time`).
    public let time: JSON?
    /// The scheduler's last snapshot of the server's visible config files.
    public let config: JSON
    /// The last player count and maximum (nil: unknown), and the idle auto-stop in minutes.
    public var players: Int? = nil
    public var maxPlayers: Int? = nil
    public var idleStop: Int? = nil
    /// Its last start, when its plan's probe found it ready since, and whether its start timed out
    /// (`Readiness`); milliseconds.
    public var startedAt: Int64? = nil
    public var readyAt: Int64? = nil
    public var startFailed = false
    /// `wake_on_connect`, and whether the server sleeps now (its node holds its ports).
    public var wakeOnConnect = false
    public var sleeping = false
    /// The node that holds it (multi-node platforms), nil on one machine, and that node's address.
    public let node: String?
    public var nodeAddress: String? = nil
    /// The published ports (raw JSON, as stored).
    public var ports: JSON = .array([])

    init(
        uid: ServerUID, description: String, observedState: String, containerType: String, buildVersion: String, time: JSON?, config: JSON,
        node: String? = nil
    ) {
        self.node = node
        self.uid = uid
        self.description = description
        self.observedState = observedState
        self.containerType = containerType
        self.buildVersion = buildVersion
        self.time = time
        self.config = config
    }
}

extension Transaction {
    /// Every server with its next timed action, sorted by game and name, in one query.
    public func serverSummaries() throws(StoreError) -> [ServerSummary] {
        try summaries("ORDER BY s.game_uid, s.servername", [])
    }

    /// One server as the list shows it (the same query), nil when there is none.
    public func serverSummary(_ uid: ServerUID) throws(StoreError) -> ServerSummary? {
        try summaries("WHERE s.uid = ?", [.text(uid.description)]).first
    }

    private func summaries(_ clause: String, _ parameters: [SQLValue]) throws(StoreError) -> [ServerSummary] {
        try query(
            """
            SELECT s.uid, s.description, s.observed_state, s.container_type, s.build_version,
                   (SELECT c.wire_time FROM schedules c WHERE c.server_uid = s.uid ORDER BY c.due_at LIMIT 1), s.config,
                   s.players, s.max_players, s.idle_stop, s.node, (SELECT n.address FROM nodes n WHERE n.name = s.node), s.ports,
                   s.started_at, s.ready_at, s.start_failed, s.wake_on_connect, s.sleeping
            FROM servers s \(clause)
            """, parameters
        ).compactMap { r in
            guard let uid = try? ServerUID(validating: r[0].text ?? "") else { return nil }
            var summary = ServerSummary(
                uid: uid, description: r[1].text ?? "", observedState: r[2].text ?? "unknown", containerType: r[3].text ?? "unknown",
                buildVersion: r[4].text ?? "unknown", time: r[5].text.flatMap { try? JSON.parse($0) },
                config: (try? JSON.parse(r[6].text ?? "{}")) ?? .object([]), node: r[10].text)
            summary.players = r[7].integer.map { Int($0) }
            summary.maxPlayers = r[8].integer.map { Int($0) }
            summary.idleStop = r[9].integer.map { Int($0) }
            summary.nodeAddress = r[11].text
            summary.ports = (try? JSON.parse(r[12].text ?? "[]")) ?? .array([])
            summary.startedAt = r[13].integer
            summary.readyAt = r[14].integer
            summary.startFailed = r[15].integer == 1
            summary.wakeOnConnect = r[16].integer == 1
            summary.sleeping = r[17].integer == 1
            return summary
        }
    }

    static let serverColumns =
        "uid, description, settings, ports, desired_state, observed_state, container_id, container_type, build_version, created_at, limits, crash_policy, node"

    public func insertServer(_ s: ServerRecord, now: Int64) throws(StoreError) {
        try query(
            """
            INSERT INTO servers (uid, game_uid, servername, description, settings, ports, desired_state, observed_state, container_id,
                                 container_type, build_version, created_at, updated_at, limits, crash_policy)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(s.uid.description), .text(s.uid.game.rawValue), .text(s.uid.name), .text(s.description),
                .text(Self.settingsText(s.settings)), .text(Self.portsText(s.ports)), .text(s.desiredState), .text(s.observedState),
                s.containerID.map(SQLValue.text) ?? .null, .text(s.containerType), .text(s.buildVersion), .integer(s.createdAt),
                .integer(now), .text(s.limits.text), .text(s.crashPolicy.text),
            ])
    }

    public func updateServer(_ s: ServerRecord, now: Int64) throws(StoreError) {
        try query(
            """
            UPDATE servers SET description = ?, settings = ?, ports = ?, desired_state = ?, observed_state = ?, container_id = ?,
                               container_type = ?, build_version = ?, updated_at = ?, limits = ?, crash_policy = ?
            WHERE uid = ?
            """,
            [
                .text(s.description), .text(Self.settingsText(s.settings)), .text(Self.portsText(s.ports)), .text(s.desiredState),
                .text(s.observedState), s.containerID.map(SQLValue.text) ?? .null, .text(s.containerType), .text(s.buildVersion),
                .integer(now), .text(s.limits.text), .text(s.crashPolicy.text),
                .text(s.uid.description),
            ])
    }

    public func server(_ uid: ServerUID) throws(StoreError) -> ServerRecord? {
        try query("SELECT \(Self.serverColumns) FROM servers WHERE uid = ?", [.text(uid.description)]).first.flatMap(Self.server)
    }

    /// The address of a mirrored node (`GET /nodes`), nil when it is not known (yet).
    public func nodeAddress(_ name: String) throws(StoreError) -> String? {
        try query("SELECT address FROM nodes WHERE name = ?", [.text(name)]).first?[0].text
    }

    /// All servers sorted by game and name, as `GET /servers` lists them.
    public func servers() throws(StoreError) -> [ServerRecord] {
        try query("SELECT \(Self.serverColumns) FROM servers ORDER BY game_uid, servername").compactMap(Self.server)
    }

    public func deleteServer(_ uid: ServerUID) throws(StoreError) {
        try query("DELETE FROM servers WHERE uid = ?", [.text(uid.description)])
        try deleteLogs(server: uid.description)
    }

    /// Stores the scheduler's snapshot of a server's visible config files (for listings).
    /// The scheduler's last snapshot of the server's visible config files (`{}` before the first).
    public func configSnapshot(_ uid: ServerUID) throws(StoreError) -> JSON {
        (try query("SELECT config FROM servers WHERE uid = ?", [.text(uid.description)]).first?[0].text).flatMap { try? JSON.parse($0) }
            ?? .object([])
    }

    public func setConfigSnapshot(_ uid: ServerUID, _ config: JSON) throws(StoreError) {
        try query("UPDATE servers SET config = ? WHERE uid = ?", [.text(config.text), .text(uid.description)])
    }

    /// Records what the engine reports, without touching what the user wants.
    public func setObservedState(_ uid: ServerUID, state: String, containerID: String?, now: Int64) throws(StoreError) {
        try query(
            "UPDATE servers SET observed_state = ?, container_id = ?, updated_at = ? WHERE uid = ?",
            [.text(state), containerID.map(SQLValue.text) ?? .null, .integer(now), .text(uid.description)])
    }

    static func server(_ row: Row) -> ServerRecord? {
        guard let uid = try? ServerUID(validating: row[0].text ?? "") else { return nil }
        let settings = ((try? JSON.parse(row[2].text ?? "[]"))?.arrayValue ?? []).compactMap { pair -> (String, String)? in
            guard let a = pair.arrayValue, a.count == 2, let k = a[0].stringValue, let v = a[1].stringValue else { return nil }
            return (k, v)
        }
        let ports = ((try? JSON.parse(row[3].text ?? "[]"))?.arrayValue ?? []).compactMap { p -> PortSpec? in
            guard let name = p["name"]?.stringValue, let port = CheckedNumber.int(p["port"], in: 1...65535),
                let proto = PortSpec.Proto(rawValue: p["proto"]?.stringValue ?? "")
            else { return nil }
            return PortSpec(name: name, port: port, proto: proto)
        }
        var record = ServerRecord(
            uid: uid, description: row[1].text ?? "", settings: settings, ports: ports, desiredState: row[4].text ?? "stopped",
            observedState: row[5].text ?? "unknown", containerID: row[6].text,
            containerType: row[7].text ?? "unknown", buildVersion: row[8].text ?? "unknown",
            limits: (try? JSON.parse(row[10].text ?? "{}")) ?? .object([]),
            crashPolicy: (try? JSON.parse(row[11].text ?? "{}")) ?? .object([]), createdAt: row[9].integer ?? 0)
        record.node = row.count > 12 ? row[12].text : nil
        return record
    }

    static func settingsText(_ settings: [(String, String)]) -> String {
        JSON.array(settings.map { [.string($0.0), .string($0.1)] }).text
    }

    static func portsText(_ ports: [PortSpec]) -> String {
        JSON.array(ports.map { ["name": .string($0.name), "port": .int($0.port), "proto": .string($0.proto.rawValue)] }).text
    }
}
