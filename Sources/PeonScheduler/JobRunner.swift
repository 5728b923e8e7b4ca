public import Logging
public import PeonCore
import PeonJSON
public import PeonPlatform
public import PeonStore
import PeonSystem
import Synchronization

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
    /// The running job's progress (nil between jobs).
    var progress: JobProgress?

    public static let stopGraceSeconds = 30
    /// Held while a runtime image builds (process-wide: runners are threads of one scheduler).
    static let builds = Mutex(())
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
        progress = JobProgress(store: store, jobID: job.id)
        defer {
            progress?.flush()
            progress = nil
        }
        do {
            result = try perform(job)
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

    /// Carries out a job; what it made (a backup) is recorded as the job's result.
    func perform(_ job: JobRecord) throws -> JSON? {
        if job.kind == .adopt {
            try adopt()
            return nil
        }
        let uid = try ServerUID(validating: job.serverUID)
        switch job.kind {
        case .create: try create(uid, arguments: job.arguments)
        case .start: try start(uid)
        case .stop: try stop(uid)
        case .restart:
            try stop(uid, keepDesired: true)
            try start(uid)
        case .update: try update(uid, mode: UpdateMode(parsing: job.arguments["mode"]?.stringValue))
        case .destroy: try destroy(uid, eradicate: job.arguments["eradicate"] == .bool(true))
        case .eradicate: try destroy(uid, eradicate: true)
        case .adopt: try adopt()
        case .console: try console(uid, command: job.arguments["command"]?.stringValue ?? "")
        case .backup: return try backup(uid, format: job.arguments["format"]?.stringValue == "zip" ? .zip : .tarZstd)
        case .restore: try restore(uid, backup: job.arguments["id"].flatMap { CheckedNumber.integer($0, in: 1...Int64.max) } ?? 0)
        case .deleteBackup: try deleteBackup(uid, id: job.arguments["id"].flatMap { CheckedNumber.integer($0, in: 1...Int64.max) } ?? 0)
        }
        return nil
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
                    let document = try? JSON.parse(bytes), let plan = try? plan(uid.game)
                else { continue }
                // The manifest is hostile input: checked like a request, refused whole when wrong.
                let manifest: ServerManifest
                do {
                    manifest = try ServerManifest(document: document, uid: uid, plan: plan)
                } catch {
                    logger.warning("server manifest refused", metadata: ["server.uid": "\(uid)", "error": "\(error)"])
                    continue
                }
                let container = containers.first { $0.uid == uid }
                let record = ServerRecord(
                    uid: uid, description: manifest.description, settings: manifest.settings, ports: manifest.ports,
                    desiredState: container?.state == "running" ? "running" : "stopped", observedState: container?.state ?? "missing",
                    containerID: container?.id, limits: manifest.limits, createdAt: WallClock.now())
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

    func spec(_ server: ServerRecord, plan: Plan, image: RuntimeImage) -> ServerSpec {
        let dir = directory(server.uid)
        let existing = Set(plan.files.map(\.source).filter { Files.kind(dir + "/" + $0.dropFirst(3)) == .file })
        let limits = (try? ResourceLimits.parse(server.limits, over: plan.limits)) ?? plan.limits
        return ServerSpec(
            uid: server.uid, plan: plan, settings: server.settings, ports: server.ports,
            directory: hostDataDir + "/servers/" + server.uid.relativeDirectory, existingFiles: existing, limits: limits,
            extraLabels: configuration.extraLabels, image: image.reference)
    }

    /// The image servers of `plan` run: Peon's runtime image, from the definition files in
    /// `PEON_IMAGES_DIR` (`common/` and the runtime's folder), or an `image` plan's own.
    func runtimeImage(_ plan: Plan) throws -> RuntimeImage {
        guard plan.runtime != .image else { return RuntimeImage(plan: plan, files: [], baseID: nil) }
        var files: [RuntimeImage.File] = []
        for folder in ["common", plan.runtime.rawValue] {
            let dir = configuration.imagesDir + "/" + folder
            for name in Files.list(dir).sorted() where Files.kind(dir + "/" + name) == .file {
                let path = dir + "/" + name
                let mode = access(path, X_OK) == 0 ? 0o755 : 0o644
                files.append(RuntimeImage.File(path: name, bytes: try Files.read(path, limit: 1 << 20), mode: mode))
            }
        }
        guard files.contains(where: { $0.path == "Dockerfile" }) else {
            throw DomainError.invalid(
                field: "metadata.runtime", reason: "no \(plan.runtime.rawValue) runtime image definition in \(configuration.imagesDir)")
        }
        return RuntimeImage(
            plan: plan, files: files, baseID: try platform.imageID(RuntimeImage.base),
            buildArgs: configuration.imageBuildArgs.map { RuntimeImage.Pair($0.0, $0.1) }, extraLabels: configuration.extraLabels)
    }

    /// Makes sure the engine has the plan's image: builds Peon's runtime image when its inputs
    /// changed (the tag is their hash, so an unchanged plan costs one inspect), pulls an `image`
    /// plan's image when missing or, with `refresh`, again (keeping the local one when no
    /// registry answers, as Wings does).
    @discardableResult
    func prepareImage(_ plan: Plan, refresh: Bool = false) throws -> RuntimeImage {
        let image = try runtimeImage(plan)
        if image.build != nil {
            guard try platform.imageID(image.reference) == nil else { return image }
            // One build at a time in this scheduler: two servers of one game created together build
            // their image once (the second finds the tag when the first is done).
            try Self.builds.withLock { _ in
                progress?.enter(.building)
                let started = Monotonic.seconds()
                guard try platform.ensureImage(image, progress: { line in progress?.line(line) }) else { return }
                logger.info(
                    "runtime image built",
                    metadata: ["image": "\(image.reference)", "build.ms": "\(Int((Monotonic.seconds() - started) * 1000))"])
            }
        } else if refresh {
            progress?.enter(.pulling)
            do {
                try platform.pull(image.reference) { line in progress?.line(line) }
            } catch {
                guard try platform.imageFacts(image.reference) != nil else { throw error }
                logger.warning(
                    "image pull failed, keeping the local image", metadata: ["image": "\(image.reference)", "error": "\(error)"])
            }
        } else if try platform.imageFacts(image.reference) == nil {
            progress?.enter(.pulling)
            try platform.pull(image.reference) { line in progress?.line(line) }
        }
        return image
    }

    /// Removes this Peon's runtime images that no container uses and no server's plan wants.
    func pruneImages() throws {
        var keep = Set<String>()
        var games = Set<GameUID>()
        for server in try store.read({ tx in try tx.servers() }) where games.insert(server.uid.game).inserted {
            if let plan = try? plan(server.uid.game), let image = try? runtimeImage(plan) { keep.insert(image.reference) }
        }
        let removed = try platform.pruneImages(labels: configuration.extraLabels.map { "\($0.0)=\($0.1)" }, keep: keep)
        if removed > 0 { logger.info("unused runtime images removed", metadata: ["images": "\(removed)"]) }
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
        if Files.kind(dir + "/actions") == .missing {
            try installActions(uid)
            made.append(dir + "/actions")
        }
        for path in made {
            try Files.chownTree(path, uid: 1000, gid: 1000)
            // The API reads `config/` live and may run as another user.
            try Files.setMode(path, 0o755)
        }
        try checkMounts(uid, plan: plan)
    }

    /// Every bind source, checked right before a start: reached from the data dir without a
    /// symlink at any level (Docker would follow one), folders made for the game's user when missing.
    func checkMounts(_ uid: ServerUID, plan: Plan) throws {
        let base = "servers/" + uid.relativeDirectory + "/"
        do {
            for volume in plan.volumes {
                try Files.checkBindSource(base + volume.source.dropFirst(3), in: configuration.dataDir, owner: (1000, 1000))
            }
            for file in plan.files where Files.kind(directory(uid) + "/" + file.source.dropFirst(3)) != .missing {
                try Files.checkBindSource(base + file.source.dropFirst(3), in: configuration.dataDir, file: true)
            }
        } catch {
            throw DomainError.invalid(field: "volumes", reason: "unsafe mount source: \(error)")
        }
    }

    /// Copies the plan's `actions/` files, as the catalog holds them, into the server's `actions/`;
    /// the user's other files there (and `.update`) stay.
    func installActions(_ uid: ServerUID) throws {
        let files = try store.read { tx in try tx.planFiles(uid.game) }
        try ActionsInstaller().install(files, into: directory(uid) + "/actions")
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
            try installActions(uid)
            let image = try prepareImage(plan)
            let facts = try platform.imageFacts(image.reference)
            let id = try platform.ensure(spec(server, plan: plan, image: image))
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
                try? Files.removeTree(uid.relativeDirectory, in: configuration.serversDir)
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
        // A plan changed since (PUT /plans) means a new runtime image: built here, once.
        let wanted = spec(server, plan: plan, image: try prepareImage(plan))
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
        try checkMounts(uid, plan: plan)
        progress?.enter(.starting)
        try platform.start(id)
        server.observedState = try platform.details(id).state
        try save(server)
    }

    /// Types one line into the running game's stdin.
    func console(_ uid: ServerUID, command: String) throws {
        let server = try record(uid)
        guard let id = server.containerID, (try? platform.details(id))?.state == "running" else {
            throw DomainError.conflict("\(uid) is not running, so it has no console to type into.")
        }
        guard let console = platform as? any ConsoleInput else {
            throw DomainError.invalid(field: "command", reason: "this platform has no console input")
        }
        try console.sendLine(id, command)
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

    /// PEON's update modes (`UpdateMode`, docs/runtime.md). The image is rebuilt only when its
    /// inputs changed (the tag is their hash) or pulled again for `image` plans; the markers in
    /// `actions/` tell the runtime what to do with the game at the next start; the container is
    /// re-created (image modes) or restarted, if it should run. The container is stopped before
    /// any file changes and deletion goes by descriptor, so a running game cannot swap a folder
    /// for a symlink under the delete.
    func update(_ uid: ServerUID, mode: UpdateMode) throws {
        let plan = try plan(uid.game)
        if mode.refreshesImage { try prepareImage(plan, refresh: true) }
        // Stop first: files a running container can write are changed only once it cannot.
        let wasRunning = try record(uid).desiredState == "running"
        try stop(uid, keepDesired: true)
        let base = uid.relativeDirectory
        // A refreshed plan brings new scripts to its servers at every update, whatever the mode.
        try installActions(uid)
        if mode.redownloadsGame { try Files.removeTree(base + "/actions/.update", in: configuration.serversDir) }
        if mode.validatesGame {
            let marker = directory(uid) + "/actions/.validate"
            try Files.write(marker, [])
            _ = chown(marker, 1000, 1000)
        }
        if mode.wipesGameFiles { try Files.removeContents(base + "/data", in: configuration.serversDir) }
        if mode.refreshesImage || mode.wipesGameFiles {
            try recreate(uid)
        } else if wasRunning {
            try start(uid)
        }
        if let facts = try platform.imageFacts(try runtimeImage(plan).reference) {
            var server = try record(uid)
            server.containerType = facts.containerType
            server.buildVersion = facts.buildVersion
            try save(server)
        }
        if mode.refreshesImage {
            do {
                try pruneImages()
            } catch {
                logger.warning("cannot prune runtime images", metadata: ["error": "\(error)"])
            }
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
            fresh.containerID = try platform.ensure(spec(fresh, plan: plan, image: try prepareImage(plan)))
            fresh.observedState = "created"
            try save(fresh)
        }
    }

    func destroy(_ uid: ServerUID, eradicate: Bool) throws {
        try platform.remove(uid)
        if eradicate { try Files.removeTree(uid.relativeDirectory, in: configuration.serversDir) }
        try store.write { tx in try tx.deleteServer(uid) }
    }
}

@available(*, unavailable)
extension JobRunner: Sendable {}
