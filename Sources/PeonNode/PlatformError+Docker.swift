public import PeonDocker
public import PeonPlatform

extension PlatformError {
    /// An engine's failure in Peon's terms: no answer, or a 503 (a Swarm manager without its
    /// quorum), is `unavailable` (the job waits for the engine); the engine's refusals keep its message.
    public init(_ error: DockerError) {
        switch error {
        case .notFound(let m): self = .notFound(m)
        case .conflict(let m): self = .conflict(m)
        case .transport: self = .unavailable(error.description)
        case .engine(let status, let m) where status == 503: self = .unavailable(m)
        case .engine, .unsupportedVersion, .badResponse: self = .refused(error.description)
        }
    }

    /// Runs an engine call, its failure as a `PlatformError`.
    public static func engine<T>(_ body: () throws(DockerError) -> T) throws(PlatformError) -> T {
        do {
            return try body()
        } catch {
            throw PlatformError(error)
        }
    }
}
