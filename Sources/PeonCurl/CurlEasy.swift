internal import CCurl

/// Process-wide libcurl setup; call once in `main` before any thread or fork.
public enum CurlGlobal {
    public static func initialize() {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }
}

/// Limits of one transfer. Every transfer is bounded in time and size.
public struct TransferLimits: Sendable {
    public var connectTimeoutMilliseconds: Int
    public var totalTimeoutMilliseconds: Int
    public var maximumBytes: Int

    public init(connectTimeoutMilliseconds: Int = 5_000, totalTimeoutMilliseconds: Int = 15_000, maximumBytes: Int = 1 << 20) {
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.totalTimeoutMilliseconds = totalTimeoutMilliseconds
        self.maximumBytes = maximumBytes
    }
}

/// One libcurl easy handle, confined to the thread that made it; connections are reused across calls.
public final class CurlEasy {
    private let handle: UnsafeMutableRawPointer

    public init() {
        handle = curl_easy_init()!
    }

    deinit { curl_easy_cleanup(handle) }

    /// GETs an http(s) URL, with TLS verified, at most 3 redirects (http/https only) and the given limits.
    public func get(_ url: String, limits: TransferLimits = TransferLimits()) throws(CurlError) -> [UInt8] {
        curl_easy_reset(handle)
        let sink = Sink(limit: limits.maximumBytes)
        let rcs = [
            peon_setopt_str(handle, CURLOPT_URL, url),
            peon_setopt_str(handle, CURLOPT_PROTOCOLS_STR, "http,https"),
            peon_setopt_str(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
            peon_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 1),
            peon_setopt_long(handle, CURLOPT_MAXREDIRS, 3),
            peon_setopt_long(handle, CURLOPT_NOSIGNAL, 1),
            peon_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1),
            peon_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2),
            peon_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, limits.connectTimeoutMilliseconds),
            peon_setopt_long(handle, CURLOPT_TIMEOUT_MS, limits.totalTimeoutMilliseconds),
            peon_setopt_long(handle, CURLOPT_MAXFILESIZE, limits.maximumBytes),
            peon_setopt_str(handle, CURLOPT_USERAGENT, "peon"),
            peon_setopt_writefn(
                handle,
                { data, size, count, userdata in
                    let sink = Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue()
                    let n = size * count
                    guard sink.bytes.count + n <= sink.limit else {
                        sink.overflowed = true
                        return 0  // aborts the transfer with CURLE_WRITE_ERROR
                    }
                    data.map { sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: $0, count: n)) }
                    return n
                }),
            peon_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque()),
        ]
        if let bad = rcs.first(where: { $0 != CURLE_OK }) {
            throw .transport(code: Int(bad.rawValue), message: String(cString: curl_easy_strerror(bad)))
        }
        let rc = withExtendedLifetime(sink) { curl_easy_perform(handle) }
        if sink.overflowed || rc == CURLE_FILESIZE_EXCEEDED { throw .tooLarge(limit: limits.maximumBytes) }
        if rc == CURLE_OPERATION_TIMEDOUT { throw .timeout }
        guard rc == CURLE_OK else { throw .transport(code: Int(rc.rawValue), message: String(cString: curl_easy_strerror(rc))) }
        var status = 0
        _ = peon_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        guard (200..<300).contains(status) else { throw .status(status) }
        return sink.bytes
    }
}

@available(*, unavailable)
extension CurlEasy: Sendable {}

/// Collects a body up to a limit; reached through the write callback's userdata pointer.
private final class Sink {
    let limit: Int
    var bytes: [UInt8] = []
    var overflowed = false
    init(limit: Int) { self.limit = limit }
}
