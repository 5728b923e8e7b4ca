import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// `GET /api/v1/audit`: the audit trail, newest first, paged with an opaque `next` cursor.
enum AuditRoutes {
    static let limits = 1...1000

    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/audit", scope: .admin) { request, context, _, _ in
            func invalid(_ message: String) -> HTTPError { HTTPError(status: 400, code: "request.invalid", message: message) }
            var limit = 100
            if let text = request.queryItem("limit") {
                guard let n = CheckedNumber.int(text, in: limits) else { throw invalid("limit must be a whole number from 1 to 1000.") }
                limit = n
            }
            var since: String?
            if let text = request.queryItem("since") {
                guard let at = Timestamp.parse(text) else {
                    throw invalid("since must be epoch seconds or an ISO 8601 time such as 2026-01-01T00:00:00Z.")
                }
                since = WallClock.iso8601(at)
            }
            var before: Int64?
            if let text = request.queryItem("cursor") {
                guard let n = CheckedNumber.integer(text, in: 1...Int64.max) else { throw invalid("cursor must be a `next` value.") }
                before = n
            }
            let key = request.queryItem("key")
            if let key, key.isEmpty || key.utf8.count > 64 { throw invalid("key must be a key id.") }
            let server = try request.queryItem("server").map { text in
                do { return try ServerUID(validating: text).description } catch { throw invalid("server must be a server uid GAME.NAME.") }
            }
            // One more row than asked says whether there is a next page.
            let rows = try context.store.read { tx in
                try tx.audit(since: since, keyID: key, server: server, before: before, limit: limit + 1)
            }
            let page = rows.prefix(limit)
            let next: JSON = rows.count > limit ? .string("\(page.last!.id)") : .null
            return .json(.object([("entries", .array(page.map(json))), ("next", next)]))
        }
    }

    static func json(_ e: AuditEntry) -> JSON {
        .object([
            ("id", .number(Double(e.id))), ("at", .string(e.at)), ("key_id", e.keyID.map(JSON.string) ?? .null),
            ("client_ip", .string(e.clientIP)), ("request_id", .string(e.requestID)), ("method", .string(e.method)),
            ("path", .string(e.path)), ("status", .int(e.status)), ("result", .string(e.result)),
        ])
    }
}
