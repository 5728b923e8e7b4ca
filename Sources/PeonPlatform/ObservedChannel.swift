public import PeonJSON

/// Who hears of node operations: `finished` with each one's name (`config`, `archive`, ...) and
/// seconds, failed ones too (a timeout is a latency worth seeing); `starting` before each one runs
/// (tests kill the scheduler there).
public struct NodeObserver: Sendable {
    public var starting: (@Sendable (String) -> Void)?
    public var finished: @Sendable (String, Double) -> Void

    public init(starting: (@Sendable (String) -> Void)? = nil, finished: @escaping @Sendable (String, Double) -> Void) {
        self.starting = starting
        self.finished = finished
    }
}

/// Reports how long each node operation took (`peon_node_operation_duration_seconds`): the
/// operator's view of a node agent's latency, and the figures `bench/node.sh` compares between
/// deployments.
public final class ObservedChannel: NodeChannel {
    let inner: any NodeChannel
    let observer: NodeObserver

    public init(_ inner: any NodeChannel, observer: NodeObserver) {
        self.inner = inner
        self.observer = observer
    }

    public func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON {
        observer.starting?(operation.name)
        let started = ContinuousClock.now
        defer {
            let took = started.duration(to: .now).components
            observer.finished(operation.name, Double(took.seconds) + Double(took.attoseconds) / 1e18)
        }
        return try inner.perform(operation, input: input, output: output)
    }
}
