public import PeonJSON

/// Reports how long each node operation took (`peon_node_operation_duration_seconds`): the
/// operator's view of a node agent's latency, and the figures `bench/node.sh` compares between
/// deployments. Failed operations are reported too: a timeout is a latency worth seeing.
public final class ObservedChannel: NodeChannel {
    /// The operation's name (`config`, `archive`, ...) and its seconds.
    public typealias Observer = @Sendable (String, Double) -> Void

    let inner: any NodeChannel
    let observe: Observer

    public init(_ inner: any NodeChannel, observe: @escaping Observer) {
        self.inner = inner
        self.observe = observe
    }

    public func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON {
        let started = ContinuousClock.now
        defer {
            let took = started.duration(to: .now).components
            observe(operation.name, Double(took.seconds) + Double(took.attoseconds) / 1e18)
        }
        return try inner.perform(operation, input: input, output: output)
    }
}
