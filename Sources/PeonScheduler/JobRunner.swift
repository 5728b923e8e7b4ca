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
    /// The running job's progress (nil between jobs).
    var progress: JobProgress?
    /// The bytes a files API read leaves for the API, stored with the job's end.
    var payload: [UInt8]?
    /// The jobs this runner claims: the servers' actions, or the files API's.
    public var lane: Transaction.Lane = .actions

    /// Held while a runtime image builds (process-wide: runners are threads of one scheduler).
    static let builds = Mutex(())
    public static let engineRetrySeconds: Int64 = 2
    /// Test only (`PEON_TEST_CRASH_ON_JOB`): the process kills itself when it starts a job of this kind.
    public var crashOnJob: JobKind?

    /// The wall clock, injected so decisions can be tested at any time.
    let clock: @Sendable () -> Int64

    public init(
        store: Store, platform: any ServerPlatform, configuration: Configuration, logger: Logger,
        clock: (@Sendable () -> Int64)? = nil
    ) {
        self.store = store
        self.platform = platform
        self.configuration = configuration
        self.logger = logger
        self.clock = clock ?? { WallClock.now() }
    }

    /// Claims and runs jobs until none is due; returns how many ran.
    @discardableResult
    public func drain() -> Int {
        var count = 0
        while !Signals.stopRequested.load(ordering: .relaxed) {
            let claimed: JobRecord?
            do {
                claimed = try store.write { tx in try tx.claimNextJob(now: clock(), lane: lane) }
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
        } catch  where !platform.reachable() {
            // The engine is away (restarting): the job waits for it instead of failing.
            logger.warning("engine unreachable, job deferred", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
            do {
                try store.write { tx in try tx.deferJob(job.id, seconds: Self.engineRetrySeconds, now: clock()) }
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
                result = ["code": .string(JobFailureCode.portsExhausted.rawValue)]
            case DomainError.invalid(_, let reason):
                message = reason
            case let failure as CodedFailure:
                // Not running, RCON refused or unreachable, a server of that name again: the API
                // answers 409 with the code.
                message = failure.message
                result = ["code": .string(failure.code.rawValue)]
            case PlatformError.unavailable(let text):
                // Reachable engine, unavailable node (Swarm: down or drained): the API answers 503.
                message = "unavailable: \(text)"
                result = ["code": .string(JobFailureCode.nodeUnavailable.rawValue)]
            case let error as PlatformError:
                message = error.description
            default:
                message = "\(error)"
            }
        }
        do {
            let output = payload
            payload = nil
            try store.write { tx in
                // A write's bytes go once used; a read's come with its end.
                if job.kind.isFileAccess { try tx.deleteJobPayload(job.id) }
                if let output, state == .succeeded { try tx.setJobPayload(job.id, output) }
                try tx.finishJob(job.id, state: state, error: message, result: result, now: clock())
            }
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
        switch try job.request {
        case .create(let start, let noclean): try create(uid, start: start, noclean: noclean)
        case .start: try start(uid)
        case .stop(let reason):
            try stop(uid)
            // An idle stop may put the server to sleep: its node holds its ports now, not at the
            // sleep watcher's next look.
            if reason == .idle { Wakeup.notify(directory: configuration.wakeupDir) }
        case .restart:
            try stop(uid, keepDesired: true)
            try start(uid)
        case .update(let mode): try update(uid, mode: mode)
        case .destroy(let eradicate, let deleteBackups): return try destroy(uid, eradicate: eradicate, deleteBackups: deleteBackups)
        case .eradicate(let deleteBackups): return try eraseLeftovers(uid, deleteBackups: deleteBackups)
        case .adopt: try adopt()
        case .console(let command): return try console(uid, command: command)
        case .backup(let format): return try backup(uid, format: format == .zip ? .zip : .tarZstd)
        case .restore(let id): try restore(uid, backup: id)
        case .deleteBackup(let id): try deleteBackup(uid, id: id)
        case .pruneBackups: return ["deleted": .array(try applyRetention(uid).map { .number(Double($0)) })]
        case .listFiles, .readFile, .writeFile, .deleteFile: return try files(job, uid, try job.request)
        }
        return nil
    }

    // MARK: - Steps

    func writeManifest(_ server: ServerRecord) throws {
        let json: JSON = [
            "uid": .string(server.uid.description), "description": .string(server.description),
            "settings": .object(server.settings.map { ($0.0, JSON.string($0.1)) }), "limits": server.limits,
            "ports": .array(server.ports.map { ["name": .string($0.name), "port": .int($0.port), "proto": .string($0.proto.rawValue)] }),
        ]
        try platform.writeManifest(server.uid, json.bytes)
    }

    /// `PUT /servers`: server directories with a manifest, and containers with Peon's labels, that
    /// the store does not know become servers again (stopped until started).
    func adopt() throws {
        let known = Set(try store.read { tx in try tx.servers() }.map(\.uid))
        let containers = try platform.observe(labels: [])
        for (uid, bytes) in try platform.manifests() {
            guard !known.contains(uid), let document = try? JSON.parse(bytes), let plan = try? plan(uid.game) else { continue }
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
                desiredState: container?.state == .running ? "running" : "stopped", observedState: container?.state.name ?? "missing",
                containerID: container?.ref.raw, limits: manifest.limits, createdAt: clock())
            try store.write { tx in try tx.insertServer(record, now: clock()) }
            logger.info("server adopted", metadata: ["server.uid": "\(uid)"])
        }
    }

    /// Writes the server row as it stands now.
    func save(_ server: ServerRecord) throws {
        try store.write { tx in try tx.updateServer(server, now: clock()) }
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

    /// Held from looking at the ports taken to saving the ones chosen (process-wide: runners are
    /// threads of one scheduler, and only one scheduler runs), so runners creating or starting at
    /// once never choose the same free ports.
    static let portChoice = Mutex(())

    /// Chooses ports for `server` against what is taken and saves them, under `portChoice`; with
    /// `keepingFree`, ports it has that nothing else took stay (`ours`: held for it until now).
    /// Answers whether they changed.
    @discardableResult
    func choosePorts(_ server: inout ServerRecord, plan: Plan, keepingFree: Bool = false, ours: Set<PortKey> = []) throws -> Bool {
        try Self.portChoice.withLock { _ in
            let taken = try takenPorts(except: server.uid).subtracting(ours)
            if keepingFree, !server.ports.isEmpty, !server.ports.flatMap(\.keys).contains(where: taken.contains) { return false }
            server.ports = try PortAllocator.allocate(groups: plan.portGroups, taken: taken, range: configuration.portRange)
            try save(server)
            return true
        }
    }

    /// Ports in use by anything but this server: other servers' groups, and what the platform
    /// says is taken on the server's node (workloads, the node's listeners).
    func takenPorts(except uid: ServerUID) throws -> Set<PortKey> {
        var taken = try platform.takenPorts(for: uid)
        for other in try store.read({ tx in try tx.servers() }) where other.uid != uid {
            taken.formUnion(other.ports.flatMap(\.keys))
        }
        return taken
    }

    func spec(_ server: ServerRecord, plan: Plan, image: RuntimeImage, files: PreparedFiles) -> ServerSpec {
        let limits = (try? ResourceLimits.parse(server.limits, over: plan.limits)) ?? plan.limits
        return ServerSpec(
            uid: server.uid, plan: plan, settings: server.settings, ports: server.ports, directory: files.directory,
            existingFiles: files.existingFiles, limits: limits, extraLabels: configuration.extraLabels, image: image.reference)
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
            buildArgs: configuration.imageBuildArgs.map { RuntimeImage.Pair($0.0, $0.1) }, extraLabels: configuration.extraLabels,
            registry: configuration.registry)
    }

    /// Makes sure the engine has the plan's image: builds Peon's runtime image when its inputs
    /// changed (the tag is their hash, so an unchanged plan costs one inspect), pulls an `image`
    /// plan's image when missing or, with `refresh`, again (keeping the local one when no
    /// registry answers, as Wings does).
    @discardableResult
    func prepareImage(_ plan: Plan, refresh: Bool = false) throws -> RuntimeImage {
        let image = try runtimeImage(plan)
        if image.build != nil {
            guard try !platform.imageReady(image) else { return image }
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

    /// The server's folders on its node, made and checked; the plan's actions installed when
    /// missing, or always with `reinstallActions`.
    @discardableResult
    func prepareFiles(_ uid: ServerUID, plan: Plan, reinstallActions: Bool = false) throws -> PreparedFiles {
        let actions = try store.read { tx in try tx.planFiles(uid.game) }
        return try platform.prepareFiles(uid, plan: plan, actions: actions, reinstallActions: reinstallActions)
    }

    func create(_ uid: ServerUID, start startIt: Bool, noclean: Bool) throws {
        var server = try record(uid)
        let plan = try plan(uid.game)
        do {
            // On a cluster the node comes first: ports and files are the node's.
            let wanted = server.ports.isEmpty ? (plan.portGroups.first ?? []).flatMap(\.keys) : server.ports.flatMap(\.keys)
            let limits = (try? ResourceLimits.parse(server.limits, over: plan.limits)) ?? plan.limits
            if let node = try platform.place(uid, ports: Set(wanted), memoryBytes: limits.memoryBytes ?? 0) {
                // The answer names the node and its address at once, not at the next reconcile.
                let nodes = try platform.clusterNodes()
                try store.write { tx in
                    try tx.setServerNode(uid.description, node: node)
                    try tx.replaceNodes(nodes, now: clock())
                }
                server.node = node
            }
            let portsChosen = server.ports.isEmpty
            if portsChosen { try choosePorts(&server, plan: plan) }
            let files = try prepareFiles(uid, plan: plan, reinstallActions: true)
            let image = try prepareImage(plan)
            let facts = try platform.imageFacts(image.reference)
            let ref = try platform.ensure(spec(server, plan: plan, image: image, files: files))
            server.containerID = ref.raw
            server.containerType = facts?.containerType ?? "unknown"
            server.buildVersion = facts?.buildVersion ?? "unknown"
            server.observedState = try platform.details(ref).state.name
            try save(server)
            try writeManifest(server)
            // Nothing ran in the folder since it was prepared and checked, and the ports were just
            // chosen against what is taken: the start does no node work again.
            if startIt { try start(uid, justCreated: portsChosen ? files : nil) }
        } catch {
            // With the engine away the job is retried later: keep what it needs.
            if !noclean, platform.reachable() {
                // A failed create leaves nothing behind.
                try? platform.remove(uid)
                _ = try? platform.removeFiles(uid)
                try? store.write { tx in try tx.deleteServer(uid) }
            }
            throw error
        }
    }

    /// Starts the server. `justCreated`: the files the create job in progress prepared moments ago;
    /// no game ran since, so the ports, folders and manifest are as that job left them.
    func start(_ uid: ServerUID, justCreated: PreparedFiles? = nil) throws {
        var server = try record(uid)
        let plan = try plan(uid.game)
        server.desiredState = "running"
        if let id = server.containerID, let current = try? platform.details(ServerRef(id)), current.state == .running {
            server.observedState = "running"
            try save(server)
            return
        }
        // A sleeping server's node holds its ports: let go before they are checked and published
        // (its players come back to the same ones).
        let held = try releaseHeldPorts(uid)
        // Ports are checked again at every start: something else may have taken one meanwhile.
        if justCreated == nil, try choosePorts(&server, plan: plan, keepingFree: true, ours: held) {
            // The container still publishes the old ports.
            try platform.remove(uid)
            server.containerID = nil
        }
        // After a run, the bind sources are checked again (a game may have swapped a folder it
        // could write for a link).
        let files = try justCreated ?? prepareFiles(uid, plan: plan)
        // A plan changed since (PUT /plans) means a new runtime image: built here, once.
        let wanted = spec(server, plan: plan, image: try prepareImage(plan), files: files)
        // Settings, limits or the plan changed since the container was made (modify, update): re-create it.
        if let id = server.containerID, let current = try? platform.details(ServerRef(id)),
            current.labels[ServerSpec.fingerprintLabel] != wanted.fingerprint
        {
            try platform.remove(uid)
            server.containerID = nil
        }
        let ref = try platform.ensure(wanted)
        let made = ref.raw != server.containerID
        server.containerID = ref.raw
        try save(server)
        if justCreated == nil || made {
            try writeManifest(server)
            try platform.checkFiles(uid, plan: plan)
        }
        progress?.enter(.starting)
        let starting = WallClock.milliseconds()
        try platform.start(ref)
        // Not ready again until the plan's probe answers (`readinessLoop`).
        try store.write { tx in try tx.setStarted(server: uid.description, at: starting) }
        server.observedState = try platform.details(ref).state.name
        try save(server)
        // The answer shows the config as it is now (the sampler refreshes it every 5 s after).
        let previous = try store.read { tx in try tx.configSnapshot(uid) }
        if let config = try? platform.configSnapshot(uid, keeping: previous) {
            try store.write { tx in try tx.setConfigSnapshot(uid, config) }
        }
    }

    /// The plan's stop grace, or none for a game still `starting` when its plan says that means
    /// it has nothing to save (`ReadyCheck.stopsAtOnceWhileStarting`; some ignore SIGTERM while
    /// they load). A start that timed out gets the grace: its probe may be what is wrong.
    func stopGrace(_ uid: ServerUID) throws -> Int {
        let plan = try plan(uid.game)
        let state = try store.read { tx in try tx.readiness(server: uid.description) }
        let starting = state.map { !$0.isReady && !$0.startFailed } ?? false
        guard starting, plan.ready.stopsAtOnceWhileStarting else { return plan.stopGraceSeconds }
        logger.info("stopped while starting: no grace", metadata: ["server.uid": "\(uid)"])
        return 0
    }

    func stop(_ uid: ServerUID, keepDesired: Bool = false) throws {
        var server = try record(uid)
        if !keepDesired { server.desiredState = "stopped" }
        try save(server)
        guard let id = server.containerID.map(ServerRef.init) else { return }
        do {
            try platform.stop(id, graceSeconds: try stopGrace(uid))
            server.observedState = try platform.details(id).state.name
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
        // A refreshed plan brings new scripts to its servers at every update, whatever the mode;
        // the mode's markers and wipes happen on the server's node.
        try platform.updateFiles(uid, mode: mode, actions: try store.read { tx in try tx.planFiles(uid.game) })
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
            let files = try prepareFiles(uid, plan: plan)
            fresh.containerID = try platform.ensure(spec(fresh, plan: plan, image: try prepareImage(plan), files: files)).raw
            fresh.observedState = "created"
            try save(fresh)
        }
    }

    /// Removes the workload and, erasing, the folder (and the backups when asked); the row last,
    /// so a retried job still knows the server. The result says what the erase found.
    func destroy(_ uid: ServerUID, eradicate: Bool, deleteBackups: Bool) throws -> JSON? {
        try platform.remove(uid)
        var result: JSON?
        if eradicate {
            let files = try platform.removeFiles(uid)
            result = try erased(uid, files: files, deleteBackups: deleteBackups)
        }
        try store.write { tx in try tx.deleteServer(uid) }
        return result
    }

    /// Erases what a destroyed server left, found by its uid: a workload an interrupted destroy
    /// left, its folder on the node that holds it, and its backups when asked. The result says
    /// what there was (`{"files": false, "deleted_backups": []}`: nothing by that name).
    func eraseLeftovers(_ uid: ServerUID, deleteBackups: Bool) throws -> JSON {
        // A server made again with this name since the request owns that folder now.
        guard try store.read({ tx in try tx.server(uid) }) == nil else {
            throw CodedFailure(code: .serverExists, message: "\(uid) exists again; destroy it to erase its files.")
        }
        try platform.remove(uid)
        return try erased(uid, files: try platform.removeFiles(uid), deleteBackups: deleteBackups)
    }

    /// Backups are kept unless asked (they are the user's safety net); the result lists the ids removed.
    func erased(_ uid: ServerUID, files: Bool, deleteBackups: Bool) throws -> JSON {
        var deleted: [Int64] = []
        if deleteBackups {
            for backup in try store.read({ tx in try tx.backups(server: uid.description) }) {
                try deleteBackup(uid, id: backup.id)
                deleted.append(backup.id)
            }
        }
        return ["files": .bool(files), "deleted_backups": .array(deleted.map { .number(Double($0)) })]
    }
}

@available(*, unavailable)
extension JobRunner: Sendable {}
