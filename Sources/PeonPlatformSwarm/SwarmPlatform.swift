public import PeonCore
public import PeonDocker
public import PeonJSON
import PeonNode
public import PeonPlatform
import PeonPlatformDocker
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `ServerSpec`s as Docker Swarm services through a manager: one replica, pinned to the node
/// that holds the server's folder, ports published in host mode, no Swarm restart policy.
///
/// Which node holds a server is a node label Peon manages, `peon.server.<game>.<name>=true`, set
/// at placement (`place`) and read back from `GET /nodes`, so the cluster itself keeps it; the
/// service is constrained to `node.labels.peon.node==<node>`, a name Peon gives each node. Work on
/// a server's files runs on its node through Peon's node agent (`SwarmAgent`), a global service
/// the platform deploys itself: no SSH, no second cluster manager. A server whose node is down or
/// drained is `nodeDown` and is never re-created elsewhere without its data.
public final class SwarmPlatform: ServerPlatform {
    public let docker: DockerClient
    /// The data folder as every node's engine sees it (each node has its own disk there).
    public let dataRoot: String
    /// Peon's node agent: its image, port and keys, and what this session deployed.
    public let agent: SwarmAgent
    /// Where the nodes pull the runtime images Peon builds (`PEON_REGISTRY`).
    public let registry: String?
    /// Extra labels of everything Peon makes for a server (tests: `peon.test=<run>`).
    public let extraLabels: [(String, String)]
    public static let nodeLabel = "peon.node"

    /// What games may reach; nil leaves the nodes' firewalls alone (tests of the platform alone).
    public let egress: GameEgress?
    /// Told each node operation's duration (the scheduler's metrics).
    let observe: NodeObserver?

    public init(
        client: DockerClient, dataRoot: String, agent: SwarmAgent, registry: String? = nil, extraLabels: [(String, String)] = [],
        egress: GameEgress? = nil, observe: NodeObserver? = nil
    ) {
        docker = client
        self.egress = egress
        self.dataRoot = dataRoot
        self.registry = registry
        self.agent = agent
        self.extraLabels = extraLabels
        self.observe = observe
    }

    static func holdsLabel(_ uid: ServerUID) -> String { "peon.server.\(uid)" }

    // MARK: - Errors

    func engine<T>(_ body: () throws(DockerError) -> T) throws(PlatformError) -> T { try PlatformError.engine(body) }

    // MARK: - Nodes

    /// A Swarm node as Peon sees it.
    public struct Node: Sendable, Equatable {
        public let id: String
        public let name: String
        public let address: String
        public let ready: Bool
        public let availability: String
        public let memoryBytes: Int64
        public let nanoCPUs: Int64
        public let labels: [String: String]
        public let version: Int

        /// Usable for a server: ready and active (not drained or paused).
        public var usable: Bool { ready && availability == "active" }

        public func holds(_ uid: ServerUID) -> Bool { labels[SwarmPlatform.holdsLabel(uid)] == "true" }

        public var servers: [String] {
            labels.keys.filter { $0.hasPrefix("peon.server.") }.map { String($0.dropFirst("peon.server.".count)) }.sorted()
        }
    }

    /// The nodes; the agent is (re)deployed here when they changed (a node joined or left).
    public func clusterNodes() throws(PlatformError) -> [ClusterNode] {
        let nodes = try nameNodes(try nodes())
        try ensureAgent(nodes)
        return nodes.map { node in
            ClusterNode(
                name: node.name, address: node.address, state: node.ready ? "ready" : "down", availability: node.availability,
                memoryBytes: node.memoryBytes, nanoCPUs: node.nanoCPUs, labels: node.labels)
        }
    }

    public func nodes() throws(PlatformError) -> [Node] {
        try engine { () throws(DockerError) in try docker.listNodes() }.map(Self.node).sorted { $0.name < $1.name }
    }

    static func node(_ item: JSON) -> Node {
        let description = item["Description"]
        let labels = Dictionary(
            (item["Spec"]?["Labels"]?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } },
            uniquingKeysWith: { a, _ in a })
        return Node(
            id: item["ID"]?.stringValue ?? "", name: labels[nodeLabel] ?? description?["Hostname"]?.stringValue ?? "",
            address: address(item), ready: item["Status"]?["State"]?.stringValue == "ready",
            availability: item["Spec"]?["Availability"]?.stringValue ?? "unknown",
            memoryBytes: CheckedNumber.integer(description?["Resources"]?["MemoryBytes"], in: 0...Int64.max) ?? 0,
            nanoCPUs: CheckedNumber.integer(description?["Resources"]?["NanoCPUs"], in: 0...Int64.max) ?? 0, labels: labels,
            version: CheckedNumber.int(item["Version"]?["Index"], in: 0...Int.max) ?? 0)
    }

    /// The node's Swarm address; a manager's `Status.Addr` can read 0.0.0.0, its manager address
    /// (without the port) is the one then.
    static func address(_ item: JSON) -> String {
        let status = item["Status"]?["Addr"]?.stringValue ?? ""
        guard status.isEmpty || status == "0.0.0.0", let manager = item["ManagerStatus"]?["Addr"]?.stringValue,
            let colon = manager.lastIndex(of: ":")
        else { return status }
        return String(manager[..<colon])
    }

    /// Sets (or, with nil, removes) labels on a node, retrying when another writer got there first.
    func label(_ nodeID: String, _ changes: [(String, String?)]) throws(PlatformError) {
        for attempt in 0..<5 {
            let item = try engine { () throws(DockerError) in try docker.inspectNode(nodeID) }
            guard var spec = item["Spec"]?.objectValue else { throw .refused("node \(nodeID) has no spec") }
            var labels = item["Spec"]?["Labels"]?.objectValue ?? []
            for (key, value) in changes {
                labels.removeAll { $0.0 == key }
                if let value { labels.append((key, .string(value))) }
            }
            spec.removeAll { $0.0 == "Labels" }
            spec.append(("Labels", .object(labels)))
            let version = CheckedNumber.int(item["Version"]?["Index"], in: 0...Int.max) ?? 0
            do {
                try docker.updateNode(nodeID, version: version, spec: .object(spec))
                return
            } catch {
                if attempt == 4 { throw Self.mapped(error) }
                usleep(100_000)
            }
        }
    }

    static func mapped(_ error: DockerError) -> PlatformError { PlatformError(error) }

    /// Gives every node Peon's name label (`peon.node=<hostname>`) once: constraints use it.
    func nameNodes(_ nodes: [Node]) throws(PlatformError) -> [Node] {
        var changed = false
        for node in nodes where node.labels[Self.nodeLabel] == nil {
            try label(node.id, [(Self.nodeLabel, node.name)])
            changed = true
        }
        return changed ? try self.nodes() : nodes
    }

    /// The node that holds a server, if it has been placed.
    public func node(of uid: ServerUID) throws(PlatformError) -> String? {
        try nodes().first { $0.holds(uid) }?.name
    }

    func holder(_ uid: ServerUID) throws(PlatformError) -> Node {
        guard let node = try nodes().first(where: { $0.holds(uid) }) else { throw .notFound("server \(uid) is on no node") }
        return node
    }

    /// Chooses the node for a new server (`Placement.choose`) and records it on the node; a
    /// server already placed keeps its node.
    public func place(_ uid: ServerUID, ports: Set<PortKey>, memoryBytes: Int64) throws(PlatformError) -> String? {
        let all = try nameNodes(try nodes())
        if let node = all.first(where: { $0.holds(uid) }) { return node.name }
        let services = try engine { () throws(DockerError) in try docker.listServices(labels: ["\(ServerSpec.managedLabel)=true"]) }
        var candidates: [Placement.Node] = []
        for node in all {
            let mine = services.filter { Self.pinnedNode($0) == node.name }
            let reserved = mine.reduce(Int64(0)) {
                $0 + (CheckedNumber.integer($1["Spec"]?["TaskTemplate"]?["Resources"]?["Limits"]?["MemoryBytes"], in: 0...Int64.max) ?? 0)
            }
            candidates.append(
                Placement.Node(
                    name: node.name, ready: node.ready, active: node.availability == "active", memoryBytes: node.memoryBytes,
                    reservedBytes: reserved, servers: node.servers.count, takenPorts: Set(mine.flatMap(Self.publishedPorts))))
        }
        guard let chosen = Placement.choose(candidates, ports: ports, memoryBytes: memoryBytes),
            let node = all.first(where: { $0.name == chosen.name })
        else {
            throw .conflict("no active node has the ports \(ports.sorted().map(\.description).joined(separator: ", ")) free and the memory")
        }
        try label(node.id, [(Self.holdsLabel(uid), "true")])
        return node.name
    }

    static func pinnedNode(_ service: JSON) -> String? {
        let prefix = "node.labels.\(nodeLabel)=="
        return (service["Spec"]?["TaskTemplate"]?["Placement"]?["Constraints"]?.arrayValue ?? []).compactMap(\.stringValue)
            .first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    static func publishedPorts(_ service: JSON) -> [PortKey] {
        (service["Spec"]?["EndpointSpec"]?["Ports"]?.arrayValue ?? []).compactMap { port in
            guard let p = CheckedNumber.int(port["PublishedPort"], in: 1...65535),
                let t = port["Protocol"]?.stringValue.flatMap(PortKey.Transport.init(rawValue:))
            else { return nil }
            return PortKey(p, t)
        }
    }

    // MARK: - Services

    /// The Engine API service spec of a server: one replica (0 until started), pinned to `node`.
    public static func serviceSpec(_ spec: ServerSpec, node: String, replicas: Int, forceUpdate: Int = 0, graceSeconds: Int) -> JSON {
        var ports: [JSON] = []
        for key in spec.ports.flatMap(\.keys)
        where !ports.contains(where: { $0["PublishedPort"] == .int(key.port) && $0["Protocol"] == .string(key.transport.rawValue) }) {
            // Host mode: the port opens on the server's node only, game clients keep its address (no routing mesh).
            ports.append([
                "Protocol": .string(key.transport.rawValue), "TargetPort": .int(key.port), "PublishedPort": .int(key.port),
                "PublishMode": "host",
            ])
        }
        var limits: [(String, JSON)] = [("Pids", .number(Double(spec.limits.pids)))]
        if let memory = spec.limits.memoryBytes { limits.append(("MemoryBytes", .number(Double(memory)))) }
        if let cpus = spec.limits.nanoCPUs { limits.append(("NanoCPUs", .number(Double(cpus)))) }
        let labels = JSON.object(spec.labels.map { ($0.0, JSON.string($0.1)) })
        return .object([
            ("Name", .string(serviceName(spec.uid))),
            ("Labels", labels),
            (
                "TaskTemplate",
                .object([
                    (
                        "ContainerSpec",
                        .object([
                            ("Image", .string(spec.image)),
                            ("Hostname", .string(spec.hostname)),
                            ("User", .string(ServerSpec.user)),
                            ("Env", .array(spec.environment.map(JSON.string))),
                            ("Labels", labels),
                            (
                                "Mounts",
                                .array(
                                    spec.mounts.map {
                                        ["Type": "bind", "Source": .string($0.source), "Target": .string($0.target), "ReadOnly": false]
                                    })
                            ),
                            ("Init", true),
                            ("OpenStdin", true),
                            ("CapabilityDrop", ["ALL"]),
                            ("CapabilityAdd", .array(spec.capabilities.map(JSON.string))),
                            ("StopGracePeriod", .number(Double(graceSeconds) * 1e9)),
                        ])
                    ),
                    ("Resources", ["Limits": .object(limits)]),
                    // Peon's crash policy decides about restarts, as on Docker.
                    ("RestartPolicy", ["Condition": "none"]),
                    ("Placement", ["Constraints": [.string("node.labels.\(nodeLabel)==\(node)")]]),
                    ("LogDriver", ["Name": "json-file", "Options": ["max-size": "10m", "max-file": "3"]]),
                    ("ForceUpdate", .int(forceUpdate)),
                ])
            ),
            ("Mode", ["Replicated": ["Replicas": .int(replicas)]]),
            // dnsrr: no virtual IP (IPVS), which host-mode game ports do not need.
            ("EndpointSpec", ["Mode": "dnsrr", "Ports": .array(ports)]),
        ])
    }

    /// Swarm names a service like a DNS label: `peon-<game>-<name>`, other characters as `-`, at
    /// most 63 bytes. Peon finds services by label, so the name only has to be free.
    public static func serviceName(_ uid: ServerUID) -> String {
        let text = "peon-\(uid.game.rawValue)-\(uid.name)".lowercased().map { c -> Character in
            c.isASCII && (c.isLetter || c.isNumber) ? c : "-"
        }
        return String(String(text).prefix(63).reversed().drop { $0 == "-" }.reversed())
    }

    func services(of uid: ServerUID) throws(PlatformError) -> [JSON] {
        try engine { () throws(DockerError) in
            try docker.listServices(labels: ["\(ServerSpec.managedLabel)=true", "\(ServerSpec.serverLabel)=\(uid)"])
        }
    }

    public func ensure(_ spec: ServerSpec) throws(PlatformError) -> ServerRef {
        if let existing = try services(of: spec.uid).first, let id = existing["ID"]?.stringValue { return ServerRef(id) }
        let node = try holder(spec.uid)
        do {
            return ServerRef(
                try docker.createService(Self.serviceSpec(spec, node: node.name, replicas: 0, graceSeconds: spec.stopGraceSeconds)))
        } catch .conflict(let message) {
            guard let mine = try services(of: spec.uid).first?["ID"]?.stringValue else { throw .conflict(message) }
            return ServerRef(mine)
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Changes replicas (and, to start again after an exit, bumps `ForceUpdate` for a new task).
    func scale(_ ref: ServerRef, replicas: Int, restart: Bool) throws(PlatformError) {
        for attempt in 0..<5 {
            let service = try engine { () throws(DockerError) in try docker.inspectService(ref.raw) }
            guard var spec = service["Spec"]?.objectValue, var template = service["Spec"]?["TaskTemplate"]?.objectValue else {
                throw .refused("service \(ref) has no spec")
            }
            if restart {
                let force = CheckedNumber.int(service["Spec"]?["TaskTemplate"]?["ForceUpdate"], in: 0...Int.max) ?? 0
                template.removeAll { $0.0 == "ForceUpdate" }
                template.append(("ForceUpdate", .int(force + 1)))
            }
            spec.removeAll { $0.0 == "TaskTemplate" || $0.0 == "Mode" }
            spec.append(("TaskTemplate", .object(template)))
            spec.append(("Mode", ["Replicated": ["Replicas": .int(replicas)]]))
            let version = CheckedNumber.int(service["Version"]?["Index"], in: 0...Int.max) ?? 0
            do {
                try docker.updateService(ref.raw, version: version, spec: .object(spec))
                return
            } catch {
                if attempt == 4 { throw Self.mapped(error) }
                usleep(100_000)
            }
        }
    }

    public func start(_ ref: ServerRef) throws(PlatformError) {
        let service = try engine { () throws(DockerError) in try docker.inspectService(ref.raw) }
        var holder: Node?
        if let node = Self.pinnedNode(service) { holder = try nodes().first(where: { $0.name == node }) }
        if let holder, !holder.usable {
            throw .unavailable("node \(holder.name) is \(holder.ready ? holder.availability : "down")")
        }
        let before = try latestTask(ref)
        if before?.state == .running { return }
        // The node's egress rules first (its agent, a few milliseconds): a game never runs without them.
        if case .restricted(let allow) = egress, let holder { try channel(holder).egress(allow: allow, defaultBridge: true) }
        let previous = before?.task["ID"]?.stringValue
        try scale(ref, replicas: 1, restart: true)
        // Swarm schedules asynchronously: wait for the new task to run or end.
        let started = Monotonic.seconds()
        while Monotonic.seconds() - started < 60 {
            if let task = try latestTask(ref), task.task["ID"]?.stringValue != previous,
                task.state == .running || task.state.isStopped
                    || task.state == .dead
            {
                return
            }
            Self.pause(since: started)
        }
        throw .unavailable("service \(ref) did not start within 60 s")
    }

    /// Between polls of a task: 25 ms for the first 3 s (a task usually starts or ends within
    /// them), then 100 ms.
    static func pause(since started: Double) {
        Monotonic.sleep(Monotonic.seconds() - started < 3 ? 0.025 : 0.1)
    }

    public func stop(_ ref: ServerRef, graceSeconds: Int) throws(PlatformError) {
        let running = try latestTask(ref).map { $0.state == .running || $0.state == .created } ?? false
        // A task stops with the grace it was made with: no grace means a kill on its node, once
        // Swarm no longer wants it (so its end is a shutdown, not a failure to restart).
        let victim = graceSeconds <= 0 && running ? try? runningContainer(ref) : nil
        try scale(ref, replicas: 0, restart: false)
        if let victim { try? victim.channel.kill(container: victim.container) }
        guard running else { return }
        // The task gets the service's stop grace (SIGTERM, then SIGKILL); wait for it to end.
        try waitFor(ref, seconds: Double(graceSeconds) + 10) { $0 != .running && $0 != .created }
    }

    func waitFor(_ ref: ServerRef, seconds: Double, _ condition: (ObservedState) -> Bool) throws(PlatformError) {
        let started = Monotonic.seconds()
        while Monotonic.seconds() - started < seconds {
            if condition(try details(ref).state) { return }
            Self.pause(since: started)
        }
        throw .unavailable("service \(ref) did not settle within \(Int(seconds)) s")
    }

    public func remove(_ uid: ServerUID) throws(PlatformError) {
        for service in try services(of: uid) {
            guard let id = service["ID"]?.stringValue else { continue }
            do {
                try docker.removeService(id)
            } catch .notFound {
            } catch {
                throw Self.mapped(error)
            }
        }
    }

    /// The newest task of a service and its state in Peon's terms.
    func latestTask(_ ref: ServerRef) throws(PlatformError) -> (task: JSON, state: ObservedState)? {
        let tasks = try engine { () throws(DockerError) in try docker.listTasks(filters: [("service", [ref.raw])]) }
        guard let task = tasks.max(by: { Self.taskOrder($0) < Self.taskOrder($1) }) else { return nil }
        return (task, Self.state(task))
    }

    /// Newest by creation time (`2026-11-29T21:05:38.1234Z`, fraction padded so text order is time
    /// order); an old task's version index moves when it is shut down, so it cannot order tasks.
    static func taskOrder(_ task: JSON) -> String {
        let text = task["CreatedAt"]?.stringValue ?? ""
        let parts = text.dropLast(text.hasSuffix("Z") ? 1 : 0).split(separator: ".", maxSplits: 1)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        return String(parts.first ?? "") + "." + fraction + String(repeating: "0", count: max(0, 9 - fraction.count))
    }

    /// A service with no task: Swarm removes a scaled-down service's tasks once they stopped, so
    /// one that was started (a start bumps `ForceUpdate`) and is at 0 replicas has exited.
    static func stateWithoutTasks(_ service: JSON) -> ObservedState {
        let started = (CheckedNumber.int(service["Spec"]?["TaskTemplate"]?["ForceUpdate"], in: 0...Int.max) ?? 0) > 0
        let replicas = CheckedNumber.int(service["Spec"]?["Mode"]?["Replicated"]?["Replicas"], in: 0...Int.max) ?? 0
        return started && replicas == 0 ? .exited(code: 0, oom: false) : .created
    }

    /// Swarm's task states in Peon's terms.
    static func state(_ task: JSON) -> ObservedState {
        let code = CheckedNumber.int(task["Status"]?["ContainerStatus"]?["ExitCode"], in: Int(Int32.min)...Int(Int32.max)) ?? 0
        switch task["Status"]?["State"]?.stringValue ?? "" {
        case "new", "pending", "assigned", "accepted", "preparing", "ready", "starting": return .created
        case "running": return .running
        case "complete", "shutdown": return .exited(code: code, oom: false)
        case "failed": return .exited(code: code == 0 ? -1 : code, oom: false)
        case "rejected": return .dead
        case "orphaned": return .nodeDown
        default: return .unknown
        }
    }

    public func details(_ ref: ServerRef) throws(PlatformError) -> ObservedWorkload {
        let service = try engine { () throws(DockerError) in try docker.inspectService(ref.raw) }
        return try workload(service, nodes: try nodes())
    }

    func workload(_ service: JSON, nodes: [Node]) throws(PlatformError) -> ObservedWorkload {
        let ref = ServerRef(service["ID"]?.stringValue ?? "")
        let labels = Dictionary(
            (service["Spec"]?["Labels"]?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } },
            uniquingKeysWith: { a, _ in a })
        let node = Self.pinnedNode(service)
        var state = try latestTask(ref)?.state ?? Self.stateWithoutTasks(service)
        if let node, let holder = nodes.first(where: { $0.name == node }), !holder.usable, state != .running { state = .nodeDown }
        if nodes.first(where: { $0.name == node }).map({ !$0.ready }) ?? false { state = .nodeDown }
        return ObservedWorkload(
            ref: ref, uid: labels[ServerSpec.serverLabel].flatMap { try? ServerUID(validating: $0) }, state: state, labels: labels,
            node: node)
    }

    public func observe(labels: [String]) throws(PlatformError) -> [ObservedWorkload] {
        let all = try nodes()
        var found: [ObservedWorkload] = []
        for service in try engine({ () throws(DockerError) in try docker.listServices(labels: ["\(ServerSpec.managedLabel)=true"] + labels)
        }) {
            found.append(try workload(service, nodes: all))
        }
        return found
    }

    /// Swarm's manager streams no task exits from other nodes: the tasks are polled once a second
    /// and a change of a server's newest task becomes an event.
    public func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws(PlatformError) {
        var last: [String: (String, ObservedState)] = [:]
        var first = true
        while keepGoing() {
            for workload in try observe(labels: []) {
                guard let uid = workload.uid else { continue }
                let task = try latestTask(workload.ref)
                let taskID = task?.task["ID"]?.stringValue ?? ""
                let state = task?.state ?? .created
                defer { last[workload.ref.raw] = (taskID, state) }
                guard !first, let previous = last[workload.ref.raw], previous.0 != taskID || previous.1 != state else { continue }
                let kind: PlatformEvent.Kind? =
                    switch state {
                    case .running: .started
                    case .exited(let code, _): .exited(code: code)
                    case .dead: .exited(code: -1)
                    default: nil
                    }
                if let kind, !handler(PlatformEvent(uid: uid, ref: workload.ref, kind: kind)) { return }
            }
            first = false
            usleep(1_000_000)
        }
    }

    public func reachable() -> Bool {
        (try? docker.swarm()) != nil
    }

    /// Ports taken on the server's node: published in host mode by services pinned there, and the
    /// node's own listeners (its agent reads the node's /proc/net). Others' ports are held even
    /// while stopped (their next start needs them); the server's own only while it runs, as on
    /// Docker, so a start does not flee its own ports.
    public func takenPorts(for uid: ServerUID) throws(PlatformError) -> Set<PortKey> {
        guard let holder = try nodes().first(where: { $0.holds(uid) }) else { return [] }
        let services = try engine { () throws(DockerError) in try docker.listServices(labels: []) }
        var taken = Set<PortKey>()
        var own = Set<PortKey>()
        var ownRunning = false
        for service in services where Self.pinnedNode(service) == holder.name {
            if service["Spec"]?["Labels"]?[ServerSpec.serverLabel]?.stringValue == uid.description {
                own.formUnion(Self.publishedPorts(service))
                guard let id = service["ID"]?.stringValue, try latestTask(ServerRef(id))?.state == .running else { continue }
                ownRunning = true
            }
            taken.formUnion(Self.publishedPorts(service))
        }
        // A stopped server's own ports may still show as listening for a moment after its task ended.
        return taken.union(try channel(holder).listeners().subtracting(ownRunning ? [] : own))
    }

    // MARK: - Images

    public func imageFacts(_ image: String) throws(PlatformError) -> ImageFacts? {
        guard let env = try engine({ () throws(DockerError) in try docker.imageEnvironment(image) }) else { return nil }
        return ImageFacts(containerType: env["CONTAINER_TYPE"] ?? "unknown", buildVersion: env["VERSION"] ?? "unknown")
    }

    /// Images reach nodes through a registry (each node pulls when its task starts); the manager pulls to learn the facts.
    public func pull(_ image: String, progress: (String) -> Void) throws(PlatformError) {
        let colon = image.lastIndex(of: ":").flatMap { image[$0...].contains("/") ? nil : $0 }
        let name = colon.map { String(image[..<$0]) } ?? image
        let tag = colon.map { String(image[image.index(after: $0)...]) } ?? "latest"
        try engine { () throws(DockerError) in try docker.pullImage(name, tag: tag) { _ in } }
        progress("\(image): pulled on the manager")
    }

    public func imageID(_ reference: String) throws(PlatformError) -> String? {
        try engine { () throws(DockerError) in try docker.inspectImage(reference)?["Id"]?.stringValue }
    }

    /// A runtime image is ready when the manager has it and the registry the nodes pull from too.
    public func imageReady(_ image: RuntimeImage) throws(PlatformError) -> Bool {
        guard image.build != nil else { return try imageID(image.reference) != nil }
        guard try imageID(image.reference) != nil else { return false }
        return try engine { () throws(DockerError) in try docker.registryHas(image.reference) }
    }

    /// Built on the manager as on Docker (`RuntimeImageBuilder`), then pushed to `PEON_REGISTRY`,
    /// from which each node pulls it when its task starts. Without a registry the nodes could not
    /// get it: refused with what to set.
    public func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws(PlatformError) -> Bool {
        guard image.build != nil else { return false }
        guard let registry, image.reference.hasPrefix(registry + "/") else {
            throw .refused(
                "\(image.reference) is built by Peon, and on Swarm every node must pull it: set PEON_REGISTRY to a registry the nodes reach"
            )
        }
        let built = try engine { () throws(DockerError) in try RuntimeImageBuilder(docker: docker).build(image, progress: progress) }
        guard !(try engine { () throws(DockerError) in try docker.registryHas(image.reference) }) else { return built }
        // Runtime references always end in `:<inputs hash>` (RuntimeImage), after the registry's port.
        let colon = image.reference.lastIndex(of: ":") ?? image.reference.endIndex
        let tag = colon < image.reference.endIndex ? String(image.reference[image.reference.index(after: colon)...]) : "latest"
        progress("pushing \(image.reference)")
        try engine { () throws(DockerError) in try docker.pushImage(String(image.reference[..<colon]), tag: tag) }
        progress("pushed \(image.reference) for the nodes")
        return built
    }

    public func pruneImages(labels: [String], keep: Set<String>) throws(PlatformError) -> Int { 0 }
}

@available(*, unavailable)
extension SwarmPlatform: Sendable {}
