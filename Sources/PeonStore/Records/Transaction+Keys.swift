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
    /// From this time on the key is refused (nil: never expires).
    public let expiresAt: Int64?
    /// Made from `PEON_API_KEY`: changing that setting retires it.
    public let bootstrap: Bool
}

/// A candidate for authentication: the stored hash to compare in constant time.
public struct APIKeyCandidate: Sendable {
    public let id: String
    public let hash: [UInt8]
    public let scope: Scope
    public let revoked: Bool
    public let lastUsedAt: Int64?
    public let expiresAt: Int64?
}

/// What `revokeKey` did.
public enum KeyRevocation: Sendable, Equatable {
    case revoked
    case notFound
    /// Refused: without an active admin key nobody could administer the installation.
    case lastAdmin
}

extension Transaction {
    public func insertKey(
        id: String, prefix: String, lookup: String, hash: [UInt8], scope: Scope, label: String, bootstrap: Bool = false,
        expiresAt: Int64? = nil, now: Int64
    ) throws(StoreError) {
        try query(
            """
            INSERT INTO api_keys (id, prefix, lookup, hash, scope, label, bootstrap, created_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(id), .text(prefix), .text(lookup), .blob(hash), .text(scope.rawValue), .text(label), .integer(bootstrap ? 1 : 0),
                .integer(now), expiresAt.map(SQLValue.integer) ?? .null,
            ])
    }

    public func keyCandidates(lookup: String) throws(StoreError) -> [APIKeyCandidate] {
        try query("SELECT id, hash, scope, revoked_at, last_used_at, expires_at FROM api_keys WHERE lookup = ?", [.text(lookup)])
            .compactMap { row in
                guard let scope = Scope(rawValue: row[2].text ?? "") else { return nil }
                return APIKeyCandidate(
                    id: row[0].text ?? "", hash: row[1].blob ?? [], scope: scope, revoked: row[3] != .null, lastUsedAt: row[4].integer,
                    expiresAt: row[5].integer)
            }
    }

    /// Records a use of the key, at most once per `interval` seconds (one write a minute, not one a request).
    public func touchKey(id: String, now: Int64, interval: Int64 = 60) throws(StoreError) {
        try query(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
            [.integer(now), .text(id), .integer(now - interval)])
    }

    /// Makes the key with `lookup` the bootstrap key and revokes every other key made from an
    /// earlier `PEON_API_KEY`: changing the setting retires the key it replaced.
    @discardableResult
    public func replaceBootstrapKeys(keeping lookup: String, now: Int64) throws(StoreError) -> Int {
        try query("UPDATE api_keys SET bootstrap = 1 WHERE lookup = ?", [.text(lookup)])
        try query(
            "UPDATE api_keys SET revoked_at = ? WHERE bootstrap = 1 AND lookup <> ? AND revoked_at IS NULL", [.integer(now), .text(lookup)])
        return changes
    }

    public func listKeys() throws(StoreError) -> [APIKeyInfo] {
        try query(
            """
            SELECT id, prefix, scope, label, created_at, revoked_at, last_used_at, expires_at, bootstrap
            FROM api_keys ORDER BY created_at, id
            """
        ).map { row in
            APIKeyInfo(
                id: row[0].text ?? "", prefix: row[1].text ?? "", scope: Scope(rawValue: row[2].text ?? "") ?? .read,
                label: row[3].text ?? "", createdAt: row[4].integer ?? 0, revokedAt: row[5].integer,
                lastUsedAt: row[6].integer, expiresAt: row[7].integer, bootstrap: row[8].integer == 1)
        }
    }

    /// Revokes the key with this id, unless it is the last active admin key.
    public func revokeKey(id: String, now: Int64) throws(StoreError) -> KeyRevocation {
        guard let row = try query("SELECT scope, expires_at FROM api_keys WHERE id = ? AND revoked_at IS NULL", [.text(id)]).first
        else { return .notFound }
        // An expiring admin key is not counted as one that keeps the installation administrable.
        if row[0].text == Scope.admin.rawValue, row[1] == .null, try activeAdminKeyCount() <= 1 { return .lastAdmin }
        try query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [.integer(now), .text(id)])
        return changes > 0 ? .revoked : .notFound
    }

    /// Admin keys that keep working: not revoked and not expiring (an expiring one does not
    /// count, or revoking the others would leave nobody once it lapses).
    public func activeAdminKeyCount() throws(StoreError) -> Int {
        let sql = "SELECT count(*) FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL AND expires_at IS NULL"
        return Int(try query(sql).first?.first?.integer ?? 0)
    }

    public func keyExists(lookup: String) throws(StoreError) -> Bool {
        !(try query("SELECT 1 FROM api_keys WHERE lookup = ?", [.text(lookup)])).isEmpty
    }
}
