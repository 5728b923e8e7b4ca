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
            let threadLogger = workerLogger
            return FastCGIWorker.serve(socket: socket, threads: configuration.workerThreads, logger: workerLogger) {
                // Each thread opens its own connection: SQLite handles never cross threads.
                let store: Store
                do {
                    store = try Store(path: configuration.databasePath)
                } catch {
                    threadLogger.critical("cannot open the database", metadata: ["error": "\(error)"])
                    return nil
                }
                let context = APIContext(
                    store: store, configuration: configuration, logger: threadLogger, startedAt: startedAt, waits: waits)
                return { request in api.respond(to: request, context: context) }
            }
        }
        unlink(configuration.socketPath)
        logger.info("worker pool stopped")
        exit(status)
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
