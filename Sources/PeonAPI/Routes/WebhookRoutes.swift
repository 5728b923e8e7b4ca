import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// Webhooks (admin): `POST|GET /api/v1/webhooks`, `DELETE /api/v1/webhooks/<id>`,
/// `GET /api/v1/webhooks/<id>/deliveries`. The scheduler delivers them (`WebhookSender`).
enum WebhookRoutes {
    static let maximumHooks = 100
    static let deliveriesShown = 100

    static func register(on router: inout Router<APIContext>) {
        router.on("POST", "/api/v1/webhooks", scope: .admin) { request, context, _, _ in
            let hook = try WebhookRequest(try request.jsonObject())
            var rng = SystemRandomNumberGenerator()
            let id = "wh_" + hex((0..<6).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let secret = "whsec_" + hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
            let now = WallClock.now()
            let record = try context.store.write { tx in
                if let server = hook.server, try tx.server(ServerUID(validating: server)) == nil {
                    throw HTTPError(status: 404, code: "server.not_found", message: "There is no server \(server).")
                }
                guard try tx.webhookCount() < maximumHooks else {
                    throw DomainError.conflict("There are \(maximumHooks) webhooks already; delete one first.")
                }
                try tx.insertWebhook(
                    id: id, url: hook.url, events: hook.events.map(\.rawValue), server: hook.server, secret: secret, now: now)
                return try tx.webhook(id)!
            }
            // The secret is shown here only: receivers check X-Peon-Signature with it.
            guard case .object(var members) = record.json else { return .json(record.json) }
            members.insert(("secret", .string(secret)), at: 1)
            return .json(.object(members), status: 201)
        }

        router.on("GET", "/api/v1/webhooks", scope: .admin) { _, context, _, _ in
            .json(.array(try context.store.read { tx in try tx.webhooks() }.map(\.json)))
        }

        router.on("DELETE", "/api/v1/webhooks/:id", scope: .admin) { _, context, p, _ in
            let id = try webhookID(p["id"])
            guard try context.store.write({ tx in try tx.deleteWebhook(id) }) else {
                throw HTTPError(status: 404, code: "webhook.not_found", message: "No such webhook.")
            }
            return .json(["status": "success", "info": .string("Webhook \(id) was removed.")])
        }

        router.on("GET", "/api/v1/webhooks/:id/deliveries", scope: .admin) { _, context, p, _ in
            let id = try webhookID(p["id"])
            let list = try context.store.read { tx in
                guard try tx.webhook(id) != nil else {
                    throw HTTPError(status: 404, code: "webhook.not_found", message: "No such webhook.")
                }
                return try tx.deliveries(webhook: id, limit: deliveriesShown)
            }
            return .json(.array(list.map(\.json)))
        }
    }

    /// `wh_` and 12 hex digits; anything else is no webhook of ours (404 without echoing it).
    static func webhookID(_ text: String) throws -> String {
        guard text.utf8.count == 15, text.hasPrefix("wh_"),
            text.utf8.dropFirst(3).allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { throw HTTPError(status: 404, code: "webhook.not_found", message: "No such webhook.") }
        return text
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }
}
