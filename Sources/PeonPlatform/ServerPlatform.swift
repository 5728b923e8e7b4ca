public import PeonCore

/// A container as the platform reports it, mapped back to the Peon server it belongs to.
public struct ObservedContainer: Sendable, Equatable {
    public let id: String
    public let uid: ServerUID?
    /// Docker's words: `created`, `running`, `exited`, `restarting`, `paused`, `dead`.
    public let state: String
    public let exitCode: Int
    public let oomKilled: Bool
    public let labels: [String: String]

    public init(id: String, uid: ServerUID?, state: String, exitCode: Int, oomKilled: Bool, labels: [String: String]) {
        self.id = id
        self.uid = uid
        self.state = state
        self.exitCode = exitCode
        self.oomKilled = oomKilled
        self.labels = labels
    }
}

/// What the image says about itself (PEON's `container_type` and `build_version`).
public struct ImageFacts: Sendable, Equatable {
    public let containerType: String
    public let buildVersion: String

    public init(containerType: String, buildVersion: String) {
        self.containerType = containerType
        self.buildVersion = buildVersion
    }
}

/// Where servers run: Docker on this host today, Swarm later. One session per scheduler thread.
/// Calls are idempotent where the platform allows, so a job retried after a crash is safe.
public protocol ServerPlatform: AnyObject {
    /// Makes sure the server's container exists (adopting one a crashed attempt left); its id.
    func ensure(_ spec: ServerSpec) throws -> String
    func start(_ id: String) throws
    func stop(_ id: String, graceSeconds: Int) throws
    /// Removes the server's containers and network; files stay.
    func remove(_ uid: ServerUID) throws
    func observe(labels: [String]) throws -> [ObservedContainer]
    func details(_ id: String) throws -> ObservedContainer
    /// Host ports published by any container, Peon's or not.
    func publishedPorts() throws -> Set<PortKey>
    /// Facts of a local image, nil when the engine does not have it.
    func imageFacts(_ image: String) throws -> ImageFacts?
    /// Fetches an image, reporting the engine's progress line by line.
    func pull(_ image: String, progress: (String) -> Void) throws
    /// The engine's id of a local image, nil when it does not have it.
    func imageID(_ reference: String) throws -> String?
    /// Builds a runtime image unless the engine already has its tag (inputs unchanged); true when
    /// it built. `progress` gets the builder's output line by line.
    func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws -> Bool
    /// Removes Peon's runtime images carrying `labels` that no container uses and whose reference
    /// is not in `keep`; returns how many went.
    func pruneImages(labels: [String], keep: Set<String>) throws -> Int
    /// One resource sample of a running container.
    func sample(_ id: String) throws -> StatsSample
    /// Follows container events of Peon's servers until `handler` returns false or `keepGoing` turns false.
    func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws
    /// Whether the platform answers at all (a failed job is retried later when it does not).
    func reachable() -> Bool
}

extension ServerPlatform {
    public func reachable() -> Bool { true }
}

/// Something that happened to a server's container.
public struct PlatformEvent: Sendable, Equatable {
    public let uid: ServerUID
    public let containerID: String
    /// `create`, `start`, `die`, `oom`, `stop`, `kill`, `destroy`, ...
    public let action: String
    public let exitCode: Int?

    public init(uid: ServerUID, containerID: String, action: String, exitCode: Int?) {
        self.uid = uid
        self.containerID = containerID
        self.action = action
        self.exitCode = exitCode
    }
}

/// Raw counters of one sample; CPU % needs two of them (`cpuPercent(since:)`).
public struct StatsSample: Sendable, Equatable {
    public let cpuTotal: UInt64
    public let systemTotal: UInt64
    public let onlineCPUs: Int
    public let memory: Int64
    public let memoryLimit: Int64
    public let networkRx: Int64
    public let networkTx: Int64
    public let startedAt: Int64

    public init(
        cpuTotal: UInt64, systemTotal: UInt64, onlineCPUs: Int, memory: Int64, memoryLimit: Int64, networkRx: Int64, networkTx: Int64,
        startedAt: Int64
    ) {
        self.cpuTotal = cpuTotal
        self.systemTotal = systemTotal
        self.onlineCPUs = onlineCPUs
        self.memory = memory
        self.memoryLimit = memoryLimit
        self.networkRx = networkRx
        self.networkTx = networkTx
        self.startedAt = startedAt
    }

    /// Docker's formula: container CPU time over system CPU time, times the CPUs, in percent.
    public func cpuPercent(since previous: StatsSample?) -> Double {
        guard let previous, cpuTotal >= previous.cpuTotal, systemTotal > previous.systemTotal else { return 0 }
        return Double(cpuTotal - previous.cpuTotal) / Double(systemTotal - previous.systemTotal) * Double(max(onlineCPUs, 1)) * 100
    }
}

/// One line a server's game wrote (stdout or stderr), as the platform timestamped it.
public struct PlatformLogLine: Sendable, Equatable {
    /// Unix milliseconds.
    public let at: Int64
    /// 1 stdout, 2 stderr.
    public let stream: Int
    public let text: String

    public init(at: Int64, stream: Int, text: String) {
        self.at = at
        self.stream = stream
        self.text = text
    }
}

/// Platforms that can follow a running server's output (the Docker engine's log stream).
public protocol LogFollowing {
    /// Follows the output of the container's current run from `sinceMilliseconds` (or from the
    /// run's start when that is earlier) until the run ends or `keepGoing` turns false. `handler`
    /// gets the run's start (unix seconds) and each batch of lines as it arrives.
    func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws
}

/// Platforms that can type into a running server's console (its stdin).
public protocol ConsoleInput {
    /// Sends one line (a newline is added) to the game's stdin.
    func sendLine(_ id: String, _ line: String) throws
}
