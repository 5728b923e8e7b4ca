internal import COpenSSL
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An IPv4 or IPv6 literal and a port as a socket address (no name resolution: agents are reached by
/// IP), or `unix:<path>` (the port ignored): an agent beside the scheduler on the same host.
struct SocketAddress {
    private var storage = sockaddr_storage()
    let family: Int32
    let length: socklen_t

    init(host: String, port: Int) throws(TLSError) {
        if host.hasPrefix("unix:") {
            let path = Array(host.dropFirst(5).utf8)
            var un = sockaddr_un()
            guard path.first == UInt8(ascii: "/"), path.count < MemoryLayout.size(ofValue: un.sun_path), !path.contains(0) else {
                throw TLSError("not an absolute socket path: \"\(host)\"")
            }
            un.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &un.sun_path) { raw in
                for (i, byte) in path.enumerated() { raw[i] = byte }
            }
            family = AF_UNIX
            length = socklen_t(MemoryLayout<sockaddr_un>.size)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: un, as: sockaddr_un.self) }
            return
        }
        guard (0...65535).contains(port) else { throw TLSError("not a TCP port: \(port)") }
        // "[::1]" as well as "::1".
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = UInt16(port).bigEndian
            family = AF_INET
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
        } else if inet_pton(AF_INET6, literal, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = UInt16(port).bigEndian
            family = AF_INET6
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v6, as: sockaddr_in6.self) }
        } else {
            throw TLSError("not an IPv4 or IPv6 address: \"\(host)\"")
        }
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }
}

enum Socket {
    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    /// A stream socket (TCP, or unix for `unix:` addresses), close-on-exec so children of the agent
    /// never inherit connections.
    static func tcp(family: Int32) throws(TLSError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TLSError("socket: \(errnoText())") }
        if family == AF_UNIX { enlargeSendBuffer(fd) }
        return fd
    }

    /// A unix socket holds only its sender's buffer in flight (208 KiB by default): 1 MiB lets a
    /// backup stream's sender run ahead of its reader. (TCP tunes its own buffers.)
    static func enlargeSendBuffer(_ fd: Int32) {
        var size: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    static func setNonBlocking(_ fd: Int32, _ on: Bool) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return }
        _ = fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
    }

    /// Per-call receive and send timeouts; 0 or less waits forever.
    static func setTimeouts(_ fd: Int32, milliseconds: Int32) {
        let ms = max(0, Int(milliseconds))
        var value = timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size)
    }

    static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Waits until `fd` is ready for `events` or the deadline passes (which throws `timeoutMessage`).
    static func wait(_ fd: Int32, for events: Int32, deadline: Int64, timeoutMessage: String) throws(TLSError) {
        while true {
            let remaining = deadline - nowMilliseconds()
            guard remaining > 0 else { throw TLSError(timeoutMessage) }
            var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
            let rc = poll(&entry, 1, Int32(clamping: remaining))
            if rc > 0 { return }  // Ready, or an error/hang-up the next call reports.
            if rc < 0 && errno != EINTR { throw TLSError("poll: \(errnoText())") }
        }
    }

    /// Connects `fd` to `address` within the deadline (non-blocking connect, then back to blocking).
    static func connect(_ fd: Int32, to address: SocketAddress, deadline: Int64, what: String) throws(TLSError) {
        setNonBlocking(fd, true)
        defer { setNonBlocking(fd, false) }
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return }
        guard errno == EINPROGRESS || errno == EINTR else { throw TLSError("connecting to \(what): \(errnoText())") }
        try wait(fd, for: Int32(POLLOUT), deadline: deadline, timeoutMessage: "connecting to \(what) timed out")
        var failure: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size) == 0 else { throw TLSError("getsockopt: \(errnoText())") }
        guard failure == 0 else { throw TLSError("connecting to \(what): \(errnoText(failure))") }
    }
}

/// A listening TCP socket (IPv4 or IPv6 literal, SO_REUSEADDR, CLOEXEC, backlog 64).
public final class TCPListener: @unchecked Sendable {
    /// -1 once closed; atomic so `close` may race an `accept` on another thread.
    private let descriptor: Atomic<Int32>
    /// The bound port (useful with port 0 in tests).
    public let port: Int
    /// A unix socket (`unix:<path>`): its connections are `UnixStream`s, not TLS.
    public let unix: Bool

    public init(host: String, port: Int) throws(TLSError) {
        let address = try SocketAddress(host: host, port: port)
        let fd = try Socket.tcp(family: address.family)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        unix = address.family == AF_UNIX
        // A socket file a previous agent left; its mode bits are the socket's only door besides TLS.
        if unix { unlink(String(host.dropFirst(5))) }
        let mask = unix ? umask(0o177) : 0
        let bound = address.withSockaddr({ bind(fd, $0, $1) })
        if unix { umask(mask) }
        guard bound == 0 else {
            let message = "binding \(host):\(port): \(Socket.errnoText())"
            Glibc.close(fd)
            throw TLSError(message)
        }
        guard listen(fd, 64) == 0 else {
            let message = "listening on \(host):\(port): \(Socket.errnoText())"
            Glibc.close(fd)
            throw TLSError(message)
        }
        if unix {
            self.port = 0
            descriptor = Atomic(fd)
            return
        }
        var name = sockaddr_storage()
        var size = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        guard named == 0 else {
            let message = "getsockname: \(Socket.errnoText())"
            Glibc.close(fd)
            throw TLSError(message)
        }
        // sin_port and sin6_port sit at the same offset, right after the family.
        self.port = Int(
            UInt16(
                bigEndian: withUnsafeBytes(of: name) {
                    $0.load(fromByteOffset: MemoryLayout<sa_family_t>.size, as: UInt16.self)
                }))
        descriptor = Atomic(fd)
    }

    deinit { close() }

    /// Waits up to `timeoutMilliseconds` (poll) for one connection; its fd (CLOEXEC, blocking), nil on
    /// timeout, EINTR or a closed listener.
    public func accept(timeoutMilliseconds: Int32) -> Int32? {
        let fd = descriptor.load(ordering: .acquiring)
        guard fd >= 0 else { return nil }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, timeoutMilliseconds) > 0, entry.revents & Int16(POLLIN) != 0 else { return nil }
        // accept4 never inherits O_NONBLOCK, so the connection is blocking as TLSStream expects.
        let connection = peon_accept_cloexec(fd)
        guard connection >= 0 else { return nil }
        if unix { Socket.enlargeSendBuffer(connection) }
        return connection
    }

    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        guard fd >= 0 else { return }
        // shutdown wakes a thread blocked on this socket; close alone would not.
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }
}
