/// A failed transfer, with text safe to show in a refresh report.
public enum CurlError: Error, Sendable, Equatable, CustomStringConvertible {
    case timeout
    /// The body exceeded the caller's limit; the transfer was aborted.
    case tooLarge(limit: Int)
    /// An HTTP status other than 2xx.
    case status(Int)
    /// libcurl's own failure (DNS, connect, TLS, protocol), with its message.
    case transport(code: Int, message: String)

    public var description: String {
        switch self {
        case .timeout: "timed out"
        case .tooLarge(let limit): "larger than \(limit) bytes"
        case .status(let s): "HTTP status \(s)"
        case .transport(_, let m): m
        }
    }
}
