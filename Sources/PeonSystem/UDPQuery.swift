#if canImport(Glibc)
    import Glibc
#endif

/// One UDP request and its reply, bounded in time: game status queries (A2S) from the scheduler.
public enum UDPQuery {
    /// Sends `payload` to `host:port` (IPv4 literal) and returns the first reply, or nil after
    /// `timeoutMilliseconds` or on any error. Replies over 1400 bytes are cut there. `then` may
    /// answer the reply with one more datagram from the same address (a goodbye), not waited on.
    public static func exchange(
        host: String, port: Int, payload: [UInt8], timeoutMilliseconds: Int32, then: ([UInt8]) -> [UInt8]? = { _ in nil }
    ) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, send(fd, payload, payload.count, 0) == payload.count else { return nil }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMilliseconds) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 1400)
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        guard n > 0 else { return nil }
        let reply = Array(buffer[..<n])
        if let last = then(reply) { _ = send(fd, last, last.count, 0) }
        return reply
    }
}

extension Files {
    /// The last `limit` bytes of the regular file `relative` below `root`, as text: no symlink at
    /// any level below `root`, never blocking on a FIFO (`O_NONBLOCK`), nil when it is missing or
    /// not a regular file. Game servers write these folders, so nothing in them is trusted.
    public static func tail(_ relative: String, in root: String, limit: Int) -> String? {
        let parts = relative.split(separator: "/")
        guard let name = parts.last, let dir = try? openDirectory(parts.dropLast().joined(separator: "/"), in: root) else { return nil }
        defer { close(dir) }
        let fd = openat(dir, String(name), readFlags)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let start = max(0, Int(st.st_size) - limit)
        guard lseek(fd, off_t(start), SEEK_SET) >= 0 else { return nil }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = Glibc.read(fd, &buffer, min(buffer.count, limit - out.count))
            if n < 0, Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            out += buffer[..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
