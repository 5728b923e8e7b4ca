/// Settings of the Swift processes, parsed once from an environment dictionary so tests pass literals.
///
/// The nginx-side settings (ports, TLS, CORS, rate limits) are rendered by `scripts/` into the
/// nginx config; they are documented in the README next to these.
public struct Configuration: Sendable {
    public var dataDir: String
    /// The first admin key, from `PEON_API_KEY` or PEON's `API_KEY`. Never logged.
    public var bootstrapAPIKey: String?
    public var workers: Int
    /// Threads per worker process: how many requests one process serves at once.
    public var workerThreads: Int
    /// How many of a process's threads may wait for a job (synchronous actions); the rest serve reads.
    public var waitingThreads: Int {
        max(1, workerThreads - max(workerThreads / 4, 1))
    }
    /// Scheduler threads that run jobs: jobs of different servers run side by side (a game
    /// that takes 20 s to save holds one of them), jobs of one server one after another.
    public var schedulerRunners: Int
    public var socketPath: String
    /// Group that may connect to the socket (nginx's workers), e.g. `www-data`.
    public var socketGroup: String?
    /// The user `peon-api` becomes after binding its socket when started as root (`PEON_USER`).
    public var runUser: String?
    public var plansURL: String?
    /// The SHA-256 the plans archive must have (`PEON_PLANS_SHA256`), when pinned.
    public var plansSHA256: String?
    /// Networks webhooks may be delivered to besides public addresses (`PEON_WEBHOOK_ALLOW`).
    public var webhookAllow: [CIDR] = []
    /// Addresses whose packets never wake a sleeping server (`PEON_WAKE_IGNORE`: monitoring).
    public var wakeIgnore: [CIDR] = []
    /// Plans shipped with Peon, copied into `dataDir/plans` when that folder is empty.
    public var bundledPlansDir: String
    /// Peon's runtime image definitions (`common/`, `steamcmd/`, `debian/`; the scheduler only).
    public var imagesDir: String
    /// Extra build arguments of runtime images (`PEON_IMAGE_BUILD_ARGS=STEAMCMD=standin` in tests).
    public var imageBuildArgs: [(String, String)]
    public var version: String
    public var logLevel: String
    /// The Docker engine's socket (the scheduler only).
    public var dockerSocket: String
    /// Where the host sees `dataDir` (set when Peon itself runs in a container, as PEON's HOST_DIR).
    public var hostDataDir: String?
    /// Ports tried when none of a plan's port groups is free.
    public var portRange: ClosedRange<Int>
    /// Host address game ports are published on.
    public var gameBind: String
    /// Where servers run: `docker` (this host) or `swarm` (the engine is a Swarm manager).
    public var platform: PlatformKind
    /// On Swarm: the data folder as every node sees it (each node's own disk).
    public var swarmDataDir: String?
    /// The image with Peon's node agent (`PEON_AGENT_IMAGE`, Peon's own), deployed on every Swarm node.
    public var agentImage: String
    /// The path of each node's Docker engine socket on Swarm (`PEON_SWARM_NODE_SOCKET`): the agent's way to its node's containers.
    public var swarmNodeSocket: String
    /// The registry Peon pushes the runtime images it builds to, and the nodes pull them from
    /// (`PEON_REGISTRY`: `host[:port][/path]`); required on Swarm for plans that need a built image.
    public var registry: String?
    /// The address game clients connect to (`PEON_PUBLIC_ADDRESS`), when this host's own is not it.
    public var publicAddress: String?
    /// Peon's node agent beside a scheduler that does not share the games' host (`PEON_NODE_AGENT`,
    /// `unix:<path>` or `<ip>:<port>`; the compose.yaml deployment): nil does the node's work in-process.
    public var nodeAgent: String?
    /// On Swarm: the TCP port Peon's node agent listens on at every node's address.
    public var swarmAgentPort: Int
    /// What game containers may reach: Peon's firewall rules on every node (`PEON_GAME_EGRESS`,
    /// `restricted` by default, with `PEON_GAME_EGRESS_ALLOW`'s ranges let through) or none (`open`);
    /// nil (`unmanaged`): the operator keeps the firewall, Peon touches nothing.
    public var gameEgress: GameEgress?

    public enum PlatformKind: String, Sendable { case docker, swarm }
    /// Labels added to every container and network Peon makes (`PEON_LABELS=k=v,k2=v2`).
    public var extraLabels: [(String, String)]
    /// Unfinished jobs one server may have (`PEON_MAX_PENDING_JOBS`); more answer 429.
    public var maxPendingJobsPerServer: Int
    /// Unfinished jobs of all servers together (`PEON_MAX_PENDING_JOBS_TOTAL`).
    public var maxPendingJobs: Int
    /// Finished jobs, crashes and audit rows older than this many days are deleted (`PEON_RETAIN_DAYS`).
    public var retainDays: Int
    /// At most this many rows are kept of each of jobs, crashes, audit and stats (`PEON_RETAIN_ROWS`).
    public var retainRows: Int
    /// Stats samples older than this many hours are deleted (`PEON_STATS_RETAIN_HOURS`).
    public var statsRetainHours: Int
    /// Seconds between player polls of running servers (`PEON_PLAYER_POLL_SECONDS`).
    public var playerPollSeconds: Int
    /// How many seconds an `idle_stop` minute lasts (`PEON_IDLE_MINUTE_SECONDS`, 60): shorter only
    /// for tests and demos, which then see an idle stop in seconds.
    public var idleMinuteSeconds: Int

    /// Where backups are written (`PEON_BACKUP_DIR`, default `dataDir/backups`).
    public var backupDir: String
    /// Backups kept per server; older ones are removed when a new one is made.
    public var backupKeep: Int
    /// The largest file the files API reads or writes (`PEON_FILE_MAX`, bytes).
    public var fileMax: Int

    public var databasePath: String { dataDir + "/peon.db" }
    public var plansDir: String { dataDir + "/plans" }
    public var serversDir: String { dataDir + "/servers" }
    /// Where scheduler threads listen for wake-ups from the API workers.
    public var wakeupDir: String { dataDir + "/run/scheduler" }
    /// Held (flock) by the running scheduler for its whole life: the API sees a dead one at once.
    public var schedulerLockPath: String { wakeupDir + "/scheduler.lock" }

    public static let defaultVersion = "0.1.0"
    /// Configured keys shorter than this are refused: PEON's 8-character default was guessable.
    public static let minimumKeyLength = 16
    /// PEON's default key, printed in its samples and help texts.
    public static let publishedDefaultKey = "Zu88Zu88"

    public init(environment env: [String: String], defaultWorkers: Int) throws(DomainError) {
        func value(_ key: String) -> String? {
            guard let v = env[key], !v.isEmpty else { return nil }
            return v
        }
        dataDir = value("PEON_DATA_DIR") ?? "./var"
        while dataDir.count > 1, dataDir.hasSuffix("/") { dataDir.removeLast() }
        bootstrapAPIKey = value("PEON_API_KEY") ?? value("API_KEY")
        if let key = bootstrapAPIKey {
            guard (Self.minimumKeyLength...256).contains(key.utf8.count), !key.contains(where: { $0.isWhitespace }) else {
                throw .invalid(
                    field: "PEON_API_KEY", reason: "PEON_API_KEY must be \(Self.minimumKeyLength)-256 characters without spaces")
            }
            // PEON's published default is known to everyone, however it is padded.
            guard !key.lowercased().contains(Self.publishedDefaultKey.lowercased()) else {
                throw .invalid(field: "PEON_API_KEY", reason: "PEON_API_KEY must not contain PEON's published default key")
            }
        }
        /// A whole number in `range` from `key`, else `fallback` when unset.
        func number(_ key: String, _ range: ClosedRange<Int>, _ fallback: Int) throws(DomainError) -> Int {
            guard let text = value(key) else { return fallback }
            guard let n = CheckedNumber.int(text, in: range) else {
                throw .invalid(field: key, reason: "\(key) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        workers = try number("PEON_WORKERS", 1...64, max(1, min(defaultWorkers, 64)))
        maxPendingJobsPerServer = try number("PEON_MAX_PENDING_JOBS", 1...10_000, 16)
        maxPendingJobs = try number("PEON_MAX_PENDING_JOBS_TOTAL", 1...1_000_000, 256)
        retainDays = try number("PEON_RETAIN_DAYS", 1...36_500, 30)
        retainRows = try number("PEON_RETAIN_ROWS", 100...100_000_000, 100_000)
        statsRetainHours = try number("PEON_STATS_RETAIN_HOURS", 1...87_600, 24)
        playerPollSeconds = try number("PEON_PLAYER_POLL_SECONDS", 1...3600, 30)
        idleMinuteSeconds = try number("PEON_IDLE_MINUTE_SECONDS", 1...60, 60)
        workerThreads = try number("PEON_WORKER_THREADS", 1...256, 32)
        backupKeep = try number("PEON_BACKUP_KEEP", 1...10_000, 10)
        fileMax = try number("PEON_FILE_MAX", 1...ServerFilePath.maximumFileBytes, 16 << 20)
        schedulerRunners = try number("PEON_SCHEDULER_RUNNERS", 1...128, 16)
        backupDir = value("PEON_BACKUP_DIR") ?? dataDir + "/backups"
        while backupDir.count > 1, backupDir.hasSuffix("/") { backupDir.removeLast() }
        socketPath = value("PEON_SOCKET") ?? dataDir + "/run/api.sock"
        guard socketPath.utf8.count < 100 else {
            throw .invalid(field: "PEON_SOCKET", reason: "a unix socket path must be shorter than 100 bytes: set PEON_SOCKET")
        }
        socketGroup = value("PEON_SOCKET_GROUP")
        runUser = value("PEON_USER")
        plansURL = value("PEON_PLANS_URL")
        // Plans carry the scripts game containers run: fetched over TLS, or from this machine.
        if let url = plansURL, WebURL(url)?.isPrivateTransport != true {
            throw .invalid(
                field: "PEON_PLANS_URL",
                reason: "PEON_PLANS_URL must be an https:// URL without credentials (plain http:// only for 127.0.0.1, [::1] or localhost)")
        }
        plansSHA256 = value("PEON_PLANS_SHA256")?.lowercased()
        if let pin = plansSHA256 {
            guard pin.utf8.count == 64, pin.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                throw .invalid(field: "PEON_PLANS_SHA256", reason: "PEON_PLANS_SHA256 must be 64 hex digits (sha256sum of the archive)")
            }
            guard plansURL.map(Plan.isArchiveURL) == true else {
                throw .invalid(field: "PEON_PLANS_SHA256", reason: "PEON_PLANS_SHA256 pins an archive: PEON_PLANS_URL must name a .tar.gz")
            }
        }
        webhookAllow = try CIDR.list(value("PEON_WEBHOOK_ALLOW") ?? "", field: "PEON_WEBHOOK_ALLOW")
        wakeIgnore = try CIDR.list(value("PEON_WAKE_IGNORE") ?? "", field: "PEON_WAKE_IGNORE")
        guard wakeIgnore.count <= 64 else { throw .invalid(field: "PEON_WAKE_IGNORE", reason: "PEON_WAKE_IGNORE takes at most 64 ranges") }
        bundledPlansDir = value("PEON_BUNDLED_PLANS") ?? "./plans"
        imagesDir = value("PEON_IMAGES_DIR") ?? "./images"
        imageBuildArgs = try (value("PEON_IMAGE_BUILD_ARGS") ?? "").split(separator: ",").map { pair throws(DomainError) in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            // BASE and PACKAGES come from Peon and the plan, never from here.
            guard parts.count == 2, Plan.isEnvironmentName(parts[0]), parts[0] != "BASE", parts[0] != "PACKAGES",
                parts[1].utf8.count <= 128, !parts[1].contains(where: { $0.isWhitespace })
            else {
                throw .invalid(field: "PEON_IMAGE_BUILD_ARGS", reason: "PEON_IMAGE_BUILD_ARGS must be NAME=value pairs separated by commas")
            }
            return (parts[0], parts[1])
        }
        version = value("PEON_VERSION") ?? value("VERSION") ?? Configuration.defaultVersion
        logLevel = value("PEON_LOG_LEVEL") ?? (env["DEV_MODE"] == "enabled" ? "debug" : "info")
        dockerSocket = value("PEON_DOCKER_SOCKET") ?? "/var/run/docker.sock"
        hostDataDir = value("PEON_HOST_DIR")
        if let range = value("PEON_PORT_RANGE") {
            guard let parsed = PortAllocator.parseRange(range) else {
                throw .invalid(field: "PEON_PORT_RANGE", reason: "PEON_PORT_RANGE must look like 20000-29999")
            }
            portRange = parsed
        } else {
            portRange = 20000...29999
        }
        gameBind = value("PEON_GAME_BIND") ?? "0.0.0.0"
        guard let kind = PlatformKind(rawValue: value("PEON_PLATFORM") ?? "docker") else {
            throw .invalid(field: "PEON_PLATFORM", reason: "PEON_PLATFORM must be docker or swarm")
        }
        platform = kind
        swarmDataDir = value("PEON_SWARM_DATA")
        if let dir = swarmDataDir, !dir.hasPrefix("/") || dir.contains("..") {
            throw .invalid(field: "PEON_SWARM_DATA", reason: "PEON_SWARM_DATA must be an absolute path")
        }
        agentImage = value("PEON_AGENT_IMAGE") ?? "peon:local"
        swarmNodeSocket = value("PEON_SWARM_NODE_SOCKET") ?? "/var/run/docker.sock"
        guard swarmNodeSocket.hasPrefix("/"), !swarmNodeSocket.contains("..") else {
            throw .invalid(field: "PEON_SWARM_NODE_SOCKET", reason: "PEON_SWARM_NODE_SOCKET must be an absolute path")
        }
        registry = value("PEON_REGISTRY").map { String($0.reversed().drop { $0 == "/" }.reversed()) }
        if let registry,
            registry.isEmpty || registry.utf8.count > 200 || registry.contains("://") || registry.hasPrefix("/")
                || !registry.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:/_".contains($0)) })
        {
            throw .invalid(field: "PEON_REGISTRY", reason: "PEON_REGISTRY must be a registry host[:port][/path], without a scheme")
        }
        nodeAgent = value("PEON_NODE_AGENT")
        if let agent = nodeAgent {
            let unix = agent.hasPrefix("unix:/") && !agent.contains("..") && agent.utf8.count < 100
            let tcp = agent.split(separator: ":").last.flatMap { Int($0) }.map { (1...65535).contains($0) } ?? false
            guard unix || (tcp && !agent.hasPrefix("unix:")) else {
                throw .invalid(field: "PEON_NODE_AGENT", reason: "PEON_NODE_AGENT must be unix:<absolute path> or <ip>:<port>")
            }
        }
        publicAddress = value("PEON_PUBLIC_ADDRESS")
        if let address = publicAddress,
            address.isEmpty || address.utf8.count > 253
                || !address.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) })
        {
            throw .invalid(field: "PEON_PUBLIC_ADDRESS", reason: "PEON_PUBLIC_ADDRESS must be a host name or an IP address")
        }
        if let text = value("PEON_SWARM_AGENT_PORT") {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw .invalid(field: "PEON_SWARM_AGENT_PORT", reason: "PEON_SWARM_AGENT_PORT must be a port number (1-65535)")
            }
            swarmAgentPort = port
        } else {
            swarmAgentPort = 7380
        }
        let allow = try CIDR.list(value("PEON_GAME_EGRESS_ALLOW") ?? "", field: "PEON_GAME_EGRESS_ALLOW")
        guard allow.count <= 64 else {
            throw .invalid(field: "PEON_GAME_EGRESS_ALLOW", reason: "PEON_GAME_EGRESS_ALLOW takes at most 64 ranges")
        }
        switch value("PEON_GAME_EGRESS") ?? "restricted" {
        case "restricted": gameEgress = .restricted(allow: allow)
        case "open": gameEgress = .open
        // The operator keeps the node's firewall: Peon neither installs nor removes its rules.
        case "unmanaged": gameEgress = nil
        default: throw .invalid(field: "PEON_GAME_EGRESS", reason: "PEON_GAME_EGRESS must be restricted, open or unmanaged")
        }
        extraLabels = try (value("PEON_LABELS") ?? "").split(separator: ",").map { pair throws(DomainError) in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 128 && !$0.contains(where: { $0.isWhitespace }) }),
                !parts[0].hasPrefix("peon.managed"), !parts[0].hasPrefix("peon.server"), !parts[0].hasPrefix("peon.game")
            else { throw .invalid(field: "PEON_LABELS", reason: "PEON_LABELS must be key=value pairs separated by commas") }
            return (parts[0], parts[1])
        }
    }
}

extension Configuration {
    /// Every environment variable the Swift processes read.
    public static let environmentKeys = [
        "PEON_DATA_DIR", "PEON_API_KEY", "API_KEY", "PEON_WORKERS", "PEON_WORKER_THREADS", "PEON_SCHEDULER_RUNNERS", "PEON_SOCKET",
        "PEON_SOCKET_GROUP", "PEON_PLANS_URL", "PEON_PLANS_SHA256", "PEON_WEBHOOK_ALLOW",
        "PEON_BUNDLED_PLANS", "PEON_VERSION", "VERSION", "PEON_LOG_LEVEL", "DEV_MODE", "PEON_DOCKER_SOCKET", "PEON_HOST_DIR",
        "PEON_PORT_RANGE", "PEON_GAME_BIND", "PEON_LABELS", "PEON_IMAGES_DIR", "PEON_IMAGE_BUILD_ARGS", "PEON_MAX_PENDING_JOBS",
        "PEON_MAX_PENDING_JOBS_TOTAL", "PEON_RETAIN_DAYS", "PEON_RETAIN_ROWS", "PEON_STATS_RETAIN_HOURS", "PEON_USER",
        "PEON_BACKUP_DIR", "PEON_BACKUP_KEEP", "PEON_FILE_MAX", "PEON_PLAYER_POLL_SECONDS", "PEON_PLATFORM", "PEON_SWARM_DATA",
        "PEON_AGENT_IMAGE", "PEON_SWARM_AGENT_PORT", "PEON_SWARM_NODE_SOCKET", "PEON_PUBLIC_ADDRESS", "PEON_NODE_AGENT", "PEON_REGISTRY",
        "PEON_GAME_EGRESS", "PEON_GAME_EGRESS_ALLOW", "PEON_WAKE_IGNORE", "PEON_IDLE_MINUTE_SECONDS",
    ]
}
