#if canImport(Glibc)
    import Glibc
#endif

/// A unix datagram socket a scheduler thread sleeps on, so a job written by an API worker is
/// picked up at once instead of at the next poll. Each thread binds its own `wake-N.sock` in one
/// directory; `Wakeup.notify` sends a byte to every socket there.
public final class WakeupSocket {
    public let path: String
    private let fd: Int32

    public init(path: String) throws(FileError) {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FileError(path: path, reason: "socket: errno \(errno)") }
        var address = Wakeup.address(path)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            close(fd)
            throw FileError(path: path, reason: "bind: errno \(errno)")
        }
        chmod(path, 0o666)  // any local worker may wake the scheduler; a wake-up carries no data
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Sleeps until a wake-up arrives or `timeoutMilliseconds` pass; drains pending wake-ups.
    @discardableResult
    public func wait(timeoutMilliseconds: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMilliseconds) > 0 else { return false }
        var byte: UInt8 = 0
        while recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) > 0 {}
        return true
    }
}

@available(*, unavailable)
extension WakeupSocket: Sendable {}

public enum Wakeup {
    /// Wakes every scheduler thread listening in `directory`; never blocks, never fails the caller.
    public static func notify(directory: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var byte: UInt8 = 1
        for name in Files.list(directory) where name.hasPrefix("wake-") && name.hasSuffix(".sock") {
            var address = address(directory + "/" + name)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, &byte, 1, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }
}
