import PeonArchive
import PeonCore
public import PeonDocker
public import PeonJSON
public import PeonPlatform
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `NodeOperation`s on this machine: the one implementation of every node-local operation.
///
/// The scheduler calls it in-process where it shares the games' host (the Docker platform); Peon's
/// node agent calls it for requests from the scheduler everywhere else. Everything a game
/// container wrote is hostile input here: folders are reached without following a link at any
/// level, files are opened without blocking on a FIFO, counts and sizes are bounded, and new files
/// are fresh temporary names renamed into place.
public final class LocalNode: NodeChannel {
    public let files: LocalServerFiles
    /// Where game ports are published on this node (A2S queries go there).
    public let gameHost: String
    /// The address game ports are published on (`PEON_GAME_BIND`): a sleeping server's ports are
    /// held there.
    public let bindAddress: String
    /// This node's Docker engine (stats, stdin, a container's address), made on first use.
    let engine: () throws(DockerError) -> DockerClient
    /// Tests whose game runs in-process: every container's address (no engine asked).
    public var fixedAddress: String?
    /// This node's firewall (the games' egress rules); tests put a recorder here.
    public var firewall = EgressFirewall.system

    public init(files: LocalServerFiles, gameHost: String, engine: @escaping () throws(DockerError) -> DockerClient) {
        self.files = files
        self.gameHost = gameHost == "0.0.0.0" || gameHost.isEmpty ? "127.0.0.1" : gameHost
        self.bindAddress = gameHost.isEmpty ? "0.0.0.0" : gameHost
        self.engine = engine
    }

    public func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON {
        switch operation {
        case .prepare(let uid, let sources, let actions, let reinstall):
            let prepared = try files.prepare(uid, sources, actions: actions, reinstallActions: reinstall)
            return [
                "directory": .string(prepared.directory),
                "existing": .array(prepared.existingFiles.sorted().map { .string(String($0.dropFirst(3))) }),
            ]
        case .check(let uid, let sources):
            try files.check(uid, sources)
        case .update(let uid, let mode, let actions):
            try files.update(uid, mode: mode, actions: actions)
        case .writeManifest(let uid, let bytes):
            try files.writeManifest(uid, bytes)
        case .manifests:
            return [
                "manifests": .array(files.manifests().map { ["uid": .string($0.0.description), "bytes": .string(Base64.encode($0.1))] })
            ]
        case .config(let uid):
            return [
                "files": .array(
                    files.readConfig(uid).map { ["name": .string($0.name), "text": .string($0.text), "settled": .bool($0.settled)] })
            ]
        case .remove(let uid):
            return ["removed": .bool(try files.remove(uid))]
        case .listeners:
            let listening = HostPorts.listening()
            return ["tcp": .array(listening.tcp.sorted().map(JSON.int)), "udp": .array(listening.udp.sorted().map(JSON.int))]
        case .stats(let container):
            return try stats(container)
        case .kill(let container):
            try PlatformError.engine { () throws(DockerError) in
                let client = try engine()
                // Only a game container: the agent holds the node's engine, and must not become a way to kill others.
                guard try client.inspectContainer(container)["Config"]?["Labels"]?[ServerSpec.managedLabel]?.stringValue == "true" else {
                    throw DockerError.notFound("no Peon container \(container)")
                }
                try client.killContainer(container)
            }
        case .archive(let uid, let format):
            guard let output, let format = ArchiveWriter.Format(rawValue: format) else { throw .refused("archive needs an output stream") }
            return try ServerRestore(files: files, uid: uid).archive(format: format, to: output)
        case .restoreStage(let uid, let id, let sha256):
            guard let input else { throw .refused("restore needs an input stream") }
            try ServerRestore(files: files, uid: uid).stage(backup: id, sha256: sha256, from: input)
        case .restoreSwap(let uid, let id):
            try ServerRestore(files: files, uid: uid).swap(backup: id)
        case .restoreDiscard(let uid, let id):
            ServerRestore(files: files, uid: uid).discard(backup: id)
        case .listFiles(let uid, let path, let limit):
            return Self.answer { () throws(ServerFileError) in
                let (entries, truncated) = try ServerFileAccess(files: files, uid: uid).list(path, limit: limit)
                return ["entries": .array(entries.map(\.json)), "truncated": .bool(truncated)]
            }
        case .readFile(let uid, let path, let limit):
            return Self.answer { () throws(ServerFileError) in
                ["bytes": .string(Base64.encode(try ServerFileAccess(files: files, uid: uid).read(path, limit: limit)))]
            }
        case .writeFile(let uid, let path, let bytes):
            return Self.answer { () throws(ServerFileError) in
                let (size, sha256) = try ServerFileAccess(files: files, uid: uid).write(path, bytes)
                return ["size": .int(size), "sha256": .string(sha256)]
            }
        case .deleteFile(let uid, let path):
            return Self.answer { () throws(ServerFileError) in
                try ServerFileAccess(files: files, uid: uid).delete(path)
                return ["deleted": true]
            }
        case .tail(let uid, let path, let limit):
            return ["text": Files.tail(uid.relativeDirectory + "/" + path, in: files.serversDir, limit: limit).map(JSON.string) ?? .null]
        case .consoleLine(let container, let line):
            try PlatformError.engine { () throws(DockerError) in try engine().sendInput(container, Array((line + "\n").utf8)) }
        case .rcon(let container, let port, let password, let command):
            return try rcon(container, port: port, password: password, command: command)
        case .a2sInfo(let port):
            return a2s(port)
        case .probe(let kind, let container, let port):
            guard let host = try? address(container) else { return ["ready": false] }
            return ["ready": .bool(answers(kind, host: host, port: port))]
        case .egress(let allow, let defaultBridge):
            var interfaces = [EgressRules.bridgePattern]
            if defaultBridge { interfaces.append(try defaultBridgeName()) }
            guard let rules = EgressRules(allow: allow, interfaces: interfaces) else {
                throw .refused("the node's bridge names are not interface names: \(interfaces.joined(separator: ", "))")
            }
            return ["families": .array(try firewall.install(rules).map { .string($0.rawValue) })]
        case .egressRemove:
            try firewall.remove()
        case .hold(let holds):
            return PortHolder.shared.apply(holds, bind: bindAddress).json
        case .holds(let wait):
            return PortHolder.shared.current(waitMilliseconds: wait).json
        case .release(let uid):
            return ["held": .array(PortHolder.shared.release(uid).map { .string($0.description) })]
        case .handoff(let uid, let container):
            guard let host = try address(container) else { throw .refused("the server's container is not running") }
            PortHolder.shared.handoff(uid, host: host)
        }
        return [:]
    }

    // MARK: - Processes and network

    /// The Linux name of the engine's default bridge (`docker0` unless the engine was told
    /// otherwise): Swarm's tasks without a network of their own run there.
    func defaultBridgeName() throws(PlatformError) -> String {
        let network = try PlatformError.engine { () throws(DockerError) in try engine().inspectNetwork("bridge") }
        return network["Options"]?["com.docker.network.bridge.name"]?.stringValue ?? "docker0"
    }

    /// The engine's counters of a container, as `docker stats` reads them (network included).
    func stats(_ container: String) throws(PlatformError) -> JSON {
        let (stats, started) = try PlatformError.engine { () throws(DockerError) in
            let client = try engine()
            return (try client.containerStats(container), try client.inspectContainer(container)["State"]?["StartedAt"]?.stringValue ?? "")
        }
        func number(_ v: JSON?) -> Double { if case .number(let n) = v { n } else { 0 } }
        var rx = 0.0
        var tx = 0.0
        for (_, net) in stats["networks"]?.objectValue ?? [] {
            rx += number(net["rx_bytes"])
            tx += number(net["tx_bytes"])
        }
        let cpu = stats["cpu_stats"]
        // Counters from the engine are clamped, never converted unchecked: a trap here ends the process.
        return [
            "cpu_total": .number(Double(CheckedNumber.clamped(number(cpu?["cpu_usage"]?["total_usage"])))),
            "system_total": .number(Double(CheckedNumber.clamped(number(cpu?["system_cpu_usage"])))),
            "cpus": .int(CheckedNumber.int(cpu?["online_cpus"], in: 0...65536) ?? 0),
            "memory": .number(Double(CheckedNumber.clamped(number(stats["memory_stats"]?["usage"])))),
            "memory_limit": .number(Double(CheckedNumber.clamped(number(stats["memory_stats"]?["limit"])))),
            "network_rx": .number(Double(CheckedNumber.clamped(rx))), "network_tx": .number(Double(CheckedNumber.clamped(tx))),
            "started_at": .number(Double(Timestamp.parse(started) ?? 0)),
        ]
    }

    /// The container's address on its own network (the one named like its network mode, else the
    /// first): this node reaches it directly, so an RCON port is never published.
    func address(_ container: String) throws(PlatformError) -> String? {
        if let fixedAddress { return fixedAddress }
        let inspected = try PlatformError.engine { () throws(DockerError) in try engine().inspectContainer(container) }
        guard inspected["State"]?["Running"] == .bool(true) else { return nil }
        let networks = inspected["NetworkSettings"]?["Networks"]?.objectValue ?? []
        let own = inspected["HostConfig"]?["NetworkMode"]?.stringValue
        let chosen = networks.first { $0.0 == own } ?? networks.first
        guard let address = chosen?.1["IPAddress"]?.stringValue, !address.isEmpty else { return nil }
        return address
    }

    /// One RCON command; the game's failures are an answer (`rcon_error`), the node's a throw.
    func rcon(_ container: String, port: Int, password: String, command: String) throws(PlatformError) -> JSON {
        do throws(RconError) {
            guard let host = try? address(container) else {
                throw RconError.unreachable("the server has no network address (is it running?)")
            }
            var exchange = try RconExchange(password: password, command: command)
            let response = try RconClient.run(host: host, port: port, exchange: &exchange)
            return ["text": .string(response.text), "truncated": .bool(response.truncated)]
        } catch {
            return ["rcon_error": .string(error.code), "detail": .string(error.detail)]
        }
    }

    /// Whether the game answers at `host`:`port` now, asked as a client would: A2S_INFO, a Luanti
    /// connection (closed again at once), or a TCP connection accepted. Each datagram waits
    /// `probeWait`: the scheduler asks again every quarter second while a game starts, and a game
    /// still loading may answer nothing at all (its kernel's ICMP replies are rate-limited while
    /// a woken server's player keeps sending), so a long wait would only delay the answer.
    func answers(_ kind: NetworkProbe, host: String, port: Int) -> Bool {
        switch kind {
        case .a2s:
            return a2s(port, host: host, wait: Self.probeWait)["players"] != nil
        case .luanti:
            let wait = Self.probeWait
            let reply = UDPQuery.exchange(host: host, port: port, payload: LuantiPacket.probe, timeoutMilliseconds: wait) { reply in
                LuantiPacket.assignedPeer(reply).map(LuantiPacket.disconnect)
            }
            return reply.map(LuantiPacket.isServerPacket) ?? false
        case .tcp:
            guard let fd = try? TCPConnect.open(host: host, port: port, timeoutMilliseconds: 1000) else { return false }
            close(fd)
            return true
        }
    }

    /// How long a readiness probe waits for each answer, in milliseconds.
    static let probeWait: Int32 = 300

    /// A2S_INFO (with the challenge some games ask for first): players and maximum, or nothing.
    func a2s(_ port: Int, host: String? = nil, wait: Int32 = 1000) -> JSON {
        let host = host ?? gameHost
        var reply = UDPQuery.exchange(host: host, port: port, payload: PlayerQuery.a2sRequest(), timeoutMilliseconds: wait)
        if let challenge = reply.flatMap(PlayerQuery.a2sChallenge) {
            reply = UDPQuery.exchange(
                host: host, port: port, payload: PlayerQuery.a2sRequest(challenge: challenge), timeoutMilliseconds: wait)
        }
        guard let info = reply.flatMap(PlayerQuery.a2sInfo) else { return [:] }
        return ["players": .int(info.players), "max": .int(info.max)]
    }
}

extension LocalNode {
    /// A file operation's answer, or the request's refusal as `{"file_error"}` (not a node failure).
    static func answer(_ body: () throws(ServerFileError) -> JSON) -> JSON {
        do {
            return try body()
        } catch {
            return error.json
        }
    }
}
