public import PeonCurl

/// A failed Engine API call, carrying Docker's own message.
public enum DockerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 404: no such container, image or network.
    case notFound(String)
    /// 409: name in use, container running, and the like.
    case conflict(String)
    /// Any other error status, with the engine's `message`.
    case engine(status: Int, message: String)
    /// The socket could not be reached or the transfer failed.
    case transport(CurlError)
    /// The engine speaks no API version this client supports.
    case unsupportedVersion(String)
    /// The engine answered something that is not the documented JSON.
    case badResponse(String)

    public var description: String {
        switch self {
        case .notFound(let m): "not found: \(m)"
        case .conflict(let m): "conflict: \(m)"
        case .engine(let s, let m): "docker engine error \(s): \(m)"
        case .transport(let e): "docker socket: \(e)"
        case .unsupportedVersion(let m): m
        case .badResponse(let m): "unexpected docker response: \(m)"
        }
    }
}
