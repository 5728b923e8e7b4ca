import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /api/v1/server/logs/<uid>`: a server's recent output (PEON's FastAPI form), or with
/// `follow=true` a Server-Sent Events stream of new lines. Lines come from SQLite, where the
/// scheduler copies them; the API never reads the platform.
enum LogRoutes {
    static let maximumLines = 10_000
    /// How often a stream looks for new lines: a line reaches the client well within 100 ms.
    static let pollSeconds = 0.025
    static let heartbeatSeconds = 15.0
    /// A stream ends after this long; the client reconnects with `Last-Event-ID` and loses nothing.
    static let streamSeconds = 3600.0

    /// Follows one key may hold open at once, across the API's processes; and one server.
    static let followsPerKey = 4
    static let followsPerServer = 8

    static func logs(_ uid: ServerUID, request: Request, principal: Principal, context: APIContext) throws -> Response {
        let lines = try request.queryItem("lines").map { text in
            guard let n = CheckedNumber.int(text, in: 1...maximumLines) else {
                throw HTTPError(status: 400, code: "request.invalid", message: "lines must be a whole number from 1 to \(maximumLines).")
            }
            return n
        }
        let sessionOnly = try flag(request, "session_only", default: true)
        let follow = try flag(request, "follow", default: false)
        let resume = try resumePoint(request)
        let server = uid.description
        guard let record = try context.store.read({ tx in try tx.server(uid) }) else {
            throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
        }
        if follow {
            return try stream(server, after: resume, tail: lines ?? 200, key: principal.keyID, request: request, context: context)
        }
        let tail = try context.store.read { tx in
            let session = sessionOnly ? try tx.logPosition(server: server).session : nil
            return try tx.tailLogs(server: server, limit: lines ?? 200, session: session)
        }
        return .json([
            "server_uid": .string(server), "container_state": .string(record.observedState), "session_only": .bool(sessionOnly),
            "lines": .number(Double(lines ?? 200)), "logs": .array(tail.map { .string($0.line) }),
        ])
    }

    /// `Last-Event-ID` (or `last_event_id`): the `seq` of the last line the client has.
    static func resumePoint(_ request: Request) throws -> Int64? {
        guard let text = request.header("last-event-id") ?? request.queryItem("last_event_id") else { return nil }
        guard let seq = CheckedNumber.integer(text, in: 0...Int64.max) else {
            throw HTTPError(status: 400, code: "request.invalid", message: "Last-Event-ID must be a line id from this stream.")
        }
        return seq
    }

    static func flag(_ request: Request, _ name: String, default value: Bool) throws -> Bool {
        switch request.queryItem(name)?.lowercased() {
        case nil: return value
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw HTTPError(status: 400, code: "request.invalid", message: "\(name) must be true or false.")
        }
    }

    /// New lines as `id: <seq>` / `data: <line>` events, a comment every 15 s to keep proxies from
    /// closing an idle stream. A stream holds a thread, so it takes a wait slot like an action, but
    /// only from the first half of them: actions always keep the rest. Each key holds at most
    /// `followsPerKey` streams and each server `followsPerServer`, across the API's processes.
    static func stream(_ server: String, after resume: Int64?, tail: Int, key: String, request: Request, context: APIContext) throws
        -> Response
    {
        // Where it starts, before anything is taken that a failure would have to give back.
        var last = try resume ?? context.store.read { tx in try tx.logPosition(server: server).seq - Int64(tail) }
        let now = WallClock.now()
        guard
            let follow = try context.store.write({ tx in
                try tx.openLogFollow(
                    key: key, server: server, pid: getpid(), now: now, staleBefore: now - Int64(streamSeconds) - 60,
                    perKey: followsPerKey, perServer: followsPerServer)
            })
        else {
            throw HTTPError(
                status: 429, code: "logs.follow_limit",
                message:
                    "Too many log streams are open (at most \(followsPerKey) per key and \(followsPerServer) per server); close one or try again later.",
                headers: [("Retry-After", "5")])
        }
        guard context.waits.acquire(leaving: context.waits.limit / 2) else {
            try? context.store.write { tx in try tx.closeLogFollow(follow) }
            throw HTTPError(
                status: 503, code: "stream.busy", message: "Too many streams are open on this worker; try again shortly.",
                headers: [("Retry-After", "5")])
        }
        let headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")]
        return Response(status: 200, headers: headers) { write in
            defer {
                context.waits.release()
                try? context.store.write { tx in try tx.closeLogFollow(follow) }
            }
            let started = Monotonic.seconds()
            var quiet = started
            guard write(Array(": peon logs\n\n".utf8)) else { return }
            while !Signals.shutdownRequested.load(ordering: .relaxed), Monotonic.seconds() - started < streamSeconds {
                guard let lines = try? context.store.read({ tx in try tx.logs(server: server, afterSeq: max(last, 0), limit: 500) })
                else { return }
                if !lines.isEmpty {
                    var events: [UInt8] = []
                    for line in lines {
                        // One line per event: a stored line never holds a newline, but SSE framing must not depend on it.
                        let text = line.line.contains(where: \.isNewline) ? String(line.line.filter { !$0.isNewline }) : line.line
                        events += Array("id: \(line.seq)\ndata: \(text)\n\n".utf8)
                        last = line.seq
                    }
                    guard write(events) else { return }
                    quiet = Monotonic.seconds()
                } else if Monotonic.seconds() - quiet >= heartbeatSeconds {
                    guard write(Array(": keep-alive\n\n".utf8)) else { return }
                    quiet = Monotonic.seconds()
                } else {
                    request.idle(pollSeconds)
                }
            }
        }
    }
}
