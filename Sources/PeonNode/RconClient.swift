public import PeonCore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Source RCON over one TCP connection, bounded everywhere: connect, each read and the whole
/// exchange have timeouts, so a game that accepts and then says nothing, or trickles bytes,
/// cannot hold a job runner. Whatever the game sends goes through `RconDecoder` and `RconExchange`.
public enum RconClient {
    public static let connectMilliseconds: Int32 = 3000
    public static let readMilliseconds: Int32 = 5000
    public static let totalMilliseconds = 10_000

    public static func run(
        host: String, port: Int, exchange: inout RconExchange, connectMilliseconds: Int32 = connectMilliseconds,
        readMilliseconds: Int32 = readMilliseconds, totalMilliseconds: Int = totalMilliseconds
    ) throws(RconError) -> RconResponse {
        let deadline = Monotonic.seconds() + Double(totalMilliseconds) / 1000
        func remaining(_ cap: Int32) -> Int32 { Int32(max(0, min(Double(cap), (deadline - Monotonic.seconds()) * 1000))) }

        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("no socket (errno \(errno))") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        guard (1...65535).contains(port), inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw .unreachable("\(host):\(port) is not an IPv4 address and port")
        }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 {
            guard errno == EINPROGRESS else { throw .unreachable("\(host):\(port): \(String(cString: strerror(errno)))") }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, remaining(connectMilliseconds)) == 1 else { throw .unreachable("\(host):\(port) did not accept in time") }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) == 0, failure == 0 else {
                throw .unreachable("\(host):\(port): \(String(cString: strerror(failure)))")
            }
        }

        func write(_ bytes: [UInt8]) throws(RconError) {
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 {
                    sent += n
                } else if n < 0, errno == EAGAIN || errno == EINTR {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    guard poll(&pfd, 1, remaining(readMilliseconds)) == 1 else { throw .timeout }
                } else {
                    throw .protocolViolation("the game closed the connection")
                }
            }
        }

        try write(exchange.greeting)
        var decoder = RconDecoder()
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, remaining(readMilliseconds))
            if ready < 0, errno == EINTR { continue }
            guard ready == 1 else { return try exchange.ended(closed: false) }
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n < 0, errno == EAGAIN || errno == EINTR { continue }
            guard n > 0 else { return try exchange.ended(closed: true) }
            decoder.append(buffer[..<n])
            while let packet = try decoder.next() {
                switch try exchange.receive(packet) {
                case .wait: break
                case .send(let bytes): try write(bytes)
                case .finished(let response): return response
                }
            }
        }
    }
}
