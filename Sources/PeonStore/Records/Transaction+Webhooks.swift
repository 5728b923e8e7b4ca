public import PeonCore
public import PeonJSON

/// One webhook; `secret` is shown once, when it is made.
public struct WebhookRecord: Sendable, Equatable {
    public let id: String
    public let url: String
    public let events: [String]
    public let serverUID: String?
    public let secret: String
    public let createdAt: Int64
    /// The newest delivery's state, status and error, if any.
    public var lastDelivery: JSON = .null

    /// As `GET /webhooks` lists it: never the secret.
    public var json: JSON {
        .object([
            ("id", .string(id)), ("url", .string(url)), ("events", .array(events.map(JSON.string))),
            ("server", serverUID.map(JSON.string) ?? .null), ("created_at", .number(Double(createdAt))),
            ("last_delivery", lastDelivery),
        ])
    }
}

/// One event on its way to one webhook.
public struct DeliveryRecord: Sendable, Equatable {
    public let id: Int64
    public let webhookID: String
    public let event: String
    public let serverUID: String
    public let body: String
    public let state: String
    public let attempts: Int
    public let nextAttempt: Int64
    public let lastStatus: Int?
    public let lastError: String?
    public let createdAt: Int64
    public let finishedAt: Int64?

    public var json: JSON {
        func int(_ v: Int64?) -> JSON { v.map { .number(Double($0)) } ?? .null }
        return .object([
            ("id", .number(Double(id))), ("event", .string(event)), ("server", .string(serverUID)), ("state", .string(state)),
            ("attempts", .int(attempts)), ("next_attempt", state == "pending" ? int(nextAttempt) : .null),
            ("last_status", lastStatus.map { .int($0) } ?? .null), ("last_error", lastError.map(JSON.string) ?? .null),
            ("created_at", int(createdAt)), ("finished_at", int(finishedAt)),
        ])
    }
}

extension Transaction {
    static let deliveryColumns =
        "id, webhook_id, event, server_uid, body, state, attempts, next_attempt, last_status, last_error, created_at, finished_at"

    public func insertWebhook(id: String, url: String, events: [String], server: String?, secret: String, now: Int64) throws(StoreError) {
        try query(
            "INSERT INTO webhooks (id, url, events, server_uid, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .text(id), .text(url), .text(JSON.array(events.map(JSON.string)).text), server.map(SQLValue.text) ?? .null, .text(secret),
                .integer(now),
            ])
    }

    public func webhooks() throws(StoreError) -> [WebhookRecord] {
        try query(
            """
            SELECT w.id, w.url, w.events, w.server_uid, w.secret, w.created_at,
                   (SELECT json_object('id', d.id, 'event', d.event, 'state', d.state, 'attempts', d.attempts,
                                       'last_status', d.last_status, 'last_error', d.last_error)
                    FROM webhook_deliveries d WHERE d.webhook_id = w.id ORDER BY d.id DESC LIMIT 1)
            FROM webhooks w ORDER BY w.created_at, w.id
            """
        ).map(Self.webhook)
    }

    public func webhook(_ id: String) throws(StoreError) -> WebhookRecord? {
        try query("SELECT id, url, events, server_uid, secret, created_at, NULL FROM webhooks WHERE id = ?", [.text(id)]).first.map(
            Self.webhook)
    }

    public func deleteWebhook(_ id: String) throws(StoreError) -> Bool {
        try query("DELETE FROM webhooks WHERE id = ?", [.text(id)])
        return changes > 0
    }

    public func webhookCount() throws(StoreError) -> Int {
        Int(try query("SELECT count(*) FROM webhooks").first?.first?.integer ?? 0)
    }

    /// Queues `event` for every webhook that wants it, in the caller's transaction: the event is
    /// durable exactly when the state change it reports is.
    public func emitEvent(_ event: WebhookEvent, server: String, detail: JSON = .object([]), now: Int64) throws(StoreError) {
        for hook in try query("SELECT id, url, events FROM webhooks WHERE server_uid IS NULL OR server_uid = ?", [.text(server)]) {
            let events = ((try? JSON.parse(hook[2].text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue)
            guard events.isEmpty || events.contains(event.rawValue), let id = hook[0].text, let url = hook[1].text else { continue }
            let body = WebhookRequest.body(url: url, event: event, server: server, at: now, detail: detail)
            try query(
                "INSERT INTO webhook_deliveries (webhook_id, event, server_uid, body, next_attempt, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(id), .text(event.rawValue), .text(server), .text(body.text), .integer(now), .integer(now)])
        }
    }

    /// The event of a job that just succeeded, if it has one.
    func emitJobEvent(_ jobID: Int64, now: Int64) throws(StoreError) {
        guard let row = try query("SELECT kind, server_uid FROM jobs WHERE id = ?", [.integer(jobID)]).first,
            let kind = JobKind(rawValue: row[0].text ?? ""), let event = WebhookEvent(succeeded: kind), let server = row[1].text
        else { return }
        try emitEvent(event, server: server, now: now)
    }

    /// Pending deliveries due by `now` (of one hook, or of all), oldest first, with their hook's URL and secret.
    public func dueDeliveries(now: Int64, limit: Int, webhook: String? = nil) throws(StoreError) -> [(
        DeliveryRecord, url: String, secret: String
    )] {
        try query(
            """
            SELECT \(Self.deliveryColumns.split(separator: ",").map { "d." + $0.trimmingPrefixSpaces() }.joined(separator: ", ")),
                   w.url, w.secret
            FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.state = 'pending' AND d.next_attempt <= ? AND (? IS NULL OR d.webhook_id = ?) ORDER BY d.next_attempt, d.id LIMIT ?
            """, [.integer(now), webhook.map(SQLValue.text) ?? .null, webhook.map(SQLValue.text) ?? .null, .integer(Int64(limit))]
        ).map { (Self.delivery($0), $0[12].text ?? "", $0[13].text ?? "") }
    }

    /// Hooks with a delivery due by `now`, the one whose oldest due delivery is oldest first: one
    /// row per hook, so a dead hook's backlog never hides another hook's work.
    public func hooksWithDueDeliveries(now: Int64, limit: Int) throws(StoreError) -> [String] {
        try query(
            """
            SELECT webhook_id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt <= ?
            GROUP BY webhook_id ORDER BY min(next_attempt), min(id) LIMIT ?
            """, [.integer(now), .integer(Int64(limit))]
        ).compactMap { $0[0].text }
    }

    /// Records an attempt: delivered, pending again at `retryAt`, or failed for good.
    public func recordDelivery(_ id: Int64, status: Int?, error: String?, delivered: Bool, retryAt: Int64?, now: Int64) throws(StoreError) {
        let state = delivered ? "delivered" : retryAt == nil ? "failed" : "pending"
        try query(
            """
            UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?, state = ?,
                   next_attempt = coalesce(?, next_attempt), finished_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END
            WHERE id = ?
            """,
            [
                status.map { .integer(Int64($0)) } ?? .null, error.map(SQLValue.text) ?? .null, .text(state),
                retryAt.map(SQLValue.integer) ?? .null, .text(state), .integer(now), .integer(id),
            ])
    }

    public func deliveries(webhook: String, limit: Int) throws(StoreError) -> [DeliveryRecord] {
        try query(
            "SELECT \(Self.deliveryColumns) FROM webhook_deliveries WHERE webhook_id = ? ORDER BY id DESC LIMIT ?",
            [.text(webhook), .integer(Int64(limit))]
        ).map(Self.delivery)
    }

    static func webhook(_ r: Row) -> WebhookRecord {
        var hook = WebhookRecord(
            id: r[0].text ?? "", url: r[1].text ?? "",
            events: ((try? JSON.parse(r[2].text ?? "[]"))?.arrayValue ?? []).compactMap(\.stringValue), serverUID: r[3].text,
            secret: r[4].text ?? "", createdAt: r[5].integer ?? 0)
        hook.lastDelivery = r[6].text.flatMap { try? JSON.parse($0) } ?? .null
        return hook
    }

    static func delivery(_ r: Row) -> DeliveryRecord {
        DeliveryRecord(
            id: r[0].integer ?? 0, webhookID: r[1].text ?? "", event: r[2].text ?? "", serverUID: r[3].text ?? "", body: r[4].text ?? "{}",
            state: r[5].text ?? "pending", attempts: Int(r[6].integer ?? 0), nextAttempt: r[7].integer ?? 0,
            lastStatus: r[8].integer.map { Int($0) }, lastError: r[9].text, createdAt: r[10].integer ?? 0, finishedAt: r[11].integer)
    }
}

extension Substring {
    fileprivate func trimmingPrefixSpaces() -> Substring { drop { $0 == " " } }
}
