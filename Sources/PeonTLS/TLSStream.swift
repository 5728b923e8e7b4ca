internal import COpenSSL

#if canImport(Glibc)
    import Glibc
#endif

/// One TLS connection over a TCP socket: blocking I/O with per-call timeouts (SO_RCVTIMEO and
/// SO_SNDTIMEO on the socket); a timeout throws. Not shared between threads.
///
/// OpenSSL writes to the socket with plain `write`, so a peer that vanished raises SIGPIPE: the
/// process must ignore it (`signal(SIGPIPE, SIG_IGN)`, as Peon's executables do) to get an error
/// instead of dying.
///
/// After any error (a timeout included) the connection is unusable: close it.
public final class TLSStream: ByteStream {
    private var ssl: OpaquePointer?
    private var fd: Int32
    /// True from a completed handshake until the first failure or timeout. Only then does close send
    /// close_notify (OpenSSL forbids it after a fatal error, and a stalled peer would stall it).
    private var usable = false

    /// The peer certificate's subject CN (verified), nil if none.
    public private(set) var peerCommonName: String?

    private init(ssl: OpaquePointer, fd: Int32) {
        self.ssl = ssl
        self.fd = fd
    }

    deinit { close() }

    /// Client: TCP connect to an IPv4 or IPv6 literal `host`:`port` (non-blocking connect + poll for
    /// `timeoutMilliseconds`, then back to blocking), then the handshake within the same time budget.
    /// Returns only once the server has accepted this client's certificate. Reads and writes then time
    /// out after `timeoutMilliseconds` each until `setTimeout` says otherwise.
    public static func connect(host: String, port: Int, context: TLSContext, timeoutMilliseconds: Int32) throws(TLSError) -> TLSStream {
        guard context.role == .client else { throw TLSError("connect needs a client context") }
        let deadline = Socket.nowMilliseconds() + Int64(timeoutMilliseconds)
        let address = try SocketAddress(host: host, port: port)
        let what = address.family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
        let fd = try Socket.tcp(family: address.family)
        do {
            try Socket.connect(fd, to: address, deadline: deadline, what: what)
        } catch {
            Glibc.close(fd)
            throw error
        }
        var nodelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, socklen_t(MemoryLayout<Int32>.size))
        let stream = try TLSStream(fd: fd, context: context)
        do {
            try stream.handshake(deadline: deadline, what: "TLS handshake with \(what)")
            try stream.awaitAcceptance(deadline: deadline, what: what)
        } catch {
            stream.close()
            throw error
        }
        stream.usable = true
        stream.setTimeout(milliseconds: timeoutMilliseconds)
        return stream
    }

    /// Server: the handshake over an accepted socket `fd`, which the stream then owns (closed on failure too).
    /// Reads and writes then time out after `timeoutMilliseconds` each until `setTimeout` says otherwise.
    public static func accept(_ fd: Int32, context: TLSContext, timeoutMilliseconds: Int32) throws(TLSError) -> TLSStream {
        guard context.role == .server else {
            Glibc.close(fd)
            throw TLSError("accept needs a server context")
        }
        let deadline = Socket.nowMilliseconds() + Int64(timeoutMilliseconds)
        var nodelay: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, socklen_t(MemoryLayout<Int32>.size))
        let stream = try TLSStream(fd: fd, context: context)
        do {
            try stream.handshake(deadline: deadline, what: "TLS handshake with a client")
        } catch {
            stream.close()
            throw error
        }
        stream.usable = true
        stream.setTimeout(milliseconds: timeoutMilliseconds)
        return stream
    }

    /// An SSL over `fd` for `context`'s side; owns `fd` from the start (closed here if this fails).
    private convenience init(fd: Int32, context: TLSContext) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.context) else {
            Glibc.close(fd)
            throw .openSSL("SSL_new")
        }
        self.init(ssl: ssl, fd: fd)
        // The socket BIO does not close fd (BIO_NOCLOSE): close() does.
        guard SSL_set_fd(ssl, fd) == 1 else { throw .openSSL("SSL_set_fd") }
        if let name = context.expectedPeerName {
            guard let param = SSL_get0_param(ssl), X509_VERIFY_PARAM_set1_host(param, name, 0) == 1 else {
                throw .openSSL("setting the expected peer name \"\(name)\"")
            }
            // Only the subjectAltName counts, never a CN that happens to match, and no partial wildcards.
            X509_VERIFY_PARAM_set_hostflags(
                param, UInt32(X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            if context.role == .client {
                guard peon_SSL_set_tlsext_host_name(ssl, name) == 1 else { throw .openSSL("setting the server name") }
            }
        }
        if context.role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
    }

    /// The handshake, non-blocking under one deadline (a per-call socket timeout would restart on
    /// every message and let a slow peer stretch it).
    private func handshake(deadline: Int64, what: String) throws(TLSError) {
        guard let ssl else { throw TLSError("\(what): the stream is closed") }
        Socket.setNonBlocking(fd, true)
        defer { Socket.setNonBlocking(fd, false) }
        while true {
            ERR_clear_error()
            let rc = SSL_do_handshake(ssl)
            if rc == 1 { break }
            try waitOrThrow(SSL_get_error(ssl, rc), errno, deadline: deadline, what: what)
        }
        peerCommonName = Self.verifiedCommonName(ssl)
    }

    /// Client: waits for the server's session ticket, which it sends only after accepting this
    /// client's certificate (see TLSContext). A refusal arrives instead as an alert and throws.
    private func awaitAcceptance(deadline: Int64, what: String) throws(TLSError) {
        guard let ssl else { throw TLSError("TLS handshake with \(what): the stream is closed") }
        Socket.setNonBlocking(fd, true)
        defer { Socket.setNonBlocking(fd, false) }
        var byte: UInt8 = 0
        var count = 0
        while SSL_get_ex_data(ssl, TLSContext.acceptedSlot) == nil {
            ERR_clear_error()
            // Peek: data the server sent first (after its ticket) stays for the caller's read.
            let rc = SSL_peek_ex(ssl, &byte, 1, &count)
            if rc == 1 { break }
            let code = SSL_get_error(ssl, rc)
            let savedErrno = errno
            if SSL_get_ex_data(ssl, TLSContext.acceptedSlot) != nil { break }
            try waitOrThrow(code, savedErrno, deadline: deadline, what: "TLS handshake with \(what)")
        }
    }

    /// For a non-blocking handshake step: waits for the socket when OpenSSL wants to, throws otherwise.
    private func waitOrThrow(_ code: Int32, _ savedErrno: Int32, deadline: Int64, what: String) throws(TLSError) {
        switch code {
        case SSL_ERROR_WANT_READ:
            try Socket.wait(fd, for: Int32(POLLIN), deadline: deadline, timeoutMessage: "\(what) timed out")
        case SSL_ERROR_WANT_WRITE:
            try Socket.wait(fd, for: Int32(POLLOUT), deadline: deadline, timeoutMessage: "\(what) timed out")
        default:
            throw failure(code, savedErrno, what: what)
        }
    }

    /// Marks the stream unusable and describes the failure: the error queue, why the peer's certificate
    /// was refused, the socket error or the early end.
    private func failure(_ code: Int32, _ savedErrno: Int32, what: String) -> TLSError {
        usable = false
        var parts = TLSError.drainErrorQueue()
        if let ssl {
            let verify = SSL_get_verify_result(ssl)
            if verify != Int(X509_V_OK) {
                parts.append("peer certificate: \(String(cString: X509_verify_cert_error_string(verify)))")
            }
        }
        switch code {
        case SSL_ERROR_ZERO_RETURN:
            parts.append("the peer closed the connection")
        case SSL_ERROR_SYSCALL where savedErrno != 0 && parts.isEmpty:
            parts.append(Socket.errnoText(savedErrno))
        case SSL_ERROR_SYSCALL where parts.isEmpty:
            parts.append("the peer closed the connection")
        default:
            break
        }
        return TLSError(parts.isEmpty ? "\(what) failed (SSL error \(code))" : "\(what) failed: \(parts.joined(separator: "; "))")
    }

    /// The subject CN of the peer's certificate, when it passed verification.
    private static func verifiedCommonName(_ ssl: OpaquePointer) -> String? {
        guard SSL_get_verify_result(ssl) == Int(X509_V_OK), let cert = SSL_get0_peer_certificate(ssl),
            let name = X509_get_subject_name(cert)
        else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>? = nil
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { peon_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// Sets the timeout of each following read and write; 0 or less waits forever.
    public func setTimeout(milliseconds: Int32) {
        guard ssl != nil else { return }
        Socket.setTimeouts(fd, milliseconds: milliseconds)
    }

    /// Writes every byte. A timeout or a failure throws, and the stream is then unusable.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        guard let ssl, usable else { throw TLSError("write: the stream is closed or failed earlier") }
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            var written = 0
            let rc = SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &written)
            if rc == 1 {
                offset += written
                continue
            }
            let code = SSL_get_error(ssl, rc)
            let savedErrno = errno
            // A signal interrupted the socket call: OpenSSL wants the same call again.
            if code == SSL_ERROR_WANT_WRITE || code == SSL_ERROR_WANT_READ {
                if savedErrno == EINTR { continue }
                usable = false
                throw TLSError("write timed out")
            }
            throw failure(code, savedErrno, what: "write")
        }
    }

    /// Up to `buffer.count` bytes; 0 when the peer closed the connection cleanly (close_notify or EOF).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        guard let ssl, usable else { throw TLSError("read: the stream is closed or failed earlier") }
        guard buffer.count > 0 else { return 0 }
        while true {
            ERR_clear_error()
            var count = 0
            let rc = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
            if rc == 1 { return count }
            let code = SSL_get_error(ssl, rc)
            let savedErrno = errno
            switch code {
            case SSL_ERROR_ZERO_RETURN:
                return 0
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                if savedErrno == EINTR { continue }
                usable = false
                throw TLSError("read timed out")
            default:
                throw failure(code, savedErrno, what: "read")
            }
        }
    }

    /// Nothing waits to be read, in the socket or in OpenSSL's buffer, and the peer has not closed
    /// the connection (a close reads as ready): an idle connection that can carry the next request.
    public var isQuiet: Bool {
        guard let ssl, usable else { return false }
        if SSL_has_pending(ssl) == 1 { return false }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 0
    }

    /// Sends close_notify (best effort) and closes the socket; idempotent; also done in deinit.
    public func close() {
        guard let ssl else { return }
        if usable {
            // One short record; a peer that stopped reading must not hold us up.
            Socket.setTimeouts(fd, milliseconds: 200)
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
        }
        SSL_free(ssl)
        ERR_clear_error()
        Glibc.close(fd)
        self.ssl = nil
        fd = -1
        usable = false
    }
}
