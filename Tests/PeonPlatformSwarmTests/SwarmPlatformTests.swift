import PeonCore
import PeonDocker
import PeonJSON
import PeonNode
import PeonNodeAgent
import PeonPlatform
import PeonSystem
import PeonTLS
import PeonTestSupport
import Synchronization
import Testing

@testable import PeonPlatformSwarm

#if canImport(Glibc)
    import Glibc
#endif

/// The Swarm platform on a real three-node swarm (`scripts/swarm-test.sh up peon-test-game:latest`,
/// which `make test` runs): the platform contract, placement over the nodes, and the game
/// answering on its node's address from another node's namespace.
@Suite(.serialized) struct SwarmPlatformTests {
    let run = "s\(getpid())x\(UInt16.random(in: 0...UInt16.max))"
    static let environment = ProcessEnvironment.read([
        "PEON_SWARM_MANAGER", "PEON_SWARM_DATA", "PEON_SWARM_ROOT", "PEON_SWARM_AGENT_IMAGE", "PEON_SWARM_NODE_SOCKET",
    ])
    /// This test process's agent keys (the scheduler keeps its own in the store).
    static let credentials = try! AgentCredentials.make()

    func platform(credentials: AgentCredentials = Self.credentials) throws -> SwarmPlatform {
        guard let socket = Self.environment["PEON_SWARM_MANAGER"], access(socket, R_OK | W_OK) == 0 else {
            Issue.record("no Swarm manager socket: run `scripts/swarm-test.sh up peon-test-game:latest` and set PEON_SWARM_MANAGER")
            throw PlatformError.unavailable("no swarm")
        }
        return SwarmPlatform(
            client: try DockerClient(socketPath: socket), dataRoot: Self.environment["PEON_SWARM_DATA"] ?? "/srv/peon",
            agent: try Self.agent(credentials), extraLabels: [("peon.test", run)])
    }

    static func agent(_ credentials: AgentCredentials) throws -> SwarmAgent {
        try SwarmAgent(
            port: 7380, image: environment["PEON_SWARM_AGENT_IMAGE"] ?? "peon:test",
            nodeSocket: environment["PEON_SWARM_NODE_SOCKET"] ?? "/var/run/docker.sock", credentials: credentials)
    }

    /// A node's data folder as this process reaches it (`scripts/swarm-test.sh`: `<root>/n<i>/data`).
    static func data(of node: SwarmPlatform.Node) -> String? {
        guard let root = environment["PEON_SWARM_ROOT"], let i = node.name.last else { return nil }
        return "\(root)/n\(i)/data"
    }

    func plan() throws -> Plan {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try Files.read(root + "/plans/peontest/plan.json", limit: 1 << 20)
        return try Plan(document: JSON.parse(text), expectedGameUID: GameUID(validating: "peontest"))
    }

    func spec(_ platform: SwarmPlatform, _ uid: ServerUID, port: Int) throws -> ServerSpec {
        let plan = try plan()
        let settings = try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "Swarm", "PASSWORD": "pw"])
        let files = try platform.prepareFiles(uid, plan: plan, actions: [], reinstallActions: false)
        return ServerSpec(
            uid: uid, plan: plan, settings: settings, ports: [PortSpec(name: "PORT", port: port, proto: .both)], directory: files.directory,
            existingFiles: files.existingFiles, limits: ResourceLimits(memoryBytes: 64 << 20, pids: 128), extraLabels: [("peon.test", run)],
            image: "peon-test-game:latest")
    }

    @Test func keepsThePlatformContract() throws {
        let platform = try platform()
        let plan = try plan()
        let uid = try ServerUID(validating: "peontest.\(run)k")
        _ = try platform.place(uid, ports: [PortKey(42000, .tcp)], memoryBytes: 64 << 20)
        let spec = try spec(platform, uid, port: 42000)
        #expect(PlatformContract(platform: platform, spec: spec, plan: plan, patience: 30).run() == [])
    }

    /// Three servers on three equal nodes land on three nodes, publish on their node only, keep
    /// their files there, and a drained node's server is reported `nodeDown`.
    @Test func placesServersOnEveryNodeAndReportsADrainedOne() throws {
        let platform = try platform()
        let uids = try (1...3).map { try ServerUID(validating: "peontest.\(run)n\($0)") }
        defer {
            for uid in uids {
                try? platform.remove(uid)
                _ = try? platform.removeFiles(uid)
            }
        }
        var placed: [String] = []
        for uid in uids { placed.append(try #require(try platform.place(uid, ports: [PortKey(42100, .tcp)], memoryBytes: 64 << 20))) }
        #expect(Set(placed).count == 3, "one server per node: \(placed)")
        var refs: [ServerRef] = []
        for uid in uids {
            let ref = try platform.ensure(try spec(platform, uid, port: 42100))
            try platform.start(ref)
            refs.append(ref)
        }
        let nodes = try platform.nodes()
        for (uid, ref) in zip(uids, refs) {
            let workload = try platform.details(ref)
            #expect(workload.state == .running && workload.uid == uid)
            let address = try #require(nodes.first { $0.name == workload.node }?.address)
            #expect(echo(from: "peonsw-n1", host: address, port: 42100) == "ping", "\(uid) answers on \(address)")
            // Its node's agent asks its node's engine: Docker's stats, on any node.
            let sample = try platform.sample(ref)
            #expect(sample.memory > 0 && sample.memoryLimit == 64 << 20 && sample.cpuTotal > 0, "\(sample)")
            #expect(sample.systemTotal > 0 && sample.onlineCPUs >= 1 && sample.startedAt > 0, "\(sample)")
        }
        // Each node's data path is its own disk: a config file written by one game is read on its node only.
        #expect(Set(try uids.map { try platform.readConfig($0).first { $0.0 == "server_name" }?.1 }) == ["Swarm"])
        // Drain the first server's node: it reports nodeDown, and a start is refused, not moved.
        let drained = try #require(nodes.first { $0.name == placed[0] })
        try drain(platform, drained, "drain")
        defer { try? drain(platform, drained, "active") }
        try platform.stop(refs[0], graceSeconds: 2)
        #expect(try platform.details(refs[0]).state == .nodeDown)
        #expect(throws: PlatformError.self) { try platform.start(refs[0]) }
    }

    func drain(_ platform: SwarmPlatform, _ node: SwarmPlatform.Node, _ availability: String) throws {
        let item = try platform.docker.inspectNode(node.id)
        var spec = item["Spec"]?.objectValue ?? []
        spec.removeAll { $0.0 == "Availability" }
        spec.append(("Availability", .string(availability)))
        try platform.docker.updateNode(
            node.id, version: CheckedNumber.int(item["Version"]?["Index"], in: 0...Int.max) ?? 0, spec: .object(spec))
    }
}

/// Connects from inside a node's network namespace (`ip netns exec`, busybox nc) and sends a line; what comes back.
func echo(from namespace: String, host: String, port: Int) -> String? {
    for _ in 0..<50 {
        if run([
            "/usr/sbin/ip", "netns", "exec", namespace, "/usr/bin/busybox", "sh", "-c", "echo ping | timeout 3 busybox nc \(host) \(port)",
        ])
        .split(separator: "\n").first == "ping" {
            return "ping"
        }
        usleep(200_000)
    }
    return nil
}

/// Runs a command and returns its standard output.
func run(_ argv: [String]) -> String {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { return "" }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_addclose(&actions, fds[0])
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for arg in cArgs { free(arg) } }
    let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
    close(fds[1])
    defer { close(fds[0]) }
    guard spawned == 0 else { return "" }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fds[0], &buffer, buffer.count)
        if n <= 0 { break }
        output += buffer[0..<n]
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return String(decoding: output, as: UTF8.self)
}

/// The service spec and Swarm's task states, without a swarm.
@Suite struct SwarmServiceSpecTests {
    func plan() throws -> Plan {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        return try Plan(
            document: JSON.parse(try Files.read(root + "/plans/peontest/plan.json", limit: 1 << 20)),
            expectedGameUID: GameUID(validating: "peontest"))
    }

    @Test func aServerIsOneHardenedReplicaPinnedToItsNodeWithHostModePorts() throws {
        let uid = try ServerUID(validating: "peontest.alpha")
        let spec = ServerSpec(
            uid: uid, plan: try plan(), settings: [("SERVER_NAME", "a")], ports: [PortSpec(name: "PORT", port: 27960, proto: .both)],
            directory: "/srv/peon/servers/peontest/alpha", limits: ResourceLimits(memoryBytes: 64 << 20, nanoCPUs: 500_000_000, pids: 128))
        let json = SwarmPlatform.serviceSpec(spec, node: "n2", replicas: 1, graceSeconds: 30)
        let template = json["TaskTemplate"]
        let container = template?["ContainerSpec"]
        #expect(json["Name"] == "peon-peontest-alpha" && json["Mode"]?["Replicated"]?["Replicas"] == 1)
        #expect(container?["User"] == "1000:1000" && container?["Init"] == true && container?["CapabilityDrop"] == ["ALL"])
        #expect(container?["StopGracePeriod"] == .number(30e9))
        #expect(template?["RestartPolicy"]?["Condition"] == "none")
        #expect(template?["Placement"]?["Constraints"] == ["node.labels.peon.node==n2"])
        #expect(
            template?["Resources"]?["Limits"]?["MemoryBytes"] == .number(Double(64 << 20))
                && template?["Resources"]?["Limits"]?["Pids"] == 128)
        let ports = json["EndpointSpec"]?["Ports"]?.arrayValue ?? []
        #expect(json["EndpointSpec"]?["Mode"] == "dnsrr" && ports.count == 2 && ports.allSatisfy { $0["PublishMode"] == "host" })
    }

    @Test func serviceNamesAreDNSLabels() throws {
        #expect(SwarmPlatform.serviceName(try ServerUID(validating: "peontest.my_world")) == "peon-peontest-my-world")
        let long = try ServerUID(validating: "peontest." + String(repeating: "a", count: 32))
        #expect(SwarmPlatform.serviceName(long).utf8.count <= 63)
    }
}

/// Peon's node agent on the real swarm: the node contract through every node's agent, callers
/// without Peon's keys refused, and the scheduler's (re)deploy changes the service only when
/// something that shapes it changed. (In the serialized suite: a key rotation must not run beside
/// the other tests.)
extension SwarmPlatformTests {
    /// The agent's service as the manager has it: its id and version.
    func service(_ platform: SwarmPlatform) throws -> (id: String, version: Int) {
        let found = try platform.docker.listServices(labels: ["\(SwarmAgent.label)=true"])
        #expect(found.count == 1, "one agent service")
        let service = try #require(found.first)
        return (service["ID"]?.stringValue ?? "", CheckedNumber.int(service["Version"]?["Index"], in: 0...Int.max) ?? 0)
    }

    /// The node's listeners through its agent with `credentials`, once the agent answers (it may be
    /// restarting after a deploy); nil when it refuses.
    func listeners(_ node: SwarmPlatform.Node, _ credentials: AgentCredentials, patience: Int = 300) throws -> Set<PortKey>? {
        let channel = AgentChannel(host: node.address, port: 7380, context: try Self.agent(credentials).keys.context)
        for _ in 0..<patience {
            if let found = try? channel.listeners() { return found }
            usleep(100_000)
        }
        return nil
    }

    @Test func everyNodesAgentKeepsTheNodeContract() throws {
        let platform = try platform()
        try platform.ensureAgent(try platform.nodes())
        for node in try platform.nodes() {
            let data = try #require(Self.data(of: node))
            #expect(
                NodeContract(node: try platform.channel(node), data: data, run: run + node.name.suffix(1)).check() == [], "\(node.name)")
        }
    }

    @Test func refusesCallersWithoutPeonsKeys() throws {
        let platform = try platform()
        try platform.ensureAgent(try platform.nodes())
        for node in try platform.nodes() {
            // With Peon's keys: the node's listeners, the agent's own port among them.
            #expect(try listeners(node, Self.credentials)?.contains(PortKey(7380, .tcp)) == true, "\(node.name)")
            // Another Peon's keys (another CA): the handshake fails, nothing runs.
            #expect(try listeners(node, try AgentCredentials.make(), patience: 1) == nil)
            // The agent's own certificate as a client's: refused too.
            let stolen = AgentCredentials(
                authority: Self.credentials.authority, agent: Self.credentials.agent, scheduler: Self.credentials.agent)
            #expect(try listeners(node, stolen, patience: 1) == nil)
        }
    }

    /// The agent killed in the middle of a backup's stream and of a restore's: the operation fails
    /// cleanly (`unavailable`), nothing half-written stays on the node, the live folders are as
    /// they were, and once Swarm restarted the agent the same operations succeed.
    @Test func anAgentKilledMidStreamLeavesNothingHalfDone() throws {
        let platform = try platform()
        let uid = try ServerUID(validating: "peontest.\(run)k")
        defer { _ = try? platform.removeFiles(uid) }
        let nodeName = try #require(try platform.place(uid, ports: [PortKey(42300, .tcp)], memoryBytes: 64 << 20))
        let node = try #require(try platform.nodes().first { $0.name == nodeName })
        let channel = try platform.channel(for: uid)
        _ = try channel.prepare(uid, BindSources(volumes: ["config", "user"], files: []), actions: [], reinstallActions: false)
        let home = try #require(Self.data(of: node)) + "/servers/peontest/\(run)k"
        // 256 MiB that does not compress: the stream takes a few seconds.
        let big = open(home + "/user/world.bin", O_WRONLY | O_CREAT, 0o644)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<256 {
            for i in stride(from: 0, to: chunk.count, by: 8) {
                withUnsafeBytes(of: rng.next() as UInt64) { chunk.replaceSubrange(i..<i + 8, with: $0) }
            }
            _ = chunk.withUnsafeBytes { write(big, $0.baseAddress, $0.count) }
        }
        close(big)
        try Files.write(home + "/config/server_name", Array("kept".utf8))
        let scratch = "/tmp/peon-swarm-kill-\(run)"
        defer {
            unlink(scratch + ".tar.zst")
            unlink(scratch + ".partial")
        }
        func killAgent(after seconds: Double) -> ThreadHandle {
            let socket = "unix://\(Self.environment["PEON_SWARM_ROOT"] ?? "")/n\(node.name.suffix(1))/docker.sock"
            return ThreadHandle {
                Monotonic.sleep(seconds)
                _ = PeonPlatformSwarmTests.run([
                    "/bin/sh", "-c",
                    "docker -H \(socket) kill $(docker -H \(socket) ps -q --filter label=com.docker.swarm.service.name=peon-agent)",
                ])
            }
        }
        // A backup cut off: the caller's partial file is the caller's to drop; the node keeps nothing.
        var out = open(scratch + ".partial", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var killer = killAgent(after: 0.3)
        #expect(throws: PlatformError.self) { try channel.archive(uid, format: "tar.zst", to: out) }
        killer.join()
        close(out)
        // Swarm starts a new agent; a whole backup then goes through.
        out = open(scratch + ".tar.zst", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var archived = false
        for _ in 0..<100 where !archived {
            _ = ftruncate(out, 0)
            _ = lseek(out, 0, SEEK_SET)
            archived = (try? channel.archive(uid, format: "tar.zst", to: out)) != nil
            if !archived { usleep(300_000) }
        }
        close(out)
        #expect(archived)
        let checksum = Checksum()
        let input = open(scratch + ".tar.zst", O_RDONLY)
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while case let n = read(input, &buffer, buffer.count), n > 0 {
            buffer.withUnsafeBytes { checksum.update(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        }
        close(input)
        let (digest, _) = checksum.finalize()
        // A restore cut off while it streams in: the live folders are untouched, a staging folder
        // left behind is cleared by the next restore, which then goes through.
        try Files.write(home + "/config/server_name", Array("changed".utf8))
        var source = open(scratch + ".tar.zst", O_RDONLY)
        killer = killAgent(after: 0.3)
        #expect(throws: PlatformError.self) { try channel.restoreStage(uid, backup: 9, sha256: digest, from: source) }
        killer.join()
        close(source)
        #expect(try Files.read(home + "/config/server_name", limit: 100) == Array("changed".utf8))
        var staged = false
        for _ in 0..<100 where !staged {
            source = open(scratch + ".tar.zst", O_RDONLY)
            staged = (try? channel.restoreStage(uid, backup: 9, sha256: digest, from: source)) != nil
            close(source)
            if !staged { usleep(300_000) }
        }
        #expect(staged)
        try channel.restoreSwap(uid, backup: 9)
        #expect(try Files.read(home + "/config/server_name", limit: 100) == Array("kept".utf8))
        #expect(Files.list(home).filter { $0.hasPrefix(".restore-") || $0.hasPrefix(".peon-") }.isEmpty, "\(Files.list(home))")
    }

    @Test func isDeployedIdempotently() throws {
        let first = try platform()
        try first.ensureAgent(try first.nodes())
        let before = try service(first)
        // The image's health check asks Peon's API, which an agent's node does not serve: off.
        let spec = try #require(try first.docker.listServices(labels: ["\(SwarmAgent.label)=true"]).first?["Spec"])
        #expect(spec["TaskTemplate"]?["ContainerSpec"]?["Healthcheck"]?["Test"] == ["NONE"])
        // Another session (another scheduler thread, a restarted scheduler) with the same keys:
        // the service is left as it is.
        let second = try platform()
        try second.ensureAgent(try second.nodes())
        _ = try second.clusterNodes()
        #expect(try service(second) == before)
        // New keys (rotation) are new secrets and an update of the same service, and only they are accepted.
        let other = try AgentCredentials.make()
        let rotated = try platform(credentials: other)
        try rotated.ensureAgent(try rotated.nodes())
        let after = try service(rotated)
        #expect(after.id == before.id && after.version > before.version)
        let node = try #require(try rotated.nodes().first)
        #expect(try listeners(node, other) != nil)
        #expect(try listeners(node, Self.credentials, patience: 1) == nil, "the old keys are refused once the update reached the node")
        #expect(try first.docker.listSwarmObjects(.secrets, labels: ["\(SwarmAgent.label)=true"]).count == 3, "the old secrets are gone")
        // Back to this process's keys (the other tests' platforms use them).
        first.agent.deployedFor = nil
        try first.ensureAgent(try first.nodes())
        #expect(try listeners(node, Self.credentials) != nil)
    }
}

extension SwarmPlatformTests {
    /// The scheduler's log collector follows a server's output through the manager's service log
    /// stream: the game's lines arrive with the run's start, and the stream ends with the task.
    @Test func followsAServersOutputUntilItsTaskEnds() throws {
        let platform = try platform()
        let uid = try ServerUID(validating: "peontest.\(run)l")
        defer {
            try? platform.remove(uid)
            _ = try? platform.removeFiles(uid)
        }
        _ = try platform.place(uid, ports: [PortKey(42200, .tcp)], memoryBytes: 64 << 20)
        let ref = try platform.ensure(try spec(platform, uid, port: 42200))
        try platform.start(ref)
        final class Seen: @unchecked Sendable {
            var lines: [PlatformLogLine] = []
            var session: Int64 = 0
        }
        let seen = Seen()
        // Until the game's first line is in (bounded, so a broken stream fails instead of hanging).
        let giveUp = Monotonic.seconds() + 60
        try platform.followLogs(
            ref.raw, sinceMilliseconds: 0,
            keepGoing: { !seen.lines.contains { $0.text.contains("peon test game listening on 42200") } && Monotonic.seconds() < giveUp },
            handler: { session, lines in
                seen.session = session
                seen.lines += lines
            })
        #expect(seen.lines.contains { $0.text == "peon test game listening on 42200 (mode serve)" && $0.stream == 1 }, "\(seen.lines)")
        #expect(seen.session > 0 && seen.lines.allSatisfy { $0.at >= seen.session - 1000 })
        // A follower (the collector's own thread and session) ends when the task does, by itself.
        let ended = Atomic<Int>(0)
        let (socket, data, run) = (Self.environment["PEON_SWARM_MANAGER"] ?? "", Self.environment["PEON_SWARM_DATA"] ?? "", run)
        let follower = ThreadHandle {
            guard
                let other = try? SwarmPlatform(
                    client: DockerClient(socketPath: socket), dataRoot: data, agent: Self.agent(Self.credentials),
                    extraLabels: [("peon.test", run)])
            else { return ended.store(3, ordering: .relaxed) }
            let bound = Monotonic.seconds() + 60
            try? other.followLogs(ref.raw, sinceMilliseconds: 0, keepGoing: { Monotonic.seconds() < bound }) { _, _ in
                ended.store(1, ordering: .relaxed)
            }
            ended.store(Monotonic.seconds() < bound ? 2 : 4, ordering: .relaxed)
        }
        while ended.load(ordering: .relaxed) == 0 { usleep(50_000) }
        try platform.stop(ref, graceSeconds: 2)
        follower.join()
        #expect(ended.load(ordering: .relaxed) == 2, "the stream ended with the task (1: never, 3: no platform, 4: only at the bound)")
        // Swarm removes a scaled-down service's tasks once they stopped: the server still reads as exited.
        for _ in 0..<200 where !(try platform.docker.listTasks(filters: [("service", [ref.raw])])).isEmpty { usleep(50_000) }
        #expect(try platform.docker.listTasks(filters: [("service", [ref.raw])]).isEmpty)
        #expect(try platform.details(ref).state == .exited(code: 0, oom: false))
        // A stopped server has no run to follow.
        var called = false
        try platform.followLogs(ref.raw, sinceMilliseconds: 0, keepGoing: { true }, handler: { _, _ in called = true })
        #expect(!called)
    }
}
