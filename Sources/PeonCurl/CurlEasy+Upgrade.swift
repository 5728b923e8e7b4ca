internal import CCurl

#if canImport(Glibc)
    import Glibc
#endif

extension CurlEasy {
    /// Sends a request that upgrades the connection (HTTP 101, as the Docker engine's attach
    /// does), then `payload` on the upgraded stream, and closes it. libcurl only connects
    /// (`CONNECT_ONLY`) and carries the bytes: it has no API for upgraded streams.
    /// - Returns: the status of the answer (101 when the upgrade took place).
    public func upgradeAndSend(
        url: String, unixSocket: String?, head: [UInt8], payload: [UInt8], timeoutMilliseconds: Int = 5000
    ) throws(CurlError) -> Int {
        curl_easy_reset(handle)
        var rcs = [
            peon_setopt_str(handle, CURLOPT_URL, url),
            peon_setopt_str(handle, CURLOPT_PROTOCOLS_STR, "http"),
            peon_setopt_long(handle, CURLOPT_CONNECT_ONLY, 1),
            peon_setopt_long(handle, CURLOPT_NOSIGNAL, 1),
            peon_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, timeoutMilliseconds),
        ]
        if let unixSocket { rcs.append(peon_setopt_str(handle, CURLOPT_UNIX_SOCKET_PATH, unixSocket)) }
        if let failed = rcs.first(where: { $0 != CURLE_OK }) { throw Self.error(failed) }
        let connected = curl_easy_perform(handle)
        guard connected == CURLE_OK else { throw Self.error(connected) }
        var socket: curl_socket_t = -1
        guard peon_getinfo_socket(handle, &socket) == CURLE_OK, socket >= 0 else {
            throw .transport(code: -1, message: "no connected socket")
        }
        let deadline = Self.nowMilliseconds() + timeoutMilliseconds
        try send(head, socket: socket, deadline: deadline)
        let status = try readStatus(socket: socket, deadline: deadline)
        if status == 101 || status == 200 { try send(payload, socket: socket, deadline: deadline) }
        return status
    }

    private func send(_ bytes: [UInt8], socket: curl_socket_t, deadline: Int) throws(CurlError) {
        var offset = 0
        while offset < bytes.count {
            var sent = 0
            let rc = bytes[offset...].withUnsafeBytes { curl_easy_send(handle, $0.baseAddress, $0.count, &sent) }
            if rc == CURLE_AGAIN {
                try wait(socket, for: Int16(POLLOUT), deadline: deadline)
                continue
            }
            guard rc == CURLE_OK else { throw Self.error(rc) }
            offset += sent
        }
    }

    /// Reads the answer's head (up to the blank line, at most 16 KiB) and returns its status.
    private func readStatus(socket: curl_socket_t, deadline: Int) throws(CurlError) -> Int {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !(head.count >= 4 && head.suffix(4).elementsEqual([13, 10, 13, 10])) {
            guard head.count < 16384 else { throw .tooLarge(limit: 16384) }
            var got = 0
            // One byte at a time: whatever follows the head belongs to the upgraded stream.
            let rc = curl_easy_recv(handle, &byte, 1, &got)
            if rc == CURLE_AGAIN {
                try wait(socket, for: Int16(POLLIN), deadline: deadline)
                continue
            }
            guard rc == CURLE_OK, got == 1 else {
                throw rc == CURLE_OK ? .transport(code: -1, message: "connection closed") : Self.error(rc)
            }
            head.append(byte)
        }
        let line = head.prefix { $0 != 13 }.split(separator: UInt8(ascii: " "))
        guard line.count >= 2, let status = Int(String(decoding: line[1], as: UTF8.self)) else {
            throw .transport(code: -1, message: "not an HTTP answer")
        }
        return status
    }

    private func wait(_ socket: curl_socket_t, for events: Int16, deadline: Int) throws(CurlError) {
        let left = deadline - Self.nowMilliseconds()
        guard left > 0 else { throw .timeout }
        var p = pollfd(fd: socket, events: events, revents: 0)
        _ = poll(&p, 1, Int32(min(left, 1000)))
    }

    static func nowMilliseconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    }

    static func error(_ code: CURLcode) -> CurlError {
        code == CURLE_OPERATION_TIMEDOUT
            ? .timeout : .transport(code: Int(code.rawValue), message: String(cString: curl_easy_strerror(code)))
    }
}
