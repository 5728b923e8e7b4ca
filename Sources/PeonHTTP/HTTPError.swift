public import PeonJSON

/// An error that knows its HTTP answer. Every error Peon returns is rendered from this one type,
/// in one envelope both PEON clients read (the web UI reads `info` then `detail`; the Discord bot
/// tests `"error" in data`).
public struct HTTPError: Error, Sendable, Equatable {
    public let status: Int
    /// Machine-readable, e.g. `auth.missing_key`.
    public let code: String
    /// Safe to show to the caller: never contains secrets or internal detail.
    public let message: String
    public var headers: [(String, String)]
    /// Extra members appended to the envelope (e.g. a per-plan failure report).
    public var extra: [(String, JSON)]

    public init(status: Int, code: String, message: String, headers: [(String, String)] = [], extra: [(String, JSON)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra
    }

    public static func == (a: HTTPError, b: HTTPError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message
    }

    public var envelope: JSON {
        .object(
            [
                ("status", "error"), ("info", .string(message)), ("error", .string(message)), ("detail", .string(message)),
                ("code", .string(code)),
            ] + extra)
    }

    public var response: Response { .json(envelope, status: status, headers: headers) }

    public static func notFound(_ message: String = "No such API route.") -> HTTPError {
        HTTPError(status: 404, code: "route.not_found", message: message)
    }
}
