public import PeonCurl
public import PeonJSON

/// A plain Docker Engine API client over the engine's unix socket (libcurl). It knows the Engine
/// API, not Peon: the platform layer turns server specs into these calls.
///
/// One instance per thread: it owns a curl handle (the connection is reused between calls).
public final class DockerClient {
    public let socketPath: String
    /// The negotiated API version, e.g. `1.41`; every call is prefixed `/v<version>`.
    public let apiVersion: String
    public let engineVersion: String
    let curl = CurlEasy()
    /// Told of every completed call (method, path without the version, seconds): the scheduler
    /// records Docker's latency with it. Streams are not timed (they last as long as they are read).
    public var observer: (@Sendable (_ method: String, _ path: String, _ seconds: Double) -> Void)?

    /// Connects and negotiates the API version with `GET /version`.
    public init(socketPath: String = "/var/run/docker.sock") throws(DockerError) {
        self.socketPath = socketPath
        let response: CurlResponse
        do {
            response = try curl.perform(
                CurlRequest(url: "http://docker/version", unixSocket: socketPath, limits: TransferLimits(totalTimeoutMilliseconds: 10_000)))
        } catch {
            throw .transport(error)
        }
        guard response.status == 200, let body = try? JSON.parse(response.body), let newest = body["ApiVersion"]?.stringValue else {
            throw .badResponse("GET /version answered \(response.status)")
        }
        guard let chosen = DockerAPIVersion.negotiate(engineNewest: newest, engineOldest: body["MinAPIVersion"]?.stringValue) else {
            throw .unsupportedVersion(
                "the Docker engine speaks API \(body["MinAPIVersion"]?.stringValue ?? "?")–\(newest); Peon needs \(DockerAPIVersion.oldestSupported)–\(DockerAPIVersion.newestSupported)"
            )
        }
        apiVersion = chosen
        engineVersion = body["Version"]?.stringValue ?? "unknown"
    }

    /// One call; an error status throws with the engine's message.
    @discardableResult
    public func call(
        _ method: String, _ path: String, query: [(String, String)] = [], body: JSON? = nil, timeoutMilliseconds: Int = 60_000,
        maximumBytes: Int = 16 << 20, headers: [String] = []
    ) throws(DockerError) -> CurlResponse {
        let response: CurlResponse
        let started = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - started
            observer?(method, path, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
        do {
            var request = request(
                method, path, query: query, body: body,
                limits: TransferLimits(totalTimeoutMilliseconds: timeoutMilliseconds, maximumBytes: maximumBytes))
            request.headers += headers
            response = try curl.perform(request)
        } catch {
            throw .transport(error)
        }
        try check(response)
        return response
    }

    /// A call whose JSON answer is returned.
    public func json(_ method: String, _ path: String, query: [(String, String)] = [], body: JSON? = nil, timeoutMilliseconds: Int = 60_000)
        throws(DockerError) -> JSON
    {
        let response = try call(method, path, query: query, body: body, timeoutMilliseconds: timeoutMilliseconds)
        do {
            return try JSON.parse(response.body)
        } catch {
            throw .badResponse("\(method) \(path): \(error)")
        }
    }

    /// A streamed call: `onChunk` gets raw body bytes until it returns false, the stream ends, or
    /// `keepGoing` turns false (polled about once a second, so idle streams stop too).
    public func stream(
        _ method: String, _ path: String, query: [(String, String)] = [], body: JSON? = nil,
        rawBody: (bytes: [UInt8], contentType: String)? = nil, headers: [String] = [], keepGoing: @escaping () -> Bool,
        onChunk: (UnsafeRawBufferPointer) -> Bool
    ) throws(DockerError) {
        let response: CurlResponse
        do {
            var limits = TransferLimits(totalTimeoutMilliseconds: 0, maximumBytes: Int.max)
            limits.connectTimeoutMilliseconds = 5_000
            var request = request(method, path, query: query, body: body, limits: limits)
            if let rawBody {
                request.body = rawBody.bytes
                request.headers = ["Content-Type: \(rawBody.contentType)"]
            }
            request.headers += headers
            response = try curl.stream(request, keepGoing: keepGoing, onChunk: onChunk)
        } catch {
            throw .transport(error)
        }
        try check(response)
    }

    func request(_ method: String, _ path: String, query: [(String, String)], body: JSON?, limits: TransferLimits) -> CurlRequest {
        var url = "http://docker/v\(apiVersion)\(path)"
        if !query.isEmpty { url += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&") }
        return CurlRequest(
            method: method, url: url, unixSocket: socketPath, headers: body == nil ? [] : ["Content-Type: application/json"],
            body: body?.bytes, limits: limits)
    }

    func check(_ response: CurlResponse) throws(DockerError) {
        guard response.status >= 400 else { return }
        let message =
            (try? JSON.parse(response.body))?["message"]?.stringValue ?? String(decoding: response.body.prefix(500), as: UTF8.self)
        switch response.status {
        case 404: throw .notFound(message)
        case 409: throw .conflict(message)
        default: throw .engine(status: response.status, message: message)
        }
    }

    /// Percent-encodes a query component (RFC 3986 unreserved characters pass).
    static func escape(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                out += "%"
                out.unicodeScalars.append(hex[Int(b >> 4)])
                out.unicodeScalars.append(hex[Int(b & 0xF)])
            }
        }
        return out
    }

    /// A bounded label for a call's path: ids and names become `*`, e.g. `/containers/*/start`.
    public static func pathLabel(_ path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        guard let first = parts.first else { return "/" }
        let verbs: Set<String> = ["json", "create", "prune", "build", "events", "version", "_ping", "info"]
        let shaped = parts.enumerated().map { i, p in i == 0 || verbs.contains(p) || (i == parts.count - 1 && i >= 2) ? p : "*" }
        return "/" + (shaped.count > 4 ? [first, "*"] : shaped).joined(separator: "/")
    }

    /// The `filters` query value for a label selector, e.g. `peon.managed=true`.
    public static func labelFilter(_ labels: [String]) -> String {
        JSON.object([("label", .array(labels.map(JSON.string)))]).text
    }
}

@available(*, unavailable)
extension DockerClient: Sendable {}
