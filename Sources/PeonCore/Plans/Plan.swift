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
    /// What runs the game: Peon's steamcmd or Debian runtime image, or `image` as named.
    public let runtime: PlanRuntime
    /// Debian packages Peon installs when it builds the runtime image (`metadata.packages`).
    public let packages: [String]
    /// Linux capabilities added back to a container that drops all (`metadata.capabilities`).
    public let capabilities: [String]
    /// How a backup gets a consistent copy of a running server (`metadata.backup`).
    public let backup: BackupMethod
    /// Source RCON, when the game speaks it (`metadata.rcon`): console commands go there.
    public let rcon: RconDeclaration?
    /// How long a stop waits for the game after SIGTERM before it is killed (`metadata.stop.grace_seconds`).
    public let stopGraceSeconds: Int
    /// A piece of the game's output that says it finished starting (`metadata.stop.ready_line`):
    /// a server stopped before printing it has nothing to save and is killed at once (a game
    /// that ignores SIGTERM while it loads would otherwise hold a restart for the whole grace).
    public let readyLine: String?
    /// How to tell that the game accepts players, and how long a start may take (`metadata.ready`).
    public let ready: ReadyCheck
    /// The document as validated, stored and served again verbatim.
    public let document: JSON

    /// Whether a plans URL (`PEON_PLANS_URL`) names a `.tar.gz` (or `.tgz`) archive of a warplans
    /// tree rather than a mirror folder.
    public static func isArchiveURL(_ url: String) -> Bool {
        let path = String(url.prefix { $0 != "?" && $0 != "#" }).lowercased()
        return path.hasSuffix(".tar.gz") || path.hasSuffix(".tgz")
    }

    public static let defaultStopGraceSeconds = 30
    public static let stopGraceRange: ClosedRange<Int> = 1...600

    public static func == (a: Plan, b: Plan) -> Bool { a.document == b.document }
}

/// How a backup of a running server gets consistent files: `{"save_command": "save"}` types the
/// game's own save command into its console first; `{"stop": true}` stops and starts it around
/// the copy; neither copies the files as they are.
public enum BackupMethod: Sendable, Equatable {
    case live
    case saveCommand(String)
    case stop
}

/// How a plan's container image comes to be (`metadata.runtime`).
public enum PlanRuntime: String, Sendable, Equatable, CaseIterable {
    /// Peon's steamcmd runtime: installs the game with steamcmd at first start, then `/actions/server_start`.
    case steamcmd
    /// Peon's Debian runtime with the plan's `packages`, then `/actions/server_start`.
    case debian
    /// The plan's `metadata.image`, used as it is (with the same hardening).
    case image
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
    /// The rich form's hints for a form (the console's): a label, an input type (`text`,
    /// `password`, `number`, `boolean`, `select`, `textarea`) and a select's options.
    public var label: String? = nil
    public var inputType: String? = nil
    public var options: [String] = []
}
