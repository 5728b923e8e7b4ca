public import Logging
public import PeonCore
import PeonCurl
public import PeonStore
import Synchronization

/// What one worker thread's handlers share: its own database connection, the configuration, a
/// logger and (made on first use) a curl handle. Created on the thread that uses it, after `fork()`.
public final class APIContext {
    public let store: Store
    public let configuration: Configuration
    public var logger: Logger
    public let startedAt: Int64
    /// The process's budget of threads that may wait for a job (shared by its threads).
    public let waits: WaitBudget
    /// The process's metrics since its last flush (shared by its threads).
    public let metrics: MetricsRecorder
    private var curlHandle: CurlEasy?
    /// The rendered `GET /servers` answer and the `servers.version` it was rendered at.
    var serverListCache: (version: String, body: [UInt8])?

    public init(
        store: Store, configuration: Configuration, logger: Logger, startedAt: Int64, waits: WaitBudget = WaitBudget(limit: 1 << 20),
        metrics: MetricsRecorder = MetricsRecorder()
    ) {
        self.waits = waits
        self.metrics = metrics
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

/// How many of a worker process's threads may wait for a job at once. The rest stay free for
/// reads: an action beyond the budget is answered at once with its job (202), as with `?async=true`.
public final class WaitBudget: Sendable {
    public let limit: Int
    private let waiting = Atomic<Int>(0)

    public init(limit: Int) { self.limit = limit }

    /// Takes a slot; false when all are taken, or when taking one would leave fewer than
    /// `leaving` free (log follows leave half the slots to actions).
    func acquire(leaving: Int = 0) -> Bool {
        var current = waiting.load(ordering: .relaxed)
        while current < limit - leaving {
            let (exchanged, original) = waiting.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func release() { waiting.subtract(1, ordering: .relaxed) }
}
