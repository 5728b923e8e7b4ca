import PeonCurl
import PeonDocker
import PeonJSON
import PeonSystem
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Against the real engine: `make test` starts dockerd and builds `peon-test-game:latest`
/// (scripts/docker.sh). Everything made here carries `peon.test=<run>` and is removed at the end.
@Suite(.serialized) struct DockerClientTests {
    static let socket = "/var/run/docker.sock"
    let run = "run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    var label: String { "peon.test=\(run)" }

    func client() throws -> DockerClient {
        guard access(Self.socket, R_OK | W_OK) == 0 else {
            Issue.record("no Docker engine socket at \(Self.socket): run `make test`, which starts dockerd")
            throw DockerError.badResponse("no engine")
        }
        return try DockerClient(socketPath: Self.socket)
    }

    func cleanUp(_ docker: DockerClient) {
        for c in (try? docker.listContainers(labels: [label])) ?? [] {
            try? docker.removeContainer(c["Id"]?.stringValue ?? "", force: true)
        }
        for n in (try? docker.listNetworks(labels: [label])) ?? [] { try? docker.removeNetwork(n["Id"]?.stringValue ?? "") }
    }

    func config(_ env: [String] = [], network: String? = nil) -> JSON {
        var host: [(String, JSON)] = [("Init", true), ("Memory", .int(64 << 20)), ("PidsLimit", 64)]
        if let network { host.append(("NetworkMode", .string(network))) }
        return [
            "Image": "peon-test-game:latest", "Env": .array((["PORT=27960"] + env).map(JSON.string)),
            "Labels": .object([("peon.test", .string(run))]), "HostConfig": .object(host),
        ]
    }

    @Test func negotiatesWithTheEngine() throws {
        let docker = try client()
        #expect(["1.41", "1.42", "1.43", "1.44", "1.45", "1.46", "1.47"].contains(docker.apiVersion))
        #expect(try docker.inspectImage("peon-test-game:latest") != nil, "scripts/docker.sh image builds it")
        #expect(try docker.inspectImage("peon-no-such-image:never") == nil)
    }

    @Test func containerLifecycle() throws {
        let docker = try client()
        defer { cleanUp(docker) }
        let network = try docker.createNetwork(name: "peon-test-\(run)", labels: [("peon.test", run)])
        let id = try docker.createContainer(name: "peon-test-\(run)", config: config(["SERVER_NAME=Test"], network: "peon-test-\(run)"))
        #expect(try docker.inspectContainer(id)["State"]?["Status"] == "created")
        try docker.startContainer(id)
        try docker.startContainer(id)  // already running: not an error
        #expect(try docker.inspectContainer(id)["State"]?["Status"] == "running")
        #expect(try docker.listContainers(labels: [label]).compactMap { $0["Id"]?.stringValue } == [id])
        #expect(try docker.inspectNetwork(network)["Containers"]?[id] != nil)

        let stats = try docker.containerStats(id)
        #expect(stats["memory_stats"] != nil)

        var logs: [LogFrame] = []
        for _ in 0..<50 where !logs.contains(where: { $0.text.contains("listening on 27960") }) {
            logs = try docker.containerLogs(id)
            usleep(100_000)
        }
        #expect(logs.contains { $0.stream == .stdout && $0.text.contains("listening on 27960") })

        try docker.stopContainer(id, timeoutSeconds: 5)
        let state = try docker.inspectContainer(id)["State"]
        #expect(state?["Status"] == "exited")
        #expect(state?["ExitCode"] == 0, "the test game exits 0 on SIGTERM")
        try docker.removeContainer(id)
        #expect(throws: DockerError.self) { try docker.inspectContainer(id) }
        try docker.removeNetwork(network)
    }

    @Test func engineErrorsCarryDockersMessage() throws {
        let docker = try client()
        defer { cleanUp(docker) }
        let missing = Result { try docker.startContainer("peon-no-such-container") }
        guard case .failure(let e) = missing, case .notFound(let message)? = e as? DockerError else {
            Issue.record("started a missing container: \(missing)")
            return
        }
        #expect(message.contains("peon-no-such-container"))
        _ = try docker.createContainer(name: "peon-test-dup-\(run)", config: config())
        let duplicate = Result { try docker.createContainer(name: "peon-test-dup-\(run)", config: config()) }
        guard case .failure(let d) = duplicate, case .conflict(let text)? = d as? DockerError else {
            Issue.record("created a duplicate name: \(duplicate)")
            return
        }
        #expect(text.contains("already in use"))
    }

    @Test func crashAndExitCodeAreObserved() throws {
        let docker = try client()
        defer { cleanUp(docker) }
        let id = try docker.createContainer(name: "peon-test-crash-\(run)", config: config(["MODE=crash", "CRASH_AFTER=0"]))
        try docker.startContainer(id)
        #expect(try docker.waitContainer(id) == 3)
        #expect(try docker.inspectContainer(id)["State"]?["ExitCode"] == 3)
    }

    @Test func eventsStreamFollowsLabelledContainers() throws {
        let docker = try client()
        defer { cleanUp(docker) }
        let seen = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        let labels = [label]
        let since = Int64(time(nil))
        let follower = ThreadHandle {
            guard let events = try? DockerClient(socketPath: Self.socket) else { return }
            try? events.followEvents(labels: labels, since: since, keepGoing: { !stop.load(ordering: .relaxed) }) { event in
                seen.withLock { $0.append(event["status"]?.stringValue ?? event["Action"]?.stringValue ?? "?") }
                return true
            }
        }
        let id = try docker.createContainer(name: "peon-test-events-\(run)", config: config())
        try docker.startContainer(id)
        try docker.killContainer(id)
        for _ in 0..<50 where !seen.withLock({ $0.contains("die") }) { usleep(100_000) }
        stop.store(true, ordering: .relaxed)
        follower.join()
        let actions = seen.withLock { $0 }
        #expect(actions.contains("create") && actions.contains("start") && actions.contains("die"), "\(actions)")
    }
}
