/// Settings of the Swift processes, parsed once from an environment dictionary so tests pass literals.
///
/// The nginx-side settings (ports, TLS, CORS, rate limits) are rendered by `scripts/` into the
/// nginx config; they are documented in the README next to these.
public struct Configuration: Sendable {
    public var dataDir: String
    /// The first admin key, from `PEON_API_KEY` or PEON's `API_KEY`. Never logged.
    public var bootstrapAPIKey: String?
    public var workers: Int
    public var socketPath: String
    /// Group that may connect to the socket (nginx's workers), e.g. `www-data`.
    public var socketGroup: String?
    /// The user `peon-api` becomes after binding its socket when started as root (`PEON_USER`).
    public var runUser: String?
    public var plansURL: String?
    /// Plans shipped with Peon, copied into `dataDir/plans` when that folder is empty.
    public var bundledPlansDir: String
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
    /// Labels added to every container and network Peon makes (`PEON_LABELS=k=v,k2=v2`).
    public var extraLabels: [(String, String)]

    public var databasePath: String { dataDir + "/peon.db" }
    public var plansDir: String { dataDir + "/plans" }
    public var serversDir: String { dataDir + "/servers" }
    /// Where scheduler threads listen for wake-ups from the API workers.
    public var wakeupDir: String { dataDir + "/run/scheduler" }
    /// Held (flock) by the running scheduler for its whole life: the API sees a dead one at once.
    public var schedulerLockPath: String { wakeupDir + "/scheduler.lock" }

    public static let defaultVersion = "0.1.0"

    public init(environment env: [String: String], defaultWorkers: Int) throws(DomainError) {
        func value(_ key: String) -> String? {
            guard let v = env[key], !v.isEmpty else { return nil }
            return v
        }
        dataDir = value("PEON_DATA_DIR") ?? "./var"
        while dataDir.count > 1, dataDir.hasSuffix("/") { dataDir.removeLast() }
        bootstrapAPIKey = value("PEON_API_KEY") ?? value("API_KEY")
        if let key = bootstrapAPIKey, key.utf8.count < 8 || key.utf8.count > 256 || key.contains(where: { $0.isWhitespace }) {
            throw .invalid(field: "PEON_API_KEY", reason: "an API key must be 8-256 characters without spaces")
        }
        if let w = value("PEON_WORKERS") {
            guard let n = Int(w), (1...64).contains(n) else {
                throw .invalid(field: "PEON_WORKERS", reason: "PEON_WORKERS must be a number from 1 to 64")
            }
            workers = n
        } else {
            workers = max(1, min(defaultWorkers, 64))
        }
        socketPath = value("PEON_SOCKET") ?? dataDir + "/run/api.sock"
        guard socketPath.utf8.count < 100 else {
            throw .invalid(field: "PEON_SOCKET", reason: "a unix socket path must be shorter than 100 bytes: set PEON_SOCKET")
        }
        socketGroup = value("PEON_SOCKET_GROUP")
        runUser = value("PEON_USER")
        plansURL = value("PEON_PLANS_URL")
        if let url = plansURL, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw .invalid(field: "PEON_PLANS_URL", reason: "PEON_PLANS_URL must be an http:// or https:// URL")
        }
        bundledPlansDir = value("PEON_BUNDLED_PLANS") ?? "./plans"
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
        "PEON_DATA_DIR", "PEON_API_KEY", "API_KEY", "PEON_WORKERS", "PEON_SOCKET", "PEON_SOCKET_GROUP", "PEON_PLANS_URL",
        "PEON_BUNDLED_PLANS", "PEON_VERSION", "VERSION", "PEON_LOG_LEVEL", "DEV_MODE", "PEON_DOCKER_SOCKET", "PEON_HOST_DIR",
        "PEON_PORT_RANGE", "PEON_GAME_BIND", "PEON_LABELS", "PEON_USER",
    ]
}
