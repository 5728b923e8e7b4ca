public import PeonCore
import PeonHTTP
import PeonStore
import PeonSystem

/// The authenticated caller: which key, with which scope.
public struct Principal: Sendable, Equatable {
    public let keyID: String
    public let scope: Scope
    /// When the key stops working (epoch seconds), if ever: the keys it mints may not outlive it.
    public var expiresAt: Int64? = nil

    /// Checks `X-Api-Key` against the stored hashes.
    static func authenticate(_ request: Request, store: Store) throws -> Principal {
        guard let key = request.header("x-api-key"), !key.isEmpty else { throw AuthError.missingKey }
        guard key.utf8.count <= 256 else { throw AuthError.invalidKey }
        let digest = APIKeys.digest(key)
        let candidates = try store.read { tx in try tx.keyCandidates(lookup: APIKeys.lookup(digest)) }
        guard let match = candidates.first(where: { APIKeys.constantTimeEqual($0.hash, digest) }) else {
            throw AuthError.invalidKey
        }
        guard !match.revoked else { throw AuthError.revokedKey }
        let now = WallClock.now()
        if let expiry = match.expiresAt, now >= expiry { throw AuthError.expiredKey }
        if (match.lastUsedAt ?? 0) <= now - 60 {
            // At most one write a minute per key; a busy database must not fail the request.
            try? store.write { tx in try tx.touchKey(id: match.id, now: now) }
        }
        return Principal(keyID: match.id, scope: match.scope, expiresAt: match.expiresAt)
    }
}
