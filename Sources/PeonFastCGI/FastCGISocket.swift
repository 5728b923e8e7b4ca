internal import CFCGI

#if canImport(Glibc)
    import Glibc
#endif

/// Why the listening socket could not be set up.
public struct FastCGISocketError: Error, CustomStringConvertible {
    public let description: String
}

/// The listening unix socket, opened once by the supervisor and inherited by every worker.
public enum FastCGISocket {
    /// Initializes libfcgi (once, before any fork) and opens `path`, replacing a stale socket file.
    ///
    /// The socket gets mode 0660 and, when given, the group of nginx's workers. A 1 s `SO_RCVTIMEO`
    /// makes idle `accept()` calls return, so workers notice SIGTERM without cutting requests.
    public static func open(path: String, group: String?, backlog: Int32 = 1024) throws(FastCGISocketError) -> Int32 {
        FCGX_Init()
        let fd = FCGX_OpenSocket(path, backlog)
        guard fd >= 0 else { throw FastCGISocketError(description: "cannot listen on \(path): errno \(errno)") }
        if let group {
            guard let entry = getgrnam(group) else {
                throw FastCGISocketError(description: "PEON_SOCKET_GROUP: no group named \(group)")
            }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                throw FastCGISocketError(description: "cannot chown \(path) to group \(group): errno \(errno)")
            }
        }
        chmod(path, 0o660)
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }
}
