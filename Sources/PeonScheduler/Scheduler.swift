public import Logging
public import PeonCore
import PeonJSON
public import PeonPlatform
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// The scheduler process's engine: the only code that drives the platform.
///
/// Threads, each with its own store connection and platform session:
/// - `runners` job runners sleeping on their own wake-up socket (API workers wake them);
/// - one event watcher keeping each server's observed state right and applying the crash policy;
/// - one housekeeping thread: stats samples, a periodic full reconcile, pruning of old history;
/// - a few webhook senders, each delivering to one hook at a time (`WebhookSender.swift`);
/// - the calling thread: timed actions and the heartbeat, never delayed by Docker.
/// SIGTERM (`Signals.stopRequested`) ends every loop; running game servers are left alone.
public struct Scheduler: Sendable {
    public let configuration: Configuration
    public let runners: Int
    public let logger: Logger
    public let makePlatform: @Sendable () throws -> any ServerPlatform
    public let crashPolicy: CrashPolicy
    /// Test only: see `JobRunner.crashOnJob`.
    public let crashOnJob: JobKind?

    /// The wall clock, injected: every decision takes the time as an argument.
    public let clock: @Sendable () -> Int64

    public init(
        configuration: Configuration, runners: Int = 2, crashPolicy: CrashPolicy = CrashPolicy(), crashOnJob: JobKind? = nil,
        logger: Logger, clock: (@Sendable () -> Int64)? = nil,
        makePlatform: @escaping @Sendable () throws -> any ServerPlatform
    ) {
        self.crashOnJob = crashOnJob
        self.configuration = configuration
        self.clock = clock ?? { WallClock.now() }
        self.runners = runners
        self.crashPolicy = crashPolicy
        self.logger = logger
        self.makePlatform = makePlatform
    }

    static var stopping: Bool { Signals.stopRequested.load(ordering: .relaxed) }

    /// A job that was running when the scheduler died this many times is failed, not re-queued:
    /// a job that crashes the scheduler cannot keep it down.
    public static let maximumInterruptedAttempts = 2

    /// One scheduler per data directory; waits while another holds the lock (nil: stopped meanwhile).
    func holdLock() throws -> Int32? {
        var waited = false
        while !Self.stopping {
            if let fd = try ProcessLock.tryHold(configuration.schedulerLockPath) { return fd }
            if !waited {
                logger.warning("another scheduler holds the lock; waiting", metadata: ["lock": "\(configuration.schedulerLockPath)"])
            }
            waited = true
            Monotonic.sleep(0.05)
        }
        return nil
    }

    /// Backups being written are `.<name>.partial` until checked and renamed: one found at start
    /// belongs to a job a scheduler died in (it runs again from the start, under a new name).
    static func removePartialBackups(in backupDir: String) -> Int {
        var removed = 0
        for game in Files.list(backupDir) where Files.kind(backupDir + "/" + game) == .directory {
            for server in Files.list(backupDir + "/" + game) where Files.kind(backupDir + "/" + game + "/" + server) == .directory {
                let folder = backupDir + "/" + game + "/" + server
                for name in Files.list(folder) where name.hasPrefix(".") && name.hasSuffix(".partial") {
                    if unlink(folder + "/" + name) == 0 { removed += 1 }
                }
            }
        }
        return removed
    }

    public func run() throws {
        try Files.makeDirectories(configuration.wakeupDir)
        // API workers may run as another user: they list this directory to wake the runners.
        try Files.setMode(configuration.wakeupDir, 0o755)
        guard let lock = try holdLock() else { return }
        defer { close(lock) }
        let store = try Store(path: configuration.databasePath)
        let (requeued, poisoned) = try store.write { tx in
            try tx.requeueInterruptedJobs(maximumAttempts: Self.maximumInterruptedAttempts, now: clock())
        }
        if requeued > 0 { logger.warning("requeued jobs a previous scheduler left running", metadata: ["jobs": "\(requeued)"]) }
        let partials = Self.removePartialBackups(in: configuration.backupDir)
        if partials > 0 { logger.warning("removed backups a previous scheduler left half-written", metadata: ["files": "\(partials)"]) }
        for job in poisoned {
            logger.error(
                "job failed: it was running when the scheduler died twice; not retried",
                metadata: ["job.id": "\(job.id)", "job.kind": "\(job.kind.rawValue)", "server.uid": "\(job.serverUID)"])
        }

        var threads: [ThreadHandle] = []
        for n in 0..<runners { threads.append(ThreadHandle { self.runnerLoop("\(n)", lane: .actions) }) }
        // The files API's jobs: two runners of their own, so a file read waits for no backup.
        for n in 0..<2 { threads.append(ThreadHandle { self.runnerLoop("files-\(n)", lane: .files) }) }
        threads.append(ThreadHandle { self.eventLoop() })
        logger.info("scheduler started", metadata: ["runners": "\(runners)", "version": "\(configuration.version)"])

        threads.append(ThreadHandle { self.housekeepingLoop() })
        threads.append(ThreadHandle { self.readinessLoop() })
        threads.append(ThreadHandle { self.sleepLoop() })
        threads.append(ThreadHandle { LogCollector(scheduler: self).run() })
        for n in 0..<Self.webhookSenders { threads.append(ThreadHandle { self.webhookLoop(n) }) }
        // This loop only beats and fires timed actions: nothing slow may delay either.
        var failing = false
        var zones = ZoneCache()
        var lastTick = clock()
        while !Self.stopping {
            let now = clock()
            do {
                let wake = try store.write { tx in
                    try tx.setMeta("scheduler.heartbeat", "\(now)")
                    var queued = 0
                    for due in try tx.takeDueSchedules(now: now) {
                        // Timed actions are PEON's start, stop and restart, which take no arguments.
                        guard let request = try? JobRequest(kind: due.action, arguments: [:]) else { continue }
                        try tx.enqueueJob(server: due.server, request, now: now)
                        queued += 1
                    }
                    queued += try fireCronSchedules(in: tx, now: now, zones: &zones)
                    let cameDue = try tx.jobsCameDue(after: lastTick, upTo: now)
                    return queued > 0 || cameDue
                }
                lastTick = now
                // Runners sleep until told (or 2 s): only when there is something for them.
                if wake { Wakeup.notify(directory: configuration.wakeupDir) }
                if failing { logger.info("scheduler tick works again") }
                failing = false
            } catch {
                // Once per streak: a full disk fails every tick.
                if !failing { logger.warning("scheduler tick failed", metadata: ["error": "\(error)"]) }
                failing = true
            }
            Monotonic.sleep(0.25)
        }
        logger.info("scheduler stopping")
        for thread in threads { thread.join() }
        try? store.write { tx in try tx.setMeta("scheduler.heartbeat", "0") }
    }

    /// Stats samples and the full reconcile, on a thread of their own (they call Docker for every server).
    func housekeepingLoop() {
        var lastReconcile = 0.0
        var lastSample = 0.0
        var lastPlayers = 0.0
        // The first image prune waits a minute: a scheduler restarted mid-create must not race it.
        var lastImagePrune = Monotonic.seconds() - Self.imagePruneSeconds + 60
        var lastPrune: Double?
        var lastEgress: Double?
        var previous: [ServerUID: StatsSample] = [:]
        let retention = Retention(
            days: configuration.retainDays, rows: configuration.retainRows, statsHours: configuration.statsRetainHours)
        while !Self.stopping {
            do {
                let store = try Store(path: configuration.databasePath)
                let platform = try makePlatform()
                // Runtime images no server uses any more (plans changed, servers destroyed).
                let images = JobRunner(store: store, platform: platform, configuration: configuration, logger: logger, clock: clock)
                while !Self.stopping {
                    if Monotonic.seconds() - lastImagePrune > Self.imagePruneSeconds {
                        lastImagePrune = Monotonic.seconds()
                        do {
                            try images.pruneImages()
                        } catch {
                            logger.warning("cannot prune runtime images", metadata: ["error": "\(error)"])
                        }
                    }
                    if lastPrune.map({ Monotonic.seconds() - $0 > Self.pruneSeconds }) ?? true {
                        lastPrune = Monotonic.seconds()
                        let removed = try store.write { tx in try tx.prune(retention, now: clock()) }
                        if removed > 0 { logger.info("history pruned", metadata: ["rows": "\(removed)"]) }
                    }
                    // Every node's egress rules: at start, then each minute for nodes that rebooted or joined.
                    if lastEgress.map({ Monotonic.seconds() - $0 > Self.egressSeconds }) ?? true {
                        lastEgress = Monotonic.seconds()
                        do {
                            try platform.ensureEgress()
                        } catch {
                            logger.error("cannot make sure of the games' egress rules", metadata: ["error": "\(error)"])
                        }
                    }
                    if Monotonic.seconds() - lastReconcile > 10 {
                        lastReconcile = Monotonic.seconds()
                        try reconcile(store: store, platform: platform)
                    }
                    if Monotonic.seconds() - lastPlayers > Double(configuration.playerPollSeconds) {
                        lastPlayers = Monotonic.seconds()
                        try pollPlayers(store: store, platform: platform)
                    }
                    if Monotonic.seconds() - lastSample > Self.sampleSeconds {
                        let started = Monotonic.seconds()
                        lastSample = started
                        previous = try sampleStats(store: store, platform: platform, previous: previous)
                        let took = Monotonic.seconds() - started
                        if took > 1 { logger.debug("stats sampling was slow", metadata: ["seconds": "\(took)"]) }
                    }
                    Monotonic.sleep(0.25)
                }
            } catch {
                logger.warning("housekeeping failed, retrying", metadata: ["error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }

    func runnerLoop(_ n: String, lane: Transaction.Lane) {
        var logger = self.logger
        logger[metadataKey: "runner"] = "\(n)"
        // Retried: the engine may be restarting when the runner starts.
        while !Self.stopping {
            do {
                let wake = try WakeupSocket(path: "\(configuration.wakeupDir)/wake-\(n).sock")
                let runner = try JobRunner(
                    store: Store(path: configuration.databasePath), platform: makePlatform(), configuration: configuration, logger: logger,
                    clock: clock)
                runner.crashOnJob = crashOnJob
                runner.lane = lane
                while !Self.stopping {
                    // Woken by whoever queues a job (API workers, this scheduler's own ticks); the
                    // time-out is only a safety net, so idle runners do not poll the store.
                    if runner.drain() == 0 { wake.wait(timeoutMilliseconds: 2000) }
                }
            } catch {
                logger.warning("job runner cannot start, retrying", metadata: ["error": "\(error)"])
                Monotonic.sleep(1)
            }
        }
    }

    func eventLoop() {
        while !Self.stopping {
            do {
                let store = try Store(path: configuration.databasePath)
                // Two sessions: the stream holds its connection, so look-ups need their own.
                let stream = try makePlatform()
                let platform = try makePlatform()
                try stream.followEvents(keepGoing: { !Self.stopping }) { event in
                    handle(event, store: store, platform: platform)
                    return !Self.stopping
                }
            } catch {
                logger.warning("event stream interrupted, reconnecting", metadata: ["error": "\(error)"])
            }
            if !Self.stopping { Monotonic.sleep(1) }
        }
    }

    /// Keeps the observed state current; a server that should run and died on its own is a crash.
    func handle(_ event: PlatformEvent, store: Store, platform: any ServerPlatform) {
        let now = clock()
        let details = event.kind == .destroyed ? nil : try? platform.details(event.ref)
        do {
            try store.write { tx in
                guard let server = try tx.server(event.uid) else { return }
                guard server.containerID == nil || server.containerID == event.ref.raw else { return }
                try tx.setObservedState(
                    event.uid, state: details?.state.name ?? "missing", containerID: details == nil ? nil : event.ref.raw, now: now)
                guard case .exited(let code) = event.kind else { return }
                // The workload may be gone already: the event's code stands in for the inspect.
                let state = details?.state ?? .exited(code: code ?? -1, oom: false)
                try apply(
                    Reconciler.exited(try desired(server, in: tx), state: state, crashes: try crashes(server, in: tx, now: now), now: now),
                    in: tx, now: now)
            }
        } catch {
            logger.warning("cannot record an event", metadata: ["server.uid": "\(event.uid)", "error": "\(error)"])
        }
    }

    /// A die while a stop, restart, update or removal is pending was asked for; during a create
    /// or start it is a crash like any other. Once a restart is queued the exit is handled: the
    /// event stream and the reconcile may both see one exit.
    func desired(_ server: ServerRecord, in tx: Transaction) throws -> Reconciler.Desired {
        let intended: Set<JobKind> = [.stop, .restart, .update, .destroy, .eradicate]
        let pending = try tx.pendingJobs(server: server.uid.description)
        return Reconciler.Desired(
            uid: server.uid, wantsRunning: server.desiredState == "running", observed: server.observedState, ref: server.containerID,
            crashPolicy: (try? CrashPolicy.parse(server.crashPolicy, over: crashPolicy)) ?? crashPolicy,
            exitExpected: pending.contains { intended.contains($0.kind) || ($0.kind == .start && $0.state == .queued) })
    }

    func crashes(_ server: ServerRecord, in tx: Transaction, now: Int64) throws -> [Int64] {
        let policy = (try? CrashPolicy.parse(server.crashPolicy, over: crashPolicy)) ?? crashPolicy
        return try tx.crashTimes(server: server.uid.description, since: now - policy.windowSeconds)
    }

    /// Carries out the reconciler's decisions in the caller's write transaction.
    func apply(_ actions: [Reconciler.Action], in tx: Transaction, now: Int64) throws {
        func leaveStopped(_ uid: ServerUID, state: String) throws {
            guard var stopped = try tx.server(uid) else { return }
            stopped.desiredState = "stopped"
            stopped.observedState = state
            try tx.updateServer(stopped, now: now)
        }
        for action in actions {
            switch action {
            case .observe(let uid, let state, let ref):
                try tx.setObservedState(uid, state: state, containerID: ref, now: now)
            case .leaveStopped(let uid, let state):
                try leaveStopped(uid, state: state)
            case .recordCrash(let uid, let code, let oom, let at):
                try tx.recordCrash(server: uid.description, at: at, exitCode: code, oomKilled: oom)
                try tx.emitEvent(.crashed, server: uid.description, detail: ["exit_code": .int(code), "oom_killed": .bool(oom)], now: now)
            case .restart(let uid, let notBefore):
                try tx.enqueueJob(server: uid.description, .start, notBefore: notBefore, now: now)
                try tx.emitEvent(.restarted, server: uid.description, detail: ["delay_seconds": .number(Double(notBefore - now))], now: now)
                logger.warning("server crashed, restarting", metadata: ["server.uid": "\(uid)", "delay.s": "\(notBefore - now)"])
            case .giveUp(let uid, let state, let reason):
                try leaveStopped(uid, state: state)
                logger.error("server crashed, not restarting", metadata: ["server.uid": "\(uid)", "reason": "\(reason)"])
            }
        }
    }

    static let sampleSeconds = 5.0
    /// Runtime images no server uses are removed this often.
    static let imagePruneSeconds = 600.0
    /// How often every node's egress rules are made sure of (they are also before each start).
    static let egressSeconds = 60.0
    /// Jobs, crashes, audit and stats are pruned this often (and at start).
    static let pruneSeconds = 300.0

    /// Records CPU, memory, network and uptime of every running server; returns the raw samples
    /// for the next round's CPU deltas. Old samples go with the rest of the history (`prune`).
    func sampleStats(store: Store, platform: any ServerPlatform, previous: [ServerUID: StatsSample]) throws -> [ServerUID: StatsSample] {
        var samples: [ServerUID: StatsSample] = [:]
        var records: [(ServerUID, StatsRecord, JSON)] = []
        let now = clock()
        // The running servers and the config each one showed last, in one read.
        let running = try store.read { tx in
            try tx.servers().filter { $0.observedState == "running" }.map { ($0, try tx.configSnapshot($0.uid)) }
        }
        for (server, shown) in running where !Self.stopping {
            guard let id = server.containerID, let sample = try? platform.sample(ServerRef(id)) else { continue }
            samples[server.uid] = sample
            let record = StatsRecord(
                at: now, cpuPercent: sample.cpuPercent(since: previous[server.uid]), memory: sample.memory, memoryLimit: sample.memoryLimit,
                networkRx: sample.networkRx, networkTx: sample.networkTx, uptime: sample.startedAt > 0 ? max(0, now - sample.startedAt) : 0)
            // Listings show this snapshot, so `GET /servers` never reads a file per server.
            let config = (try? platform.configSnapshot(server.uid, keeping: shown)) ?? shown
            records.append((server.uid, record, config))
        }
        try store.write { tx in
            for (uid, record, config) in records {
                try tx.insertStats(server: uid.description, record)
                try tx.setConfigSnapshot(uid, config)
            }
        }
        return samples
    }

    /// The backstop for missed events: every server's observed state from a full listing, and the
    /// crash policy for servers that should run and exited while nobody watched (the scheduler or
    /// the engine was down, so no `die` event came).
    func reconcile(store: Store, platform: any ServerPlatform) throws {
        // Read before the listing: a row that changed since (an event, a job) is newer than the
        // listing, and is left to the next round instead of being overwritten with stale state.
        let known = try store.read { tx in try tx.servers() }
        var observed: [ServerUID: Reconciler.Observed] = [:]
        let workloads = try platform.observe(labels: [])
        // Multi-node platforms: the API shows nodes and each server's node from this mirror.
        let nodes = try platform.clusterNodes()
        if !nodes.isEmpty {
            try store.write { tx in
                try tx.replaceNodes(nodes, now: clock())
                for workload in workloads { if let uid = workload.uid { try tx.setServerNode(uid.description, node: workload.node) } }
            }
        }
        for workload in workloads {
            guard let uid = workload.uid, observed[uid] == nil else { continue }
            observed[uid] = Reconciler.Observed(ref: workload.ref.raw, state: workload.state, exitKnown: !workload.state.isStopped)
        }
        for server in known where server.desiredState == "running" {
            // The listing carries no exit code or OOM flag: look at those that stopped.
            guard let mine = observed[server.uid], mine.state.isStopped, let details = try? platform.details(ServerRef(mine.ref)),
                details.state.isStopped
            else { continue }
            observed[server.uid]?.state = details.state
            observed[server.uid]?.exitKnown = true
        }
        let now = clock()
        try store.write { tx in
            var desired: [Reconciler.Desired] = []
            var crashes: [ServerUID: [Int64]] = [:]
            for server in try tx.servers() {
                guard let before = known.first(where: { $0.uid == server.uid }), before.observedState == server.observedState,
                    before.containerID == server.containerID, before.desiredState == server.desiredState
                else { continue }
                desired.append(try self.desired(server, in: tx))
                crashes[server.uid] = try self.crashes(server, in: tx, now: now)
            }
            try apply(Reconciler.compute(desired: desired, observed: observed, crashes: crashes, now: now), in: tx, now: now)
        }
    }
}
