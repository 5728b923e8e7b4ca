import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// `PUT /api/v1/server/console/<uid>` with `{"command": "..."}`: one line the scheduler sends
/// to the game (a `console` job, so it waits behind the server's other actions): over Source RCON
/// when the plan declares it (the answer is RCON's response), else typed into its stdin (the
/// answer is what the game printed after it, from the stored output). The command is data for
/// the game, never run by Peon; the request is audited, the output is not.
enum ConsoleRoutes {
    static let maximumBytes = 1024
    /// The answer collects output until the game has been quiet this long, or for `collectSeconds`.
    static let quietSeconds = 0.3
    static let collectSeconds = 2.0

    static func send(_ uid: ServerUID, body: JSON, request: Request, context: APIContext) throws -> Response {
        guard let command = body["command"]?.stringValue, !command.isEmpty, command.utf8.count <= maximumBytes,
            !command.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw HTTPError(
                status: 400, code: "request.invalid",
                message: "command must be one line of 1 to \(maximumBytes) bytes without control characters.")
        }
        guard let record = try context.store.read({ tx in try tx.server(uid) }) else {
            throw HTTPError(status: 404, code: "server.not_found", message: "There was an issue getting the server.")
        }
        guard record.observedState == "running" else {
            throw HTTPError(status: 409, code: "server.not_running", message: "\(uid) is not running, so it has no console.")
        }
        try ServerRoutes.requireScheduler(context)
        let server = uid.description
        let before = try context.store.read { tx in try tx.logPosition(server: server).seq }
        let job = try ServerRoutes.enqueue(uid, .console(command: command), context: context)
        return try ServerRoutes.answer(job, request, context) { (finished: JobRecord) in
            // Over RCON the job carries the game's answer; over stdin it is the output that followed.
            if let result = finished.result, result["via"] == "rcon" {
                let text = result["response"]?.stringValue ?? ""
                let truncated = result["truncated"] == .bool(true)
                var lines = text.isEmpty ? [] : text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }
                if lines.last == "" { lines.removeLast() }
                if truncated { lines.append("(answer truncated at \(RconExchange.defaultMaximumBytes / 1024) KiB)") }
                return .json([
                    "status": "success", "server_uid": .string(server), "command": .string(command), "via": "rcon",
                    "output": .array(lines.map(JSON.string)), "response": .string(text), "truncated": .bool(truncated),
                ])
            }
            return .json([
                "status": "success", "server_uid": .string(server), "command": .string(command), "via": "stdin",
                "output": .array(try output(server, after: before, request: request, context: context).map { .string($0.line) }),
            ])
        }
    }

    /// Lines after `after` until the game goes quiet (or the time is up).
    static func output(_ server: String, after: Int64, request: Request, context: APIContext) throws -> [LogRecord] {
        let started = Monotonic.seconds()
        var lines: [LogRecord] = []
        var lastLine = started
        while Monotonic.seconds() - started < collectSeconds {
            let new = try context.store.read { tx in try tx.logs(server: server, afterSeq: lines.last?.seq ?? after, limit: 500) }
            if new.isEmpty {
                if !lines.isEmpty, Monotonic.seconds() - lastLine >= quietSeconds { break }
                request.idle(0.025)
            } else {
                lines += new
                lastLine = Monotonic.seconds()
            }
        }
        return lines
    }
}
