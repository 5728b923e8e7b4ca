@testable import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// A pthread running blocking socket work (Swift's cooperative pool must not block), joined for
/// its result.
final class Spawned<T>: @unchecked Sendable {
    private let handle: pthread_t
    private let slot = Slot()

    init(_ body: @escaping @Sendable () -> T) {
        let slot = self.slot
        handle = startThread { slot.value = body() }
    }

    func join() -> T {
        pthread_join(handle, nil)
        return slot.value!
    }

    /// Written by the thread before it ends, read after pthread_join: the join orders the two.
    private final class Slot: @unchecked Sendable {
        var value: T?
    }
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Outside any generic context: a C function pointer cannot capture one.
private func startThread(_ body: @escaping () -> Void) -> pthread_t {
    var thread = pthread_t()
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
    precondition(rc == 0, "pthread_create: \(rc)")
    return thread
}

/// A CA with a server ("peon-agent") and a client certificate, as Peon's setup makes them.
struct PKI {
    let authority: PEMPair
    let server: PEMPair
    let client: PEMPair

    init() throws {
        authority = try Certificates.makeAuthority(commonName: "Peon test CA")
        server = try Certificates.issue(commonName: "node-1", dnsNames: ["peon-agent"], role: .server, by: authority)
        client = try Certificates.issue(commonName: "peon-scheduler", dnsNames: [], role: .client, by: authority)
    }

    func serverContext(identity: PEMPair? = nil) throws -> TLSContext {
        try TLSContext(role: .server, identity: identity ?? server, authority: authority.certificate)
    }

    func clientContext(identity: PEMPair? = nil, expecting name: String = "peon-agent") throws -> TLSContext {
        try TLSContext(role: .client, identity: identity ?? client, authority: authority.certificate, expectedPeerName: name)
    }
}

/// A listener on 127.0.0.1 with a port of its own; SIGPIPE ignored, as Peon's executables do.
func localListener() throws -> TCPListener {
    signal(SIGPIPE, SIG_IGN)
    return try TCPListener(host: "127.0.0.1", port: 0)
}

/// Accepts one connection and runs `body` on its stream; the handshake's error (or the body's) is
/// the result, so a test can expect a refusal on the server side.
func serveOnce<T: Sendable>(
    _ listener: TCPListener, _ context: TLSContext, handshakeTimeout: Int32 = 5000,
    _ body: @escaping @Sendable (TLSStream) throws(TLSError) -> T
) -> Spawned<Result<T, TLSError>> {
    Spawned {
        guard let fd = listener.accept(timeoutMilliseconds: 5000) else { return .failure(TLSError("no connection came")) }
        do throws(TLSError) {
            let stream = try TLSStream.accept(fd, context: context, timeoutMilliseconds: handshakeTimeout)
            defer { stream.close() }
            return .success(try body(stream))
        } catch {
            return .failure(error)
        }
    }
}

/// A plain TCP connection (no TLS) to 127.0.0.1:port.
func plainConnect(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    precondition(rc == 0, "connect: \(errno)")
    return fd
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// One `read(into:)` of up to 16 bytes: how many came (0 at the end).
func readSome(_ stream: TLSStream) throws(TLSError) -> Int {
    var buffer = [UInt8](repeating: 0, count: 16)
    let result: Result<Int, TLSError> = buffer.withUnsafeMutableBytes { raw in
        do throws(TLSError) { return .success(try stream.read(into: raw)) } catch { return .failure(error) }
    }
    return try result.get()
}
