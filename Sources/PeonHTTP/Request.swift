public import PeonJSON

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP request as the API sees it, independent of the transport (FastCGI or in-process tests).
public struct Request: Sendable {
    public var method: String
    /// The path exactly as the client sent it (still percent-encoded, no query string).
    public var rawPath: String
    public var query: String
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// The client address as nginx saw it.
    public var remoteAddress: String
    /// nginx's `$request_id`, for logs and audit rows.
    public var requestID: String
    /// True once the client has gone away (the transport closed): long waits end early.
    public var clientGone: @Sendable () -> Bool = { false }
    /// Sleeps while a request waits (for a job, for new log lines). The transport makes this give
    /// its CPU slot to another request meanwhile, so waiting requests never crowd out working ones.
    public var idle: @Sendable (Double) -> Void = { seconds in _ = usleep(UInt32(max(0, min(seconds, 60)) * 1_000_000)) }
    /// Set only by nginx's `location = /metrics`, after its `allow`/`deny` let the client in (a
    /// FastCGI parameter of its own, never a header, so no client can set it).
    public var metricsAllowed = false

    /// - Parameter target: the request target, `path?query`.
    public init(
        method: String, target: String, headers: [String: String] = [:], body: [UInt8] = [],
        remoteAddress: String = "127.0.0.1", requestID: String = ""
    ) {
        self.method = method
        if let q = target.firstIndex(of: "?") {
            rawPath = String(target[..<q])
            query = String(target[target.index(after: q)...])
        } else {
            rawPath = target
            query = ""
        }
        var lowered: [String: String] = [:]
        for (k, v) in headers { lowered[k.lowercased()] = v }
        self.headers = lowered
        self.body = body
        self.remoteAddress = remoteAddress
        self.requestID = requestID
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

    /// The first value of a query parameter, percent-decoded; nil when absent or undecodable.
    public func queryItem(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = try? PercentDecoding.decode(parts[0], plusIsSpace: true), key == name else { continue }
            return parts.count > 1 ? (try? PercentDecoding.decode(parts[1], plusIsSpace: true)) : ""
        }
        return nil
    }

    /// The body as a JSON object. An empty body is `{}`; anything else that is not an object is a 400.
    public func jsonObject() throws(HTTPError) -> JSON {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([]) }
        let value: JSON
        do {
            value = try JSON.parse(body)
        } catch {
            throw HTTPError(status: 400, code: "json.invalid", message: "The request body is not valid JSON (\(error)).")
        }
        guard case .object = value else {
            throw HTTPError(status: 400, code: "json.invalid", message: "The request body must be a JSON object.")
        }
        return value
    }
}

/// Percent-decoding of path segments and query items, refusing malformed escapes and invalid UTF-8.
public enum PercentDecoding {
    public static func decode(_ text: some StringProtocol, plusIsSpace: Bool = false) throws(HTTPError) -> String {
        var out: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let hi = hex(bytes[bytes.startIndex]), let lo = hex(bytes[bytes.startIndex + 1]) else {
                    throw HTTPError(status: 400, code: "request.invalid", message: "The request path has a malformed percent-escape.")
                }
                out.append(hi << 4 | lo)
                bytes = bytes.dropFirst(2)
            } else if plusIsSpace, b == UInt8(ascii: "+") {
                out.append(0x20)
            } else {
                out.append(b)
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "The request path is not valid UTF-8.")
        }
        return s
    }

    static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
