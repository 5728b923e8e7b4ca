import Logging
import PeonAPI
import PeonCore
import PeonCurl
import PeonFastCGI
import PeonHTTP
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `peon-api`: the FastCGI worker pool behind nginx. Prepares the data directory, database, plans
/// and first admin key, opens the socket once, then pre-forks the workers and supervises them.
@main
enum PeonAPIMain {
    static func main() {
        // The configuration names the log level (PEON_LOG_LEVEL, DEV_MODE), so it is parsed first.
        let environment = ProcessEnvironment.read(Configuration.environmentKeys)
        let parsed = Result { try Configuration(environment: environment, defaultWorkers: ProcessEnvironment.onlineCores) }
        let logger = ProcessLogging.start(label: "peon.api", level: (try? parsed.get())?.logLevel ?? "info")
        let configuration: Configuration
        do {
            configuration = try parsed.get()
        } catch {
            logger.critical("invalid configuration", metadata: ["error": "\(error)"])
            exit(2)
        }
        CurlGlobal.initialize()
        do {
            try prepare(configuration, logger: logger)
        } catch {
            logger.critical("cannot prepare the data directory", metadata: ["error": "\(error)"])
            exit(1)
        }

        let socket: Int32
        do {
            socket = try FastCGISocket.open(path: configuration.socketPath, group: configuration.socketGroup)
        } catch {
            logger.critical("cannot open the FastCGI socket", metadata: ["error": "\(error)"])
            exit(1)
        }
        if Privileges.isRoot, let name = configuration.runUser, name != "root" {
            dropRoot(to: name, configuration, logger: logger)
        }
        logger.info(
            "worker pool starting",
            metadata: [
                "socket": "\(configuration.socketPath)", "workers": "\(configuration.workers)", "threads": "\(configuration.workerThreads)",
                "version": "\(configuration.version)",
            ])

        let api = PeonAPI()
        let startedAt = WallClock.now()
        let status = Supervisor(workers: configuration.workers, logger: logger).run { slot in
            var workerLogger = logger
            workerLogger[metadataKey: "worker.pid"] = "\(getpid())"
            let waits = WaitBudget(limit: configuration.waitingThreads)
            let metrics = MetricsRecorder()
            let flusher = MetricsFlusher(configuration: configuration, metrics: metrics, logger: workerLogger)
            defer { flusher.stop() }
            let threadLogger = workerLogger
            return FastCGIWorker.serve(
                socket: socket, threads: configuration.workerThreads, running: max(2, ProcessEnvironment.onlineCores), logger: workerLogger,
                largeBodies: .init(prefix: "/api/v1/server/file/", limit: configuration.fileMax)
            ) {
                // Each thread opens its own connection: SQLite handles never cross threads.
                let store: Store
                do {
                    store = try Store(path: configuration.databasePath)
                } catch {
                    threadLogger.critical("cannot open the database", metadata: ["error": "\(error)"])
                    return nil
                }
                let context = APIContext(
                    store: store, configuration: configuration, logger: threadLogger, startedAt: startedAt, waits: waits, metrics: metrics)
                return { request in api.respond(to: request, context: context) }
            }
        }
        unlink(configuration.socketPath)
        logger.info("worker pool stopped")
        exit(status)
    }

    /// Started as root with `PEON_USER`: shares the data dir with that user's group, then becomes it,
    /// so no worker runs as root. Stays root (with a warning) when the user cannot reach the data dir.
    static func dropRoot(to name: String, _ configuration: Configuration, logger: Logger) {
        guard let account = Account(named: name) else {
            logger.critical("PEON_USER: no such user", metadata: ["user": "\(name)"])
            exit(2)
        }
        if let blocked = Privileges.blockedDirectory(configuration.dataDir, for: account) {
            logger.warning(
                "the API workers stay root: the user cannot reach the data directory",
                metadata: ["user": "\(name)", "blocked.at": "\(blocked)"])
            return
        }
        do {
            try share(configuration, with: account)
            try Privileges.drop(to: account)
        } catch {
            logger.critical("cannot drop root", metadata: ["user": "\(name)", "error": "\(error)"])
            exit(1)
        }
        logger.info("dropped root", metadata: ["user": "\(name)", "uid": "\(account.uid)"])
    }

    /// What the workers need once they are not root: the database and its WAL files (SQLite gives
    /// new `-wal`/`-shm` files the database's owner and mode), the data dir to create them in, the
    /// socket dir, and read access to plans and server config. The data dir is setgid (new files
    /// get the group) and sticky (the group cannot rename or delete what it does not own).
    static func share(_ configuration: Configuration, with account: Account) throws {
        let data = configuration.dataDir
        try Files.makeDirectories(configuration.serversDir)
        try Files.setGroup(data, account.gid, mode: 0o3771)
        for suffix in ["", "-wal", "-shm"] where Files.kind(configuration.databasePath + suffix) == .file {
            try Files.setOwner(configuration.databasePath + suffix, uid: account.uid, gid: account.gid, mode: 0o660)
        }
        let socketDir = Files.directory(of: configuration.socketPath)
        if socketDir == data + "/run" { try Files.setOwner(socketDir, uid: account.uid, gid: account.gid, mode: 0o711) }
        try Files.shareTree(configuration.plansDir, gid: account.gid)
        try Files.setGroup(configuration.serversDir, account.gid, mode: 0o2750)
        for game in Files.list(configuration.serversDir) where Files.kind(configuration.serversDir + "/" + game) == .directory {
            try Files.setGroup(configuration.serversDir + "/" + game, account.gid, mode: 0o2750)
        }
    }

    /// Runs once in the supervisor, before any fork; every handle it opens is closed on return.
    static func prepare(_ configuration: Configuration, logger: Logger) throws {
        // The data dir is traversable (0711) so nginx's workers reach the socket by its path;
        // the database and everything else in it are closed to others by the umask.
        Files.restrictUmask()
        try Files.makeDirectories(configuration.dataDir)
        try Files.setMode(configuration.dataDir, 0o711)
        let socketDir = Files.directory(of: configuration.socketPath)
        try Files.makeDirectories(socketDir)
        try Files.setMode(socketDir, 0o711)
        let store = try Store(path: configuration.databasePath)
        try PlanCatalog.seed(plansDir: configuration.plansDir, bundled: configuration.bundledPlansDir)
        // Also when no plan has actions yet: a catalog loaded before plans carried their scripts.
        if try store.read({ tx in try tx.planUIDs().isEmpty || tx.planFileCount() == 0 }) {
            let report = try PlanCatalog.refresh(
                store: store, plansDir: configuration.plansDir, plansURL: nil, curl: { CurlEasy() }, now: WallClock.now())
            logger.info("plans loaded", metadata: ["plans.added": "\(report.added.count)", "plans.failed": "\(report.failures.count)"])
        }
        let generated = try store.write { tx in
            try APIKeys.bootstrap(in: tx, configured: configuration.bootstrapAPIKey, now: WallClock.now())
        }
        if let generated {
            ProcessEnvironment.printLine("Peon admin API key (shown once, only its hash is stored): \(generated)")
        }
    }
}
