import PeonCore
import PeonDocker
import PeonJSON
import PeonPlatform
import PeonSystem
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
    static let environment = ProcessEnvironment.read(["PEON_SWARM_MANAGER", "PEON_SWARM_DATA"])
    /// This test process's agent token (the scheduler keeps its own in the store).
    static let token = SwarmAgent.newToken()

    func platform(token: String = Self.token) throws -> SwarmPlatform {
        guard let socket = Self.environment["PEON_SWARM_MANAGER"], access(socket, R_OK | W_OK) == 0 else {
            Issue.record("no Swarm manager socket: run `scripts/swarm-test.sh up peon-test-game:latest` and set PEON_SWARM_MANAGER")
            throw PlatformError.unavailable("no swarm")
        }
        return SwarmPlatform(
            client: try DockerClient(socketPath: socket), dataRoot: Self.environment["PEON_SWARM_DATA"] ?? "/srv/peon",
            helperImage: "peon-test-game:latest", agent: SwarmAgent(port: 7380, token: token), extraLabels: [("peon.test", run)])
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
                try? platform.removeFiles(uid)
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
            // Its node's agent reads the task's cgroup counters: Docker's stats, on any node.
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

/// Peon's node agent on the real swarm: it refuses callers without Peon's token, and the
/// scheduler's (re)deploy changes the service only when something that shapes it changed.
/// (In the serialized suite: a token rotation must not run beside the other tests.)
extension SwarmPlatformTests {
    /// The agent's service as the manager has it: its id and version.
    func service(_ platform: SwarmPlatform) throws -> (id: String, version: Int) {
        let found = try platform.docker.listServices(labels: ["\(SwarmAgent.label)=true"])
        #expect(found.count == 1, "one agent service")
        let service = try #require(found.first)
        return (service["ID"]?.stringValue ?? "", CheckedNumber.int(service["Version"]?["Index"], in: 0...Int.max) ?? 0)
    }

    /// Asks every node's agent for its listeners with `token` (nil: no token header's value of ours).
    func statuses(_ platform: SwarmPlatform, token: String?) throws -> [Int] {
        try platform.nodes().map { node in
            // The agent may be restarting after a deploy: its answer, once it answers.
            for _ in 0..<300 {
                if let answer = try? platform.agentRequest(node, "ports", token: token ?? "") { return answer.status }
                usleep(100_000)
            }
            return 0
        }
    }

    @Test func refusesARequestWithoutPeonsToken() throws {
        let platform = try platform()
        try platform.ensureAgent(try platform.nodes())
        let nodes = try platform.nodes()
        // With the token: the node's listeners, ending with the exit marker.
        for node in nodes {
            let lines = try #require(try? platform.onNode(node, "ports"))
            #expect(
                lines.contains("==> /proc/net/tcp <==") && lines.contains { $0.contains(":1CD4 ") },
                "the agent's own port 7380 is listening on \(node.name)")
        }
        // No token, a wrong one, a prefix of the right one: 401, and the operation never runs.
        #expect(try statuses(platform, token: nil) == [401, 401, 401])
        #expect(try statuses(platform, token: SwarmAgent.newToken()) == [401, 401, 401])
        #expect(try statuses(platform, token: String(SwarmPlatformTests.token.dropLast())) == [401, 401, 401])
        let node = try #require(nodes.first)
        let refused = try platform.agentRequest(node, "remove", fields: [("D", "/peon/servers/peontest/x")], token: "nope")
        #expect(refused.status == 401 && refused.lines == ["ERR wrong token"])
        // With the token, inputs are checked too: an unknown operation or field is refused.
        #expect(try platform.agentRequest(node, "sh").status == 404)
        #expect(try platform.agentRequest(node, "ports", fields: [("PATH", "/tmp")]).status == 400)
        // A server folder outside /peon/servers/<game>/<name> is refused by the operation.
        #expect(throws: PlatformError.self) { try platform.onNode(node, "remove", fields: [("D", "/peon/servers/../etc")]) }
        // A value is one line on the wire: one with a line break (a field smuggled in) is not sent.
        #expect(throws: PlatformError.self) {
            try platform.onNode(node, "remove", fields: [("D", "/peon/servers/peontest/a\nD=/peon/servers/peontest/b")])
        }
        // The node's listeners, as takenPorts sees them: the agent's own port among them.
        #expect(try platform.listeners(on: node).contains(PortKey(7380, .tcp)))
    }

    @Test func isDeployedIdempotently() throws {
        let first = try platform()
        try first.ensureAgent(try first.nodes())
        let before = try service(first)
        // Another session (another scheduler thread, a restarted scheduler) with the same token:
        // the service is left as it is.
        let second = try platform()
        try second.ensureAgent(try second.nodes())
        _ = try second.clusterNodes()
        #expect(try service(second) == before)
        // A new token is a new secret and an update of the same service, and only it is accepted.
        let other = SwarmAgent.newToken()
        let rotated = try platform(token: other)
        try rotated.ensureAgent(try rotated.nodes())
        let after = try service(rotated)
        #expect(after.id == before.id && after.version > before.version)
        let node = try #require(try rotated.nodes().first)
        #expect(try rotated.onNode(node, "ports").contains("==> /proc/net/tcp <=="))
        var old = 0
        for _ in 0..<300 {
            old = (try? first.agentRequest(node, "ports").status) ?? 0
            if old == 401 { break }
            usleep(100_000)
        }
        #expect(old == 401, "the old token is refused once the update reached the node")
        #expect(try first.docker.listSwarmObjects(.secrets, labels: ["\(SwarmAgent.label)=true"]).count == 1, "the old secret is gone")
        // Back to this process's token (the other tests' platforms use it).
        first.agent.deployedFor = nil
        try first.ensureAgent(try first.nodes())
        #expect(try first.onNode(node, "ports").contains("==> /proc/net/tcp <=="))
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
            try? platform.removeFiles(uid)
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
                    client: DockerClient(socketPath: socket), dataRoot: data, helperImage: "peon-test-game:latest",
                    agent: SwarmAgent(port: 7380, token: Self.token), extraLabels: [("peon.test", run)])
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

/// The agent's `stats` lines as Docker's counters (pure: no swarm needed).
@Suite struct SwarmStatsTests {
    @Test func readsCgroupV1AndV2Counters() throws {
        let cpu = "cpu  100 0 50 800 10 0 5 2 0 0"
        let v1 = try #require(
            SwarmPlatform.statsSample(
                ["mem 3000", "limit 67108864", "total_inactive_file 1000", "cpu_ns 123456", cpu, "cpus 2"], startedAt: 7))
        #expect(v1.memory == 2000 && v1.memoryLimit == 64 << 20 && v1.cpuTotal == 123_456 && v1.onlineCPUs == 2 && v1.startedAt == 7)
        #expect(v1.systemTotal == 967 * 10_000_000)
        let v2 = try #require(
            SwarmPlatform.statsSample(["mem 5000", "limit max", "inactive_file 500", "usage_usec 42", cpu, "cpus 4"], startedAt: 0))
        #expect(v2.memory == 4500 && v2.memoryLimit == 0 && v2.cpuTotal == 42_000 && v2.onlineCPUs == 4)
    }

    @Test func refusesMissingOrHostileCounters() {
        let cpu = "cpu  100 0 50 800 10 0 5 2 0 0"
        #expect(SwarmPlatform.statsSample([cpu, "cpus 2"], startedAt: 0) == nil)
        #expect(SwarmPlatform.statsSample(["mem 1", "cpu_ns 1", "cpus 2"], startedAt: 0) == nil)
        #expect(SwarmPlatform.statsSample(["mem -5", "cpu_ns 1", cpu], startedAt: 0) == nil)
        #expect(SwarmPlatform.statsSample(["mem 99999999999999999999999", "cpu_ns 1", cpu], startedAt: 0) == nil)
        #expect(SwarmPlatform.statsSample(["mem 1", "cpu_ns 1", "cpu 1 2 x"], startedAt: 0) == nil)
        // Inactive cache larger than the usage reads as zero, never negative.
        #expect(SwarmPlatform.statsSample(["mem 1", "inactive_file 9", "cpu_ns 1", cpu], startedAt: 0)?.memory == 0)
    }
}
