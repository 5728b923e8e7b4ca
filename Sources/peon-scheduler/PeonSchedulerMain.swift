import Logging
import PeonCore
import PeonCurl
import PeonDocker
import PeonJSON
import PeonNode
import PeonNodeAgent
import PeonPlatform
import PeonPlatformDocker
import PeonPlatformSwarm
import PeonScheduler
import PeonStore
import PeonSystem
import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// `peon-scheduler`: the one process that drives Docker. Wires the configuration, the Docker
/// platform and the engine; SIGTERM stops it without touching running game servers.
@main
enum PeonSchedulerMain {
    static func main() {
        // The configuration names the log level (PEON_LOG_LEVEL, DEV_MODE), so it is parsed first.
        let environment = ProcessEnvironment.read(Configuration.environmentKeys)
        let parsed = Result { try Configuration(environment: environment, defaultWorkers: 1) }
        let logger = ProcessLogging.start(label: "peon.scheduler", level: (try? parsed.get())?.logLevel ?? "info")
        let configuration: Configuration
        do {
            configuration = try parsed.get()
        } catch {
            logger.critical("invalid configuration", metadata: ["error": "\(error)"])
            exit(2)
        }
        CurlGlobal.initialize()
        Signals.installSupervisorHandlers()
        Files.restrictUmask()
        let socket = configuration.dockerSocket
        do {
            let client = try DockerClient(socketPath: socket)
            logger.info("docker engine", metadata: ["docker.version": "\(client.engineVersion)", "docker.api": "\(client.apiVersion)"])
            // Swarm needs a manager: anything else fails here, at start, not at the first job.
            if configuration.platform == .swarm { _ = try client.swarm() }
        } catch {
            logger.critical("no usable Docker engine", metadata: ["docker.socket": "\(socket)", "error": "\(error)"])
            exit(1)
        }
        let hostDataDir = configuration.hostDataDir ?? absolute(configuration.dataDir)
        let gameBind = configuration.gameBind
        // Swarm, or an agent beside this scheduler: the node agents' keys, read (or made) once for
        // every platform session; an agent beside it reads them from the data dir.
        var keys: AgentKeys?
        if configuration.platform == .swarm || configuration.nodeAgent != nil {
            do {
                let made = try agentCredentials(configuration)
                if configuration.nodeAgent != nil { try writeAgentKeys(made, into: configuration.dataDir + "/agent") }
                keys = try AgentKeys(made)
            } catch {
                logger.critical("cannot make the node agents' keys", metadata: ["error": "\(error)"])
                exit(1)
            }
        }
        let agentKeys = keys
        // Rotation on demand (`peon agent-keys rotate` writes new keys to the store): taken within
        // 5 s; Swarm's agents are updated at the next node operation, an agent beside this
        // scheduler re-reads its files.
        let rotation = ThreadHandle {
            guard let agentKeys, let store = try? Store(path: configuration.databasePath) else { return }
            while !Signals.stopRequested.load(ordering: .relaxed) {
                for _ in 0..<50 where !Signals.stopRequested.load(ordering: .relaxed) { Monotonic.sleep(0.1) }
                guard let text = try? store.read({ tx in try tx.meta("agent.credentials") }), let json = try? JSON.parse(Array(text.utf8)),
                    let stored = AgentCredentials(json: json), stored != agentKeys.credentials
                else { continue }
                do {
                    if configuration.nodeAgent != nil { try writeAgentKeys(stored, into: configuration.dataDir + "/agent") }
                    try agentKeys.replace(with: stored)
                    logger.notice("node agent keys rotated")
                } catch {
                    logger.error("cannot take the rotated node agent keys", metadata: ["error": "\(error)"])
                }
            }
        }
        defer { rotation.join() }
        // Test only: a job kind whose start kills the scheduler (the poison-job tests).
        let crashOnJob = ProcessEnvironment.read(["PEON_TEST_CRASH_ON_JOB"])["PEON_TEST_CRASH_ON_JOB"].flatMap { JobKind(rawValue: $0) }
        // Docker's latency, per call, flushed to SQLite for `/metrics` (see MetricsRecorder).
        let metrics = MetricsRecorder()
        let observe: @Sendable (String, String, Double) -> Void = { method, path, seconds in
            metrics.observe(
                "peon_docker_api_duration_seconds", labels: [("method", method), ("path", DockerClient.pathLabel(path))], seconds: seconds)
        }
        let flusher = ThreadHandle {
            guard let store = try? Store(path: configuration.databasePath) else { return }
            while !Signals.stopRequested.load(ordering: .relaxed) {
                try? store.write { tx in try metrics.flush(into: tx, now: WallClock.now()) }
                for _ in 0..<20 where !Signals.stopRequested.load(ordering: .relaxed) { Monotonic.sleep(0.1) }
            }
            try? store.write { tx in try metrics.flush(into: tx, now: WallClock.now()) }
        }
        defer { flusher.join() }
        // Each node operation's latency: in this process or through a node agent.
        // Test only: the first time a node operation of this name starts, the process kills
        // itself (a marker in the data dir makes it once: the retried job then runs through).
        let crashOnNodeOperation = ProcessEnvironment.read(["PEON_TEST_CRASH_ON_NODE_OP"])["PEON_TEST_CRASH_ON_NODE_OP"]
        let crashMarker = configuration.dataDir + "/test-crashed-on-node-op"
        var starting: (@Sendable (String) -> Void)? = nil
        if let crashOp = crashOnNodeOperation {
            starting = { (op: String) -> Void in
                guard op == crashOp else { return }
                let marker = open(crashMarker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard marker >= 0 else { return }
                close(marker)
                kill(getpid(), SIGKILL)
            }
        }
        let observeNode = NodeObserver(
            starting: starting,
            finished: { op, seconds in
                metrics.observe("peon_node_operation_duration_seconds", labels: [("op", op)], seconds: seconds)
            })
        /// Every platform session's client reports its call latencies.
        @Sendable func observed(_ client: DockerClient) -> DockerClient {
            client.observer = observe
            return client
        }
        let scheduler = Scheduler(
            configuration: configuration, runners: configuration.schedulerRunners, crashOnJob: crashOnJob, logger: logger
        ) { () throws -> any ServerPlatform in
            switch configuration.platform {
            case .docker:
                DockerPlatform(
                    client: try observed(DockerClient(socketPath: socket)),
                    files: LocalServerFiles(dataDir: configuration.dataDir, hostDataDir: hostDataDir), bindAddress: gameBind,
                    // An agent that starts after this scheduler is waited for, as the engine is.
                    node: agentKeys.flatMap { keys in
                        configuration.nodeAgent.flatMap { AgentChannel(address: $0, keys: keys, patienceSeconds: 30) }
                    }, egress: configuration.gameEgress, observe: observeNode)
            case .swarm:
                SwarmPlatform(
                    client: try observed(DockerClient(socketPath: socket)), dataRoot: configuration.swarmDataDir ?? hostDataDir,
                    agent: SwarmAgent(
                        port: configuration.swarmAgentPort, image: configuration.agentImage, nodeSocket: configuration.swarmNodeSocket,
                        keys: try agentKeys ?? AgentKeys(agentCredentials(configuration))),
                    registry: configuration.registry,
                    extraLabels: configuration.extraLabels, egress: configuration.gameEgress, observe: observeNode)
            }
        }
        do {
            try scheduler.run()
        } catch {
            logger.critical("scheduler failed", metadata: ["error": "\(error)"])
            exit(1)
        }
        logger.info("scheduler stopped")
    }

    /// The keys of the mutual TLS between the scheduler and Peon's node agents: made once (a CA of
    /// Peon's own and two certificates), kept in the store's `meta` table, handed to the agents as
    /// Swarm secrets. One write transaction, so processes agree on them; deleting the row rotates them.
    static func agentCredentials(_ configuration: Configuration) throws -> AgentCredentials {
        try Store(path: configuration.databasePath).write { tx in
            if let text = try tx.meta("agent.credentials"), let json = try? JSON.parse(Array(text.utf8)),
                let credentials = AgentCredentials(json: json)
            {
                return credentials
            }
            let credentials = try AgentCredentials.make()
            try tx.setMeta("agent.credentials", credentials.json.text)
            return credentials
        }
    }

    /// The keys an agent beside this scheduler reads at its start (`PEON_AGENT_TLS`): the data dir is
    /// the one place both containers of the compose.yaml deployment share. Owner-only files.
    static func writeAgentKeys(_ keys: AgentCredentials, into folder: String) throws {
        try Files.makeDirectories(folder, mode: 0o700)
        for (name, text) in [
            ("peon-agent-ca.pem", keys.authority.certificate), ("peon-agent-cert.pem", keys.agent.certificate),
            ("peon-agent-key.pem", keys.agent.key),
        ] {
            try Files.replace(name, in: "agent", under: Files.directory(of: folder), Array(text.utf8), mode: 0o600)
        }
    }

    static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
