/// A failed SQLite call. Keeps the result codes, SQLite's message and the SQL, never bound values,
/// so a key hash or a game password cannot reach a log through an error.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database stayed locked past `busy_timeout`: retry later (HTTP 503).
    case busy
    case constraint(message: String)
    case failed(code: Int32, extendedCode: Int32, message: String, sql: String)

    public var description: String {
        switch self {
        case .busy: "database busy"
        case .constraint(let m): "constraint failed: \(m)"
        case .failed(let code, let ext, let m, let sql): "sqlite error \(code)/\(ext): \(m) [\(sql.prefix(120))]"
        }
    }
}

extension StoreError {
    /// SQLITE_FULL: the disk (or the database's size limit) is full; the transaction was rolled back.
    public var isDiskFull: Bool {
        if case .failed(let code, _, _, _) = self { code == 13 } else { false }
    }

    /// SQLITE_IOERR, SQLITE_CANTOPEN: the disk failed under the database (the transaction was rolled back).
    public var isIOError: Bool {
        if case .failed(let code, _, _, _) = self { code == 10 || code == 14 } else { false }
    }
}
