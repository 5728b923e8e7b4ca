internal import CSQLite

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var text: String? { if case .text(let s) = self { s } else { nil } }
    public var integer: Int64? { if case .integer(let i) = self { i } else { nil } }
    public var blob: [UInt8]? { if case .blob(let b) = self { b } else { nil } }
    /// A number column as a Double (SQLite stores whole REALs as integers in some paths); 0 otherwise.
    public var real: Double {
        switch self {
        case .real(let d): d
        case .integer(let i): Double(i)
        default: 0
        }
    }
}

public typealias Row = [SQLValue]

/// One SQLite connection, confined to the thread (or forked child) that opened it.
///
/// Every connection gets the same setup: WAL, `synchronous=NORMAL`, foreign keys, a 5 s
/// `busy_timeout`. Statements are prepared once and cached.
public final class Connection {
    let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000) throws(StoreError) {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(db)
            throw .failed(code: rc, extendedCode: rc, message: message, sql: "open \(path)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMilliseconds)
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=16777216")
    }

    deinit {
        for (_, s) in statements { sqlite3_finalize(s) }
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements without parameters or results.
    public func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? ""
            sqlite3_free(message)
            throw error(rc, sql: sql, message: text)
        }
    }

    /// Runs a statement and returns every row.
    @discardableResult
    public func query(_ sql: String, _ arguments: [SQLValue] = []) throws(StoreError) -> [Row] {
        let stmt = try prepare(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, value) in arguments.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, index, v, -1, peon_sqlite_transient())
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress, Int32($0.count), peon_sqlite_transient()) }
            }
            if rc != SQLITE_OK { throw error(rc, sql: sql) }
        }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql: sql) }
            let columns = sqlite3_column_count(stmt)
            var row: Row = []
            row.reserveCapacity(Int(columns))
            for c in 0..<columns {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: row.append(.real(sqlite3_column_double(stmt, c)))
                case SQLITE_TEXT: row.append(.text(String(cString: sqlite3_column_text(stmt, c))))
                case SQLITE_BLOB:
                    let count = Int(sqlite3_column_bytes(stmt, c))
                    if count == 0 {
                        row.append(.blob([]))
                    } else {
                        let base = sqlite3_column_blob(stmt, c)!.assumingMemoryBound(to: UInt8.self)
                        row.append(.blob(Array(UnsafeBufferPointer(start: base, count: count))))
                    }
                default: row.append(.null)
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Rows changed by the last statement.
    public var changes: Int { Int(sqlite3_changes(handle)) }

    private func prepare(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        statements[sql] = stmt
        return stmt
    }

    private func error(_ rc: Int32, sql: String, message: String? = nil) -> StoreError {
        let primary = rc & 0xFF
        let text = message ?? String(cString: sqlite3_errmsg(handle))
        if primary == SQLITE_BUSY || primary == SQLITE_LOCKED { return .busy }
        if primary == SQLITE_CONSTRAINT { return .constraint(message: text) }
        return .failed(code: primary, extendedCode: rc, message: text, sql: sql)
    }

    public static var libraryVersion: String { String(cString: sqlite3_libversion()) }
}

@available(*, unavailable)
extension Connection: Sendable {}
