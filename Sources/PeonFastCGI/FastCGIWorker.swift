internal import CFCGI
import Dispatch
public import Logging
public import PeonHTTP
import PeonSystem
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One FastCGI request slot. libfcgi keeps pointers into it, so it is heap-allocated and never moves.
final class FCGXRequest {
    let raw: UnsafeMutablePointer<FCGX_Request>

    init(socket: Int32) {
        raw = .allocate(capacity: 1)
        // FAIL_ACCEPT_ON_INTR: a signal ends a blocked accept at once instead of being retried inside libfcgi.
        FCGX_InitRequest(raw, socket, FCGI_FAIL_ACCEPT_ON_INTR)
    }

    deinit {
        FCGX_Free(raw, 1)
        raw.deallocate()
    }

    /// Every CGI parameter nginx sent, copied out at once (libfcgi frees them at the next accept).
    var parameters: [String: String] {
        var result: [String: String] = [:]
        guard var p = raw.pointee.envp else { return result }
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }

    func readBody(limit: Int) -> [UInt8]? {
        var body: [UInt8] = []
        let chunk = UnsafeMutableBufferPointer<CChar>.allocate(capacity: 65536)
        defer { chunk.deallocate() }
        while true {
            let n = FCGX_GetStr(chunk.baseAddress, Int32(chunk.count), raw.pointee.in)
            if n <= 0 { break }
            body.append(contentsOf: UnsafeRawBufferPointer(start: chunk.baseAddress, count: Int(n)))
            if body.count > limit { return nil }
        }
        return body
    }

    func write(_ response: Response) {
        var head = "Status: \(response.status) \(Response.reason(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        if let stream = response.stream {
            // No length: nginx passes the pieces on as they come (the answer says X-Accel-Buffering: no).
            // The stream always runs (it may hold resources to give back); it ends at the first failed write.
            var open = put(Array((head + "\r\n").utf8))
            let connection = raw.pointee.ipcFd
            stream { piece in
                open = open && put(piece) && !FCGXRequest.peerClosed(connection)
                return open
            }
            return
        }
        head += "Content-Length: \(response.body.count)\r\n\r\n"
        var bytes = Array(head.utf8)
        bytes.append(contentsOf: response.body)
        _ = put(bytes, flush: false)
    }

    /// Writes bytes to nginx (flushed at once for streams); false when the connection failed.
    func put(_ bytes: [UInt8], flush: Bool = true) -> Bool {
        let written = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { FCGX_PutStr($0.baseAddress, Int32($0.count), raw.pointee.out) }
        }
        guard written == Int32(bytes.count) else { return false }
        return !flush || FCGX_FFlush(raw.pointee.out) == 0
    }
}

@available(*, unavailable)
extension FCGXRequest: Sendable {}

/// One worker process: `threads` accept loops on the shared socket, each with its own request
/// slot and its own handler (made on that thread, so each thread owns its database connection).
///
/// Threads let a request that waits (a synchronous action, later a log stream) hold one thread
/// instead of the whole process, so reads keep being answered while actions are in flight.
public enum FastCGIWorker {
    /// Bodies above this are refused here too (nginx already limits them to 1 MiB), but for the
    /// paths `serve`'s `largeBodies` names.
    public static let maximumBody = 1 << 20

    /// Paths (prefixes of the request URI) whose bodies may be larger, and how large: the files
    /// API's uploads (`PEON_FILE_MAX`).
    public struct LargeBodies: Sendable {
        public let prefix: String
        public let limit: Int
        public init(prefix: String, limit: Int) {
            self.prefix = prefix
            self.limit = limit
        }
    }

    /// Serves until SIGTERM or until the supervisor goes away; returns the process's exit code.
    /// - Parameter makeHandler: called once on each thread; nil means the thread cannot serve
    ///   (its database did not open), which ends the whole process so the supervisor replaces it.
    /// - Parameter running: how many threads may run a handler at once (about the cores): the
    ///   others queue for a slot, and a request that waits (`Request.idle`) gives its slot up, so
    ///   dozens of threads never time-slice the CPU against each other (that tripled read p99).
    public static func serve(
        socket: Int32, threads: Int, running: Int, logger: Logger, largeBodies: LargeBodies? = nil,
        makeHandler: @escaping @Sendable () -> ((Request) -> Response)?
    ) -> Int32 {
        let failed = Flag()
        let parent = getppid()
        let slots = DispatchSemaphore(value: max(running, 1))
        let accepting = DispatchSemaphore(value: 1)
        let loops = (0..<max(threads, 1)).map { _ in
            ThreadHandle {
                guard let handle = makeHandler() else { return failed.set() }
                if !acceptLoop(
                    socket: socket, parent: parent, failed: failed, slots: slots, accepting: accepting, logger: logger,
                    largeBodies: largeBodies, handle: handle)
                {
                    failed.set()
                }
            }
        }
        for loop in loops { loop.join() }
        return failed.isSet ? 1 : 0
    }

    /// Accepts and answers requests one at a time; false when accepting failed for good.
    static func acceptLoop(
        socket: Int32, parent: pid_t, failed: Flag, slots: DispatchSemaphore, accepting: DispatchSemaphore, logger: Logger,
        largeBodies: LargeBodies? = nil, handle: (Request) -> Response
    ) -> Bool {
        let request = FCGXRequest(socket: socket)
        // Each idle accept tick (SO_RCVTIMEO) checks for SIGTERM, a failed sibling and a vanished supervisor.
        while !Signals.shutdownRequested.load(ordering: .relaxed), !failed.isSet, getppid() == parent {
            // One thread accepts at a time and keeps that turn until its request has a CPU slot,
            // so connections queue in the socket's backlog in order instead of inside the process.
            // A blocked accept holds no CPU slot: a waiting request (`idle`) gets its slot back as
            // soon as a running handler gives one up, not at the next accept tick.
            guard accepting.wait(timeout: .now() + 1) == .success else { continue }
            let rc = FCGX_Accept_r(request.raw)
            if rc < 0 {
                accepting.signal()
                if rc == -EAGAIN || rc == -EINTR || rc == -EWOULDBLOCK { continue }
                logger.error("accept failed", metadata: ["errno": "\(-rc)"])
                return false
            }
            slots.wait()
            accepting.signal()
            let slot = RunSlot(holding: slots)
            let response: Response
            let params = request.parameters
            var limit = maximumBody
            if let largeBodies, (params["REQUEST_URI"] ?? "").hasPrefix(largeBodies.prefix) { limit = max(limit, largeBodies.limit) }
            if let body = request.readBody(limit: limit) {
                var incoming = Request(cgiParameters: params, body: body)
                let connection = request.raw.pointee.ipcFd
                incoming.clientGone = { FCGXRequest.peerClosed(connection) }
                incoming.idle = { seconds in slot.idle(seconds) }
                response = handle(incoming)
            } else {
                response = HTTPError(status: 413, code: "request.too_large", message: "The request body exceeds \(limit) bytes.").response
            }
            // A stream mostly waits for its client and for new lines: it runs without a slot.
            if response.stream != nil { slot.release() }
            request.write(response)
            slot.release()
            FCGX_Finish_r(request.raw)
        }
        return true
    }
}

/// One request's hold on a CPU slot: taken when it starts, given up while it sleeps, and for good
/// when it ends (or starts streaming).
final class RunSlot: Sendable {
    private let slots: DispatchSemaphore
    private let held = Mutex(true)

    /// For a slot the caller has just taken.
    init(holding slots: DispatchSemaphore) {
        self.slots = slots
    }

    func release() {
        if held.withLock({ h in
            defer { h = false }
            return h
        }) {
            slots.signal()
        }
    }

    /// Sleeps without the slot, then waits for one: slots are held only by running handlers
    /// (a thread blocked in accept() holds none), so that wait is short.
    func idle(_ seconds: Double) {
        guard held.withLock({ $0 }) else { return Monotonic.sleep(seconds) }
        release()
        Monotonic.sleep(seconds)
        slots.wait()
        held.withLock { $0 = true }
    }
}

/// A process-wide "stop now" flag shared by a worker's threads.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

extension FCGXRequest {
    /// Whether nginx closed the request's connection (its client went away): with the whole
    /// request already read, any readable byte or hang-up on it means an end, never more input.
    static func peerClosed(_ fd: Int32) -> Bool {
        let rdhup: Int16 = 0x2000  // POLLRDHUP: Glibc exports it only under _GNU_SOURCE
        let ended: Int16 = rdhup | Int16(POLLHUP) | Int16(POLLERR) | Int16(POLLIN)
        var p = pollfd(fd: fd, events: Int16(POLLIN) | rdhup, revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        return p.revents & ended != 0
    }
}

extension Request {
    /// Builds a request from nginx's FastCGI parameters. Routing uses `REQUEST_URI` (as sent,
    /// not normalized), so `..` reaches validation and is refused there instead of being resolved.
    public init(cgiParameters p: [String: String], body: [UInt8]) {
        var headers: [String: String] = [:]
        for (name, value) in p where name.hasPrefix("HTTP_") {
            headers[name.dropFirst(5).replacingOccurrences(of: "_", with: "-").lowercased()] = value
        }
        if let type = p["CONTENT_TYPE"], !type.isEmpty { headers["content-type"] = type }
        self.init(
            method: p["REQUEST_METHOD"] ?? "GET", target: p["REQUEST_URI"] ?? p["DOCUMENT_URI"] ?? "/", headers: headers,
            body: body, remoteAddress: p["REMOTE_ADDR"] ?? "", requestID: p["REQUEST_ID"] ?? "")
        metricsAllowed = p["PEON_METRICS_ALLOWED"] == "1"
    }
}

extension Substring {
    fileprivate func replacingOccurrences(of a: Character, with b: Character) -> String {
        String(map { $0 == a ? b : $0 })
    }
}
