import PeonCore
import PeonSystem
import Testing

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
