public import PeonCore
public import PeonJSON

/// Where servers run: Docker on this host, or a cluster. One session per scheduler thread.
///
/// Everything that touches a node is here, so the scheduler never assumes it shares a disk or a
/// network stack with the servers: free ports, a server's files (prepared, updated, read,
/// removed) live on the node that holds it. Calls are idempotent where the platform allows, so a
/// job retried after a crash is safe. Errors are `PlatformError`, whatever the engine said.
public protocol ServerPlatform: AnyObject {
    // MARK: Workloads

    /// Makes sure the server's workload exists (adopting one a crashed attempt left); its reference.
    func ensure(_ spec: ServerSpec) throws(PlatformError) -> ServerRef
    func start(_ ref: ServerRef) throws(PlatformError)
    func stop(_ ref: ServerRef, graceSeconds: Int) throws(PlatformError)
    /// Removes the server's workloads and networks; files stay.
    func remove(_ uid: ServerUID) throws(PlatformError)
    /// Every workload Peon manages (optionally narrowed by more labels), running or not.
    func observe(labels: [String]) throws(PlatformError) -> [ObservedWorkload]
    /// One workload, with its exit code and OOM flag.
    func details(_ ref: ServerRef) throws(PlatformError) -> ObservedWorkload
    /// Follows events of Peon's servers until `handler` returns false or `keepGoing` turns false.
    func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws(PlatformError)
    /// Whether the platform answers at all (a failed job is retried later when it does not).
    func reachable() -> Bool

    /// Follows the output of the container's current run from `sinceMilliseconds` (or from the
    /// run's start when that is earlier) until the run ends or `keepGoing` turns false. `handler`
    /// gets the run's start (unix milliseconds: a stop and a start can fall within one second, and
    /// the runs must differ) and each batch of lines as it arrives.
    func followLogs(
        _ id: String, sinceMilliseconds: Int64, keepGoing: @escaping () -> Bool, handler: (Int64, [PlatformLogLine]) -> Void
    ) throws

    // MARK: Nodes

    /// Chooses and records the node of a new server (multi-node platforms; a placed server keeps
    /// its node); nil on one machine. Called before its ports are allocated and its files made.
    func place(_ uid: ServerUID, ports: Set<PortKey>, memoryBytes: Int64) throws(PlatformError) -> String?
    /// The cluster's nodes (multi-node platforms; empty on one machine).
    func clusterNodes() throws(PlatformError) -> [ClusterNode]

    /// Ports taken on the node that holds `uid` (or would, for a new server): published by any
    /// workload, Peon's or not, and the node's own listeners.
    func takenPorts(for uid: ServerUID) throws(PlatformError) -> Set<PortKey>

    // MARK: Node-local work, on the server's node

    /// The channel to the node that holds `uid` (placed already on multi-node platforms): every
    /// operation on its files, processes and network goes there (`NodeOperation`).
    func channel(for uid: ServerUID) throws(PlatformError) -> any NodeChannel
    /// The channels of every usable node (adoption reads every node's manifests).
    func channels() throws(PlatformError) -> [any NodeChannel]
    /// The running container of a workload, by its id on its node, and that node's channel
    /// (console, RCON, resource counters); `notFound` when it does not run.
    func runningContainer(_ ref: ServerRef) throws(PlatformError) -> (channel: any NodeChannel, container: String)
    /// Where game clients connect: the address of the node that holds the server (nil: this host).
    func address(of uid: ServerUID) throws(PlatformError) -> String?
    /// Makes every usable node's egress rules what the platform was configured with (Peon's rules,
    /// or none when egress is open): at the scheduler's start and now and then after, for nodes
    /// that rebooted or joined. Platforms also do it on a server's node before each start.
    func ensureEgress() throws(PlatformError)

    // The server's files and counters, on its node. Each has a default that sends the operation
    // down `channel(for:)`; a platform overrides one only to add its own bookkeeping.
    func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    func checkFiles(_ uid: ServerUID, plan: Plan) throws(PlatformError)
    func updateFiles(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError)
    func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError)
    func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])]
    func readConfig(_ uid: ServerUID) throws(PlatformError) -> [(String, String)]
    @discardableResult func removeFiles(_ uid: ServerUID) throws(PlatformError) -> Bool
    func sample(_ ref: ServerRef) throws(PlatformError) -> StatsSample

    // MARK: Images

    /// Facts of an image, nil when the engine does not have it.
    func imageFacts(_ image: String) throws(PlatformError) -> ImageFacts?
    /// Fetches an image, reporting the engine's progress line by line.
    func pull(_ image: String, progress: (String) -> Void) throws(PlatformError)
    /// The engine's id of an image, nil when it does not have it.
    func imageID(_ reference: String) throws(PlatformError) -> String?
    /// Whether a runtime image is where the servers' nodes get it (the engine has its tag; on a
    /// cluster, its registry too): nothing for `ensureImage` to do.
    func imageReady(_ image: RuntimeImage) throws(PlatformError) -> Bool
    /// Builds a runtime image unless the engine already has its tag (inputs unchanged), and puts it
    /// where the nodes pull it (a cluster's registry); true when it built. `progress` gets the
    /// builder's output line by line.
    func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws(PlatformError) -> Bool
    /// Removes Peon's runtime images carrying `labels` that no workload uses and whose reference
    /// is not in `keep`; returns how many went.
    func pruneImages(labels: [String], keep: Set<String>) throws(PlatformError) -> Int
}

extension ServerPlatform {
    public func reachable() -> Bool { true }

    public func address(of uid: ServerUID) throws(PlatformError) -> String? { nil }

    public func imageReady(_ image: RuntimeImage) throws(PlatformError) -> Bool { try imageID(image.reference) != nil }

    /// Makes the server's folders that are missing (for the game's user, uid 1000), installs the
    /// plan's actions when missing or with `reinstallActions`, and checks every bind source.
    public func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        try channel(for: uid).prepare(uid, BindSources(plan), actions: actions, reinstallActions: reinstallActions)
    }

    /// Removes the server's folder (eradicate), also after a destroy: the workload is gone, the
    /// folder stays on its node. Answers whether there was a folder (an agent that does not say
    /// counts as yes).
    @discardableResult
    public func removeFiles(_ uid: ServerUID) throws(PlatformError) -> Bool { try channel(for: uid).remove(uid) ?? true }

    /// Checks the bind sources again right before a start (nothing swapped a folder for a link).
    public func checkFiles(_ uid: ServerUID, plan: Plan) throws(PlatformError) { try channel(for: uid).check(uid, BindSources(plan)) }

    /// What an update does to the files of a stopped server: new actions, the mode's markers, wipes.
    public func updateFiles(_ uid: ServerUID, mode: UpdateMode, actions: [PlanFile]) throws(PlatformError) {
        try channel(for: uid).update(uid, mode: mode, actions: actions)
    }

    /// Writes `peon-server.json`, which makes the folder self-describing (adopted again later).
    public func writeManifest(_ uid: ServerUID, _ bytes: [UInt8]) throws(PlatformError) { try channel(for: uid).writeManifest(uid, bytes) }

    /// Every server folder's manifest on every usable node (for adoption).
    public func manifests() throws(PlatformError) -> [(ServerUID, [UInt8])] {
        var found: [(ServerUID, [UInt8])] = []
        for channel in try channels() { found += try channel.manifests() }
        return found
    }

    /// The visible small text files of the server's `config/` (shown in the server object).
    public func readConfig(_ uid: ServerUID) throws(PlatformError) -> [(String, String)] { try channel(for: uid).config(uid) }

    /// The `server_config` snapshot: what `readConfig` reads, with files still being written kept
    /// as `previous` showed them.
    public func configSnapshot(_ uid: ServerUID, keeping previous: JSON) throws(PlatformError) -> JSON {
        ConfigFile.snapshot(try channel(for: uid).configFiles(uid), keeping: previous)
    }

    /// One resource sample of a running workload, from its node.
    public func sample(_ ref: ServerRef) throws(PlatformError) -> StatsSample {
        let (channel, container) = try runningContainer(ref)
        return try channel.stats(container: container)
    }

    public func place(_ uid: ServerUID, ports: Set<PortKey>, memoryBytes: Int64) throws(PlatformError) -> String? { nil }

    public func clusterNodes() throws(PlatformError) -> [ClusterNode] { [] }

    /// Platforms that run no game on a real node (the fake) have no firewall to keep.
    public func ensureEgress() throws(PlatformError) {}
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
