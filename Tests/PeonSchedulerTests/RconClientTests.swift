import PeonCore
import PeonJSON
import PeonPlatform
import PeonStore
import PeonSystem
import Testing

@testable import PeonNode
@testable import PeonScheduler

#if canImport(Glibc)
    import Glibc
#endif

/// The RCON client's socket against an in-process server on loopback that misbehaves: each
/// case must end in a clear error or an answer, never a hang (the timeouts are short here).
@Suite struct RconClientTests {
    /// A listener on 127.0.0.1 whose one connection `behave` handles; its port.
    static func serve(_ behave: @escaping @Sendable (Int32) -> Void) -> (port: Int, thread: ThreadHandle) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        listen(listener, 1)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let thread = ThreadHandle {
            let client = accept(listener, nil, nil)
            close(listener)
            guard client >= 0 else { return }
            behave(client)
            close(client)
        }
        return (Int(UInt16(bigEndian: addr.sin_port)), thread)
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the peer closes (so the server outlives the client's exchange).
    static func drain(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while recv(fd, &buffer, buffer.count, 0) > 0 {}
    }

    static func run(_ behave: @escaping @Sendable (Int32) -> Void) -> Result<RconResponse, RconError> {
        let (port, thread) = serve(behave)
        defer { thread.join() }
        var exchange = try! RconExchange(password: "pw", command: "status")
        do throws(RconError) {
            return .success(
                try RconClient.run(
                    host: "127.0.0.1", port: port, exchange: &exchange, connectMilliseconds: 500, readMilliseconds: 300,
                    totalMilliseconds: 1500))
        } catch {
            return .failure(error)
        }
    }

    static let authOK = RconPacket(id: 1, type: 0, body: []).bytes + RconPacket(id: 1, type: 2, body: []).bytes

    @Test func answersAWellBehavedServer() {
        let result = Self.run { fd in
            Self.write(fd, Self.authOK)
            Self.write(fd, RconPacket(id: 2, type: 0, body: Array("hello".utf8)).bytes + RconPacket(id: 3, type: 0, body: []).bytes)
            Self.drain(fd)
        }
        #expect(result == .success(RconResponse(text: "hello", truncated: false)))
    }

    @Test func hostileServersEndInErrors() {
        // Says nothing at all.
        #expect(Self.run { Self.drain($0) } == .failure(.timeout))
        // Closes at once.
        guard case .failure(.protocolViolation) = Self.run({ _ in }) else {
            Issue.record("a closed connection passed")
            return
        }
        // A negative size.
        guard
            case .failure(.protocolViolation) = Self.run({ fd in
                Self.write(fd, RconTests.le(-1, 1, 2))
                Self.drain(fd)
            })
        else {
            Issue.record("a negative size passed")
            return
        }
        // Wrong password.
        #expect(
            Self.run { fd in
                Self.write(fd, RconPacket(id: -1, type: 2, body: []).bytes)
                Self.drain(fd)
            } == .failure(.authFailed))
        // One byte at a time, slower than nothing but without end: the whole exchange's deadline ends it.
        let trickle = Self.run { fd in
            Self.write(fd, Self.authOK)
            for _ in 0..<40 {
                Self.write(fd, [0x41])
                usleep(100_000)
            }
        }
        guard case .failure = trickle else {
            Issue.record("a trickling server passed")
            return
        }
    }

    @Test func refusedConnectionIsUnreachable() {
        let (port, thread) = Self.serve { _ in }
        // Connect once so the listener closes, then nothing listens there.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        thread.join()
        close(probe)
        var exchange = try! RconExchange(password: "pw", command: "status")
        #expect(throws: RconError.self) { try RconClient.run(host: "127.0.0.1", port: port, exchange: &exchange) }
        #expect(throws: RconError.self) { try RconClient.run(host: "not-an-address", port: 1, exchange: &exchange) }
    }
}

enum RconTests {
    static func le(_ values: Int32...) -> [UInt8] {
        values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: UInt32(bitPattern: v) >> (8 * $0)) } }
    }
}

/// The console job of a plan that declares RCON: its settings reach the exchange, the answer is
/// the job's result, and a refused password fails the job with the code the API answers 409 with.
@Suite struct RconJobTests {
    let base = JobRunnerTests()

    /// The fuzz plan with RCON on a setting; the server's RCON port is the listener's.
    func runner(port: Int) throws -> (JobRunner, Store) {
        let runner = try base.runner(RecordingPlatform(dataDir: base.dataDir))
        let plan = #"""
            {"metadata": {"game_uid": "fuzz", "image": "peon-test-game:latest", "rcon": {"port": "RCON_PORT", "password": "RCON_PASSWORD"}},
             "ports": [[{"PORT": ["27960", "tcp"]}]], "environment": {"SERVER_NAME": null, "RCON_PORT": "25575", "RCON_PASSWORD": null},
             "volumes": {"~!/data": "/data"}}
            """#
        try runner.store.write { tx in
            try tx.upsertPlan(
                StoredPlan(
                    entry: PlanIndexEntry(title: "Fuzz", gameUID: base.uid.game, planURL: "local://fuzz"), listed: true,
                    documentText: plan, source: "local"), now: 0)
            var server = try tx.server(base.uid)!
            server.settings = [("SERVER_NAME", "x"), ("RCON_PORT", "\(port)"), ("RCON_PASSWORD", "pw")]
            try tx.updateServer(server, now: 0)
        }
        return (runner, runner.store)
    }

    func console(_ behave: @escaping @Sendable (Int32) -> Void) throws -> JobRecord {
        let (port, thread) = RconClientTests.serve(behave)
        defer { thread.join() }
        let (runner, store) = try runner(port: port)
        let id = try store.write { tx in
            try tx.enqueueJob(server: base.uid.description, .console(command: "status"), now: 0)
        }
        runner.drain()
        return try store.read { tx in try tx.job(id) }!
    }

    @Test func theAnswerIsTheJobsResult() throws {
        let job = try console { fd in
            var packet = [UInt8](repeating: 0, count: 64)
            // The password Peon sent is the server's setting.
            _ = recv(fd, &packet, packet.count, 0)
            guard packet[12..<14] == [0x70, 0x77] else { return }
            RconClientTests.write(fd, RconClientTests.authOK)
            RconClientTests.write(
                fd, RconPacket(id: 2, type: 0, body: Array("players: 0".utf8)).bytes + RconPacket(id: 3, type: 0, body: []).bytes)
            RconClientTests.drain(fd)
        }
        #expect(job.state == .succeeded, "\(job.error ?? "")")
        #expect(job.result == ["via": "rcon", "response": "players: 0", "truncated": false])
    }

    @Test func aRefusedPasswordFailsTheJobWithItsCode() throws {
        let job = try console { fd in
            RconClientTests.write(fd, RconPacket(id: -1, type: 2, body: []).bytes)
            RconClientTests.drain(fd)
        }
        #expect(job.state == .failed && job.result == ["code": "rcon.auth_failed"] && job.error?.contains("password") == true)
    }
}
