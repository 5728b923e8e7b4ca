/// The database of one process: a connection, transactions and migrations.
///
/// `read` runs a deferred transaction under `PRAGMA query_only`, `write` runs `BEGIN IMMEDIATE`,
/// so no caller can express a read-then-write in a deferred transaction (which fails with
/// SQLITE_BUSY under concurrency whatever the busy timeout).
public final class Store {
    public let connection: Connection

    /// Opens (creating if needed) the database and applies pending migrations.
    public init(path: String) throws {
        connection = try Connection(path: path)
        try Migrator.migrate(connection)
    }

    public func read<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.execute("PRAGMA query_only=1")
        defer { try? connection.execute("PRAGMA query_only=0") }
        return try connection.transaction("BEGIN", body)
    }

    @discardableResult
    public func write<T>(_ body: (Transaction) throws -> T) throws -> T {
        try connection.transaction("BEGIN IMMEDIATE", body)
    }
}

extension Connection {
    /// Runs `body` between `begin` and COMMIT, rolling back when it throws.
    @discardableResult
    func transaction<T>(_ begin: String, _ body: (Transaction) throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body(Transaction(connection: self))
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
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
