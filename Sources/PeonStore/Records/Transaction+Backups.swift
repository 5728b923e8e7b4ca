public import PeonCore

/// One archive of a server's actions, config and user files.
public struct BackupRecord: Sendable, Equatable {
    public let id: Int64
    public let serverUID: String
    /// Relative to the backup directory.
    public let path: String
    public let bytes: Int64
    public let createdAt: Int64
    public let sha256: String
    public let format: String

    public init(id: Int64 = 0, serverUID: String, path: String, bytes: Int64, createdAt: Int64, sha256: String, format: String) {
        self.id = id
        self.serverUID = serverUID
        self.path = path
        self.bytes = bytes
        self.createdAt = createdAt
        self.sha256 = sha256
        self.format = format
    }
}

extension Transaction {
    static let backupColumns = "id, server_uid, path, bytes, created_at, sha256, format"

    public func insertBackup(_ b: BackupRecord) throws(StoreError) -> Int64 {
        try query(
            "INSERT INTO backups (server_uid, path, bytes, created_at, sha256, format) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            [.text(b.serverUID), .text(b.path), .integer(b.bytes), .integer(b.createdAt), .text(b.sha256), .text(b.format)]
        ).first?[0].integer ?? 0
    }

    /// A server's backups, newest first.
    public func backups(server: String) throws(StoreError) -> [BackupRecord] {
        try query("SELECT \(Self.backupColumns) FROM backups WHERE server_uid = ? ORDER BY created_at DESC, id DESC", [.text(server)])
            .map(Self.backup)
    }

    public func backup(_ id: Int64, server: String) throws(StoreError) -> BackupRecord? {
        try query("SELECT \(Self.backupColumns) FROM backups WHERE id = ? AND server_uid = ?", [.integer(id), .text(server)])
            .first.map(Self.backup)
    }

    public func deleteBackup(_ id: Int64) throws(StoreError) {
        try query("DELETE FROM backups WHERE id = ?", [.integer(id)])
    }

    /// The server's own retention policy, nil when it follows `PEON_BACKUP_KEEP`.
    public func backupPolicy(server: String) throws(StoreError) -> BackupPolicy? {
        try query("SELECT keep_last, keep_daily, keep_weekly FROM backup_policies WHERE server_uid = ?", [.text(server)]).first.map {
            BackupPolicy(keepLast: Int($0[0].integer ?? 1), keepDaily: Int($0[1].integer ?? 0), keepWeekly: Int($0[2].integer ?? 0))
        }
    }

    public func setBackupPolicy(server: String, _ policy: BackupPolicy, now: Int64) throws(StoreError) {
        try query(
            """
            INSERT INTO backup_policies (server_uid, keep_last, keep_daily, keep_weekly, updated_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (server_uid) DO UPDATE SET keep_last = excluded.keep_last, keep_daily = excluded.keep_daily,
                keep_weekly = excluded.keep_weekly, updated_at = excluded.updated_at
            """,
            [
                .text(server), .integer(Int64(policy.keepLast)), .integer(Int64(policy.keepDaily)), .integer(Int64(policy.keepWeekly)),
                .integer(now),
            ])
    }

    static func backup(_ r: Row) -> BackupRecord {
        BackupRecord(
            id: r[0].integer ?? 0, serverUID: r[1].text ?? "", path: r[2].text ?? "", bytes: r[3].integer ?? 0,
            createdAt: r[4].integer ?? 0,
            sha256: r[5].text ?? "", format: r[6].text ?? "")
    }
}
