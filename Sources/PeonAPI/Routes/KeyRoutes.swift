import PeonCore
import PeonHTTP
import PeonJSON
import PeonStore
import PeonSystem

/// `/api/v1/keys`: what `peon key create|list|revoke` do, over the API (admin scope). The secret
/// is in the create answer only; listings never show a hash.
enum KeyRoutes {
    static func register(on router: inout Router<APIContext>) {
        router.on("GET", "/api/v1/keys", scope: .admin) { _, context, _, _ in
            let keys = try context.store.read { tx in try tx.listKeys() }
            return .json(.object([("keys", .array(keys.map(json)))]))
        }

        router.on("POST", "/api/v1/keys", scope: .admin) { request, context, _, principal in
            let body = try request.jsonObject()
            guard let scopeText = body["scope"]?.stringValue, let scope = Scope(rawValue: scopeText) else {
                throw HTTPError(status: 400, code: "request.invalid", message: "scope must be read, operate or admin.")
            }
            let label: String
            switch body["label"] {
            case nil, .null?: label = ""
            case .string(let s)? where APIKeys.isValidLabel(s): label = s
            default:
                throw HTTPError(
                    status: 400, code: "request.invalid",
                    message: "label must be one line of at most 100 characters, without control characters.")
            }
            let now = WallClock.now()
            let expiresAt = try APIKeys.parseExpiry(body["expires_at"], now: now)
            // A key given for a while cannot make one that stays after it is gone.
            if let limit = principal.expiresAt, (expiresAt ?? .max) > limit {
                throw HTTPError(
                    status: 400, code: "request.invalid",
                    message: "expires_at must be at or before \(WallClock.iso8601(limit)), when the key making it expires.")
            }
            let (id, key) = try context.store.write { tx in
                try APIKeys.create(in: tx, scope: scope, label: label, expiresAt: expiresAt, now: now)
            }
            guard let info = try context.store.read({ tx in try tx.listKeys().first { $0.id == id } }) else {
                throw HTTPError(status: 500, code: "internal", message: "Internal error; see the API log.")
            }
            guard case .object(let members) = json(info) else { return .json(json(info), status: 201) }
            // The only time the key is shown: it is stored as a hash.
            return .json(.object(members + [("key", .string(key))]), status: 201)
        }

        router.on("DELETE", "/api/v1/keys/:id", scope: .admin) { _, context, p, principal in
            let id = p["id"]
            guard id.utf8.count <= 64 else { throw HTTPError(status: 404, code: "key.not_found", message: "No active key with this id.") }
            // A caller revoking the key it holds locks itself out mid-session (a script looping over
            // the list would): that takes another admin key, or `peon key revoke` on the host.
            guard id != principal.keyID else {
                throw HTTPError(
                    status: 409, code: "key.self", message: "Refusing to revoke the key this request was made with; use another admin key.")
            }
            switch try context.store.write({ tx in try tx.revokeKey(id: id, now: WallClock.now()) }) {
            case .revoked:
                return .json(["status": "success", "info": .string("revoked \(id)"), "id": .string(id)])
            case .notFound:
                throw HTTPError(status: 404, code: "key.not_found", message: "No active key with this id.")
            case .lastAdmin:
                throw HTTPError(
                    status: 409, code: "key.last_admin",
                    message: "Refusing to revoke the last admin key that does not expire; create another admin key first.")
            }
        }
    }

    static func time(_ seconds: Int64?) -> JSON { seconds.map { .string(WallClock.iso8601($0)) } ?? .null }

    static func json(_ k: APIKeyInfo) -> JSON {
        .object([
            ("id", .string(k.id)), ("prefix", .string(k.prefix)), ("label", .string(k.label)), ("scope", .string(k.scope.rawValue)),
            ("created_at", time(k.createdAt)), ("last_used_at", time(k.lastUsedAt)), ("expires_at", time(k.expiresAt)),
            ("revoked", .bool(k.revokedAt != nil)), ("revoked_at", time(k.revokedAt)), ("bootstrap", .bool(k.bootstrap)),
        ])
    }
}
