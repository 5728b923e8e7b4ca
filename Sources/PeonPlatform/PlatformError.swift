/// Why a platform operation failed, in terms the scheduler can act on, whatever the engine.
public enum PlatformError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The workload, image or node does not exist.
    case notFound(String)
    /// Taken already (a name, a port), or in a state that forbids the call.
    case conflict(String)
    /// The engine, or the node that holds the server, cannot be reached now: retry later.
    case unavailable(String)
    /// The engine or Peon refused the request, with its message (shown on the job).
    case refused(String)

    public var description: String {
        switch self {
        case .notFound(let m): "not found: \(m)"
        case .conflict(let m): "conflict: \(m)"
        case .unavailable(let m): "unavailable: \(m)"
        case .refused(let m): m
        }
    }
}
