import PeonCore
import PeonDocker
import PeonJSON
import PeonNode
import PeonPlatform
import PeonSystem
import PeonTestSupport
import Testing

@testable import PeonPlatformDocker

#if canImport(Glibc)
    import Glibc
#endif

/// The Docker platform against the real engine with the busybox test game (`make test` builds it).
/// All it creates is labelled `peon.test=<run>` and removed at the end, with the temp server dir.
@Suite(.serialized) struct DockerPlatformTests {
    let run = "p\(getpid())x\(UInt16.random(in: 0...UInt16.max))"
    let directory: String = {
        var template = Array("/tmp/peon-platform-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }()

    func plan() throws -> Plan {
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = try Files.read(root + "/plans/peontest/plan.json", limit: 1 << 20)
        return try Plan(document: JSON.parse(text), expectedGameUID: GameUID(validating: "peontest"))
    }

    /// A server directory the game's user (1000) can write, as the scheduler will prepare it.
    func prepareDirectory() throws {
        chmod(directory, 0o755)
        for sub in ["actions", "config", "data", "user"] {
            try Files.makeDirectories(directory + "/" + sub)
            chown(directory + "/" + sub, 1000, 1000)
        }
    }

    func platform() throws -> DockerPlatform {
        guard access("/var/run/docker.sock", R_OK | W_OK) == 0 else {
            Issue.record("no Docker engine socket: run `make test`, which starts dockerd")
            throw DockerError.badResponse("no engine")
        }
        return DockerPlatform(
            client: try DockerClient(), files: LocalServerFiles(dataDir: directory, hostDataDir: directory), bindAddress: "127.0.0.1")
    }

    func cleanUp(_ platform: DockerPlatform, _ uid: ServerUID) {
        try? platform.remove(uid)
        try? Files.removeTree(directory)
    }

    @Test func runsAServerFromItsPlan() throws {
        let platform = try platform()
        let plan = try plan()
        let uid = try ServerUID(validating: "peontest.\(run)")
        defer { cleanUp(platform, uid) }
        try prepareDirectory()
        let taken = try platform.takenPorts(for: uid)
        let ports = try PortAllocator.allocate(groups: plan.portGroups, taken: taken, range: 40000...40999)
        let settings = try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "Platform Test", "PASSWORD": "pw"])
        let spec = ServerSpec(
            uid: uid, plan: plan, settings: settings, ports: ports, directory: directory,
            limits: ResourceLimits(memoryBytes: 64 << 20, nanoCPUs: 500_000_000, pids: 128), extraLabels: [("peon.test", run)])

        let id = try platform.ensure(spec)
        #expect(try platform.ensure(spec) == id, "ensure adopts the existing container: never two per server")
        try platform.start(id)

        let info = try platform.docker.inspectContainer(id.raw)
        #expect(info["Name"] == .string("/peon.warcamp.peontest.\(run)"))
        #expect(info["Config"]?["User"] == "1000:1000")
        #expect(info["Config"]?["Hostname"] == .string(spec.hostname))
        #expect(
            info["Config"]?["Env"]?.arrayValue?.prefix(3) == [.string("PORT=\(ports[0].port)"), "STEAM_ID=0", "SERVER_NAME=Platform Test"])
        #expect(info["Config"]?["Labels"]?["peon.server"] == .string(uid.description))
        let host = info["HostConfig"]
        #expect(host?["Init"] == true)
        #expect(host?["SecurityOpt"] == ["no-new-privileges:true"])
        #expect(host?["CapDrop"] == ["ALL"] && (host?["CapAdd"]?.arrayValue ?? []).isEmpty)
        #expect(info["Config"]?["OpenStdin"] == true && info["Config"]?["StdinOnce"] == false)
        #expect(host?["PidsLimit"] == 128 && host?["Memory"] == .number(Double(64 << 20)))
        #expect(host?["NetworkMode"] == .string(uid.containerName))
        #expect(host?["LogConfig"]?["Config"]?["max-size"] == "10m")
        #expect(host?["PortBindings"]?["\(ports[0].port)/udp"] != nil && host?["PortBindings"]?["\(ports[0].port)/tcp"] != nil)
        #expect(info["Mounts"]?.arrayValue?.count == 4)

        // The game answers on its published TCP port and wrote its state through the bind mount.
        #expect(echo(port: ports[0].port, "ping\n") == "ping\n")
        #expect(waitFor { (try? Files.read(directory + "/config/state", limit: 100)) == Array("STARTED\n".utf8) })
        #expect(try platform.observe(labels: ["peon.test=\(run)"]).map(\.state) == [.running])

        try platform.stop(id, graceSeconds: 5)
        let stopped = try platform.details(id)
        #expect(stopped.state == .exited(code: 0, oom: false) && stopped.uid == uid)
        #expect(try Files.read(directory + "/config/state", limit: 100) == Array("OFFLINE\n".utf8))

        try platform.remove(uid)
        #expect(try platform.containers(of: uid).isEmpty)
        #expect(try platform.docker.listNetworks(labels: ["peon.server=\(uid)"]).isEmpty)
    }

    @Test func hardensEveryContainerAndAddsBackOnlyThePlansCapabilities() throws {
        let platform = try platform()
        let root = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        let text = String(decoding: try Files.read(root + "/plans/peontest/plan.json", limit: 1 << 20), as: UTF8.self)
        let withCapability = text.replacing(
            #""image": "peon-test-game:latest""#, with: #""image": "peon-test-game:latest", "capabilities": ["NET_BIND_SERVICE"]"#)
        let plan = try Plan(document: JSON.parse(Array(withCapability.utf8)), expectedGameUID: GameUID(validating: "peontest"))
        let uid = try ServerUID(validating: "peontest.\(run)c")
        defer { cleanUp(platform, uid) }
        try prepareDirectory()
        let settings = try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "Caps", "PASSWORD": "pw"])
        let spec = ServerSpec(uid: uid, plan: plan, settings: settings, ports: [], directory: directory, extraLabels: [("peon.test", run)])
        let host = try platform.docker.inspectContainer(try platform.ensure(spec).raw)["HostConfig"]
        #expect(host?["CapDrop"] == ["ALL"] && host?["CapAdd"] == ["NET_BIND_SERVICE"])
        // Defaults when neither plan nor server says: 4 GiB, 4096 processes, CPU unlimited.
        #expect(host?["Memory"] == .number(Double(4 << 30)) && host?["MemorySwap"] == .number(Double(4 << 30)))
        #expect(host?["PidsLimit"] == 4096 && host?["NanoCpus"] == 0)
    }

    /// A runtime image definition over the busybox test image (no Debian needed for this test).
    func runtimePlan() throws -> Plan {
        let text =
            #"{"metadata": {"game_uid": "imgtest", "image": "peon/runtime-debian", "runtime": "debian", "packages": ["busybox"]}, "ports": [], "environment": {}, "volumes": {"~!/actions": "/actions"}}"#
        return try Plan(document: JSON.parse(Array(text.utf8)), expectedGameUID: GameUID(validating: "imgtest"))
    }

    @Test func buildsRuntimeImagesOnceAndPrunesUnusedOnes() throws {
        let platform = try platform()
        let plan = try runtimePlan()
        func image(_ marker: String) -> RuntimeImage {
            let dockerfile = "FROM peon-test-game:latest\nARG PACKAGES\nRUN echo \"$PACKAGES\" > /packages\nLABEL marker=\(marker)\n"
            return RuntimeImage(
                plan: plan, files: [RuntimeImage.File(path: "Dockerfile", bytes: Array(dockerfile.utf8), mode: 0o644)], baseID: nil,
                extraLabels: [("peon.test", run)])
        }
        let first = image("\(run)a")
        let second = image("\(run)b")
        defer {
            try? platform.docker.removeImage(first.reference)
            try? platform.docker.removeImage(second.reference)
            for network in (try? platform.docker.listNetworks(labels: ["peon.test=\(run)"])) ?? [] {
                try? platform.docker.removeNetwork(network["Id"]?.stringValue ?? "")
            }
        }
        #expect(first.reference.hasPrefix("peon/runtime-debian-imgtest:") && first.reference != second.reference)
        var lines: [String] = []
        #expect(try platform.ensureImage(first) { lines.append($0) })
        #expect(lines.contains { $0.hasPrefix("Step 1/") }, "the builder's output reaches the caller")
        let cachedStart = Monotonic.seconds()
        #expect(try platform.ensureImage(first) { _ in } == false, "an unchanged definition is not built again")
        #expect(Monotonic.seconds() - cachedStart < 1)
        let labels = try platform.docker.inspectImage(first.reference)?["Config"]?["Labels"]
        #expect(labels?["peon.managed"] == "true" && labels?["peon.runtime"] == "debian" && labels?["peon.test"] == .string(run))
        // RUN steps went through Peon's own labelled build network, not Docker's default bridge.
        #expect(try platform.docker.listNetworks(labels: ["peon.build=true", "peon.test=\(run)"]).count == 1)

        #expect(try platform.ensureImage(second) { _ in })
        #expect(try platform.pruneImages(labels: ["peon.test=\(run)"], keep: [second.reference]) == 1)
        #expect(try platform.imageID(first.reference) == nil && platform.imageID(second.reference) != nil)
    }

    /// The platform contract every platform keeps (the fake and Swarm run the same suite).
    @Test func keepsThePlatformContract() throws {
        let platform = try platform()
        let plan = try plan()
        let uid = try ServerUID(validating: "peontest.\(run)k")
        defer { cleanUp(platform, uid) }
        // A random stretch away from the ranges integration stacks use: other test runs share this engine.
        let low = Int.random(in: 44000...47900)
        let ports = try PortAllocator.allocate(groups: plan.portGroups, taken: try platform.takenPorts(for: uid), range: low...(low + 99))
        let settings = try ServerSettings.resolve(plan: plan, request: ["SERVER_NAME": "Contract", "PASSWORD": "pw"])
        let files = try platform.prepareFiles(uid, plan: plan, actions: [], reinstallActions: false)
        let spec = ServerSpec(
            uid: uid, plan: plan, settings: settings, ports: ports, directory: files.directory, existingFiles: files.existingFiles,
            limits: ResourceLimits(memoryBytes: 64 << 20, pids: 128), extraLabels: [("peon.test", run)])
        #expect(PlatformContract(platform: platform, spec: spec, plan: plan).run() == [])
    }

    @Test func refusesToAdoptAForeignContainer() throws {
        let platform = try platform()
        let uid = try ServerUID(validating: "peontest.\(run)f")
        defer {
            try? platform.docker.removeContainer(uid.containerName, force: true)
            cleanUp(platform, uid)
        }
        // Someone else's container holds the name: Peon must not take it over or remove it.
        _ = try platform.docker.createContainer(
            name: uid.containerName, config: ["Image": "peon-test-game:latest", "Labels": .object([("peon.test", .string(run))])])
        let spec = ServerSpec(uid: uid, plan: try plan(), settings: [], ports: [], directory: directory, extraLabels: [("peon.test", run)])
        #expect(throws: PlatformError.self) { try platform.ensure(spec) }
        try platform.remove(uid)
        #expect(try platform.docker.inspectContainer(uid.containerName)["Name"] == .string("/\(uid.containerName)"))
    }
}

/// Sends `text` to 127.0.0.1:port over TCP and returns what comes back.
func echo(port: Int, _ text: String) -> String? {
    for _ in 0..<50 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected == 0 {
            _ = text.withCString { send(fd, $0, strlen($0), 0) }
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { return String(decoding: buffer[..<n], as: UTF8.self) }
        }
        usleep(100_000)
    }
    return nil
}

func waitFor(_ condition: () -> Bool) -> Bool {
    for _ in 0..<50 {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

@Suite struct LogLineTests {
    @Test func gameOutputIsCleanedAndBounded() {
        #expect(LogFrame.cleanLine(Array("a\u{1b}[31mred\u{7f}\tx\r".utf8)[...]) == "a[31mred\tx")
        #expect(LogFrame.cleanLine(Array(repeating: UInt8(ascii: "x"), count: 100_000)[...]).utf8.count == 4096)
        #expect(LogFrame.cleanLine([0xff, 0xfe, 0x41][...]) == "\u{fffd}\u{fffd}A")
    }
}
