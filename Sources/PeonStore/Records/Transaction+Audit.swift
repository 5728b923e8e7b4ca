/// One audited request: who changed what, from where, with which result.
public struct AuditEntry: Sendable, Equatable {
    public let at: String
    public let keyID: String?
    public let clientIP: String
    public let requestID: String
    public let method: String
    public let path: String
    public let status: Int
    public let result: String
    /// The row id (0 before it is stored): the `next` cursor of audit listings.
    public var id: Int64 = 0

    public init(at: String, keyID: String?, clientIP: String, requestID: String, method: String, path: String, status: Int, result: String)
    {
        self.at = at
        self.keyID = keyID
        self.clientIP = clientIP
        self.requestID = requestID
        self.method = method
        self.path = path
        self.status = status
        self.result = result
    }
}

extension Transaction {
    public func appendAudit(_ e: AuditEntry) throws(StoreError) {
        try query(
            "INSERT INTO audit (at, key_id, client_ip, request_id, method, path, status, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                .text(e.at), e.keyID.map(SQLValue.text) ?? .null, .text(e.clientIP), .text(e.requestID), .text(e.method),
                .text(e.path), .integer(Int64(e.status)), .text(e.result),
            ])
    }

    /// Refused requests (4xx) of `key` recorded at or after `since` (ISO-8601, as `at` is kept).
    public func auditRefusals(key: String, since: String) throws(StoreError) -> Int {
        Int(
            try query(
                "SELECT COUNT(*) FROM audit WHERE at >= ? AND key_id = ? AND status BETWEEN 400 AND 499", [.text(since), .text(key)]
            ).first?[0].integer ?? 0)
    }

    public func recentAudit(limit: Int) throws(StoreError) -> [AuditEntry] {
        try query(
            "SELECT at, key_id, client_ip, request_id, method, path, status, result FROM audit ORDER BY id DESC LIMIT ?",
            [.integer(Int64(limit))]
        ).map { r in
            AuditEntry(
                at: r[0].text ?? "", keyID: r[1].text, clientIP: r[2].text ?? "", requestID: r[3].text ?? "",
                method: r[4].text ?? "", path: r[5].text ?? "", status: Int(r[6].integer ?? 0), result: r[7].text ?? "")
        }
    }

    /// Audit rows newest first, filtered; `before` is the cursor (rows with a smaller id).
    /// - Parameters:
    ///   - since: only rows at or after this ISO-8601 UTC time (the stored format sorts as text).
    ///   - server: only requests whose path ends in `/<server uid>`.
    public func audit(since: String?, keyID: String?, server: String?, before: Int64?, limit: Int) throws(StoreError) -> [AuditEntry] {
        var clauses: [String] = []
        var arguments: [SQLValue] = []
        if let since {
            clauses.append("at >= ?")
            arguments.append(.text(since))
        }
        if let keyID {
            clauses.append("key_id = ?")
            arguments.append(.text(keyID))
        }
        if let server {
            clauses.append("substr(path, -length(?) - 1) = '/' || ?")
            arguments += [.text(server), .text(server)]
        }
        if let before {
            clauses.append("id < ?")
            arguments.append(.integer(before))
        }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try query(
            "SELECT at, key_id, client_ip, request_id, method, path, status, result, id FROM audit \(filter) ORDER BY id DESC LIMIT ?",
            arguments + [.integer(Int64(limit))]
        ).map { r in
            var e = AuditEntry(
                at: r[0].text ?? "", keyID: r[1].text, clientIP: r[2].text ?? "", requestID: r[3].text ?? "",
                method: r[4].text ?? "", path: r[5].text ?? "", status: Int(r[6].integer ?? 0), result: r[7].text ?? "")
            e.id = r[8].integer ?? 0
            return e
        }
    }

    public func meta(_ key: String) throws(StoreError) -> String? {
        try query("SELECT value FROM meta WHERE key = ?", [.text(key)]).first?.first?.text
    }

    public func setMeta(_ key: String, _ value: String) throws(StoreError) {
        try query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }
}
