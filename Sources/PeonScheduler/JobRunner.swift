public import Logging
public import PeonCore
import PeonJSON
public import PeonPlatform
public import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Carries out one job against the platform, recording every change in the store. Each step is
/// idempotent (ensure, not create), so a job retried after a scheduler crash finishes safely.
public final class JobRunner {
    let store: Store
    let platform: any ServerPlatform
    let configuration: Configuration
    var logger: Logger
    /// Absolute `dataDir` as the engine's host sees it (for bind mounts).
    let hostDataDir: String

    public static let stopGraceSeconds = 30
    public static let engineRetrySeconds: Int64 = 2
    /// Test only (`PEON_TEST_CRASH_ON_JOB`): the process kills itself when it starts a job of this kind.
    public var crashOnJob: JobKind?

    public init(store: Store, platform: any ServerPlatform, configuration: Configuration, hostDataDir: String, logger: Logger) {
        self.store = store
        self.platform = platform
        self.configuration = configuration
        self.hostDataDir = hostDataDir
        self.logger = logger
    }

    /// Claims and runs jobs until none is due; returns how many ran.
    @discardableResult
    public func drain() -> Int {
        var count = 0
        while !Signals.stopRequested.load(ordering: .relaxed) {
            let claimed: JobRecord?
            do {
                claimed = try store.write { tx in try tx.claimNextJob(now: WallClock.now()) }
            } catch {
                logger.warning("cannot claim a job", metadata: ["error": "\(error)"])
                return count
            }
            guard let job = claimed else { return count }
            run(job)
            count += 1
        }
        return count
    }

    func run(_ job: JobRecord) {
        let started = Monotonic.seconds()
        var state = JobState.succeeded
        var message: String?
        var result: JSON?
        if job.kind == crashOnJob {
            logger.critical("PEON_TEST_CRASH_ON_JOB: killing the scheduler", metadata: ["job.id": "\(job.id)"])
            kill(getpid(), SIGKILL)
        }
        do {
            try perform(job)
        } catch where !platform.reachable() {
            // The engine is away (restarting): the job waits for it instead of failing.
            logger.warning("engine unreachable, job deferred", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
            do {
                try store.write { tx in try tx.deferJob(job.id, seconds: Self.engineRetrySeconds, now: WallClock.now()) }
                return
            } catch {
                state = .failed
                message = "\(error)"
            }
        } catch {
            state = .failed
            switch error {
            case DomainError.noFreePorts(let text):
                message = text
                result = ["code": "ports.exhausted"]
            case DomainError.invalid(_, let reason):
                message = reason
            default:
                message = "\(error)"
            }
        }
        do {
            try store.write { tx in try tx.finishJob(job.id, state: state, error: message, result: result, now: WallClock.now()) }
        } catch {
            logger.error("cannot record a job's end", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
        let metadata: Logger.Metadata = [
            "job.id": "\(job.id)", "job.kind": "\(job.kind.rawValue)", "server.uid": "\(job.serverUID)", "job.outcome": "\(state.rawValue)",
            "job.ms": "\(Int((Monotonic.seconds() - started) * 1000))",
        ]
        if let message {
            logger.error("job failed", metadata: metadata.merging(["error": "\(message)"]) { a, _ in a })
        } else {
            logger.info("job finished", metadata: metadata)
        }
    }

    func perform(_ job: JobRecord) throws {
        if job.kind == .adopt { return try adopt() }
        let uid = try ServerUID(validating: job.serverUID)
        switch job.kind {
        case .create: try create(uid, arguments: job.arguments)
        case .start: try start(uid)
        case .stop: try stop(uid)
        case .restart:
            try stop(uid, keepDesired: true)
            try start(uid)
        case .update: try update(uid, mode: job.arguments["mode"]?.stringValue ?? "full")
        case .destroy: try destroy(uid, eradicate: job.arguments["eradicate"] == .bool(true))
        case .eradicate: try destroy(uid, eradicate: true)
        case .adopt: try adopt()
        }
    }

    // MARK: - Steps

    /// The file that makes a server directory self-describing, so it can be imported again.
    static let manifest = "peon-server.json"

    func writeManifest(_ server: ServerRecord) throws {
        let json: JSON = [
            "uid": .string(server.uid.description), "description": .string(server.description),
            "settings": .object(server.settings.map { ($0.0, JSON.string($0.1)) }), "limits": server.limits,
            "ports": .array(server.ports.map { ["name": .string($0.name), "port": .int($0.port), "proto": .string($0.proto.rawValue)] }),
        ]
        try Files.write(directory(server.uid) + "/" + Self.manifest, json.bytes, mode: 0o600)
    }

    /// `PUT /servers`: server directories with a manifest, and containers with Peon's labels, that
    /// the store does not know become servers again (stopped until started).
    func adopt() throws {
        let known = Set(try store.read { tx in try tx.servers() }.map(\.uid))
        let containers = try platform.observe(labels: [])
        for game in Files.list(configuration.serversDir) {
            for name in Files.list(configuration.serversDir + "/" + game) {
                guard let uid = try? ServerUID(validating: "\(game).\(name)"), !known.contains(uid),
                    let bytes = try? Files.read(directory(uid) + "/" + Self.manifest, limit: 1 << 20),
                    let manifest = try? JSON.parse(bytes),
                    manifest["uid"]?.stringValue == uid.description, (try? plan(uid.game)) != nil
                else { continue }
                let ports = (manifest["ports"]?.arrayValue ?? []).compactMap { p -> PortSpec? in
                    guard let n = p["name"]?.stringValue, case .number(let port) = p["port"],
                        let proto = PortSpec.Proto(rawValue: p["proto"]?.stringValue ?? "")
                    else { return nil }
                    return PortSpec(name: n, port: Int(port), proto: proto)
                }
                let container = containers.first { $0.uid == uid }
                let record = ServerRecord(
                    uid: uid, description: manifest["description"]?.stringValue ?? "",
                    settings: (manifest["settings"]?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } }, ports: ports,
                    desiredState: container?.state == "running" ? "running" : "stopped", observedState: container?.state ?? "missing",
                    containerID: container?.id, limits: manifest["limits"] ?? .object([]), createdAt: WallClock.now())
                try store.write { tx in try tx.insertServer(record, now: WallClock.now()) }
                logger.info("server adopted", metadata: ["server.uid": "\(uid)"])
            }
        }
    }

    /// Writes the server row as it stands now.
    func save(_ server: ServerRecord) throws {
        try store.write { tx in try tx.updateServer(server, now: WallClock.now()) }
    }

    func record(_ uid: ServerUID) throws -> ServerRecord {
        guard let server = try store.read({ tx in try tx.server(uid) }) else {
            throw DomainError.notFound(kind: "server", id: uid.description)
        }
        return server
    }

    func plan(_ game: GameUID) throws -> Plan {
        guard let text = try store.read({ tx in try tx.planDocument(game) }) else {
            throw DomainError.notFound(kind: "plan", id: game.rawValue)
        }
        return try Plan(document: JSON.parse(text), expectedGameUID: game)
    }

    func directory(_ uid: ServerUID) -> String { configuration.serversDir + "/" + uid.relativeDirectory }

    /// Ports in use by anything but this server: other servers' groups, containers, host listeners.
    func takenPorts(except uid: ServerUID) throws -> Set<PortKey> {
        var taken = try platform.publishedPorts()
        let listening = HostPorts.listening()
        taken.formUnion(listening.tcp.map { PortKey($0, .tcp) })
        taken.formUnion(listening.udp.map { PortKey($0, .udp) })
        for other in try store.read({ tx in try tx.servers() }) where other.uid != uid {
            taken.formUnion(other.ports.flatMap(\.keys))
        }
        return taken
    }

    func spec(_ server: ServerRecord, plan: Plan) -> ServerSpec {
        let dir = directory(server.uid)
        let existing = Set(plan.files.map(\.source).filter { Files.kind(dir + "/" + $0.dropFirst(3)) == .file })
        let limits = (try? ResourceLimits.parse(server.limits, over: plan.limits)) ?? plan.limits
        return ServerSpec(
            uid: server.uid, plan: plan, settings: server.settings, ports: server.ports,
            directory: hostDataDir + "/servers/" + server.uid.relativeDirectory, existingFiles: existing, limits: limits,
            extraLabels: configuration.extraLabels)
    }

    /// Makes the server's directories that are missing and gives what it made to the game's user
    /// (1000:1000). Existing content is not walked: PEON's `chown -R` before every start crossed
    /// gigabytes of game files each time.
    func prepareDirectory(_ uid: ServerUID, plan: Plan) throws {
        let dir = directory(uid)
        var made: [String] = []
        if Files.kind(dir) == .missing {
            try Files.makeDirectories(dir)
            try Files.setMode(dir, 0o755)
            made.append(dir)
        }
        let actions = configuration.plansDir + "/" + uid.game.rawValue + "/actions"
        if Files.kind(dir + "/actions") == .missing {
            if Files.kind(actions) == .directory {
                try Files.copyTree(from: actions, to: dir + "/actions")
            } else {
                try Files.makeDirectories(dir + "/actions")
            }
            made.append(dir + "/actions")
        }
        for volume in plan.volumes where volume.source.hasPrefix("~!/") {
            let path = dir + "/" + volume.source.dropFirst(3)
            if Files.kind(path) == .missing {
                try Files.makeDirectories(path)
                made.append(path)
            }
        }
        for path in made {
            try Files.chownTree(path, uid: 1000, gid: 1000)
            // The API reads `config/` live and may run as another user.
            try Files.setMode(path, 0o755)
        }
    }

    func create(_ uid: ServerUID, arguments: JSON) throws {
        var server = try record(uid)
        let plan = try plan(uid.game)
        do {
            if server.ports.isEmpty {
                server.ports = try PortAllocator.allocate(
                    groups: plan.portGroups, taken: takenPorts(except: uid), range: configuration.portRange)
                try save(server)
            }
            try prepareDirectory(uid, plan: plan)
            if try platform.imageFacts(plan.image) == nil { try platform.pull(plan.image) }
            let facts = try platform.imageFacts(plan.image)
            let id = try platform.ensure(spec(server, plan: plan))
            server.containerID = id
            server.containerType = facts?.containerType ?? "unknown"
            server.buildVersion = facts?.buildVersion ?? "unknown"
            server.observedState = try platform.details(id).state
            try save(server)
            try writeManifest(server)
            if arguments["start"] == .bool(true) { try start(uid) }
        } catch {
            // With the engine away the job is retried later: keep what it needs.
            if arguments["noclean"] != .bool(true), platform.reachable() {
                // A failed create leaves nothing behind.
                try? platform.remove(uid)
                try? Files.removeTree(directory(uid))
                try? store.write { tx in try tx.deleteServer(uid) }
            }
            throw error
        }
    }

    func start(_ uid: ServerUID) throws {
        var server = try record(uid)
        let plan = try plan(uid.game)
        server.desiredState = "running"
        if let id = server.containerID, let current = try? platform.details(id), current.state == "running" {
            server.observedState = "running"
            try save(server)
            return
        }
        // Ports are checked again at every start: something else may have taken one meanwhile.
        let taken = try takenPorts(except: uid)
        if server.ports.isEmpty || server.ports.flatMap(\.keys).contains(where: taken.contains) {
            server.ports = try PortAllocator.allocate(groups: plan.portGroups, taken: taken, range: configuration.portRange)
            try platform.remove(uid)
            server.containerID = nil
        }
        try prepareDirectory(uid, plan: plan)
        let wanted = spec(server, plan: plan)
        // Settings, limits or the plan changed since the container was made (modify, update): re-create it.
        if let id = server.containerID, let current = try? platform.details(id),
            current.labels[ServerSpec.fingerprintLabel] != wanted.fingerprint
        {
            try platform.remove(uid)
            server.containerID = nil
        }
        let id = try platform.ensure(wanted)
        server.containerID = id
        try save(server)
        try writeManifest(server)
        try platform.start(id)
        server.observedState = try platform.details(id).state
        try save(server)
    }

    func stop(_ uid: ServerUID, keepDesired: Bool = false) throws {
        var server = try record(uid)
        if !keepDesired { server.desiredState = "stopped" }
        try save(server)
        guard let id = server.containerID else { return }
        do {
            try platform.stop(id, graceSeconds: Self.stopGraceSeconds)
            server.observedState = try platform.details(id).state
        } catch {
            guard (try? platform.details(id)) == nil else { throw error }
            server.observedState = "missing"
            server.containerID = nil
        }
        try save(server)
    }

    /// PEON's update modes. `image`/`full` fetch the image (keeping the local one when no registry
    /// answers, as Wings does) and re-create the container; every mode but `image` removes
    /// `actions/.update` so the runtime image updates the game at its next start; `reinit` also
    /// empties `data/`.
    func update(_ uid: ServerUID, mode: String) throws {
        let plan = try plan(uid.game)
        let dir = directory(uid)
        if mode == "image" || mode == "full" {
            do {
                try platform.pull(plan.image)
            } catch {
                guard try platform.imageFacts(plan.image) != nil else { throw error }
                logger.warning("image pull failed, keeping the local image", metadata: ["server.uid": "\(uid)", "error": "\(error)"])
            }
        }
        if mode != "image" { try? Files.removeTree(dir + "/actions/.update") }
        if mode == "reinit" {
            for name in Files.list(dir + "/data") { try Files.removeTree(dir + "/data/" + name) }
        }
        if mode == "image" || mode == "full" || mode == "reinit" {
            try recreate(uid)
        } else if try record(uid).desiredState == "running" {
            try stop(uid, keepDesired: true)
            try start(uid)
        }
        if let facts = try platform.imageFacts(plan.image) {
            var server = try record(uid)
            server.containerType = facts.containerType
            server.buildVersion = facts.buildVersion
            try save(server)
        }
    }

    /// Re-creates the container from the current plan and settings.
    func recreate(_ uid: ServerUID) throws {
        let server = try record(uid)
        let wasRunning = server.desiredState == "running"
        try stop(uid, keepDesired: true)
        try platform.remove(uid)
        var fresh = try record(uid)
        fresh.containerID = nil
        fresh.observedState = "missing"
        try save(fresh)
        if wasRunning {
            try start(uid)
        } else {
            let plan = try plan(uid.game)
            fresh.containerID = try platform.ensure(spec(fresh, plan: plan))
            fresh.observedState = "created"
            try save(fresh)
        }
    }

    func destroy(_ uid: ServerUID, eradicate: Bool) throws {
        try platform.remove(uid)
        if eradicate { try Files.removeTree(directory(uid)) }
        try store.write { tx in try tx.deleteServer(uid) }
    }
}

@available(*, unavailable)
extension JobRunner: Sendable {}
