import PeonArchive
public import PeonCore
public import PeonDocker
public import PeonJSON
public import PeonNode
public import PeonPlatform
import PeonSystem

/// Runs `ServerSpec`s as Docker containers, one bridge network per server, identified by labels.
///
/// One instance per thread (it owns a `DockerClient`). Every call is idempotent where it can be:
/// `ensure` adopts the container a crashed earlier attempt left behind instead of making a second.
public final class DockerPlatform: ServerPlatform {
    public let docker: DockerClient
    /// The host address game ports are published on.
    public let bindAddress: String

    /// This host's server folders (the node is this machine).
    public let files: LocalServerFiles
    /// The node's work: done in this process when it shares the games' host (files and network),
    /// else by Peon's node agent beside it (`node`: the compose.yaml deployment, whose scheduler
    /// runs in a container that reaches neither the games' networks nor their published ports).
    public let node: any NodeChannel
    /// What games may reach; nil leaves the host's firewall alone (tests of the platform alone).
    public let egress: GameEgress?

    /// `observe` is told each node operation's duration (the scheduler's metrics).
    public init(
        client: DockerClient, files: LocalServerFiles, bindAddress: String = "0.0.0.0", node: (any NodeChannel)? = nil,
        egress: GameEgress? = nil, observe: NodeObserver? = nil
    ) {
        docker = client
        self.files = files
        self.bindAddress = bindAddress
        self.egress = egress
        let node = node ?? LocalNode(files: files, gameHost: bindAddress, engine: { client })
        self.node = observe.map { ObservedChannel(node, observer: $0) } ?? node
    }

    /// The Engine API create body for a spec.
    public static func createBody(_ spec: ServerSpec, bindAddress: String) -> JSON {
        var exposed: [(String, JSON)] = []
        var bindings: [(String, JSON)] = []
        for key in spec.ports.flatMap(\.keys) where !exposed.contains(where: { $0.0 == key.description }) {
            exposed.append((key.description, .object([])))
            bindings.append((key.description, [["HostIp": .string(bindAddress), "HostPort": .string("\(key.port)")]]))
        }
        var host: [(String, JSON)] = [
            ("NetworkMode", .string(spec.name)),
            ("PortBindings", .object(bindings)),
            (
                "Mounts",
                .array(spec.mounts.map { ["Type": "bind", "Source": .string($0.source), "Target": .string($0.target), "ReadOnly": false] })
            ),
            // docker-init as PID 1 forwards SIGTERM to the entry script and reaps what games leave.
            ("Init", true),
            ("SecurityOpt", ["no-new-privileges:true"]),
            // Games run as uid 1000 and need no capability; a plan may add back the few allowed
            // (`Plan.allowedCapabilities`), e.g. NET_BIND_SERVICE for a port below 1024.
            ("CapDrop", ["ALL"]),
            ("CapAdd", .array(spec.capabilities.map(JSON.string))),
            ("PidsLimit", .number(Double(spec.limits.pids))),
            ("LogConfig", ["Type": "json-file", "Config": ["max-size": "10m", "max-file": "3"]]),
            // Peon's crash policy restarts servers, with back-off and a record of each crash.
            ("RestartPolicy", ["Name": "no"]),
        ]
        if let memory = spec.limits.memoryBytes {
            host.append(("Memory", .number(Double(memory))))
            host.append(("MemorySwap", .number(Double(memory))))
        }
        if let cpus = spec.limits.nanoCPUs { host.append(("NanoCpus", .number(Double(cpus)))) }
        return .object([
            ("Image", .string(spec.image)),
            ("Hostname", .string(spec.hostname)),
            ("User", .string(ServerSpec.user)),
            ("Env", .array(spec.environment.map(JSON.string))),
            ("Labels", .object(spec.labels.map { ($0.0, JSON.string($0.1)) })),
            // Stdin stays open for a console (and for servers such as freeciv that read it).
            ("OpenStdin", true),
            ("StdinOnce", false),
            ("ExposedPorts", .object(exposed)),
            ("HostConfig", .object(host)),
        ])
    }

    /// Makes sure the server's network and container exist; returns the container id.
    public func ensure(_ spec: ServerSpec) throws(PlatformError) -> ServerRef {
        try engine { () throws(DockerError) in try ensureContainer(spec) }
    }

    func ensureContainer(_ spec: ServerSpec) throws(DockerError) -> ServerRef {
        if let existing = try containers(of: spec.uid).first { return existing.ref }
        if try docker.listNetworks(labels: ["\(ServerSpec.serverLabel)=\(spec.uid)"]).isEmpty {
            do {
                // Named `peon…` so that Peon's egress rules (`peon+`) hold it from its first packet.
                _ = try docker.createNetwork(
                    name: spec.name, labels: spec.labels, options: [("com.docker.network.bridge.name", spec.bridgeName)])
            } catch .conflict {
                // Created meanwhile by an earlier attempt: fine.
            }
        }
        do {
            return ServerRef(try docker.createContainer(name: spec.name, config: Self.createBody(spec, bindAddress: bindAddress)))
        } catch .conflict(let message) {
            // The name exists: adopt it only if it is this server's; never touch a foreign container.
            guard let mine = try containers(of: spec.uid).first else { throw .conflict(message) }
            return mine.ref
        }
    }

    /// Starts the container once this host's egress rules are in place (one `iptables-restore`
    /// per family, a few milliseconds): a game never runs without them, even after a reboot
    /// or someone else's flush of the firewall.
    public func start(_ ref: ServerRef) throws(PlatformError) {
        if case .restricted(let allow) = egress { _ = try node.egress(allow: allow, defaultBridge: false) }
        try engine { () throws(DockerError) in try docker.startContainer(ref.raw) }
    }

    public func stop(_ ref: ServerRef, graceSeconds: Int) throws(PlatformError) {
        try engine { () throws(DockerError) in try docker.stopContainer(ref.raw, timeoutSeconds: graceSeconds) }
    }

    /// Removes the server's containers and network; its files stay.
    public func remove(_ uid: ServerUID) throws(PlatformError) {
        try engine { () throws(DockerError) in
            for container in try containers(of: uid) { try docker.removeContainer(container.ref.raw, force: true) }
            for network in try docker.listNetworks(labels: ["\(ServerSpec.serverLabel)=\(uid)"]) {
                if let id = network["Id"]?.stringValue { try docker.removeNetwork(id) }
            }
        }
    }

    /// Every container Peon manages (optionally narrowed by more labels), running or not.
    public func observe(labels: [String]) throws(PlatformError) -> [ObservedWorkload] {
        try engine { () throws(DockerError) in
            try docker.listContainers(labels: ["\(ServerSpec.managedLabel)=true"] + labels).map(Self.observed)
        }
    }

    public func containers(of uid: ServerUID) throws(DockerError) -> [ObservedWorkload] {
        try docker.listContainers(labels: ["\(ServerSpec.managedLabel)=true", "\(ServerSpec.serverLabel)=\(uid)"]).map(Self.observed)
    }

    /// Host ports published by any container on this engine, Peon's or not, and this host's
    /// listeners (the node is this machine, whatever server asks).
    public func takenPorts(for uid: ServerUID) throws(PlatformError) -> Set<PortKey> {
        try engine { () throws(DockerError) in try publishedPorts() }.union(try node.listeners())
    }

    /// Host ports published by any container on this engine, Peon's or not.
    public func publishedPorts() throws(DockerError) -> Set<PortKey> {
        var keys = Set<PortKey>()
        for container in try docker.listContainers(labels: [], all: false) {
            for port in container["Ports"]?.arrayValue ?? [] {
                guard let p = CheckedNumber.int(port["PublicPort"], in: 1...65535), let t = port["Type"]?.stringValue,
                    let transport = PortKey.Transport(rawValue: t)
                else { continue }
                keys.insert(PortKey(p, transport))
            }
        }
        return keys
    }

    /// Exit code and OOM flag need an inspect; the list gives the rest.
    public func details(_ ref: ServerRef) throws(PlatformError) -> ObservedWorkload {
        let info = try engine { () throws(DockerError) in try docker.inspectContainer(ref.raw) }
        let labels = Self.labels(info["Config"]?["Labels"])
        let state = info["State"]
        let code = CheckedNumber.int(state?["ExitCode"], in: Int(Int32.min)...Int(Int32.max)) ?? 0
        return ObservedWorkload(
            ref: ServerRef(info["Id"]?.stringValue ?? ref.raw),
            uid: labels[ServerSpec.serverLabel].flatMap { try? ServerUID(validating: $0) },
            state: Self.state(state?["Status"]?.stringValue ?? "unknown", exitCode: code, oom: state?["OOMKilled"]?.boolValue ?? false),
            labels: labels)
    }

    /// Docker's state words in Peon's terms.
    static func state(_ word: String, exitCode: Int = 0, oom: Bool = false) -> ObservedState {
        word == "exited" ? .exited(code: exitCode, oom: oom) : ObservedState(name: word)
    }

    /// Runs Engine API calls, translating Docker's errors at the seam: an unreachable socket is
    /// `unavailable` (the job waits), the engine's refusals keep its message.
    func engine<T>(_ body: () throws(DockerError) -> T) throws(PlatformError) -> T { try PlatformError.engine(body) }

    /// `CONTAINER_TYPE` and `VERSION` from the image's environment (PEON reads them with `docker exec`).
    public func imageFacts(_ image: String) throws(PlatformError) -> ImageFacts? {
        guard let env = try engine({ () throws(DockerError) in try docker.imageEnvironment(image) }) else { return nil }
        return ImageFacts(containerType: env["CONTAINER_TYPE"] ?? "unknown", buildVersion: env["VERSION"] ?? "unknown")
    }

    public func pull(_ image: String, progress: (String) -> Void) throws(PlatformError) {
        try engine { () throws(DockerError) in try pullImage(image, progress: progress) }
    }

    func pullImage(_ image: String, progress: (String) -> Void) throws(DockerError) {
        let colon = image.lastIndex(of: ":").flatMap { image[$0...].contains("/") ? nil : $0 }
        let name = colon.map { String(image[..<$0]) } ?? image
        let tag = colon.map { String(image[image.index(after: $0)...]) } ?? "latest"
        try docker.pullImage(name, tag: tag) { event in
            // `<layer>: Downloading 12.5MB/40MB`; the engine's progress bar itself is left out.
            guard let status = event["status"]?.stringValue else { return }
            let id = event["id"]?.stringValue.map { "\($0): " } ?? ""
            var detail = ""
            if case .number(let current) = event["progressDetail"]?["current"], case .number(let total) = event["progressDetail"]?["total"],
                total > 0
            {
                detail = " \(Int(current * 100 / total))%"
            }
            progress(id + status + detail)
        }
    }

    public func followEvents(keepGoing: @escaping () -> Bool, handler: (PlatformEvent) -> Bool) throws(PlatformError) {
        try engine { () throws(DockerError) in
            try docker.followEvents(labels: ["\(ServerSpec.managedLabel)=true"], keepGoing: keepGoing) { event in
                let attributes = event["Actor"]?["Attributes"]
                guard let uidText = attributes?[ServerSpec.serverLabel]?.stringValue, let uid = try? ServerUID(validating: uidText),
                    let kind = Self.eventKind(
                        event["Action"]?.stringValue ?? event["status"]?.stringValue ?? "",
                        exitCode: attributes?["exitCode"]?.stringValue.flatMap { Int($0) })
                else { return true }
                return handler(PlatformEvent(uid: uid, ref: ServerRef(event["Actor"]?["ID"]?.stringValue ?? ""), kind: kind))
            }
        }
    }

    /// Docker's event actions in Peon's terms; the rest (exec, attach, kill, ...) change nothing.
    static func eventKind(_ action: String, exitCode: Int?) -> PlatformEvent.Kind? {
        switch action {
        case "create": .created
        case "start": .started
        case "die": .exited(code: exitCode)
        case "oom": .oomKilled
        case "stop": .stopped
        case "destroy": .destroyed
        case "pause": .paused
        case "unpause": .unpaused
        case "restart": .restarted
        default: nil
        }
    }

    public func reachable() -> Bool {
        (try? docker.call("GET", "/_ping", timeoutMilliseconds: 2000)) != nil
    }

    /// Docker's label object as a dictionary.
    static func labels(_ value: JSON?) -> [String: String] {
        Dictionary((value?.objectValue ?? []).compactMap { k, v in v.stringValue.map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    static func observed(_ item: JSON) -> ObservedWorkload {
        let labels = Self.labels(item["Labels"])
        return ObservedWorkload(
            ref: ServerRef(item["Id"]?.stringValue ?? ""), uid: labels[ServerSpec.serverLabel].flatMap { try? ServerUID(validating: $0) },
            state: Self.state(item["State"]?.stringValue ?? "unknown"), labels: labels)
    }
}

@available(*, unavailable)
extension DockerPlatform: Sendable {}

extension DockerPlatform {
    public func imageID(_ reference: String) throws(PlatformError) -> String? {
        try engine { () throws(DockerError) in try docker.inspectImage(reference)?["Id"]?.stringValue }
    }

    public func ensureImage(_ image: RuntimeImage, progress: (String) -> Void) throws(PlatformError) -> Bool {
        try engine { () throws(DockerError) in try buildImage(image, progress: progress) }
    }

    func buildImage(_ image: RuntimeImage, progress: (String) -> Void) throws(DockerError) -> Bool {
        try RuntimeImageBuilder(docker: docker).build(image, progress: progress)
    }

    public func pruneImages(labels: [String], keep: Set<String>) throws(PlatformError) -> Int {
        try engine { () throws(DockerError) in try removeUnusedImages(labels: labels, keep: keep) }
    }

    func removeUnusedImages(labels: [String], keep: Set<String>) throws(DockerError) -> Int {
        let used = Set(try docker.listContainers(labels: [], all: true).compactMap { $0["ImageID"]?.stringValue })
        var removed = 0
        for image in try docker.listImages(labels: ["\(ServerSpec.managedLabel)=true", RuntimeImage.runtimeLabel] + labels) {
            guard let id = image["Id"]?.stringValue, !used.contains(id) else { continue }
            let tags = (image["RepoTags"]?.arrayValue ?? []).compactMap(\.stringValue)
            guard !tags.contains(where: keep.contains) else { continue }
            do {
                try docker.removeImage(id)
                removed += 1
            } catch .conflict, .notFound {
                // Taken by a container made meanwhile, or removed by someone else: leave it.
            }
        }
        return removed
    }
}

// Node-local work: this host is the node, so it runs in this process.
extension DockerPlatform {
    public func channel(for uid: ServerUID) throws(PlatformError) -> any NodeChannel { node }

    public func channels() throws(PlatformError) -> [any NodeChannel] { [node] }

    public func ensureEgress() throws(PlatformError) {
        if let egress { try node.apply(egress, defaultBridge: false) }
    }

    /// The folder as this host's engine mounts it: this process knows it (`PEON_HOST_DIR`), an
    /// agent beside it need not.
    public func prepareFiles(_ uid: ServerUID, plan: Plan, actions: [PlanFile], reinstallActions: Bool) throws(PlatformError)
        -> PreparedFiles
    {
        let prepared = try node.prepare(uid, BindSources(plan), actions: actions, reinstallActions: reinstallActions)
        return PreparedFiles(directory: files.hostDataDir + "/servers/" + uid.relativeDirectory, existingFiles: prepared.existingFiles)
    }

    public func runningContainer(_ ref: ServerRef) throws(PlatformError) -> (channel: any NodeChannel, container: String) {
        guard try details(ref).state == .running else { throw .notFound("container \(ref) does not run") }
        return (node, ref.raw)
    }
}
