internal import CCurl

/// Process-wide libcurl setup; call once in `main` before any thread or fork.
public enum CurlGlobal {
    public static func initialize() {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }
}

/// Limits of one transfer. Every transfer is bounded in size; all but streams in time too.
public struct TransferLimits: Sendable {
    public var connectTimeoutMilliseconds: Int
    /// 0 means none (long-lived streams such as Docker events).
    public var totalTimeoutMilliseconds: Int
    public var maximumBytes: Int

    public init(connectTimeoutMilliseconds: Int = 5_000, totalTimeoutMilliseconds: Int = 15_000, maximumBytes: Int = 1 << 20) {
        self.connectTimeoutMilliseconds = connectTimeoutMilliseconds
        self.totalTimeoutMilliseconds = totalTimeoutMilliseconds
        self.maximumBytes = maximumBytes
    }
}

/// One HTTP request for `CurlEasy.perform`.
public struct CurlRequest: Sendable {
    public var method: String
    public var url: String
    /// Talk HTTP over this unix socket (the Docker engine's) instead of TCP.
    public var unixSocket: String?
    public var headers: [String]
    public var body: [UInt8]?
    public var limits: TransferLimits
    public var followRedirects: Bool
    /// A PEM file of certificates to trust instead of the system's (a stack's self-signed one).
    public var caFile: String?
    /// Skip TLS verification (`peon --insecure`): only for a server the user vouches for.
    public var insecure = false
    /// Connect directly even when the environment names a proxy (a cluster's own addresses).
    public var direct = false
    /// `host:port:address` entries: connect there without resolving the host (`CURLOPT_RESOLVE`),
    /// so the address a caller checked is the one connected to.
    public var resolve: [String] = []

    public init(
        method: String = "GET", url: String, unixSocket: String? = nil, headers: [String] = [], body: [UInt8]? = nil,
        limits: TransferLimits = TransferLimits(), followRedirects: Bool = false
    ) {
        self.method = method
        self.url = url
        self.unixSocket = unixSocket
        self.headers = headers
        self.body = body
        self.limits = limits
        self.followRedirects = followRedirects
    }
}

/// A finished transfer: the status and, unless streamed, the body.
public struct CurlResponse: Sendable {
    public let status: Int
    public let body: [UInt8]
}

/// One libcurl easy handle, confined to the thread that made it; connections are reused across calls.
public final class CurlEasy {
    let handle: UnsafeMutableRawPointer

    public init() {
        handle = curl_easy_init()!
    }

    deinit { curl_easy_cleanup(handle) }

    /// GETs an http(s) URL with TLS verified and at most 3 redirects (never from https to http); a
    /// status other than 2xx throws.
    public func get(_ url: String, limits: TransferLimits = TransferLimits()) throws(CurlError) -> [UInt8] {
        let response = try perform(CurlRequest(url: url, limits: limits, followRedirects: true))
        guard (200..<300).contains(response.status) else { throw .status(response.status) }
        return response.body
    }

    /// Performs a request and returns whatever status the server answered, with the body.
    public func perform(_ request: CurlRequest) throws(CurlError) -> CurlResponse {
        try run(request, sink: Sink(limit: request.limits.maximumBytes, onChunk: nil, keepGoing: nil))
    }

    /// Performs a request whose body is streamed to `onChunk` instead of collected; returning false
    /// ends the transfer normally. `keepGoing` is polled about once a second (and on every chunk),
    /// so an idle stream can be cancelled.
    public func stream(
        _ request: CurlRequest, keepGoing: @escaping () -> Bool, onChunk: (UnsafeRawBufferPointer) -> Bool
    ) throws(CurlError) -> CurlResponse {
        let result: Result<CurlResponse, CurlError> = withoutActuallyEscaping(onChunk) { chunk in
            Result { () throws(CurlError) in
                try run(request, sink: Sink(limit: request.limits.maximumBytes, onChunk: chunk, keepGoing: keepGoing))
            }
        }
        return try result.get()
    }

    private func run(_ request: CurlRequest, sink: Sink) throws(CurlError) -> CurlResponse {
        curl_easy_reset(handle)
        var headers: UnsafeMutablePointer<curl_slist>? = nil
        // An empty Expect: suppresses the 100-continue round trip for bodies over 1 KiB.
        for line in request.headers + ["Expect:"] { headers = curl_slist_append(headers, line) }
        defer { curl_slist_free_all(headers) }
        let limits = request.limits
        let plainHTTP = request.url.lowercased().hasPrefix("http://")
        var rcs = [
            peon_setopt_str(handle, CURLOPT_URL, request.url),
            // Plain http only when the URL says so; an https URL never redirects to http.
            peon_setopt_str(handle, CURLOPT_PROTOCOLS_STR, plainHTTP ? "http,https" : "https"),
            peon_setopt_str(handle, CURLOPT_REDIR_PROTOCOLS_STR, plainHTTP ? "http,https" : "https"),
            peon_setopt_long(handle, CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1 : 0),
            peon_setopt_long(handle, CURLOPT_MAXREDIRS, 3),
            peon_setopt_long(handle, CURLOPT_NOSIGNAL, 1),
            peon_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, request.insecure ? 0 : 1),
            peon_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, request.insecure ? 0 : 2),
            peon_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, limits.connectTimeoutMilliseconds),
            peon_setopt_long(handle, CURLOPT_TIMEOUT_MS, limits.totalTimeoutMilliseconds),
            peon_setopt_long(handle, CURLOPT_MAXFILESIZE, limits.maximumBytes),
            peon_setopt_str(handle, CURLOPT_USERAGENT, "peon"),
            peon_setopt_slist(handle, CURLOPT_HTTPHEADER, headers),
            peon_setopt_str(handle, CURLOPT_CUSTOMREQUEST, request.method),
            peon_setopt_writefn(
                handle,
                { data, size, count, userdata in
                    let sink = Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue()
                    return sink.accept(UnsafeRawBufferPointer(start: data, count: size * count)) ? size * count : 0
                }),
            peon_setopt_ptr(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque()),
        ]
        if let caFile = request.caFile { rcs.append(peon_setopt_str(handle, CURLOPT_CAINFO, caFile)) }
        if let socket = request.unixSocket { rcs.append(peon_setopt_str(handle, CURLOPT_UNIX_SOCKET_PATH, socket)) }
        if request.direct { rcs.append(peon_setopt_str(handle, CURLOPT_NOPROXY, "*")) }
        var resolved: UnsafeMutablePointer<curl_slist>? = nil
        for entry in request.resolve { resolved = curl_slist_append(resolved, entry) }
        defer { curl_slist_free_all(resolved) }
        if resolved != nil { rcs.append(peon_setopt_slist(handle, CURLOPT_RESOLVE, resolved)) }
        if request.method == "HEAD" { rcs.append(peon_setopt_long(handle, CURLOPT_NOBODY, 1)) }
        if sink.keepGoing != nil {
            rcs.append(peon_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
            rcs.append(
                peon_setopt_xferinfofn(
                    handle,
                    { userdata, _, _, _, _ in
                        Unmanaged<Sink>.fromOpaque(userdata!).takeUnretainedValue().keepGoing?() == false ? 1 : 0
                    }))
            rcs.append(peon_setopt_ptr(handle, CURLOPT_XFERINFODATA, Unmanaged.passUnretained(sink).toOpaque()))
        }
        // POST/PUT always send a body (possibly empty): with none set libcurl would read stdin.
        if let body = request.body ?? (request.method == "POST" || request.method == "PUT" ? [] : nil) {
            rcs.append(peon_setopt_long(handle, CURLOPT_POSTFIELDSIZE, body.count))
            // COPYPOSTFIELDS copies POSTFIELDSIZE bytes now, so the buffer need not outlive the call.
            rcs.append(
                (body.isEmpty ? [0] : body).withUnsafeBytes {
                    peon_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress))
                })
            // COPYPOSTFIELDS implies POST; keep the caller's verb.
            rcs.append(peon_setopt_str(handle, CURLOPT_CUSTOMREQUEST, request.method))
        }
        let rc: CURLcode = withExtendedLifetime(sink) { perform(rcs) }
        if sink.overflowed || rc == CURLE_FILESIZE_EXCEEDED { throw .tooLarge(limit: limits.maximumBytes) }
        if rc == CURLE_OPERATION_TIMEDOUT { throw .timeout }
        let stoppedByCaller = sink.stopped && (rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK)
        if rc == CURLE_ABORTED_BY_CALLBACK || stoppedByCaller {
            var status = 0
            _ = peon_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
            return CurlResponse(status: status, body: sink.bytes)
        }
        guard rc == CURLE_OK else { throw .transport(code: Int(rc.rawValue), message: String(cString: curl_easy_strerror(rc))) }
        var status = 0
        _ = peon_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return CurlResponse(status: status, body: sink.bytes)
    }

    private func perform(_ rcs: [CURLcode]) -> CURLcode {
        if let bad = rcs.first(where: { $0 != CURLE_OK }) { return bad }
        return curl_easy_perform(handle)
    }
}

@available(*, unavailable)
extension CurlEasy: Sendable {}

/// Collects a body up to a limit, or hands chunks to a consumer; reached through curl's userdata.
private final class Sink {
    let limit: Int
    let onChunk: ((UnsafeRawBufferPointer) -> Bool)?
    let keepGoing: (() -> Bool)?
    var bytes: [UInt8] = []
    var received = 0
    var overflowed = false
    var stopped = false

    init(limit: Int, onChunk: ((UnsafeRawBufferPointer) -> Bool)?, keepGoing: (() -> Bool)?) {
        self.limit = limit
        self.onChunk = onChunk
        self.keepGoing = keepGoing
    }

    /// False aborts the transfer (CURLE_WRITE_ERROR).
    func accept(_ chunk: UnsafeRawBufferPointer) -> Bool {
        if let onChunk {
            guard keepGoing?() != false, onChunk(chunk) else {
                stopped = true
                return false
            }
            return true
        }
        guard received + chunk.count <= limit else {
            overflowed = true
            return false
        }
        received += chunk.count
        bytes.append(contentsOf: chunk)
        return true
    }
}
