/// One line of a game's output as Peon keeps it.
public struct LogRecord: Sendable, Equatable {
    public let seq: Int64
    /// Unix milliseconds.
    public let at: Int64
    /// The container run: its start in unix milliseconds (rows from before 2026-11-30 hold seconds;
    /// sessions are only compared for equality, so the two never mix up).
    public let session: Int64
    /// 1 stdout, 2 stderr.
    public let stream: Int
    public let line: String

    public init(seq: Int64 = 0, at: Int64, session: Int64, stream: Int, line: String) {
        self.seq = seq
        self.at = at
        self.session = session
        self.stream = stream
        self.line = line
    }
}

extension Transaction {
    /// Appends lines (their `seq` is assigned here) and keeps only the newest `keep` of the server.
    public func appendLogs(server: String, _ lines: [LogRecord], keep: Int) throws(StoreError) {
        guard !lines.isEmpty else { return }
        var seq = try query("SELECT coalesce(max(seq), 0) FROM server_logs WHERE server_uid = ?", [.text(server)]).first?[0].integer ?? 0
        for line in lines {
            seq += 1
            try query(
                "INSERT INTO server_logs (server_uid, seq, at, session, stream, line) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(server), .integer(seq), .integer(line.at), .integer(line.session), .integer(Int64(line.stream)), .text(line.line)])
        }
        try query("DELETE FROM server_logs WHERE server_uid = ? AND seq <= ?", [.text(server), .integer(seq - Int64(keep))])
    }

    /// Lines after `afterSeq`, oldest first, at most `limit`.
    public func logs(server: String, afterSeq: Int64, limit: Int) throws(StoreError) -> [LogRecord] {
        try query(
            "SELECT seq, at, session, stream, line FROM server_logs WHERE server_uid = ? AND seq > ? ORDER BY seq LIMIT ?",
            [.text(server), .integer(afterSeq), .integer(Int64(limit))]
        ).map(Self.logRecord)
    }

    /// The newest `limit` lines, oldest first; with `session`, only lines of that container run.
    public func tailLogs(server: String, limit: Int, session: Int64? = nil) throws(StoreError) -> [LogRecord] {
        let rows =
            if let session {
                try query(
                    "SELECT seq, at, session, stream, line FROM server_logs WHERE server_uid = ? AND session = ? ORDER BY seq DESC LIMIT ?",
                    [.text(server), .integer(session), .integer(Int64(limit))])
            } else {
                try query(
                    "SELECT seq, at, session, stream, line FROM server_logs WHERE server_uid = ? ORDER BY seq DESC LIMIT ?",
                    [.text(server), .integer(Int64(limit))])
            }
        return rows.reversed().map(Self.logRecord)
    }

    /// The latest container run that wrote anything, and the newest line's `seq` (0 when none).
    public func logPosition(server: String) throws(StoreError) -> (session: Int64?, seq: Int64) {
        let row = try query(
            "SELECT session, seq FROM server_logs WHERE server_uid = ? ORDER BY seq DESC LIMIT 1", [.text(server)]
        ).first
        return (row?[0].integer, row?[1].integer ?? 0)
    }

    /// Whether a line kept since `sinceMilliseconds` (the platform's time) holds `text`.
    public func logsContain(server: String, text: String, sinceMilliseconds: Int64) throws(StoreError) -> Bool {
        try !query(
            "SELECT 1 FROM server_logs WHERE server_uid = ? AND at >= ? AND instr(line, ?) > 0 LIMIT 1",
            [.text(server), .integer(sinceMilliseconds), .text(text)]
        ).isEmpty
    }

    public func deleteLogs(server: String) throws(StoreError) {
        try query("DELETE FROM server_logs WHERE server_uid = ?", [.text(server)])
    }

    static func logRecord(_ r: Row) -> LogRecord {
        LogRecord(
            seq: r[0].integer ?? 0, at: r[1].integer ?? 0, session: r[2].integer ?? 0, stream: Int(r[3].integer ?? 1),
            line: r[4].text ?? "")
    }
}
