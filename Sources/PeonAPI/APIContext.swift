public import Logging
public import PeonCore
import PeonCurl
public import PeonStore

/// What one worker process's handlers share: its own database connection, the configuration, a
/// logger and (made on first use) a curl handle. Created after `fork()`, never shared across processes.
public final class APIContext {
    public let store: Store
    public let configuration: Configuration
    public var logger: Logger
    public let startedAt: Int64
    private var curlHandle: CurlEasy?
    /// The rendered `GET /servers` answer and the `servers.version` it was rendered at.
    var serverListCache: (version: String, body: [UInt8])?

    public init(store: Store, configuration: Configuration, logger: Logger, startedAt: Int64) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.startedAt = startedAt
    }

    var curl: CurlEasy {
        if let curlHandle { return curlHandle }
        let made = CurlEasy()
        curlHandle = made
        return made
    }
}

@available(*, unavailable)
extension APIContext: Sendable {}
