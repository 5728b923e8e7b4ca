public import PeonJSON

/// Resource limits of a server's container: plan defaults, overridable per server. Every container
/// has a memory and a pids limit (4 GiB and 4096 unless the plan or the server says otherwise), so
/// one runaway game cannot take the host down; CPU is unlimited unless asked.
public struct ResourceLimits: Sendable, Equatable {
    public static let defaultMemoryBytes: Int64 = 4 << 30
    public static let defaultPids: Int64 = 4096

    public var memoryBytes: Int64?
    public var nanoCPUs: Int64?
    public var pids: Int64

    public init(memoryBytes: Int64? = ResourceLimits.defaultMemoryBytes, nanoCPUs: Int64? = nil, pids: Int64 = ResourceLimits.defaultPids) {
        self.memoryBytes = memoryBytes
        self.nanoCPUs = nanoCPUs
        self.pids = pids
    }

    /// `{"memory_mb": 2048, "cpus": 1.5, "pids": 512}` over `base`; absent keys keep the base value.
    public static func parse(_ value: JSON?, over base: ResourceLimits = ResourceLimits()) throws(DomainError) -> ResourceLimits {
        guard let value, !value.isNull else { return base }
        guard let members = value.objectValue else {
            throw .invalid(field: "limits", reason: "limits must be an object like {\"memory_mb\": 2048, \"cpus\": 2, \"pids\": 512}")
        }
        var limits = base
        for (key, v) in members {
            guard case .number = v else {
                throw .invalid(field: "limits", reason: "limits.\(Identifier.quoted(key)) must be a number")
            }
            switch key {
            case "memory_mb":
                limits.memoryBytes =
                    try CheckedNumber.integer(
                        v, in: 16...1_048_576, field: "limits", reason: "limits.memory_mb must be a whole number from 16 to 1048576") << 20
            case "cpus":
                guard let n = CheckedNumber.real(v, in: 0.05...512) else {
                    throw .invalid(field: "limits", reason: "limits.cpus must be from 0.05 to 512")
                }
                limits.nanoCPUs = CheckedNumber.clamped(n * 1e9)
            case "pids":
                limits.pids = try CheckedNumber.integer(
                    v, in: 16...1_000_000, field: "limits", reason: "limits.pids must be a whole number from 16 to 1000000")
            default:
                throw .invalid(field: "limits", reason: "limits takes memory_mb, cpus and pids (got \(Identifier.quoted(key)))")
            }
        }
        return limits
    }
}

/// A bind mount from the server's directory into the container.
public struct Mount: Sendable, Equatable {
    public let source: String
    public let target: String

    public init(source: String, target: String) {
        self.source = source
        self.target = target
    }
}

/// Everything a platform needs to run one server: built from its plan, its settings and its
/// allocated ports (contract §3.5, with PEON's bugs fixed). Platform-neutral: Docker and Swarm
/// each turn it into their own API calls.
public struct ServerSpec: Sendable {
    public static let managedLabel = "peon.managed"
    public static let serverLabel = "peon.server"
    public static let gameLabel = "peon.game"
    /// A fingerprint of the spec: a container whose label differs is re-created at the next start.
    public static let fingerprintLabel = "peon.spec"
    /// Game servers never run as root.
    public static let user = "1000:1000"
    /// Where Peon's runtime images keep the game (`GAME_DIR`, the plan's `~!/data` mount).
    public static let gameDirectory = "/home/steam/steamcmd/data"

    public let uid: ServerUID
    public let name: String
    /// The Linux name of the server's bridge (`com.docker.network.bridge.name`): `peon` and 11 hex
    /// digits of a hash of `name`, 15 bytes (the kernel's limit), so Peon's egress rules hold every
    /// game bridge by one wildcard (`EgressRules.bridgePattern`), those made later too.
    public let bridgeName: String
    public let hostname: String
    public let image: String
    /// `KEY=value`: port names first, then the plan's settings in plan order.
    public let environment: [String]
    public let ports: [PortSpec]
    public let mounts: [Mount]
    public let labels: [(String, String)]
    public let limits: ResourceLimits
    /// Linux capabilities added back after dropping all (the plan's `metadata.capabilities`).
    public let capabilities: [String]
    /// The plan's stop grace (a Swarm service carries it in its spec).
    public let stopGraceSeconds: Int

    /// - Parameters:
    ///   - settings: the resolved user values (`ServerSettings.resolve`).
    ///   - directory: the server's directory as the engine's host sees it.
    ///   - existingFiles: which of the plan's single-file mounts exist in the directory (`~!/x` keys).
    public init(
        uid: ServerUID, plan: Plan, settings: [(String, String)], ports: [PortSpec], directory: String, existingFiles: Set<String> = [],
        limits: ResourceLimits = ResourceLimits(), extraLabels: [(String, String)] = [], image: String? = nil
    ) {
        self.uid = uid
        name = uid.containerName
        let hex = String(Self.fnv1a(name), radix: 16)
        bridgeName = "peon" + (String(repeating: "0", count: 16 - hex.count) + hex).prefix(11)
        // Linux host names stop at 64 bytes; PEON's long names would make the container fail to start.
        var host = String(uid.containerName.prefix(63))
        while host.hasSuffix(".") || host.hasSuffix("-") { host.removeLast() }
        hostname = host
        // The runtime image built for the plan (`RuntimeImage.reference`), or the plan's own.
        self.image = image ?? plan.image
        self.ports = ports
        capabilities = plan.capabilities
        stopGraceSeconds = plan.stopGraceSeconds

        var env: [(String, String)] = []
        for port in ports {
            if let i = env.firstIndex(where: { $0.0 == port.name }) {
                env[i].1 = "\(port.port)"
            } else {
                env.append((port.name, "\(port.port)"))
            }
        }
        let portNames = Set(ports.map(\.name))
        let given = Dictionary(settings, uniquingKeysWith: { _, last in last })
        for setting in plan.settings where !portNames.contains(setting.key) {
            let value = setting.key == "STEAM_ID" ? setting.defaultValue : given[setting.key] ?? setting.defaultValue
            env.append((setting.key, value ?? ""))
        }
        // Peon's runtime images install and run the game here (docs/runtime.md).
        if plan.runtime != .image, !env.contains(where: { $0.0 == "GAME_DIR" }) { env.append(("GAME_DIR", Self.gameDirectory)) }
        environment = env.map { "\($0.0)=\($0.1)" }

        func hostPath(_ source: String) -> String { source == "~!" ? directory : directory + source.dropFirst(2) }
        mounts =
            plan.volumes.map { Mount(source: hostPath($0.source), target: $0.target) }
            + plan.files.filter { existingFiles.contains($0.source) }.map { Mount(source: hostPath($0.source), target: $0.target) }
        self.limits = limits
        // Over everything that shapes the container. The bridge's name is in it so that containers
        // made before bridges had Peon's names are re-created (network included) at their next start.
        let material =
            [self.image, hostname] + environment + ports.map { "\($0.name)=\($0.port)/\($0.proto)" }
            + mounts.map { "\($0.source):\($0.target)" } + [
                "\(limits.memoryBytes ?? 0)/\(limits.nanoCPUs ?? 0)/\(limits.pids)", capabilities.joined(separator: ","),
                "bridge=\(bridgeName)", "stop=\(stopGraceSeconds)",
            ]
        let fingerprint = String(Self.fnv1a(material.joined(separator: "\n")), radix: 16)
        labels =
            [
                (Self.managedLabel, "true"), (Self.serverLabel, uid.description), (Self.gameLabel, uid.game.rawValue),
                (Self.fingerprintLabel, fingerprint),
            ] + extraLabels
    }

    /// FNV-1a, 64 bits: a stable short hash (not a secret, not collision-proof).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    public var fingerprint: String { labels.first { $0.0 == Self.fingerprintLabel }?.1 ?? "" }
}
