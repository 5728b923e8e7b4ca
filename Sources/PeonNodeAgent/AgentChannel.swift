public import PeonJSON
public import PeonPlatform
import PeonSystem
public import PeonTLS

#if canImport(Glibc)
    import Glibc
#endif

/// The scheduler's way to a node it does not share: Peon's node agent there, over mutual TLS (or
/// the agent's unix socket, when it runs beside the scheduler in the `compose.yaml` deployment).
///
/// An operation reuses an idle connection when there is one (`AgentConnections`), and a connection
/// that failed halfway is closed, never resynchronised. An agent that cannot be reached is `unavailable` (the job
/// waits for the node, as for the engine); an operation the agent refused is the agent's
/// `PlatformError`.
public final class AgentChannel: NodeChannel {
    public let host: String
    public let port: Int
    /// The scheduler's side of the mutual TLS, asked at each connection (keys may be rotated).
    let context: () -> TLSContext
    public let connectMilliseconds: Int32
    /// How long a connection that fails is tried again (an agent starting beside the scheduler).
    public let patienceSeconds: Double

    /// `host` is an IP literal, or `unix:<path>` (then `port` is unused).
    public convenience init(host: String, port: Int, context: TLSContext, connectMilliseconds: Int32 = 2000, patienceSeconds: Double = 0) {
        self.init(host: host, port: port, keys: { context }, connectMilliseconds: connectMilliseconds, patienceSeconds: patienceSeconds)
    }

    /// With the process's current keys (`AgentKeys`), whichever they are when a connection is made.
    public init(host: String, port: Int, keys: @escaping () -> TLSContext, connectMilliseconds: Int32 = 2000, patienceSeconds: Double = 0) {
        self.host = host
        self.port = port
        self.context = keys
        self.connectMilliseconds = connectMilliseconds
        self.patienceSeconds = patienceSeconds
    }

    /// `unix:<path>` or `<ip>:<port>` (`PEON_NODE_AGENT`).
    public convenience init?(address: String, keys: AgentKeys, patienceSeconds: Double) {
        if address.hasPrefix("unix:") {
            self.init(host: address, port: 0, keys: { keys.context }, patienceSeconds: patienceSeconds)
        } else {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
            self.init(host: String(address[..<colon]), port: port, keys: { keys.context }, patienceSeconds: patienceSeconds)
        }
    }

    var name: String { host.hasPrefix("unix:") ? host : "\(host):\(port)" }

    /// Mutual TLS to an agent's address; a plain `UnixStream` to an agent's unix socket on this host.
    func connect(_ context: TLSContext) throws(PlatformError) -> any ByteStream {
        let deadline = Monotonic.seconds() + patienceSeconds
        while true {
            do throws(TLSError) {
                if host.hasPrefix("unix:") { return try UnixStream.connect(host, timeoutMilliseconds: connectMilliseconds) }
                return try TLSStream.connect(host: host, port: port, context: context, timeoutMilliseconds: connectMilliseconds)
            } catch {
                guard Monotonic.seconds() < deadline else { throw .unavailable("Peon's node agent at \(name) does not answer: \(error)") }
                Monotonic.sleep(0.2)
            }
        }
    }

    public func perform(_ operation: NodeOperation, input: Int32?, output: Int32?) throws(PlatformError) -> JSON {
        let keys = context()
        let key = AgentConnections.Key(address: name, keys: keys)
        // Streams get a connection of their own; other operations reuse an idle one.
        let streams = operation.readsStream || operation.writesStream
        if !streams, let idle = AgentConnections.shared.take(key),
            let answer = try attempt(operation, on: idle, key: key, input: input, output: output, again: true)
        {
            return answer
        }
        if let answer = try attempt(operation, on: try connect(keys), key: key, input: input, output: output, again: false) {
            return answer
        }
        throw .unavailable("Peon's node agent at \(name) closed the connection mid-operation")
    }

    /// The operation's answer over `stream`; nil when the connection ended before any answer and
    /// `again` allows a new one: the agent closed an idle connection as the query went out, so the
    /// operation did not run, or it may have and running it twice does no harm (not a console line).
    func attempt(
        _ operation: NodeOperation, on stream: any ByteStream, key: AgentConnections.Key, input: Int32?, output: Int32?, again: Bool
    ) throws(PlatformError) -> JSON? {
        do throws(ExchangeError) {
            return try exchange(operation, on: stream, key: key, input: input, output: output)
        } catch {
            switch error {
            case .failed(let error): throw error
            case .stale(let sent):
                guard again, !sent || operation.repeatable else {
                    throw .unavailable("Peon's node agent at \(name) closed the connection mid-operation")
                }
                return nil
            }
        }
    }

    enum ExchangeError: Error {
        /// The connection ended before any answer frame: before the query was written (nothing
        /// ran), or after (the agent closed an idle connection as it came, or ended mid-operation).
        case stale(sent: Bool)
        case failed(PlatformError)
    }

    /// One operation over `stream`: closed after it, or kept idle when the answer came whole and
    /// nothing streamed.
    func exchange(_ operation: NodeOperation, on stream: any ByteStream, key: AgentConnections.Key, input: Int32?, output: Int32?)
        throws(ExchangeError) -> JSON
    {
        var keep = false
        var answered = false
        defer { if keep { AgentConnections.shared.put(key, stream) } else { stream.close() } }
        // Every read waits at most as long as the operation may take on the node.
        stream.setTimeout(milliseconds: Int32(operation.seconds * 1000))
        let reusable = !(operation.readsStream || operation.writesStream)
        var sent = false
        do {
            try AgentWire.write(stream, .query, json: operation.json)
            sent = true
            if operation.readsStream {
                guard let input else { throw PlatformError.refused("\(operation.name) needs an input stream") }
                try AgentWire.send(input, to: stream)
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: AgentWire.blockSize, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                guard let (kind, length) = try AgentWire.header(stream) else {
                    if !answered { throw ExchangeError.stale(sent: true) }
                    throw PlatformError.unavailable("Peon's node agent at \(name) closed the connection mid-operation")
                }
                answered = true
                switch kind {
                case .data:
                    // Read whole even when it cannot be written, so the answer that says why still comes.
                    guard let output, try AgentWire.copy(length, from: stream, to: output, through: buffer) else {
                        throw PlatformError.refused("cannot write the node's stream: \(String(cString: strerror(errno)))")
                    }
                case .answer:
                    let payload = length == 0 ? [] : try stream.read(exactly: length)
                    guard let answer = try? JSON.parse(payload) else { throw PlatformError.refused("the node agent's answer is not JSON") }
                    keep = reusable
                    return answer
                case .failure:
                    let payload = length == 0 ? [] : try stream.read(exactly: length)
                    keep = reusable
                    throw (try? JSON.parse(payload)).flatMap(PlatformError.init(json:))
                        ?? PlatformError.refused("the node agent failed without saying why")
                case .query, .end:
                    throw PlatformError.refused("the node agent sent an unexpected frame")
                }
            }
        } catch let error as ExchangeError {
            throw error
        } catch let error as PlatformError {
            throw .failed(error)
        } catch {
            // The query could not be written: the agent had closed the connection, nothing ran.
            if !sent, error is TLSError { throw .stale(sent: false) }
            throw .failed(.unavailable("Peon's node agent at \(name): \(error)"))
        }
    }
}
