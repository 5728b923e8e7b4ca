public import PeonCore

/// An API key row without its hash: what `peon key list` shows.
public struct APIKeyInfo: Sendable, Equatable {
    public let id: String
    public let prefix: String
    public let scope: Scope
    public let label: String
    public let createdAt: Int64
    public let revokedAt: Int64?
    public let lastUsedAt: Int64?
}

/// A candidate for authentication: the stored hash to compare in constant time.
public struct APIKeyCandidate: Sendable {
    public let id: String
    public let hash: [UInt8]
    public let scope: Scope
    public let revoked: Bool
}

extension Transaction {
    public func insertKey(
        id: String, prefix: String, lookup: String, hash: [UInt8], scope: Scope, label: String, now: Int64
    ) throws(StoreError) {
        try query(
            "INSERT INTO api_keys (id, prefix, lookup, hash, scope, label, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.text(id), .text(prefix), .text(lookup), .blob(hash), .text(scope.rawValue), .text(label), .integer(now)])
    }

    public func keyCandidates(lookup: String) throws(StoreError) -> [APIKeyCandidate] {
        try query("SELECT id, hash, scope, revoked_at FROM api_keys WHERE lookup = ?", [.text(lookup)]).compactMap { row in
            guard let scope = Scope(rawValue: row[2].text ?? "") else { return nil }
            return APIKeyCandidate(id: row[0].text ?? "", hash: row[1].blob ?? [], scope: scope, revoked: row[3] != .null)
        }
    }

    public func listKeys() throws(StoreError) -> [APIKeyInfo] {
        try query("SELECT id, prefix, scope, label, created_at, revoked_at, last_used_at FROM api_keys ORDER BY created_at, id")
            .map { row in
                APIKeyInfo(
                    id: row[0].text ?? "", prefix: row[1].text ?? "", scope: Scope(rawValue: row[2].text ?? "") ?? .read,
                    label: row[3].text ?? "", createdAt: row[4].integer ?? 0, revokedAt: row[5].integer,
                    lastUsedAt: row[6].integer)
            }
    }

    /// Revokes the key with this id; false when there is no such active key.
    public func revokeKey(id: String, now: Int64) throws(StoreError) -> Bool {
        try query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [.integer(now), .text(id)])
        return changes > 0
    }

    public func activeAdminKeyCount() throws(StoreError) -> Int {
        Int(try query("SELECT count(*) FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL").first?.first?.integer ?? 0)
    }

    public func keyExists(lookup: String) throws(StoreError) -> Bool {
        !(try query("SELECT 1 FROM api_keys WHERE lookup = ?", [.text(lookup)])).isEmpty
    }
}
