#if canImport(Glibc)
    import Glibc
#endif

/// A TCP connection to a game's port (RCON, a readiness probe): an IPv4 literal, within a time.
public enum TCPConnect {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A connected non-blocking, close-on-exec socket, or why not (refused, no route, no answer in
    /// `timeoutMilliseconds`). The caller closes it.
    public static func open(host: String, port: Int, timeoutMilliseconds: Int32) throws(Failure) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "no socket (errno \(errno))") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard (1...65535).contains(port), inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            close(fd)
            throw Failure(description: "\(host):\(port) is not an IPv4 address and port")
        }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            guard errno == EINPROGRESS else {
                let message = "\(host):\(port): \(String(cString: strerror(errno)))"
                close(fd)
                throw Failure(description: message)
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, max(0, timeoutMilliseconds)) == 1 else {
                close(fd)
                throw Failure(description: "\(host):\(port) did not accept in time")
            }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0, failure == 0 else {
                close(fd)
                throw Failure(description: "\(host):\(port): \(String(cString: strerror(failure)))")
            }
        }
        return fd
    }
}
