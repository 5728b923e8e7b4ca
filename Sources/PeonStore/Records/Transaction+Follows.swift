#if canImport(Glibc)
    import Glibc
#endif

extension Transaction {
    /// Records a log follow unless `key` already holds `perKey` or `server` `perServer`; nil then.
    /// Rows of processes that are gone, or older than `staleBefore`, no longer count (a worker
    /// killed mid-stream cannot hold its slots).
    public func openLogFollow(key: String, server: String, pid: Int32, now: Int64, staleBefore: Int64, perKey: Int, perServer: Int)
        throws(StoreError) -> Int64?
    {
        for row in try query("SELECT DISTINCT pid FROM log_follows") {
            let other = Int32(clamping: row[0].integer ?? 0)
            if other != pid, kill(other, 0) != 0, errno == ESRCH {
                try query("DELETE FROM log_follows WHERE pid = ?", [.integer(Int64(other))])
            }
        }
        try query("DELETE FROM log_follows WHERE started_at < ?", [.integer(staleBefore)])
        let byKey = try query("SELECT COUNT(*) FROM log_follows WHERE key_id = ?", [.text(key)]).first?[0].integer ?? 0
        let byServer = try query("SELECT COUNT(*) FROM log_follows WHERE server_uid = ?", [.text(server)]).first?[0].integer ?? 0
        guard byKey < perKey, byServer < perServer else { return nil }
        return try query(
            "INSERT INTO log_follows (key_id, server_uid, pid, started_at) VALUES (?, ?, ?, ?) RETURNING id",
            [.text(key), .text(server), .integer(Int64(pid)), .integer(now)]
        ).first?[0].integer
    }

    public func closeLogFollow(_ id: Int64) throws(StoreError) {
        try query("DELETE FROM log_follows WHERE id = ?", [.integer(id)])
    }
}
