/// The database of one process: a connection, transactions and migrations.
///
/// `read` runs a deferred transaction under `PRAGMA query_only`, `write` runs `BEGIN IMMEDIATE`,
/// so no caller can express a read-then-write in a deferred transaction (which fails with
/// SQLITE_BUSY under concurrency whatever the busy timeout).
public final class Store {
    public let connection: Connection

    /// Opens (creating if needed) the database and applies pending migrations.
    public init(path: String) throws(StoreError) {
        connection = try Connection(path: path)
        try Migrator.migrate(connection)
    }

    public func read<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.execute("PRAGMA query_only=1; BEGIN")
        defer { try? connection.execute("PRAGMA query_only=0") }
        do {
            let result = try body(Transaction(connection: connection))
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    @discardableResult
    public func write<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.execute("BEGIN IMMEDIATE")
        do {
            let result = try body(Transaction(connection: connection))
            try connection.execute("COMMIT")
            return result
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }
}

@available(*, unavailable)
extension Store: Sendable {}

/// The handle a transaction body gets; the record extensions in `Records/` hang off it.
public struct Transaction {
    let connection: Connection

    @discardableResult
    public func query(_ sql: String, _ arguments: [SQLValue] = []) throws(StoreError) -> [Row] {
        try connection.query(sql, arguments)
    }

    public var changes: Int { connection.changes }
}
