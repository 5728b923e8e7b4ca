public import PeonJSON

/// A game plan (PEON warplans `plan.json`): what to run and which settings a server of it takes.
public struct Plan: Sendable, Equatable {
    public let gameUID: GameUID
    public let description: String
    public let image: String
    /// Alternative port groups; a server uses one group.
    public let portGroups: [[PortSpec]]
    /// Settings in plan order (`STEAM_ID` included: it is the Steam app id, never user-set).
    public let settings: [Setting]
    /// Server-directory-relative sources (`~!/data`) to container paths.
    public let volumes: [(source: String, target: String)]
    public let files: [(source: String, target: String)]
    /// Optional `limits` of the plan (`memory_mb`, `cpus`, `pids`): every server's defaults.
    public let limits: ResourceLimits
    /// The document as validated, stored and served again verbatim.
    public let document: JSON

    public static func == (a: Plan, b: Plan) -> Bool { a.document == b.document }
}

public struct PortSpec: Sendable, Equatable {
    public enum Proto: String, Sendable { case tcp, udp, both }
    public let name: String
    public let port: Int
    public let proto: Proto

    public init(name: String, port: Int, proto: Proto) {
        self.name = name
        self.port = port
        self.proto = proto
    }
}

/// One plan environment key: plain (`null` = required, a string = default) or the web UI's rich
/// object form (`{"default","label","required","type",...}`).
public struct Setting: Sendable, Equatable {
    public let key: String
    public let defaultValue: String?
    public let required: Bool
}
