/// A platform's handle on a server's workload (a Docker container id, a Swarm service id).
/// Opaque to everyone else: stored on the server row and handed back, never parsed.
public struct ServerRef: Sendable, Hashable, CustomStringConvertible {
    public let raw: String

    public init(_ raw: String) { self.raw = raw }

    public var description: String { raw }
}
