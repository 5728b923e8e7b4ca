internal import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// A plain connection over a unix socket: the agent beside the scheduler on one host (the
/// `compose.yaml` deployment). No byte crosses a network, the socket file's mode (owner only) is
/// the door and the kernel names the peer (`SO_PEERCRED`), which the agent checks: TLS would add
/// nothing but encrypting every byte of a backup twice on the same machine.
public final class UnixStream: ByteStream {
    private var fd: Int32
    private var usable = true

    private init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Connects to `unix:<path>` within `timeoutMilliseconds`; reads and writes then time out after
    /// as long each until `setTimeout` says otherwise.
    public static func connect(_ address: String, timeoutMilliseconds: Int32) throws(TLSError) -> UnixStream {
        let deadline = Socket.nowMilliseconds() + Int64(timeoutMilliseconds)
        let socketAddress = try SocketAddress(host: address, port: 0)
        guard socketAddress.family == AF_UNIX else { throw TLSError("not a unix socket address: \"\(address)\"") }
        let fd = try Socket.tcp(family: AF_UNIX)
        do {
            try Socket.connect(fd, to: socketAddress, deadline: deadline, what: address)
        } catch {
            Glibc.close(fd)
            throw error
        }
        let stream = UnixStream(fd: fd)
        stream.setTimeout(milliseconds: timeoutMilliseconds)
        return stream
    }

    /// The agent's side of an accepted connection `fd` (owned from here on, closed on refusal): only
    /// a peer running as one of `users` gets a stream.
    public static func accept(_ fd: Int32, users: Set<UInt32>, timeoutMilliseconds: Int32) throws(TLSError) -> UnixStream {
        let uid = peon_peer_uid(fd)
        guard uid >= 0, users.contains(UInt32(uid)) else {
            Glibc.close(fd)
            throw TLSError(uid < 0 ? "the peer's user is unknown" : "a peer running as uid \(uid) is not Peon's scheduler")
        }
        let stream = UnixStream(fd: fd)
        stream.setTimeout(milliseconds: timeoutMilliseconds)
        return stream
    }

    public func setTimeout(milliseconds: Int32) {
        guard fd >= 0 else { return }
        Socket.setTimeouts(fd, milliseconds: milliseconds)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        guard fd >= 0, usable else { throw TLSError("write: the stream is closed or failed earlier") }
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a peer gone is an error here, not SIGPIPE.
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                offset += n
                continue
            }
            if n < 0, errno == EINTR { continue }
            usable = false
            throw TLSError(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "write timed out" : "write failed: \(Socket.errnoText())")
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        guard fd >= 0, usable else { throw TLSError("read: the stream is closed or failed earlier") }
        guard buffer.count > 0 else { return 0 }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            usable = false
            throw TLSError(errno == EAGAIN || errno == EWOULDBLOCK ? "read timed out" : "read failed: \(Socket.errnoText())")
        }
    }

    public var isQuiet: Bool {
        guard fd >= 0, usable else { return false }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 0
    }

    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
        usable = false
    }
}
