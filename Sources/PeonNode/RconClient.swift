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

        let fd: Int32
        do {
            fd = try TCPConnect.open(host: host, port: port, timeoutMilliseconds: remaining(connectMilliseconds))
        } catch {
            throw .unreachable(error.description)
        }
        defer { close(fd) }

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
