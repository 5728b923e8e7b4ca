import PeonJSON
public import PeonPlatform
import PeonSystem
public import PeonTLS
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The agent's side: accepts mutual-TLS connections from the scheduler (only a certificate of
/// Peon's CA with the client role gets past the handshake), or on a unix socket connections from
/// root or the agent's own user (the kernel's word, `SO_PEERCRED`), and runs each one's operation on this
/// node through `node`, one thread per connection, at most `maximumConnections` at once (one more
/// is closed at once, before any TLS work).
public final class AgentServer: Sendable {
    let listener: TCPListener
    /// The agent's side of the mutual TLS, asked at each connection (its keys may be reloaded).
    let context: @Sendable () -> TLSContext
    let node: @Sendable () -> any NodeChannel
    let maximumConnections: Int
    let active = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    /// Connections taken so far (how many handshakes the agent did).
    public var acceptedConnections: Int { accepted.load(ordering: .relaxed) }
    /// How long a connection may wait for its next operation. The scheduler gives up on an idle
    /// one sooner (`AgentConnections.idleSeconds`), so it never sends into one about to close.
    let idleMilliseconds: Int32
    let log: @Sendable (String) -> Void

    public init(
        listener: TCPListener, context: @escaping @Sendable () -> TLSContext, maximumConnections: Int = 16,
        idleMilliseconds: Int32 = 15_000, node: @escaping @Sendable () -> any NodeChannel,
        log: @escaping @Sendable (String) -> Void
    ) {
        self.listener = listener
        self.context = context
        self.node = node
        self.maximumConnections = maximumConnections
        self.idleMilliseconds = idleMilliseconds
        self.log = log
    }

    /// Serves until `keepGoing` turns false (checked every second).
    public func serve(keepGoing: @escaping @Sendable () -> Bool) {
        while keepGoing() {
            guard let fd = listener.accept(timeoutMilliseconds: 1000) else { continue }
            guard active.add(1, ordering: .relaxed).newValue <= maximumConnections else {
                active.subtract(1, ordering: .relaxed)
                close(fd)
                log("connection refused: \(maximumConnections) already open")
                continue
            }
            accepted.add(1, ordering: .relaxed)
            ThreadHandle.detach { [self] in
                defer { active.subtract(1, ordering: .relaxed) }
                handle(fd)
            }
        }
    }

    func handle(_ fd: Int32) {
        let stream: any ByteStream
        do {
            if listener.unix {
                stream = try UnixStream.accept(fd, users: [0, geteuid()], timeoutMilliseconds: 5000)
            } else {
                stream = try TLSStream.accept(fd, context: context(), timeoutMilliseconds: 5000)
            }
        } catch {
            log("handshake refused: \(error)")
            return
        }
        defer { stream.close() }
        // Between operations: the scheduler closing an idle connection, or its quiet time running
        // out, is no news.
        var idle = false
        do {
            // Operations one after another on the same connection (the scheduler keeps a few open:
            // no handshake per operation); one that streams ends it, as does a quiet while.
            while true {
                stream.setTimeout(milliseconds: idle ? idleMilliseconds : 30_000)
                guard let (kind, payload) = try AgentWire.read(stream), kind == .query else { return }
                idle = false
                let operation: NodeOperation
                do {
                    guard let json = try? JSON.parse(payload) else { throw PlatformError.refused("the query is not JSON") }
                    operation = try NodeOperation(json: json)
                } catch let error as PlatformError {
                    try AgentWire.write(stream, .failure, json: error.json)
                    return
                }
                stream.setTimeout(milliseconds: Int32(operation.seconds * 1000))
                let outcome: Result<JSON, PlatformError>
                if operation.readsStream {
                    outcome = try receiving(operation, from: stream)
                } else if operation.writesStream {
                    outcome = try sending(operation, to: stream)
                } else {
                    outcome = Result { () throws(PlatformError) in try node().perform(operation, input: nil, output: nil) }
                }
                switch outcome {
                case .success(let answer): try AgentWire.write(stream, .answer, json: answer)
                case .failure(let error): try AgentWire.write(stream, .failure, json: error.json)
                }
                if operation.readsStream || operation.writesStream { return }
                idle = true
            }
        } catch {
            if !idle { log("connection ended: \(error)") }
        }
    }

    /// The operation reads the scheduler's `D` frames through a pipe, fed by a thread of its own.
    /// Frames that arrive after the operation stopped reading are drained, so the answer still follows.
    func receiving(_ operation: NodeOperation, from stream: any ByteStream) throws(TLSError) -> Result<JSON, PlatformError> {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return .failure(.unavailable("no pipe: \(String(cString: strerror(errno)))")) }
        let (reader, writer) = (fds[0], fds[1])
        AgentWire.enlarge(writer)
        let failure = Mutex<TLSError?>(nil)
        let handoff = Handoff(stream)
        let feeder = ThreadHandle {
            var open = true
            defer { if open { close(writer) } }
            do {
                while let (kind, payload) = try AgentWire.read(handoff.value) {
                    if kind == .end { break }
                    guard kind == .data else { throw TLSError("unexpected frame in a stream") }
                    if open, !AgentWire.copy(payload, to: writer) {
                        close(writer)
                        open = false
                    }
                }
            } catch let error as TLSError {
                failure.withLock { $0 = error }
            } catch {
                failure.withLock { $0 = TLSError("\(error)") }
            }
        }
        let outcome = Result { () throws(PlatformError) in try node().perform(operation, input: reader, output: nil) }
        // Unblocks a feeder still writing: its writes fail and it drains the rest.
        close(reader)
        feeder.join()
        if let error = failure.withLock({ $0 }) { throw error }
        return outcome
    }

    /// The operation writes into a pipe whose bytes a thread of its own sends as `D` frames.
    func sending(_ operation: NodeOperation, to stream: any ByteStream) throws(TLSError) -> Result<JSON, PlatformError> {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return .failure(.unavailable("no pipe: \(String(cString: strerror(errno)))")) }
        let (reader, writer) = (fds[0], fds[1])
        let failure = Mutex<TLSError?>(nil)
        let handoff = Handoff(stream)
        AgentWire.enlarge(reader)
        let sender = ThreadHandle {
            defer { close(reader) }
            // The frame's header and its data in one buffer: one TLS record per frame.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: AgentWire.blockSize + 5, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = read(reader, buffer.baseAddress! + 5, AgentWire.blockSize)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return }
                do {
                    for (i, byte) in AgentWire.header(.data, n).enumerated() { buffer[i] = byte }
                    try handoff.value.write(UnsafeRawBufferPointer(rebasing: buffer[..<(n + 5)]))
                } catch let error as TLSError {
                    failure.withLock { $0 = error }
                    return  // closing the reader makes the operation's writes fail
                } catch {
                    return
                }
            }
        }
        let outcome = Result { () throws(PlatformError) in try node().perform(operation, input: nil, output: writer) }
        close(writer)
        sender.join()
        if let error = failure.withLock({ $0 }) { throw error }
        return outcome
    }
}
