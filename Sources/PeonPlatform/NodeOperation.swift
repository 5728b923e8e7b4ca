public import PeonCore
public import PeonJSON

/// One piece of work on the node that holds a server: its files, its processes, its network.
///
/// The scheduler never does node-local work itself: it names the work as one of these values and
/// hands it to the server's node (`NodeChannel`), in-process where the scheduler shares the games'
/// host (`PeonNode.LocalNode`), or to Peon's node agent over mutual TLS elsewhere. The same value
/// crosses the wire as JSON, so both ends run exactly one implementation of each operation.
public enum NodeOperation: Sendable, Equatable {
    /// Makes the server's missing folders (for the game's user), installs the plan's actions when
    /// missing or with `reinstallActions`, checks every bind source; answers `PreparedFiles`.
    case prepare(ServerUID, BindSources, actions: [PlanFile], reinstallActions: Bool)
    /// Checks the bind sources again right before a start.
    case check(ServerUID, BindSources)
    /// New actions, the update mode's markers, wipes.
    case update(ServerUID, UpdateMode, actions: [PlanFile])
    /// Writes `peon-server.json` (atomically, only when it differs).
    case writeManifest(ServerUID, [UInt8])
    /// Every server folder's manifest on the node.
    case manifests
    /// The visible small text files of the server's `config/`.
    case config(ServerUID)
    /// Removes the server's folder.
    case remove(ServerUID)
    /// The node's own listening ports (TCP listening, UDP bound).
    case listeners
    /// Resource counters of one container on the node, as its engine counts them.
    case stats(container: String)
    /// SIGKILL to a Peon-managed container on the node: a game stopped before it finished starting
    /// has nothing to save (Swarm stops a task only with the grace it was made with).
    case kill(container: String)
    /// Streams an archive (`ArchiveWriter.Format` raw value) of the server's backup folders out.
    case archive(ServerUID, format: String)
    /// Extracts the archive streamed in into a staging folder beside the live folders, checking
    /// that the bytes read have `sha256`; a mismatch or a refused archive leaves nothing behind.
    case restoreStage(ServerUID, backup: Int64, sha256: String)
    /// Swaps the staged folders in by rename (the server is stopped); the old ones are deleted after.
    case restoreSwap(ServerUID, backup: Int64)
    /// Drops a staged restore that will not be swapped in.
    case restoreDiscard(ServerUID, backup: Int64)
    /// The last `limit` bytes of a file in the server's folder (a game log), as text.
    case tail(ServerUID, path: String, limit: Int)
    /// One line typed into a container's stdin.
    case consoleLine(container: String, line: String)
    /// One Source RCON command to a container, on its own network.
    case rcon(container: String, port: Int, password: String, command: String)
    /// An A2S_INFO query to a game port published on the node.
    case a2sInfo(port: Int)
    /// Whether the game in a container on the node accepts players (`ReadyCheck`) on one of its
    /// ports: its answer to a client's first packet (A2S_INFO, a Luanti handshake) or an accepted
    /// TCP connection. Asked at the container's own address: the engine's proxy on a published
    /// TCP port accepts connections before the game listens.
    case probe(NetworkProbe, container: String, port: Int)
    /// Installs (or rewrites) Peon's egress rules on the node (`EgressRules`): games on Peon's
    /// bridges, and on the engine's default bridge with `defaultBridge` (Swarm's tasks run there),
    /// reach neither the node nor link-local addresses, except the `allow` ranges. Idempotent.
    case egress(allow: [CIDR], defaultBridge: Bool)
    /// Removes Peon's egress rules from the node (nothing else); idempotent.
    case egressRemove
    /// A folder of the server's (nil: its areas), at most `limit` entries, never through a link.
    case listFiles(ServerUID, path: ServerFilePath?, limit: Int)
    /// One regular file of the server's, refused over `limit` bytes.
    case readFile(ServerUID, path: ServerFilePath, limit: Int)
    /// Writes a file of the server's: a fresh temporary name (`O_CREAT|O_EXCL`) renamed over the
    /// path, missing folders made for the game's user.
    case writeFile(ServerUID, path: ServerFilePath, bytes: [UInt8])
    /// Removes a file, a link (not what it points to) or a folder with everything in it.
    case deleteFile(ServerUID, path: ServerFilePath)
    /// Sleeping servers (`wake_on_connect`): the node holds their published ports, exactly these
    /// (holds not listed are let go), and answers `PortHoldState`: what it holds, and which holds
    /// a client woke since they were set.
    case hold([PortHold])
    /// The holds' state without changing them; with `waitMilliseconds`, answered as soon as a
    /// client wakes a server (a long poll: a wake costs no polling interval).
    case holds(waitMilliseconds: Int)
    /// Lets a woken server's ports go right before its start; the connections it held wait for
    /// `handoff`.
    case release(ServerUID)
    /// The game is ready: the connections held while it slept are relayed to it, at the
    /// container's own address.
    case handoff(ServerUID, container: String)

    /// How long the operation may take on the node, in seconds (the channel's deadline).
    public var seconds: Int {
        switch self {
        case .remove, .archive, .restoreStage, .restoreSwap, .restoreDiscard: 3600
        case .rcon, .a2sInfo, .probe, .stats, .consoleLine, .kill, .hold, .holds, .release, .handoff: 15
        case .egress, .egressRemove: 30
        default: 120
        }
    }

    /// Running it twice leaves the node as running it once (reads, idempotent writes): a caller
    /// may send it again when it cannot know whether it ran.
    public var repeatable: Bool {
        switch self {
        case .consoleLine, .rcon, .restoreSwap, .archive, .restoreStage, .deleteFile: false
        default: true
        }
    }

    /// Whether the operation reads a stream from the caller (`input`) or writes one (`output`).
    public var readsStream: Bool { if case .restoreStage = self { true } else { false } }
    public var writesStream: Bool { if case .archive = self { true } else { false } }
}

/// A plan's bind sources, relative to the server's folder (`~!/` dropped): what `prepare` and
/// `check` need of the plan, and nothing else.
public struct BindSources: Sendable, Equatable {
    public let volumes: [String]
    public let files: [String]

    public init(volumes: [String], files: [String]) {
        self.volumes = volumes
        self.files = files
    }

    public init(_ plan: Plan) {
        volumes = plan.volumes.map { String($0.source.dropFirst(3)) }
        files = plan.files.map { String($0.source.dropFirst(3)) }
    }
}

/// The answer of an A2S_INFO query (`a2sInfo`).
public struct PlayerCount: Sendable, Equatable {
    public let players: Int
    public let max: Int?

    public init(players: Int, max: Int?) {
        self.players = players
        self.max = max
    }
}

// MARK: - The wire form

extension NodeOperation {
    /// The operation's name on the wire (and in `peon_node_operation_duration_seconds`).
    public var name: String {
        switch self {
        case .prepare: "prepare"
        case .check: "check"
        case .update: "update"
        case .writeManifest: "manifest"
        case .manifests: "manifests"
        case .config: "config"
        case .remove: "remove"
        case .listeners: "listeners"
        case .stats: "stats"
        case .kill: "kill"
        case .archive: "archive"
        case .restoreStage: "restore-stage"
        case .restoreSwap: "restore-swap"
        case .restoreDiscard: "restore-discard"
        case .tail: "tail"
        case .consoleLine: "console"
        case .rcon: "rcon"
        case .a2sInfo: "a2s"
        case .probe: "probe"
        case .egress: "egress"
        case .egressRemove: "egress-remove"
        case .listFiles: "files"
        case .readFile: "file-read"
        case .writeFile: "file-write"
        case .deleteFile: "file-delete"
        case .hold: "hold"
        case .holds: "holds"
        case .release: "release"
        case .handoff: "handoff"
        }
    }

    /// The operation as JSON: `{"op": name, ...fields}`; bytes travel as base64.
    public var json: JSON {
        func files(_ list: [PlanFile]) -> JSON {
            .array(list.map { ["path": .string($0.path), "bytes": .string(Base64.encode($0.bytes)), "executable": .bool($0.executable)] })
        }
        func sources(_ s: BindSources) -> JSON {
            ["volumes": .array(s.volumes.map(JSON.string)), "files": .array(s.files.map(JSON.string))]
        }
        func uid(_ u: ServerUID) -> JSON { .string(u.description) }
        switch self {
        case .prepare(let u, let s, let actions, let re):
            return ["op": .string(name), "uid": uid(u), "sources": sources(s), "actions": files(actions), "reinstall": .bool(re)]
        case .check(let u, let s): return ["op": .string(name), "uid": uid(u), "sources": sources(s)]
        case .update(let u, let mode, let actions):
            return ["op": .string(name), "uid": uid(u), "mode": .string(mode.rawValue), "actions": files(actions)]
        case .writeManifest(let u, let bytes): return ["op": .string(name), "uid": uid(u), "bytes": .string(Base64.encode(bytes))]
        case .manifests: return ["op": .string(name)]
        case .config(let u): return ["op": .string(name), "uid": uid(u)]
        case .remove(let u): return ["op": .string(name), "uid": uid(u)]
        case .listeners: return ["op": .string(name)]
        case .stats(let c), .kill(let c): return ["op": .string(name), "container": .string(c)]
        case .archive(let u, let format): return ["op": .string(name), "uid": uid(u), "format": .string(format)]
        case .restoreStage(let u, let id, let sha):
            return ["op": .string(name), "uid": uid(u), "backup": .int(Int(id)), "sha256": .string(sha)]
        case .restoreSwap(let u, let id): return ["op": .string(name), "uid": uid(u), "backup": .int(Int(id))]
        case .restoreDiscard(let u, let id): return ["op": .string(name), "uid": uid(u), "backup": .int(Int(id))]
        case .tail(let u, let path, let limit): return ["op": .string(name), "uid": uid(u), "path": .string(path), "limit": .int(limit)]
        case .consoleLine(let c, let line): return ["op": .string(name), "container": .string(c), "line": .string(line)]
        case .rcon(let c, let port, let password, let command):
            return [
                "op": .string(name), "container": .string(c), "port": .int(port), "password": .string(password),
                "command": .string(command),
            ]
        case .a2sInfo(let port): return ["op": .string(name), "port": .int(port)]
        case .probe(let kind, let c, let port):
            return ["op": .string(name), "kind": .string(kind.rawValue), "container": .string(c), "port": .int(port)]
        case .egress(let allow, let defaultBridge):
            return ["op": .string(name), "allow": .array(allow.map { .string($0.description) }), "default_bridge": .bool(defaultBridge)]
        case .egressRemove: return ["op": .string(name)]
        case .listFiles(let u, let path, let limit):
            return ["op": .string(name), "uid": uid(u), "path": path.map { .string($0.description) } ?? .null, "limit": .int(limit)]
        case .readFile(let u, let path, let limit):
            return ["op": .string(name), "uid": uid(u), "path": .string(path.description), "limit": .int(limit)]
        case .writeFile(let u, let path, let bytes):
            return ["op": .string(name), "uid": uid(u), "path": .string(path.description), "bytes": .string(Base64.encode(bytes))]
        case .deleteFile(let u, let path): return ["op": .string(name), "uid": uid(u), "path": .string(path.description)]
        case .hold(let holds): return ["op": .string(name), "holds": .array(holds.map(\.json))]
        case .holds(let wait): return ["op": .string(name), "wait": .int(wait)]
        case .release(let u): return ["op": .string(name), "uid": uid(u)]
        case .handoff(let u, let c): return ["op": .string(name), "uid": uid(u), "container": .string(c)]
        }
    }

    /// Parses the wire form, refusing anything that is not exactly one of Peon's operations with
    /// valid fields: the agent runs only what this accepts.
    public init(json: JSON) throws(PlatformError) {
        func string(_ key: String, max: Int = 4096) throws(PlatformError) -> String {
            guard let value = json[key]?.stringValue, value.utf8.count <= max else { throw .refused("bad field \(key)") }
            return value
        }
        func int(_ key: String, _ range: ClosedRange<Int64>) throws(PlatformError) -> Int64 {
            guard let value = CheckedNumber.integer(json[key], in: range) else { throw .refused("bad field \(key)") }
            return value
        }
        func uid() throws(PlatformError) -> ServerUID {
            guard let uid = try? ServerUID(validating: try string("uid", max: 256)) else { throw .refused("bad field uid") }
            return uid
        }
        func bytes(_ key: String, max: Int) throws(PlatformError) -> [UInt8] {
            guard let bytes = Base64.decode(Substring(try string(key, max: max / 3 * 4 + 8))) else { throw .refused("bad field \(key)") }
            return bytes
        }
        func container() throws(PlatformError) -> String {
            let id = try string("container", max: 64)
            guard id.utf8.count == 64, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw .refused("bad container id")
            }
            return id
        }
        func filePath() throws(PlatformError) -> ServerFilePath {
            guard let path = try? ServerFilePath(validating: try string("path", max: ServerFilePath.maximumLength * 4)) else {
                throw .refused("bad field path")
            }
            return path
        }
        func relative(_ text: String) -> Bool {
            !text.isEmpty && !text.hasPrefix("/")
                && text.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
                    !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0")
                }
        }
        func sources() throws(PlatformError) -> BindSources {
            func list(_ key: String) throws(PlatformError) -> [String] {
                guard let items = json["sources"]?[key]?.arrayValue, items.count <= 64 else { throw .refused("bad field sources") }
                var out: [String] = []
                for item in items {
                    guard let text = item.stringValue, text.utf8.count <= 512, relative(text) else { throw .refused("bad bind source") }
                    out.append(text)
                }
                return out
            }
            return BindSources(volumes: try list("volumes"), files: try list("files"))
        }
        func actions() throws(PlatformError) -> [PlanFile] {
            guard let items = json["actions"]?.arrayValue, items.count <= PlanActions.maximumFiles else {
                throw .refused("bad field actions")
            }
            var out: [PlanFile] = []
            for item in items {
                guard let path = item["path"]?.stringValue, PlanActions.isSafePath(path), let text = item["bytes"]?.stringValue,
                    text.utf8.count <= (PlanActions.maximumFileBytes / 3 + 1) * 4, let bytes = Base64.decode(Substring(text)),
                    let executable = item["executable"]?.boolValue
                else { throw .refused("bad action file") }
                out.append(PlanFile(path: path, bytes: bytes, executable: executable))
            }
            return out
        }
        switch json["op"]?.stringValue ?? "" {
        case "prepare":
            guard let re = json["reinstall"]?.boolValue else { throw .refused("bad field reinstall") }
            self = .prepare(try uid(), try sources(), actions: try actions(), reinstallActions: re)
        case "check": self = .check(try uid(), try sources())
        case "update":
            guard let mode = UpdateMode(rawValue: try string("mode", max: 16)) else { throw .refused("bad field mode") }
            self = .update(try uid(), mode, actions: try actions())
        case "manifest": self = .writeManifest(try uid(), try bytes("bytes", max: 1 << 20))
        case "manifests": self = .manifests
        case "config": self = .config(try uid())
        case "remove": self = .remove(try uid())
        case "listeners": self = .listeners
        case "stats": self = .stats(container: try container())
        case "kill": self = .kill(container: try container())
        case "archive":
            let format = try string("format", max: 16)
            guard format == "tar.zst" || format == "zip" else { throw .refused("bad field format") }
            self = .archive(try uid(), format: format)
        case "restore-stage":
            let sha = try string("sha256", max: 64)
            guard sha.utf8.count == 64 else { throw .refused("bad field sha256") }
            self = .restoreStage(try uid(), backup: try int("backup", 1...Int64(Int32.max)), sha256: sha)
        case "restore-swap": self = .restoreSwap(try uid(), backup: try int("backup", 1...Int64(Int32.max)))
        case "restore-discard": self = .restoreDiscard(try uid(), backup: try int("backup", 1...Int64(Int32.max)))
        case "tail":
            let path = try string("path", max: 512)
            guard relative(path) else { throw .refused("bad field path") }
            self = .tail(try uid(), path: path, limit: Int(try int("limit", 1...(4 << 20))))
        case "console":
            let line = try string("line", max: 4096)
            guard !line.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else { throw .refused("bad field line") }
            self = .consoleLine(container: try container(), line: line)
        case "rcon":
            self = .rcon(
                container: try container(), port: Int(try int("port", 1...65535)), password: try string("password", max: 512),
                command: try string("command", max: 4096))
        case "a2s": self = .a2sInfo(port: Int(try int("port", 1...65535)))
        case "probe":
            guard let kind = NetworkProbe(rawValue: try string("kind", max: 16)) else { throw .refused("bad field kind") }
            self = .probe(kind, container: try container(), port: Int(try int("port", 1...65535)))
        case "egress":
            guard let items = json["allow"]?.arrayValue, items.count <= 64, let defaultBridge = json["default_bridge"]?.boolValue else {
                throw .refused("bad field allow")
            }
            var allow: [CIDR] = []
            for item in items {
                guard let text = item.stringValue, text.utf8.count <= 64, let range = CIDR(text) else {
                    throw .refused("bad allowed range")
                }
                allow.append(range)
            }
            self = .egress(allow: allow, defaultBridge: defaultBridge)
        case "egress-remove": self = .egressRemove
        case "files":
            let path: ServerFilePath? = json["path"]?.isNull ?? true ? nil : try filePath()
            self = .listFiles(try uid(), path: path, limit: Int(try int("limit", 1...100_000)))
        case "file-read":
            self = .readFile(try uid(), path: try filePath(), limit: Int(try int("limit", 0...Int64(ServerFilePath.maximumFileBytes))))
        case "file-write":
            self = .writeFile(try uid(), path: try filePath(), bytes: try bytes("bytes", max: ServerFilePath.maximumFileBytes))
        case "file-delete": self = .deleteFile(try uid(), path: try filePath())
        case "hold":
            guard let items = json["holds"]?.arrayValue, items.count <= PortHold.maximumHolds else { throw .refused("bad field holds") }
            var holds: [PortHold] = []
            for item in items {
                guard let hold = PortHold(json: item) else { throw .refused("bad hold") }
                holds.append(hold)
            }
            self = .hold(holds)
        case "holds": self = .holds(waitMilliseconds: Int(try int("wait", 0...Int64(PortHold.longestWait))))
        case "release": self = .release(try uid())
        case "handoff": self = .handoff(try uid(), container: try container())
        default: throw .refused("no such operation")
        }
    }
}

extension PlatformError {
    /// The wire form of a failure: `{"error": kind, "message"}`.
    public var json: JSON {
        switch self {
        case .notFound(let m): ["error": "not_found", "message": .string(m)]
        case .conflict(let m): ["error": "conflict", "message": .string(m)]
        case .unavailable(let m): ["error": "unavailable", "message": .string(m)]
        case .refused(let m): ["error": "refused", "message": .string(m)]
        }
    }

    public init?(json: JSON) {
        guard let kind = json["error"]?.stringValue else { return nil }
        let message = json["message"]?.stringValue ?? "the node agent failed"
        switch kind {
        case "not_found": self = .notFound(message)
        case "conflict": self = .conflict(message)
        case "unavailable": self = .unavailable(message)
        default: self = .refused(message)
        }
    }
}
